"""Small helpers shared by the test servers: CI detection, skip-or-fail.

``free_port`` and ``registry_binary`` come from :mod:`acr_ci.devkit.registry`; here a
missing registry binary is a skip locally and a failure under CI.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from acr_ci.devkit import DevkitError
from acr_ci.devkit import registry as _devkit_registry
from acr_ci.devkit.registry import REGISTRY_BINARY, free_port

__all__ = ["REGISTRY_BINARY", "free_port", "in_ci", "registry_binary", "skip_or_fail"]


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to anything but empty/0/false."""
    value = os.environ.get("CI", "").strip().lower()
    return value not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test locally, but fail it under CI: a missing tool must not pass CI silently."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def skip_or_fail_on(error: DevkitError) -> NoReturn:
    """:func:`skip_or_fail` with what the devkit found missing and how to fix it."""
    skip_or_fail(f"{error.message}: {error.hint}" if error.hint else error.message)


def registry_binary() -> str:
    """The path of the registry binary, or skip/fail (see :func:`skip_or_fail`) when missing."""
    try:
        return _devkit_registry.registry_binary()
    except DevkitError as e:
        skip_or_fail_on(e)
