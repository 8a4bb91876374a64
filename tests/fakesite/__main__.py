"""`python -m tests.fakesite --port 8090`: the fake aniworld.to / s.to / hosters, standalone (make demo)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from .app import start_fakesite
from .state import FakeSiteState


async def _serve(host: str, port: int) -> None:
    runner, origin = await start_fakesite(FakeSiteState(), port=port, host=host)
    print(f"fake aniworld.to / s.to / hosters on {origin}  (Ctrl-C to stop)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakesite", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
