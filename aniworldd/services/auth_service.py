"""The single master password, login tokens (JWT) and API keys.

Why it is built this way:
- bcrypt is slow on purpose, so every hash/check runs in a worker thread (`asyncio.to_thread`): a login must
  never stall progress events or other requests. The password is SHA-256'd first (bcrypt_sha256 style) so
  bcrypt's 72-byte limit never truncates or rejects a long passphrase.
- Tokens are HS256 JWTs signed with a random secret generated on first start (0600 in the data dir). Each
  carries a `jti` recorded as a UserSession row, so logout revokes exactly that token, also after a restart.
- A `pwv` (password version) claim ties tokens to the password they were issued under: `aniworldd
  set-password` (another process) bumps the version in auth.json and every older token stops working.
- API keys (header X-Api-Key, as in the *arr tools) are long random strings stored only as SHA-256 hashes
  (UserSession kind=api_key:<scope>): high-entropy keys need no slow hash, and lookups stay O(1). A key has
  one scope, `feed` < `read` < `control` < `admin`, so the key in a calendar URL cannot run the queue and no
  key at all can move the data dir, the database, the server or auth (that needs a login token). Keys made
  before scopes existed (kind=api_key) act as `control`: what such keys were made for (scripts, Home
  Assistant) keeps working, and the config, where the takeover was, is out of their reach.
- Setup over HTTP is only for a fresh install. When auth.json is gone, unreadable or corrupt but the data
  dir shows that a password existed (the JWT secret, which is written with the first token, sessions or API
  keys or queue items in the database), setup answers 409 and the owner recovers with `aniworldd
  set-password`: a lost file must not hand the house to whoever asks first.
- Verification is on the hot path of every request, so sessions are cached in memory. A single process is
  the only one that revokes, so there the cache cannot go stale and is trusted for good. With a RedisLink
  (several processes, cluster.redis_url) failed logins are counted in Redis and revocations are announced
  on a pub/sub channel, and a cached session is trusted for `session_trust` seconds only
  (aniworldd/cluster/shared_auth.py says why both).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
import os
import secrets
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bcrypt
import jwt

from aniworldd.db import Store
from aniworldd.db.models import utcnow
from aniworldd.events import iso_timestamp
from aniworldd.fileio import atomic_write, fsync_dir
from aniworldd.services.errors import BadRequest, Conflict, NotFound, ServiceError

if TYPE_CHECKING:
    from aniworldd.cluster.redis_link import RedisLink
    from aniworldd.cluster.shared_auth import RevocationChannel, SharedLoginRateLimiter

log = logging.getLogger(__name__)

AUTH_FILE = "auth.json"
SECRET_FILE = "jwt.secret"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
API_KEY_PREFIX = "awd_"
LOGIN = "login"
API_KEY = "api_key"
#: How often auth.json is re-checked for a password changed by another process (seconds).
RELOAD_INTERVAL = 1.0
#: With a RedisLink: how long a cached session is believed before its row is read again (seconds); the
#: bound on how late a revocation in another process is noticed when its pub/sub message was lost.
SESSION_TRUST = 1.0
#: API key scopes, weakest first; each includes the ones before it.
SCOPES = ("feed", "read", "control", "admin")
#: What a key created without a scope gets (least privilege that is still useful for a script).
DEFAULT_SCOPE = "read"
#: What a key stored before scopes existed (kind "api_key") acts as.
LEGACY_SCOPE = "control"
RECOVERY_HINT = "run `aniworldd set-password` on the server to set the master password again"


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class RecoveryRequired(Conflict):
    """auth.json is missing or broken while the data dir shows a password existed: no setup over HTTP."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"setup is refused: {reason}; {RECOVERY_HINT}", {"reason": reason}, code="recovery_required"
        )


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(message, {"retry_after": self.retry_after})


@dataclass(frozen=True, slots=True)
class Identity:
    """Who made a request: a login token (jti) or an API key (id)."""

    kind: str  # login | api_key
    jti: str
    session_id: int | None
    expires_at: datetime | None  # aware UTC; None for API keys
    name: str | None = None
    scope: str | None = None  # API keys: one of SCOPES
    pwv: Any = None  # login tokens: the password version they were issued under


def scope_allows(scope: str | None, needed: str) -> bool:
    """Whether a key of `scope` may do what needs `needed` (scopes include the weaker ones)."""
    if scope not in SCOPES or needed not in SCOPES:
        return False
    return SCOPES.index(scope) >= SCOPES.index(needed)


