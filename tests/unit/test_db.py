"""The store: SQLite in WAL mode, the key-based lookups, and the same code on PostgreSQL."""

from __future__ import annotations

import os
import stat
import uuid

import pytest

from aniworldd.db import DatabaseError, Store
from aniworldd.db.services import AnimeSeriesService
from tests.conftest import postgres_answers

PG_URL = os.environ.get("ANIWORLDD_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")


def test_sqlite_wal_and_private_file(store: Store) -> None:
    assert store.provider == "sqlite"
    assert store.journal_mode() == "wal"
    assert stat.S_IMODE(store.sqlite_path.stat().st_mode) == 0o600
    assert store.ping()


async def test_series_lookup_by_key_and_id(store: Store) -> None:
    svc = AnimeSeriesService(store)
    created = await svc.upsert("86-eighty-six", name="86", folder="86 (2021)", site="aniworld")
    assert created["id"] is not None
    assert (await svc.get_by_key("86-eighty-six"))["folder"] == "86 (2021)"
    assert (await svc.get_by_id(created["id"]))["key"] == "86-eighty-six"
    assert await svc.get_by_key("86 (2021)") is None  # a folder is never a key
    assert not hasattr(svc, "get_by_folder")


async def test_soft_delete_hides_and_upsert_revives(store: Store) -> None:
    svc = AnimeSeriesService(store)
    await svc.upsert("one-piece", name="One Piece")
    assert await svc.soft_delete("one-piece")
    assert await svc.get_by_key("one-piece") is None
    assert (await svc.get_by_key("one-piece", include_deleted=True))["name"] == "One Piece"
    assert await svc.list() == []
    await svc.upsert("one-piece", name="One Piece")
    assert [s["key"] for s in await svc.list()] == ["one-piece"]


async def test_data_survives_reopen(config) -> None:
    s1 = Store(config["database"]["url"], config["data_dir"])
    await AnimeSeriesService(s1).upsert("bleach", name="Bleach")
    s1.close()
    s2 = Store(config["database"]["url"], config["data_dir"])
    try:
        assert (await AnimeSeriesService(s2).get_by_key("bleach"))["name"] == "Bleach"
    finally:
        s2.close()


def test_unsupported_url_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DatabaseError, match="unsupported database url"):
        Store("mysql://x", tmp_path)


def test_unreachable_postgres_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DatabaseError, match="cannot open database") as exc:
        Store("postgres://nobody:secret@127.0.0.1:1/none", tmp_path)
    assert "secret" not in str(exc.value)


@pytest.mark.postgres
async def test_postgres_round_trip(tmp_path) -> None:
    if not postgres_answers():
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432")
    store = Store(PG_URL, tmp_path)
    key = f"pg-{uuid.uuid4().hex[:8]}"
    try:
        assert store.provider == "postgres"
        svc = AnimeSeriesService(store)
        created = await svc.upsert(key, name="Postgres Test", folder="PG")

        def add_episode():
            s = store.e.AnimeSeries.get(key=key)
            store.e.Episode(series=s, season=1, number=1, title="Pilot", languages=["ger-sub"])

        await store.run(add_episode)
        assert (await svc.get_by_id(created["id"]))["key"] == key
        eps = await svc.episodes(key)
        assert [(e["season"], e["episode"], e["languages"]) for e in eps] == [(1, 1, ["ger-sub"])]
        assert store.size_bytes() > 0
    finally:

        def cleanup():
            s = store.e.AnimeSeries.get(key=key)
            if s:
                s.delete()

        await store.run(cleanup)
        store.close()
