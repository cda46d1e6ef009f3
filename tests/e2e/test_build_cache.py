"""The registry build cache with real buildah (vfs, chroot; arm64 through qemu) and real
``docker-registry`` processes, each simulated runner with its own build storage
(``CONTAINERS_STORAGE_CONF``): runner A fills the cache, runner B (fresh storage) takes
the cached steps from it, a cache that cannot be read or written only warns, and
``no_cache: true`` reads nothing.

A ``RUN`` step writes random bytes, so a step that was really run again gives other
layer digests: equal digests on two storages mean the step came from the cache.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.support import RegistryServer
from tests.support.buildenv import BaseImage, private_storage, push_layout_with_skopeo
from tests.support.faultproxy import FaultProxy

from acr_ci.cli import main

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

SHA = "89abcdef0123456789abcdef0123456789abcdef"
TIME = "2026-11-23T12:00:00Z"
BOTH = ["linux/amd64", "linux/arm64"]
DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN od -An -tx8 -N16 /dev/urandom > /stamp
COPY hello.txt /hello.txt
"""
PULLED = "Cache pulled from remote "  # buildah 1.28's line for a step taken from the cache


@pytest.fixture
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Path]]:
    """``storage()`` → a fresh ``storage.conf`` of its own (one per simulated runner)."""
    made: list[Iterator[Path]] = []

    def make() -> Path:
        gen = private_storage(tmp_path_factory)
        made.append(gen)
        return next(gen)

    yield make
    for gen in made:
        next(gen, None)  # its clean-up


