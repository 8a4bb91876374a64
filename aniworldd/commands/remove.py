"""`aniworldd remove KEY [--delete-files]`: remove a series through the RUNNING daemon's REST API.

Through the API and not the database for the same reason as `aniworldd queue`: the daemon owns the queue and
its running downloads, and only it can cancel them cleanly. Address and credentials as for `aniworldd queue`
(--url / the config, --token / --api-key / the stored login).
"""

from __future__ import annotations

import argparse
import json
import sys
from urllib.parse import quote

from aniworldd.commands.queue import CliError, call


def _remove(args: argparse.Namespace) -> int:
    path = f"/api/anime/{quote(args.key, safe='')}"
    if args.delete_files:
        path += "?delete_files=true"
    try:
        answer = call(args, "DELETE", path) or {}
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, default=str))
        return 0
    print(answer.get("message") or f"{args.key} removed")
    if answer.get("warning"):
        print(f"warning: {answer['warning']}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "remove", help="remove a series from the library of the running daemon (files kept by default)"
    )
    p.add_argument("key", help="series key, e.g. attack-on-titan")
    p.add_argument(
        "--delete-files",
        action="store_true",
        help="also delete the series folder (only inside a configured library root, never through a symlink)",
    )
    p.add_argument("--json", action="store_true", help="print the API answer as JSON")
    p.add_argument("--url", help="daemon base URL (default: from the config's server.host/port)")
    p.add_argument("--config", "-c", help="config file to read the address from (default: $ANIWORLDD_CONFIG)")
    p.add_argument("--token", help="login token or API key (default: $ANIWORLDD_TOKEN)")
    p.add_argument(
        "--api-key", help="API key (default: $ANIWORLDD_API_KEY, else the token `aniworldd login` stored)"
    )
    p.set_defaults(func=_remove)
