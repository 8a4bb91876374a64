"""Make a running download's partial file durable while it grows, not all at the end.

A finished file is fsynced before it is renamed into the library (a power cut must not leave a renamed
but empty episode). Done only at the end, that fsync writes the whole episode in one go: on a fast line
and a slow disk (or a VM, where the flush reaches the host's disk) it costs as much as the transfer.
Syncing what was written every quarter of a second spreads that work over the download, so the final
fsync has only the last quarter second left. A fixed time step, not a byte step, bounds the journal
commits to four a second, which would otherwise stall yt-dlp's writes on a fast line. The partial file
being durable also means a resume after a power cut starts from bytes really on disk.

yt-dlp writes in its own process; this thread only opens the same `.part` file read-only and calls
fdatasync on it when it has grown.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from aniworldd.download.files import stem_files

#: How often the thread syncs what a partial file gained (seconds), and looks for new partial files.
POLL_SECONDS = 0.25
RESCAN_SECONDS = 1.0
#: Smaller gains wait for the next round (a slow line would otherwise sync every few KiB).
MIN_STEP = 1024 * 1024


class PartialFlusher:
    """One background thread per running download; `stop()` ends it (and waits for it)."""

    def __init__(self, stem: Path, poll: float = POLL_SECONDS, min_step: int = MIN_STEP) -> None:
        self.stem = Path(stem)
        self.poll = poll
        self.min_step = min_step
        self.syncs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"flush-{self.stem.name}", daemon=True)
        self._files: dict[str, tuple[int, int]] = {}  # name -> (fd, size at the last sync)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Blocking (run it in a thread): end the loop and close the files."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        since_scan = RESCAN_SECONDS
        try:
            while not self._stop.wait(self.poll):
                since_scan += self.poll
                if since_scan >= RESCAN_SECONDS or not self._files:
                    since_scan = 0.0
                    try:
                        self._open_new()
                    except OSError:  # out of descriptors, temp dir gone: only this round's scan is lost
                        pass
                self._sync_grown()
        finally:
            for fd, _ in self._files.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._files.clear()

    def _open_new(self) -> None:
        for p in stem_files(self.stem):
            if not p.name.endswith(".part") or p.name in self._files:
                continue
            with contextlib.suppress(OSError):  # renamed or removed by yt-dlp meanwhile
                self._files[p.name] = (os.open(p, os.O_RDONLY), 0)

    def _sync_grown(self) -> None:
        for name, (fd, synced) in list(self._files.items()):
            try:
                size = os.fstat(fd).st_size
                if size - synced >= self.min_step:
                    os.fdatasync(fd)
                    self.syncs += 1
                    self._files[name] = (fd, size)
            except OSError:
                pass
