"""`acr-ci sync` as a user runs it: a subprocess, a config file, real registries."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.e2e.sync_support import dead_host, digest_at, tags_at
from tests.support import RegistryServer
from tests.support.layout import Layout

from acr_ci.registry import Client, Reference

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]


def acr(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB", "ACR_CI_"))}
    base.pop("CI", None)
    return subprocess.run(
        [sys.executable, "-m", "acr_ci", *args],
        capture_output=True, text=True, env={**base, **(env or {})}, cwd=cwd or ROOT, timeout=180,
    )


def push(registry: RegistryServer, layout: Layout, repo: str, *tags: str) -> str:
    with Client() as c:
        return c.push_layout(layout.path, Reference.parse(registry.ref(repo)), list(tags)).digest


def test_sync_cli_two_mirrors_one_down(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    docker_config: Callable[..., Path],
    oci_layout_factory: Callable[..., Layout],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain = registry_factory("plain")
    basic = registry_factory("basic")
    config_dir = docker_config(basic)
    digest = push(registry, oci_layout_factory(seed=51, layer_sizes=(1024 * 1024,)), "team/cli", "v2", "latest")
    down = dead_host()
    cfg = tmp_path / ".acr-ci.yml"
    cfg.write_text(
        f"""version: 1
image: {registry.host}/team/cli
sync:
  - name: releases
    to: {plain.host}/mirror
    tags: "v[0-9]+"
  - name: with-auth
    to: {basic.host}/vault/cli-copy
    level: repository
  - name: down
    to: {down}/team
"""
    )
    start = time.monotonic()
    p = acr("sync", registry.ref("team/cli:v2"), "--config", str(cfg), env={"DOCKER_CONFIG": str(config_dir)})
    elapsed = time.monotonic() - start
    with capsys.disabled():
        print(f"\n[figure] acr-ci sync (CLI, default retries) to two mirrors + one down: {elapsed:.2f}s")
    assert p.returncode == 1, p.stderr
    assert digest_at(plain, "mirror/cli", "v2") == digest
    assert digest_at(basic, "vault/cli-copy", "v2") == digest
    assert digest_at(basic, "vault/cli-copy", "latest") is None  # only the named tag is synced
    lines = p.stdout.splitlines()
    assert lines[0].startswith(f"sync releases -> {plain.host}/mirror/cli: succeeded")
    assert lines[1].startswith(f"sync with-auth -> {basic.host}/vault/cli-copy: succeeded")
    assert lines[2].startswith(f"sync down -> {down}/team/cli: failed")
    assert basic.password not in p.stdout + p.stderr


def test_sync_cli_by_digest_and_backfill(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    tmp_path: Path,
) -> None:
    mirror = registry_factory("plain")
    d1 = push(registry, oci_layout_factory(seed=61), "team/bfcli", "v1", "stable")
    d2 = push(registry, oci_layout_factory(seed=62), "team/bfcli", "v2")
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"version: 1\nimage: {registry.host}/team/bfcli\nsync:\n  - name: m\n    to: {mirror.host}/m\n")
    p = acr("sync", registry.ref(f"team/bfcli@{d1}"), "--config", str(cfg))
    assert p.returncode == 0, p.stdout + p.stderr
    assert [t for t in tags_at(mirror, "m/bfcli")] == ["stable", "v1"]
    p = acr("sync", "--backfill", registry.ref("team/bfcli"), "--config", str(cfg))
    assert p.returncode == 0, p.stdout + p.stderr
    assert digest_at(mirror, "m/bfcli", "v2") == d2
    assert digest_at(mirror, "m/bfcli", "v1") == d1


BAD = [
    ("no-tag", ["sync", "{reg}/team/x"], 2, "names no tag or digest"),
    ("backfill-with-tag", ["sync", "--backfill", "{reg}/team/x:v1"], 2, "takes a repository"),
    ("missing-tag", ["sync", "{reg}/team/none:v9"], 1, "does not exist"),
]


@pytest.mark.parametrize(("case", "argv", "code", "message"), BAD, ids=[b[0] for b in BAD])
def test_sync_cli_bad_input(
    registry: RegistryServer, tmp_path: Path, case: str, argv: list[str], code: int, message: str
) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"version: 1\nimage: {registry.host}/team/x\nsync:\n  - name: m\n    to: {registry.host}/m\n")
    p = acr(*(a.format(reg=registry.host) for a in argv), "--config", str(cfg))
    assert p.returncode == code, p.stderr
    assert message in p.stderr
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) <= 2


def test_sync_cli_without_sync_rules(registry: RegistryServer, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"version: 1\nimage: {registry.host}/team/x\n")
    p = acr("sync", registry.ref("team/x:v1"), "--config", str(cfg))
    assert p.returncode == 2
    assert "has no sync: rules" in p.stderr
