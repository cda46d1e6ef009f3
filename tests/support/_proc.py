"""Small helpers shared by the test servers: free ports, CI detection, skip-or-fail."""

from __future__ import annotations

import os
import shutil
import socket
from typing import NoReturn

import pytest

REGISTRY_BINARY = "/usr/bin/docker-registry"
"""Debian's ``docker-registry`` (distribution 2.8); override with ``ACR_CI_TEST_REGISTRY_BIN``."""


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to anything but empty/0/false."""
    value = os.environ.get("CI", "").strip().lower()
    return value not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test locally, but fail it under CI: a missing tool must not pass CI silently."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def registry_binary() -> str:
    """The path of the registry binary, or skip/fail (see :func:`skip_or_fail`) when missing."""
    path = os.environ.get("ACR_CI_TEST_REGISTRY_BIN", REGISTRY_BINARY)
    found = shutil.which(path)
    if found is None:
        skip_or_fail(
            f"registry binary {path!r} not found: install Debian's docker-registry package "
            "(apt-get install docker-registry) or set ACR_CI_TEST_REGISTRY_BIN"
        )
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on bind conflicts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
