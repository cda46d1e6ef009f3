"""``sign: {keyless: true}`` in the chain and ``acr-ci verify --certificate-identity``.

The chain signs a pushed two-platform image keyless (the CI's OIDC token from
``SIGSTORE_ID_TOKEN``, a local Fulcio/Rekor/TSA stand-in named by the config's
``sign.trust_config``): each Sigstore bundle is an OCI 1.1 referrer of the digest it signs
(docker-registry 2.8 has no referrers API: listed in the ``sha256-<hex>`` fallback tag's
index), the provenance a bundle referrer of the index. The mirror receives them with the
image; sigstore-js's verifier (not acr-ci's code) accepts the bundles read back with plain
HTTP; ``acr-ci verify`` passes for the identity and refuses another identity, an unsigned
image and a bundle re-pointed at another digest, each with its reason. No test reaches
the public Sigstore."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.e2e.test_chain import run, steps, validate_file, write_config
from tests.e2e.test_chain_sign import LayoutBuilder
from tests.e2e.test_sign import OCI_INDEX, acr, get_blob, get_manifest
from tests.e2e.test_sign_sbom import write_layout
from tests.support import RegistryServer
from tests.support.layout import Layout
from tests.support.sigstore_standin import ISSUER, SigstoreStandin, node_verify, require_sigstore

from acr_ci import record as record_mod
from acr_ci.record import SignDetail, Status

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SUBJECT = "https://ci.example.test/team/app/.ci/release.yml@refs/heads/main"
OTHER = "https://ci.example.test/team/other/.ci/release.yml@refs/heads/main"


@pytest.fixture(autouse=True)
def _sigstore_installed() -> None:
    require_sigstore()


def bundle_referrers(registry: RegistryServer, repo: str, digest: str) -> list[dict]:  # type: ignore[type-arg]
    """The bundle referrers of ``digest`` in the fallback tag's index, read with plain HTTP."""
    index = json.loads(get_manifest(registry, repo, digest.replace(":", "-")) or b"{}")
    assert index.get("mediaType") == OCI_INDEX, f"no referrers of {digest} in {repo}"
    out = []
    for entry in index["manifests"]:
        if entry.get("artifactType") != BUNDLE:
            continue
        manifest = json.loads(get_manifest(registry, repo, entry["digest"]) or b"{}")
        assert manifest["artifactType"] == BUNDLE
        assert manifest["subject"]["digest"] == digest
        [layer] = manifest["layers"]
        assert layer["mediaType"] == BUNDLE
        out.append({"manifest": manifest, "bundle": get_blob(registry, repo, layer["digest"])})
    return out


def independently_verified(bundle: bytes, trust: Path, tmp_path: Path, identity: str = SUBJECT) -> dict:  # type: ignore[type-arg]
    """The statement of a bundle that sigstore-js's verifier accepts for ``identity``."""
    statement = base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"])
    (tmp_path / "b.json").write_bytes(bundle)
    (tmp_path / "s.json").write_bytes(statement)
    r = node_verify(trust, tmp_path / "b.json", tmp_path / "s.json", identity, ISSUER)
    assert r.returncode == 0, r.stderr
    doc: dict = json.loads(statement)  # type: ignore[type-arg]
    return doc


