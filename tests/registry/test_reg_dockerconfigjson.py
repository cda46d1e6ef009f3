"""A docker config directory mounted from a Kubernetes Secret of type
``kubernetes.io/dockerconfigjson`` holds ``.dockerconfigjson``, not ``config.json``: acr-ci
reads both (``config.json`` first), against a real basic-auth registry."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support import RegistryServer
from tests.support.layout import Layout

pytestmark = [pytest.mark.registry, pytest.mark.e2e]


def acr(*args: str, docker_config: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ACR_CI_", "REGISTRY_AUTH_FILE", "DOCKER_CONFIG"))
    }
    env["DOCKER_CONFIG"] = str(docker_config)
    return subprocess.run(
        [sys.executable, "-m", "acr_ci", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def secret_mount(directory: Path, host: str, user: str, password: str) -> Path:
    """What kubectl create secret docker-registry writes, as its volume mounts it."""
    directory.mkdir(parents=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    doc = {"auths": {host: {"username": user, "password": password, "auth": auth}}}
    (directory / ".dockerconfigjson").write_text(json.dumps(doc))
    return directory


def test_dockerconfigjson_alone_authenticates_push_and_inspect(
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    tmp_path: Path,
) -> None:
    server = registry_factory(kind="basic")
    assert server.credentials is not None
    user, password = server.credentials
    layout = oci_layout_factory(seed=11)
    target = f"{server.host}/k8s/secret:v1"

    empty = tmp_path / "empty"
    empty.mkdir()
    anonymous = acr("push", f"oci-layout:{layout.path}", target, docker_config=empty)
    assert anonymous.returncode == 1, anonymous.stderr  # the registry does want credentials

    mounted = secret_mount(tmp_path / "dockerconfig", server.host, user, password)
    assert not (mounted / "config.json").exists()
    pushed = acr("push", f"oci-layout:{layout.path}", target, docker_config=mounted)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == layout.index_digest
    inspected = acr("inspect", target, docker_config=mounted)
    assert inspected.returncode == 0, inspected.stderr
    assert layout.index_digest in inspected.stdout
    for proc in (anonymous, pushed, inspected):
        assert password not in proc.stdout + proc.stderr


def test_config_json_wins_over_dockerconfigjson(
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    tmp_path: Path,
) -> None:
    server = registry_factory(kind="basic")
    assert server.credentials is not None
    user, password = server.credentials
    layout = oci_layout_factory(seed=12)
    target = f"{server.host}/k8s/both:v1"
    both = secret_mount(tmp_path / "both", server.host, user, password)
    wrong = base64.b64encode(f"{user}:not-{password}".encode()).decode()
    (both / "config.json").write_text(json.dumps({"auths": {server.host: {"auth": wrong}}}))
    refused = acr("push", f"oci-layout:{layout.path}", target, docker_config=both)
    assert refused.returncode == 1, refused.stderr
    assert "401" in refused.stderr or "unauthorized" in refused.stderr.lower()

    # a config.json without an entry for the host leaves it to .dockerconfigjson
    (both / "config.json").write_text(json.dumps({"auths": {"elsewhere.example": {"auth": wrong}}}))
    pushed = acr("push", f"oci-layout:{layout.path}", target, docker_config=both)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.strip() == layout.index_digest
