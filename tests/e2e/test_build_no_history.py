"""Base images whose config has no ``history`` (valid OCI) build with buildah (real buildah,
real registry, linux/amd64 + linux/arm64 through qemu).

buildah 1.28 with ``--layers`` fails on them as soon as a second step commits; the builder
sees that error and builds the rule once more without ``--layers``, saying so in one line.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.support.buildenv import BaseImage, private_storage, push_layout_with_skopeo

from acr_ci.build import BuildahBuilder, BuildResult, layout_folder, prepare_job
from acr_ci.build.buildah import NO_HISTORY_ERROR
from acr_ci.errors import BuildError
from acr_ci.models import BuildPlan, RefContext, RefType

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

SHA = "89abcdef0123456789abcdef0123456789abcdef"
REF = RefContext(type=RefType.BRANCH, name="main", sha=SHA, time=datetime(2026, 1, 1, tzinfo=UTC))
BOTH = ("linux/amd64", "linux/arm64")
RETRY = "base image has no history: building again without the layer cache"
# what buildah 1.28.2 printed here (its last line of a failed --layers build on such a base)
SEEN = (
    "\t* committing container for step {Env:[PATH=/usr/local/bin:/bin] Command:copy Args:[b /b] "
    'Flags:[] Attrs:map[] Message:COPY b /b Original:COPY b /b}: copying layers and metadata for '
    'container "06294cdea65538d039cb7771a858f07e2cff374ecb98ce9b6702853c752d658a": initializing '
    "source containers-storage:1785f7754578-working-container: internal error: history lists 2 "
    "non-empty layers, but we have 3 layers on disk"
)


def without_history(src: Path, dest: Path) -> str:
    """A copy of the OCI layout ``src`` at ``dest`` whose configs have no ``history``
    (new configs, manifests and index); returns the new index digest."""
    shutil.copytree(src, dest)
    blobs = dest / "blobs" / "sha256"

    def load(digest: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((blobs / digest.split(":", 1)[1]).read_bytes())
        return doc

    def put(doc: dict[str, Any]) -> tuple[str, int]:
        data = json.dumps(doc).encode()
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}", len(data)

    top = json.loads((dest / "index.json").read_text())
    [entry] = top["manifests"]
    index = load(entry["digest"])
    for desc in index["manifests"]:
        manifest = load(desc["digest"])
        config = load(manifest["config"]["digest"])
        assert config.pop("history"), "the session base has a history to drop"
        manifest["config"]["digest"], manifest["config"]["size"] = put(config)
        desc["digest"], desc["size"] = put(manifest)
    entry["digest"], entry["size"] = put(index)
    (dest / "index.json").write_text(json.dumps(top))
    return str(entry["digest"])


@pytest.fixture(scope="module")
def buildah_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This module's own build storage: its cache images stay out of the session's
    (tests/e2e/test_build_buildah.py checks exactly which cache images that one holds)."""
    yield from private_storage(tmp_path_factory)


@pytest.fixture(scope="module")
def bare_base(busybox_base: BaseImage, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session busybox base without ``history``, in the session registry."""
    layout = tmp_path_factory.mktemp("bare-base") / "layout"
    without_history(busybox_base.layout.path, layout)
    ref = busybox_base.registry.ref("base/bare:1")
    push_layout_with_skopeo(layout, ref)
    return ref


def build(
    repo: Path, tmp_path: Path, rule: str, dockerfile: str, base: str,
    platforms: tuple[str, ...] = BOTH,
) -> tuple[BuildResult, list[str]]:
    context = repo / rule
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(f"ARG BASE\nFROM ${{BASE}}\n{dockerfile}")
    (context / "a.txt").write_text("first file\n")
    (context / "b.txt").write_text("second file\n")
    plan = BuildPlan(
        rule=rule, image="127.0.0.1:1/x/y", tags=("t",), platforms=platforms,
        context=rule, dockerfile="Dockerfile", args={"BASE": base},
    )
    lines: list[str] = []
    job = prepare_job(plan, REF, config_dir=repo, layout=layout_folder(tmp_path / "w", 1, rule),
                      secrets_dir=tmp_path / "w" / "secrets", log=lines.append)
    try:
        return BuildahBuilder().build(job), lines
    except BuildError as e:
        raise AssertionError(e.message + "\n" + "\n".join(lines[-40:])) from None


def read_image(layout: Path, manifest_digest: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The config and the files (layers applied in order) of one image in ``layout``."""
    def raw(digest: str) -> bytes:
        return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()

    manifest = json.loads(raw(manifest_digest))
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        data = raw(layer["digest"])
        data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                f = tar.extractfile(member) if member.isfile() else None
                if f is not None:
                    files[member.name.lstrip("./")] = f.read()
    return json.loads(raw(manifest["config"]["digest"])), files


def check_layout(result: BuildResult) -> dict[str, tuple[dict[str, Any], dict[str, bytes]]]:
    top = json.loads((result.layout / "index.json").read_text())
    assert [m["digest"] for m in top["manifests"]] == [result.index_digest]
    index = json.loads(
        (result.layout / "blobs" / "sha256" / result.index_digest.split(":", 1)[1]).read_bytes()
    )
    platforms = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in index["manifests"]
    }
    assert set(platforms) == set(BOTH) and platforms == dict(result.platforms)
    images = {p: read_image(result.layout, d) for p, d in platforms.items()}
    for platform, (config, _) in images.items():
        assert config["architecture"] == platform.split("/")[1]
    return images


