"""Build paths stay inside the config's directory; FROM lines name the base registries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from acr_ci.build.context import base_images, resolve_paths
from acr_ci.errors import AcrError, UsageError
from acr_ci.hosts import is_loopback, registry_host
from acr_ci.models import BuildPlan


def plan(context: str = ".", dockerfile: str = "Dockerfile") -> BuildPlan:
    return BuildPlan(
        rule="web", image="r.example/a/b", tags=("t",), platforms=("linux/amd64",),
        context=context, dockerfile=dockerfile,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    (root / "app" / "Other.Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "Dockerfile").write_text("FROM scratch\n")
    return root


def test_resolves_relative_to_config_dir(repo: Path) -> None:
    context, dockerfile = resolve_paths(plan("app", "Other.Dockerfile"), repo)
    assert context == (repo / "app").resolve()
    assert dockerfile == (repo / "app" / "Other.Dockerfile").resolve()


@pytest.mark.parametrize(
    ("case", "context", "dockerfile", "message"),
    [
        ("dotdot-context", "../outside", "Dockerfile", "leads outside the config file's directory"),
        ("dotdot-dockerfile", "app", "../../outside/Dockerfile", "leads outside"),
        ("absolute-context", "/etc", "Dockerfile", "is an absolute path"),
        ("absolute-dockerfile", "app", "/etc/passwd", "is an absolute path"),
        ("missing-context", "nope", "Dockerfile", "is not a directory"),
        ("missing-dockerfile", "app", "Nope", "no Dockerfile 'Nope'"),
        ("context-is-file", "app/Dockerfile", "Dockerfile", "is not a directory"),
    ],
)
def test_refuses(repo: Path, case: str, context: str, dockerfile: str, message: str) -> None:
    with pytest.raises(UsageError) as e:
        resolve_paths(plan(context, dockerfile), repo)
    assert message in e.value.message, case
    assert "web" in e.value.message and e.value.hint


def test_refuses_symlinks_out(repo: Path) -> None:
    os.symlink(repo.parent / "outside", repo / "link")
    os.symlink(repo.parent / "outside" / "Dockerfile", repo / "app" / "Linked")
    with pytest.raises(AcrError, match="leads outside"):
        resolve_paths(plan("link"), repo)
    with pytest.raises(AcrError, match="leads outside"):
        resolve_paths(plan("app", "Linked"), repo)


def test_symlink_inside_is_fine(repo: Path) -> None:
    os.symlink(repo / "app", repo / "alias")
    context, _ = resolve_paths(plan("alias"), repo)
    assert context == (repo / "app").resolve()


DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG REG=127.0.0.1:5000
ARG BASE=${REG}/base/busybox:1
FROM --platform=$BUILDPLATFORM ${BASE} AS build
RUN true
FROM \\
  build AS again
FROM registry.example.com:8443/team/runtime:2 as final
FROM scratch
FROM busybox:stable
COPY --from=build / /
"""


@pytest.mark.parametrize(
    ("case", "args", "expected"),
    [
        (
            "defaults",
            {},
            ["127.0.0.1:5000/base/busybox:1", "registry.example.com:8443/team/runtime:2", "busybox:stable"],
        ),
        (
            "arg-overrides-default",
            {"BASE": "localhost:9/b:1"},
            ["localhost:9/b:1", "registry.example.com:8443/team/runtime:2", "busybox:stable"],
        ),
        (
            "arg-feeds-later-default",
            {"REG": "[::1]:7000"},
            ["[::1]:7000/base/busybox:1", "registry.example.com:8443/team/runtime:2", "busybox:stable"],
        ),
    ],
)
def test_base_images(tmp_path: Path, case: str, args: dict[str, str], expected: list[str]) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(DOCKERFILE)
    assert base_images(path, args) == expected, case


@pytest.mark.parametrize(
    ("image", "host", "loopback"),
    [
        ("127.0.0.1:5000/base/busybox:1", "127.0.0.1:5000", True),
        ("localhost/x", "localhost", True),
        ("[::1]:7000/a", "[::1]:7000", True),
        ("127.1.2.3/a", "127.1.2.3", True),
        ("registry.example.com:8443/team/runtime:2", "registry.example.com:8443", False),
        ("10.0.0.1:5000/a", "10.0.0.1:5000", False),
        ("busybox:stable", None, False),
        ("library/busybox", None, False),
    ],
)
def test_registry_host_and_loopback(image: str, host: str | None, loopback: bool) -> None:
    assert registry_host(image) == host
    assert (host is not None and is_loopback(host)) == loopback


# -- --rule -------------------------------------------------------------------------------

from acr_ci.build.service import select_plans  # noqa: E402


@pytest.mark.parametrize(
    ("case", "rule", "expected", "error"),
    [
        ("all", None, ["a", "b"], None),
        ("one", "b", ["b"], None),
        ("unknown", "zzz", None, "--rule 'zzz': the config has no such rule"),
        ("not-matching", "c", None, "--rule 'c' does not match this ref"),
    ],
)
def test_select_plans(case: str, rule: str | None, expected: list[str] | None, error: str | None) -> None:
    plans = [plan(), plan()]
    plans = [BuildPlan(**{**p.__dict__, "rule": name}) for p, name in zip(plans, "ab", strict=True)]
    if error is None:
        assert [p.rule for p in select_plans(plans, rule, ["a", "b", "c"])] == expected, case
    else:
        with pytest.raises(UsageError, match=error.replace("(", r"\(")):
            select_plans(plans, rule, ["a", "b", "c"])
