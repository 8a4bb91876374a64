"""`aniworldd queue ...`: drive the download queue of the RUNNING daemon through its REST API.

The CLI never opens the database itself: the daemon owns the queue, its workers and yt-dlp children, so
a second writer would only race them. The base URL comes from `--url`, else from the config's
server.host/port; auth is a login token (`Authorization: Bearer`) or an API key (`X-Api-Key`), from
`--token` / `$ANIWORLDD_TOKEN` (a JWT is sent as bearer, anything else as API key) or `--api-key` /
`$ANIWORLDD_API_KEY`, else the token `aniworldd login` stored for this address (commands/token_store.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from aniworldd.commands.token_store import read_token
from aniworldd.core.labels import episode_label

TIMEOUT = 30.0


class CliError(Exception):
    """Printed as `error: ...` with exit status 1."""


# -- helpers ---------------------------------------------------------------------------------------


def parse_episode_spec(spec: str) -> list[int]:
    """`1-5,7,10-12` -> [1, 2, 3, 4, 5, 7, 10, 11, 12]; ValueError with the bad part."""
    numbers: list[int] = []
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            start = int(lo)
            end = int(hi) if dash else start
        except ValueError:
            raise ValueError(f"bad episode range {part!r} (expected e.g. 1-5,7)") from None
        if start < 1 or end < start or end - start > 5000:
            raise ValueError(f"bad episode range {part!r} (expected e.g. 1-5,7)")
        numbers.extend(n for n in range(start, end + 1) if n not in numbers)
    if not numbers:
        raise ValueError("no episodes given (expected e.g. 1-5,7)")
    return numbers


def base_url(args: argparse.Namespace) -> str:
    if args.url:
        return args.url.rstrip("/")
    from aniworldd.config import ConfigError, config_path, load_config

    try:
        cfg = load_config(config_path(args.config))
    except ConfigError as exc:
        raise CliError(f"cannot read config for the daemon address: {exc}") from None
    host = cfg["server"]["host"]
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{cfg['server']['port']}"


def token_headers(token: str) -> dict[str, str]:
    """A JWT (from /api/auth/login) goes as bearer, anything else as an API key."""
    if token.count(".") == 2:
        return {"Authorization": f"Bearer {token}"}
    return {"X-Api-Key": token}


def auth_headers(args: argparse.Namespace) -> dict[str, str]:
    """Credentials given explicitly win over the stored login, so a script's key is never overridden."""
    token = getattr(args, "token", None) or os.environ.get("ANIWORLDD_TOKEN")
    api_key = getattr(args, "api_key", None) or os.environ.get("ANIWORLDD_API_KEY")
    if token:
        return token_headers(token)
    if api_key:
        return {"X-Api-Key": api_key}
    stored = read_token(base_url(args))  # only ever to the daemon that issued it
    return token_headers(stored) if stored else {}


def call(
    args: argparse.Namespace,
    method: str,
    path: str,
    payload: Any = None,
    *,
    headers: dict[str, str] | None = None,
) -> Any:
    """One API request; the API's `{"error": {...}}` answers become CliError with their message.
    `headers` replaces the credentials `auth_headers` would send (login sends none, api-key only a
    login token)."""
    url = base_url(args) + path
    data = None
    headers = {"Accept": "application/json", **(auth_headers(args) if headers is None else headers)}
    if payload is not None:
        data = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raise CliError(_error_text(exc)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"cannot reach the daemon at {base_url(args)}: {reason}") from None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise CliError(f"unexpected answer from {url}") from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        err = json.loads(exc.read() or b"{}").get("error") or {}
    except ValueError:
        err = {}
    message = err.get("message") or exc.reason or "request failed"
    if exc.code == 401:
        message += " (run `aniworldd login`, pass --token or set ANIWORLDD_TOKEN / ANIWORLDD_API_KEY)"
    return f"{message} [HTTP {exc.code}]"


def _fmt_bytes(n: Any) -> str:
    if not isinstance(n, int | float) or n <= 0:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return "-"


