"""Pure parts of the downloader and the queue CLI: progress lines, failure reasons, file names, specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from aniworldd.commands.queue import format_items, parse_episode_spec
from aniworldd.download.files import find_output, is_partial, item_files, move_into_place, temp_stem
from aniworldd.download.progress import (
    FILE_PREFIX,
    PROGRESS_PREFIX,
    PROGRESS_TEMPLATE,
    Progress,
    format_progress_line,
    parse_file_line,
    parse_progress_line,
)
from aniworldd.download.ytdlp import DISK_FULL, FAILED, NO_SPACE_REASON, classify_failure, format_selector


def line(*values: str) -> str:
    return " ".join([PROGRESS_PREFIX, *values]) + "\n"


def test_template_has_one_field_per_value_the_parser_reads():
    assert PROGRESS_TEMPLATE.startswith("download:" + PROGRESS_PREFIX)
    assert PROGRESS_TEMPLATE.count("%(progress.") == 8


def test_progress_with_known_total():
    p = parse_progress_line(
        line("downloading", "52428800", "209715200", "NA", "10485760.5", "15", "NA", "NA")
    )
    assert p.percent == 25.0
    assert (p.downloaded_bytes, p.total_bytes, p.eta) == (52428800, 209715200, 15.0)
    assert p.speed_mbps == 10.0


def test_progress_uses_estimate_then_fragments():
    est = parse_progress_line(line("downloading", "100", "NA", "400.0", "NA", "NA", "1", "10"))
    assert est.total_bytes == 400 and est.percent == 25.0 and est.speed is None and est.speed_mbps is None
    frag = parse_progress_line(line("downloading", "100", "NA", "NA", "NA", "NA", "3", "12"))
    assert frag.total_bytes is None and frag.percent == 25.0


def test_progress_never_claims_done_before_finished():
    p = parse_progress_line(line("downloading", "500", "400", "NA", "1", "0", "NA", "NA"))
    assert p.percent < 100
    done = parse_progress_line(line("finished", "400", "NA", "NA", "NA", "NA", "NA", "NA"))
    assert done.percent == 100.0 and done.total_bytes == 400


@pytest.mark.parametrize(
    "text",
    ["[download]  42.0% of 10MiB", PROGRESS_PREFIX + " downloading 1 2", "", "ERROR: x"],
)
def test_other_output_is_not_progress(text):
    assert parse_progress_line(text) is None


def test_file_line():
    assert (
        parse_file_line(f"{FILE_PREFIX} /tmp/a b/aw-1-voe-ger-dub.mp4\n") == "/tmp/a b/aw-1-voe-ger-dub.mp4"
    )
    assert parse_file_line("[download] Destination: x") is None


@pytest.mark.parametrize(
    ("stderr", "kind", "reason"),
    [
        (["ERROR: unable to write data: [Errno 28] No space left on device"], DISK_FULL, NO_SPACE_REASON),
        (["[out#0] Error: No space left on device", "ERROR: Postprocessing: Conversion failed!"], DISK_FULL,
         NO_SPACE_REASON),
        (["ERROR: [Errno 122] Disk quota exceeded"], DISK_FULL, NO_SPACE_REASON),
        (["WARNING: retrying", "ERROR: [generic] Unable to download webpage: HTTP Error 404: Not Found "
          "(caused by <HTTPError 404: Not Found>)"], FAILED,
         "Unable to download webpage: HTTP Error 404: Not Found"),
        (["something odd"], FAILED, "something odd"),
        ([], FAILED, "yt-dlp exited with status 2"),
    ],
)  # fmt: skip
def test_failure_reasons(stderr, kind, reason, tmp_path):
    err = classify_failure(stderr, 2, tmp_path)
    assert (err.kind, err.reason) == (kind, reason)


def test_killed_by_signal_reason(tmp_path):
    assert classify_failure([], -9, tmp_path).reason == "yt-dlp was killed by signal 9"


def test_format_selector():
    assert format_selector("best") == "bv*+ba/b"
    assert format_selector("worst") == "wv*+wa/w"
    assert "height<=?480" in format_selector("480p")


def test_temp_names_keep_sources_apart_and_partials_are_recognised(tmp_path):
    a = temp_stem(tmp_path, 7, "VOE", "ger-dub")
    b = temp_stem(tmp_path, 7, "Vidoza", "ger-dub")
    assert a.name == "aw-7-voe-ger-dub" and a != b
    (tmp_path / "aw-7-voe-ger-dub.mp4.part").write_bytes(b"x")
    (tmp_path / "aw-7-voe-ger-dub.mp4.ytdl").write_bytes(b"x")
    (tmp_path / "aw-70-voe-ger-dub.mp4").write_bytes(b"other item")
    assert find_output(a) is None
    (tmp_path / "aw-7-voe-ger-dub.mp4").write_bytes(b"done")
    assert find_output(a) == tmp_path / "aw-7-voe-ger-dub.mp4"
    assert [p.name for p in item_files(tmp_path, 7)] == [
        "aw-7-voe-ger-dub.mp4", "aw-7-voe-ger-dub.mp4.part", "aw-7-voe-ger-dub.mp4.ytdl",
    ]  # fmt: skip
    for name in ("x.mp4.part", "x.mp4.ytdl", "x.mp4.part-Frag3", "x.temp.mp4", "x.pid", "x.f137.mp4"):
        assert is_partial(Path(name)), name
    assert not is_partial(Path("x.mp4"))


def test_move_into_place_creates_folders_and_replaces(tmp_path):
    src = tmp_path / "t" / "aw-1.mp4"
    src.parent.mkdir()
    src.write_bytes(b"new")
    dst = tmp_path / "lib" / "Show" / "Season 01" / "e.mp4"
    move_into_place(src, dst)
    assert dst.read_bytes() == b"new" and not src.exists()


def test_episode_spec():
    assert parse_episode_spec("1-3,5, 7-8") == [1, 2, 3, 5, 7, 8]
    assert parse_episode_spec("2,2,1-2") == [2, 1]
    for bad in ("", "a", "3-1", "0", "1-x"):
        with pytest.raises(ValueError):
            parse_episode_spec(bad)


def test_queue_table():
    status = {
        "is_running": True,
        "is_paused": False,
        "active_downloads": [
            {"id": 3, "status": "downloading", "key": "kaguya", "season": 1, "episode": 2,
             "language": "ger-dub", "priority": "high", "progress": 42.5, "speed": 2097152, "eta": 75},
        ],
        "pending_queue": [{"id": 4, "status": "pending", "key": "kaguya", "season": 1, "episode": 3,
                           "language": None, "priority": "normal", "progress": 0}],
        "failed_downloads": [{"id": 1, "status": "failed", "key": "x", "season": 0, "episode": 1,
                              "error": "no usable source"}],
        "completed_downloads": [],
        "statistics": {"active": 1, "pending": 1, "completed": 0, "failed": 1, "speed_mbps": 2.0},
    }  # fmt: skip
    text = format_items(status)
    lines = text.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "EPISODE", "LANG", "PRIO", "DONE", "SPEED", "ETA", "ERROR"]
    assert (
        "kaguya S01E02 " in lines[1] and "42.5%" in lines[1] and "2.0MB/s" in lines[1] and "1:15" in lines[1]
    )
    assert "any" in lines[2]
    assert "no usable source" in lines[3]
    assert lines[-1] == "queue running: 1 active, 1 pending, 0 completed, 1 failed, 2.0 MB/s"


def test_our_own_downloader_writes_lines_the_parser_reads() -> None:
    """hls_fetch prints progress in yt-dlp's template order; the parser reads it back field for field."""
    line = format_progress_line(
        status="downloading", downloaded_bytes=500, total_bytes=None, total_bytes_estimate="2000",
        speed="100.0", eta="15.0", fragment_index=5, fragment_count=20,
    )  # fmt: skip
    p = parse_progress_line(line)
    assert p == Progress("downloading", 500, 2000, 100.0, 15.0, 25.0)
    done = parse_progress_line(format_progress_line(status="finished", downloaded_bytes=9, total_bytes=9))
    assert done is not None and done.percent == 100.0 and done.speed is None and done.total_bytes == 9
    with pytest.raises(ValueError, match="speed_mbps"):
        format_progress_line(speed_mbps=1)
