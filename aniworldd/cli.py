"""The `aniworldd` command. Each command group lives in aniworldd/commands/<group>.py with `register()`."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from aniworldd import __version__

#: Command modules, in help order. Each exposes `register(subparsers)` and sets `func` on its parsers.
COMMAND_MODULES = [
    "aniworldd.commands.daemon",
    "aniworldd.commands.config",
    "aniworldd.commands.scan",
    "aniworldd.commands.queue",
    "aniworldd.commands.ops",
    "aniworldd.commands.provider",
    "aniworldd.commands.remove",
    "aniworldd.commands.auth",
    "aniworldd.commands.login",
    "aniworldd.commands.doctor",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aniworldd", description="Keeps an anime/series library complete.")
    parser.add_argument("--version", action="version", version=f"aniworldd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


#: Exit status after the reader of stdout went away (`aniworldd show KEY | head -1`): 128 + SIGPIPE, what a
#: shell reports for a command killed by SIGPIPE, so `set -o pipefail` scripts see the same as with `cat`.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def _quiet_broken_pipe() -> int:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise (and print) a second
    BrokenPipeError; the way the Python docs recommend (signal module, "Note on SIGPIPE"). Restoring
    SIG_DFL for SIGPIPE instead would also kill `aniworldd run` whenever a client hangs up a socket."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def _dispatch(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            code = _dispatch(argv)
        finally:
            sys.stdout.flush()  # buffered output meets a closed pipe here (also after --help), not at exit
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
