"""Library roots are the owner's, never the daemon's: it does not create them.

A root on a NAS share that is not mounted is an empty mount point (or no folder at all); creating it and
writing there would fill the system disk with what belongs on the share. So a missing root is a reason
to wait, with a message that says what is probably wrong.
"""

from __future__ import annotations

from pathlib import Path

#: How long a download waits before looking at a missing root again (seconds).
ROOT_WAIT = 30.0


def missing_root_reason(root: str | Path) -> str | None:
    """None when `root` is an existing folder, else the reason items wait (shown in the queue)."""
    return None if Path(root).is_dir() else f"library root missing: {root} (not mounted?)"


def root_of(path: str | Path, roots: list[str]) -> str | None:
    """The configured root `path` lies in (the temp dir defaults to one), or None."""
    p = Path(path)
    for root in roots:
        if p == Path(root) or p.is_relative_to(root):
            return root
    return None
