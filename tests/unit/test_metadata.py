"""tvshow.nfo and poster.jpg: written for media servers, never overwriting a user's edit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from aniworldd.core.nfo import build_tvshow_nfo
from aniworldd.db import Store
from aniworldd.services.metadata_service import MetadataService

SERIES = {
    "key": "kaguya-sama-love-is-war",
    "site": "aniworld",
    "name": "Kaguya-sama: Love is War",
    "alt_titles": ["かぐや様は告らせたい", "Kaguya-sama wa Kokurasetai"],
    "description": "Two geniuses & love.",
    "genres": ["Comedy", "Romance"],
    "year": 2019,
    "end_year": 2022,
    "fsk": 12,
    "imdb_id": "tt9522300",
}


def test_nfo_has_the_fields_media_servers_read() -> None:
    root = ET.fromstring(build_tvshow_nfo(SERIES).split("\n", 1)[1])
    assert root.tag == "tvshow"
    assert root.findtext("title") == "Kaguya-sama: Love is War"
    assert root.findtext("originaltitle") == "かぐや様は告らせたい"
    assert root.findtext("plot") == "Two geniuses & love."
    assert [g.text for g in root.findall("genre")] == ["Comedy", "Romance"]
    assert root.findtext("year") == "2019"
    assert root.findtext("mpaa") == "FSK 12"
    imdb = [u for u in root.findall("uniqueid") if u.get("type") == "imdb"]
    assert imdb[0].text == "tt9522300" and imdb[0].get("default") == "true"


async def _series_in_db(store: Store, root: Path) -> Path:
    folder = root / "Kaguya-sama Love is War"
    folder.mkdir(parents=True)

    def add() -> None:
        store.e.AnimeSeries(
            key=SERIES["key"],
            name=SERIES["name"],
            site="aniworld",
            folder=folder.name,
            root=str(root),
            description=SERIES["description"],
            genres=SERIES["genres"],
            alt_titles=SERIES["alt_titles"],
            year=2019,
            fsk=12,
            imdb_id="tt9522300",
            cover="http://x/cover.jpg",
        )

    await store.run(add)
    return folder


async def test_nfo_written_then_user_edit_kept(store: Store, tmp_path: Path) -> None:
    folder = await _series_in_db(store, tmp_path / "lib")
    fetched = []

    async def fetch(url: str) -> bytes:
        fetched.append(url)
        return b"\xff\xd8jpeg"

    svc = MetadataService(store, True, fetch)
    assert await svc.write(SERIES["key"]) == {"nfo": "written", "poster": "written"}
    assert fetched == ["http://x/cover.jpg"]
    assert (folder / "poster.jpg").read_bytes() == b"\xff\xd8jpeg"
    assert (await svc.write(SERIES["key"]))["nfo"] == "unchanged"

    # Our own file is updated when the metadata changes ...
    def rename() -> None:
        store.e.AnimeSeries.get(key=SERIES["key"]).name = "Kaguya-sama (new title)"

    await store.run(rename)
    assert (await svc.write(SERIES["key"]))["nfo"] == "written"
    assert "Kaguya-sama (new title)" in (folder / "tvshow.nfo").read_text()

    # ... but once the user edits it, it is theirs.
    (folder / "tvshow.nfo").write_text("<tvshow><title>My title</title></tvshow>")
    await store.run(lambda: setattr(store.e.AnimeSeries.get(key=SERIES["key"]), "description", "changed"))
    assert await svc.write(SERIES["key"]) == {"nfo": "kept_user_edit", "poster": "exists"}
    assert (folder / "tvshow.nfo").read_text() == "<tvshow><title>My title</title></tvshow>"


async def test_disabled_and_failed_poster(store: Store, tmp_path: Path) -> None:
    folder = await _series_in_db(store, tmp_path / "lib")
    assert (await MetadataService(store, False).write(SERIES["key"]))["nfo"] == "disabled"
    assert not (folder / "tvshow.nfo").exists()

    async def broken(url: str) -> bytes:
        raise OSError("unreachable")

    result = await MetadataService(store, True, broken).write(SERIES["key"])
    assert result == {"nfo": "written", "poster": "fetch_failed"}
    assert not (folder / "poster.jpg").exists()
