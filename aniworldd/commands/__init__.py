"""The `aniworldd` sub-commands, one module per group, each with `register()`."""

from __future__ import annotations

import sys

from aniworldd.config import ConfigError, config_path, load_config


def load_or_report(arg: str | None) -> dict | None:
    """The config a command runs with (`--config` or $ANIWORLDD_CONFIG); None after printing every issue
    with its file, line and path to stderr."""
    try:
        return load_config(config_path(arg))
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return None
