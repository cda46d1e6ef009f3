"""A hostile registry on loopback: endless or looping pages, dripping bodies and headers,
huge answers, odd token lifetimes, ``~/.netrc`` on redirects, proxies from the environment.

A small stdlib HTTP server plays the registry; every other part of the client is real
(sockets, requests, the transport's retries and deadlines). The server counts what it is
sent, so each test asserts how much work the client did, not only that it stopped.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from acr_ci.errors import RegistryError, TransientError, UnauthorizedError, UnsupportedError
from acr_ci.registry import Client, Reference, RetryPolicy
from acr_ci.registry.auth import Challenge, Credentials, DockerConfigCredentials, StaticCredentials
from acr_ci.registry.transport import MAX_PAGES, Transport, token_lifetime

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
Route = Callable[[BaseHTTPRequestHandler, str], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, Route]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = routes
        self.hits: dict[str, int] = {}
        self.auth_seen: list[str | None] = []
        self.lock = threading.Lock()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # one write per answer (no Nagle + delayed-ACK stalls)

    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> None:
        path = (
            urlsplit(self.path).path if not self.path.startswith("/") else self.path.split("?")[0]
        )
        with self.server.lock:
            self.server.auth_seen.append(self.headers.get("Authorization"))
        for prefix, route in self.server.routes.items():
            if path.startswith(prefix):
                with self.server.lock:
                    self.server.hits[prefix] = self.server.hits.get(prefix, 0) + 1
                try:
                    route(self, path)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
        self.send(404, b'{"errors":[{"code":"NOT_FOUND","message":"no"}]}')

    do_GET = do_HEAD = do_POST = _route


def _ok_ping(h: BaseHTTPRequestHandler, path: str) -> None:
    h.send(200, b"{}")  # type: ignore[attr-defined]


@pytest.fixture
def serve() -> Iterator[Callable[[dict[str, Route]], _Server]]:
    servers: list[_Server] = []

    def start(routes: dict[str, Route]) -> _Server:
        s = _Server({"/v2/": _ok_ping, **routes} if "/v2/" not in routes else routes)
        # the most specific prefix first
        s.routes = dict(sorted(s.routes.items(), key=lambda kv: -len(kv[0])))
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _client(tmp_path: Path, **kwargs: object) -> Client:
    return Client(credentials=DockerConfigCredentials(paths=[tmp_path / "none.json"]), **kwargs)  # type: ignore[arg-type]


# -- pagination -------------------------------------------------------------------------


def _tags_link_to_self(h: BaseHTTPRequestHandler, path: str) -> None:
    h.send(200, json.dumps({"tags": ["a"]}).encode(), {"Link": f'<{h.path}>; rel="next"'})  # type: ignore[attr-defined]


def _tags_endless(h: BaseHTTPRequestHandler, path: str) -> None:
    page = int(parse_qs(urlsplit(h.path).query).get("last", ["0"])[0])
    nxt = f"/v2/loop/app/tags/list?n=1&last={page + 1}"
    h.send(200, json.dumps({"tags": [f"t{page}"]}).encode(), {"Link": f'<{nxt}>; rel="next"'})  # type: ignore[attr-defined]


def _referrers_back(h: BaseHTTPRequestHandler, path: str) -> None:
    q = parse_qs(urlsplit(h.path).query)
    page = int(q.get("page", ["0"])[0])
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    # (no page) -> 1 -> 0 -> 1: the third link points back
    link = f'<{path}?page={1 - page}>; rel="next"'
    h.send(200, json.dumps(doc).encode(), {"Content-Type": OCI_INDEX, "Link": link})  # type: ignore[attr-defined]


def _referrers_endless(h: BaseHTTPRequestHandler, path: str) -> None:
    page = int(parse_qs(urlsplit(h.path).query).get("page", ["0"])[0])
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    link = f'<{path}?page={page + 1}>; rel="next"'
    h.send(200, json.dumps(doc).encode(), {"Content-Type": OCI_INDEX, "Link": link})  # type: ignore[attr-defined]


def test_tag_list_link_to_itself_stops_at_once(
    serve: Callable[..., _Server], tmp_path: Path
) -> None:
    s = serve({"/v2/loop/app/tags/list": _tags_link_to_self})
    with _client(tmp_path) as c, pytest.raises(RegistryError) as info:
        c.list_tags(Reference.parse(f"{s.host}/loop/app"))
    assert "tag list of" in info.value.message and "loop/app" in info.value.message
    assert "points back" in info.value.message
    assert s.hits["/v2/loop/app/tags/list"] == 1


def test_tag_list_that_never_ends_stops_at_the_page_limit(
    serve: Callable[..., _Server], tmp_path: Path
) -> None:
    s = serve({"/v2/loop/app/tags/list": _tags_endless})
    with _client(tmp_path) as c, pytest.raises(RegistryError) as info:
        c.list_tags(Reference.parse(f"{s.host}/loop/app"))
    assert f"more than {MAX_PAGES} pages" in info.value.message and "loop/app" in info.value.message
    assert s.hits["/v2/loop/app/tags/list"] == MAX_PAGES


@pytest.mark.parametrize(
    ("route", "pages"), [(_referrers_back, 3), (_referrers_endless, MAX_PAGES)]
)
def test_referrers_pagination_is_bounded(
    serve: Callable[..., _Server], tmp_path: Path, route: Route, pages: int
) -> None:
    s = serve({"/v2/loop/app/referrers/": route})
    with _client(tmp_path) as c, pytest.raises(RegistryError) as info:
        c.referrers(Reference.parse(f"{s.host}/loop/app@sha256:{'a' * 64}"))
    assert "referrers of" in info.value.message and "loop/app" in info.value.message
    assert s.hits["/v2/loop/app/referrers/"] == pages


# -- deadlines and retry budgets ----------------------------------------------------------


def _drip_body(h: BaseHTTPRequestHandler, path: str) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
    h.send_header("Content-Length", "1000")
    h.end_headers()
    for _ in range(1000):
        h.wfile.write(b" ")
        h.wfile.flush()
        time.sleep(0.3)


def _drip_headers(h: BaseHTTPRequestHandler, path: str) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
        h.wfile.write(bytes([byte]))
        h.wfile.flush()
        time.sleep(0.3)


def _drip_tags(h: BaseHTTPRequestHandler, path: str) -> None:
    _drip_body(h, path)


@pytest.mark.parametrize(
    ("prefix", "route", "call"),
    [
        ("/v2/drip/app/manifests/", _drip_body, "manifest"),
        ("/v2/drip/app/manifests/", _drip_headers, "manifest"),
        ("/v2/drip/app/tags/list", _drip_tags, "tags"),
    ],
    ids=["manifest-body", "headers", "tag-list-body"],
)
def test_a_dripping_server_is_cut_off_at_the_deadline(
    serve: Callable[..., _Server], tmp_path: Path, prefix: str, route: Route, call: str
) -> None:
    s = serve({prefix: route})
    retry = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01)
    ref = Reference.parse(f"{s.host}/drip/app:v1")
    start = time.monotonic()
    with _client(tmp_path, deadline=1.0, timeout=5.0, retry=retry) as c:
        with pytest.raises(TransientError) as info:
            c.get_manifest(ref) if call == "manifest" else c.list_tags(ref)
    elapsed = time.monotonic() - start
    assert "deadline" in info.value.message
    assert s.hits[prefix] == 2  # two tries, each cut off
    assert elapsed < 6, elapsed


def _always_503(h: BaseHTTPRequestHandler, path: str) -> None:
    h.send(503, b"{}")  # type: ignore[attr-defined]


def test_retries_stop_at_the_time_budget(serve: Callable[..., _Server], tmp_path: Path) -> None:
    s = serve({"/v2/busy/app/tags/list": _always_503})
    retry = RetryPolicy(attempts=1000, base_delay=0.1, max_delay=0.1, budget=1.0)
    start = time.monotonic()
    with _client(tmp_path, retry=retry) as c, pytest.raises(TransientError):
        c.list_tags(Reference.parse(f"{s.host}/busy/app"))
    assert time.monotonic() - start < 3
    assert 5 <= s.hits["/v2/busy/app/tags/list"] <= 25


def test_budget_refuses_a_retry_that_would_end_after_it() -> None:
    policy = RetryPolicy(attempts=10, budget=5.0)
    now = time.monotonic()
    assert policy.allows(1, now, 1.0)
    assert not policy.allows(1, now, 6.0)
    assert not policy.allows(1, now - 10, 0.0)
    assert not policy.allows(10, now, 0.0)


# -- unbounded answers ---------------------------------------------------------------------


def _huge_tag_page(h: BaseHTTPRequestHandler, path: str) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.end_headers()  # no Content-Length: read until the connection ends
    h.wfile.write(b'{"tags": ["' + b"a" * 1024)
    for _ in range(8 * 1024):  # up to 8 MiB, more than the cap
        h.wfile.write(b"a" * 1024)


def _deep_tag_page(h: BaseHTTPRequestHandler, path: str) -> None:
    h.send(200, b"[" * 200_000 + b"]" * 200_000, {"Content-Type": "application/json"})  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("route", "text"), [(_huge_tag_page, "larger than"), (_deep_tag_page, "nested")]
)
def test_huge_or_deep_answers_are_refused(
    serve: Callable[..., _Server], tmp_path: Path, route: Route, text: str
) -> None:
    s = serve({"/v2/big/app/tags/list": route})
    with _client(tmp_path) as c, pytest.raises(UnsupportedError) as info:
        c.list_tags(Reference.parse(f"{s.host}/big/app"))
    assert text in info.value.message


# -- tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e999, 60.0),
        (float("nan"), 60.0),
        (-5, 60.0),
        (10**400, 86400.0),
        (300, 300.0),
        ("300", 60.0),
        (True, 60.0),
        (None, 60.0),
        (1e300, 86400.0),
    ],
)
def test_token_lifetime_is_clamped(value: object, expected: float) -> None:
    assert token_lifetime(value) == expected


@pytest.mark.parametrize("expires", ["1e999", "NaN", "-1e999", "-5", "1" + "0" * 400, '"soon"'])
def test_odd_token_lifetimes_still_give_a_working_token(
    serve: Callable[..., _Server], tmp_path: Path, expires: str
) -> None:
    holder: dict[str, str] = {}

    def ping(h: BaseHTTPRequestHandler, path: str) -> None:
        realm = f"http://{holder['host']}/token"
        h.send(401, b"{}", {"WWW-Authenticate": f'Bearer realm="{realm}",service="t"'})  # type: ignore[attr-defined]

    def token(h: BaseHTTPRequestHandler, path: str) -> None:
        h.send(200, ('{"token": "tok", "expires_in": ' + expires + "}").encode())  # type: ignore[attr-defined]

    def tags(h: BaseHTTPRequestHandler, path: str) -> None:
        if h.headers.get("Authorization") != "Bearer tok":
            ping(h, path)
            return
        h.send(200, b'{"tags": ["v1"]}')  # type: ignore[attr-defined]

    s = serve({"/v2/": ping, "/token": token, "/v2/tok/app/tags/list": tags})
    holder["host"] = s.host
    with _client(tmp_path) as c:
        assert c.list_tags(Reference.parse(f"{s.host}/tok/app")) == ["v1"]


# -- credentials ---------------------------------------------------------------------------


def _creds(host: str) -> StaticCredentials:
    return StaticCredentials(Credentials("u", "secret-pw"), frozenset({host}))


@pytest.mark.parametrize(
    "realm", ["http://auth.example.test/token", "http://auth.example.test:80/t"]
)
def test_no_basic_credentials_to_a_plain_http_realm_on_another_host(realm: str) -> None:
    """The registry is insecure (listed), the realm's host is not: refused before any request."""
    t = Transport(
        "registry.example.test:5000",
        credentials=_creds("registry.example.test:5000"),
        insecure=True,
        is_insecure=lambda h: False,
    )
    with pytest.raises(UnauthorizedError) as info:
        t._fetch_token(Challenge("bearer", {"realm": realm}), ["repository:x:pull"])
    assert "not HTTPS" in info.value.message
    assert "auth.example.test" in (info.value.hint or "")
    assert "secret-pw" not in info.value.message + (info.value.hint or "")


