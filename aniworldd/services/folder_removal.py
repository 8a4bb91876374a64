"""Deleting a series folder from the library, and nothing outside it.

Why it is built this way: `DELETE /api/anime/{key}?delete_files=true` removes a whole directory tree on
the owner's NAS, so every doubt is a refusal made before anything changes:
- the folder must lie directly in a *configured* library root (a row whose root was removed from the
  config, or a folder name with a separator or `..`, is refused);
- the folder itself must not be a symlink (deleting "through" a link would reach outside the library),
  and its real path must be a direct child of the root's real path;
- the root and the folder must be writable, so the delete is not refused half-way by permissions.
The delete itself first renames the folder to a hidden name in the same root (one atomic step: the
scanner skips dot folders, so a library never shows a half-deleted series), then removes that tree with
`shutil.rmtree`, which unlinks symlinks inside the tree instead of following them.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from aniworldd.core.roots import missing_root_reason
from aniworldd.fileio import fsync_dir
from aniworldd.services.errors import Conflict, Unavailable

log = logging.getLogger(__name__)

#: Prefix of the hidden name a folder gets while it is being deleted (dot: the scanner skips it).
TRASH_PREFIX = ".aniworldd-removing-"


@dataclass(frozen=True, slots=True)
class FolderTarget:
    root: str
    folder: str
    path: str
    exists: bool


def _plain_name(folder: str) -> bool:
    return (
        bool(folder.strip())
        and "/" not in folder
        and "\\" not in folder
        and "\x00" not in folder
        and folder not in (".", "..")
    )


def check_deletable(root: str | None, folder: str | None, roots: list[str]) -> FolderTarget | None:
    """The series folder that may be deleted; None when the series has no folder. Conflict (409) for a
    folder outside the configured roots or reached through a symlink, Unavailable (503) for a root that
    is not mounted or a folder that cannot be deleted. Changes nothing."""
    if not folder or not root:
        return None
    details = {"root": root, "folder": folder}
    configured = {os.path.normpath(str(r)) for r in roots}
    if os.path.normpath(root) not in configured or not _plain_name(folder):
        raise Conflict(
            f"the folder {os.path.join(root, folder)} is not inside a configured library root; "
            "the files were not deleted and the series was not removed",
            details,
            code="folder_outside_library",
        )
    missing = missing_root_reason(root)
    if missing is not None:
        raise Unavailable(missing, details, code="library_root_missing")
    path = os.path.join(root, folder)
    if os.path.islink(path):
        raise Conflict(
            f"the series folder {path} is a symbolic link; aniworldd never deletes through a link "
            "(remove it by hand, or remove the series without delete_files)",
            details,
            code="folder_is_symlink",
        )
    if not os.path.lexists(path):
        return FolderTarget(root, folder, path, exists=False)
    if not os.path.isdir(path):
        raise Conflict(f"{path} is not a folder", details, code="folder_outside_library")
    real_root = os.path.realpath(root)
    if os.path.dirname(os.path.realpath(path)) != real_root:
        raise Conflict(
            f"the series folder {path} resolves outside the library root {root}",
            details,
            code="folder_outside_library",
        )
    for where in (root, path):
        if not os.access(where, os.W_OK | os.X_OK):
            raise Unavailable(
                f"cannot delete {path}: {where} is not writable by the daemon",
                details,
                code="folder_not_writable",
            )
    return FolderTarget(root, folder, path, exists=True)


def move_aside(target: FolderTarget, key: str) -> Path:
    """Rename the series folder to a hidden name in its root (atomic); OSError when that fails."""
    trash = Path(target.root) / f"{TRASH_PREFIX}{key}-{time.time_ns()}"
    os.rename(target.path, trash)
    fsync_dir(Path(target.root))
    return trash


def move_back(trash: Path, target: FolderTarget) -> None:
    """Undo move_aside (the removal failed after the rename)."""
    os.rename(trash, target.path)


def purge(trash: Path) -> str | None:
    """Delete a moved-aside tree; None when it is gone, else what was left (logged, never raised)."""
    if trash.is_symlink() or not trash.name.startswith(TRASH_PREFIX):
        return f"{trash} was not deleted (not a folder aniworldd moved aside)"
    problems: list[str] = []

    def onerror(_func: object, path: str, exc_info: tuple) -> None:  # Python 3.11: no onexc yet
        problems.append(f"{path}: {exc_info[1]}")

    shutil.rmtree(trash, onerror=onerror)
    if not problems and not trash.exists():
        return None
    log.warning("could not delete everything in %s: %s", trash, "; ".join(problems[:5]))
    return f"some files could not be deleted and were left in {trash}"
