"""Deadline alarms on one shared thread.

Every HTTP request acr-ci makes runs under a deadline (registry requests and webhook
calls alike). A ``threading.Timer`` per request started one thread per request: in a
backfill of a few hundred images that thread churn was a large share of the CPU time.
Here one daemon thread sleeps until the earliest alarm is due and runs it; setting and
cancelling an alarm is a heap push and a flag.

A callback runs on the alarm thread and must be short (the users shut sockets down).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Alarm:
    """One pending call; :meth:`cancel` before it is due and it never runs."""

    __slots__ = ("_callback", "_cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self._callback: Callable[[], None] | None = callback
        self._cancelled = False

    def cancel(self) -> None:
        if not self._cancelled:
            self._cancelled = True
            self._callback = None
            _clock.cancelled()

    def _run(self) -> None:
        callback = self._callback
        if self._cancelled or callback is None:
            return
        self._cancelled = True  # fired: a later cancel() has nothing to do
        self._callback = None
        callback()


class _Clock:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Alarm]] = []
        self._seq = itertools.count()
        self._dead = 0
        self._thread: threading.Thread | None = None

    def after(self, seconds: float, callback: Callable[[], None]) -> Alarm:
        alarm = Alarm(time.monotonic() + max(0.0, seconds), callback)
        with self._cond:
            heapq.heappush(self._heap, (alarm.due, next(self._seq), alarm))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="acr-ci-alarms", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is alarm:
                self._cond.notify()  # a new earliest alarm: wake the sleeper earlier
        return alarm

    def cancelled(self) -> None:
        with self._cond:
            self._dead += 1
            # Cancelled alarms stay in the heap until due; drop them when they are the most.
            if self._dead > 64 and self._dead * 2 > len(self._heap):
                self._heap = [e for e in self._heap if not e[2]._cancelled]
                heapq.heapify(self._heap)
                self._dead = 0

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][2]._cancelled:
                        heapq.heappop(self._heap)
                        self._dead = max(0, self._dead - 1)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        due = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(wait)
            due._run()


_clock = _Clock()


def after(seconds: float, callback: Callable[[], None]) -> Alarm:
    """Call ``callback`` (on the alarm thread) in ``seconds``, unless cancelled first."""
    return _clock.after(seconds, callback)


__all__ = ["Alarm", "after"]
