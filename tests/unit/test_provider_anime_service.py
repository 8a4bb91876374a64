"""AnimeService's view of what is missing (no provider needed: rows are written directly)."""

from __future__ import annotations

from aniworldd.providers.base import EpisodeInfo, SeriesInfo
from aniworldd.services.anime_service import AnimeService, folder_name


def _fill(store) -> None:
    def q() -> None:
        e = store.e
        s = e.AnimeSeries(key="show-a", name="Show A", site="aniworld", folder="Show A", root="/lib")
        rows = [
            (1, 1, "/lib/Show A/a.mkv", "ger-dub"),  # wanted language
            (1, 2, "/lib/Show A/b.mkv", "eng-sub"),  # unwanted language
            (1, 3, "/lib/Show A/c.mkv", None),  # untagged: counts as present
            (1, 4, None, None),  # no file
            (0, 1, None, None),  # a movie without file
        ]
        for season, number, path, lang in rows:
            e.Episode(
                series=s,
                season=season,
                number=number,
                listed=True,
                languages=["ger-dub"],
                on_disk_path=path,
                on_disk_language=lang,
            )
        e.Episode(series=s, season=2, number=1, listed=False, languages=[])  # no longer listed: never missing
        done = e.AnimeSeries(key="show-b", name="Show B", site="sto", folder="Show B", root="/lib")
        e.Episode(series=done, season=1, number=1, listed=True, on_disk_path="/lib/Show B/x.mkv")
        gone = e.AnimeSeries(key="show-c", name="Show C", site="sto", folder="Show C", root="/lib")
        e.Episode(series=gone, season=1, number=1, listed=True)
        from aniworldd.db.models import utcnow

        gone.deleted_at = utcnow()

    store.run_sync(q)


async def test_missing_by_file(store, tmp_path):
    _fill(store)
    service = AnimeService(store, None, [tmp_path], None, languages=["ger-dub"])  # type: ignore[arg-type]
    assert await service.missing_episodes("show-a") == {"0": [1], "1": [4]}
    listing = await service.list_missing()
    assert [(r["key"], r["missing_episodes"], r["missing_count"]) for r in listing] == [
        ("show-a", {"0": [1], "1": [4]}, 2)
    ]
    everything = await service.list_missing(include_complete=True)
    assert [(r["key"], r["missing_count"]) for r in everything] == [("show-a", 2), ("show-b", 0)]


async def test_missing_by_language(store, tmp_path):
    _fill(store)
    service = AnimeService(
        store,
        None,
        [tmp_path],
        None,
        languages=["ger-dub"],
        missing_by_language=True,  # type: ignore[arg-type]
    )
    assert await service.missing_episodes("show-a") == {"0": [1], "1": [2, 4]}
    (row,) = await service.list_missing()
    assert row["missing_episodes"] == {"0": [1], "1": [2, 4]}
    detail = await service.detail("show-a")
    assert [(e["season"], e["episode"], e["status"]) for e in detail["episodes"]] == [
        (0, 1, "missing"),
        (1, 1, "on_disk"),
        (1, 2, "on_disk"),
        (1, 3, "on_disk"),
        (1, 4, "missing"),
        (2, 1, "missing"),
    ]
    assert detail["missing_count"] == 3


def test_folder_name_is_safe_and_carries_the_year():
    def info(title: str, year: int | None = None) -> SeriesInfo:
        return SeriesInfo(
            key="k-1",
            site="aniworld",
            link="",
            title=title,
            start_year=year,
            seasons={1: [EpisodeInfo(1, 1)]},
        )

    assert folder_name(info("Re:Zero - Starting Life", 2016)) == "Re-Zero - Starting Life (2016)"
    assert folder_name(info("Kaguya-sama: Love is War", 2019)) == "Kaguya-sama - Love is War (2019)"
    hostile = folder_name(info("../../etc/passwd"))
    assert "/" not in hostile and not hostile.startswith(".") and hostile.endswith("etc-passwd")
    assert folder_name(info("???")) == "k-1"
