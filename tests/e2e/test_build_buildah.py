"""Real multi-arch builds with buildah (vfs, chroot; arm64 through qemu), asserted from the
OCI layout and from a real registry after pushing the layout with skopeo.

Needs buildah, skopeo, qemu-user-static in binfmt_misc, busybox-static (amd64 + arm64 .deb)
and docker-registry: the session fixtures in ``tests/support/buildenv.py`` skip (locally)
or fail (under CI) with the reason when something is missing.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import shutil
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.support import RegistryServer
from tests.support.buildenv import BaseImage, write_busybox_layout

from acr_ci.build import BuildahBuilder, layout_folder, prepare_job
from acr_ci.cli import main
from acr_ci.models import BuildPlan, RefContext, RefType

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SHA = "89abcdef0123456789abcdef0123456789abcdef"
TIME = "2026-11-23T12:00:00Z"
P = "org.opencontainers.image."


# -- helpers --------------------------------------------------------------------------------


def write_config(repo: Path, image: str, rules: str) -> Path:
    path = repo / ".acr-ci.yml"
    path.write_text(
        f"version: 1\nimage: {image}\nbuild:\n  builder: buildah\n  rules:\n{rules}"
    )
    return path


def cli_build(config: Path, out: Path, *extra: str, ref: str = "refs/heads/main") -> int:
    return main([
        "build", "--config", str(config), "--ref", ref, "--sha", SHA, "--time", TIME,
        "--output-json", str(out / "build.json"), "--layout-dir", str(out / "work"), *extra,
    ])


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def jblob(layout: Path, digest: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(blob(layout, digest))
    return doc


def files_in_layers(layers: list[bytes]) -> dict[str, bytes]:
    """The image's files after applying the (gzip) layer tars in order."""
    files: dict[str, bytes] = {}
    for data in layers:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            for member in tar:
                if member.isfile():
                    f = tar.extractfile(member)
                    assert f is not None
                    files[member.name.lstrip("./")] = f.read()
    return files


class RegistryReader:
    """Reads manifests and blobs from a registry over plain HTTP (the registry's side)."""

    def __init__(self, server: RegistryServer) -> None:
        self.url = server.url

    def get(self, path: str, accept: str = "") -> bytes:
        req = urllib.request.Request(self.url + path)
        if accept:
            req.add_header("Accept", accept)
        with urllib.request.urlopen(req, timeout=30) as resp:
            data: bytes = resp.read()
            return data

    def manifest(self, repo: str, ref: str) -> dict[str, Any]:
        accept = ",".join([
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
        ])
        doc: dict[str, Any] = json.loads(self.get(f"/v2/{repo}/manifests/{ref}", accept))
        return doc

    def blob(self, repo: str, digest: str) -> bytes:
        return self.get(f"/v2/{repo}/blobs/{digest}")


def skopeo_push(layout: Path, dest: str) -> None:
    subprocess.run(
        ["skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
         f"oci:{layout}", f"docker://{dest}"],
        check=True, capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "hello", root / "hello")
    return root


# -- the example, two platforms ----------------------------------------------------------------


def test_hello_multi_arch(
    busybox_base: BaseImage, buildah_env: Path, repo: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], record_property: Callable[[str, object], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # as on a GitHub runner: the source URL comes from the runner's env (the ref from flags)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/hello")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
    for var in ("GITHUB_EVENT_PATH", "GITHUB_EVENT_NAME", "GITHUB_REF", "GITHUB_SHA", "GITLAB_CI"):
        monkeypatch.delenv(var, raising=False)
    registry = busybox_base.registry
    image = registry.ref("team/hello")
    config = write_config(repo, image, f"""\
    - name: hello
      type: branch
      match: main
      context: hello
      tags: [latest, "${{commit}}"]
      platforms: [linux/amd64, linux/arm64]
      args: {{BASE: "{busybox_base.ref}", GREETING: "hej from the test"}}
""")
    started = time.monotonic()
    code = cli_build(config, tmp_path)
    elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    record_property("build_seconds_linux_amd64_arm64", round(elapsed, 2))
    print(f"\nexamples/hello build time, linux/amd64 + linux/arm64: {elapsed:.1f}s")

    [build] = json.loads((tmp_path / "build.json").read_text())["builds"]
    assert build["rule"] == "hello" and build["builder"] == "buildah"
    assert build["tags"] == ["latest", SHA[:6]]
    digest = build["index_digest"]
    assert captured.out.splitlines() == [f"{image}:latest@{digest}", f"{image}:{SHA[:6]}@{digest}"]
    assert "[hello] [linux/arm64] STEP" in captured.err, "the build log is streamed, prefixed"

    # from the layout
    layout = Path(build["layout"])
    top = json.loads((layout / "index.json").read_text())
    assert top["manifests"][0]["digest"] == digest
    assert top["manifests"][0]["annotations"] == {P + "ref.name": "latest"}

    # from the registry, after pushing the layout with the reference tool
    skopeo_push(layout, f"{image}:latest")
    reader = RegistryReader(registry)
    index = reader.manifest("team/hello", "latest")
    assert reader.manifest("team/hello", digest) == index
    expected_annotations = {
        P + "source": "https://github.example/acme/hello",
        P + "revision": SHA,
        P + "created": TIME,
        P + "version": "latest",
        P + "ref.name": "latest",
    }
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert expected_annotations.items() <= index["annotations"].items()
    platforms = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in index["manifests"]
    }
    assert platforms == build["platforms"]
    assert set(platforms) == {"linux/amd64", "linux/arm64"}
    uname = {"amd64": b"x86_64\n", "arm64": b"aarch64\n"}
    for platform, manifest_digest in platforms.items():
        arch = platform.split("/")[1]
        manifest = reader.manifest("team/hello", manifest_digest)
        assert expected_annotations.items() <= manifest["annotations"].items(), platform
        cfg = json.loads(reader.blob("team/hello", manifest["config"]["digest"]))
        assert (cfg["os"], cfg["architecture"]) == ("linux", arch)
        assert expected_annotations.items() <= cfg["config"]["Labels"].items(), platform
        files = files_in_layers([reader.blob("team/hello", d["digest"]) for d in manifest["layers"]])
        assert files["etc/built-on-arch"] == uname[arch], platform
        assert files["etc/greeting"] == b"hej from the test\n", "the build arg took effect"
        assert files["usr/local/bin/hello"].startswith(b"#!/bin/sh")

    # nothing left behind in buildah's storage but one cache image per platform
    names = subprocess.run(
        ["buildah", "images", "--format", "{{.Name}}:{{.Tag}}"], capture_output=True, text=True,
        check=True,
    ).stdout.split()
    assert not [n for n in names if "acr-ci-build" in n], names
    assert sorted(n for n in names if "acr-ci-cache" in n) == [
        "localhost/acr-ci-cache/hello:linux-amd64", "localhost/acr-ci-cache/hello:linux-arm64",
    ]


