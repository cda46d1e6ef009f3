"""The one host parser, loopback rule and URL policy (acr_ci.hosts)."""

from __future__ import annotations

import pytest

from acr_ci.hosts import (
    UrlFault,
    host_without_port,
    is_loopback,
    names_registry,
    origin,
    registry_host,
    split_host,
    url_problem,
)

LOOPBACK = [
    # id, host, loopback?
    ("localhost", "localhost", True),
    ("localhost-upper", "LOCALHOST", True),
    ("localhost-port", "localhost:5000", True),
    ("v4", "127.0.0.1", True),
    ("v4-port", "127.0.0.1:5000", True),
    ("v4-other-in-8", "127.1.2.3", True),
    ("v4-top-of-8", "127.255.255.255:1", True),
    ("v6-bare", "::1", True),
    ("v6-bracketed", "[::1]", True),
    ("v6-port", "[::1]:5000", True),
    ("v6-zone", "[::1%lo]:5000", True),
    # names that only look local
    ("sub-localhost", "registry.localhost", False),
    ("localhost-dot", "localhost.", False),
    ("localhost-lookalike", "localhost.evil.com", False),
    ("localhost-prefix", "localhostevil.com:5000", False),
    ("nip-io", "127.0.0.1.nip.io", False),
    # addresses that some parsers read as 127.0.0.1
    ("hex-short", "0x7f.1", False),
    ("short-form", "127.1", False),
    ("decimal", "2130706433", False),
    ("leading-zeros", "127.000.000.001", False),
    ("v4-mapped", "::ffff:127.0.0.1", False),
    ("v4-bracketed", "[127.0.0.1]", False),
    # user info, paths, junk around a loopback name
    ("userinfo", "user@localhost", False),
    ("userinfo-v4", "user@127.0.0.1:5000", False),
    ("bracket-then-userinfo", "[::1]@evil.com", False),
    ("path", "localhost:5000/x", False),
    ("bad-port", "localhost:99999", False),
    ("empty-port", "localhost:", False),
    ("port-not-digits", "127.0.0.1:http", False),
    ("v6-empty-port", "[::1]:", False),
    ("v6-unclosed", "[::1", False),
    ("v6-junk-after", "[::1]x", False),
    ("space", " localhost", False),
    ("newline", "127.0.0.1\n", False),
    ("empty", "", False),
    # not loopback at all
    ("remote", "registry.example.com", False),
    ("private", "10.0.0.1:5000", False),
    ("any", "0.0.0.0", False),
    ("v6-unspecified", "::", False),
    ("v6-remote", "[fd00::1]:5000", False),
]


@pytest.mark.parametrize(
    ("host", "expected"), [c[1:] for c in LOOPBACK], ids=[c[0] for c in LOOPBACK]
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


SPLITS = [
    ("name", "r.io", ("r.io", None)),
    ("name-port", "r.io:5000", ("r.io", 5000)),
    ("v6", "[fd00::1]:443", ("fd00::1", 443)),
    ("v6-no-port", "[fd00::1]", ("fd00::1", None)),
    ("v6-bare", "fd00::1", ("fd00::1", None)),
    ("no-name", ":5000", None),
    ("empty-brackets", "[]:5000", None),
    ("port-too-big", "r.io:65536", None),
    ("port-too-long", "r.io:000001", None),
    ("port-unicode-digits", "r.io:٥٠٠٠", None),
]


@pytest.mark.parametrize(("host", "expected"), [c[1:] for c in SPLITS], ids=[c[0] for c in SPLITS])
def test_split_host(host: str, expected: tuple[str, int | None] | None) -> None:
    assert split_host(host) == expected


WITHOUT_PORT = [
    ("name", "r.io:5000", "r.io"),
    ("v6", "[::1]:5000", "::1"),
    ("v6-zone", "[fe80::1%eth0]:5000", "fe80::1"),
    ("malformed-unchanged", "[::1", "[::1"),
]


@pytest.mark.parametrize(
    ("host", "expected"), [c[1:] for c in WITHOUT_PORT], ids=[c[0] for c in WITHOUT_PORT]
)
def test_host_without_port(host: str, expected: str) -> None:
    assert host_without_port(host) == expected


REGISTRIES = [
    ("dotted", "registry.example.com/team/app:1", "registry.example.com"),
    ("port", "R.IO:5000/app", "r.io:5000"),
    ("localhost", "localhost/app", "localhost"),
    ("v6", "[::1]:5000/app", "[::1]:5000"),
    ("hub-short", "busybox:stable", None),
    ("hub-namespace", "library/busybox", None),
    ("hub-localhost-lookalike", "localhostx/app", None),
]


@pytest.mark.parametrize(
    ("image", "expected"), [c[1:] for c in REGISTRIES], ids=[c[0] for c in REGISTRIES]
)
def test_registry_host(image: str, expected: str | None) -> None:
    assert registry_host(image) == expected
    first, slash, _ = image.partition("/")
    assert (bool(slash) and names_registry(first)) is (expected is not None)


ORIGINS = [
    (
        "userinfo-path-query",
        "https://u:p@h.example.com:8443/a?token=x#f",
        "https://h.example.com:8443",
    ),
    ("v6", "http://[::1]:9/x", "http://[::1]:9"),
    ("upper-scheme", "HTTP://h.example.com/x", "http://h.example.com"),
    ("no-scheme", "h.example.com/x", "?://"),
    ("bad-port", "https://h.example.com:99999/x", "(invalid URL)"),
]


@pytest.mark.parametrize(("url", "expected"), [c[1:] for c in ORIGINS], ids=[c[0] for c in ORIGINS])
def test_origin(url: str, expected: str) -> None:
    assert origin(url) == expected


URLS = [
    # id, url, allow_http, fault (None: fine)
    ("https", "https://hooks.example.com/x", False, None),
    ("http-loopback", "http://127.0.0.1:9/x", False, None),
    ("http-localhost", "http://localhost/x", False, None),
    ("http-v6-loopback", "http://[::1]:9/x", False, None),
    ("http-allowed", "http://hooks.lan/x", True, None),
    ("http-remote", "http://hooks.lan/x?token=SECRET", False, UrlFault.CLEARTEXT),
    ("http-sub-localhost", "http://hooks.localhost/x", False, UrlFault.CLEARTEXT),
    ("http-localhost-lookalike", "http://localhost.evil.com/x", False, UrlFault.CLEARTEXT),
    ("http-nip-io", "http://127.0.0.1.nip.io/x", False, UrlFault.CLEARTEXT),
    ("http-userinfo-trick", "http://localhost@evil.com/x", False, UrlFault.CLEARTEXT),
    ("ftp", "ftp://hooks.example.com/x", False, UrlFault.SCHEME),
    ("no-scheme", "hooks.example.com/x", False, UrlFault.SCHEME),
    ("no-host", "https:///x", False, UrlFault.NO_HOST),
    ("bad-port", "https://hooks.example.com:99999/x", False, UrlFault.MALFORMED),
    ("bad-ipv6", "https://[::1/x", False, UrlFault.MALFORMED),
    ("space", "https://hooks.example.com/a b", False, UrlFault.MALFORMED),
    ("control", "https://hooks.example.com/\x7f", False, UrlFault.MALFORMED),
]


@pytest.mark.parametrize(("url", "allow", "fault"), [c[1:] for c in URLS], ids=[c[0] for c in URLS])
def test_url_problem(url: str, allow: bool, fault: UrlFault | None) -> None:
    problem = url_problem(url, allow_http=allow)
    assert (problem.fault if problem else None) is fault
    if problem:
        assert "SECRET" not in problem.message and "/x" not in problem.message
