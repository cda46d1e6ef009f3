"""A deadline for one whole HTTP request made with ``requests``.

``requests``' ``timeout`` bounds each socket operation, not the request: a server that
sends one byte just before each read would time out holds it for ever. Under
:class:`Deadline`, every socket a :func:`new_session` session opens (or reuses) in this
thread is shut down when the deadline passes, which wakes the blocked read; the caller
then sees ``deadline.expired`` and reports the deadline, whatever error the cut caused.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager

from acr_ci import alarms

if TYPE_CHECKING:
    import requests


class DeadlinePassed(Exception):
    """A request under a :class:`Deadline` did not complete before it passed."""


class Deadline:
    """One request's deadline. When it passes, the sockets the request opened in this
    thread are shut down, so a receiver that drips its answer (socket timeouts bound each
    read, not the whole) cannot hold the request past it."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False
        self._seconds = seconds
        self._alarm: alarms.Alarm | None = None

    def __enter__(self) -> Deadline:
        _current.deadline = self
        self._alarm = alarms.after(self._seconds, self._expire)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._alarm is not None:
            self._alarm.cancel()
        _current.deadline = None

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


_current = threading.local()
"""``deadline``: the :class:`Deadline` of the request this thread is making, if any."""


def _shut(sock: socket.socket) -> None:
    """Wake whoever reads ``sock`` (the plain socket's shutdown, under TLS too)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing to wake


def _watch(sock: socket.socket | None) -> None:
    deadline: Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    """Hands its socket to the current request's :class:`Deadline` (a new one as soon as
    it exists, before any TLS handshake; a kept-alive one when it is used again)."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    """:class:`_WatchedHTTPConnection` for https."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections a :class:`Deadline` can cut off."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:  # not SOCKS: its pools are its own
            manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager


def new_session() -> requests.Session:
    """A session whose connections a :class:`Deadline` can cut off."""
    import requests

    session = requests.Session()
    adapter = DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


__all__ = ["Deadline", "DeadlinePassed", "new_session"]
