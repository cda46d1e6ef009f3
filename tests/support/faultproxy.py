"""A byte-counting HTTP/1.1 reverse proxy that injects faults, on real loopback sockets.

``FaultProxy("127.0.0.1:5000").start()`` listens on ``127.0.0.1:PORT`` (``.host``/``.url``)
and forwards every request to the upstream registry, streaming bodies in both directions
(``Content-Length``, ``Transfer-Encoding: chunked`` or read-to-close), keeping connections
alive, handling ``HEAD``, and rewriting ``Location`` headers that name the upstream so a
client keeps talking through the proxy. ``Host`` is passed through unchanged, so the
registry already builds upload URLs that point at the proxy.

Faults, chosen deterministically in request order from ``seed``: for each request that
matches ``match`` (a regex searched in ``"METHOD /path?query"``), the first
``fail_first`` fail, then each fails with probability ``fault_rate``; the kind is drawn
from ``faults``:

* ``"500"`` — the request body is read and discarded, the answer is ``500``;
* ``"429"`` — likewise, ``429 Too Many Requests`` with ``Retry-After: {retry_after}``
  (no header when ``retry_after`` is ``None``);
* ``"drop_request"`` — half the request body is forwarded, then both connections are
  closed (requests without a body get ``drop_response`` instead);
* ``"drop_response"`` — the response headers and half its body reach the client, then
  the connection is closed (a response without a body is cut before its headers).

Counters (all thread-safe): :attr:`FaultProxy.requests`, :attr:`FaultProxy.bytes_up`
(bytes sent to the registry: request lines, headers and bodies),
:attr:`FaultProxy.bytes_down` (bytes sent back to clients), :attr:`FaultProxy.faults_injected`
and the per-request :attr:`FaultProxy.log`. With ``fault_rate=0`` and ``fail_first=0`` it
is a faithful proxy.
"""

from __future__ import annotations

import random
import re
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from io import BufferedReader
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    Reader = BufferedReader[socket.SocketIO]
    """A buffered reader over a socket."""

FAULT_KINDS = ("500", "429", "drop_request", "drop_response")
_CHUNK = 64 * 1024
_TLS_REFUSAL = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_HOP_BY_HOP = {"expect", "proxy-connection", "keep-alive"}


@dataclass
class ProxyRecord:
    """One request that went through (or was refused by) the proxy."""

    method: str
    target: str
    """The request target (path and query)."""
    status: int | None
    """The status the client saw; ``None`` when the connection was dropped first."""
    fault: str | None
    """The injected fault kind, if any."""
    bytes_up: int = 0
    bytes_down: int = 0


class _Closed(Exception):
    """A peer closed its connection."""


class _Counter:
    """Wraps a socket: ``sendall`` counts bytes into the proxy and the current record."""

    def __init__(self, sock: socket.socket, proxy: FaultProxy, up: bool) -> None:
        self.sock = sock
        self.proxy = proxy
        self.up = up
        self.record: ProxyRecord | None = None

    def send(self, data: bytes) -> None:
        if not data:
            return
        self.sock.sendall(data)
        with self.proxy._lock:
            if self.up:
                self.proxy._bytes_up += len(data)
                if self.record:
                    self.record.bytes_up += len(data)
            else:
                self.proxy._bytes_down += len(data)
                if self.record:
                    self.record.bytes_down += len(data)


def _read_head(reader: Reader) -> list[bytes]:
    """Header block lines (first line included), without CRLFs; [] on clean EOF."""
    lines: list[bytes] = []
    while True:
        line = reader.readline(65537)
        if not line:
            if lines:
                raise _Closed("EOF inside headers")
            return []
        if line in (b"\r\n", b"\n"):
            if not lines:  # tolerate stray CRLF between messages
                continue
            return lines
        lines.append(line.rstrip(b"\r\n"))


def _headers(lines: list[bytes]) -> list[tuple[str, str]]:
    out = []
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        out.append((name.strip(), value.strip()))
    return out


