"""`aniworldd doctor [--json] [--config FILE]`: which link between this machine and a resolved hoster breaks.

Thin: aniworldd.services.doctor does the work.  Exit 0 when every step passed, 1 otherwise (the report
is printed either way: the failing step *is* the answer).
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aniworldd.config import config_path


def _doctor(args: argparse.Namespace) -> int:
    from aniworldd.services.doctor import diagnose_file

    report = asyncio.run(diagnose_file(config_path(args.config)))
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(report.table())
    return 0 if report.ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check each link to the sites and hosters (config, DNS, TLS, challenge, pages, hosters)",
    )
    p.add_argument("--json", action="store_true", help='print JSON: {"ok": ..., "steps": [...]}')
    p.add_argument("--config", "-c", help="config file (default: $ANIWORLDD_CONFIG or built-in defaults)")
    p.set_defaults(func=_doctor)
