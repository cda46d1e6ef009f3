"""The OCI distribution client: references, auth, blobs, manifests, layouts, copy.

Later stages use :class:`Client`; everything else here is its parts.

The names below are loaded lazily (PEP 562): ``acr_ci.registry.reference`` is
imported by the config loader and ``tags.py`` on every ``acr-ci plan``, and
must not drag in ``requests`` and the HTTP stack with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acr_ci.registry.auth import (
        ChainedCredentials,
        Credentials,
        CredentialSource,
        DockerConfigCredentials,
        StaticCredentials,
    )
    from acr_ci.registry.client import Client, insecure_from_env
    from acr_ci.registry.copy import CopyResult
    from acr_ci.registry.media import Descriptor, Manifest, Platform
    from acr_ci.registry.reference import LayoutReference, Location, Reference, parse_location
    from acr_ci.registry.transport import RetryPolicy

_LAZY = {
    "ChainedCredentials": "auth",
    "Credentials": "auth",
    "CredentialSource": "auth",
    "DockerConfigCredentials": "auth",
    "StaticCredentials": "auth",
    "Client": "client",
    "insecure_from_env": "client",
    "CopyResult": "copy",
    "Descriptor": "media",
    "Manifest": "media",
    "Platform": "media",
    "LayoutReference": "reference",
    "Location": "reference",
    "Reference": "reference",
    "parse_location": "reference",
    "RetryPolicy": "transport",
}

__all__ = [  # noqa: RUF022 - kept in the order of _LAZY
    "ChainedCredentials",
    "Credentials",
    "CredentialSource",
    "DockerConfigCredentials",
    "StaticCredentials",
    "Client",
    "insecure_from_env",
    "CopyResult",
    "Descriptor",
    "Manifest",
    "Platform",
    "LayoutReference",
    "Location",
    "Reference",
    "parse_location",
    "RetryPolicy",
]
assert sorted(__all__) == sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
