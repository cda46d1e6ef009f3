"""What real multi-arch builds need in tests: qemu in binfmt_misc, buildah, a busybox base image.

The base image itself (Debian's ``busybox-static`` for amd64 and arm64, as an OCI layout)
and qemu's binfmt entry come from :mod:`acr_ci.devkit.baseimage`, which the demo uses too.
Here they are wrapped for pytest: :func:`ensure_qemu_aarch64` and :func:`busybox_binaries`
explain what is missing through :func:`skip_or_fail` (a skip locally, a failure under
``CI``); :func:`push_layout_with_skopeo` puts a layout into a registry (skopeo is the
reference tool here, so the fixture does not depend on the code under test); the
fixtures give each session a private buildah storage and a base image in a registry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support._proc import skip_or_fail, skip_or_fail_on
from tests.support.registry import RegistryServer

from acr_ci import devkit
from acr_ci.devkit import DevkitError
from acr_ci.devkit import baseimage as _baseimage
from acr_ci.devkit.baseimage import BaseLayout, write_busybox_layout

__all__ = [
    "BaseImage",
    "BaseLayout",
    "buildah_env",
    "buildah_storage",
    "busybox_base",
    "busybox_binaries",
    "ensure_qemu_aarch64",
    "push_layout_with_skopeo",
    "qemu_arm64",
    "require_tool",
    "write_busybox_layout",
]


def require_tool(name: str, package: str) -> str:
    """:func:`acr_ci.devkit.require_tool`, or skip/fail."""
    try:
        return devkit.require_tool(name, package)
    except DevkitError as e:
        skip_or_fail_on(e)


def ensure_qemu_aarch64() -> None:
    """:func:`acr_ci.devkit.baseimage.ensure_qemu_aarch64`, or skip/fail."""
    try:
        _baseimage.ensure_qemu_aarch64()
    except DevkitError as e:
        skip_or_fail_on(e)


def busybox_binaries(workdir: Path) -> dict[str, Path]:
    """:func:`acr_ci.devkit.baseimage.busybox_binaries`, or skip/fail."""
    try:
        return _baseimage.busybox_binaries(workdir)
    except DevkitError as e:
        skip_or_fail_on(e)


def push_layout_with_skopeo(layout: Path, dest: str) -> None:
    """``skopeo copy --all oci:LAYOUT docker://DEST`` over plain HTTP (loopback registries)."""
    skopeo = require_tool("skopeo", "skopeo")
    proc = subprocess.run(
        [
            skopeo,
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            f"oci:{layout}",
            f"docker://{dest}",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"skopeo copy to {dest} failed: {proc.stderr.strip()}")


# -- pytest fixtures (registered in tests/conftest.py) ------------------------------------


@dataclass(frozen=True)
class BaseImage:
    """The session's multi-arch busybox base image, in a session-scoped local registry."""

    registry: RegistryServer
    """The registry holding it (plain HTTP on loopback)."""
    ref: str
    """``127.0.0.1:PORT/base/busybox:1``: pass as ``--build-arg BASE=…``."""
    layout: BaseLayout
    """The layout it was pushed from (its index and per-arch manifest digests)."""


@pytest.fixture(scope="session")
def qemu_arm64() -> None:
    """qemu-aarch64 registered in binfmt_misc (see :func:`ensure_qemu_aarch64`)."""
    ensure_qemu_aarch64()


def private_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A ``storage.conf`` for a private containers-storage (vfs) under tmp, removed after."""
    require_tool("buildah", "buildah")
    root = tmp_path_factory.mktemp("buildah-storage")
    conf = root / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root / "graph"}"\nrunroot = "{root / "run"}"\n'
    )
    yield conf
    subprocess.run(
        ["buildah", "rm", "--all"],
        env={**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)},
        capture_output=True,
        check=False,
    )
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def buildah_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A ``storage.conf`` for a session-private containers-storage (vfs) under tmp.

    Tests point ``CONTAINERS_STORAGE_CONF`` at it (the ``buildah_env`` fixture does), so
    test builds never touch the machine's ``/var/lib/containers`` and are removed at the end.
    A test module whose builds must not show in other modules' storage overrides this
    fixture with a module-scoped one over :func:`private_storage`.
    """
    yield from private_storage(tmp_path_factory)


@pytest.fixture
def buildah_env(buildah_storage: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's buildah uses the session's private storage (vfs, chroot isolation)."""
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(buildah_storage))
    monkeypatch.setenv("STORAGE_DRIVER", "vfs")
    monkeypatch.setenv("BUILDAH_ISOLATION", "chroot")
    return buildah_storage


@pytest.fixture(scope="session")
def busybox_base(tmp_path_factory: pytest.TempPathFactory, qemu_arm64: None) -> Iterator[BaseImage]:
    """A linux/amd64 + linux/arm64 busybox image pushed to a session-scoped registry."""
    work = tmp_path_factory.mktemp("busybox-base")
    binaries = busybox_binaries(work)
    probe = subprocess.run(
        [str(binaries["arm64"]), "uname", "-m"], capture_output=True, text=True, check=False
    )
    if probe.stdout.strip() != "aarch64":
        skip_or_fail(f"arm64 busybox does not run through qemu here: {probe.stderr.strip()}")
    layout = write_busybox_layout(work / "layout", binaries)
    server = RegistryServer(work / "registry")
    server.start()
    try:
        ref = server.ref("base/busybox:1")
        push_layout_with_skopeo(layout.path, ref)
        yield BaseImage(registry=server, ref=ref, layout=layout)
    finally:
        server.stop()
