"""One YAML file in, one validated nested dict out.

Errors carry the file, the line and the dotted path (`config.yaml:12 downloads.max_concurrent: expected int`)
because a NAS user edits this file by hand over SSH and needs to be pointed at the exact spot.
Every section has defaults, so an empty file is a valid config.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml

from aniworldd.core.forwarded import parse_networks
from aniworldd.net.dns import DEFAULT_DOH_URLS
from aniworldd.net.proxy import validate_proxy

ENV_PREFIX = "ANIWORLDD_"
#: Environment variables with our prefix that are not config keys.
ENV_RESERVED = {"MASTER_PASSWORD", "CONFIG"}

LANGUAGE_CODES = ("ger-dub", "ger-sub", "eng-sub", "eng-dub")
KNOWN_HOSTERS = (
    "VOE",
    "Vidoza",
    "Vidara",
    "Vidmoly",
    "Doodstream",
    "SpeedFiles",
    "Luluvdo",
    "Streamtape",
    "Filemoon",
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
WEBHOOK_EVENTS = ("download_complete", "download_failed", "scan_complete", "new_episodes", "health")
#: Events an Apprise target may ask for (`test` is what the test button sends, always delivered).
NOTIFY_EVENTS = WEBHOOK_EVENTS
#: What an Apprise target gets when it names no events: what a person wants on the phone, not every scan.
APPRISE_EVENTS = ("download_complete", "download_failed", "new_episodes", "health")
DISCOVERY_MODES = ("device", "components")
UPDATE_URL = "https://pypi.org/pypi/aniworldd/json"

DEFAULT_NAMING = "{folder}/Season {season:02d}/{name} - S{season:02d}E{episode:03d} - ({language}).{ext}"
DEFAULT_MOVIE_NAMING = "{folder}/Movies/{name} - Movie {episode:02d} - ({language}).{ext}"

#: Settings a running daemon takes over when the config is saved (DownloadService.apply_settings);
#: every other change needs a restart, and a save answers which ones (`restart_required`).
LIVE_KEYS = frozenset(
    f"downloads.{key}"
    for key in (
        "max_concurrent",
        "max_retries",
        "retry_backoff",
        "min_free_gb",
        "language",
        "hosters",
        "speed_limit",
        "quality",
        "warm_start",
        "hoster_order",
        "hoster_failures_before_cooldown",
        "hoster_cooldown",
        "fragments",
        "hls_downloader",
    )
)

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_RATE_RE = re.compile(r"^\d+(\.\d+)?[KMG]?$", re.IGNORECASE)

#: Longest list (or mapping) any setting may hold: a config is written by hand or by the UI, and a
#: 100,000-entry list is an attack on the validator, not a setting.
LIST_MAX = 64
#: Widest field a naming template may ask for (`{season:02d}` is 2): `{season:200000000d}` would build a
#: 200 MB string on every validation and every file name.
FORMAT_WIDTH_MAX = 10
#: Folders that are never a library root or the data dir: the daemon writes, renames and deletes there.
SYSTEM_DIRS = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/var",
    }
)
#: ... and nothing below these either.
SYSTEM_TREES = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/proc",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
)
_ONE_LINE_RE = r"^[^\x00-\x1f\x7f]+\Z"
_TOPIC_RE = r"^[^#+\s\x00]+\Z"


def Duration(value: Any) -> float:  # noqa: N802 - voluptuous validators read like types
    """Seconds as a number, or a string such as `30s`, `5m`, `6h`, `1d`."""
    if isinstance(value, bool):
        raise vol.Invalid("expected a duration like 30, '30s', '5m', '6h'")
    if isinstance(value, int | float):
        if value < 0:
            raise vol.Invalid("expected a positive duration")
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    raise vol.Invalid("expected a duration like 30, '30s', '5m', '6h'")


def Rate(value: Any) -> str | None:  # noqa: N802
    """A yt-dlp --limit-rate value (`500K`, `5M`), or null for no limit."""
    if value is None:
        return None
    text = str(value).strip()
    if not _RATE_RE.match(text):
        raise vol.Invalid("expected a rate like '500K' or '5M'")
    return text


def _template_fields(value: str) -> None:
    """Only plain `{name}` / `{name:spec}` fields with small widths: no attribute or index access
    (`{name.__class__}`), no nested fields in a spec, no width or precision above FORMAT_WIDTH_MAX.
    Checked before the template is ever formatted, so a huge width costs nothing."""
    import string

    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise vol.Invalid(f"invalid naming template: {exc}") from None
    for _text, field, spec, _conversion in parsed:
        if field is None:
            continue
        if not re.fullmatch(r"[a-z_]+", field):
            raise vol.Invalid(f"invalid naming template: {{{field}}} is not a plain field name")
        if spec and ("{" in spec or "}" in spec):
            raise vol.Invalid("invalid naming template: no nested fields in a format spec")
        if any(int(n) > FORMAT_WIDTH_MAX for n in re.findall(r"\d+", spec or "")):
            raise vol.Invalid(f"invalid naming template: widths above {FORMAT_WIDTH_MAX} are not allowed")


def _naming_template(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected a non-empty naming template")
    if "\\" in value or "\x00" in value:
        raise vol.Invalid("naming template: use / as the separator (no backslashes)")
    _template_fields(value)
    sample = {
        "folder": "F",
        "name": "N",
        "season": 1,
        "episode": 1,
        "language": "German Dub",
        "ext": "mp4",
        "title": "T",
        "key": "k",
    }
    try:
        value.format(**sample)
    except (KeyError, IndexError, ValueError) as exc:
        raise vol.Invalid(f"invalid naming template: {exc}") from None
    if value.startswith("/") or ".." in value.split("/"):
        raise vol.Invalid("naming template must stay inside the library root")
    return value


def _not_system_dir(value: Any) -> str:
    """A folder the daemon may write into: not `/`, `/etc` or another system folder (after `..` are
    folded away, so `/srv/../etc` is caught too). Relative paths are resolved later, against the config
    file's folder."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise vol.Invalid("expected a folder path")
    if value.startswith("/"):
        norm = os.path.normpath(value)
        norm = "/" + norm.lstrip("/")  # normpath keeps a leading `//`
        if norm in SYSTEM_DIRS or any(norm.startswith(tree + "/") for tree in SYSTEM_TREES):
            raise vol.Invalid(f"{norm} is a system folder; choose a folder of its own")
    return value