# -- no_cache -------------------------------------------------------------------------------


STAMP_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN date +%s > /stamp && od -An -tx8 -N8 /dev/urandom >> /stamp
"""


def test_no_cache_rebuilds_and_cache_reuses(
    busybox_base: BaseImage, buildah_env: Path, repo: Path, tmp_path: Path
) -> None:
    (repo / "stamp").mkdir()
    (repo / "stamp" / "Dockerfile").write_text(STAMP_DOCKERFILE)
    rule = """\
    - name: {name}
      type: branch
      match: main
      context: stamp
      tags: [latest]
      platforms: [linux/amd64]
      args: {{BASE: "{base}"}}
      no_cache: {no_cache}
"""
    config = write_config(
        repo,
        busybox_base.registry.ref("team/stamp"),
        rule.format(name="cached", base=busybox_base.ref, no_cache="false")
        + rule.format(name="fresh", base=busybox_base.ref, no_cache="true"),
    )

    def stamp(rule_name: str, n: int) -> bytes:
        out = tmp_path / f"{rule_name}-{n}"
        assert cli_build(config, out, "--rule", rule_name) == 0
        [build] = json.loads((out / "build.json").read_text())["builds"]
        layout = Path(build["layout"])
        manifest = jblob(layout, build["platforms"]["linux/amd64"])
        files = files_in_layers([blob(layout, d["digest"]) for d in manifest["layers"]])
        return files["stamp"]

    cached = [stamp("cached", 1), stamp("cached", 2)]
    fresh = [stamp("fresh", 1), stamp("fresh", 2)]
    assert cached[0] == cached[1], "with the cache the RUN step is reused"
    assert fresh[0] != fresh[1], "no_cache: true runs the RUN step again"
    assert fresh[0] != cached[0]


# -- logs and failures ----------------------------------------------------------------------


def plan_for(context: str, rule: str, base: str, platforms: tuple[str, ...] = ("linux/amd64",)) -> BuildPlan:
    return BuildPlan(
        rule=rule, image="127.0.0.1:1/x/y", tags=("t",), platforms=platforms,
        context=context, dockerfile="Dockerfile", args={"BASE": base},
    )


REF = RefContext(type=RefType.BRANCH, name="main", sha=SHA, time=datetime(2026, 1, 1, tzinfo=UTC))


def test_log_streams_while_the_build_runs(
    busybox_base: BaseImage, buildah_env: Path, repo: Path, tmp_path: Path
) -> None:
    (repo / "slow").mkdir()
    (repo / "slow" / "Dockerfile").write_text(
        "ARG BASE\nFROM ${BASE}\nRUN echo first-marker && sleep 3 && echo second-marker\n"
    )
    seen: list[tuple[float, str]] = []
    log: Callable[[str], None] = lambda line: seen.append((time.monotonic(), line))  # noqa: E731
    plan = plan_for("slow", "slow", busybox_base.ref)
    job = prepare_job(plan, REF, config_dir=repo, layout=layout_folder(tmp_path / "w", 1, "slow"),
                      secrets_dir=tmp_path / "w" / "secrets", log=log)
    result = BuildahBuilder().build(job)
    assert result.platforms.keys() == {"linux/amd64"}
    first = next(t for t, line in seen if line == "[slow] first-marker")
    second = next(t for t, line in seen if line == "[slow] second-marker")
    assert second - first >= 2.0, "lines arrive as the builder writes them, not at the end"
    assert all(line.startswith("[slow] ") for _, line in seen)


def test_failing_build_exits_1_with_the_last_lines(
    busybox_base: BaseImage, buildah_env: Path, repo: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (repo / "broken").mkdir()
    (repo / "broken" / "Dockerfile").write_text(
        "ARG BASE\nFROM ${BASE}\n"
        "RUN for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; "
        "do echo noise-$i; done; echo about-to-fail; exit 7\n"
    )
    config = write_config(repo, busybox_base.registry.ref("team/broken"), f"""\
    - name: broken
      type: branch
      match: main
      context: broken
      tags: [latest]
      platforms: [linux/amd64]
      args: {{BASE: "{busybox_base.ref}"}}
