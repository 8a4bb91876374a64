"""`aniworldd login`, `aniworldd logout` and `aniworldd api-key create|list|revoke`.

`login` asks for the master password (on the terminal, or one line of stdin with `--stdin`), logs in through
the RUNNING daemon's API and stores the token for the CLI (aniworldd/commands/token_store.py); the `queue`
commands then use it when no `--token` / `ANIWORLDD_TOKEN` / `ANIWORLDD_API_KEY` is given. The password never
touches the disk and the CLI never reads the daemon's auth.json: the daemon alone checks passwords, so its
rate limit and password version apply to the CLI as to the browser.

API keys can only be managed with a login token (the API refuses API keys there), so `api-key` uses
`--token` / `ANIWORLDD_TOKEN` when it is a login token, else the stored one.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from aniworldd.commands.queue import CliError, _guard, base_url, call, token_headers
from aniworldd.commands.token_store import delete_token, read_token, token_path, write_token
from aniworldd.services.auth_service import SCOPES


def _read_password(use_stdin: bool) -> str:
    if use_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = getpass.getpass("Master password: ")
        except EOFError:
            raise CliError("no password given (on a pipe use --stdin)") from None
    if not password:
        raise CliError("no password given; nothing changed")
    return password


def _login(args: argparse.Namespace) -> int:
    password = _read_password(args.stdin)
    answer = call(args, "POST", "/api/auth/login", {"password": password}, headers={}) or {}
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise CliError("the daemon answered without a token")
    try:
        path = write_token(base_url(args), token, answer.get("expires_at"))
    except OSError as exc:
        raise CliError(f"cannot store the token in {token_path()}: {exc.strerror or exc}") from None
    until = f" (valid until {answer['expires_at']})" if answer.get("expires_at") else ""
    print(f"logged in; token stored in {path}{until}")
    return 0


def _logout(args: argparse.Namespace) -> int:
    url = base_url(args)
    token = read_token(url)
    if token is None:
        print(f"not logged in to {url} (no token for it in {token_path()})")
        return 0
    revoked = True
    try:
        call(args, "POST", "/api/auth/logout", headers=token_headers(token))
    except CliError as exc:  # expired, revoked or daemon down: forgetting it locally is still right
        revoked = False
        print(f"warning: the daemon did not revoke the token: {exc}", file=sys.stderr)
    delete_token(url)
    print("logged out; the token is revoked" if revoked else "logged out; the token is forgotten here")
    return 0


def _login_headers(args: argparse.Namespace) -> dict[str, str]:
    """A login token for the API key routes: --token / $ANIWORLDD_TOKEN when it is a JWT, else the
    stored one."""
    given = args.token or os.environ.get("ANIWORLDD_TOKEN")
    if given and given.count(".") == 2:
        return token_headers(given)
    stored = read_token(base_url(args))
    if stored:
        return token_headers(stored)
    raise CliError(f"managing API keys needs a login token: run `aniworldd login` for {base_url(args)} first")


def _key_table(keys: list[dict[str, Any]]) -> str:
    head = ["ID", "NAME", "SCOPE", "CREATED", "LAST USED"]
    rows = [
        [
            str(k.get("id")),
            str(k.get("name") or ""),
            str(k.get("scope") or ""),
            str(k.get("created_at") or "-"),
            str(k.get("last_used_at") or "never"),
        ]
        for k in keys
    ]
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(5)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [head, *rows]
    )


def _key_create(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"name": args.name}
    if args.scope:
        payload["scope"] = args.scope
    created = call(args, "POST", "/api/auth/api-keys", payload, headers=_login_headers(args)) or {}
    if args.json:
        print(json.dumps(created, indent=2))
        return 0
    # The note to stderr and only the key to stdout, so `KEY=$(aniworldd api-key create ha)` works.
    print(
        f"API key {created.get('id')} {created.get('name')!r} (scope {created.get('scope')}); "
        "shown only once, send it as the X-Api-Key header:",
        file=sys.stderr,
    )
    print(created.get("key") or "")
    return 0


def _key_list(args: argparse.Namespace) -> int:
    keys = call(args, "GET", "/api/auth/api-keys", headers=_login_headers(args)) or []
    if args.json:
        print(json.dumps(keys, indent=2))
    elif not keys:
        print("no API keys")
    else:
        print(_key_table(keys))
    return 0


def _key_id(args: argparse.Namespace, headers: dict[str, str]) -> int:
    """The ID to revoke: given as such, or the one key with that name (names are what people remember)."""
    if args.key.isdigit():
        return int(args.key)
    keys = call(args, "GET", "/api/auth/api-keys", headers=headers) or []
    ids = [k.get("id") for k in keys if k.get("name") == args.key]
    if not ids:
        raise CliError(f"no API key named {args.key!r} (`aniworldd api-key list` shows them)")
    if len(ids) > 1:
        raise CliError(f"{len(ids)} API keys are named {args.key!r}: revoke one by its ID ({ids})")
    return int(ids[0])


def _key_revoke(args: argparse.Namespace) -> int:
    headers = _login_headers(args)
    key_id = _key_id(args, headers)
    answer = call(args, "DELETE", f"/api/auth/api-keys/{key_id}", headers=headers) or {}
    print(answer.get("message") or f"API key {key_id} revoked")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    daemon = argparse.ArgumentParser(add_help=False)
    daemon.add_argument("--url", help="daemon base URL (default: from the config's server.host/port)")
    daemon.add_argument(
        "--config", "-c", help="config file to read the address from (default: $ANIWORLDD_CONFIG)"
    )

    p = sub.add_parser("login", parents=[daemon], help="log in to the running daemon; keeps the token")
    p.add_argument("--stdin", action="store_true", help="read the password from one line of stdin (scripts)")
    p.set_defaults(func=_guard(_login))

    p = sub.add_parser("logout", parents=[daemon], help="revoke and forget the token `login` stored")
    p.set_defaults(func=_guard(_logout))

    with_token = argparse.ArgumentParser(add_help=False, parents=[daemon])
    with_token.add_argument("--token", help="login token (default: $ANIWORLDD_TOKEN, else the stored one)")

    p = sub.add_parser("api-key", help="API keys for scripts (needs `aniworldd login`)")
    ksub = p.add_subparsers(dest="api_key_command", metavar="ACTION", required=True)
    create = ksub.add_parser("create", parents=[with_token], help="create a key; prints it once")
    create.add_argument("name", help="what the key is for, e.g. home-assistant")
    create.add_argument("--scope", choices=SCOPES, help="what the key may do (default: read)")
    create.add_argument("--json", action="store_true", help="print the API answer as JSON")
    create.set_defaults(func=_guard(_key_create))
    ls = ksub.add_parser("list", parents=[with_token], help="list keys (never the keys themselves)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=_guard(_key_list))
    revoke = ksub.add_parser("revoke", parents=[with_token], help="revoke a key by its ID or name")
    revoke.add_argument("key", metavar="ID|NAME", help="the key's ID, or its name when only one key has it")
    revoke.set_defaults(func=_guard(_key_revoke))
