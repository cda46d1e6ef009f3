"""The ``Dockerfile``: hadolint, its shape, and one real build from a base made here.

No public registry can be reached, so the base image is made locally: ``debootstrap
--variant=minbase bookworm`` (its default mirror, ~30 s), the root tar'd, ``buildah from
scratch`` + ``buildah add`` + ``buildah commit``, pushed to a loopback registry and passed
as ``--build-arg BASE=…``. The build's ``apt-get`` reaches Debian's packages as this host
does; its ``pip install`` reaches the package index the same way (a TLS-intercepting
proxy's CA, when this host trusts one, is mounted and passed as ``CA_BUNDLE``).
When debootstrap cannot reach Debian's mirror the build test skips, saying why.
Inside the built image: acr-ci, buildah, the statuses extra, and trivy — an offline secret
scan of a planted key, and ``acr-ci scan --engine trivy`` finding the binary.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from tests.frontends.frontend_support import ROOT, tool
from tests.support import RegistryServer

DOCKERFILE = ROOT / "Dockerfile"
MIRROR_TROUBLE = re.compile(
    r"Failed getting release file|Couldn't download|Temporary failure in name resolution|"
    r"Could not resolve|Network is unreachable|Connection (refused|timed out)|unable to fetch",
    re.IGNORECASE,
)


def hadolint(path: Path) -> list[dict[str, object]]:
    p = subprocess.run([tool("hadolint"), "--format", "json", "--no-fail", str(path)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    findings = json.loads(p.stdout or "[]")
    assert isinstance(findings, list)
    return findings


def test_dockerfile_passes_hadolint() -> None:
    assert hadolint(DOCKERFILE) == []


def test_hadolint_is_live(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\nUSER root\n")
    codes = {f["code"] for f in hadolint(bad)}
    assert {"DL3007", "DL3015"} <= codes, codes


def stages(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)\s*$", text, re.MULTILINE)


def test_dockerfile_shape() -> None:
    text = DOCKERFILE.read_text()
    first_from = text.index("\nFROM ")
    assert re.search(r"^ARG BASE=\S+", text[:first_from], re.MULTILINE), "ARG BASE before FROM"
    assert stages(text) == [("${BASE}", "build"), ("${BASE}", "base-runtime"),
                            ("base-runtime", "root"), ("base-runtime", "runtime")]
    last = text[text.rindex("\nFROM "):]
    assert re.search(r"^USER 10001:10001$", last, re.MULTILINE), "the default target is non-root"
    assert 'ENTRYPOINT ["acr-ci"]' in text
    for key in ("title", "description", "version", "revision", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in text, key
    assert "buildx" not in re.sub(r"#.*", "", text), "buildx stays on the runner"
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1 :][:3] == ["!pyproject.toml", "!README.md", "!src/"]


def ca_bundle() -> str | None:
    """The CA file this host's pip trusts (PIP_CERT, pip's config), else the system bundle."""
    if os.environ.get("PIP_CERT"):
        return os.environ["PIP_CERT"]
    p = subprocess.run(["python3", "-m", "pip", "config", "get", "global.cert"],
                       capture_output=True, text=True)
    if p.returncode == 0 and p.stdout.strip():
        return p.stdout.strip()
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    return str(system) if system.exists() else None


def run(argv: list[str], timeout: float, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.mark.registry
@pytest.mark.e2e
def test_image_builds_from_a_debootstrap_base(
    buildah_env: Path, registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    debootstrap = tool("debootstrap")
    buildah = tool("buildah")
    if os.geteuid() != 0:
        pytest.skip("debootstrap needs root")
    started = time.monotonic()

    root = tmp_path / "rootfs"
    p = run([debootstrap, "--variant=minbase", "bookworm", str(root)], timeout=600)
    if p.returncode != 0:
        tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-5:])
        if MIRROR_TROUBLE.search(p.stdout + p.stderr):
            pytest.skip(f"debootstrap cannot reach Debian's mirror, so no base image: {tail}")
        pytest.fail(f"debootstrap failed (exit {p.returncode}): {tail}")
    rootfs_tar = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs_tar, "w") as tar:
        tar.add(root, arcname=".")
    base = registry.ref("base/debian:bookworm")
    c = run([buildah, "from", "scratch"], timeout=60, check=True).stdout.strip()
    run([buildah, "add", c, str(rootfs_tar), "/"], timeout=300, check=True)
    run([buildah, "config", "--env",
         "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", c], timeout=60, check=True)
    run([buildah, "commit", "--rm", c, "localhost/acr-ci-test-base:bookworm"], timeout=300, check=True)
    run([buildah, "push", "--tls-verify=false", "localhost/acr-ci-test-base:bookworm",
         f"docker://{base}"], timeout=300, check=True)
    based = time.monotonic() - started

    argv = [buildah, "build", "--layers", "--tls-verify=false", "--build-arg", f"BASE={base}",
            "--build-arg", "REVISION=test"]
    cert = ca_bundle()
    if cert:
        argv += ["--volume", f"{cert}:/run/acr-ci-ca.crt:ro", "--build-arg",
                 "CA_BUNDLE=/run/acr-ci-ca.crt"]
    p = run([*argv, "-t", "localhost/acr-ci:test", str(ROOT)], timeout=900)
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    p = run([*argv, "--target", "root", "-t", "localhost/acr-ci:test-root", str(ROOT)],
            timeout=900)
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    built = time.monotonic() - started

    def inspect(image: str) -> dict[str, object]:
        out = run([buildah, "inspect", "--type", "image", image], timeout=60, check=True).stdout
        config = json.loads(out)["OCIv1"]["config"]
        assert isinstance(config, dict)
        return config

    config = inspect("localhost/acr-ci:test")
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["acr-ci"]
    labels = config["Labels"]
    assert isinstance(labels, dict)
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.revision"] == "test"
    assert inspect("localhost/acr-ci:test-root")["User"] == "0:0"

    c = run([buildah, "from", "localhost/acr-ci:test"], timeout=120, check=True).stdout.strip()
    try:
        assert run([buildah, "run", c, "--", "acr-ci", "--version"], timeout=120).stdout.strip() == "acr-ci 0.1.0"
        assert run([buildah, "run", c, "--", "id", "-u"], timeout=60).stdout.strip() == "10001"
        assert run([buildah, "run", c, "--", "buildah", "--version"], timeout=60).returncode == 0
        # the image's acr-ci talks to a registry (chroot isolation: the host's loopback)
        p = run([buildah, "run", c, "--", "acr-ci", "inspect", base], timeout=120)
        assert p.returncode == 0, p.stderr
        assert "sha256:" in p.stdout
        p = run([buildah, "run", c, "--", "python3", "-c", "import acr_ci.frontends.github"], timeout=60)
        assert p.returncode == 0, p.stderr
        scanner_checks(buildah, c, base, tmp_path)
        sizes = image_sizes(buildah, c)
    finally:
        run([buildah, "rm", c], timeout=60)
    c = run([buildah, "from", "localhost/acr-ci:test-root"], timeout=120, check=True).stdout.strip()
    try:  # the root target (GitHub Docker action, build jobs) has the same scanner on PATH
        p = run([buildah, "run", c, "--", "sh", "-c", "id -u; command -v trivy"], timeout=60)
        assert p.stdout.split() == ["0", "/opt/acr-ci/bin/trivy"], p.stdout + p.stderr
    finally:
        run([buildah, "rm", c], timeout=60)
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\n[figure] image build: base {based:.0f}s, two targets {built - based:.0f}s, "
              f"total {elapsed:.0f}s")
        print(f"[figure] image size: {sizes}")


# An AWS access key id (not AWS's documented example, which trivy allow-lists).
PLANTED_SECRET = "aws_access_key_id = AKIAIOSFODNN7EXAMPLQ\n"
NO_DB = ("trivy has no vulnerability DB in its cache (TRIVY_CACHE_DIR) and its updates are "
         "skipped (--skip-db-update / TRIVY_SKIP_DB_UPDATE)")


def scanner_checks(buildah: str, c: str, image: str, tmp_path: Path) -> None:
    """In the runtime container: trivy on PATH, the statuses extra, an offline trivy scan, and
    acr-ci's own trivy engine finding that binary (no vulnerability DB here: it says so)."""
    p = run([buildah, "run", c, "--", "sh", "-c", "command -v trivy"], timeout=60)
    assert p.stdout.strip() == "/opt/acr-ci/bin/trivy", p.stdout + p.stderr
    p = run([buildah, "run", c, "--", "trivy", "--version"], timeout=120)
    assert p.returncode == 0, p.stderr
    assert re.match(r"Version: \d+\.\d+\.\d+", p.stdout), p.stdout
    p = run([buildah, "run", c, "--", "python3", "-c",
             "import github, gitlab; print(github.__name__, gitlab.__version__)"], timeout=120)
    assert p.returncode == 0, p.stderr
    # the image carries no pip/setuptools (nothing to install with at run time)
    p = run([buildah, "run", c, "--", "python3", "-c", "import importlib.util as u; "
             "print([m for m in ('pip', 'setuptools') if u.find_spec(m)])"], timeout=60)
    assert p.stdout.strip() == "[]", p.stdout + p.stderr

    # trivy's secret scanner needs no DB: a planted key is found offline, as user 10001
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "deploy.env").write_text(PLANTED_SECRET)
    p = run([buildah, "run", "--volume", f"{planted}:/scan:ro", "--env",
             "TRIVY_CACHE_DIR=/tmp/trivy-cache", c, "--", "trivy", "fs", "--scanners", "secret",
             "--skip-db-update", "--offline-scan", "--format", "json", "--quiet", "/scan"], timeout=300)
    assert p.returncode == 0, p.stderr
    results = json.loads(p.stdout)["Results"]
    found = [(r["Target"], s["RuleID"], s["Severity"]) for r in results for s in r.get("Secrets", [])]
    assert found == [("deploy.env", "aws-access-key-id", "CRITICAL")], found
    assert "AKIAIOSFODNN7EXAMPLQ" not in p.stdout  # trivy masks what it found

    # acr-ci scan --engine trivy in the image: the binary is found (not "not installed"); with
    # an empty cache and DB updates skipped it fails with acr-ci's one-line DB error, exit 1
    p = run([buildah, "run", "--env", "TRIVY_SKIP_DB_UPDATE=true", "--env",
             "TRIVY_CACHE_DIR=/tmp/empty-trivy-cache", c, "--", "acr-ci", "scan", image,
             "--engine", "trivy", "--severity", "critical", "--quiet"], timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "not installed" not in p.stderr, p.stderr
    error = [line for line in p.stderr.splitlines() if line.startswith("acr-ci: error: ")]
    assert len(error) == 1 and error[0].endswith(NO_DB), p.stderr
    assert "hint: " in p.stderr and "TRIVY_DB_REPOSITORY" in p.stderr, p.stderr


def image_sizes(buildah: str, c: str) -> str:
    """The images' sizes as buildah reports them, and what the venv and trivy take."""
    out = run([buildah, "images", "--json"], timeout=60, check=True).stdout
    size = {n: i["size"] for i in json.loads(out) for n in i.get("names") or []}
    p = run([buildah, "run", c, "--", "sh", "-c",
             "du -sm /opt/acr-ci | cut -f1; du -sm /opt/acr-ci/bin/trivy | cut -f1"], timeout=60)
    venv, trivy = p.stdout.split()
    return (f"runtime {size.get('localhost/acr-ci:test', '?')} (base "
            f"{size.get('localhost/acr-ci-test-base:bookworm', '?')}), venv {venv} MB of which "
            f"trivy {trivy} MB")