""")
    code = cli_build(config, tmp_path)
    err = capsys.readouterr().err
    assert code == 1
    assert "[broken] noise-1\n" in err, "the full log streamed to the console"
    message = err[err.index("acr-ci: error:"):]
    assert "rule 'broken': buildah build failed" in message
    assert "about-to-fail" in message and "noise-25" in message
    assert "noise-1\n" not in message, "only the last lines are in the error"
    assert "Traceback" not in err
    assert not (tmp_path / "build.json").exists()


def test_missing_base_image_fails_clearly(
    busybox_base: BaseImage, buildah_env: Path, repo: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(repo, busybox_base.registry.ref("team/hello"), f"""\
    - name: nobase
      type: branch
      match: main
      context: hello
      tags: [latest]
      platforms: [linux/amd64]
      args: {{BASE: "{busybox_base.registry.host}/base/does-not-exist:1"}}
""")
    assert cli_build(config, tmp_path) == 1
    err = capsys.readouterr().err
    assert "rule 'nobase': buildah build failed" in err
    assert "does-not-exist" in err[err.index("acr-ci: error:"):]


# -- credentials for a private base image ----------------------------------------------------


def test_private_base_image_through_an_auth_file(
    busybox_base: BaseImage, buildah_env: Path, repo: Path, tmp_path: Path,
    registry_factory: Callable[..., RegistryServer], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    private = registry_factory(kind="basic")
    user, password = private.credentials or ("", "")
    auth = tmp_path / "skopeo-auth.json"
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    auth.write_text(json.dumps({"auths": {private.host: {"auth": token}}}))
    subprocess.run(
        ["skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
         "--dest-authfile", str(auth), f"docker://{busybox_base.ref}",
         f"docker://{private.host}/base/busybox:1"],
        check=True, capture_output=True,
    )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    config = write_config(repo, private.ref("team/hello"), f"""\
    - name: private
      type: branch
      match: main
      context: hello
      tags: [latest]
      platforms: [linux/arm64]
      args: {{BASE: "{private.host}/base/busybox:1"}}
""")
    # without credentials the pull is refused
    assert cli_build(config, tmp_path / "anon") == 1
    err = capsys.readouterr().err
    assert "unauthorized" in err.lower() or "authentication required" in err.lower(), err[-2000:]
    # with the CI credentials (env), scoped to the target registry, it works
    monkeypatch.setenv("ACR_CI_REGISTRY_USERNAME", user)
    monkeypatch.setenv("ACR_CI_REGISTRY_PASSWORD", password)
    assert cli_build(config, tmp_path / "auth") == 0
    captured = capsys.readouterr()
    assert password not in captured.err and password not in captured.out
    [build] = json.loads((tmp_path / "auth" / "build.json").read_text())["builds"]
    assert list(build["platforms"]) == ["linux/arm64"]
    leftovers = list((tmp_path / "auth" / "work" / "secrets").rglob("*.json"))
    assert leftovers == [], "the auth file is removed after the build"


def test_foreign_binary_without_qemu_gets_a_hint(
    busybox_base: BaseImage, buildah_env: Path, repo: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # an s390x ELF header as the base image's /bin/sh: no binfmt handler runs it here
    fake = tmp_path / "s390x-elf"
    fake.write_bytes(b"\x7fELF\x02\x02\x01\x00" + b"\x00" * 8 + b"\x00\x02\x00\x16" + b"\x00" * 44)
    layout = write_busybox_layout(tmp_path / "fake-base", {"amd64": fake}, applets=["sh"])
    base = busybox_base.registry.ref("base/fake-s390x:1")
    skopeo_push(layout.path, base)
    config = write_config(repo, busybox_base.registry.ref("team/foreign"), f"""\
    - name: foreign
      type: branch
      match: main
      context: hello
      tags: [latest]
      platforms: [linux/amd64]
      args: {{BASE: "{base}"}}
""")
    assert cli_build(config, tmp_path / "out") == 1
    err = capsys.readouterr().err
    message = err[err.index("acr-ci: error:"):]
    assert "exec format error" in message
    assert "hint: a foreign platform's binaries cannot run here: install qemu-user-static" in message
