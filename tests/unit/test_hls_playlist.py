"""HLS playlist reading for our own fragment downloader: renditions, fragments, keys, and the shapes it
hands to yt-dlp instead (fMP4, byte ranges, SAMPLE-AES, live, separate audio)."""

from __future__ import annotations

import pytest

from aniworldd.download.hls_playlist import (
    Key,
    PlaylistError,
    Unsupported,
    choose_variant,
    fingerprint,
    is_master,
    parse_master,
    parse_media,
)

BASE = "https://cdn.example/hls/abc/master.m3u8?t=1"

MASTER = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=2400000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"
720/index.m3u8?t=1
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360
https://other.example/360.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080
/abs/1080.m3u8
"""


def test_master_variants_resolved_against_the_playlist_url() -> None:
    master = parse_master(MASTER, BASE)
    assert is_master(MASTER)
    assert [(v.uri, v.height, v.bandwidth) for v in master.variants] == [
        ("https://cdn.example/hls/abc/720/index.m3u8?t=1", 720, 2400000),
        ("https://other.example/360.m3u8", 360, 800000),
        ("https://cdn.example/abs/1080.m3u8", 1080, 5000000),
    ]


@pytest.mark.parametrize(
    ("quality", "height"),
    [("best", 1080), ("worst", 360), ("720p", 720), ("1080p", 1080), ("480p", 360), ("240p", 360)],
)
def test_quality_picks_the_rendition_yt_dlp_would(quality: str, height: int) -> None:
    assert choose_variant(parse_master(MASTER, BASE), quality).height == height


def test_separate_audio_rendition_goes_to_yt_dlp() -> None:
    text = (
        '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="de",URI="audio/de.m3u8"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=640x360,AUDIO="aud"\nv.m3u8\n'
    )
    with pytest.raises(Unsupported, match="audio"):
        choose_variant(parse_master(text, BASE), "best")


MEDIA = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:7
#EXTINF:2.000,
seg0.ts
#EXT-X-KEY:METHOD=AES-128,URI="key.bin",IV=0x0102
#EXTINF:2.5,
seg1.ts?x=1
#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example/k"
#EXTINF:1.5,
https://cdn2.example/seg2.ts
#EXT-X-KEY:METHOD=NONE
#EXTINF:2,
seg3.ts
#EXT-X-ENDLIST
"""


def test_media_fragments_with_sequence_numbers_and_keys() -> None:
    segments = parse_media(MEDIA, "https://cdn.example/hls/abc/index.m3u8")
    assert [s.uri for s in segments] == [
        "https://cdn.example/hls/abc/seg0.ts",
        "https://cdn.example/hls/abc/seg1.ts?x=1",
        "https://cdn2.example/seg2.ts",
        "https://cdn.example/hls/abc/seg3.ts",
    ]
    assert [s.sequence for s in segments] == [7, 8, 9, 10]
    assert [s.duration for s in segments] == [2.0, 2.5, 1.5, 2.0]
    assert segments[0].key is None and segments[3].key is None
    assert segments[1].key == Key("AES-128", "https://cdn.example/hls/abc/key.bin", bytes(14) + b"\x01\x02")
    assert segments[2].key == Key("AES-128", "https://keys.example/k", None)
    assert fingerprint(segments) == "4:8.0"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('#EXT-X-MAP:URI="init.mp4"', "EXT-X-MAP"),
        ("#EXT-X-BYTERANGE:1000@0", "EXT-X-BYTERANGE"),
        ('#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k"', "SAMPLE-AES"),
    ],
)
def test_shapes_for_yt_dlp(line: str, reason: str) -> None:
    text = f"#EXTM3U\n{line}\n#EXTINF:2,\nseg0.ts\n#EXT-X-ENDLIST\n"
    with pytest.raises(Unsupported, match=reason):
        parse_media(text, BASE)


def test_live_playlist_goes_to_yt_dlp() -> None:
    with pytest.raises(Unsupported, match="live"):
        parse_media("#EXTM3U\n#EXTINF:2,\nseg0.ts\n", BASE)


@pytest.mark.parametrize("text", ["", "<html>blocked</html>", "#EXTM3U\n#EXT-X-ENDLIST\n"])
def test_not_a_playlist(text: str) -> None:
    with pytest.raises(PlaylistError):
        parse_media(text, BASE)
