"""HLS playlists in, the one rendition and the fragment list out (RFC 8216, the parts hosters use).

Only what our own fragment downloader (hls_fetch) can do faithfully is accepted: a VOD media playlist of
MPEG-TS fragments, clear or AES-128. Anything else (fMP4 `#EXT-X-MAP`, byte ranges, SAMPLE-AES, a live
playlist, audio in a separate rendition) raises `Unsupported`, and the download goes to yt-dlp instead,
which handles those cases; so the fast path never produces a worse file than yt-dlp would.

Standard library only: this runs in the download child process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

_ATTR_RE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^",]*)')
_BIG = 10**9


class Unsupported(Exception):
    """A stream shape the fast path does not handle; yt-dlp takes the download."""


class PlaylistError(Exception):
    """Not a playlist at all (an HTML error page, an empty answer)."""


@dataclass(slots=True, frozen=True)
class Key:
    method: str  # NONE | AES-128
    uri: str | None = None
    iv: bytes | None = None


@dataclass(slots=True, frozen=True)
class Segment:
    uri: str
    duration: float
    sequence: int
    key: Key | None = None


@dataclass(slots=True, frozen=True)
class Variant:
    uri: str
    bandwidth: int = 0
    height: int | None = None
    audio_group: str | None = None


@dataclass(slots=True)
class Master:
    variants: list[Variant] = field(default_factory=list)
    #: Audio renditions with their own URI, by GROUP-ID (audio not muxed into the video fragments).
    separate_audio: set[str] = field(default_factory=set)


def attributes(text: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR_RE.findall(text)}


def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.lstrip("\ufeff").splitlines()]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("not an HLS playlist")
    return [line for line in lines if line]


def is_master(text: str) -> bool:
    return "#EXT-X-STREAM-INF" in text


def parse_master(text: str, base: str) -> Master:
    master = Master()
    pending: dict[str, str] | None = None
    for line in _lines(text):
        if line.startswith("#EXT-X-STREAM-INF:"):
            pending = attributes(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MEDIA:"):
            attrs = attributes(line.split(":", 1)[1])
            if attrs.get("TYPE") == "AUDIO" and attrs.get("URI"):
                master.separate_audio.add(attrs.get("GROUP-ID", ""))
        elif not line.startswith("#") and pending is not None:
            height = None
            if m := re.fullmatch(r"\d+x(\d+)", pending.get("RESOLUTION", "")):
                height = int(m.group(1))
            bandwidth = pending.get("BANDWIDTH", "0")
            master.variants.append(
                Variant(
                    uri=urljoin(base, line),
                    bandwidth=int(bandwidth) if bandwidth.isdigit() else 0,
                    height=height,
                    audio_group=pending.get("AUDIO"),
                )
            )
            pending = None
    if not master.variants:
        raise PlaylistError("master playlist without variants")
    return master


def choose_variant(master: Master, quality: str) -> Variant:
    """The rendition `downloads.quality` asks for, with yt-dlp's meaning of the setting.

    `best`: the highest; `worst`: the lowest; `720p`: the best at or below 720 lines (a variant without a
    RESOLUTION counts as fitting, as yt-dlp's `height<=?720`), else the lowest.
    """

    def rank(v: Variant) -> tuple[int, int]:
        return (v.height or 0, v.bandwidth)

    ordered = sorted(master.variants, key=rank)
    if quality == "worst":
        chosen = ordered[0]
    else:
        limit = _BIG
        if m := re.fullmatch(r"(\d{3,4})p", quality or ""):
            limit = int(m.group(1))
        fitting = [v for v in ordered if v.height is None or v.height <= limit]
        chosen = fitting[-1] if fitting else ordered[0]
    if chosen.audio_group and chosen.audio_group in master.separate_audio:
        raise Unsupported("audio in a separate rendition")
    return chosen


def parse_media(text: str, base: str) -> list[Segment]:
    """The fragments of a VOD media playlist, each with the key that decrypts it."""
    segments: list[Segment] = []
    sequence = 0
    key: Key | None = None
    duration: float | None = None
    ended = False
    for line in _lines(text):
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            value = line.split(":", 1)[1].strip()
            sequence = int(value) if value.isdigit() else 0
        elif line.startswith("#EXTINF:"):
            value = line.split(":", 1)[1].split(",", 1)[0].strip()
            try:
                duration = float(value)
            except ValueError:
                duration = 0.0
        elif line.startswith("#EXT-X-KEY:"):
            attrs = attributes(line.split(":", 1)[1])
            method = attrs.get("METHOD", "NONE").upper()
            if method == "NONE":
                key = None
            elif method == "AES-128" and attrs.get("URI"):
                iv = None
                if raw := attrs.get("IV"):
                    hexdigits = raw[2:] if raw.lower().startswith("0x") else raw
                    try:
                        iv = bytes.fromhex(hexdigits.rjust(32, "0"))
                    except ValueError:
                        raise Unsupported("unreadable IV") from None
                key = Key(method, urljoin(base, attrs["URI"]), iv)
            else:
                raise Unsupported(f"encryption {method}")
        elif line.startswith(("#EXT-X-MAP", "#EXT-X-BYTERANGE")):
            raise Unsupported(line.split(":", 1)[0][1:])
        elif line.startswith("#EXT-X-ENDLIST"):
            ended = True
        elif not line.startswith("#"):
            segments.append(Segment(urljoin(base, line), duration or 0.0, sequence, key))
            sequence += 1
            duration = None
    if not segments:
        raise PlaylistError("media playlist without fragments")
    if not ended:
        raise Unsupported("live playlist (no #EXT-X-ENDLIST)")
    return segments


def fingerprint(segments: list[Segment]) -> str:
    """What identifies the stream across runs (fragment URLs carry tokens that change with each resolve)."""
    total = sum(s.duration for s in segments)
    return f"{len(segments)}:{total:.1f}"
