"""The fault proxy: faithful and byte-counting at zero faults, deterministic faults otherwise."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

import pytest
import requests
from tests.support import RegistryServer, skip_or_fail
from tests.support.faultproxy import FaultProxy
from tests.support.layout import Layout

pytestmark = pytest.mark.registry

ProxyFactory = Callable[..., FaultProxy]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _upload(session: requests.Session, base: str, repo: str, data: bytes) -> requests.Response:
    start = session.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=10)
    assert start.status_code == 202, start.text
    return session.put(
        f"{start.headers['Location']}&digest={_digest(data)}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )


def test_faithful_proxy_streams_counts_and_keeps_alive(
    registry: RegistryServer, fault_proxy_factory: ProxyFactory
) -> None:
    proxy = fault_proxy_factory(registry)
    data = os.urandom(3 * 1024 * 1024 + 17)
    with requests.Session() as s:
        # Chunked upload: a generator body makes requests send Transfer-Encoding: chunked.
        start = s.post(f"{proxy.url}/v2/proxy/faithful/blobs/uploads/", timeout=10)
        location = start.headers["Location"]
        assert location.startswith(proxy.url), "the upload URL must lead back to the proxy"

        def pieces() -> Iterator[bytes]:
            for i in range(0, len(data), 100_000):
                yield data[i : i + 100_000]

        patch = s.patch(location, data=pieces(), timeout=30)
        assert patch.status_code == 202, patch.text
        assert patch.headers["Range"] == f"0-{len(data) - 1}"
        put = s.put(f"{patch.headers['Location']}&digest={_digest(data)}", timeout=10)
        assert put.status_code == 201, put.text

        blob_url = f"{proxy.url}/v2/proxy/faithful/blobs/{_digest(data)}"
        head = s.head(blob_url, timeout=10)
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data)
        assert head.content == b""
        got = s.get(blob_url, timeout=30)
        assert got.content == data
        assert s.get(f"{proxy.url}/v2/", timeout=10).status_code == 200

    assert proxy.connections == 1, "a keep-alive session must reuse its connection"
    assert [r.method for r in proxy.log] == ["POST", "PATCH", "PUT", "HEAD", "GET", "GET"]
    assert [r.status for r in proxy.log] == [202, 202, 201, 200, 200, 200]
    assert proxy.faults_injected == 0
    assert len(data) < proxy.bytes_up < len(data) + 64 * 1024
    assert len(data) < proxy.bytes_down < len(data) + 64 * 1024
    assert proxy.log[1].bytes_up > len(data)  # the PATCH carried the body


def test_skopeo_through_the_proxy_and_a_cheap_rerun(
    registry: RegistryServer,
    fault_proxy_factory: ProxyFactory,
    oci_layout_factory: Callable[..., Layout],
) -> None:
    skopeo = shutil.which("skopeo") or skip_or_fail("skopeo not installed")
    proxy = fault_proxy_factory(registry)
    layout = oci_layout_factory(layer_sizes=[2 * 1024 * 1024], seed=9)
    cmd = [
        skopeo,
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        layout.skopeo_ref,
        f"docker://{proxy.host}/proxy/skopeo:1",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert proxy.bytes_up > layout.total_bytes
    manifest = requests.head(
        f"{registry.url}/v2/proxy/skopeo/manifests/1",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
        timeout=10,
    )
    assert manifest.headers["Docker-Content-Digest"] == layout.index_digest

    proxy.reset_counts()
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert 0 < proxy.bytes_up < 64 * 1024, "a re-run must not upload the layers again"


def test_first_requests_fail_with_500_then_429(
    registry: RegistryServer, fault_proxy_factory: ProxyFactory
) -> None:
    proxy = fault_proxy_factory(registry, fail_first=1, faults=["500"])
    first = requests.get(f"{proxy.url}/v2/", timeout=10)
    assert first.status_code == 500 and "injected" in first.text
    assert requests.get(f"{proxy.url}/v2/", timeout=10).status_code == 200
    assert proxy.bytes_up < 400  # the refused request never reached the registry

    limited = fault_proxy_factory(registry, fail_first=2, faults=["429"], retry_after=1)
    answer = requests.get(f"{limited.url}/v2/", timeout=10)
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "1")
    # A refused upload: the body is read and thrown away, the connection stays usable.
    with requests.Session() as s:
        refused = s.put(f"{limited.url}/v2/x/blobs/uploads/none", data=b"x" * 100_000, timeout=10)
        assert refused.status_code == 429
        assert s.get(f"{limited.url}/v2/", timeout=10).status_code == 200
    assert limited.connections == 2
    assert [r.fault for r in limited.log] == ["429", "429", None]

    silent = fault_proxy_factory(registry, fail_first=1, faults=["429"], retry_after=None)
    assert "Retry-After" not in requests.get(f"{silent.url}/v2/", timeout=10).headers


def test_faults_are_seeded_and_share_is_respected(
    registry: RegistryServer, fault_proxy_factory: ProxyFactory
) -> None:
    def pattern(seed: int) -> list[int]:
        proxy = fault_proxy_factory(registry, fault_rate=0.3, faults=["500", "429"], seed=seed)
        with requests.Session() as s:
            return [s.get(f"{proxy.url}/v2/", timeout=10).status_code for _ in range(60)]

    a, b, c = pattern(11), pattern(11), pattern(12)
    assert a == b != c
    assert set(a) == {200, 429, 500}
    assert 6 <= sum(1 for x in a if x != 200) <= 30


def test_match_limits_faults(registry: RegistryServer, fault_proxy_factory: ProxyFactory) -> None:
    proxy = fault_proxy_factory(registry, fault_rate=1.0, faults=["500"], match=r"^HEAD ")
    assert requests.get(f"{proxy.url}/v2/", timeout=10).status_code == 200
    assert requests.head(f"{proxy.url}/v2/", timeout=10).status_code == 500


def test_drop_response_mid_body(
    registry: RegistryServer, fault_proxy_factory: ProxyFactory
) -> None:
    data = os.urandom(1024 * 1024)
    with requests.Session() as s:
        assert _upload(s, registry.url, "proxy/drop", data).status_code == 201
    proxy = fault_proxy_factory(registry, fail_first=1, faults=["drop_response"])
    url = f"{proxy.url}/v2/proxy/drop/blobs/{_digest(data)}"
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(url, timeout=10).content  # noqa: B018
    rec = proxy.log[0]
    assert rec.fault == "drop_response" and rec.status == 200
    assert 0 < rec.bytes_down < len(data)
    assert requests.get(url, timeout=10).content == data  # the next one goes through


def test_drop_request_mid_body(registry: RegistryServer, fault_proxy_factory: ProxyFactory) -> None:
    data = os.urandom(2 * 1024 * 1024)
    proxy = fault_proxy_factory(registry, fail_first=1, faults=["drop_request"], match=r"^PUT ")
    with requests.Session() as s, pytest.raises(requests.exceptions.ConnectionError):
        _upload(s, proxy.url, "proxy/dropreq", data)
    put = proxy.log[-1]
    assert (put.method, put.fault, put.status) == ("PUT", "drop_request", None)
    assert 0 < put.bytes_up < len(data)
    missing = requests.head(f"{registry.url}/v2/proxy/dropreq/blobs/{_digest(data)}", timeout=10)
    assert missing.status_code == 404


def test_tls_probe_gets_a_plain_http_refusal(
    registry: RegistryServer, fault_proxy_factory: ProxyFactory
) -> None:
    proxy = fault_proxy_factory(registry)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        assert sock.recv(100).startswith(b"HTTP/1.0 400 Bad Request")


def test_location_rewrite(registry: RegistryServer, fault_proxy_factory: ProxyFactory) -> None:
    proxy = fault_proxy_factory(registry)
    assert proxy._rewrite(f"http://{registry.host}/v2/a?b=c") == f"{proxy.url}/v2/a?b=c"
    assert proxy._rewrite("/v2/relative") == "/v2/relative"
    assert proxy._rewrite("http://elsewhere.invalid/x") == "http://elsewhere.invalid/x"


def test_stop_closes_everything(registry: RegistryServer) -> None:
    proxy = FaultProxy(registry.host).start()
    port = proxy.port
    with requests.Session() as s:
        assert s.get(f"{proxy.url}/v2/", timeout=10).status_code == 200
        proxy.stop()
        with pytest.raises(requests.exceptions.ConnectionError):
            s.get(f"http://127.0.0.1:{port}/v2/", timeout=5)


class _Upstream(BaseHTTPRequestHandler):
    """A small real HTTP server with the framings a registry rarely uses."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        elif self.path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the end")
            self.close_connection = True
        elif self.path == "/redirect":
            self.send_response(307)
            host = f"127.0.0.1:{cast(ThreadingHTTPServer, self.server).server_port}"
            self.send_header("Location", f"http://{host}/chunked")
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[::-1])


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_other_framings_and_redirects(upstream: str, fault_proxy_factory: ProxyFactory) -> None:
    proxy = fault_proxy_factory(upstream)
    with requests.Session() as s:
        chunked = s.get(f"{proxy.url}/chunked", timeout=10)
        assert chunked.content == b"hello chunked world"
        assert chunked.headers["Transfer-Encoding"] == "chunked"
        # The redirect names the upstream; the proxy rewrites it, so the client stays on it.
        followed = s.get(f"{proxy.url}/redirect", timeout=10)
        assert followed.history[0].headers["Location"] == f"{proxy.url}/chunked"
        assert followed.url == f"{proxy.url}/chunked" and followed.content == b"hello chunked world"
        assert s.get(f"{proxy.url}/close", timeout=10).content == b"until the end"
    assert [r.target for r in proxy.log] == ["/chunked", "/redirect", "/chunked", "/close"]


def test_expect_100_continue(upstream: str, fault_proxy_factory: ProxyFactory) -> None:
    proxy = fault_proxy_factory(upstream)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(
            b"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"abc")
        answer = b""
        while not answer.endswith(b"cba"):
            data = sock.recv(1000)
            assert data, answer
            answer += data
        assert answer.startswith(b"HTTP/1.0 201") or answer.startswith(b"HTTP/1.1 201")
