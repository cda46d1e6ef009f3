"""Hardening against a real registry: the CI login reaches every registry a command names
(a copy's source too), and only those."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.registry.test_reg_cli import acr
from tests.support import RegistryServer
from tests.support.layout import Layout

pytestmark = [pytest.mark.registry, pytest.mark.e2e]


def test_copy_logs_in_to_its_source_registry(
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    tmp_path: Path,
) -> None:
    server = registry_factory(kind="basic")
    assert server.credentials is not None
    user, password = server.credentials
    layout = oci_layout_factory(seed=21)
    env = {
        "ACR_CI_REGISTRY_USERNAME": user,
        "ACR_CI_REGISTRY_PASSWORD": password,
        "DOCKER_CONFIG": str(tmp_path / "empty"),
    }
    pushed = acr("push", "-q", layout.ref, f"{server.host}/hard/src:v1", env=env)
    assert pushed.returncode == 0, pushed.stderr
    out = tmp_path / "saved"
    r = acr("copy", "-q", f"{server.host}/hard/src:v1", f"oci-layout:{out}", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == layout.index_digest
    index = json.loads((out / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [layout.index_digest]
    # without the login the source refuses: the credentials above were what worked
    anonymous = acr(
        "copy",
        "-q",
        f"{server.host}/hard/src:v1",
        f"oci-layout:{tmp_path / 'x'}",
        env={"DOCKER_CONFIG": str(tmp_path / "empty")},
    )
    assert anonymous.returncode == 1 and "401" in anonymous.stderr
    for proc in (pushed, r, anonymous):
        assert password not in proc.stdout + proc.stderr
