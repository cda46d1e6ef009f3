"""Progress of blob transfers, for humans on stderr.

A terminal gets one live line per blob in flight (bytes, rate), redrawn in
place; anything else (CI logs) gets one line per blob when it is done. The
library reports through the small :class:`Progress` protocol; :class:`NoProgress`
is the default.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    """Receives blob transfer events (from several threads)."""

    def started(self, digest: str, size: int) -> None: ...

    def advanced(self, digest: str, nbytes: int) -> None: ...

    def finished(self, digest: str, status: str) -> None:
        """``status``: ``copied``, ``exists``, ``mounted`` or ``failed``."""
        ...

    def message(self, text: str) -> None:
        """One informational line (manifests pushed, tags)."""
        ...


class NoProgress:
    """Says nothing."""

    def started(self, digest: str, size: int) -> None:
        pass

    def advanced(self, digest: str, nbytes: int) -> None:
        pass

    def finished(self, digest: str, status: str) -> None:
        pass

    def message(self, text: str) -> None:
        pass


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class _Blob:
    def __init__(self, size: int) -> None:
        self.size = size
        self.done = 0
        self.start = time.monotonic()


class StreamProgress:
    """Writes progress to a stream: live lines on a terminal, one line per blob otherwise."""

    def __init__(self, stream: TextIO, *, live: bool | None = None, interval: float = 0.2) -> None:
        self._out = stream
        self._live = stream.isatty() if live is None else live
        self._interval = interval
        self._lock = threading.Lock()
        self._blobs: dict[str, _Blob] = {}
        self._last_draw = 0.0
        self._drawn = 0

    def started(self, digest: str, size: int) -> None:
        with self._lock:
            self._blobs[digest] = _Blob(size)

    def advanced(self, digest: str, nbytes: int) -> None:
        with self._lock:
            blob = self._blobs.get(digest)
            if blob is not None:
                blob.done += nbytes
            if self._live and time.monotonic() - self._last_draw >= self._interval:
                self._draw()

    def finished(self, digest: str, status: str) -> None:
        with self._lock:
            blob = self._blobs.pop(digest, None) or _Blob(0)
            elapsed = max(time.monotonic() - blob.start, 1e-6)
            short = digest.split(":", 1)[-1][:12]
            if status == "copied":
                line = (
                    f"{short}: copied {human_bytes(blob.done)} in {elapsed:.1f}s "
                    f"({human_bytes(blob.done / elapsed)}/s)"
                )
            elif status == "exists":
                line = f"{short}: already there ({human_bytes(blob.size)})"
            elif status == "mounted":
                line = f"{short}: mounted ({human_bytes(blob.size)})"
            else:
                line = f"{short}: {status}"
            self._clear()
            self._out.write(line + "\n")
            if self._live:
                self._draw()
            self._out.flush()

    def message(self, text: str) -> None:
        with self._lock:
            self._clear()
            self._out.write(text + "\n")
            if self._live:
                self._draw()
            self._out.flush()

    def _clear(self) -> None:
        if self._live and self._drawn:
            self._out.write("\x1b[1A\x1b[2K" * self._drawn)
            self._drawn = 0

    def _draw(self) -> None:
        self._clear()
        now = time.monotonic()
        for digest, blob in list(self._blobs.items())[:8]:
            rate = blob.done / max(now - blob.start, 1e-6)
            pct = f"{100 * blob.done / blob.size:5.1f}%" if blob.size else "     "
            self._out.write(
                f"{digest.split(':', 1)[-1][:12]}: {pct} {human_bytes(blob.done)} / "
                f"{human_bytes(blob.size)}  {human_bytes(rate)}/s\n"
            )
            self._drawn += 1
        self._last_draw = now
        self._out.flush()
