"""The test registries themselves: they start, authenticate as configured, stop cleanly."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from tests.support import RegistryServer, write_docker_config
from tests.support._proc import free_port, registry_binary

pytestmark = pytest.mark.registry

EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_JSON = b"{}"


def _push_blob(
    url: str, repo: str, data: bytes, digest: str, headers: dict[str, str] | None = None
) -> requests.Response:
    """A monolithic blob upload (POST, then PUT with the digest)."""
    start = requests.post(f"{url}/v2/{repo}/blobs/uploads/", headers=headers, timeout=10)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    sep = "&" if "?" in location else "?"
    return requests.put(
        f"{location}{sep}digest={digest}",
        data=data,
        headers={**(headers or {}), "Content-Type": "application/octet-stream"},
        timeout=10,
    )


def test_plain_registry_answers_anonymously_and_stores_blobs(registry: RegistryServer) -> None:
    assert registry.host.startswith("127.0.0.1:")
    assert requests.get(f"{registry.url}/v2/", timeout=5).status_code == 200
    put = _push_blob(registry.url, "support/plain", EMPTY_JSON, EMPTY_DIGEST)
    assert put.status_code == 201, registry.log_tail()
    got = requests.get(f"{registry.url}/v2/support/plain/blobs/{EMPTY_DIGEST}", timeout=5)
    assert got.content == EMPTY_JSON
    assert any(registry.storage.rglob("data")), "blob not in the storage dir"


def test_basic_registry_needs_the_password(basic_registry: RegistryServer) -> None:
    url = f"{basic_registry.url}/v2/"
    anon = requests.get(url, timeout=5)
    assert anon.status_code == 401
    assert anon.headers["WWW-Authenticate"].startswith("Basic ")
    assert basic_registry.credentials is not None
    user, password = basic_registry.credentials
    assert requests.get(url, auth=(user, password + "x"), timeout=5).status_code == 401
    assert requests.get(url, auth=(user, password), timeout=5).status_code == 200


def test_token_registry_issues_and_accepts_tokens(token_registry: RegistryServer) -> None:
    ts = token_registry.token_server
    assert ts is not None and token_registry.credentials is not None
    ts.reset_counts()
    challenge = requests.get(f"{token_registry.url}/v2/", timeout=5)
    assert challenge.status_code == 401
    assert (
        f'Bearer realm="{ts.realm}",service="{ts.service}"' in challenge.headers["WWW-Authenticate"]
    )

    scope = "repository:support/tok:pull,push"
    anon = requests.get(ts.realm, params={"service": ts.service, "scope": scope}, timeout=5)
    assert anon.status_code == 401 and "token" not in anon.text
    wrong = requests.get(
        ts.realm, params={"scope": scope}, auth=(token_registry.username, "nope"), timeout=5
    )
    assert wrong.status_code == 401

    answer = requests.get(
        ts.realm,
        params={"service": ts.service, "scope": scope},
        auth=token_registry.credentials,
        timeout=5,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == ts.expires_in
    claims = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[1] + "=="))
    assert claims["access"] == [
        {"type": "repository", "name": "support/tok", "actions": ["pull", "push"]}
    ]
    assert (ts.requests, ts.issued) == (3, 1)

    bearer = {"Authorization": f"Bearer {body['token']}"}
    put = _push_blob(token_registry.url, "support/tok", EMPTY_JSON, EMPTY_DIGEST, headers=bearer)
    assert put.status_code == 201, token_registry.log_tail()
    # The token grants nothing for another repository.
    other = requests.get(
        f"{token_registry.url}/v2/support/other/tags/list", headers=bearer, timeout=5
    )
    assert other.status_code == 401


def test_oauth2_post_grant(token_registry: RegistryServer) -> None:
    ts = token_registry.token_server
    assert ts is not None
    user, password = token_registry.username, token_registry.password
    form = {
        "grant_type": "password",
        "username": user,
        "password": password,
        "service": ts.service,
        "scope": "repository:support/post:pull",
        "client_id": "acr-ci-tests",
    }
    ok = requests.post(ts.realm, data=form, timeout=5)
    assert ok.status_code == 200 and ok.json()["access_token"]
    bad = requests.post(ts.realm, data={**form, "password": "wrong"}, timeout=5)
    assert bad.status_code == 401


def test_factory_delete_switch_and_stop(registry_factory: Callable[..., RegistryServer]) -> None:
    no_delete = registry_factory(delete=False)
    put = _push_blob(no_delete.url, "support/del", EMPTY_JSON, EMPTY_DIGEST)
    assert put.status_code == 201
    refused = requests.delete(f"{no_delete.url}/v2/support/del/blobs/{EMPTY_DIGEST}", timeout=5)
    assert refused.status_code == 405

    with_delete = registry_factory(delete=True)
    assert with_delete.port != no_delete.port
    _push_blob(with_delete.url, "support/del", EMPTY_JSON, EMPTY_DIGEST)
    deleted = requests.delete(f"{with_delete.url}/v2/support/del/blobs/{EMPTY_DIGEST}", timeout=5)
    assert deleted.status_code == 202

    port = with_delete.port
    with_delete.stop()
    assert not with_delete.running
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    assert "listening on" in with_delete.log_tail(200)  # the log outlives the process


def test_bind_conflict_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry_binary()  # skip/fail like the fixtures when missing
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    ports = iter([taken.getsockname()[1]])
    monkeypatch.setattr(
        "acr_ci.devkit.registry.free_port", lambda: next(ports, None) or free_port()
    )
    try:
        with RegistryServer(tmp_path / "r") as server:
            assert server.port != taken.getsockname()[1]
            assert requests.get(f"{server.url}/v2/", timeout=5).status_code == 200
        assert "address already in use" in server.log_path.read_text()
    finally:
        taken.close()


@pytest.mark.parametrize(
    ("ci", "outcome"),
    [("", pytest.skip.Exception), ("true", pytest.fail.Exception), ("1", pytest.fail.Exception)],
    ids=["local-skips", "ci-true-fails", "ci-1-fails"],
)
def test_missing_binary_skips_locally_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("ACR_CI_TEST_REGISTRY_BIN", str(tmp_path / "no-such-registry"))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no-such-registry"):
        RegistryServer(tmp_path / "r")


def test_docker_config_writes_base64_auth(tmp_path: Path) -> None:
    directory = write_docker_config(tmp_path / "cfg", {"127.0.0.1:5000": ("u", "p:w")})
    write_docker_config(directory, {"127.0.0.1:6000": ("v", "q")})
    data = json.loads((directory / "config.json").read_text())
    assert base64.b64decode(data["auths"]["127.0.0.1:5000"]["auth"]) == b"u:p:w"
    assert base64.b64decode(data["auths"]["127.0.0.1:6000"]["auth"]) == b"v:q"
    assert (directory / "config.json").stat().st_mode & 0o077 == 0


def test_docker_config_fixture_sets_env(
    basic_registry: RegistryServer, docker_config: Callable[..., Path]
) -> None:
    import os

    directory = docker_config(basic_registry)
    assert os.environ["DOCKER_CONFIG"] == str(directory)
    auths = json.loads((directory / "config.json").read_text())["auths"]
    assert list(auths) == [basic_registry.host]
