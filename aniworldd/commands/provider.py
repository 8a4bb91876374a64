"""`aniworldd search QUERY`, `aniworldd add LINK`, `aniworldd show KEY`.

Each runs standalone: load the config, open the database, do the work, exit. Safe while the daemon runs
(SQLite in WAL mode, one short transaction). Exit codes: 0 ok, 1 failed (message on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from aniworldd.core.labels import episode_label
from aniworldd.providers.base import SITES, ProviderError


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)


def _emit_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _run(
    args: argparse.Namespace, work: Callable[[dict, Any], Awaitable[int]], *, needs_db: bool = True
) -> int:
    """Load config, build the pieces `work` needs, run it, always close them again."""
    from aniworldd.config import ConfigError, config_path, load_config
    from aniworldd.db import DatabaseError, Store
    from aniworldd.providers.registry import build_providers
    from aniworldd.services.anime_service import AnimeService
    from aniworldd.services.errors import ServiceError

    try:
        cfg = load_config(config_path(args.config))
    except ConfigError as exc:
        return _fail(str(exc))

    async def main() -> int:
        store = Store(cfg["database"]["url"], cfg["data_dir"]) if needs_db else None
        providers = build_providers(cfg["provider"])
        try:
            service = AnimeService(
                store,  # type: ignore[arg-type]
                providers,
                cfg["library"]["roots"],
                None,
                languages=cfg["downloads"]["language"],
                missing_by_language=cfg["library"]["missing_by_language"],
            )
            return await work(cfg, service)
        finally:
            await providers.close()
            if store is not None:
                await asyncio.to_thread(store.close)

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        return _fail(exc.message)
    except ProviderError as exc:
        return _fail(str(exc))
    except DatabaseError as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        raise  # a reader that went away (`show KEY | head -1`): the entry point exits quietly
    except OSError as exc:
        return _fail(str(exc))


# -- search ------------------------------------------------------------------------------------------------


def _search(args: argparse.Namespace) -> int:
    async def work(cfg: dict, service: Any) -> int:
        results = await service.search(args.query, site=args.site)
        if args.json:
            _emit_json(results)
            return 0
        if not results:
            print("no results")
            return 0
        width = max(len(r["key"]) for r in results)
        for r in results:
            year = f" ({r['year']})" if r.get("year") else ""
            print(f"{r['key']:<{width}}  [{r['site']}]  {r['name']}{year}")
            print(f"{'':<{width}}  {r['link']}")
        return 0

    return _run(args, work, needs_db=False)


# -- add ---------------------------------------------------------------------------------------------------


def _season_label(season: str | int) -> str:
    return "Movies" if int(season) == 0 else f"Season {int(season)}"


def _add(args: argparse.Namespace) -> int:
    async def work(cfg: dict, service: Any) -> int:
        from aniworldd.services.metadata_service import MetadataService, provider_fetcher

        result = await service.add(args.link)
        # What the daemon's MetadataService does on an add through the API: tvshow.nfo and poster.jpg for
        # media servers and the library's poster card (with `library.write_nfo`).
        metadata = MetadataService(
            service.store, cfg["library"]["write_nfo"], provider_fetcher(service.providers.client)
        )
        await metadata.write(result["key"])
        if args.json:
            _emit_json(result)
            return 0
        verb = "Added" if result.get("created") else "Updated"
        print(f"{verb} {result['name']} [{result['site']}] as {result['key']!r}")
        print(f"  folder: {os.path.join(result.get('root') or '', result.get('folder') or '')}")
        for season, count in result["seasons"].items():
            print(f"  {_season_label(season)}: {count} episode{'s' if count != 1 else ''}")
        print(f"  total: {result['episode_count']} episodes")
        return 0

    return _run(args, work)


# -- show --------------------------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    async def work(cfg: dict, service: Any) -> int:
        detail = await service.detail(args.key)
        if args.json:
            _emit_json(detail)
            return 0
        years = ""
        if detail.get("year"):
            years = f" ({detail['year']}" + (f"-{detail['end_year']}" if detail.get("end_year") else "") + ")"
        print(f"{detail['name']}{years} [{detail['site']}] key={detail['key']}")
        if detail.get("folder"):
            print(f"  folder: {os.path.join(detail.get('root') or '', detail['folder'])}")
        current = None
        # Movies (season 0) after the seasons, as the web UI lists them.
        for ep in sorted(detail["episodes"], key=lambda e: (e["season"] == 0, e["season"], e["episode"])):
            if not ep["listed"] and not ep["path"]:
                continue
            if ep["season"] != current:
                current = ep["season"]
                print(f"  {_season_label(current)}:")
            code = episode_label(ep["season"], ep["episode"])
            langs = ", ".join(ep["languages"]) or "-"
            status = ep["status"].replace("_", " ")
            if ep["status"] == "on_disk" and ep.get("language"):
                status += f" ({ep['language']})"
            title = ep["title"] or ep["title_en"]
            print(f"    {code}  {status:<20} [{langs}]  {title}")
        print(f"  missing: {detail['missing_count']}")
        return 0

    return _run(args, work)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search aniworld.to and s.to")
    p.add_argument("query")
    p.add_argument("--site", choices=SITES, help="search one site only (default: both)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--config", "-c", help="config file (default: $ANIWORLDD_CONFIG or built-in defaults)")
    p.set_defaults(func=_search)

    p = sub.add_parser("add", help="add a series by its aniworld.to / s.to link")
    p.add_argument("link")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--config", "-c", help="config file (default: $ANIWORLDD_CONFIG or built-in defaults)")
    p.set_defaults(func=_add)

    p = sub.add_parser("show", help="a series' episodes: languages, on disk or missing")
    p.add_argument("key")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--config", "-c", help="config file (default: $ANIWORLDD_CONFIG or built-in defaults)")
    p.set_defaults(func=_show)
