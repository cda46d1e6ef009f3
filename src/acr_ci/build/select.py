"""Choosing the builder: ``buildx``, ``buildah``, or ``auto``.

``auto`` picks buildx when a working Docker with buildx is present (``docker buildx
version`` succeeds *and* ``docker info`` reaches an engine), else buildah (``buildah
--version`` succeeds); it logs which and why. With neither, a :class:`BuildError` says how
to install one.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import assert_never

from acr_ci.build.base import Builder, LogSink, child_env, stderr_sink
from acr_ci.build.buildah import BuildahBuilder
from acr_ci.build.buildx import BuildxBuilder
from acr_ci.config.model import Builder as BuilderChoice
from acr_ci.errors import BuildError

PROBE_TIMEOUT = 30.0
INSTALL_HINT = (
    "install buildah (Debian/Ubuntu: apt-get install buildah qemu-user-static) or Docker "
    "with the buildx plugin and a running engine"
)


def _works(argv: list[str], env: Mapping[str, str]) -> bool:
    if shutil.which(argv[0], path=env.get("PATH")) is None:
        return False
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=dict(env),
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def buildx_works(env: Mapping[str, str]) -> bool:
    return _works(["docker", "buildx", "version"], env) and _works(["docker", "info"], env)


def buildah_works(env: Mapping[str, str]) -> bool:
    return _works(["buildah", "--version"], env)


def select_builder(
    choice: BuilderChoice,
    *,
    log: LogSink = stderr_sink,
    env: Mapping[str, str] | None = None,
    buildah_storage: Path | None = None,
) -> Builder:
    """The builder for ``choice`` (see the module doc). Explicit choices are not probed:
    a missing tool fails at build time with its own install hint."""
    probe_env = child_env() if env is None else dict(env)
    if choice is BuilderChoice.BUILDX:
        return BuildxBuilder()
    if choice is BuilderChoice.BUILDAH:
        return BuildahBuilder(storage_root=buildah_storage)
    if choice is BuilderChoice.AUTO:
        if buildx_works(probe_env):
            log("builder: auto → buildx (docker buildx and a Docker engine are available)")
            return BuildxBuilder()
        if buildah_works(probe_env):
            log("builder: auto → buildah (no working docker buildx with an engine)")
            return BuildahBuilder(storage_root=buildah_storage)
        raise BuildError(
            "builder: auto found no builder: neither docker buildx with a reachable engine "
            "nor buildah works here",
            INSTALL_HINT,
        )
    assert_never(choice)
