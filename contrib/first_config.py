"""Give the daemon a config file of the user's own on first start: `make run` and `make demo` call this.

usage: python contrib/first_config.py EXAMPLE TARGET

The example files (config.example.yaml, contrib/demo/config.demo.yaml) are tracked in git: a daemon started
with one of them would write into it when the config is saved from the UI. So the example is copied to TARGET
once (an existing TARGET is the user's and is left alone) and the daemon runs with the copy. The library
folders the copy names are created then too: the daemon does not add series into a missing root.

Relative paths in a config are relative to the file's folder (aniworldd.config._finalize), so each relative
path the daemon resolves (data_dir, library.roots, downloads.temp_dir, provider.ca_file) is rewritten in the
copy to point where it pointed from the example; everything else, comments included, is copied as it is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

from aniworldd.fileio import atomic_write
from aniworldd.services.config_service import render_update

#: The settings _finalize resolves against the config file's folder: (section, key) or (key,).
PATH_SETTINGS = (("data_dir",), ("library", "roots"), ("downloads", "temp_dir"), ("provider", "ca_file"))


def _moved(value: Any, source_dir: Path, target_dir: Path) -> Any:
    """`value` as seen from target_dir; absolute paths, nulls and non-strings stay as they are."""
    if not isinstance(value, str) or not value or os.path.isabs(value):
        return value
    absolute = os.path.normpath(source_dir / value)
    if os.path.commonpath([absolute, target_dir]) == os.path.sep:
        return absolute  # nothing in common but `/`: a relative path would only be harder to read
    return os.path.relpath(absolute, target_dir)


def rebase(doc: dict, source_dir: Path, target_dir: Path) -> dict:
    """A copy of doc whose relative paths mean the same from target_dir as they did from source_dir."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in doc.items()}
    for path in PATH_SETTINGS:
        holder = out if len(path) == 1 else out.get(path[0])
        if not isinstance(holder, dict) or path[-1] not in holder:
            continue
        value = holder[path[-1]]
        if isinstance(value, list):
            holder[path[-1]] = [_moved(v, source_dir, target_dir) for v in value]
        else:
            holder[path[-1]] = _moved(value, source_dir, target_dir)
    return out


def copy_config(example: Path, target: Path) -> bool:
    """Copy example to target (paths rebased); False when target already exists (it is the user's)."""
    if target.exists():
        return False
    text = example.read_text(encoding="utf-8")
    doc = yaml.safe_load(text) or {}
    source_dir = Path(os.path.abspath(example)).parent  # as named: the repository's example is a symlink
    target_dir = target.parent.resolve() if target.parent.exists() else Path(os.path.abspath(target.parent))
    rebased = rebase(doc, source_dir, target_dir)
    body = render_update(text, rebased) if rebased != doc else text
    header = (
        f"# Your aniworldd config, copied from {example} on first start. The daemon saves settings from the\n"
        "# web UI into this file (comments kept); the example it came from is never written.\n"
    )
    atomic_write(target, header + body, 0o600)
    make_library_roots(target)
    return True


def make_library_roots(config_path: Path) -> list[Path]:
    """Create the library folders the new config names (the folders made are returned).

    The daemon refuses to download into a root that is missing, because an unmounted share must not look
    like an empty library; so a first start is where the library folder is made, once. A config that does
    not validate is left for the daemon to report.
    """
    from aniworldd.config import ConfigError, load_config

    try:
        roots = load_config(config_path, env={})["library"]["roots"]
    except (ConfigError, OSError, KeyError, TypeError):
        return []
    made = []
    for root in roots:
        path = Path(root)
        if not path.exists():
            path.mkdir(parents=True, exist_ok=True)
            made.append(path)
    return made


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    example, target = Path(argv[0]), Path(argv[1])
    if copy_config(example, target):
        print(f"created {target} from {example} (edit it, or save settings from the web UI)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