def _scope_of(kind: str) -> str:
    """The scope in a session kind: "api_key:read" -> read; "api_key" (made before scopes) -> control."""
    _, sep, scope = kind.partition(":")
    return scope if sep and scope in SCOPES else LEGACY_SCOPE


def _is_api_key(kind: str) -> bool:
    return kind == API_KEY or kind.startswith(API_KEY + ":")


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password(password: str, rounds: int = 12) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def check_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), hashed.encode("ascii"))
    except ValueError:  # a corrupt hash is a failed check, not a crash
        return False


def validate_password(password: Any) -> str:
    if not isinstance(password, str):
        raise BadRequest("password must be a string", {"field": "password"})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters long", {"field": "password"}
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadRequest(
            f"password must be at most {MAX_PASSWORD_LENGTH} characters long", {"field": "password"}
        )
    if not password.strip():
        raise BadRequest("password must not be blank", {"field": "password"})
    return password


def _to_aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class PasswordFile:
    """auth.json in the data dir: {"password_hash", "scheme", "version", "updated_at"} (0600).

    Usable without an event loop, so `aniworldd set-password` shares it with the daemon.
    """

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / AUTH_FILE
        self._lock = threading.Lock()

    def load(self) -> tuple[dict, str | None]:
        """(document, problem): problem is None when a password hash is there, else "missing", "unreadable",
        "corrupt" or "empty" (the file exists but holds no hash)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, "missing"
        except OSError as exc:
            log.error("cannot read %s: %s; the master password cannot be checked", self.path, exc)
            return {}, "unreadable"
        except (ValueError, RecursionError) as exc:
            log.error("%s is corrupt: %s; the master password cannot be checked", self.path, exc)
            return {}, "corrupt"
        if not isinstance(data, dict):
            log.error("%s is corrupt: not a JSON object", self.path)
            return {}, "corrupt"
        if not isinstance(data.get("password_hash"), str) or not data["password_hash"]:
            return data, "empty"
        return data, None

    def read(self) -> dict:
        return self.load()[0]

    def signature(self) -> tuple[int, int, int] | None:
        """Changes whenever the file is replaced (mtime, inode, size): cheap to poll."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_ino, st.st_size

    def mtime(self) -> float | None:
        sig = self.signature()
        return None if sig is None else sig[0] / 1e9

    def write_hash(self, password_hash: str) -> dict:
        with self._lock:
            previous, problem = self.load()
            old = previous.get("version") if problem is None else None
            if isinstance(old, int) and not isinstance(old, bool):
                version = old + 1
            else:
                # No trustworthy previous version (first start, or recovery after the file was lost): a
                # counter restarting at 1 would make tokens of a lost password valid again, so take the
                # clock in microseconds: past any counter a lost file can have held, and never the same
                # twice (versions are only compared for equality).
                version = max(1, time.time_ns() // 1000)
            doc = {
                "scheme": "bcrypt-sha256",
                "password_hash": password_hash,
                "version": version,
                "updated_at": iso_timestamp(),
            }
            atomic_write(self.path, json.dumps(doc, indent=2).encode("utf-8"))
            return doc

    def set_password(self, password: str, rounds: int = 12) -> dict:
        return self.write_hash(hash_password(validate_password(password), rounds))


def load_secret(data_dir: str | Path) -> bytes | None:
    """The JWT signing secret if one was generated (None before the first token; too short counts as none)."""
    path = Path(data_dir) / SECRET_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.error("cannot read %s: %s", path, exc)
        return None
    if len(text) < 64:
        log.warning("%s is too short; a new secret will be generated (existing tokens become invalid)", path)
        return None
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("%s was readable by others; permissions reset to 0600", path)
    return text.encode("ascii")


def load_or_create_secret(data_dir: str | Path) -> bytes:
    """The JWT signing secret; generated once (64 random bytes, hex) and kept 0600.

    Generated with the first token rather than at start, so its presence tells that someone once logged in
    on this data dir (evidence that refuses setup when auth.json is lost).
    """
    found = load_secret(data_dir)
    if found is not None:
        return found
    path = Path(data_dir) / SECRET_FILE
    secret = secrets.token_hex(64).encode("ascii")
    if _create_exclusive(path, secret):
        return secret
    found = load_secret(data_dir)  # another process of the cluster issued the first token at the same time
    if found is not None:
        return found
    atomic_write(path, secret)  # what was there is unusable (too short): replaced, as it always was
    return secret


def _create_exclusive(path: Path, data: bytes) -> bool:
    """Write `data` to `path` unless something is there already; False then.

    Processes sharing the data dir may issue their first token at the same moment: with a plain replace
    each would keep its own secret and the others' tokens would fail. A complete temp file is hard-linked
    into place, which fails when the name exists, so readers never see half a secret. On a file system
    without hard links the last writer wins, as before.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


class LoginRateLimiter:
    """Sliding window of failed attempts per client address, and one across all clients.

    An attempt is counted when it starts and forgiven when it succeeds, so a burst of parallel guesses
    cannot slip through while the slow bcrypt checks are still running. The global window caps what an
    attacker gets by rotating addresses (an IPv6 /64, a botnet, a trusted proxy forwarding whatever it is
    told): at most `global_attempts` guesses per window in total. The price is that such an attack also
    locks the owner out of new logins for a window; tokens and API keys already issued keep working, and
    `aniworldd set-password` works on the server.
    """

    MAX_CLIENTS = 10_000

    def __init__(
        self,
        attempts: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        global_attempts: int | None = None,
    ) -> None:
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self.global_attempts = global_attempts
        self._failures: dict[str, deque[float]] = {}
        self._global: deque[float] = deque()

    def _prune(self, client: str, now: float) -> deque[float]:
        q = self._failures.get(client)
        if q is None:
            if len(self._failures) >= self.MAX_CLIENTS:
                self._evict(now)
            q = self._failures[client] = deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def _evict(self, now: float) -> None:
        for name in [c for c, q in self._failures.items() if not q or q[-1] <= now - self.window]:
            del self._failures[name]
        while len(self._failures) >= self.MAX_CLIENTS:  # all recent: forget the oldest client
            del self._failures[next(iter(self._failures))]

    def retry_after(self, client: str) -> float | None:
        now = self.clock()
        q = self._prune(client, now)
        if len(q) >= self.attempts:
            return q[0] + self.window - now
        return None

    def _global_wait(self, now: float) -> float | None:
        q = self._global
        while q and q[0] <= now - self.window:
            q.popleft()
        if self.global_attempts is not None and len(q) >= self.global_attempts:
            return q[0] + self.window - now
        return None

    def begin(self, client: str) -> float:
        """Count an attempt; raise RateLimited when the client, or everybody together, is over the limit."""
        wait = self.retry_after(client)
        if wait is not None:
            raise RateLimited("too many failed login attempts; try again later", wait)
        stamp = self.clock()
        wait = self._global_wait(stamp)
        if wait is not None:
            log.warning(
                "login refused for %s: %d failed logins on this server within the window",
                client,
                len(self._global),
            )
            raise RateLimited("too many failed login attempts on this server; try again later", wait)
        self._failures[client].append(stamp)
        self._global.append(stamp)
        return stamp

    def succeed(self, client: str, stamp: float) -> None:
        try:
            self._global.remove(stamp)
        except ValueError:
            pass
        q = self._failures.get(client)
        if q is not None:
            try:
                q.remove(stamp)
            except ValueError:
                pass
            if not q:
                del self._failures[client]


@dataclass(slots=True)
class _CachedSession:
    session_id: int
    kind: str
    revoked: bool
    expires_at: datetime | None
    name: str | None
    last_used: float = 0.0
    checked: float = 0.0  # time.monotonic() of the last database read


class AuthService:
    def __init__(
        self,
        store: Store,
        data_dir: str | Path,
        token_ttl: float = 86400.0,
        login_attempts: int = 5,
        login_window: float = 300.0,
        api_keys_enabled: bool = True,
        bcrypt_rounds: int = 12,
        login_global_attempts: int | None = 50,
        link: RedisLink | None = None,
        session_trust: float | None = None,
    ) -> None:
        """`link`: the process's RedisLink when several processes share the data dir and the database;
        `session_trust`: seconds a cached session is believed (default SESSION_TRUST with a link, for ever
        without one). Call `start()` once the loop runs and `close()` on the way out."""
        self.store = store
        self.data_dir = Path(data_dir)
        self.token_ttl = float(token_ttl)
        self.api_keys_enabled = api_keys_enabled
        self.bcrypt_rounds = bcrypt_rounds
        self.passwords = PasswordFile(self.data_dir)
        self.limiter = LoginRateLimiter(login_attempts, login_window, global_attempts=login_global_attempts)
        self._secret: bytes | None = load_secret(self.data_dir)
        self._state, self._state_problem = self.passwords.load()
        self._state_sig = self.passwords.signature()
        self._state_checked = time.monotonic()
        self._sessions: dict[str, _CachedSession] = {}
        self._verified: dict[str, tuple[str, int, Any]] = {}
        self._setup_lock = asyncio.Lock()
        self.reload_interval = RELOAD_INTERVAL
        self._tasks: set[asyncio.Task] = set()
        self.link = link
        self.session_trust = (
            float(session_trust) if session_trust is not None else SESSION_TRUST if link else math.inf
        )
        self.shared_limiter: SharedLoginRateLimiter | None = None
        self.revocations: RevocationChannel | None = None
        if link is not None:
            from aniworldd.cluster.shared_auth import RevocationChannel, SharedLoginRateLimiter

            self.shared_limiter = SharedLoginRateLimiter(link, self.limiter)
            self.revocations = RevocationChannel(link, self._mark_revoked, self._resync_revoked)

    @classmethod
    def from_config(
        cls, store: Store, config: dict, link: RedisLink | None = None, **kwargs: Any
    ) -> AuthService:
        auth = config["auth"]
        return cls(
            store,
            config["data_dir"],
            link=link,
            token_ttl=auth["token_ttl"],
            login_attempts=auth["login_rate_limit"]["attempts"],
            login_window=auth["login_rate_limit"]["window"],
            login_global_attempts=auth["login_rate_limit"].get("global_attempts", 50),
            api_keys_enabled=auth["api_keys_enabled"],
            **kwargs,
        )

    # --- password state -------------------------------------------------------------------------------

    def _password_state(self, max_age: float | None = None) -> dict:
        """auth.json, re-read when another process (set-password) changed it; checked once a second at most
        (`max_age`: sooner, for the WebSocket revocation sweep)."""
        now = time.monotonic()
        if now - self._state_checked >= (self.reload_interval if max_age is None else max_age):
            self._state_checked = now
            sig = self.passwords.signature()
            if sig != self._state_sig:
                self._state_sig = sig
                self._state, self._state_problem = self.passwords.load()
        return self._state

    def _reload_password_state(self) -> None:
        self._state_sig = self.passwords.signature()
        self._state_checked = time.monotonic()
        self._state, self._state_problem = self.passwords.load()

    def is_configured(self) -> bool:
        self._password_state()
        return self._state_problem is None

    async def setup_blocker(self) -> str | None:
        """Why setup over HTTP is refused although no password is usable, or None on a fresh install.

        Fail-closed: any trace of an earlier owner counts. Series rows do not: the first library scan of a
        fresh install writes them before anybody could have set a password.
        """
        self._password_state()
        if self._state_problem in ("unreadable", "corrupt", "empty"):
            return f"{AUTH_FILE} in the data dir is {self._state_problem}"
        if (self.data_dir / SECRET_FILE).exists():
            return f"{AUTH_FILE} is missing but {SECRET_FILE} shows a password was set before"

        def used() -> bool:
            e = self.store.e
            return e.UserSession.select().exists() or e.DownloadQueueItem.select().exists()

        if await self.store.run(used):
            return f"{AUTH_FILE} is missing but the database holds sessions, API keys or queue items"
        return None

    @property
    def password_version(self) -> int:
        return int(self._password_state().get("version") or 0)

    async def bootstrap(self, initial_password: str | None) -> bool:
        """First start: take the password from ANIWORLDD_MASTER_PASSWORD when none is set. True if set."""
        if not initial_password:
            return False
        if self.is_configured():
            log.info("ANIWORLDD_MASTER_PASSWORD ignored: a master password is already set")
            return False
        if self._state_problem != "missing":  # the environment is the owner's: it may replace a broken file
            log.warning("%s is %s; replaced by ANIWORLDD_MASTER_PASSWORD", AUTH_FILE, self._state_problem)
        try:
            await self._set_password(initial_password)
        except OSError as exc:
            log.error("cannot write %s: %s; %s", self.passwords.path, exc, RECOVERY_HINT)
            return False
        log.info("master password set from ANIWORLDD_MASTER_PASSWORD")
        return True

    async def _set_password(self, password: str) -> None:
        validate_password(password)
        hashed = await asyncio.to_thread(hash_password, password, self.bcrypt_rounds)
        await asyncio.to_thread(self.passwords.write_hash, hashed)
        self._reload_password_state()

    async def setup(self, password: str, client: str | None = None) -> dict:
        """POST /api/auth/setup: only while no password is set; logs the caller in right away."""
        validate_password(password)
        async with self._setup_lock:
            self._reload_password_state()
            if self.is_configured():
                raise Conflict("a master password is already set", code="already_configured")
            reason = await self.setup_blocker()
            if reason is not None:
                log.warning("setup refused for %s: %s", client or "unknown", reason)
                raise RecoveryRequired(reason)
            await self._set_password(password)
        return await self._issue_token(client)

    # --- login / logout / verify ----------------------------------------------------------------------

    async def login(self, password: str, client: str = "unknown") -> dict:
        if not self.is_configured():
            reason = await self.setup_blocker()
            if reason is not None:
                raise Conflict(
                    f"the master password cannot be checked: {reason}; {RECOVERY_HINT}",
                    {"reason": reason},
                    code="recovery_required",
                )
            raise Conflict("no master password is set yet; use POST /api/auth/setup", code="setup_required")
        shared = self.shared_limiter
        stamp = await shared.begin(client) if shared is not None else self.limiter.begin(client)
        hashed = self._password_state().get("password_hash", "")
        ok = await asyncio.to_thread(check_password, password if isinstance(password, str) else "", hashed)
        if not ok:
            log.warning("failed login from %s", client)
            raise Unauthorized("wrong password", code="invalid_credentials")
        if shared is not None:
            await shared.succeed(client, stamp)
        else:
            self.limiter.succeed(client, stamp)
        return await self._issue_token(client)

    async def _issue_token(self, client: str | None) -> dict:
        now = datetime.now(UTC).replace(microsecond=0)
        expires = now + timedelta(seconds=self.token_ttl)
        jti = secrets.token_urlsafe(18)
        claims = {
            "sub": "admin",
            "jti": jti,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "pwv": self.password_version,
        }
        if self._secret is None:
            self._secret = await asyncio.to_thread(load_or_create_secret, self.data_dir)
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        naive_exp = expires.replace(tzinfo=None)

        def create() -> int:
            self._purge_expired()
            row = self.store.e.UserSession(
                jti=jti, kind=LOGIN, client=(client or "")[:200], expires_at=naive_exp
            )
            row.flush()
            return row.id

        session_id = await self.store.run(create)
        self._sessions[jti] = _CachedSession(
            session_id, LOGIN, False, expires, None, checked=time.monotonic()
        )
        return {"access_token": token, "token_type": "bearer", "expires_at": iso_timestamp(expires)}

    def _purge_expired(self) -> None:
        """Runs inside a db_session: forget login sessions that expired more than a day ago."""
        cutoff = utcnow() - timedelta(days=1)
        self.store.e.UserSession.select(
            lambda s: s.kind == LOGIN and s.expires_at is not None and s.expires_at < cutoff
        ).delete(bulk=True)

    async def _session(self, jti: str) -> _CachedSession | None:
        """The session of `jti`, from the cache while it is trusted (revoked is final: trusted for good)."""
        cached = self._sessions.get(jti)
        now = time.monotonic()
        if cached is not None and (cached.revoked or now - cached.checked < self.session_trust):
            return cached
        if cached is not None:
            cached.checked = now  # concurrent requests keep the cached answer while this one re-reads

        def load() -> tuple | None:
            row = self.store.e.UserSession.get(jti=jti)
            if row is None:
                return None
            return row.id, row.kind, row.revoked, row.expires_at, row.client

        try:
            found = await self.store.run(load)
        except Exception:
            if cached is None:
                raise
            # A re-read that fails keeps what was true a moment ago (as a single process always does);
            # a revocation still arrives through the channel.
            log.debug("cannot re-read session %s; the cached state stays", cached.session_id, exc_info=True)
            return cached
        if found is None:
            self._sessions.pop(jti, None)
            return None
        if cached is not None:  # refresh in place: last_used (API key use, written once a minute) stays
            cached.kind, cached.revoked, cached.name = found[1], found[2], found[4]
            cached.expires_at = _to_aware(found[3])
            return cached
        if len(self._sessions) > 50_000:
            self._sessions.clear()
        cached = _CachedSession(found[0], found[1], found[2], _to_aware(found[3]), found[4], checked=now)
        self._sessions[jti] = cached
        return cached

    def _mark_revoked(self, jti: str) -> None:
        """A revocation seen elsewhere (the channel, a re-sync): refuse the jti from now on."""
        cached = self._sessions.get(jti)
        if cached is not None:
            cached.revoked = True

    async def _resync_revoked(self) -> int:
        """Re-read which cached sessions were revoked (messages may have been missed); returns how many."""
        live = {jti for jti, s in self._sessions.items() if not s.revoked}
        if not live:
            return 0

        def revoked() -> list[str]:
            return [r.jti for r in self.store.e.UserSession.select(lambda s: s.revoked)]

        found = [jti for jti in await self.store.run(revoked) if jti in live]
        for jti in found:
            self._mark_revoked(jti)
        return len(found)

    def _announce(self, jti: str) -> None:
        """Tell the other processes, in the background: a logout must not wait for an unreachable Redis
        (the database row is already written; their trust time covers a lost message)."""
        if self.revocations is not None:
            self._spawn(self.revocations.publish(jti))

    def _decode(self, token: str) -> tuple[str, int, Any]:
        """(jti, exp, pwv) of a correctly signed token; verified signatures are remembered (hot path)."""
        known = self._verified.get(token)
        if known is not None:
            if known[1] <= time.time():
                raise Unauthorized("token expired", code="token_expired")
            return known
        if self._secret is None:  # none at start; another process sharing the data dir may have made it
            self._secret = load_secret(self.data_dir)
        if self._secret is None:  # no token was ever issued on this data dir
            raise Unauthorized("invalid token", code="invalid_token")
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"require": ["exp", "iat", "jti"]}
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid token", code="invalid_token") from None
        decoded = (str(claims["jti"]), int(claims["exp"]), claims.get("pwv"))
        if len(self._verified) >= 4096:
            self._verified.clear()
        self._verified[token] = decoded
        return decoded

    async def verify_token(self, token: str) -> Identity:
        """Signature, expiry, password version and revocation; raises Unauthorized with the reason."""
        jti, exp, pwv = self._decode(token)
        if pwv != self.password_version:
            raise Unauthorized("token was issued before the password changed", code="token_revoked")
        session = await self._session(jti)
        if session is None or session.kind != LOGIN:
            raise Unauthorized("unknown session", code="invalid_token")
        if session.revoked:
            raise Unauthorized("token revoked (logged out)", code="token_revoked")
        expires = session.expires_at or datetime.fromtimestamp(exp, UTC)
        if expires <= datetime.now(UTC):
            raise Unauthorized("token expired", code="token_expired")
        return Identity(LOGIN, jti, session.session_id, expires, pwv=pwv)

    async def logout(self, identity: Identity) -> None:
        if identity.kind != LOGIN:
            raise BadRequest("logout ends a login session; revoke API keys under /api/auth/api-keys")
        await self._revoke(identity.jti)

    async def _revoke(self, jti: str) -> bool:
        def revoke() -> bool:
            row = self.store.e.UserSession.get(jti=jti)
            if row is None or row.revoked:
                return False
            row.revoked = True
            row.revoked_at = utcnow()
            return True

        changed = await self.store.run(revoke)
        self._mark_revoked(jti)
        if changed:
            self._announce(jti)
        return changed

    # --- API keys -------------------------------------------------------------------------------------

    @staticmethod
    def _api_key_jti(key: str) -> str:
        return "ak:" + hashlib.sha256(key.encode("utf-8")).hexdigest()

    def _require_api_keys(self) -> None:
        if not self.api_keys_enabled:
            raise Forbidden("API keys are disabled (auth.api_keys_enabled)", code="api_keys_disabled")

    async def verify_api_key(self, key: str) -> Identity:
        self._require_api_keys()
        if not key.startswith(API_KEY_PREFIX) or len(key) > 200:
            raise Unauthorized("invalid API key", code="invalid_api_key")
        jti = self._api_key_jti(key)
        session = await self._session(jti)
        if session is None or not _is_api_key(session.kind) or session.revoked:
            raise Unauthorized("invalid API key", code="invalid_api_key")
        now = time.monotonic()
        if now - session.last_used >= 60:  # last_used_at is informative; write it at most once a minute
            session.last_used = now
            self._spawn(self._touch(session.session_id))
        return Identity(API_KEY, jti, session.session_id, None, session.name, scope=_scope_of(session.kind))

    def revoked_reason(self, identity: Identity) -> str | None:
        """Why a credential checked earlier no longer holds, or None; memory and one stat, no database.

        For connections that outlive the request that opened them (WebSockets): a password changed by
        `aniworldd set-password` in another process, a logout, a revoked key, an expired token. In a
        cluster the logouts and revoked keys of other processes reach the cache through the revocation
        channel (and its database re-sync while Redis is away).
        """
        if identity.kind == LOGIN:
            self._password_state(max_age=0.2)  # one stat per sweep, however many sockets
            if self._state_problem is not None or identity.pwv != self.password_version:
                return "password changed"
            if identity.expires_at is not None and identity.expires_at <= datetime.now(UTC):
                return "token expired"
        elif not self.api_keys_enabled:
            return "API keys disabled"
        cached = self._sessions.get(identity.jti)
        if cached is not None and cached.revoked:
            return "logged out" if identity.kind == LOGIN else "API key revoked"
        return None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _touch(self, session_id: int) -> None:
        def touch() -> None:
            row = self.store.e.UserSession.get(id=session_id)
            if row is not None:
                row.last_used_at = utcnow()

        try:
            await self.store.run(touch)
        except Exception:  # informative only; never fail a request over it
            log.debug("could not record API key use", exc_info=True)

    async def create_api_key(self, name: str, scope: str = DEFAULT_SCOPE) -> dict:
        self._require_api_keys()
        if scope not in SCOPES:
            raise BadRequest(
                f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}", {"field": "scope"}
            )
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        jti = self._api_key_jti(key)

        def create() -> dict:
            row = self.store.e.UserSession(jti=jti, kind=f"{API_KEY}:{scope}", client=name)
            row.flush()
            return self._api_key_dict(row)

        info = await self.store.run(create)
        return {**info, "key": key}

    @staticmethod
    def _api_key_dict(row: Any) -> dict:
        return {
            "id": row.id,
            "name": row.client or "",
            "scope": _scope_of(row.kind),
            "created_at": iso_timestamp(_to_aware(row.created_at)),
            "last_used_at": iso_timestamp(_to_aware(row.last_used_at)) if row.last_used_at else None,
        }

    async def list_api_keys(self) -> list[dict]:
        self._require_api_keys()

        legacy, prefix = API_KEY, API_KEY + ":"

        def q() -> list[dict]:
            rows = self.store.e.UserSession.select(
                lambda s: (s.kind == legacy or s.kind.startswith(prefix)) and not s.revoked
            ).order_by(lambda s: s.id)
            return [self._api_key_dict(r) for r in rows]

        return await self.store.run(q)

    async def revoke_api_key(self, key_id: int) -> str:
        """Revoke; returns the key's session id (jti) so open connections made with it can be closed."""
        self._require_api_keys()

        def q() -> str | None:
            row = self.store.e.UserSession.get(id=key_id)
            if row is None or not _is_api_key(row.kind) or row.revoked:
                return None
            row.revoked = True
            row.revoked_at = utcnow()
            return row.jti

        jti = await self.store.run(q)
        if jti is None:
            raise NotFound(f"no API key with id {key_id}", {"id": key_id})
        self._mark_revoked(jti)
        self._announce(jti)
        return jti

    # --- status ---------------------------------------------------------------------------------------

    def status(self, identity: Identity | None) -> dict:
        return {
            "configured": self.is_configured(),
            "authenticated": identity is not None,
            "method": None if identity is None else ("bearer" if identity.kind == LOGIN else "api_key"),
            "expires_at": iso_timestamp(identity.expires_at) if identity and identity.expires_at else None,
            "api_keys_enabled": self.api_keys_enabled,
        }

    async def describe(self, identity: Identity | None) -> dict:
        """GET /api/auth/status: status() plus whether setup is open, and the key's scope."""
        answer = self.status(identity)
        answer["setup_allowed"] = not answer["configured"] and await self.setup_blocker() is None
        if identity is not None and identity.kind == API_KEY:
            answer["scope"] = identity.scope
        return answer

    async def start(self) -> None:
        """With a link: listen for sessions revoked by other processes. Without one: nothing to do."""
        if self.revocations is not None:
            self.revocations.start()

    async def close(self) -> None:
        """Stops the listener and pending touches; the link itself belongs to whoever built it."""
        if self.revocations is not None:
            await self.revocations.close()
        for task in list(self._tasks):
            task.cancel()
