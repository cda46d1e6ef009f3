"""Credentials (docker config, helpers, env) and WWW-Authenticate parsing."""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import stat
from pathlib import Path

import pytest

from acr_ci.cli.common import registry_access
from acr_ci.errors import UnauthorizedError, UsageError
from acr_ci.registry.auth import (
    Credentials,
    DockerConfigCredentials,
    StaticCredentials,
    normalize_host,
    parse_challenges,
)

CHALLENGES = [
    ("bearer-full",
     'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
     'scope="repository:team/app:pull,push"',
     [("bearer", {"realm": "https://auth.example.com/token", "service": "registry.example.com",
                  "scope": "repository:team/app:pull,push"})]),
    ("basic", 'Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"})]),
    ("case-and-spaces", 'bearer  Realm = "r" , Service="s"', [("bearer", {"realm": "r", "service": "s"})]),
    ("unquoted", "Bearer realm=https://a/b,service=svc", [("bearer", {"realm": "https://a/b", "service": "svc"})]),
    ("escaped-quote", r'Bearer realm="a\"b"', [("bearer", {"realm": 'a"b'})]),
    ("error-param", 'Bearer realm="r",error="insufficient_scope"',
     [("bearer", {"realm": "r", "error": "insufficient_scope"})]),
    ("two-challenges", 'Basic realm="x", Bearer realm="y",service="z"',
     [("basic", {"realm": "x"}), ("bearer", {"realm": "y", "service": "z"})]),
    ("scheme-only", "Negotiate", [("negotiate", {})]),
    ("empty", "", []),
]


@pytest.mark.parametrize(("header", "expected"), [c[1:] for c in CHALLENGES], ids=[c[0] for c in CHALLENGES])
def test_parse_challenges(header: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    got = [(c.scheme, dict(c.params)) for c in parse_challenges(header)]
    assert got == expected


HOSTS = [
    ("plain", "r.io", "r.io"),
    ("https-url", "https://r.io/v1/", "r.io"),
    ("port", "http://127.0.0.1:5000", "127.0.0.1:5000"),
    ("hub-legacy", "https://index.docker.io/v1/", "docker.io"),
    ("hub-api", "registry-1.docker.io", "docker.io"),
    ("upper", "R.IO", "r.io"),
]


@pytest.mark.parametrize(("key", "host"), [c[1:] for c in HOSTS], ids=[c[0] for c in HOSTS])
def test_normalize_host(key: str, host: str) -> None:
    assert normalize_host(key) == host


def _b64(user: str, pw: str) -> str:
    return base64.b64encode(f"{user}:{pw}".encode()).decode()


def _helper(bin_dir: Path, name: str, answers: dict[str, tuple[str, str]], log: Path) -> None:
    """A real ``docker-credential-NAME`` script: reads the server from stdin, logs argv."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    table = json.dumps({k: {"Username": u, "Secret": s} for k, (u, s) in answers.items()})
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "server = sys.stdin.read().strip()\n"
        f"table = json.loads({table!r})\n"
        "if server not in table:\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n"
        "print(json.dumps({'ServerURL': server, **table[server]}))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


CONFIG_CASES = [
    # id, config doc, helper answers, host, expected (user, secret) or None
    ("auths-auth", {"auths": {"r.io": {"auth": _b64("u", "p:w")}}}, {}, "r.io", ("u", "p:w")),
    ("auths-url-key", {"auths": {"https://r.io/v2/": {"auth": _b64("u", "p")}}}, {}, "r.io", ("u", "p")),
    ("auths-user-pass", {"auths": {"r.io": {"username": "u", "password": "p"}}}, {}, "r.io", ("u", "p")),
    ("identity-token", {"auths": {"r.io": {"identitytoken": "tok"}}}, {}, "r.io", ("<token>", "tok")),
    ("hub-legacy", {"auths": {"https://index.docker.io/v1/": {"auth": _b64("h", "p")}}}, {}, "docker.io",
     ("h", "p")),
    ("other-host", {"auths": {"r.io": {"auth": _b64("u", "p")}}}, {}, "s.io", None),
    ("cred-helper", {"credHelpers": {"r.io": "fake"}, "auths": {"r.io": {"auth": _b64("no", "no")}}},
     {"r.io": ("hu", "hs")}, "r.io", ("hu", "hs")),
    ("creds-store", {"credsStore": "fake"}, {"r.io": ("su", "ss")}, "r.io", ("su", "ss")),
    ("creds-store-miss-falls-back", {"credsStore": "fake", "auths": {"r.io": {"auth": _b64("a", "b")}}},
     {}, "r.io", ("a", "b")),
    ("helper-not-found", {"credHelpers": {"r.io": "fake"}}, {}, "r.io", None),
]


@pytest.mark.parametrize(("doc", "answers", "host", "expected"), [c[1:] for c in CONFIG_CASES],
                         ids=[c[0] for c in CONFIG_CASES])
def test_docker_config(tmp_path: Path, doc: dict[str, object], answers: dict[str, tuple[str, str]],
                       host: str, expected: tuple[str, str] | None) -> None:
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps(doc))
    log = tmp_path / "helper.log"
    _helper(tmp_path / "bin", "fake", answers, log)
    env = {"DOCKER_CONFIG": str(config_dir), "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    creds = DockerConfigCredentials(env=env).get(host)
    assert (None if creds is None else (creds.username, creds.secret)) == expected
    if log.exists():  # the helper got only "get" in argv: the server came on stdin
        assert set(log.read_text().split()) == {"get"}


def test_registry_auth_file_wins(tmp_path: Path) -> None:
    (tmp_path / "auth.json").write_text(json.dumps({"auths": {"r.io": {"auth": _b64("podman", "p1")}}}))
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"r.io": {"auth": _b64("docker", "p2")}}}))
    env = {"REGISTRY_AUTH_FILE": str(tmp_path / "auth.json"), "DOCKER_CONFIG": str(tmp_path)}
    creds = DockerConfigCredentials(env=env).get("r.io")
    assert creds is not None and creds.username == "podman"
    env2 = {"REGISTRY_AUTH_FILE": str(tmp_path / "missing.json"), "DOCKER_CONFIG": str(tmp_path)}
    creds2 = DockerConfigCredentials(env=env2).get("r.io")
    assert creds2 is not None and creds2.username == "docker"


def test_home_default(tmp_path: Path) -> None:
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text(json.dumps({"auths": {"r.io": {"auth": _b64("h", "p")}}}))
    creds = DockerConfigCredentials(env={"HOME": str(tmp_path)}).get("r.io")
    assert creds is not None and creds.username == "h"


BAD_CONFIGS = [
    ("not-json", "{nope", "is not valid JSON"),
    ("not-object", "[1]", "is not a JSON object"),
    ("bad-auth", json.dumps({"auths": {"r.io": {"auth": "!!!"}}}), "not base64 of user:password"),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(UsageError) as info:
        DockerConfigCredentials(env={"DOCKER_CONFIG": str(tmp_path)}).get("r.io")
    assert message in info.value.message


def test_missing_helper_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {"r.io": "absent"}}))
    env = {"DOCKER_CONFIG": str(tmp_path), "PATH": str(tmp_path / "nothing")}
    with pytest.raises(UnauthorizedError) as info:
        DockerConfigCredentials(env=env).get("r.io")
    assert "docker-credential-absent" in info.value.message


def test_credentials_never_in_repr() -> None:
    creds = Credentials("user", "s3cret-value")
    static = StaticCredentials(creds, frozenset({"r.io"}))
    for text in (repr(creds), str(creds), repr(static), str(static)):
        assert "s3cret-value" not in text
    assert static.get("r.io") is creds
    assert static.get("other.io") is None


ENV_CASES = [
    ("none", {}, False, None, None),
    ("both", {"ACR_CI_REGISTRY_USERNAME": "u", "ACR_CI_REGISTRY_PASSWORD": "p"}, False, ("u", "p"), None),
    ("user-only", {"ACR_CI_REGISTRY_USERNAME": "u"}, False, None, "ACR_CI_REGISTRY_PASSWORD"),
    ("pass-only", {"ACR_CI_REGISTRY_PASSWORD": "p"}, False, None, "ACR_CI_REGISTRY_USERNAME"),
    ("stdin", {"ACR_CI_REGISTRY_USERNAME": "u"}, True, ("u", "from-stdin"), None),
    ("stdin-no-user", {}, True, None, "ACR_CI_REGISTRY_USERNAME"),
]


@pytest.mark.parametrize(("env", "stdin", "expected", "error"), [c[1:] for c in ENV_CASES],
                         ids=[c[0] for c in ENV_CASES])
def test_env_credentials(env: dict[str, str], stdin: bool,
                         expected: tuple[str, str] | None, error: str | None) -> None:
    args = argparse.Namespace(password_stdin=stdin)
    if error:
        with pytest.raises(UsageError) as info:
            registry_access(args, env=env, stdin=io.StringIO("from-stdin\n"))
        assert error in info.value.message
        return
    login = registry_access(args, env=env, stdin=io.StringIO("from-stdin\n")).login
    if expected is None:
        assert login is None
        return
    assert login is not None and "from-stdin" not in repr(login)
    source = login.for_hosts(["r.io"])
    creds = source.get("r.io")
    assert creds is not None and (creds.username, creds.secret) == expected
    assert source.get("elsewhere.io") is None  # never sent to another registry


def test_a_job_token_goes_only_to_the_registry_it_was_issued_for() -> None:
    from acr_ci.registry.access import Login

    token = Login("gitlab-ci-token", "job-token").issued_for("registry.gitlab.example")
    source = token.for_hosts(["registry.gitlab.example", "other.example:5000"])
    creds = source.get("registry.gitlab.example")
    assert creds is not None and creds.secret == "job-token"
    assert source.get("other.example:5000") is None
    assert token.for_hosts(["other.example:5000"]).get("other.example:5000") is None
    assert "job-token" not in repr(token)
    plain = Login("u", "p").for_hosts(["other.example:5000"])
    assert plain.get("other.example:5000") is not None
