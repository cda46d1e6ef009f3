"""What a report says it is about (the parsers' ArtifactIdentity) and how that compares with
the gated image (scan.identity.match): contradicts, matches, or cannot tell."""

from __future__ import annotations

import pytest
from tests.unit.scan.scan_support import fixture, upstream_report

from acr_ci.registry.reference import Reference
from acr_ci.scan.identity import ImageFacts, Match, match
from acr_ci.scan.reports import read_report
from acr_ci.scan.reports.base import ArtifactIdentity


def d(c: str) -> str:
    return "sha256:" + c * 64


INDEX, AMD64, ARM64, CFG_AMD64, CFG_ARM64 = d("1"), d("2"), d("3"), d("4"), d("5")
FACTS = ImageFacts(
    Reference("reg.example:5000", "team/app", None, INDEX),
    frozenset({INDEX, AMD64, ARM64}),
    frozenset({CFG_AMD64, CFG_ARM64}),
)


def test_parsers_read_the_identity_of_real_reports() -> None:
    keycloak = read_report(upstream_report("grype-keycloak.json")).identity
    assert (
        keycloak.image_id
        == "sha256:8cf8fd2be2ded92962d52adff75ad06a4c30f69c66facbdf223364c6c9e33b8c"
    )
    assert (
        keycloak.manifest_digest
        == "sha256:d1630d3eb8285a978301bcefc5b223e564ae300750af2fc9ea3f413c5376a47e"
    )
    assert keycloak.repo_digests == (
        "keycloak/keycloak@sha256:347a0d748d05a050dc64b92de2246d2240db6eb38afbc17c3c08d0acb0db1b50",
    )
    assert keycloak.names[0].startswith("docker.io/keycloak/keycloak:21.0.2@sha256:347a")
    alpine = read_report(upstream_report("trivy-alpine-39.json")).identity
    assert (
        alpine.image_id == "sha256:055936d3920576da37aa9bc460d70c5f212028bda1c08c0879aedf03d7a66ea1"
    )
    assert alpine.names == (
        "testdata/fixtures/images/alpine-39.tar.gz",
        "ghcr.io/aquasecurity/trivy-test-images:alpine-39",
    )
    app = read_report(fixture("trivy-app-amd64.json")).identity
    assert app.repo_digests == (
        "registry.example.com/team/app@sha256:5b0c4f8f6a3e0a7e4a0f4b8d2f7c0a1e9d3b6c5a4f2e1d0c9b8a7f6e5d4c3b2a",
    )
    for name in ("gitlab-cs-app.json", "sarif-clean.sarif"):  # formats that do not say
        assert read_report(fixture(name)).identity.empty


CASES = [
    ("config-of-a-platform", ArtifactIdentity(image_id=CFG_ARM64), Match.MATCHES),
    (
        "image-id-is-the-manifest",
        ArtifactIdentity(image_id=AMD64),
        Match.MATCHES,
    ),  # containerd store
    ("another-image-id", ArtifactIdentity(image_id=d("9")), Match.CONTRADICTS),
    (
        "another-image-id-beats-a-digest",
        ArtifactIdentity(image_id=d("9"), repo_digests=(f"reg.example:5000/team/app@{INDEX}",)),
        Match.CONTRADICTS,
    ),
    (
        "repo-digest-of-the-index",
        ArtifactIdentity(repo_digests=(f"reg.example:5000/team/app@{INDEX}",)),
        Match.MATCHES,
    ),
    (
        "mirror-digest",
        ArtifactIdentity(repo_digests=(f"mirror.example/x/app@{ARM64}",)),
        Match.MATCHES,
    ),
    (
        "same-repo-other-digest",
        ArtifactIdentity(repo_digests=(f"reg.example:5000/team/app@{d('8')}",)),
        Match.CONTRADICTS,
    ),
    (
        "name-with-other-digest",
        ArtifactIdentity(names=(f"reg.example:5000/team/app:1.0@{d('8')}",)),
        Match.CONTRADICTS,
    ),
    (
        "other-repo-other-digest",
        ArtifactIdentity(repo_digests=(f"registry.example.com/team/app@{d('8')}",)),
        Match.UNKNOWN,
    ),
    (
        "one-digest-matches",
        ArtifactIdentity(
            repo_digests=(
                f"reg.example:5000/team/app@{d('8')}",
                f"reg.example:5000/team/app@{AMD64}",
            )
        ),
        Match.MATCHES,
    ),
    ("grype-manifest-digest", ArtifactIdentity(manifest_digest=ARM64), Match.MATCHES),
    ("grype-other-manifest-digest", ArtifactIdentity(manifest_digest=d("8")), Match.UNKNOWN),
    ("tag-only", ArtifactIdentity(names=("reg.example:5000/team/app:1.0",)), Match.UNKNOWN),
    (
        "a-path",
        ArtifactIdentity(names=("testdata/fixtures/images/alpine-39.tar.gz",)),
        Match.UNKNOWN,
    ),
    (
        "junk",
        ArtifactIdentity(names=("Not A Ref",), repo_digests=("x@nope",), image_id="nope"),
        Match.UNKNOWN,
    ),
    ("nothing", ArtifactIdentity(), Match.UNKNOWN),
]


@pytest.mark.parametrize(("case", "identity", "expected"), CASES, ids=[c[0] for c in CASES])
def test_match(case: str, identity: ArtifactIdentity, expected: Match) -> None:
    found = match(identity, FACTS)
    assert found.match is expected
    if expected is Match.CONTRADICTS:
        assert str(FACTS.image) in found.reason or INDEX in found.reason
        assert d("9") in found.reason or d("8") in found.reason
