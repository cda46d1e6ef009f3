"""Tag-list ``Link`` pagination and ``Retry-After`` over real HTTP.

distribution 2.8 (the registry that runs here) ignores ``n=`` on tags/list, so
a small stdlib HTTP server stands in for a paginating registry; everything
else about the client is real (sockets, requests, the transport's retries).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from acr_ci.errors import NotFoundError, RateLimitedError
from acr_ci.registry import Client, Reference, RetryPolicy
from acr_ci.registry.auth import DockerConfigCredentials

TAGS = [f"t{i:02d}" for i in range(7)]
REFERRERS = [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + c * 64, "size": 100 + i,
     "artifactType": f"application/x-kind-{i}"}
    for i, c in enumerate("abc")
]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen.append((self.path, time.monotonic()))
        parts = urlsplit(self.path)
        if parts.path == "/v2/":
            self._send(200, b"{}")
            return
        if parts.path == "/v2/busy/app/tags/list":
            if self.server.busy_left > 0:
                self.server.busy_left -= 1
                self._send(429, b"{}", {"Retry-After": "1"})
                return
            self._send(200, json.dumps({"name": "busy/app", "tags": ["x"]}).encode())
            return
        if parts.path.startswith("/v2/team/app/referrers/"):
            page = int(parse_qs(parts.query).get("page", ["0"])[0])
            entries = [REFERRERS[page]]
            headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
            if page + 1 < len(REFERRERS):
                headers["Link"] = f'<{parts.path}?page={page + 1}>; rel="next"'
            doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": entries}
            self._send(200, json.dumps(doc).encode(), headers)
            return
        if parts.path != "/v2/team/app/tags/list":
            self._send(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}')
            return
        q = parse_qs(parts.query)
        n = int(q.get("n", ["1000"])[0])
        last = q.get("last", [""])[0]
        rest = [t for t in TAGS if t > last]
        page, more = rest[:n], rest[n:]
        headers = {"Content-Type": "application/json"}
        if more:
            nxt = f"/v2/team/app/tags/list?n={n}&last={page[-1]}"
            # alternate relative and absolute links
            if len(self.server.seen) % 2:
                nxt = f"http://{self.headers['Host']}{nxt}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        self._send(200, json.dumps({"name": "team/app", "tags": page}).encode(), headers)


class _Server(ThreadingHTTPServer):
    seen: list[tuple[str, float]]
    busy_left: int


@pytest.fixture
def fake_registry() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.seen = []
    server.busy_left = 2
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _client(attempts: int = 5) -> Client:
    return Client(credentials=DockerConfigCredentials(paths=[]),
                  retry=RetryPolicy(attempts=attempts, base_delay=0.01, max_retry_after=2.0))


@pytest.mark.parametrize("page_size", [1, 2, 3, 7, 100], ids=lambda n: f"n{n}")
def test_tags_follow_link_pages(fake_registry: _Server, page_size: int) -> None:
    host = f"127.0.0.1:{fake_registry.server_address[1]}"
    with _client() as c:
        tags = c.repository(Reference.parse(f"{host}/team/app")).list_tags(page_size=page_size)
    assert tags == TAGS
    pages = [p for p, _ in fake_registry.seen if "/tags/list" in p]
    assert len(pages) == -(-len(TAGS) // page_size)


def test_unknown_repository(fake_registry: _Server) -> None:
    host = f"127.0.0.1:{fake_registry.server_address[1]}"
    with _client() as c, pytest.raises(NotFoundError) as info:
        c.list_tags(Reference.parse(f"{host}/other/app"))
    assert "NAME_UNKNOWN" in info.value.message and host in info.value.message


def test_retry_after_is_honoured(fake_registry: _Server) -> None:
    host = f"127.0.0.1:{fake_registry.server_address[1]}"
    with _client() as c:
        assert c.list_tags(Reference.parse(f"{host}/busy/app")) == ["x"]
    times = [t for p, t in fake_registry.seen if p.startswith("/v2/busy/")]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.9 and times[2] - times[1] >= 0.9


def test_rate_limit_gives_up(fake_registry: _Server) -> None:
    fake_registry.busy_left = 10
    host = f"127.0.0.1:{fake_registry.server_address[1]}"
    with _client(attempts=2) as c, pytest.raises(RateLimitedError):
        c.list_tags(Reference.parse(f"{host}/busy/app"))


def test_referrers_api_pages(fake_registry: _Server) -> None:
    host = f"127.0.0.1:{fake_registry.server_address[1]}"
    with _client() as c:
        repo = c.repository(Reference.parse(f"{host}/team/app"))
        found = repo.referrers("sha256:" + "f" * 64)
        assert repo.supports_referrers_api()
    assert [(d.digest, d.artifact_type) for d in found] == [
        (r["digest"], r["artifactType"]) for r in REFERRERS
    ]
    assert not [p for p, _ in fake_registry.seen if "sha256-" in p], "no tag fallback when the API answers"
