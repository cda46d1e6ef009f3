"""Link pagination, Retry-After, backoff, loopback detection, manifests and streaming helpers."""

from __future__ import annotations

import email.utils
import hashlib
import json

import pytest

from acr_ci.errors import DigestMismatchError, UnsupportedError
from acr_ci.hosts import is_loopback
from acr_ci.registry.media import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    Platform,
    make_index,
    referrers_tag,
)
from acr_ci.registry.store import ChunkReader, verified
from acr_ci.registry.transport import RetryPolicy, parse_link_next, parse_retry_after

BASE = "http://127.0.0.1:5000/v2/team/app/tags/list?n=2"

LINKS = [
    ("relative", '</v2/team/app/tags/list?n=2&last=b>; rel="next"',
     "http://127.0.0.1:5000/v2/team/app/tags/list?n=2&last=b"),
    ("absolute", '<https://r.io/v2/x/tags/list?last=c>; rel="next"', "https://r.io/v2/x/tags/list?last=c"),
    ("unquoted-rel", "</v2/x?last=d>; rel=next", "http://127.0.0.1:5000/v2/x?last=d"),
    ("several", '</a>; rel="prev", </b>; rel="next"', "http://127.0.0.1:5000/b"),
    ("multi-rel", '</c>; rel="last next"', "http://127.0.0.1:5000/c"),
    ("no-next", '</a>; rel="prev"', None),
    ("absent", None, None),
    ("garbage", "nonsense", None),
]


@pytest.mark.parametrize(("header", "expected"), [c[1:] for c in LINKS], ids=[c[0] for c in LINKS])
def test_link_next(header: str | None, expected: str | None) -> None:
    assert parse_link_next(header, BASE) == expected


NOW = 1_700_000_000.0
RETRY_AFTER = [
    ("seconds", "3", 3.0),
    ("zero", "0", 0.0),
    ("http-date", email.utils.formatdate(NOW + 7, usegmt=True), 7.0),
    ("past-date", email.utils.formatdate(NOW - 100, usegmt=True), 0.0),
    ("absent", None, None),
    ("garbage", "soon", None),
    ("negative", "-1", None),
]


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in RETRY_AFTER], ids=[c[0] for c in RETRY_AFTER])
def test_retry_after(value: str | None, expected: float | None) -> None:
    got = parse_retry_after(value, now=NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1.0)


DELAYS = [
    # id, attempt, retry_after, rand, expected
    ("first-low", 1, None, 0.0, 0.25),
    ("first-high", 1, None, 1.0, 0.5),
    ("third", 3, None, 1.0, 2.0),
    ("capped", 20, None, 1.0, 20.0),
    ("retry-after-wins", 1, 5.0, 1.0, 5.0),
    ("retry-after-capped", 1, 3600.0, 0.0, 60.0),
]


@pytest.mark.parametrize(("attempt", "retry_after", "rand", "expected"), [c[1:] for c in DELAYS],
                         ids=[c[0] for c in DELAYS])
def test_backoff(attempt: int, retry_after: float | None, rand: float, expected: float) -> None:
    assert RetryPolicy().delay(attempt, retry_after, rand=lambda: rand) == pytest.approx(expected)


LOOPBACK = [
    ("localhost", "localhost:5000", True),
    ("v4", "127.0.0.1:5000", True),
    ("v4-other", "127.1.2.3", True),
    ("v6", "[::1]:5000", True),
    ("remote", "registry.example.com", False),
    ("private", "10.0.0.1:5000", False),
    ("v6-remote", "[fd00::1]:5000", False),
]


@pytest.mark.parametrize(("host", "expected"), [c[1:] for c in LOOPBACK], ids=[c[0] for c in LOOPBACK])
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def _doc(**kw: object) -> bytes:
    return json.dumps(kw).encode()


MANIFESTS = [
    ("oci-header", _doc(schemaVersion=2, config={}, layers=[]), OCI_MANIFEST, OCI_MANIFEST),
    ("docker-header", _doc(schemaVersion=2), DOCKER_MANIFEST, DOCKER_MANIFEST),
    ("field-wins-over-generic", _doc(schemaVersion=2, mediaType=DOCKER_LIST, manifests=[]),
     "application/json", DOCKER_LIST),
    ("guess-index", _doc(schemaVersion=2, manifests=[]), None, OCI_INDEX),
    ("guess-image", _doc(schemaVersion=2, config={}, layers=[]), "", OCI_MANIFEST),
    ("charset-param", _doc(schemaVersion=2), f"{OCI_INDEX}; charset=utf-8", OCI_INDEX),
]


