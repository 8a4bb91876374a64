"""yt-dlp progress lines in, numbers out.

yt-dlp prints one line per progress report when run with `--newline --progress-template`; we give it a
template with a marker prefix and space-separated fields so parsing is a split, not a regex over its
human-readable (and version-dependent) `[download]  42.0% of ...` text. Missing values print as `NA`.
"""

from __future__ import annotations

from dataclasses import dataclass

PROGRESS_PREFIX = "[aniworldd-progress]"
FILE_PREFIX = "[aniworldd-file]"

_FIELDS = (
    "status",
    "downloaded_bytes",
    "total_bytes",
    "total_bytes_estimate",
    "speed",
    "eta",
    "fragment_index",
    "fragment_count",
)

#: Passed to `--progress-template`.
PROGRESS_TEMPLATE = "download:" + PROGRESS_PREFIX + "".join(f" %(progress.{f})s" for f in _FIELDS)
#: Passed to `--print after_move:...`: the final file path once yt-dlp (and its fixups) are done.
FILE_TEMPLATE = "after_move:" + FILE_PREFIX + " %(filepath)s"


@dataclass(slots=True, frozen=True)
class Progress:
    status: str  # downloading | finished | error
    downloaded_bytes: int
    total_bytes: int | None
    speed: float | None  # bytes per second
    eta: float | None  # seconds
    percent: float

    @property
    def speed_mbps(self) -> float | None:
        """MB/s (MiB), the unit the seed's `speed_mbps` fields use."""
        return None if self.speed is None else round(self.speed / (1024 * 1024), 3)


def _num(text: str) -> float | None:
    if text in ("NA", "None", ""):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def parse_progress_line(line: str) -> Progress | None:
    """A Progress for one of our template lines; None for anything else yt-dlp prints."""
    line = line.strip()
    if not line.startswith(PROGRESS_PREFIX):
        return None
    parts = line[len(PROGRESS_PREFIX) :].split()
    if len(parts) != len(_FIELDS):
        return None
    values = dict(zip(_FIELDS, parts, strict=True))
    downloaded = _num(values["downloaded_bytes"]) or 0.0
    total = _num(values["total_bytes"]) or _num(values["total_bytes_estimate"])
    frag_index = _num(values["fragment_index"])
    frag_count = _num(values["fragment_count"])
    status = values["status"]
    if status == "finished":
        percent = 100.0
        total = total or downloaded
    elif total:
        percent = min(downloaded / total * 100.0, 99.99)
    elif frag_index is not None and frag_count:
        percent = min(frag_index / frag_count * 100.0, 99.99)
    else:
        percent = 0.0
    speed = _num(values["speed"])
    eta = _num(values["eta"])
    return Progress(
        status=status,
        downloaded_bytes=int(downloaded),
        total_bytes=int(total) if total else None,
        speed=speed,
        eta=eta,
        percent=round(percent, 2),
    )


def format_progress_line(**values: object) -> str:
    """One of our template lines for a downloader of our own (hls_fetch), with yt-dlp's field order;
    a missing or None value prints as `NA`, as yt-dlp prints it."""
    unknown = set(values) - set(_FIELDS)
    if unknown:
        raise ValueError(f"not progress fields: {sorted(unknown)}")
    text = ["NA" if values.get(name) is None else str(values[name]) for name in _FIELDS]
    return PROGRESS_PREFIX + " " + " ".join(text)


def parse_file_line(line: str) -> str | None:
    """The final path from our `--print after_move:` line, else None."""
    line = line.rstrip("\r\n")
    if line.startswith(FILE_PREFIX + " "):
        return line[len(FILE_PREFIX) + 1 :]
    return None
