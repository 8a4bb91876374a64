"""`python -m tests.fakesite --port 8090`: the fake aniworld.to / s.to / hosters, standalone (make demo).

`python -m tests.fakesite --obstacles [--js-challenge] [--turnstile-after N] [--beacon]
[--ddos-guard-check] [--browser-headers] [--no-gate] [--flaresolverr]`: the composed look-alike with
today's obstacles (obstacles.py) on free ports; prints the origins and a `provider:` config section to
try the daemon against it.
"""

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


async def _serve_obstacles(args: argparse.Namespace) -> None:
    import tempfile
    from pathlib import Path

    import yaml

    from .obstacles import obstacle_site

    with tempfile.TemporaryDirectory(prefix="aniworldd-obstacles-") as tmp:
        async with obstacle_site(
            Path(tmp),
            tls_gate=not args.no_gate,
            js_challenge=args.js_challenge,
            turnstile_after=args.turnstile_after,
            beacon=args.beacon,
            ddos_guard_check=args.ddos_guard_check,
            browser_headers=args.browser_headers,
            flaresolverr=args.flaresolverr,
        ) as o:
            lines = [
                f"hosters + media (plain http):  {o.plain_origin}",
                f"sites (TLS gate {'on' if not args.no_gate else 'off'}):  {o.aniworld_url}  "
                + "  ".join(o.sto_urls)
                + f"  (retired: {o.retired_url})",
                f"names -> addresses (DoH table): {o.resolve}",
                f"DoH (JSON + wire):  {o.doh_url}",
                f"CA file:  {o.ca_file}",
                f"HTTP proxy:  {o.http_proxy}   with auth: {o.http_proxy_auth}",
                f"SOCKS5 proxy:  {o.socks_proxy_h}   with auth: {o.socks_proxy_auth_h}",
            ]
            if o.flaresolverr_url:
                lines.append(f"FlareSolverr stand-in:  {o.flaresolverr_url}/v1")
            print("\n".join(lines), flush=True)
            print("\nsample config:\n" + yaml.safe_dump({"provider": o.sample_config()}, sort_keys=False))
            print(
                f"try: curl --cacert {o.ca_file} --resolve aniworld.test:{o.gate_port}:127.0.0.1 "
                f"{o.aniworld_url}/  (refused: plain curl has no GREASE)  (Ctrl-C to stop)",
                flush=True,
            )
            await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakesite", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--obstacles", action="store_true", help="run the composed site with today's obstacles"
    )
    parser.add_argument(
        "--js-challenge", action="store_true", help="with --obstacles: Cloudflare JS challenge"
    )
    parser.add_argument("--turnstile-after", type=int, default=None, metavar="N", help="with --obstacles")
    parser.add_argument("--beacon", action="store_true", help="with --obstacles: beacon script + DDoS-Guard")
    parser.add_argument("--ddos-guard-check", action="store_true", help="with --obstacles: DDoS-Guard check")
    parser.add_argument(
        "--browser-headers", action="store_true", help="with --obstacles: aniworld wants browser headers"
    )
    parser.add_argument(
        "--no-gate", action="store_true", help="with --obstacles: HTTPS without the GREASE check"
    )
    parser.add_argument("--flaresolverr", action="store_true", help="with --obstacles: FlareSolverr stand-in")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_obstacles(args) if args.obstacles else _serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
