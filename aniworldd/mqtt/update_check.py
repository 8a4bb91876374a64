"""The `update` entity's payload, and the optional look-up of the newest release in PyPI's JSON API.

Off by default (`mqtt.update_check: false`): a daemon on a home server must not phone out unless asked.
Then the entity shows the installed version and no latest version (HA: unknown). When on, the check runs
at start and every `mqtt.update_interval`; a failed check keeps the last answer and is logged, never raised.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

_TIMEOUT = aiohttp.ClientTimeout(total=20)


def update_payload(installed: str, latest: dict | None) -> dict:
    """`update`: installed_version always; latest_version and release_url once a check answered."""
    payload: dict[str, Any] = {"installed_version": installed, "title": "aniworldd"}
    if latest:
        payload["latest_version"] = latest["version"]
        if latest.get("release_url"):
            payload["release_url"] = latest["release_url"]
    return payload


async def fetch_latest(session: aiohttp.ClientSession, url: str) -> dict:
    """{"version", "release_url"} from a PyPI-style JSON document (`info.version`, `info.release_url`).

    Raises ValueError for a document without a version and aiohttp/timeout errors for the transport."""
    async with session.get(url, timeout=_TIMEOUT, headers={"Accept": "application/json"}) as resp:
        resp.raise_for_status()
        doc = await resp.json(content_type=None)
    info = doc.get("info") if isinstance(doc, dict) else None
    version = info.get("version") if isinstance(info, dict) else None
    if not isinstance(version, str) or not version.strip():
        raise ValueError("no info.version in the answer")
    release_url = info.get("release_url") or info.get("package_url")
    return {"version": version.strip(), "release_url": release_url if isinstance(release_url, str) else None}
