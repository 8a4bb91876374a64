"""`aniworldd config check FILE`."""

from __future__ import annotations

import argparse
import sys

from aniworldd.config import check_file


def _check(args: argparse.Namespace) -> int:
    issues = check_file(args.file)
    if issues:
        for issue in issues:
            print(issue)
        print(f"{len(issues)} error(s)", file=sys.stderr)
        return 1
    print("ok")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = csub.add_parser("check", help="validate a config file; prints every error with line and path")
    check.add_argument("file")
    check.set_defaults(func=_check)
