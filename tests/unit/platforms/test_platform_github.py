"""GitHub Actions: runner env dumps + event files in the runner's shape.

Every case runs in a directory that is not a git checkout, so whatever the
result holds came from the flags, the env or the event file (except where a
case says it falls back to a real repository).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from refdetect_support import GITHUB, GitRepo, github_env

from acr_ci.errors import RefError, UsageError
from acr_ci.models import RefType
from acr_ci.platforms import detect_ref

BRANCH_SHA = "3f1e9c2b7d4a5e6f8091a2b3c4d5e6f708192a3b"
TAG_SHA = "b7e4d1c8a9f0e2d3c4b5a6978877665544332211"
PR_HEAD_SHA = "9a8b7c6d5e4f30211d0c9b8a7f6e5d4c3b2a1f0e"
PR_MERGE_SHA = "e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5e"
PLUS2 = timezone(timedelta(hours=2))


@dataclass(frozen=True)
class Case:
    id: str
    fixture: str
    expect_type: RefType
    expect_name: str
    expect_sha: str
    expect_time: datetime
    expect_event: str
    expect_source: str = "github"
    flags: dict[str, str] = field(default_factory=dict)
    env_edit: dict[str, str | None] = field(default_factory=dict)
    drop: tuple[tuple[str, ...], ...] = ()
    """Fields removed from a copy of the event file."""


CASES = [
    Case(
        "push-branch",
        "event_push_branch",
        RefType.BRANCH,
        "main",
        BRANCH_SHA,
        datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC),  # repository.pushed_at, epoch int
        "push",
    ),
    Case(
        "push-tag",
        "event_push_tag",
        RefType.TAG,
        "v1.2.3",
        TAG_SHA,
        datetime(2024, 5, 2, 7, 0, 0, tzinfo=UTC),
        "push",
    ),
    Case(
        "push-no-pushed_at-uses-head_commit",
        "event_push_branch",
        RefType.BRANCH,
        "main",
        BRANCH_SHA,
        datetime(2024, 5, 1, 14, 34, 50, tzinfo=PLUS2),
        "push",
        drop=(("repository", "pushed_at"),),
    ),
    Case(
        "pull-request-head-not-merge",
        "event_pull_request",
        RefType.BRANCH,
        "feature/login",
        PR_HEAD_SHA,
        datetime(2024, 5, 2, 8, 15, 31, tzinfo=UTC),  # pull_request.updated_at
        "pull_request",
    ),
    Case(
        "pull-request-no-head-ref-env-uses-event",
        "event_pull_request",
        RefType.BRANCH,
        "feature/login",
        PR_HEAD_SHA,
        datetime(2024, 5, 2, 8, 15, 31, tzinfo=UTC),
        "pull_request",
        env_edit={"GITHUB_HEAD_REF": None},
    ),
    Case(
        "pull-request-no-updated_at-uses-pushed_at-iso",
        "event_pull_request",
        RefType.BRANCH,
        "feature/login",
        PR_HEAD_SHA,
        datetime(2024, 5, 2, 8, 15, 29, tzinfo=UTC),  # repository.pushed_at, ISO string
        "pull_request",
        drop=(("pull_request", "updated_at"),),
    ),
    Case(
        "pull-request-target-head-not-base",
        "event_pull_request_target",
        RefType.BRANCH,
        "feature/login",
        PR_HEAD_SHA,
        datetime(2024, 5, 1, 16, 20, 0, tzinfo=UTC),
        "pull_request_target",
    ),
    Case(
        "workflow-dispatch-pushed_at-iso",
        "event_workflow_dispatch",
        RefType.BRANCH,
        "main",
        BRANCH_SHA,
        datetime(2024, 5, 3, 9, 0, 0, tzinfo=UTC),
        "workflow_dispatch",
    ),
    Case(
        "ref-type-and-name-when-no-GITHUB_REF",
        "event_push_tag",
        RefType.TAG,
        "v1.2.3",
        TAG_SHA,
        datetime(2024, 5, 2, 7, 0, 0, tzinfo=UTC),
        "push",
        env_edit={"GITHUB_REF": None},
    ),
    # flags win field by field; the rest still comes from the env and event file
    Case(
        "flag-ref-bare-keeps-env-sha-and-time",
        "event_push_branch",
        RefType.BRANCH,
        "release-2",
        BRANCH_SHA,
        datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC),
        "push",
        expect_source="flags",
        flags={"ref": "release-2"},
    ),
    Case(
        "flag-tag-and-sha-keep-env-time",
        "event_push_branch",
        RefType.TAG,
        "v9.0.0",
        "abcdef12",
        datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC),
        "push",
        expect_source="flags",
        flags={"ref": "refs/tags/v9.0.0", "sha": "ABCDEF12"},
    ),
    Case(
        "flag-time-only",
        "event_pull_request",
        RefType.BRANCH,
        "feature/login",
        PR_HEAD_SHA,
        datetime(2020, 1, 1, tzinfo=UTC),
        "pull_request",
        flags={"time": "1577836800"},
    ),
    Case(
        "flag-sha-hides-bad-env-sha",
        "event_push_branch",
        RefType.BRANCH,
        "main",
        "0123456789abcdef0123456789abcdef01234567",
        datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC),
        "push",
        flags={"sha": "0123456789abcdef0123456789abcdef01234567"},
        env_edit={"GITHUB_SHA": "not-a-sha"},
    ),
    Case(
        "empty-flags-count-as-not-given",
        "event_push_tag",
        RefType.TAG,
        "v1.2.3",
        TAG_SHA,
        datetime(2024, 5, 2, 7, 0, 0, tzinfo=UTC),
        "push",
        flags={"ref": "", "sha": " ", "time": ""},
    ),
]


def _env_for(
    case_fixture: str, tmp_path: Path, drop: tuple[tuple[str, ...], ...]
) -> dict[str, str]:
    if not drop:
        return github_env(case_fixture)
    doc = json.loads((GITHUB / f"{case_fixture}.json").read_text())
    for keys in drop:
        node = doc
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
    edited = tmp_path / "event.json"
    edited.write_text(json.dumps(doc))
    return github_env(case_fixture, edited)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_github(case: Case, tmp_path: Path) -> None:
    env = _env_for(case.fixture, tmp_path, case.drop)
    for key, value in case.env_edit.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    workdir = tmp_path / "not-a-checkout"
    workdir.mkdir()
    got = detect_ref(
        ref=case.flags.get("ref"),
        sha=case.flags.get("sha"),
        time=case.flags.get("time"),
        env=env,
        cwd=str(workdir),
    )
    assert (got.type, got.name, got.sha) == (case.expect_type, case.expect_name, case.expect_sha)
    assert got.time == case.expect_time
    assert got.time.utcoffset() == case.expect_time.utcoffset()
    assert got.event == case.expect_event
    assert got.repository == "acme/hello-app"
    assert got.source == case.expect_source


def test_schedule_event_takes_time_from_checkout(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("repo")
    repo.commit("one", "2024-03-04T05:06:07+01:00")
    got = detect_ref(
        ref=None, sha=None, time=None, env=github_env("event_schedule"), cwd=str(repo.path)
    )
    assert (got.type, got.name, got.sha) == (RefType.BRANCH, "main", BRANCH_SHA)
    assert got.time == datetime(2024, 3, 4, 4, 6, 7, tzinfo=UTC)
    assert got.source == "github"


@dataclass(frozen=True)
class Bad:
    id: str
    fixture: str
    error: type[Exception]
    names: tuple[str, ...]
    env_edit: dict[str, str | None] = field(default_factory=dict)
    event_text: str | None = None
    """Replaces the event file's content."""


