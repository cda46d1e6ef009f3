"""Table tests for the pure annotation computation (plan + ref → annotations)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from acr_ci.annotations import image_annotations, source_url
from acr_ci.models import BuildPlan, RefContext, RefType

SHA = "0123456789abcdef0123456789abcdef01234567"
T = datetime(2026, 11, 23, 21, 5, 9, 123456, tzinfo=timezone(timedelta(hours=8)))
P = "org.opencontainers.image."


def ref(**kw: object) -> RefContext:
    values: dict[str, object] = {
        "type": RefType.BRANCH, "name": "release-v1", "sha": SHA, "time": T, "source": "flags"
    }
    values.update(kw)
    return RefContext(**values)  # type: ignore[arg-type]


def plan(*tags: str) -> BuildPlan:
    return BuildPlan(
        rule="r", image="reg.example/team/app", tags=tags, platforms=("linux/amd64",),
        context=".", dockerfile="Dockerfile",
    )


@pytest.mark.parametrize(
    ("case", "p", "r", "source", "expected"),
    [
        (
            "all-known",
            plan("v1", "v1-012345"),
            ref(),
            "https://github.com/o/app",
            {
                P + "source": "https://github.com/o/app",
                P + "revision": SHA,
                P + "created": "2026-11-23T13:05:09Z",
                P + "version": "v1",
                P + "ref.name": "v1",
            },
        ),
        (
            "no-source-no-sha",
            plan("latest"),
            ref(sha=""),
            None,
            {P + "created": "2026-11-23T13:05:09Z", P + "version": "latest", P + "ref.name": "latest"},
        ),
        (
            "uppercase-sha-lowered",
            plan("x"),
            ref(sha=SHA.upper()),
            None,
            {
                P + "revision": SHA,
                P + "created": "2026-11-23T13:05:09Z",
                P + "version": "x",
                P + "ref.name": "x",
            },
        ),
        (
            "utc-time-kept",
            plan("x"),
            ref(time=datetime(2020, 10, 15, 16, 13, tzinfo=UTC)),
            None,
            {
                P + "revision": SHA,
                P + "created": "2020-10-15T16:13:00Z",
                P + "version": "x",
                P + "ref.name": "x",
            },
        ),
    ],
)
def test_image_annotations(
    case: str, p: BuildPlan, r: RefContext, source: str | None, expected: dict[str, str]
) -> None:
    got = image_annotations(p, r, source=source)
    assert got == expected, case
    assert list(got) == [k for k in (
        P + "source", P + "revision", P + "created", P + "version", P + "ref.name"
    ) if k in expected], "fixed key order keeps builder argv stable"


@pytest.mark.parametrize(
    ("case", "repository", "source", "env", "expected"),
    [
        ("github-default-server", "o/app", "github", {}, "https://github.com/o/app"),
        (
            "github-enterprise",
            "o/app",
            "github",
            {"GITHUB_SERVER_URL": "https://ghe.example/"},
            "https://ghe.example/o/app",
        ),
        (
            "gitlab-project-url",
            "g/sub/app",
            "gitlab",
            {"CI_PROJECT_URL": "https://gitlab.example/g/sub/app", "CI_SERVER_URL": "https://x"},
            "https://gitlab.example/g/sub/app",
        ),
        ("gitlab-server-url", "g/app", "gitlab", {"CI_SERVER_URL": "https://gl.example"}, "https://gl.example/g/app"),
        ("gitlab-nothing", "g/app", "gitlab", {}, None),
        ("url-given", "https://git.example/team/app.git", "local", {}, "https://git.example/team/app.git"),
        ("url-with-token", "https://oauth2:s3cret@gitlab.example/g/app", "local", {}, "https://gitlab.example/g/app"),
        ("scp-style", "git@github.com:o/app.git", "local", {}, "https://github.com/o/app.git"),
        ("ssh-url-not-http", "ssh://git@host/o/app", "local", {}, None),
        ("bare-name-unknown-server", "o/app", "local", {}, None),
        (
            "ref-from-flags-on-a-github-runner",
            "o/app",
            "flags",
            {"GITHUB_ACTIONS": "true"},
            "https://github.com/o/app",
        ),
        (
            "ref-from-flags-on-a-gitlab-runner",
            "g/app",
            "flags",
            {"GITLAB_CI": "true", "CI_PROJECT_URL": "https://gl.example/g/app"},
            "https://gl.example/g/app",
        ),
        ("none", None, "github", {}, None),
    ],
)
def test_source_url(
    case: str, repository: str | None, source: str, env: dict[str, str], expected: str | None
) -> None:
    assert source_url(ref(repository=repository, source=source), env) == expected, case
