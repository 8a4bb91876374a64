"""`aniworldd set-password [--config FILE] [--stdin]`: set or change the master password.

Works while the daemon runs: the hash goes to <data_dir>/auth.json (0600) with a new password version, the
daemon notices within a second and every token issued before is refused (a changed password signs
everyone out, and their WebSockets close). API keys stay valid; revoke them through the API.

It is also the recovery when auth.json was lost, is unreadable or corrupt: the web setup refuses to run over
the traces of an earlier owner (409 recovery_required), and only someone with access to the server's config
and data dir can set the password then.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from aniworldd.commands import load_or_report
from aniworldd.services.auth_service import PasswordFile
from aniworldd.services.errors import ServiceError


def _read_password(use_stdin: bool) -> str | None:
    if use_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("New master password: ")
    second = getpass.getpass("Repeat: ")
    if first != second:
        print("the passwords do not match; nothing changed", file=sys.stderr)
        return None
    return first


def _set_password(args: argparse.Namespace) -> int:
    cfg = load_or_report(args.config)
    if cfg is None:
        return 1
    password = _read_password(args.stdin)
    if password is None:
        return 1
    try:
        PasswordFile(cfg["data_dir"]).set_password(password)
    except ServiceError as exc:
        print(f"{exc.message}; nothing changed", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot write the password file in {cfg['data_dir']}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print("master password set; earlier login sessions are signed out")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("set-password", help="set or change the master password of the web UI and API")
    p.add_argument("--config", "-c", help="config file (default: $ANIWORLDD_CONFIG or built-in defaults)")
    p.add_argument("--stdin", action="store_true", help="read the password from one line of stdin (scripts)")
    p.set_defaults(func=_set_password)
