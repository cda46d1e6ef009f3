"""The buildah builder's argv, environment and registries.conf (no build runs here;
tests/e2e/test_build_buildah.py runs real ones)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from acr_ci.build.buildah import BuildahBuilder, registries_conf
from acr_ci.build.service import prepare_job
from acr_ci.models import BuildCache, BuildPlan, CacheMode, RefContext, RefType
from acr_ci.registry.auth import Credentials, StaticCredentials

SHA = "0123456789abcdef0123456789abcdef01234567"
SECRET = "pw-Never-In-Argv-42"
REF = RefContext(type=RefType.TAG, name="v1.2.3", sha=SHA, time=datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "ctx").mkdir(parents=True)
    (root / "ctx" / "Dockerfile").write_text(
        "ARG BASE=127.0.0.1:5000/base/busybox:1\nFROM ${BASE}\nFROM private.example/b:2\n"
    )
    return root


def make_plan(**kw: Any) -> BuildPlan:
    values: dict[str, Any] = {
        "rule": "rel", "image": "private.example/team/app", "tags": ("1.2.3",),
        "platforms": ("linux/amd64", "linux/arm64", "linux/arm/v7"), "context": "ctx",
        "dockerfile": "Dockerfile",
    }
    values.update(kw)
    return BuildPlan(**values)


ANN = [
    "--annotation", f"org.opencontainers.image.revision={SHA}",
    "--annotation", "org.opencontainers.image.created=2026-05-06T07:08:09Z",
    "--annotation", "org.opencontainers.image.version=1.2.3",
    "--annotation", "org.opencontainers.image.ref.name=1.2.3",
]


@pytest.mark.parametrize(
    ("case", "plan_kw", "cache_flags", "arg_flags"),
    [
        ("cached", {}, ["--layers"], []),
        ("no-cache", {"no_cache": True}, ["--no-cache", "--pull-always"], []),
        (
            "registry-cache",
            {"cache": BuildCache(ref="cache.example/team/cache:ignored", mode=CacheMode.MIN)},
            ["--layers", "--cache-from", "cache.example/team/cache", "--cache-to", "cache.example/team/cache"],
            [],
        ),
        (
            # no_cache: nothing is read, the cache is still written (--cache-to needs --layers)
            "registry-cache-no-cache",
            {"no_cache": True, "cache": BuildCache(ref="127.0.0.1:5001/c/rel", mode=CacheMode.MAX)},
            ["--no-cache", "--pull-always", "--layers", "--cache-to", "127.0.0.1:5001/c/rel"],
            [],
        ),
        (
            "build-args",
            {"args": MappingProxyType({"A": "1", "EVIL": "$(id) `id` ; --rm"})},
            ["--layers"],
            ["--build-arg", "A=1", "--build-arg", "EVIL=$(id) `id` ; --rm"],
        ),
    ],
)
def test_build_argv(
    repo: Path, tmp_path: Path, case: str, plan_kw: dict[str, Any], cache_flags: list[str],
    arg_flags: list[str],
) -> None:
    job = prepare_job(
        make_plan(**plan_kw), REF, config_dir=repo, layout=tmp_path / "l",
        secrets_dir=tmp_path / "s", env={}, log=lambda line: None,
    )
    argv = BuildahBuilder().build_argv(job, "localhost/acr-ci-build/rel:abc")
    assert argv == [
        "buildah", "build", "--platform", "linux/amd64,linux/arm64,linux/arm/v7",
        "--manifest", "localhost/acr-ci-build/rel:abc", "--format", "oci",
        *cache_flags, *arg_flags, *ANN,
        "--file", str(repo / "ctx" / "Dockerfile"), str(repo / "ctx"),
    ], case


def test_storage_root_flags(repo: Path, tmp_path: Path) -> None:
    job = prepare_job(
        make_plan(), REF, config_dir=repo, layout=tmp_path / "l", secrets_dir=tmp_path / "s",
        env={}, log=lambda line: None,
    )
    argv = BuildahBuilder(storage_root=tmp_path / "st").build_argv(job, "m")
    assert argv[:6] == ["buildah", "--root", str(tmp_path / "st/root"), "--runroot", str(tmp_path / "st/run"), "build"]


def test_environment_credentials_and_insecure_registries(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORAGE_DRIVER", raising=False)
    monkeypatch.setenv("BUILDAH_ISOLATION", "oci")  # the user's choice wins
    monkeypatch.setenv("ACR_CI_REGISTRY_PASSWORD", SECRET)
    creds = StaticCredentials(Credentials("robot", SECRET), frozenset({"private.example"}))
    job = prepare_job(
        make_plan(), REF, config_dir=repo, layout=tmp_path / "l", secrets_dir=tmp_path / "s",
        credentials=creds, insecure_registries=["10.1.2.3:5000"], env={}, log=lambda line: None,
    )
    assert job.insecure_registries == ("127.0.0.1:5000", "10.1.2.3:5000")
    assert job.auth_file is not None and job.auth_file.stat().st_mode & 0o777 == 0o600
    assert "private.example" in job.auth_file.read_text()
    env = BuildahBuilder().environment(job, tmp_path)
    assert env["STORAGE_DRIVER"] == "vfs"
    assert env["BUILDAH_ISOLATION"] == "oci"
    assert env["REGISTRY_AUTH_FILE"] == str(job.auth_file)
    assert "ACR_CI_REGISTRY_PASSWORD" not in env
    assert all(SECRET not in v for v in env.values())
    assert SECRET not in " ".join(BuildahBuilder().build_argv(job, "m"))
    conf = Path(env["CONTAINERS_REGISTRIES_CONF"]).read_text()
    assert '[[registry]]\nlocation = "127.0.0.1:5000"\ninsecure = true' in conf
    assert '[[registry]]\nlocation = "10.1.2.3:5000"\ninsecure = true' in conf
    assert "private.example" not in conf, "TLS stays verified for every other registry"


def test_no_registries_conf_without_insecure_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONTAINERS_REGISTRIES_CONF", raising=False)
    (tmp_path / "Dockerfile").write_text("FROM private.example/b:2\n")
    job = prepare_job(
        make_plan(context=".", platforms=("linux/amd64",)), REF, config_dir=tmp_path,
        layout=tmp_path / "l", secrets_dir=tmp_path / "s", env={}, log=lambda line: None,
    )
    env = BuildahBuilder().environment(job, tmp_path)
    assert "CONTAINERS_REGISTRIES_CONF" not in env
    assert job.auth_file is None


@pytest.mark.parametrize(
    ("case", "system", "expected_head"),
    [
        (
            "keeps-search-and-mode",
            'unqualified-search-registries = ["docker.io", "quay.io"]\nshort-name-mode = "enforcing"\n'
            '[[registry]]\nlocation = "x.example"\n',
            'unqualified-search-registries = ["docker.io", "quay.io"]\nshort-name-mode = "enforcing"\n',
        ),
        ("missing-system-file", None, ""),
        ("unparsable-system-file", "[[[ not toml", ""),
    ],
)
def test_registries_conf(tmp_path: Path, case: str, system: str | None, expected_head: str) -> None:
    path = tmp_path / "registries.conf"
    if system is not None:
        path.write_text(system)
    text = registries_conf(("127.0.0.1:9", "[::1]:7"), path)
    assert text == (
        expected_head
        + '\n[[registry]]\nlocation = "127.0.0.1:9"\ninsecure = true\n'
        + '\n[[registry]]\nlocation = "[::1]:7"\ninsecure = true\n'
    ), case
    assert tomllib.loads(text)["registry"][0] == {"location": "127.0.0.1:9", "insecure": True}


def test_registry_cache_left_out_without_layers_or_when_unusable(repo: Path, tmp_path: Path) -> None:
    plan = make_plan(cache=BuildCache(ref="cache.example/c"))
    job = prepare_job(plan, REF, config_dir=repo, layout=tmp_path / "l", secrets_dir=tmp_path / "s",
                      env={}, log=lambda line: None)
    b = BuildahBuilder()
    assert "--cache-from" in b.build_argv(job, "m")
    for argv in (
        b.build_argv(job, "m", layers=False),
        b.build_argv(job, "m", cache=False),
        b.build_argv(replace(job, cache_error="cannot read the cache: x"), "m"),
    ):
        assert not {"--cache-from", "--cache-to"} & set(argv)
    assert "--layers" not in b.build_argv(job, "m", layers=False)
    assert "--layers" in b.build_argv(job, "m", cache=False)


def test_cache_registry_gets_credentials_and_plain_http_on_loopback(repo: Path, tmp_path: Path) -> None:
    creds = StaticCredentials(Credentials("u", SECRET), frozenset({"127.0.0.1:5001", "cache.example"}))
    for ref, insecure in (("127.0.0.1:5001/c/rel", True), ("cache.example/c/rel", False)):
        job = prepare_job(
            make_plan(cache=BuildCache(ref=ref)), REF, config_dir=repo, layout=tmp_path / "l",
            secrets_dir=tmp_path / ref.split("/")[0], credentials=creds, env={}, log=lambda line: None,
        )
        host = ref.split("/")[0]
        assert job.auth_file is not None
        assert host in json.loads(job.auth_file.read_text())["auths"]
        assert (host in job.insecure_registries) is insecure
        assert SECRET not in " ".join(BuildahBuilder().build_argv(job, "m"))
