"""Issue 16 item 5 (config part): a huge config PUT is refused with a clear error before it costs the
event loop anything, and list lengths in the schema are capped. The /health delay itself is measured by
bench/loop_stall.py (no timed asserts here)."""

from __future__ import annotations

import pytest
import yaml

from aniworldd.config import ConfigError, load_text
from tests.api.conftest import Api

#: The documented caps (README, config.example.yaml): a config document of at most 256 KB, lists of at
#: most 64 entries.
CONFIG_MAX_BYTES = 256 * 1024
LIST_MAX = 64


def _items(fmt: str, count: int) -> str:
    return ", ".join(fmt.format(i=i, a=i // 250, b=i % 250) for i in range(count))


def _doc(api: Api) -> dict:
    return yaml.safe_load(api.ctx.config_path.read_text())


async def test_config_put_over_the_config_cap_is_413_and_changes_nothing(logged_in: Api) -> None:
    before = logged_in.ctx.config_path.read_text()
    doc = _doc(logged_in)
    # 300 KB: under server.max_body_bytes (1 MB) but over the config cap.
    doc["server"] = {"cors_origins": [f"http://host{i:06d}.example" + "x" * 300 for i in range(900)]}
    for method, path in (("PUT", "/api/config"), ("POST", "/api/config/validate")):
        status, data = await logged_in.call(method, path, json=doc)
        assert status == 413, data
        assert data["error"]["code"] == "payload_too_large"
        assert f"limit {CONFIG_MAX_BYTES} bytes" in data["error"]["message"]
    assert logged_in.ctx.config_path.read_text() == before


async def test_config_lists_are_capped(logged_in: Api) -> None:
    before = logged_in.ctx.config_path.read_text()
    doc = _doc(logged_in)
    doc["server"] = {"cors_origins": [f"http://h{i}.example" for i in range(LIST_MAX + 1)]}
    status, data = await logged_in.call("PUT", "/api/config", json=doc)
    assert status == 422, data
    paths = {e["path"] for e in data["error"]["details"]["errors"]}
    assert "server.cors_origins" in paths
    assert logged_in.ctx.config_path.read_text() == before


@pytest.mark.parametrize(
    "text",
    [
        "server: {trusted_proxies: [" + _items("10.0.{a}.{b}", LIST_MAX + 1) + "]}",
        "library: {roots: [" + _items("/srv/a{i}", LIST_MAX + 1) + "]}",
        "notifications: {webhooks: [" + _items("{{url: 'http://h/x{i}'}}", LIST_MAX + 1) + "]}",
        "provider: {resolve: {" + _items("h{i}.example: 10.0.0.1", LIST_MAX + 1) + "}}",
    ],
    ids=["trusted_proxies", "roots", "webhooks", "resolve"],
)
def test_every_list_in_the_schema_is_capped(text: str) -> None:
    with pytest.raises(ConfigError, match=f"at most {LIST_MAX}"):
        load_text(text, "config.yaml", env={})