def test_a_loopback_registry_does_not_make_a_remote_http_realm_trusted() -> None:
    t = Transport("127.0.0.1:5000", credentials=_creds("127.0.0.1:5000"))
    with pytest.raises(UnauthorizedError):
        t._fetch_token(Challenge("bearer", {"realm": "http://auth.example.test/token"}), [])


def test_netrc_is_not_used_on_redirects(
    serve: Callable[..., _Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = serve({"/blob": lambda h, p: h.send(200, b"x")})  # type: ignore[attr-defined]
    port = target.server_address[1]

    def redirect(h: BaseHTTPRequestHandler, path: str) -> None:
        h.send(307, b"", {"Location": f"http://localhost:{port}/blob"})  # type: ignore[attr-defined]

    s = serve({"/v2/r/app/tags/list": redirect})
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine localhost login netrc-user password netrc-pass\n"
        "machine 127.0.0.1 login netrc-user password netrc-pass\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with _client(tmp_path) as c, pytest.raises(UnsupportedError):
        c.list_tags(Reference.parse(f"{s.host}/r/app"))  # "x" is not JSON: fine
    assert target.hits["/blob"] == 1
    assert target.auth_seen == [None]
    assert all(a is None for a in s.auth_seen)


def test_proxies_from_the_environment_are_still_used(
    serve: Callable[..., _Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``HTTP_PROXY`` is honoured with ``trust_env`` off: the loopback proxy answers for a
    host that does not exist (nothing leaves loopback)."""

    def proxied(h: BaseHTTPRequestHandler, path: str) -> None:
        if path == "/v2/":
            h.send(200, b"{}")  # type: ignore[attr-defined]
        else:
            h.send(200, b'{"tags": ["via-proxy"]}')  # type: ignore[attr-defined]

    proxy = serve({"/": proxied, "/v2/": proxied})
    monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.host}")
    monkeypatch.setenv("http_proxy", f"http://{proxy.host}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with _client(tmp_path, insecure=["registry.invalid"]) as c:
        c.transport(
            "registry.invalid:5000"
        )._base = "http://registry.invalid:5000"  # skip the TLS probe
        assert c.list_tags(Reference.parse("registry.invalid:5000/p/app")) == ["via-proxy"]
    assert proxy.hits["/v2/"] >= 1  # registry.invalid does not resolve: only the proxy answers


def test_a_token_answer_python_cannot_parse_is_a_clean_error(
    serve: Callable[..., _Server], tmp_path: Path
) -> None:
    holder: dict[str, str] = {}

    def ping(h: BaseHTTPRequestHandler, path: str) -> None:
        realm = f"http://{holder['host']}/token"
        h.send(401, b"{}", {"WWW-Authenticate": f'Bearer realm="{realm}"'})  # type: ignore[attr-defined]

    def token(h: BaseHTTPRequestHandler, path: str) -> None:  # an int over 4,300 digits
        h.send(200, b'{"token": "tok", "expires_in": 1' + b"0" * 5000 + b"}")  # type: ignore[attr-defined]

    s = serve({"/v2/": ping, "/token": token})
    holder["host"] = s.host
    with _client(tmp_path) as c, pytest.raises(RegistryError) as info:
        c.list_tags(Reference.parse(f"{s.host}/tok/app"))
    assert "gave no token" in info.value.message


def test_a_blob_gets_a_deadline_that_grows_with_its_size(
    serve: Callable[..., _Server], tmp_path: Path
) -> None:
    """1 MiB at ~500 KiB/s takes ~2 s: over the 1 s base deadline, within 1 s + 1 MiB at
    the minimum throughput (4 s), so it finishes; a manifest read that slowly would not."""
    import hashlib

    from acr_ci.registry.media import Descriptor
    from acr_ci.registry.store import verified

    payload = bytes(range(256)) * 4096

    def slow_blob(h: BaseHTTPRequestHandler, path: str) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        for i in range(0, len(payload), 64 * 1024):
            h.wfile.write(payload[i : i + 64 * 1024])
            h.wfile.flush()
            time.sleep(0.125)

    s = serve({"/v2/big/app/blobs/": slow_blob})
    desc = Descriptor(
        "application/octet-stream", "sha256:" + hashlib.sha256(payload).hexdigest(), len(payload)
    )
    start = time.monotonic()
    with _client(tmp_path, deadline=1.0, retry=RetryPolicy(attempts=1)) as c:
        repo = c.repository(Reference.parse(f"{s.host}/big/app"))
        with repo.open_blob(desc) as chunks:
            got = b"".join(verified(chunks, desc, "t"))
    assert got == payload
    assert time.monotonic() - start > 1.5  # it did outlast the base deadline
    assert s.hits["/v2/big/app/blobs/"] == 1
