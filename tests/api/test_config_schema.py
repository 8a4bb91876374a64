"""GET /api/config/schema: what the config page renders its controls and help texts from.

Every option of the validated default config is described (the comment of its key in config.example.yaml),
allowed values come from the voluptuous validators themselves, and the endpoint needs a login like
/api/config. The example file ships inside the package as a byte-identical copy of the repository's one.
"""

from __future__ import annotations

from pathlib import Path

import voluptuous as vol

from aniworldd import config as cfg
from aniworldd.config_docs import comments, config_schema
from tests.api.conftest import Api

REPO = Path(__file__).resolve().parents[2]


def _default_paths(doc: dict, prefix: str = "") -> list[str]:
    """Dotted paths of every value in the validated default config (mappings walked into)."""
    out: list[str] = []
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        out += _default_paths(value, path) if isinstance(value, dict) and value else [path]
    return out


def _option_for(options: dict[str, dict], path: str) -> dict | None:
    """The option covering a default path: itself, or its free-form mapping (provider.last_resort)."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        found = options.get(".".join(parts[:i]))
        if found is not None:
            return found
    return None


def _validator(path: str) -> object:
    schema: object = cfg.SCHEMA
    for part in path.split("."):
        inner = schema.schema  # type: ignore[attr-defined]
        schema = next(v for k, v in inner.items() if isinstance(k, vol.Marker) and k.schema == part)
    return schema


def _in_containers(validator: object) -> list[list]:
    """Every vol.In's allowed values inside a validator (through All/Any/lists)."""
    if isinstance(validator, vol.In):
        return [list(validator.container)]
    if isinstance(validator, vol.All | vol.Any):
        return [c for v in validator.validators for c in _in_containers(v)]
    if isinstance(validator, list):
        return [c for v in validator for c in _in_containers(v)]
    return []


async def test_schema_describes_every_option(logged_in: Api) -> None:
    status, data = await logged_in.call("GET", "/api/config/schema")
    assert status == 200
    options = {o["path"]: o for o in data["options"]}
    defaults = cfg.SCHEMA({})
    paths = _default_paths(defaults)
    assert len(paths) > 60
    for path in paths:
        option = _option_for(options, path)
        assert option is not None, f"{path} has no schema entry"
        assert option["description"].strip(), f"{path} has no description in config.example.yaml"
    assert set(options) <= {p for p in paths} | {"provider.resolve", "provider.last_resort"}
    assert options["downloads.max_concurrent"]["default"] == 2
    assert options["downloads.max_concurrent"]["type"] == "int"
    assert options["downloads.min_free_gb"]["unit"] == "GB"
    assert options["provider.timeout"]["type"] == "duration"
    assert options["provider.timeout"]["unit"] == "seconds"
    assert options["library.watch"]["type"] == "bool"
    assert options["provider.resolve"]["type"] == "mapping"
    # the words are the example file's comment of that key
    assert options["downloads.max_concurrent"]["description"].startswith("Downloads running at once")


async def test_enums_come_from_the_validators(logged_in: Api) -> None:
    _, data = await logged_in.call("GET", "/api/config/schema")
    options = {o["path"]: o for o in data["options"]}
    enums = [p for p, o in options.items() if o["type"] == "enum"]
    assert {"logging.level", "downloads.quality", "downloads.hoster_order", "provider.dns"} <= set(enums)
    for path in enums:
        assert [options[path]["choices"]] == _in_containers(_validator(path)), path
    assert options["logging.level"]["choices"] == list(cfg.LOG_LEVELS)
    assert options["downloads.hosters"]["type"] == "list"
    assert options["downloads.hosters"]["choices"] == list(cfg.KNOWN_HOSTERS)
    assert options["downloads.language"]["choices"] == list(cfg.LANGUAGE_CODES)
    webhook = {f["name"]: f for f in options["notifications.webhooks"]["item"]["fields"]}
    assert webhook["url"]["required"] is True
    assert webhook["events"]["choices"] == list(cfg.WEBHOOK_EVENTS)


async def test_flags_secret_restart_essential_and_section_order(logged_in: Api) -> None:
    _, data = await logged_in.call("GET", "/api/config/schema")
    options = {o["path"]: o for o in data["options"]}
    assert options["mqtt.password"]["secret"] is True
    assert options["database.url"]["secret"] is True and options["database.url"]["secret_part"] == "password"
    assert options["mqtt.host"]["secret"] is False
    assert all(options[k]["restart"] is False for k in cfg.LIVE_KEYS)
    assert options["provider.timeout"]["restart"] is True
    assert options["data_dir"]["login_only"] is True and options["downloads.quality"]["login_only"] is False
    essential = [p for p, o in options.items() if o["essential"]]
    assert {"downloads.hosters", "downloads.language", "library.roots", "mqtt.host"} <= set(essential)
    assert "server.port" not in essential
    sections = [s["id"] for s in data["sections"]]
    assert sections[:5] == ["library", "downloads", "provider", "notifications", "mqtt"]
    assert sections.index("server") < sections.index("logging")
    # options come in section order
    seen = [o["section"] for o in data["options"]]
    assert seen == sorted(seen, key=sections.index)


async def test_schema_needs_a_login(api: Api) -> None:
    await api.setup_and_login()
    token, api.token = api.token, None
    status, data = await api.call("GET", "/api/config/schema")
    assert status == 401
    api.token = token
    status, _ = await api.call("GET", "/api/config/schema")
    assert status == 200


def test_the_repository_example_is_the_packaged_one() -> None:
    """aniworldd/config.example.yaml ships in the wheel; the top-level file people edit is a link to it."""
    top = REPO / "config.example.yaml"
    assert top.is_symlink()
    assert top.resolve() == (REPO / "aniworldd" / "config.example.yaml").resolve()


def test_comment_extraction_rules() -> None:
    text = (
        "a:\n"
        "  # above one\n"
        "  # above two\n"
        "  b: 1  # inline\n"
        '  c: "x # not a comment"\n'
        "  d: []\n"
        "  # - url: http://example\n"
        "  #   events: [x]\n"
        "  # Real text:\n"
        "  e: []\n"
    )
    found = comments(text)
    assert found["a.b"] == "Inline. Above one above two."
    assert found["a.c"] == ""
    assert found["a.e"] == "Real text."
    assert config_schema() is config_schema()  # computed once
