"""A registry on the IPv6 loopback, addressed as ``[::1]:PORT/repo``."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from tests.support._proc import registry_binary
from tests.support.layout import Layout

from acr_ci.registry import Client, Reference

pytestmark = pytest.mark.registry


@pytest.fixture
def ipv6_registry(tmp_path: Path) -> Iterator[str]:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
            port = s.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback here")
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'storage'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '[::1]:{port}'}}\n"
        "log: {level: error}\n"
    )
    log = (tmp_path / "registry.log").open("wb")
    proc = subprocess.Popen([registry_binary(), "serve", str(config)], stdout=log, stderr=log)
    host = f"[::1]:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"http://{host}/v2/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"IPv6 registry did not start: {(tmp_path / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_push_and_copy_over_ipv6(ipv6_registry: str, oci_layout_factory: Callable[..., Layout]) -> None:
    layout = oci_layout_factory(seed=7)
    with Client() as c:
        c.push_layout(layout.path, Reference.parse(f"{ipv6_registry}/v6/app"), ["v1"])
        result = c.copy(Reference.parse(f"{ipv6_registry}/v6/app:v1"), Reference.parse(f"{ipv6_registry}/v6/b:v2"))
    assert result.digest == layout.index_digest and result.blobs_mounted > 0
    served = requests.get(
        f"http://{ipv6_registry}/v2/v6/b/manifests/v2",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"}, timeout=30,
    )
    assert "sha256:" + hashlib.sha256(served.content).hexdigest() == layout.index_digest
