"""`acr-ci build --push` for real: buildah builds examples/hello for two platforms and the
registry client pushes it; everything is asserted from the registry (skopeo, plain HTTP)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.support.buildenv import BaseImage

from acr_ci.cli import main

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef0123456789abcdef01234567"
TIME = "2026-11-23T12:00:00Z"


def served(ref: str) -> tuple[str, dict[str, object]] | None:
    """The digest and manifest the registry serves for ``ref`` (None if it has none)."""
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True, check=False, timeout=60,
    )
    if out.returncode != 0:
        return None
    return "sha256:" + hashlib.sha256(out.stdout).hexdigest(), json.loads(out.stdout)


def write_config(repo: Path, image: str, base: str, greeting: str) -> Path:
    path = repo / ".acr-ci.yml"
    path.write_text(f"""\
version: 1
image: {image}
immutable_tags: true
build:
  builder: buildah
  rules:
    - name: release
      type: branch
      match: release-(?<v>\\w+)
      context: hello
      tags: [latest, "${{v}}"]
      platforms: [linux/amd64, linux/arm64]
      args: {{BASE: "{base}", GREETING: "{greeting}"}}
""")
    return path


def build_push(config: Path, out: Path) -> int:
    return main([
        "build", "--push", "--config", str(config), "--ref", "refs/heads/release-v7",
        "--sha", SHA, "--time", TIME, "--layout-dir", str(out),
    ])


def test_build_push_two_platforms_then_immutable_refusal(
    busybox_base: BaseImage, buildah_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "hello", repo / "hello")
    image = busybox_base.registry.ref("team/pushed")

    assert build_push(write_config(repo, image, busybox_base.ref, "one"), tmp_path / "a") == 0
    out = capsys.readouterr()
    v7 = served(f"{image}:v7")
    latest = served(f"{image}:latest")
    assert v7 is not None and latest is not None
    digest, index = v7
    assert latest[0] == digest
    assert out.out.splitlines() == [f"{image}:latest@{digest}", f"{image}:v7@{digest}"]
    manifests = index["manifests"]
    assert isinstance(manifests, list)
    assert sorted(m["platform"]["architecture"] for m in manifests) == ["amd64", "arm64"]

    # a different image under the same version tag: the whole push is refused
    code = build_push(write_config(repo, image, busybox_base.ref, "two"), tmp_path / "b")
    err = capsys.readouterr().err
    assert code == 1
    assert "'v7'" in err and digest in err and "immutable" in err
    assert "Traceback" not in err
    assert served(f"{image}:v7") == v7, "the immutable tag kept its digest"
    assert served(f"{image}:latest") == latest, "a refused push moves no tag, latest included"
