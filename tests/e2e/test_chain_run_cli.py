"""`acr-ci run` end to end, as a CI job runs it: a subprocess, the example app built for real
with buildah (linux/amd64 + linux/arm64 from the session's busybox base), pushed, gated on a
Trivy-format report, mirrored to a plain and a basic-auth registry, announced to a real
receiver; the record validated against the schema shipped in the package."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from tests.e2e.sync_support import assert_complete, digest_at, tags_at
from tests.support import RegistryServer
from tests.support.buildenv import BaseImage
from tests.support.webhook import WebhookReceiver

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SHA = "fedcba9876543210fedcba9876543210fedcba98"
SECRET = "run-hook-secret"



def acr(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB", "ACR_CI_"))}
    base.pop("CI", None)
    return subprocess.run(
        [sys.executable, "-m", "acr_ci", *args],
        capture_output=True, text=True, env={**base, **env}, cwd=cwd, timeout=900,
    )


def trivy_report(path: Path, vulns: list[tuple[str, str]]) -> None:
    path.write_text(json.dumps({
        "SchemaVersion": 2, "ArtifactName": "hello", "ArtifactType": "container_image",
        "Results": [{"Target": "hello", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
            {"VulnerabilityID": v, "PkgName": "busybox", "InstalledVersion": "1.36",
             "FixedVersion": "1.37", "Severity": s} for v, s in vulns]}],
    }))


def test_acr_ci_run_builds_pushes_gates_mirrors_announces(
    busybox_base: BaseImage,
    buildah_env: Path,
    registry_factory: Callable[..., RegistryServer],
    docker_config: Callable[..., Path],
    receiver: WebhookReceiver,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = registry_factory("plain")
    plain = registry_factory("plain")
    basic = registry_factory("basic")
    config_dir = docker_config(basic)
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "hello", repo / "hello")
    trivy_report(repo / "trivy.json", [("CVE-2023-0001", "LOW"), ("CVE-2023-0002", "MEDIUM")])
    (repo / ".acr-ci.yml").write_text(f"""version: 1
image: {target.host}/demo/hello
build:
  builder: buildah
  rules:
    - name: release
      type: branch
      match: release-(?<imageTag>\\w*)
      context: hello
      tags: ["${{imageTag}}", "${{imageTag}}-${{commit:8}}"]
      platforms: [linux/amd64, linux/arm64]
      args: {{BASE: "{busybox_base.ref}", GREETING: "from acr-ci run"}}
scan:
  engine: report
  report: trivy.json
  block: {{severity: high}}
sync:
  - name: mirror
    to: {plain.host}/mirror
  - name: vault
    to: {basic.host}/vault/hello
    level: repository
    tags: "v\\\\d+"
triggers:
  - name: deploy
    url: {receiver.url("/deploy")}?token=SECRET
    on: regexp
    match: "v\\\\d+"
    secret_env: RUN_HOOK_SECRET
""")
    record_path = tmp_path / "out" / "record.json"
    started = time.monotonic()
    p = acr(
        "run", "--ref", "refs/heads/release-v1", "--sha", SHA, "--time", "2026-11-23T12:00:00Z",
        "--record", str(record_path), "--layout-dir", str(tmp_path / "work"),
        env={"DOCKER_CONFIG": str(config_dir), "RUN_HOOK_SECRET": SECRET}, cwd=repo,
    )
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\n[figure] acr-ci run (buildah amd64+arm64, push, scan, 2 mirrors, 1 trigger): {elapsed:.1f}s")
    assert p.returncode == 0, p.stderr[-4000:]

    # the registries hold the built image by digest
    digest = digest_at(target, "demo/hello", "v1")
    assert digest is not None
    assert digest_at(target, "demo/hello", f"v1-{SHA[:8]}") == digest
    assert digest_at(plain, "mirror/hello", "v1") == digest
    assert digest_at(plain, "mirror/hello", f"v1-{SHA[:8]}") == digest
    assert tags_at(basic, "vault/hello") == ["v1"]
    assert len(assert_complete(basic, "vault/hello", digest)) == 2  # both platforms

    # the receiver got one signed POST for v1
    [req] = receiver.to("/deploy")
    assert req.json()["push_data"]["tag"] == "v1" and req.json()["push_data"]["digest"] == digest
    assert req.headers["x-acr-ci-signature"] == "sha256=" + hmac.new(
        SECRET.encode(), req.body, hashlib.sha256).hexdigest()

    # the record: valid against the shipped schema, complete, no secrets
    schema = json.loads(resources.files("acr_ci").joinpath("record.schema.json").read_text())
    doc = json.loads(record_path.read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(doc)
    [image] = doc["images"]
    assert image["digest"] == digest
    assert [(s["step"], s["name"], s["status"]) for s in image["steps"]] == [
        ("build", None, "succeeded"), ("push", None, "succeeded"), ("scan", None, "succeeded"),
        ("sync", "mirror", "succeeded"), ("sync", "vault", "succeeded"), ("trigger", "deploy", "succeeded"),
    ]
    counts = image["steps"][2]["detail"]["counts"]
    assert {k: v for k, v in counts.items() if v} == {"medium": 1, "low": 1}
    assert doc["ref"] == {"type": "branch", "name": "release-v1", "sha": SHA, "time": doc["ref"]["time"],
                          "event": None, "repository": None, "source": "flags"}
    everything = record_path.read_text() + p.stdout + p.stderr
    assert "SECRET" not in everything and SECRET not in everything and basic.password not in everything
    # the Markdown summary on stdout
    assert p.stdout.startswith("### acr-ci run: ✅ succeeded")
    assert f"| release | `{target.host}/demo/hello` | `v1`, `v1-{SHA[:8]}` |" in p.stdout


def test_acr_ci_run_blocked_exits_3(
    busybox_base: BaseImage,
    buildah_env: Path,
    registry_factory: Callable[..., RegistryServer],
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    target = registry_factory("plain")
    mirror = registry_factory("plain")
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "hello", repo / "hello")
    trivy_report(repo / "trivy.json", [("CVE-2024-3094", "CRITICAL")])
    (repo / ".acr-ci.yml").write_text(f"""version: 1
image: {target.host}/demo/hello
build:
  builder: buildah
  rules:
    - name: main
      type: branch
      match: main
      context: hello
      tags: [latest]
      platforms: [linux/amd64]
      args: {{BASE: "{busybox_base.ref}"}}
scan:
  engine: report
  report: trivy.json
  block: {{vulnerabilities: [CVE-2024-3094]}}
  on_block: {{delete: true}}
sync:
  - name: mirror
    to: {mirror.host}/mirror
triggers:
  - name: deploy
    url: {receiver.url("/deploy")}
""")
    p = acr("run", "--ref", "main", "--sha", SHA, env={}, cwd=repo)  # default record path
    assert p.returncode == 3, p.stderr[-3000:]
    assert digest_at(target, "demo/hello", "latest") is None  # deleted by the gate
    assert tags_at(mirror, "mirror/hello") == []
    assert receiver.requests == []
    doc = json.loads((repo / "acr-ci-record.json").read_text())
    assert doc["status"] == "blocked" and doc["exit_code"] == 3
    [scan] = [s for s in doc["images"][0]["steps"] if s["step"] == "scan"]
    assert scan["status"] == "blocked" and scan["detail"]["blocking"] == ["CVE-2024-3094"]
    assert scan["detail"]["gate"]["deleted"] is True
    assert "⛔ blocked" in p.stdout
