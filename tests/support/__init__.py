"""Test infrastructure: real registries, a token server, a fault-injecting proxy, OCI layouts.

The parts the demo needs too (the plain loopback registry, the webhook receiver, the busybox
base image) live in :mod:`acr_ci.devkit`; the modules here re-use and extend them.

Import from here (``from tests.support import RegistryServer, FaultProxy, make_layout``);
the pytest fixtures that wrap these live in ``tests/conftest.py``.
"""

from tests.support._proc import in_ci, skip_or_fail
from tests.support.dockerconfig import write_docker_config
from tests.support.registry import KINDS, Kind, RegistryServer, RegistryStartError
from tests.support.tokenserver import SigningKey, TokenRequest, TokenServer

__all__ = [
    "KINDS",
    "Kind",
    "RegistryServer",
    "RegistryStartError",
    "SigningKey",
    "TokenRequest",
    "TokenServer",
    "in_ci",
    "skip_or_fail",
    "write_docker_config",
]
