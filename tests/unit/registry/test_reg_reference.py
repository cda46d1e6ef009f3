"""Reference and ``oci-layout:`` parsing: defaults, hosts, ports, IPv6, bad input."""

from __future__ import annotations

import pytest

from acr_ci.errors import UsageError
from acr_ci.registry.reference import LayoutReference, Reference, parse_location

D = "sha256:" + "a" * 64

GOOD = [
    # id, text, registry, repository, tag, digest, api_host
    ("hub-short", "alpine", "docker.io", "library/alpine", None, None, "registry-1.docker.io"),
    ("hub-tag", "alpine:3.20", "docker.io", "library/alpine", "3.20", None, "registry-1.docker.io"),
    ("hub-ns", "team/app:v1", "docker.io", "team/app", "v1", None, "registry-1.docker.io"),
    ("hub-explicit", "docker.io/alpine", "docker.io", "library/alpine", None, None, "registry-1.docker.io"),
    ("hub-index", "index.docker.io/x/y", "docker.io", "x/y", None, None, "registry-1.docker.io"),
    ("host-dot", "registry.example.com/team/app:v1", "registry.example.com", "team/app", "v1", None,
     "registry.example.com"),
    ("localhost", "localhost/app", "localhost", "app", None, None, "localhost"),
    ("localhost-port", "localhost:5000/team/app:latest", "localhost:5000", "team/app", "latest", None,
     "localhost:5000"),
    ("ipv4-port", "127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000", "a/b/c", "t", None, "127.0.0.1:5000"),
    ("ipv6", "[::1]:5000/team/app:v1", "[::1]:5000", "team/app", "v1", None, "[::1]:5000"),
    ("ipv6-noport", "[fd00::1]/app", "[fd00::1]", "app", None, None, "[fd00::1]"),
    ("digest", f"r.io/app@{D}", "r.io", "app", None, D, "r.io"),
    ("tag-digest", f"r.io/app:v1@{D}", "r.io", "app", "v1", D, "r.io"),
    ("separators", "r.io/a_b/c__d/e-f/g.h", "r.io", "a_b/c__d/e-f/g.h", None, None, "r.io"),
]


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest", "api_host"),
                         [c[1:] for c in GOOD], ids=[c[0] for c in GOOD])
def test_parse_good(text: str, registry: str, repository: str, tag: str | None,
                    digest: str | None, api_host: str) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ref.api_host == api_host


BAD = [
    ("empty", "", "not a valid image reference"),
    ("space", "r.io/app v1", "not a valid image reference"),
    ("upper-repo", "r.io/Team/app", "invalid repository path"),
    ("bad-tag", "r.io/app:-x", "invalid tag"),
    ("long-tag", "r.io/app:" + "a" * 129, "invalid tag"),
    ("bad-digest", "r.io/app@sha256:abc", "invalid digest"),
    ("bad-digest-alg", "r.io/app@md5:" + "a" * 32, "invalid digest"),
    ("bad-host", "bad_host.io:x/app", "invalid"),
    ("trailing-slash", "r.io/app/", "invalid repository path"),
    ("double-sep", "r.io/a..b", "invalid repository path"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_parse_bad(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        Reference.parse(text, what="--image")
    assert message in info.value.message
    assert info.value.message.startswith("--image")
    assert "\n" not in info.value.message


LAYOUTS = [
    ("dir", "oci-layout:out", "out", None),
    ("dir-tag", "oci-layout:out:v1", "out", "v1"),
    ("abs-tag", "oci-layout:/tmp/x/out:latest", "/tmp/x/out", "latest"),
    ("rel-dots", "oci-layout:./a/b", "./a/b", None),
    ("colon-in-dir", "oci-layout:/tmp/a:b/c", "/tmp/a:b/c", None),
]


@pytest.mark.parametrize(("text", "path", "tag"), [c[1:] for c in LAYOUTS], ids=[c[0] for c in LAYOUTS])
def test_layout_parse(text: str, path: str, tag: str | None) -> None:
    loc = parse_location(text)
    assert isinstance(loc, LayoutReference)
    assert (loc.path, loc.tag) == (path, tag)
    assert str(loc) == text


LAYOUT_BAD = [
    ("no-dir", "oci-layout:", "names no directory"),
    ("bad-tag", "oci-layout:out:-bad", "invalid tag"),
    ("no-prefix", "out:v1", "does not start with"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in LAYOUT_BAD], ids=[c[0] for c in LAYOUT_BAD])
def test_layout_parse_bad(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        LayoutReference.parse(text)
    assert message in info.value.message


def test_parse_location_registry() -> None:
    loc = parse_location("localhost:5000/app:v1")
    assert isinstance(loc, Reference)
    assert str(loc) == "localhost:5000/app:v1"