def _capped(schema: Any, maximum: int = LIST_MAX, minimum: int = 0) -> vol.All:
    """A list (or mapping) schema with at most `maximum` entries."""
    return vol.All(vol.Length(min=minimum, max=maximum), schema)


_ROOT_LIST = vol.Schema(_capped([_not_system_dir], LIST_MAX, 1))


def _roots(value: Any) -> list[str] | None:
    """library.roots: null (the default root inside data_dir) or 1..LIST_MAX folders."""
    return None if value is None else _ROOT_LIST(value)


def _url(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        raise vol.Invalid("expected an http(s) URL")
    return value.rstrip("/")


def _apprise_url(value: Any) -> str:
    """An Apprise notification URL (`ntfy://`, `tgram://`, `discord://`, `mailto://` ...), checked by Apprise
    itself so a typo is reported at load time instead of silently never notifying."""
    if not isinstance(value, str) or "://" not in value:
        raise vol.Invalid("expected an Apprise URL like 'ntfy://ntfy.sh/my-topic'")
    try:
        import apprise  # imported only when someone configures a target
    except ImportError:  # pragma: no cover - a dependency; present in every install
        raise vol.Invalid("the apprise package is not installed") from None
    if not apprise.Apprise().add(value):
        raise vol.Invalid(f"not a URL Apprise understands: {value.split('://', 1)[0]}://...")
    return value


def _db_url(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and re.match(r"^(sqlite:///.+|postgres(ql)?://.+)$", value):
        return value
    raise vol.Invalid("expected sqlite:///PATH or postgres://user:password@host:port/db")


def _networks(value: Any) -> list[str]:
    """Addresses or networks (`10.0.0.0/8`) whose X-Forwarded-For is believed."""
    if not isinstance(value, list):
        raise vol.Invalid("expected a list of IP addresses or networks")
    if len(value) > LIST_MAX:
        raise vol.Invalid(f"length of value must be at most {LIST_MAX}")
    try:
        parse_networks(value)
    except ValueError as exc:
        raise vol.Invalid(str(exc)) from None
    return [str(v) for v in value]


def _str_list(allowed: tuple[str, ...] | None = None, min_len: int = 0) -> vol.Schema:
    item = vol.In(allowed, msg=f"expected one of {', '.join(allowed)}") if allowed else str
    return _capped([item], LIST_MAX, min_len)


def _section(schema: dict) -> vol.Schema:
    return vol.Schema(schema, extra=vol.PREVENT_EXTRA)


SERVER = _section(
    {
        vol.Optional("host", default="127.0.0.1"): str,
        vol.Optional("port", default=8080): vol.All(int, vol.Range(min=1, max=65535)),
        vol.Optional("public_url", default=None): vol.Any(None, _url),
        vol.Optional("max_body_bytes", default=1048576): vol.All(int, vol.Range(min=1024)),
        vol.Optional("cors_origins", default=[]): _capped([str]),
        vol.Optional("max_connections", default=4096): vol.All(int, vol.Range(min=16, max=1_000_000)),
        vol.Optional("header_timeout", default=15.0): vol.All(Duration, vol.Range(min=1, max=3600)),
        vol.Optional("trusted_proxies", default=[]): _networks,
    }
)
LIBRARY = _section(
    {
        vol.Optional("roots", default=None): _roots,
        vol.Optional("watch", default=True): bool,
        vol.Optional("watch_debounce", default=0.3): Duration,
        vol.Optional("scan_on_start", default=True): bool,
        vol.Optional("naming", default=DEFAULT_NAMING): _naming_template,
        vol.Optional("movie_naming", default=DEFAULT_MOVIE_NAMING): _naming_template,
        vol.Optional("missing_by_language", default=False): bool,
        vol.Optional("write_nfo", default=True): bool,
    }
)
DOWNLOADS = _section(
    {
        vol.Optional("autostart", default=True): bool,
        vol.Optional("max_concurrent", default=2): vol.All(int, vol.Range(min=1, max=16)),
        vol.Optional("temp_dir", default=None): vol.Any(None, str),
        vol.Optional("language", default=["ger-dub", "ger-sub", "eng-sub"]): _str_list(LANGUAGE_CODES, 1),
        vol.Optional("hosters", default=list(KNOWN_HOSTERS)): _str_list(KNOWN_HOSTERS, 1),
        vol.Optional("quality", default="best"): vol.In(
            ("best", "worst", "360p", "480p", "720p", "1080p"),
            msg="expected best, worst, 360p, 480p, 720p or 1080p",
        ),
        vol.Optional("speed_limit", default=None): Rate,
        vol.Optional("max_retries", default=3): vol.All(int, vol.Range(min=0, max=100)),
        vol.Optional("retry_backoff", default=30.0): Duration,
        vol.Optional("min_free_gb", default=1.0): vol.All(vol.Coerce(float), vol.Range(min=0)),
        vol.Optional("auto_queue", default=False): bool,
        vol.Optional("upgrade_language", default=False): bool,
        vol.Optional("warm_start", default=600.0): Duration,
        vol.Optional("hoster_order", default="adaptive"): vol.In(
            ("fixed", "adaptive"), msg="expected fixed or adaptive"
        ),
        vol.Optional("hoster_failures_before_cooldown", default=3): vol.All(int, vol.Range(min=0, max=100)),
        vol.Optional("hoster_cooldown", default=1800.0): Duration,
        vol.Optional("fragments", default=24): vol.All(int, vol.Range(min=1, max=64)),
        vol.Optional("hls_downloader", default="aniworldd"): vol.In(
            ("aniworldd", "yt-dlp"), msg="expected aniworldd or yt-dlp"
        ),
    }
)


def _url_list(value: Any) -> list[str]:
    """One URL or a list of them (tried in order); always a list afterwards."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise vol.Invalid("expected an http(s) URL or a list of them")
    if len(items) > 16:
        raise vol.Invalid("at most 16 addresses")
    return [_url(item) for item in items]


def _address(value: Any) -> str:
    try:
        return str(ipaddress.ip_address(str(value).strip("[]")))
    except ValueError:
        raise vol.Invalid("expected an IP address") from None


def _host_name(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$", value.lower()):
        raise vol.Invalid("expected a host name")
    return value.lower()


def _proxy_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise vol.Invalid("expected a proxy URL")
    try:
        return validate_proxy(value)
    except ValueError as exc:
        raise vol.Invalid(str(exc)) from None


def _doh_server(value: Any) -> Any:
    if isinstance(value, str):
        if not value.startswith("https://") and not value.startswith("http://"):
            raise vol.Invalid("expected a DoH URL such as https://1.1.1.1/dns-query")
        return _url(value)
    return vol.Schema(
        {vol.Required("url"): _url, vol.Optional("format", default="wire"): vol.In(("wire", "json"))},
        extra=vol.PREVENT_EXTRA,
    )(value)


PROVIDER = _section(
    {
        vol.Optional("aniworld_url", default=["https://aniworld.to"]): _url_list,
        vol.Optional("sto_url", default=["https://serienstream.to", "https://serienstream.cx"]): _url_list,
        vol.Optional("resolve", default={}): _capped(vol.Schema({_host_name: _address})),
        vol.Optional("last_resort", default={"serienstream.to": "186.2.175.5"}): _capped(
            vol.Schema({_host_name: _address})
        ),
        vol.Optional("dns", default="system"): vol.In(("system", "doh"), msg="expected system or doh"),
        vol.Optional("doh_urls", default=list(DEFAULT_DOH_URLS)): _capped([_doh_server], 16, 1),
        vol.Optional("proxy", default=None): _proxy_url,
        vol.Optional("impersonate", default="chrome"): vol.In(
            ("chrome", "off"), msg="expected chrome or off"
        ),
        vol.Optional("ca_file", default=None): vol.Any(None, str),
        vol.Optional("flaresolverr_url", default=None): vol.Any(None, _url),
        vol.Optional("allow_private", default=[]): _networks,
        vol.Optional("challenge_retry", default=900.0): Duration,
        vol.Optional("user_agent", default=None): vol.Any(
            None, vol.All(str, vol.Match(_ONE_LINE_RE, msg="must be one line without control characters"))
        ),
        vol.Optional("timeout", default=20.0): Duration,
        vol.Optional("max_concurrent", default=2): vol.All(int, vol.Range(min=1, max=32)),
        vol.Optional("min_interval", default=0.5): Duration,
        vol.Optional("retries", default=3): vol.All(int, vol.Range(min=0, max=10)),
        vol.Optional("cache_ttl", default=600.0): Duration,
        vol.Optional("refresh_interval", default=21600.0): Duration,
        vol.Optional("refresh_jitter", default=0.1): vol.All(vol.Coerce(float), vol.Range(min=0, max=1)),
    }
)
DATABASE = _section({vol.Optional("url", default=None): _db_url})

#: `cluster.role` / `aniworldd run --role`: all = one process does everything (the default).
ROLES = ("all", "api", "worker")


def _redis_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(r"^(rediss?://[^\s]+|unix:///[^\s]+)$", value):
        raise vol.Invalid("expected redis://host:6379/0, rediss://... or unix:///path/to/redis.sock")
    return value


CLUSTER = _section(
    {
        vol.Optional("redis_url", default=None): _redis_url,
        vol.Optional("role", default="all"): vol.In(ROLES, msg=f"expected one of {', '.join(ROLES)}"),
        vol.Optional("node", default=None): vol.Any(
            None, vol.All(str, vol.Match(r"^[A-Za-z0-9._-]{1,64}$", msg="letters, digits, . _ - (1-64)"))
        ),
        vol.Optional("prefix", default="aniworldd"): vol.All(
            str, vol.Match(r"^[A-Za-z0-9._-]{1,32}$", msg="letters, digits, . _ - (1-32)")
        ),
        vol.Optional("lease", default=30.0): vol.All(Duration, vol.Range(min=3)),
    }
)
AUTH = _section(
    {
        vol.Optional("token_ttl", default=86400.0): Duration,
        vol.Optional("login_rate_limit", default={}): _section(
            {
                vol.Optional("attempts", default=5): vol.All(int, vol.Range(min=1)),
                vol.Optional("window", default=300.0): Duration,
                vol.Optional("global_attempts", default=50): vol.All(int, vol.Range(min=1)),
            }
        ),
        vol.Optional("api_keys_enabled", default=True): bool,
    }
)
MQTT = _section(
    {
        vol.Optional("host", default=None): vol.Any(None, str),
        vol.Optional("port", default=1883): vol.All(int, vol.Range(min=1, max=65535)),
        vol.Optional("username", default=None): vol.Any(None, str),
        vol.Optional("password", default=None): vol.Any(None, str),
        vol.Optional("tls", default={}): _section(
            {
                vol.Optional("enabled", default=False): bool,
                vol.Optional("ca_file", default=None): vol.Any(None, str),
                vol.Optional("insecure", default=False): bool,
            }
        ),
        vol.Optional("client_id", default="aniworldd"): str,
        vol.Optional("base_topic", default="aniworld"): vol.All(
            str, vol.Match(_TOPIC_RE, msg="invalid topic: no spaces, # or + (MQTT wildcards)")
        ),
        vol.Optional("discovery", default=True): bool,
        vol.Optional("discovery_prefix", default="homeassistant"): vol.All(
            str, vol.Match(_TOPIC_RE, msg="invalid topic: no spaces, # or + (MQTT wildcards)")
        ),
        vol.Optional("keepalive", default=60): vol.All(int, vol.Range(min=5)),
        vol.Optional("progress_interval", default=1.0): Duration,
        vol.Optional("discovery_mode", default="device"): vol.In(
            DISCOVERY_MODES, msg=f"expected one of {', '.join(DISCOVERY_MODES)}"
        ),
        vol.Optional("update_check", default=False): bool,
        vol.Optional("update_url", default=UPDATE_URL): _url,
        vol.Optional("update_interval", default=86400.0): vol.All(Duration, vol.Range(min=60)),
    }
)
LOGGING = _section(
    {
        vol.Optional("level", default="INFO"): vol.All(
            vol.Upper, vol.In(LOG_LEVELS, msg=f"expected one of {', '.join(LOG_LEVELS)}")
        ),
    }
)
WEBHOOK = _section(
    {
        vol.Required("url"): _url,
        vol.Optional("events", default=list(WEBHOOK_EVENTS)): _str_list(WEBHOOK_EVENTS),
        vol.Optional("timeout", default=10.0): Duration,
    }
)
APPRISE = _section(
    {
        vol.Required("url"): _apprise_url,
        vol.Optional("events", default=list(APPRISE_EVENTS)): _str_list(NOTIFY_EVENTS),
    }
)
NOTIFICATIONS = _section(
    {
        vol.Optional("webhooks", default=[]): _capped([WEBHOOK]),
        vol.Optional("apprise", default=[]): _capped([APPRISE]),
    }
)

SECTIONS: dict[str, vol.Schema] = {
    "server": SERVER,
    "library": LIBRARY,
    "downloads": DOWNLOADS,
    "provider": PROVIDER,
    "database": DATABASE,
    "auth": AUTH,
    "mqtt": MQTT,
    "logging": LOGGING,
    "notifications": NOTIFICATIONS,
    "cluster": CLUSTER,
}

SCHEMA = vol.Schema(
    {vol.Optional("data_dir", default="./data"): _not_system_dir}
    | {vol.Optional(name, default={}): schema for name, schema in SECTIONS.items()},
    extra=vol.PREVENT_EXTRA,
)


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file: where it is and what is wrong."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "path": self.path, "message": self.message}


class ConfigError(Exception):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


def _line_index(node: yaml.Node | None, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every dotted path in a YAML document to the line it is written on."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = (*path, key_node.value)
            out[sub] = key_node.start_mark.line + 1
            _line_index(value_node, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = item.start_mark.line + 1
            _line_index(item, (*path, i), out)
    return out


def _dotted(path: list | tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(err: vol.Invalid) -> str:
    msg = err.msg
    if msg == "extra keys not allowed":
        return "unknown key"
    if msg.startswith("expected ") and " for dictionary value" in msg:
        return msg.replace(" for dictionary value", "")
    if msg == "expected a dictionary":
        return "expected a mapping"
    if msg == "required key not provided":
        return "required"
    return msg


#: libyaml's safe loader when PyYAML was built with it: ~10x faster, so a big config parses quickly.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, filename: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML keeping line numbers; a syntax error becomes a ConfigIssue."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
        data = yaml.load(text, Loader=_LOADER)  # a safe loader: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigIssue(filename, line, "", f"YAML syntax error: {problem}")]) from None
    return data, _line_index(node)


def env_overrides(env: Mapping[str, str]) -> list[tuple[str, tuple[str, ...], Any]]:
    """`ANIWORLDD_SERVER__PORT=9000` -> ("ANIWORLDD_SERVER__PORT", ("server", "port"), 9000).

    Values are parsed as YAML scalars so numbers and booleans keep their type.
    """
    result = []
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :]
        if rest in ENV_RESERVED:
            continue
        parts = tuple(p.lower() for p in rest.split("__"))
        if parts[0] not in SECTIONS and parts[0] != "data_dir":
            continue
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        result.append((name, parts, value))
    return result


def _apply_override(doc: dict, parts: tuple[str, ...], value: Any) -> None:
    target = doc
    for part in parts[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[parts[-1]] = value


def validate_document(
    doc: Any,
    filename: str = "config.yaml",
    lines: dict[tuple, int] | None = None,
    env_paths: dict[tuple, str] | None = None,
) -> tuple[dict | None, list[ConfigIssue]]:
    """Validate a parsed document; returns (validated, issues), every issue and not just the first."""
    lines = lines or {}
    env_paths = env_paths or {}
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        return None, [ConfigIssue(filename, 1, "", "expected a mapping at the top level")]
    doc = copy.deepcopy(doc)
    for name in SECTIONS:
        if name in doc and doc[name] is None:
            doc[name] = {}
    try:
        return SCHEMA(doc), []
    except vol.MultipleInvalid as exc:
        issues = []
        for err in exc.errors:
            path = tuple(err.path)
            source = next(
                (env_paths[path[:i]] for i in range(len(path), 0, -1) if path[:i] in env_paths), None
            )
            line = None
            for i in range(len(path), 0, -1):
                if path[:i] in lines:
                    line = lines[path[:i]]
                    break
            issues.append(
                ConfigIssue(source or filename, None if source else line, _dotted(path), _message(err))
            )
        issues.sort(key=lambda i: (i.line or 0, i.path))
        return None, issues


def _finalize(cfg: dict, base_dir: Path) -> dict:
    """Resolve relative paths against the config file's folder and fill derived defaults."""
    data_dir = (base_dir / cfg["data_dir"]).resolve()
    cfg["data_dir"] = str(data_dir)
    roots = cfg["library"]["roots"] or [str(data_dir / "library")]
    cfg["library"]["roots"] = [str((base_dir / r).resolve()) for r in roots]
    temp = cfg["downloads"]["temp_dir"]
    cfg["downloads"]["temp_dir"] = str(
        (base_dir / temp).resolve() if temp else Path(cfg["library"]["roots"][0]) / ".aniworldd-tmp"
    )
    if cfg["database"]["url"] is None:
        cfg["database"]["url"] = f"sqlite:///{data_dir / 'aniworldd.db'}"
    if cfg["provider"]["ca_file"]:
        cfg["provider"]["ca_file"] = str((base_dir / cfg["provider"]["ca_file"]).resolve())
    check_cluster(cfg)
    return cfg


def check_cluster(cfg: dict) -> None:
    """More than one process needs what they can share: Redis for events and a server database for the
    queue. SQLite on a shared disk would lock up (or corrupt) under several writers on several hosts."""
    cluster = cfg["cluster"]
    if cluster["role"] == "all" and not cluster["redis_url"]:
        return
    problems = []
    if not cluster["redis_url"]:
        problems.append(("cluster.redis_url", f"role {cluster['role']} needs cluster.redis_url"))
    if cfg["database"]["url"].startswith("sqlite"):
        problems.append(("database.url", "more than one process needs PostgreSQL (postgresql://...)"))
    if problems:
        raise ConfigError([ConfigIssue("config", None, path, message) for path, message in problems])


def load_text(
    text: str,
    filename: str = "config.yaml",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> dict:
    """Validate YAML text plus environment overrides; raise ConfigError listing every issue."""
    doc, lines = parse_yaml(text, filename)
    if doc is None:
        doc = {}
    env_paths: dict[tuple, str] = {}
    if isinstance(doc, dict):
        for name, parts, value in env_overrides(env if env is not None else os.environ):
            _apply_override(doc, parts, value)
            env_paths[parts] = f"env {name}"
    cfg, issues = validate_document(doc, filename, lines, env_paths)
    if issues:
        raise ConfigError(issues)
    return _finalize(cfg, base_dir or Path.cwd())


def config_path(arg: str | None) -> str | None:
    """The file a command reads: its --config, else $ANIWORLDD_CONFIG, else None (built-in defaults)."""
    return arg or os.environ.get(ENV_PREFIX + "CONFIG")


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> dict:
    """Load and validate a config file (None: defaults plus environment)."""
    if path is None:
        return load_text("", "<defaults>", env)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(str(path), None, "", f"cannot read: {exc.strerror}")]) from None
    # Relative paths are relative to the folder of the file as named, not of a symlink's target: the
    # repository's config.example.yaml is a link into the package, and its `./data` means the checkout's.
    return load_text(text, str(path), env, Path(os.path.abspath(path)).parent)


def check_file(path: str | Path, env: Mapping[str, str] | None = None) -> list[ConfigIssue]:
    """Every issue of a config file, for `aniworldd config check`."""
    try:
        load_config(path, env)
    except ConfigError as exc:
        return exc.issues
    return []


def schema_keys(schema: Any = SCHEMA, prefix: str = "") -> list[str]:
    """Every dotted key the schema knows (used to keep config.example.yaml complete)."""
    keys = []
    inner = schema.schema if isinstance(schema, vol.Schema) else schema
    if isinstance(inner, dict):
        for k, v in inner.items():
            if not isinstance(k, vol.Marker):  # a free-form mapping ({name: address}): no fixed keys
                continue
            name = f"{prefix}.{k.schema}" if prefix else str(k.schema)
            keys.append(name)
            keys.extend(schema_keys(v, name))
    return keys


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted `section.key` paths whose values differ between two effective configs."""
    changed = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            changed += [f"{section}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            changed.append(section)
    return changed