def test_keyless_run_sign_verify_and_refusals(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    sigstore_standin: SigstoreStandin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", sigstore_standin.token(SUBJECT))
    monkeypatch.delenv("ACR_CI_SIGSTORE_TRUST_CONFIG", raising=False)
    mirror = registry_factory("plain")
    trust = sigstore_standin.trust_config
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    cfg = write_config(
        project,
        f"""version: 1
image: {registry.host}/team/keyless
build:
  rules:
    - name: main
      type: branch
      match: main
      context: app
      tags: [v1]
sign:
  keyless: true
  trust_config: {trust}
attest:
  provenance: true
sync:
  - name: m
    to: {mirror.host}/m
""",
    )
    record = run(cfg, LayoutBuilder({"main": write_layout(tmp_path / "layout")}))
    assert record.exit_code == 0, [(s.step, s.name, s.reason) for i in record.images for s in i.steps]
    assert steps(record, "main") == {
        "build": [Status.SUCCEEDED],
        "push": [Status.SUCCEEDED],
        "scan": [Status.SKIPPED],
        "sign": [Status.SUCCEEDED] * 3,
        "attest": [Status.SUCCEEDED],
        "sync": [Status.SUCCEEDED],
    }
    [image] = record.images
    digest = image.digest
    assert digest is not None
    details = {s.name: s.detail for s in image.steps if s.step in ("sign", "attest")}
    for detail in details.values():
        assert isinstance(detail, SignDetail)
        assert detail.identity == SUBJECT and detail.key is None
        assert detail.where == detail.subject.replace(":", "-")  # the fallback tag
    path = tmp_path / "record.json"
    record_mod.write(record, path)
    written = validate_file(path)
    [entry] = written["images"]  # type: ignore[misc]
    # the identity is written whole (the record cuts other URLs to their origin)
    assert {s["detail"]["identity"] for s in entry["steps"] if s["step"] == "sign"} == {SUBJECT}
    assert record_mod.read(path).to_json() == written

    index = json.loads(get_manifest(registry, "team/keyless", digest) or b"{}")
    children = [m["digest"] for m in index["manifests"]]
    # in the mirror, read with plain HTTP, checked by sigstore-js
    for subject in (digest, *children):
        found = bundle_referrers(mirror, "m/keyless", subject)
        types = sorted(r["manifest"]["annotations"]["dev.sigstore.bundle.predicateType"] for r in found)
        want = ["https://sigstore.dev/cosign/sign/v1"]
        if subject == digest:
            want = ["https://sigstore.dev/cosign/sign/v1", "https://slsa.dev/provenance/v1"]
        assert types == sorted(want)
        for r in found:
            statement = independently_verified(r["bundle"], trust, tmp_path)
            assert statement["subject"][0]["digest"] == {"sha256": subject.split(":")[1]}
            assert statement["predicateType"] == r["manifest"]["annotations"]["dev.sigstore.bundle.predicateType"]

    image_ref = f"{mirror.host}/m/keyless:v1"
    keyless = ("--certificate-oidc-issuer", ISSUER, "--trust-config", str(trust))
    r = acr("verify", image_ref, "--certificate-identity", SUBJECT, *keyless, "--attestations")
    assert r.returncode == 0, r.stderr
    assert "https://slsa.dev/provenance/v1" in r.stdout
    # the trust config from the environment works the same
    r = acr("verify", f"{mirror.host}/m/keyless@{children[1]}", "--certificate-identity", SUBJECT,
            "--certificate-oidc-issuer", ISSUER, env={"ACR_CI_SIGSTORE_TRUST_CONFIG": str(trust)})
    assert r.returncode == 0, r.stderr

    r = acr("verify", image_ref, "--certificate-identity", OTHER, *keyless)
    assert r.returncode == 1
    assert "identity mismatch" in r.stderr and OTHER in r.stderr and len(r.stderr.splitlines()) == 1
    r = acr("verify", image_ref, "--certificate-identity", SUBJECT, "--certificate-oidc-issuer",
            "https://other-issuer.test", "--trust-config", str(trust))
    assert r.returncode == 1 and "identity mismatch" in r.stderr

    # an unsigned image: no signature
    from acr_ci.registry import Client, Reference

    unsigned = oci_layout_factory(seed=401)
    with Client() as c:
        c.push_layout(unsigned.path, Reference.parse(registry.ref("team/unsigned")), ["v1"])
    r = acr("verify", f"{registry.host}/team/unsigned:v1", "--certificate-identity", SUBJECT, *keyless)
    assert r.returncode == 1 and "no signature" in r.stderr

    # a bundle re-pointed at another digest (its statement still names the first): mismatch
    from acr_ci.signing.sbom import attach_referrer

    [signature] = [b for b in bundle_referrers(registry, "team/keyless", digest)
                   if b["manifest"]["annotations"]["dev.sigstore.bundle.predicateType"].endswith("sign/v1")]
    with Client() as c:
        target = c.resolve(Reference.parse(registry.ref("team/unsigned:v1"))).digest
        attach_referrer(c, Reference.parse(registry.ref("team/unsigned")).with_digest(target),
                        signature["bundle"], artifact_type=BUNDLE,
                        annotations=signature["manifest"]["annotations"])
    r = acr("verify", f"{registry.host}/team/unsigned:v1", "--certificate-identity", SUBJECT, *keyless)
    assert r.returncode == 1 and "digest mismatch" in r.stderr, r.stderr

    # usage: key and identity together, identity without issuer
    r = acr("verify", image_ref, "--key", str(trust), "--certificate-identity", SUBJECT)
    assert r.returncode == 2 and "exclude each other" in r.stderr
    r = acr("verify", image_ref, "--certificate-identity", SUBJECT)
    assert r.returncode == 2 and "go together" in r.stderr


def test_acr_ci_sign_keyless_and_no_token(
    registry: RegistryServer,
    oci_layout_factory: Callable[..., Layout],
    sigstore_standin: SigstoreStandin,
    tmp_path: Path,
) -> None:
    from acr_ci.registry import Client, Reference

    layout = oci_layout_factory(seed=402)
    with Client() as c:
        digest = c.push_layout(layout.path, Reference.parse(registry.ref("team/cli")), ["v1"]).digest
    cfg = tmp_path / ".acr-ci.yml"
    cfg.write_text(f"version: 1\nimage: {registry.host}/team/cli\nsign:\n  keyless: true\n  trust_config: {sigstore_standin.trust_config}\n")
    image = f"{registry.host}/team/cli:v1"
    r = acr("sign", image, "--config", str(cfg), "--format", "json",
            env={"SIGSTORE_ID_TOKEN": sigstore_standin.token(SUBJECT)})
    assert r.returncode == 0, r.stderr
    [result] = json.loads(r.stdout)
    assert result["identity"] == SUBJECT and result["digest"] == digest
    [found] = bundle_referrers(registry, "team/cli", digest)
    independently_verified(found["bundle"], sigstore_standin.trust_config, tmp_path)
    r = acr("verify", image, "--certificate-identity", SUBJECT, "--certificate-oidc-issuer", ISSUER,
            "--trust-config", str(sigstore_standin.trust_config))
    assert r.returncode == 0, r.stderr

    # acr-ci attest keyless: the provenance as a bundle referrer, verified with --attestations
    r = acr("attest", image, "--config", str(cfg), "--ref", "main", "--sha", "ab" * 20,
            env={"SIGSTORE_ID_TOKEN": sigstore_standin.token(SUBJECT)})
    assert r.returncode == 0, r.stderr
    [provenance] = [b for b in bundle_referrers(registry, "team/cli", digest)
                    if b["manifest"]["annotations"]["dev.sigstore.bundle.predicateType"].endswith("provenance/v1")]
    statement = independently_verified(provenance["bundle"], sigstore_standin.trust_config, tmp_path)
    assert statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"] == {"gitCommit": "ab" * 20}
    r = acr("verify", image, "--certificate-identity", SUBJECT, "--certificate-oidc-issuer", ISSUER,
            "--attestations", env={"ACR_CI_SIGSTORE_TRUST_CONFIG": str(sigstore_standin.trust_config)})
    assert r.returncode == 0, r.stderr

    # no token: one line with what to set up, nothing attached
    r = acr("sign", image, "--config", str(cfg), env={"SIGSTORE_ID_TOKEN": ""})
    assert r.returncode == 1
    assert "no OIDC identity token" in r.stderr and "id-token: write" in r.stderr
    assert len(bundle_referrers(registry, "team/cli", digest)) == 2


def test_keyless_run_without_a_token_fails_the_sign_step(
    registry: RegistryServer,
    oci_layout_factory: Callable[..., Layout],
    sigstore_standin: SigstoreStandin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SIGSTORE_ID_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    before = sigstore_standin.requests_served()
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    cfg = write_config(
        project,
        f"""version: 1
image: {registry.host}/team/notoken
build:
  rules:
    - {{name: main, type: branch, match: main, context: app, tags: [v1]}}
sign: {{keyless: true, trust_config: {sigstore_standin.trust_config}}}
""",
    )
    record = run(cfg, LayoutBuilder({"main": oci_layout_factory(seed=403).path}))
    assert record.exit_code == 1
    [image] = record.images
    [sign] = [s for s in image.steps if s.step == "sign"]
    assert sign.status is Status.FAILED and sign.name == "index"
    assert sign.reason is not None and "no OIDC identity token" in sign.reason
    assert sigstore_standin.requests_served() == before  # nothing was asked of Sigstore
    assert get_manifest(registry, "team/notoken", "v1") is not None  # the image stays
