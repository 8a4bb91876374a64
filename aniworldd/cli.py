"""The `aniworldd` command. Each command group lives in aniworldd/commands/<group>.py with `register()`."""

from __future__ import annotations

import argparse
import importlib
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
    "aniworldd.commands.auth",
    "aniworldd.commands.doctor",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aniworldd", description="Keeps an anime/series library complete.")
    parser.add_argument("--version", action="version", version=f"aniworldd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
