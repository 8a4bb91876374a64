"""The login tokens the CLI keeps between commands: `$XDG_CONFIG_HOME/aniworldd/token` (default
`~/.config/aniworldd/token`), mode 0600 in a 0700 folder.

It lives in the user's config dir, not the daemon's data dir: it belongs to the person at the shell (who may
not be allowed to read the data dir), and a token is as good as the master password until it expires, so
nobody else on the machine may read it. The file maps each daemon address to the token it issued
(`{"http://127.0.0.1:8080": {"token": ..., "expires_at": ...}}`): a token is only ever sent back to the daemon
that issued it, never to whatever `--url` a command is pointed at next. Written atomically (temp file +
rename) so a crash or a parallel `login` never leaves half a file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def token_path() -> Path:
    """Where the tokens are kept, by the XDG base directory spec (a relative XDG_CONFIG_HOME is ignored)."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "aniworldd" / "token"


def _key(url: str) -> str:
    return url.rstrip("/")


def read_tokens() -> dict[str, dict[str, Any]]:
    """Every stored login by daemon address; empty when there is no file or it cannot be read."""
    try:
        data = json.loads(token_path().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {u: e for u, e in data.items() if isinstance(e, dict) and isinstance(e.get("token"), str)}


def read_token(url: str) -> str | None:
    """The token the daemon at `url` issued, or None."""
    entry = read_tokens().get(_key(url))
    return entry["token"] if entry else None


def _write(tokens: dict[str, dict[str, Any]]) -> Path:
    path = token_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)  # an existing folder may have been made with the umask's mode
    fd, tmp = tempfile.mkstemp(prefix=".token.", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(tokens, out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable; not every filesystem allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def write_token(url: str, token: str, expires_at: str | None = None) -> Path:
    """Store the token of the daemon at `url` (replacing its earlier one, keeping other daemons')."""
    tokens = read_tokens()
    tokens[_key(url)] = {"token": token.strip(), "expires_at": expires_at}
    return _write(tokens)


def delete_token(url: str) -> bool:
    """Forget the token of the daemon at `url`; whether there was one. The file goes with the last token."""
    tokens = read_tokens()
    if tokens.pop(_key(url), None) is None:
        return False
    if tokens:
        _write(tokens)
    else:
        with contextlib.suppress(FileNotFoundError):
            token_path().unlink()
    return True