BAD = [
    Bad("bad-GITHUB_SHA", "event_push_branch", UsageError, ("GITHUB_SHA",), {"GITHUB_SHA": "xyz"}),
    Bad(
        "short-GITHUB_SHA",
        "event_push_branch",
        UsageError,
        ("GITHUB_SHA", "4 to 64"),
        {"GITHUB_SHA": "abc"},
    ),
    Bad(
        "pull-ref-in-push-event",
        "event_push_branch",
        RefError,
        ("GITHUB_REF", "refs/pull/42/merge"),
        {"GITHUB_REF": "refs/pull/42/merge"},
    ),
    Bad(
        "remote-ref",
        "event_push_branch",
        RefError,
        ("GITHUB_REF",),
        {"GITHUB_REF": "refs/remotes/origin/main"},
    ),
    Bad(
        "control-char-head-ref",
        "event_pull_request",
        RefError,
        ("GITHUB_HEAD_REF", "control"),
        {"GITHUB_HEAD_REF": "feature\nx"},
    ),
    Bad(
        "overlong-ref",
        "event_push_branch",
        RefError,
        ("GITHUB_REF", "1024"),
        {"GITHUB_REF": "refs/heads/" + "a" * 1025},
    ),
    Bad(
        "bad-ref-type",
        "event_push_branch",
        RefError,
        ("GITHUB_REF_TYPE",),
        {"GITHUB_REF": None, "GITHUB_REF_TYPE": "pull"},
    ),
    Bad(
        "missing-event-file",
        "event_pull_request",
        RefError,
        ("GITHUB_EVENT_PATH",),
        {"GITHUB_EVENT_PATH": "/nonexistent/event.json"},
    ),
    Bad("event-not-json", "event_pull_request", RefError, ("GITHUB_EVENT_PATH", "JSON"), {}, "{"),
    Bad("event-not-object", "event_pull_request", RefError, ("GITHUB_EVENT_PATH",), {}, "[1]"),
    Bad(
        "event-nested-too-deep",
        "event_pull_request",
        RefError,
        ("GITHUB_EVENT_PATH", "nested 200000 levels deep"),
        {},
        "[" * 200_000 + "]" * 200_000,
    ),
    Bad("event-not-utf8", "event_pull_request", RefError, ("GITHUB_EVENT_PATH", "JSON"), {}, "\udcff"),
    Bad(
        "pull-request-without-head-sha",
        "event_pull_request",
        RefError,
        ("pull_request.head.sha", "GITHUB_EVENT_PATH", "--sha"),
        {},
        json.dumps({"pull_request": {"head": {"ref": "feature/login"}}}),
    ),
    Bad(
        "pull-request-without-head-ref",
        "event_pull_request",
        RefError,
        ("GITHUB_HEAD_REF", "pull_request.head.ref", "--ref"),
        {"GITHUB_HEAD_REF": ""},
        json.dumps({"pull_request": {"head": {"sha": PR_HEAD_SHA}}}),
    ),
    Bad(
        "garbage-pushed_at",
        "event_push_branch",
        UsageError,
        ("repository.pushed_at", "GITHUB_EVENT_PATH", "ISO 8601"),
        {},
        json.dumps({"repository": {"pushed_at": "yesterday"}}),
    ),
    Bad(
        "boolean-pushed_at",
        "event_push_branch",
        RefError,
        ("repository.pushed_at",),
        {},
        json.dumps({"repository": {"pushed_at": True}}),
    ),
    Bad(
        "unknown-platform-override",
        "event_push_branch",
        UsageError,
        ("ACR_CI_PLATFORM", "github, gitlab, tekton, local"),
        {"ACR_CI_PLATFORM": "jenkins"},
    ),
]


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_github_bad_values_name_their_origin(bad: Bad, tmp_path: Path) -> None:
    env = github_env(bad.fixture)
    if bad.event_text is not None:
        event = tmp_path / "event.json"
        event.write_bytes(bad.event_text.encode("utf-8", "surrogateescape"))  # \udcff: byte ff
        env["GITHUB_EVENT_PATH"] = str(event)
    for key, value in bad.env_edit.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    with pytest.raises(bad.error) as info:
        detect_ref(ref=None, sha=None, time=None, env=env, cwd=str(tmp_path))
    message = info.value.message  # type: ignore[attr-defined]
    for name in bad.names:
        assert name in info.value.diagnostics()  # type: ignore[attr-defined]
    assert "\n" not in message
    assert info.value.exit_code == 2  # type: ignore[attr-defined]
