"""Per-host request limits: how many requests one command has open against a registry host
at once, and optionally how many it starts per second.

One :class:`HostLimit` per host is shared by every copy a
:class:`~acr_ci.registry.client.Client` runs (a sync to several mirrors from one source
shares the source's limit). A request holds its slot from the moment it is sent until
its response is done: read whole, or — for a streamed body (a blob download) — closed.

- A thread that already holds a slot on a host does not wait for a second one there: a
  blob streamed from one repository to another of the same registry is one transfer,
  and two transfers waiting for each other's slots could never finish.
- Waiting between retries (``Retry-After``, backoff) gives the slot back for the wait.
- A token request does not take a slot of its own: it goes out inside the request that
  needs the token (once per scope set), on that request's slot.
"""

from __future__ import annotations

import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from acr_ci.errors import UsageError
from acr_ci.registry.transport import Transport

DEFAULT_MAX_CONCURRENT = 8
"""Requests open at once against one registry host, unless configured."""
MAX_CONCURRENT_CEILING = 64
"""The most the config may allow per host."""
ENV_MAX_CONCURRENT = "ACR_CI_MAX_CONCURRENT"
"""The default ``max_concurrent`` for hosts the config does not list."""


@dataclass(frozen=True)
class Limit:
    """The configured limit of one host (``registries: {HOST: …}`` in ``.acr-ci.yml``)."""

    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    """Requests open at once (1–64)."""
    max_per_second: float | None = None
    """Requests started per second; ``None``: no rate limit."""


def default_limit(env: Mapping[str, str] | None = None) -> Limit:
    """The limit of hosts the config does not list: ``$ACR_CI_MAX_CONCURRENT`` or 8."""
    env = os.environ if env is None else env
    text = env.get(ENV_MAX_CONCURRENT, "").strip()
    if not text:
        return Limit()
    if not text.isdigit() or not 1 <= int(text) <= MAX_CONCURRENT_CEILING:
        raise UsageError(
            f"${ENV_MAX_CONCURRENT} is {text[:20]!r}",
            f"set it to a number of requests from 1 to {MAX_CONCURRENT_CEILING}",
        )
    return Limit(max_concurrent=int(text))


class LimitEntry(Protocol):
    """A ``registries:`` entry of the config (:class:`acr_ci.config.model.RegistryLimit`;
    the config package imports this one, not the other way round)."""

    @property
    def host(self) -> str: ...
    @property
    def max_concurrent(self) -> int | None: ...
    @property
    def max_per_second(self) -> float | None: ...


def limits_from_config(
    entries: Iterable[LimitEntry], default: Limit | None = None
) -> dict[str, Limit]:
    """``host → Limit`` from the config's ``registries:`` (unset fields: ``default``'s)."""
    default = default or Limit()
    return {
        e.host: Limit(
            max_concurrent=e.max_concurrent or default.max_concurrent,
            max_per_second=e.max_per_second
            if e.max_per_second is not None
            else default.max_per_second,
        )
        for e in entries
    }


class _Hold:
    """What one thread holds of one host's limit: open responses, and whether the slot is
    taken from the semaphore right now (it is not while the thread sleeps a retry)."""

    __slots__ = ("count", "taken")

    def __init__(self) -> None:
        self.count = 0
        self.taken = False


class HostLimit:
    """The limit of one host. Thread-safe."""

    def __init__(
        self,
        limit: Limit | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit or Limit()
        self._sem = threading.BoundedSemaphore(max(1, self.limit.max_concurrent))
        self._local = threading.local()
        self._lock = threading.Lock()
        rate = self.limit.max_per_second
        self._interval = 1.0 / rate if rate and rate > 0 and math.isfinite(rate) else 0.0
        self._next = 0.0
        self._clock = clock
        self._sleep = sleep

    def _hold(self) -> _Hold:
        hold: _Hold | None = getattr(self._local, "hold", None)
        if hold is None:
            hold = self._local.hold = _Hold()
        return hold

    def acquire(self) -> Callable[[], None]:
        """Take a slot (or share the one this thread holds); returns the idempotent
        release for this request, which any thread may call."""
        hold = self._hold()
        with self._lock:
            need = hold.count == 0 and not hold.taken
        if need:
            self._sem.acquire()
        with self._lock:
            hold.taken = hold.taken or need
            hold.count += 1
        self._pace()
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                hold.count -= 1
                give_back = hold.count == 0 and hold.taken
                if give_back:
                    hold.taken = False
            if give_back:
                self._sem.release()

        return release

    def _pace(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            self._sleep(start - now)

    def sleeping(self, seconds: float, sleep: Callable[[float], None]) -> None:
        """``sleep(seconds)`` with this thread's slot given back for the wait."""
        hold = self._hold()
        with self._lock:
            had = hold.taken
            hold.taken = False
        if had:
            self._sem.release()
        try:
            sleep(seconds)
        finally:
            if had:
                self._sem.acquire()
                with self._lock:
                    if hold.count > 0:
                        hold.taken = True
                        had = False
                if had:  # every response was closed meanwhile (by another thread)
                    self._sem.release()


class LimitedTransport(Transport):
    """A :class:`Transport` whose API requests count against a :class:`HostLimit`."""

    def __init__(self, host: str, *, limit: HostLimit, **kwargs: Any) -> None:
        sleep: Callable[[float], None] = kwargs.pop("sleep", time.sleep)
        # room in the connection pool for every request the limit lets through, nested too
        kwargs["pool_size"] = max(int(kwargs.get("pool_size", 8)), limit.limit.max_concurrent * 2)
        self.limit = limit
        super().__init__(host, sleep=lambda s: limit.sleeping(s, sleep), **kwargs)

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        release = self.limit.acquire()
        try:
            response = super().request(*args, **kwargs)
        except BaseException:
            release()
            raise
        if not kwargs.get("stream", False):
            release()  # the body is read already
            return response
        close = response.close

        def close_and_release() -> None:
            try:
                close()
            finally:
                release()

        response.close = close_and_release  # type: ignore[method-assign]
        # a streamed response nobody closes still gives its slot back when it is dropped
        weakref.finalize(response, release)
        return response


__all__ = [
    "DEFAULT_MAX_CONCURRENT",
    "ENV_MAX_CONCURRENT",
    "MAX_CONCURRENT_CEILING",
    "HostLimit",
    "Limit",
    "LimitEntry",
    "LimitedTransport",
    "default_limit",
    "limits_from_config",
]