def _get(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _encode_head(first: str, headers: list[tuple[str, str]]) -> bytes:
    text = first + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return text.encode("latin-1")


class _Body:
    """Streams a message body in its original framing, in pieces."""

    def __init__(self, reader: Reader, headers: list[tuple[str, str]], *, to_close: bool) -> None:
        self.reader = reader
        te = (_get(headers, "transfer-encoding") or "").lower()
        cl = _get(headers, "content-length")
        self.chunked = "chunked" in te
        self.length = None if self.chunked or cl is None else int(cl)
        self.to_close = to_close and not self.chunked and cl is None
        self.present = self.chunked or self.to_close or (self.length or 0) > 0

    def pieces(self) -> Iterator[bytes]:
        """Yield raw byte pieces (chunk framing included) until the body ends."""
        if self.chunked:
            while True:
                size_line = self.reader.readline(1024)
                if not size_line:
                    raise _Closed("EOF in chunk size")
                yield size_line
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, then the empty line
                        trailer = self.reader.readline(65537)
                        if not trailer:
                            raise _Closed("EOF in trailers")
                        yield trailer
                        if trailer in (b"\r\n", b"\n"):
                            return
                left = size + 2  # data + CRLF
                while left:
                    data = self.reader.read(min(_CHUNK, left))
                    if not data:
                        raise _Closed("EOF in chunk")
                    left -= len(data)
                    yield data
        elif self.length is not None:
            left = self.length
            while left:
                data = self.reader.read1(min(_CHUNK, left))
                if not data:
                    raise _Closed("EOF in body")
                left -= len(data)
                yield data
        elif self.to_close:
            while True:
                data = self.reader.read1(_CHUNK)
                if not data:
                    return
                yield data

    def approx_len(self) -> int:
        return self.length if self.length is not None else 2 * _CHUNK


class FaultProxy:
    """See the module docstring. Use ``with FaultProxy(host) as p:`` or start/stop."""

    def __init__(
        self,
        upstream: str,
        *,
        fault_rate: float = 0.0,
        faults: Sequence[str] = ("500", "429"),
        seed: int = 0,
        retry_after: int | None = 0,
        fail_first: int = 0,
        match: str | None = None,
        on_request: Callable[[ProxyRecord], None] | None = None,
    ) -> None:
        host, _, port = upstream.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"upstream must be HOST:PORT, not {upstream!r}")
        unknown = set(faults) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {FAULT_KINDS}")
        self.upstream = upstream
        self._up_addr = (host, int(port))
        self.fault_rate = fault_rate
        """Share of matching requests that fail (0.0–1.0); may be changed while running."""
        self.faults = tuple(faults)
        self.retry_after = retry_after
        self.fail_first = fail_first
        """How many of the next matching requests fail unconditionally (counts down)."""
        self.match = re.compile(match) if match else None
        self.on_request = on_request
        """Called in the proxy's thread for each request before it is forwarded (may block)."""
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._bytes_up = 0
        self._bytes_down = 0
        self._accepted = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self.log: list[ProxyRecord] = []
        """One record per request, in arrival order."""
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()

    # -- public ------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._listener is not None, "proxy not started"
        return int(self._listener.getsockname()[1])

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` of the proxy (use it in image references)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def requests(self) -> int:
        with self._lock:
            return len(self.log)

    @property
    def bytes_up(self) -> int:
        """Bytes sent to the registry (request lines, headers, bodies)."""
        with self._lock:
            return self._bytes_up

    @property
    def bytes_down(self) -> int:
        """Bytes sent back to clients."""
        with self._lock:
            return self._bytes_down

    @property
    def connections(self) -> int:
        """Client connections accepted so far (keep-alive reuse keeps this low)."""
        with self._lock:
            return self._accepted

    @property
    def max_in_flight(self) -> int:
        """The most requests open at once so far (from the request line to the end of the
        response body)."""
        with self._lock:
            return self._max_in_flight

    @property
    def faults_injected(self) -> int:
        with self._lock:
            return sum(1 for r in self.log if r.fault)

    def reset_counts(self) -> None:
        """Zero the byte counters and clear the log."""
        with self._lock:
            self._bytes_up = self._bytes_down = self._accepted = 0
            self._max_in_flight = self._in_flight
            self.log.clear()

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every open connection. Idempotent."""
        self._stopping.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            _hard_close(c)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(client)
                self._accepted += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _decide(self, method: str, target: str, has_body: bool) -> str | None:
        with self._lock:
            if self.match is not None and not self.match.search(f"{method} {target}"):
                return None
            if self.fail_first > 0:
                self.fail_first -= 1
                fail = True
            else:
                fail = self.fault_rate > 0 and self._rng.random() < self.fault_rate
            if not fail or not self.faults:
                return None
            kind = self.faults[self._rng.randrange(len(self.faults))]
        if kind == "drop_request" and not has_body:
            kind = "drop_response"
        return kind

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        up_reader: Reader | None = None
        open_request = False
        reader = BufferedReader(socket.SocketIO(client, "rb"), _CHUNK)
        down = _Counter(client, self, up=False)
        try:
            while not self._stopping.is_set():
                if reader.peek(1)[:1] == b"\x16":
                    # A TLS ClientHello: answer in plain HTTP, as Go's server does, so
                    # clients probing https first fall back to http at once.
                    down.send(_TLS_REFUSAL)
                    return
                lines = _read_head(reader)
                if not lines:
                    return
                first = lines[0].decode("latin-1")
                method, target, version = [*first.split(" ", 2), "", ""][:3]
                if not version.startswith("HTTP/1."):
                    down.send(_BAD_REQUEST)
                    return
                headers = _headers(lines)
                body = _Body(reader, headers, to_close=False)
                record = ProxyRecord(method, target, None, None)
                with self._lock:
                    self.log.append(record)
                    self._in_flight += 1
                    self._max_in_flight = max(self._max_in_flight, self._in_flight)
                open_request = True
                down.record = record
                if self.on_request is not None:
                    self.on_request(record)
                fault = self._decide(method, target, body.present)
                record.fault = fault
                expect = (_get(headers, "expect") or "").lower() == "100-continue"
                headers = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
                if expect:
                    down.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                client_close = (_get(headers, "connection") or "").lower() == "close"

                if fault in ("500", "429"):
                    for _ in body.pieces():
                        pass
                    self._refuse(down, record, fault)
                    open_request = self._close_request(open_request)
                    if client_close:
                        return
                    continue

                if upstream is None:
                    upstream = socket.create_connection(self._up_addr, timeout=120)
                    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    with self._lock:
                        self._conns.add(upstream)
                    up_reader = BufferedReader(socket.SocketIO(upstream, "rb"), _CHUNK)
                assert up_reader is not None
                up = _Counter(upstream, self, up=True)
                up.record = record
                up.send(_encode_head(first, headers))
                if fault == "drop_request":
                    budget = body.approx_len() // 2
                    for piece in body.pieces():
                        if budget <= 0:
                            break
                        up.send(piece[:budget])
                        budget -= len(piece)
                    return  # finally: both sockets closed mid-body
                try:
                    for piece in body.pieces():
                        up.send(piece)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the registry answered early and closed; relay its answer

                keep = self._relay_response(up_reader, down, record, method, fault)
                open_request = self._close_request(open_request)
                if not keep:
                    _hard_close(upstream)
                    with self._lock:
                        self._conns.discard(upstream)
                    upstream, up_reader = None, None
                if fault == "drop_response" or client_close or keep is None:
                    return
        except (_Closed, OSError, ValueError):
            return
        finally:
            self._close_request(open_request)
            if upstream is not None:
                _hard_close(upstream)
            _hard_close(client)
            with self._lock:
                self._conns.discard(client)
                if upstream is not None:
                    self._conns.discard(upstream)

    def _close_request(self, open_request: bool) -> bool:
        """Count an open request as done (once); returns the new ``open_request``: False."""
        if open_request:
            with self._lock:
                self._in_flight -= 1
        return False

    def _refuse(self, down: _Counter, record: ProxyRecord, fault: str) -> None:
        status, reason = (
            (500, "Internal Server Error") if fault == "500" else (429, "Too Many Requests")
        )
        body = (
            b'{"errors":[{"code":"UNKNOWN","message":"injected fault"}]}'
            if fault == "500"
            else b'{"errors":[{"code":"TOOMANYREQUESTS","message":"injected fault"}]}'
        )
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if fault == "429" and self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        down.send(_encode_head(f"HTTP/1.1 {status} {reason}", headers) + body)
        record.status = status

    def _relay_response(
        self, up_reader: Reader, down: _Counter, record: ProxyRecord, method: str, fault: str | None
    ) -> bool | None:
        """Relay one response. True: keep both alive; False: reopen upstream; None: close all."""
        while True:
            lines = _read_head(up_reader)
            if not lines:
                raise _Closed("upstream closed before answering")
            first = lines[0].decode("latin-1")
            status = int(first.split(" ", 2)[1])
            headers = _headers(lines)
            if 100 <= status < 200 and status != 101:
                continue  # interim answers were already given to the client by us
            break
        headers = [(k, self._rewrite(v) if k.lower() == "location" else v) for k, v in headers]
        no_body = method == "HEAD" or status in (204, 304)
        body = _Body(up_reader, headers, to_close=not no_body)
        upstream_close = (_get(headers, "connection") or "").lower() == "close" or body.to_close
        record.status = status
        if fault == "drop_response":
            if no_body or not body.present:
                return None  # cut before the headers
            down.send(_encode_head(first, headers))
            budget = body.approx_len() // 2
            for piece in body.pieces():
                if budget <= 0:
                    break
                down.send(piece[:budget])
                budget -= len(piece)
            return None
        down.send(_encode_head(first, headers))
        if not no_body:
            for piece in body.pieces():
                down.send(piece)
        if body.to_close:
            return None  # the client learns the end of the body from the close
        return not upstream_close

    def _rewrite(self, location: str) -> str:
        for prefix in (f"http://{self.upstream}", f"https://{self.upstream}"):
            if location.startswith(prefix):
                return self.url + location[len(prefix) :]
        return location


def _hard_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
