"""``acr-ci push|copy|inspect`` through ``python -m acr_ci``: exit codes, stdout, stderr."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support import RegistryServer
from tests.support.layout import Layout

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

LayoutFactory = Callable[..., Layout]


def acr(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ACR_CI_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "acr_ci", *args], capture_output=True, text=True, env=full_env,
        input=stdin, timeout=120, check=False,
    )


def skopeo_digest(ref: str, *extra: str) -> str:
    out = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", *extra, f"docker://{ref}"],
                         capture_output=True, check=True, timeout=60)
    return "sha256:" + hashlib.sha256(out.stdout).hexdigest()


def test_push_prints_digest_and_one_line_per_blob(registry: RegistryServer, oci_layout_factory: LayoutFactory) -> None:
    layout = oci_layout_factory(seed=1)
    r = acr("push", f"oci-layout:{layout.path}", f"{registry.host}/cli/app:v1", "v1.0", "latest")
    assert r.returncode == 0, r.stderr
    assert r.stdout == layout.index_digest + "\n"
    blob_lines = [line for line in r.stderr.splitlines() if ": copied " in line]
    assert len(blob_lines) == len(layout.blobs) - 3  # configs and layers; manifests are not blobs here
    for tag in ("v1", "v1.0", "latest"):
        assert skopeo_digest(f"{registry.host}/cli/app:{tag}") == layout.index_digest
    again = acr("push", "-q", f"oci-layout:{layout.path}:latest", f"{registry.host}/cli/app:v1")
    assert again.returncode == 0 and again.stderr == ""
    assert again.stdout.strip() == layout.index_digest


def test_copy_and_inspect(registry: RegistryServer, oci_layout_factory: LayoutFactory, tmp_path: Path) -> None:
    layout = oci_layout_factory(platforms=["linux/amd64", "linux/arm64"], seed=2)
    assert acr("push", "-q", f"oci-layout:{layout.path}", f"{registry.host}/cli/src:v1").returncode == 0
    r = acr("copy", "--platform", "linux/arm64", f"{registry.host}/cli/src:v1", f"{registry.host}/cli/arm:v1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == layout.manifests["linux/arm64"]
    assert skopeo_digest(f"{registry.host}/cli/arm:v1") == layout.manifests["linux/arm64"]

    r = acr("inspect", f"{registry.host}/cli/src:v1")
    assert r.returncode == 0, r.stderr
    assert f"Digest:     {layout.index_digest}" in r.stdout
    assert "MediaType:  application/vnd.oci.image.index.v1+json" in r.stdout
    assert "Platforms:  linux/amd64, linux/arm64" in r.stdout
    assert f"Size:       {layout.total_bytes}" in r.stdout or "Size:" in r.stdout

    raw = acr("inspect", "--raw", f"{registry.host}/cli/src:v1")
    assert "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest() == layout.index_digest
    single = acr("inspect", f"{registry.host}/cli/arm:v1")
    assert "Platforms:  linux/arm64" in single.stdout

    saved = tmp_path / "saved"
    r = acr("copy", "-q", f"{registry.host}/cli/src:v1", f"oci-layout:{saved}:keep")
    assert r.returncode == 0, r.stderr
    index = json.loads((saved / "index.json").read_text())
    assert [(m["digest"], m["annotations"]["org.opencontainers.image.ref.name"]) for m in index["manifests"]] == [
        (layout.index_digest, "keep")
    ]
    r = acr("inspect", f"oci-layout:{saved}:keep")
    assert f"Digest:     {layout.index_digest}" in r.stdout


ERRORS = [
    # id, argv (REG is replaced by the registry host), exit code, text in stderr
    ("bad-ref", ["inspect", "REG/Bad:ref"], 2, "invalid repository path"),
    ("bad-tag", ["copy", "REG/a:v1", "REG/b:-x"], 2, "invalid tag"),
    ("push-not-layout", ["push", "REG/a:v1", "REG/b:v1"], 2, "is not an OCI layout"),
    ("push-no-tag", ["push", "oci-layout:/nonexistent", "REG/b"], 2, "has no tag"),
    ("push-missing-layout", ["push", "oci-layout:/nonexistent", "REG/b:v1"], 2, "not an OCI image layout"),
    ("bad-platform", ["copy", "--platform", "linux", "REG/a:v1", "REG/b:v1"], 2, "--platform 'linux'"),
    ("not-found", ["inspect", "REG/nothing/here:v1"], 1, "HTTP 404"),
    ("bad-jobs", ["copy", "--jobs", "0", "REG/a:v1", "REG/b:v1"], 2, "--jobs 0"),
    ("unreachable", ["inspect", "127.0.0.1:1/a:v1"], 1, "cannot reach registry 127.0.0.1:1"),
    ("inspect-missing-layout", ["inspect", "oci-layout:/nonexistent"], 2, "not an OCI image layout"),
]


@pytest.mark.parametrize(("argv", "code", "text"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors(registry: RegistryServer, argv: list[str], code: int, text: str) -> None:
    r = acr(*[a.replace("REG", registry.host) for a in argv])
    assert r.returncode == code, r.stderr
    assert text in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("acr-ci: error:")


def test_password_stdin_and_env_creds_never_leak(
    registry_factory: Callable[..., RegistryServer], oci_layout_factory: LayoutFactory, tmp_path: Path
) -> None:
    server = registry_factory(kind="basic")
    assert server.credentials is not None
    user, password = server.credentials
    layout = oci_layout_factory(seed=3)
    env = {"ACR_CI_REGISTRY_USERNAME": user, "DOCKER_CONFIG": str(tmp_path / "empty")}
    r = acr("push", "--password-stdin", f"oci-layout:{layout.path}", f"{server.host}/cli/auth:v1",
            env=env, stdin=password + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == layout.index_digest
    r2 = acr("inspect", f"{server.host}/cli/auth:v1", env={**env, "ACR_CI_REGISTRY_PASSWORD": password})
    assert r2.returncode == 0 and layout.index_digest in r2.stdout
    wrong = acr("-v", "inspect", f"{server.host}/cli/auth:v1",
                env={**env, "ACR_CI_REGISTRY_PASSWORD": "nope-" + password})
    assert wrong.returncode == 1
    assert "401" in wrong.stderr
    anonymous = acr("inspect", f"{server.host}/cli/auth:v1", env={"DOCKER_CONFIG": str(tmp_path / "empty")})
    assert anonymous.returncode == 1
    for proc in (r, r2, wrong, anonymous):
        assert password not in proc.stdout + proc.stderr