def _fmt_eta(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or seconds < 0:
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def format_items(status: dict) -> str:
    rows = []
    sections = (
        ("active_downloads", "downloading"),
        ("pending_queue", "pending"),
        ("failed_downloads", "failed"),
        ("completed_downloads", "completed"),
    )
    for field, _label in sections:
        for item in status.get(field) or []:
            speed = item.get("speed")
            episode = episode_label(item.get("season"), item.get("episode"))
            rows.append(
                [
                    str(item.get("id")),
                    str(item.get("status")),
                    f"{item.get('key')} {episode}",
                    item.get("language") or "any",
                    item.get("priority") or "",
                    f"{float(item.get('progress') or 0):.1f}%",
                    f"{_fmt_bytes(speed)}/s" if speed else "-",
                    _fmt_eta(item.get("eta")),
                    (item.get("error") or "")[:60],
                ]
            )
    head = ["ID", "STATUS", "EPISODE", "LANG", "PRIO", "DONE", "SPEED", "ETA", "ERROR"]
    widths = [
        max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(len(head))
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    # The status holds the first page of each list only; `<list>_total` counts them all (issue 16 item 11).
    for field, label in sections:
        total = status.get(f"{field}_total")
        more = total - len(status.get(field) or []) if isinstance(total, int) else 0
        if more > 0:
            lines.append(f"... and {more} more {label} (GET /api/queue/status?limit=&offset= pages them)")
    st = status.get("statistics") or {}
    state = "paused" if status.get("is_paused") else ("running" if status.get("is_running") else "stopped")
    lines.append(
        f"queue {state}: {st.get('active', 0)} active, {st.get('pending', 0)} pending, "
        f"{st.get('completed', 0)} completed, {st.get('failed', 0)} failed, {st.get('speed_mbps', 0)} MB/s"
    )
    return "\n".join(lines)


# -- commands --------------------------------------------------------------------------------------


def _wanted_episodes(args: argparse.Namespace) -> list[dict]:
    explicit = parse_episode_spec(args.episodes) if args.episodes else None
    season = args.season
    if explicit is not None and not args.missing:
        return [{"season": season if season is not None else 1, "episode": n} for n in explicit]
    detail = call(args, "GET", f"/api/anime/{quote(args.key, safe='')}")
    wanted = []
    for ep in (detail or {}).get("episodes") or []:
        if ep.get("status") != "missing":
            continue
        if season is not None and ep.get("season") != season:
            continue
        if explicit is not None and ep.get("episode") not in explicit:
            continue
        wanted.append({"season": ep["season"], "episode": ep["episode"]})
    return wanted


def _add(args: argparse.Namespace) -> int:
    try:
        episodes = _wanted_episodes(args)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not episodes:
        print(
            f"nothing to queue: no missing episodes of {args.key}"
            + (f" in season {args.season}" if args.season is not None else "")
        )
        return 0
    payload: dict[str, Any] = {"serie_id": args.key, "episodes": episodes, "priority": args.priority}
    if args.language:
        payload["language"] = args.language
    answer = call(args, "POST", "/api/queue/add", payload) or {}
    if args.json:
        print(json.dumps(answer, indent=2, default=str))
    else:
        print(answer.get("message") or f"{len(episodes)} episode(s) queued")
    return 0


def _list(args: argparse.Namespace) -> int:
    status = call(args, "GET", "/api/queue/status") or {}
    if args.json:
        print(json.dumps(status, indent=2, default=str))
    else:
        print(format_items(status))
    return 0


def _action(name: str):
    def run(args: argparse.Namespace) -> int:
        answer = call(args, "POST", f"/api/queue/{name}") or {}
        print(answer.get("message") or f"queue {name}: ok")
        return 0

    return run


def _retry(args: argparse.Namespace) -> int:
    payload = {"item_ids": args.ids} if args.ids else {}
    answer = call(args, "POST", "/api/queue/retry", payload) or {}
    print(answer.get("message") or "retried")
    return 0


def _clear(args: argparse.Namespace) -> int:
    answer = call(args, "DELETE", "/api/queue/completed") or {}
    print(answer.get("message") or "cleared")
    return 0


def _remove(args: argparse.Namespace) -> int:
    answer = call(args, "DELETE", f"/api/queue/{args.id}") or {}
    print(answer.get("message") or f"item {args.id} removed")
    return 0


def _guard(func):
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="daemon base URL (default: from the config's server.host/port)")
    common.add_argument(
        "--config", "-c", help="config file to read the address from (default: $ANIWORLDD_CONFIG)"
    )
    common.add_argument("--token", help="login token or API key (default: $ANIWORLDD_TOKEN)")
    common.add_argument(
        "--api-key", help="API key (default: $ANIWORLDD_API_KEY, else the token `aniworldd login` stored)"
    )

    p = sub.add_parser("queue", help="download queue of the running daemon")
    qsub = p.add_subparsers(dest="queue_command", metavar="ACTION", required=True)

    add = qsub.add_parser("add", parents=[common], help="queue episodes of a series (by key)")
    add.add_argument("key", help="series key, e.g. attack-on-titan")
    add.add_argument("--season", type=int, help="season number (0 = movies); default 1 with --episodes")
    add.add_argument("--episodes", help="episode numbers, e.g. 1-5,7")
    add.add_argument("--missing", action="store_true", help="only episodes missing in the library")
    add.add_argument("--priority", choices=("high", "normal", "low"), default="normal")
    add.add_argument("--language", choices=("ger-dub", "ger-sub", "eng-sub", "eng-dub"))
    add.add_argument("--json", action="store_true", help="print the API answer as JSON")
    add.set_defaults(func=_guard(_add))

    ls = qsub.add_parser("list", parents=[common], help="show the queue")
    ls.add_argument("--json", action="store_true", help="print the QueueStatus JSON")
    ls.set_defaults(func=_guard(_list))

    for name, text in (
        ("start", "start taking items (also resumes a paused queue)"),
        ("stop", "stop; active downloads go back to pending, partial data kept"),
        ("pause", "suspend active downloads; nothing new starts"),
        ("resume", "continue paused downloads"),
    ):
        qsub.add_parser(name, parents=[common], help=text).set_defaults(func=_guard(_action(name)))

    retry = qsub.add_parser("retry", parents=[common], help="failed items back to pending (all, or IDs)")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID")
    retry.set_defaults(func=_guard(_retry))

    clear = qsub.add_parser("clear", parents=[common], help="remove completed items from the list")
    clear.set_defaults(func=_guard(_clear))

    remove = qsub.add_parser("remove", parents=[common], help="cancel and remove one item")
    remove.add_argument("id", type=int)
    remove.set_defaults(func=_guard(_remove))
