"""acr_ci.devkit on its own: what the demo sees (errors with hints, no pytest skips)."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest
import requests
from tests.support._proc import registry_binary

from acr_ci.devkit import DevkitError, require_tool
from acr_ci.devkit import registry as devkit_registry
from acr_ci.devkit.receiver import MAX_BODY, WebhookReceiver
from acr_ci.errors import AcrError


def test_missing_registry_binary_is_a_devkit_error_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ACR_CI_TEST_REGISTRY_BIN", str(tmp_path / "no-such-registry"))
    with pytest.raises(DevkitError, match="no-such-registry") as caught:
        devkit_registry.RegistryServer(tmp_path / "r")
    assert isinstance(caught.value, AcrError)
    assert caught.value.hint is not None and "apt-get install docker-registry" in caught.value.hint


def test_missing_tool_names_its_package() -> None:
    with pytest.raises(DevkitError, match="no-such-tool") as caught:
        require_tool("no-such-tool-acr-ci", "some-package")
    assert caught.value.hint == "apt-get install some-package"


def test_devkit_registry_is_plain_and_anonymous(tmp_path: Path) -> None:
    registry_binary()  # skip/fail like the fixtures when missing
    with devkit_registry.RegistryServer(tmp_path / "r") as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.ref("a/b:1") == f"127.0.0.1:{server.port}/a/b:1"
        assert requests.get(f"{server.url}/v2/", timeout=5).status_code == 200
    assert not server.running


def test_receiver_refuses_a_body_over_the_bound() -> None:
    with WebhookReceiver() as receiver:
        ok = requests.post(receiver.url("/h"), data=b"{}", timeout=5)
        assert ok.status_code == 200
        conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
        try:
            conn.putrequest("POST", "/h")
            conn.putheader("Content-Length", str(MAX_BODY + 1))
            conn.endheaders()
            assert conn.getresponse().status == 413
        finally:
            conn.close()
        assert [r.body for r in receiver.to("/h")] == [b"{}"], "the refused one is not recorded"