@pytest.mark.parametrize(("data", "header", "expected"), [c[1:] for c in MANIFESTS], ids=[c[0] for c in MANIFESTS])
def test_manifest_media_type(data: bytes, header: str | None, expected: str) -> None:
    m = Manifest.from_bytes(data, header, where="t")
    assert m.media_type == expected
    assert m.digest == "sha256:" + hashlib.sha256(data).hexdigest()


MANIFEST_BAD = [
    ("schema1", _doc(schemaVersion=1, fsLayers=[]), None, UnsupportedError, "schema 1"),
    ("not-json", b"{", None, UnsupportedError, "not JSON"),
    ("unknown", _doc(hello=1), "text/plain", UnsupportedError, "unsupported manifest media type"),
    ("digest-mismatch", _doc(schemaVersion=2, manifests=[]), OCI_INDEX, DigestMismatchError, "expected"),
]


@pytest.mark.parametrize(("data", "header", "error", "message"), [c[1:] for c in MANIFEST_BAD],
                         ids=[c[0] for c in MANIFEST_BAD])
def test_manifest_bad(data: bytes, header: str | None, error: type[Exception], message: str) -> None:
    expected = "sha256:" + "0" * 64 if error is DigestMismatchError else None
    with pytest.raises(error) as info:
        Manifest.from_bytes(data, header, expected_digest=expected, where="t")
    assert message in str(info.value)


def test_index_children_and_platforms() -> None:
    d1 = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 10,
          "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
    m = Manifest.from_bytes(_doc(schemaVersion=2, mediaType=OCI_INDEX, manifests=[d1]), OCI_INDEX, where="t")
    (child,) = m.children()
    assert child.platform == Platform("linux", "arm64", "v8")
    assert child.platform.matches(Platform.parse("linux/arm64"))
    assert not child.platform.matches(Platform.parse("linux/arm64/v7"))
    # A new index keeps each descriptor's JSON as found.
    new = make_index([child])
    assert new.json["manifests"] == [d1]


def test_referrers_tag() -> None:
    assert referrers_tag("sha256:" + "ab" * 32) == "sha256-" + "ab" * 32


def _desc(data: bytes) -> Descriptor:
    return Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), len(data))


VERIFY = [
    ("ok", [b"abc", b"def"], b"abcdef", None),
    ("wrong-bytes", [b"abc", b"deX"], b"abcdef", "hashes to"),
    ("short", [b"abc"], b"abcdef", "has 3 bytes"),
    ("long", [b"abcdef", b"g"], b"abcdef", "larger than"),
]


@pytest.mark.parametrize(("chunks", "content", "error"), [c[1:] for c in VERIFY], ids=[c[0] for c in VERIFY])
def test_verified(chunks: list[bytes], content: bytes, error: str | None) -> None:
    seen: list[int] = []
    it = verified(chunks, _desc(content), "t", seen.append)
    if error is None:
        assert b"".join(it) == content
        assert sum(seen) == len(content)
    else:
        with pytest.raises(DigestMismatchError) as info:
            b"".join(it)
        assert error in info.value.message


def test_chunk_reader_cuts_exactly() -> None:
    reader = ChunkReader([b"abcd", b"efghij", b"k"])
    assert b"".join(reader.take(3)) == b"abc"
    assert b"".join(reader.take(5)) == b"defgh"
    assert b"".join(reader.take(10)) == b"ijk"
    reader.drain()


INSECURE = [
    # id, insecure list, host, expected
    ("listed-exact", ["r.io:5000"], "r.io:5000", True),
    ("listed-bare-matches-any-port", ["r.io"], "r.io:5000", True),
    ("port-must-match", ["r.io:5000"], "r.io:6000", False),
    ("case", ["R.IO"], "r.io", True),
    ("not-listed", ["r.io"], "s.io", False),
    ("ipv6", ["[fd00::1]:5000"], "[fd00::1]:5000", True),
]


@pytest.mark.parametrize(("listed", "host", "expected"), [c[1:] for c in INSECURE], ids=[c[0] for c in INSECURE])
def test_insecure_hosts(listed: list[str], host: str, expected: bool) -> None:
    from acr_ci.registry import Client
    from acr_ci.registry.auth import DockerConfigCredentials

    with Client(insecure=listed, credentials=DockerConfigCredentials(paths=[])) as c:
        assert c.is_insecure(host) is expected
        transport = c.transport(host)
        assert transport.insecure is expected


def test_loopback_is_always_insecure_and_others_verify() -> None:
    from acr_ci.registry.transport import Transport

    assert Transport("127.0.0.1:5000").insecure
    assert Transport("localhost:5000").insecure
    assert not Transport("registry.example.com").insecure


def test_insecure_from_env() -> None:
    from acr_ci.registry import insecure_from_env

    assert insecure_from_env({"ACR_CI_INSECURE_REGISTRIES": " a.io:5000, b.io ,,"}) == ["a.io:5000", "b.io"]
    assert insecure_from_env({}) == []
