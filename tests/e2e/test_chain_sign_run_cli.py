"""`acr-ci run` with `sign:` and `attest:`, as a CI job runs it: a subprocess, the example
app built for real with buildah for linux/amd64 + linux/arm64 FROM the session's busybox
base, pushed, signed and attested (provenance naming the base image by digest, an SBOM per
platform), mirrored; then `acr-ci verify --key --attestations` against the mirror, and the
record validated against the schema shipped in the package."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.e2e.test_chain import validate_file
from tests.e2e.test_chain_run_cli import ROOT, SHA, acr
from tests.e2e.test_sign import (
    get_blob,
    get_manifest,
    independent_signatures,
    new_key,
    pkcs8_pem,
    tag_of,
    verifies,
    write_pub,
)
from tests.support import RegistryServer
from tests.support.buildenv import BaseImage

pytestmark = [pytest.mark.registry, pytest.mark.e2e]


def test_acr_ci_run_signs_attests_and_the_mirror_verifies(
    busybox_base: BaseImage,
    buildah_env: Path,
    registry_factory: Callable[..., RegistryServer],
    tmp_path: Path,
) -> None:
    target = registry_factory("plain")
    mirror = registry_factory("plain")
    key = new_key()
    pub = write_pub(key, tmp_path / "cosign.pub")
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "hello", repo / "hello")
    (repo / ".acr-ci.yml").write_text(f"""version: 1
image: {target.host}/demo/hello
build:
  builder: buildah
  rules:
    - name: main
      type: branch
      match: main
      context: hello
      tags: [v1]
      platforms: [linux/amd64, linux/arm64]
      args: {{BASE: "{busybox_base.ref}"}}
sign:
  key_env: RUN_SIGNING_KEY
attest:
  provenance: true
  sbom: true
sync:
  - name: mirror
    to: {mirror.host}/mirror
""")
    env = {"RUN_SIGNING_KEY": pkcs8_pem(key), "TRIVY_CACHE_DIR": str(tmp_path / "trivy")}
    p = acr("run", "--ref", "main", "--sha", SHA, "--record", "record.json", env=env, cwd=repo)
    assert p.returncode == 0, p.stderr[-3000:]
    doc = validate_file(repo / "record.json")
    [image] = doc["images"]
    digest = image["digest"]
    signed = {s["name"]: s for s in image["steps"] if s["step"] in ("sign", "attest")}
    assert set(signed) == {
        "index", "linux/amd64", "linux/arm64", "provenance", "sbom linux/amd64",
        "sbom linux/arm64", "sbom referrer linux/amd64", "sbom referrer linux/arm64",
    }  # fmt: skip
    assert all(s["status"] == "succeeded" for s in signed.values())
    assert "PRIVATE KEY" not in json.dumps(doc) + p.stderr + p.stdout  # the key never shows

    # the mirror holds every signature; checked with cryptography over the bytes read back
    index = json.loads(get_manifest(mirror, "mirror/hello", digest) or b"{}")
    children = [m["digest"] for m in index["manifests"]]
    assert len(children) == 2
    for subject in (digest, *children):
        [(payload, signature)] = independent_signatures(mirror, "mirror/hello", subject)
        assert verifies(key, signature, payload)
        assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == subject
    # the provenance names the base image the build used, by digest
    att = json.loads(get_manifest(mirror, "mirror/hello", tag_of(digest, "att")) or b"{}")
    [layer] = att["layers"]
    statement = json.loads(base64.b64decode(json.loads(get_blob(mirror, "mirror/hello", layer["digest"]))["payload"]))
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    base_name = busybox_base.ref.rsplit(":", 1)[0]
    index_hex = busybox_base.layout.index_digest.split(":")[1]
    assert {"uri": f"pkg:docker/{base_name}", "digest": {"sha256": index_hex}} in deps
    assert {"digest": {"gitCommit": SHA}} in [{"digest": d["digest"]} for d in deps if "gitCommit" in d["digest"]]

    r = acr("verify", f"{mirror.host}/mirror/hello:v1", "--key", str(pub), "--attestations", env={}, cwd=repo)
    assert r.returncode == 0, r.stderr
    for child in children:
        r = acr("verify", f"{mirror.host}/mirror/hello@{child}", "--key", str(pub), "--attestations", env={}, cwd=repo)
        assert r.returncode == 0, r.stderr
        assert "https://cyclonedx.org/bom" in r.stdout
        fallback = json.loads(get_manifest(mirror, "mirror/hello", child.replace(":", "-")) or b"{}")
        assert [e["artifactType"] for e in fallback["manifests"]] == ["application/vnd.cyclonedx+json"]
