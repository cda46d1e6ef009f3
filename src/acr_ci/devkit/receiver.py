"""A real HTTP receiver for webhooks: it records every request and answers as scripted.

``WebhookReceiver().start()`` listens on ``127.0.0.1:PORT`` (a thread); ``.url(path)`` gives
``http://127.0.0.1:PORT/path``. Every request is kept as a :class:`ReceivedRequest` (method,
path, query, headers, exact body bytes) in :attr:`WebhookReceiver.requests`, in arrival order.

Answers: ``receiver.script(path, [500, 500, 200])`` makes the next requests to ``path`` get
those statuses in turn (the last one repeats); paths without a script get ``default_status``
(200). ``delay`` (seconds) holds every answer back, for timeout tests. A path is matched
without its query string. A body larger than :data:`MAX_BODY` is not read: it gets ``413``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 8 * 1024 * 1024
"""The largest request body the receiver reads (webhook payloads are a few KiB)."""


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver saw it."""

    method: str
    """``POST``, ``GET``…"""
    path: str
    """The path without the query."""
    query: dict[str, list[str]]
    """The parsed query string."""
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes
    """The exact body bytes."""
    status: int
    """The status the receiver answered with."""

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class WebhookReceiver:
    """A recording HTTP server on loopback with scripted statuses."""

    def __init__(self, *, default_status: int = 200, delay: float = 0.0) -> None:
        self.default_status = default_status
        self.delay = delay
        self.requests: list[ReceivedRequest] = []
        self._scripts: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------

    def start(self) -> WebhookReceiver:
        """Listen on a free loopback port, serving from a daemon thread."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def _handle(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY:
                    self.close_connection = True
                    self._answer(413)
                    return
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                status = receiver._next_status(parts.path)
                record = ReceivedRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    status=status,
                )
                with receiver._lock:
                    receiver.requests.append(record)
                if receiver.delay:
                    time.sleep(receiver.delay)
                self._answer(status)

            def _answer(self, status: int) -> None:
                payload = json.dumps({"status": status}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timeout tests)
                    pass

            do_POST = _handle
            do_GET = _handle
            do_PUT = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Idempotent."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, path: str, statuses: Sequence[int]) -> None:
        """Answer the next requests to ``path`` with ``statuses`` in turn (the last repeats)."""
        with self._lock:
            self._scripts[path] = list(statuses)

    def _next_status(self, path: str) -> int:
        with self._lock:
            script = self._scripts.get(path)
            if not script:
                return self.default_status
            return script.pop(0) if len(script) > 1 else script[0]

    # -- addresses and queries --------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (only once started)."""
        assert self._server is not None, "receiver not started"
        return self._server.server_port

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/hook") -> str:
        """``origin`` + ``path``."""
        return self.origin + path

    def to(self, path: str) -> list[ReceivedRequest]:
        """The requests received at ``path``, in order."""
        with self._lock:
            return [r for r in self.requests if r.path == path]


__all__ = ["MAX_BODY", "ReceivedRequest", "WebhookReceiver"]
