"""`aniworldd run`."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from aniworldd.daemon import run

    return run(args.config, args.role)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the daemon (web server, scanner, queue, MQTT)")
    p.add_argument("--config", "-c", help="config file (default: $ANIWORLDD_CONFIG or built-in defaults)")
    p.add_argument(
        "--role",
        choices=("all", "api", "worker"),
        help="several processes (README 'More than one process'): api = web, API and MQTT; "
        "worker = downloads (one also scans and refreshes); all = everything (default: cluster.role)",
    )
    p.set_defaults(func=_run)