@dataclass
class Build:
    code: int
    log: str
    doc: dict[str, Any]
    """This rule's entry of ``--output-json``."""

    @property
    def cache(self) -> dict[str, Any]:
        value: dict[str, Any] = self.doc["cache"]
        return value

    def layers(self) -> dict[str, list[str]]:
        """Platform → its layer digests, read from the OCI layout."""
        layout = Path(self.doc["layout"])
        out: dict[str, list[str]] = {}
        for platform, digest in self.doc["platforms"].items():
            manifest = json.loads((layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_text())
            out[platform] = [layer["digest"] for layer in manifest["layers"]]
        return out


class Runner:
    """``acr-ci build`` of one rule as a CI runner with storage ``conf`` would run it."""

    def __init__(self, repo: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
        self.repo, self.tmp, self.monkeypatch, self.capsys = repo, tmp, monkeypatch, capsys
        self.runs = 0

    def build(self, config: Path, rule: str, conf: Path) -> Build:
        self.runs += 1
        out = self.tmp / f"run-{self.runs}"
        self.monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
        self.capsys.readouterr()
        code = main([
            "build", "--config", str(config), "--ref", "refs/heads/main", "--sha", SHA,
            "--time", TIME, "--rule", rule, "--output-json", str(out / "build.json"),
            "--layout-dir", str(out / "work"),
        ])
        captured = self.capsys.readouterr()
        doc: dict[str, Any] = {}
        if code == 0:
            [doc] = json.loads((out / "build.json").read_text())["builds"]
        return Build(code=code, log=captured.err, doc=doc)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Runner:
    monkeypatch.setenv("STORAGE_DRIVER", "vfs")
    monkeypatch.setenv("BUILDAH_ISOLATION", "chroot")
    repo = tmp_path / "repo"
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "Dockerfile").write_text(DOCKERFILE)
    (repo / "app" / "hello.txt").write_text("hello from the cache test\n")
    return Runner(repo, tmp_path, monkeypatch, capsys)


def write_config(repo: Path, image: str, base: str, cache: str, rules: str = "") -> Path:
    path = repo / ".acr-ci.yml"
    path.write_text(f"""\
version: 1
image: {image}
build:
  builder: buildah
  cache: {{ref: "{cache}", mode: max}}
  rules:
    - name: app
      type: branch
      match: main
      context: app
      tags: [latest]
      platforms: [linux/amd64, linux/arm64]
      args: {{BASE: "{base}"}}
{rules}""")
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def warnings(log: str) -> list[str]:
    return [line for line in log.splitlines() if "warning: registry cache" in line]


# -- a fresh runner reuses what another one cached ----------------------------------------


def test_fresh_runner_takes_the_cached_steps_and_no_cache_reads_none(
    busybox_base: BaseImage, registry: RegistryServer, runner: Runner,
    storage: Callable[[], Path],
) -> None:
    cache_repo = registry.ref("cache/app")
    config = write_config(
        runner.repo, registry.ref("team/app"), busybox_base.ref, registry.ref("cache/${rule}"),
        rules=f"""\
    - name: fresh
      type: branch
      match: main
      context: app
      tags: [fresh]
      platforms: [linux/amd64, linux/arm64]
      args: {{BASE: "{busybox_base.ref}"}}
      no_cache: true
      cache: {{ref: "{cache_repo}"}}
""",
    )
    first = runner.build(config, "app", storage())
    assert first.code == 0, first.log[-3000:]
    assert PULLED not in first.log
    assert first.log.count(f"--> Pushing cache {cache_repo}:") >= 4, "RUN and COPY, both platforms"
    assert first.cache == {"ref": cache_repo, "read": False, "written": True, "error": None}
    assert registry_tags(registry, "cache/app"), "the cache is in the registry"

    second = runner.build(config, "app", storage())  # another runner: empty storage
    assert second.code == 0, second.log[-3000:]
    pulled = [line for line in second.log.splitlines() if PULLED in line]
    assert len(pulled) == 4, "RUN and COPY of both platforms came from the cache"
    assert all(f"{PULLED}{cache_repo}:" in line for line in pulled)
    assert second.cache == {"ref": cache_repo, "read": True, "written": True, "error": None}
    assert second.layers() == first.layers(), "the same layers: the RUN step was not run again"
    assert set(first.layers()) == set(BOTH)
    assert second.doc["platforms"] == first.doc["platforms"]
    assert warnings(first.log + second.log) == []

    fresh = runner.build(config, "fresh", storage())  # no_cache: nothing read, still written
    assert fresh.code == 0, fresh.log[-3000:]
    assert PULLED not in fresh.log
    assert fresh.cache == {"ref": cache_repo, "read": False, "written": True, "error": None}
    for platform, layers in fresh.layers().items():
        assert layers[-2] != first.layers()[platform][-2], "the RUN step ran again"


def registry_tags(server: RegistryServer, repo: str) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/v2/{repo}/tags/list", timeout=10) as r:
        tags: list[str] = json.loads(r.read()).get("tags") or []
    return tags


# -- a cache that cannot be used only warns ------------------------------------------------


def test_dead_cache_registry_only_warns(
    busybox_base: BaseImage, registry: RegistryServer, runner: Runner,
    storage: Callable[[], Path],
) -> None:
    dead = f"127.0.0.1:{closed_port()}/cache/app"
    config = write_config(runner.repo, registry.ref("team/app"), busybox_base.ref, dead)
    build = runner.build(config, "app", storage())
    assert build.code == 0, build.log[-3000:]
    [warning] = warnings(build.log)
    assert dead in warning and "building without it" in warning
    cache = build.cache
    assert (cache["ref"], cache["read"], cache["written"]) == (dead, False, False)
    assert cache["error"].startswith("cannot read the cache: ")
    assert "--> Pushing cache" not in build.log and PULLED not in build.log
    assert set(build.layers()) == set(BOTH)


def test_cache_that_refuses_writes_builds_again_without_it(
    busybox_base: BaseImage, registry: RegistryServer, runner: Runner,
    storage: Callable[[], Path], fault_proxy_factory: Callable[..., FaultProxy],
) -> None:
    # reads reach the registry, every upload is answered 500: buildah 1.28 fails the build
    # on its first cache push (exit 125), acr-ci builds again without the cache
    proxy = fault_proxy_factory(registry, fault_rate=1.0, faults=("500",), match=r"^(POST|PUT|PATCH) ")
    cache_ref = f"{proxy.host}/cache/refused"
    config = write_config(runner.repo, registry.ref("team/app"), busybox_base.ref, cache_ref)
    build = runner.build(config, "app", storage())
    assert build.code == 0, build.log[-3000:]
    assert "failed pushing cache to" in build.log, "buildah's own error is in the log"
    [warning] = warnings(build.log)
    assert "cannot write the cache" in warning and "building again without it" in warning
    cache = build.cache
    assert (cache["ref"], cache["read"], cache["written"]) == (cache_ref, False, False)
    assert cache["error"].startswith("cannot write the cache: failed pushing cache to ")
    assert "500 Internal Server Error" in cache["error"] and "[app]" not in cache["error"]
    assert set(build.layers()) == set(BOTH)
    assert registry_tags_or_none(registry, "cache/refused") is None, "nothing was written"


def registry_tags_or_none(server: RegistryServer, repo: str) -> list[str] | None:
    import urllib.error

    try:
        return registry_tags(server, repo)
    except urllib.error.HTTPError as e:
        assert e.code == 404
        return None


def test_cache_behind_basic_auth_gets_the_credentials(
    busybox_base: BaseImage, registry_factory: Callable[..., RegistryServer], runner: Runner,
    storage: Callable[[], Path], docker_config: Callable[..., Path], registry: RegistryServer,
) -> None:
    private = registry_factory(kind="basic")
    docker_config(private)  # the same source as every other registry: the docker config
    cache_ref = private.ref("cache/app")
    config = write_config(runner.repo, registry.ref("team/app"), busybox_base.ref, cache_ref)
    first = runner.build(config, "app", storage())
    assert first.code == 0, first.log[-3000:]
    assert first.cache == {"ref": cache_ref, "read": False, "written": True, "error": None}
    second = runner.build(config, "app", storage())
    assert second.code == 0, second.log[-3000:]
    assert second.cache == {"ref": cache_ref, "read": True, "written": True, "error": None}
    assert second.layers() == first.layers()
    assert private.password not in first.log + second.log


def test_base_without_history_builds_without_the_cache(
    busybox_base: BaseImage, registry: RegistryServer, runner: Runner,
    storage: Callable[[], Path], tmp_path: Path,
) -> None:
    # buildah 1.28 cannot build on such a base with --layers, which the cache needs: the
    # rule is built again without --layers, and so without the cache, and the record says so
    from tests.e2e.test_build_no_history import without_history

    bare = registry.ref("base/bare:1")
    without_history(busybox_base.layout.path, tmp_path / "bare")
    push_layout_with_skopeo(tmp_path / "bare", bare)
    cache_ref = registry.ref("cache/bare")
    config = write_config(runner.repo, registry.ref("team/app"), bare, cache_ref)
    build = runner.build(config, "app", storage())
    assert build.code == 0, build.log[-3000:]
    assert "base image has no history: building again without the layer cache" in build.log
    assert build.cache == {
        "ref": cache_ref, "read": False, "written": False,
        "error": "base image has no history: built without the cache",
    }
    assert set(build.layers()) == set(BOTH)


def test_cache_refusing_the_credentials_only_warns(
    busybox_base: BaseImage, registry_factory: Callable[..., RegistryServer], runner: Runner,
    storage: Callable[[], Path], registry: RegistryServer,
) -> None:
    # buildah 1.28 says nothing when a cache refuses it (the steps just run): acr-ci asks first
    private = registry_factory(kind="basic")  # and no credentials for it anywhere
    cache_ref = private.ref("cache/app")
    config = write_config(runner.repo, registry.ref("team/app"), busybox_base.ref, cache_ref)
    build = runner.build(config, "app", storage())
    assert build.code == 0, build.log[-3000:]
    [warning] = warnings(build.log)
    assert cache_ref in warning and "building without it" in warning
    cache = build.cache
    assert (cache["read"], cache["written"]) == (False, False)
    assert cache["error"].startswith("cannot read the cache: ") and "401" in cache["error"]