UNAME = {"linux/amd64": b"x86_64\n", "linux/arm64": b"aarch64\n"}


def expect_arg_run(images: dict[str, tuple[dict[str, Any], dict[str, bytes]]]) -> None:
    for platform, (_, files) in images.items():
        assert files["etc/x"] == b"from-arg\n", platform
        assert files["etc/arch"] == UNAME[platform], platform


def expect_two_copies(images: dict[str, tuple[dict[str, Any], dict[str, bytes]]]) -> None:
    for platform, (_, files) in images.items():
        assert files["etc/a.txt"] == b"first file\n", platform
        assert files["etc/b.txt"] == b"second file\n", platform


def expect_copy_run_env(images: dict[str, tuple[dict[str, Any], dict[str, bytes]]]) -> None:
    for platform, (config, files) in images.items():
        assert files["etc/a.txt"] == b"first file\n", platform
        assert files["etc/a-and-arch"] == b"first file\n" + UNAME[platform], platform
        assert "COLOUR=green" in config["config"]["Env"], platform


SHAPES: dict[str, tuple[str, Callable[[dict[str, tuple[dict[str, Any], dict[str, bytes]]]], None]]] = {
    "arg-run": ("ARG X=from-arg\nRUN echo $X > /etc/x && uname -m > /etc/arch\n", expect_arg_run),
    "two-copies": ("COPY a.txt /etc/a.txt\nCOPY b.txt /etc/b.txt\n", expect_two_copies),
    "copy-run-env": (
        "COPY a.txt /etc/a.txt\nRUN cat /etc/a.txt > /etc/a-and-arch && uname -m >> /etc/a-and-arch\n"
        "ENV COLOUR=green\n",
        expect_copy_run_env,
    ),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_base_without_history_builds_after_one_retry(
    shape: str, bare_base: str, buildah_env: Path, tmp_path: Path
) -> None:
    dockerfile, expect = SHAPES[shape]
    rule = f"bare-{shape}"
    result, lines = build(tmp_path / "repo", tmp_path, rule, dockerfile, bare_base)
    assert lines.count(f"[{rule}] {RETRY}") == 1, [line for line in lines if "history" in line]
    assert sum("history lists" in line for line in lines) >= 1, "the retry followed buildah's error"
    assert [line for line in lines if RETRY in line] == [f"[{rule}] {RETRY}"]
    expect(check_layout(result))


def test_base_with_history_builds_once(
    busybox_base: BaseImage, buildah_env: Path, tmp_path: Path
) -> None:
    dockerfile, expect = SHAPES["copy-run-env"]
    result, lines = build(tmp_path / "repo", tmp_path, "full", dockerfile, busybox_base.ref)
    assert not [line for line in lines if RETRY in line or "history lists" in line]
    expect(check_layout(result))


def test_other_failures_on_a_bare_base_are_not_retried(
    bare_base: str, buildah_env: Path, tmp_path: Path
) -> None:
    with pytest.raises(AssertionError) as failed:
        build(tmp_path / "repo", tmp_path, "bare-broken", "COPY a.txt /a\nRUN echo once-marker; exit 7\n",
              bare_base, platforms=("linux/amd64",))
    message = str(failed.value)
    assert "rule 'bare-broken': buildah build failed" in message
    assert RETRY not in message
    assert message.count("[bare-broken] once-marker") == 1, "the RUN step ran once"


def test_the_pattern_matches_what_buildah_printed_and_nothing_looser() -> None:
    assert NO_HISTORY_ERROR.search(SEEN)
    assert NO_HISTORY_ERROR.search(SEEN.replace("lists 2", "lists 12").replace("have 3", "have 13"))
    assert not NO_HISTORY_ERROR.search(SEEN + " (and then something else)")
    assert not NO_HISTORY_ERROR.search(SEEN.replace("internal error: ", ""))
    assert not NO_HISTORY_ERROR.search(SEEN.replace("2 non-empty", "two non-empty"))
