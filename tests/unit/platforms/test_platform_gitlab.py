"""GitLab CI: job env dumps for branch, tag and merge-request pipelines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from refdetect_support import gitlab_env

from acr_ci.errors import RefError, UsageError
from acr_ci.models import RefType
from acr_ci.platforms import detect_ref

BRANCH_SHA = "5d41402abc4b2a76b9719d911017c592ae2f8c3e"
TAG_SHA = "c4ca4238a0b923820dcc509a6f75849b1e2d3f40"
MR_SOURCE_SHA = "a87ff679a2f3e71d9181a67b7542122c04d5e6f7"
MR_MERGE_SHA = "e4da3b7fbbce2345d7772b0674a318d5f00a1b2c"


@dataclass(frozen=True)
class Case:
    id: str
    fixture: str
    expect_type: RefType
    expect_name: str
    expect_sha: str
    expect_time: datetime
    expect_event: str
    expect_source: str = "gitlab"
    flags: dict[str, str] = field(default_factory=dict)
    env_edit: dict[str, str | None] = field(default_factory=dict)


CASES = [
    Case(
        "branch-pipeline",
        "branch_pipeline",
        RefType.BRANCH,
        "main",
        BRANCH_SHA,
        datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC),
        "push",
    ),
    Case(
        "tag-pipeline",
        "tag_pipeline",
        RefType.TAG,
        "v1.2.3",
        TAG_SHA,
        datetime(2024, 5, 2, 7, 0, 0, tzinfo=UTC),
        "push",
    ),
    Case(
        "merged-results-pipeline-source-head-not-merge-commit",
        "merge_request_pipeline",
        RefType.BRANCH,
        "feature/login",
        MR_SOURCE_SHA,
        datetime(2024, 5, 2, 8, 15, 33, tzinfo=UTC),
        "merge_request_event",
    ),
    Case(
        "detached-mr-pipeline-empty-source-sha-uses-commit-sha",
        "merge_request_detached_pipeline",
        RefType.BRANCH,
        "feature/login",
        MR_SOURCE_SHA,
        datetime(2024, 5, 2, 8, 15, 32, tzinfo=UTC),
        "merge_request_event",
    ),
    Case(
        "ref-name-only",
        "branch_pipeline",
        RefType.BRANCH,
        "main",
        BRANCH_SHA,
        datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC),
        "push",
        env_edit={"CI_COMMIT_BRANCH": None},
    ),
    Case(
        "flag-ref-keeps-env-sha-and-time",
        "merge_request_pipeline",
        RefType.TAG,
        "v2.0.0",
        MR_SOURCE_SHA,
        datetime(2024, 5, 2, 8, 15, 33, tzinfo=UTC),
        "merge_request_event",
        expect_source="flags",
        flags={"ref": "refs/tags/v2.0.0"},
    ),
    Case(
        "flag-sha-and-time",
        "tag_pipeline",
        RefType.TAG,
        "v1.2.3",
        "deadbeef",
        datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC),
        "push",
        flags={"sha": "DEADBEEF", "time": "2024-01-01T08:00:00+08:00"},
    ),
    Case(
        "flag-time-hides-bad-env-time",
        "branch_pipeline",
        RefType.BRANCH,
        "main",
        BRANCH_SHA,
        datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC),
        "push",
        flags={"time": "2024-01-01T00:00:00"},
        env_edit={"CI_PIPELINE_CREATED_AT": "not a time"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gitlab(case: Case, tmp_path: Path) -> None:
    env = gitlab_env(case.fixture)
    for key, value in case.env_edit.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    got = detect_ref(
        ref=case.flags.get("ref"),
        sha=case.flags.get("sha"),
        time=case.flags.get("time"),
        env=env,
        cwd=str(tmp_path),  # not a checkout: nothing may come from git
    )
    assert (got.type, got.name, got.sha) == (case.expect_type, case.expect_name, case.expect_sha)
    assert got.time == case.expect_time
    assert got.event == case.expect_event
    assert got.repository == "platform/team/hello-app"
    assert got.source == case.expect_source


BAD = [
    ("bad-CI_COMMIT_SHA", {"CI_COMMIT_SHA": "g" * 40}, UsageError, ("CI_COMMIT_SHA",)),
    (
        "bad-source-branch-sha",
        {"CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "x", "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": "12"},
        UsageError,
        ("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA",),
    ),
    (
        "bad-CI_PIPELINE_CREATED_AT",
        {"CI_PIPELINE_CREATED_AT": "01/05/2024"},
        UsageError,
        ("CI_PIPELINE_CREATED_AT", "ISO 8601", "epoch seconds"),
    ),
    (
        "merge-request-ref-name",
        {"CI_COMMIT_BRANCH": None, "CI_COMMIT_REF_NAME": "refs/merge-requests/42/head"},
        RefError,
        ("CI_COMMIT_REF_NAME",),
    ),
    ("control-char-tag", {"CI_COMMIT_TAG": "v1\x07"}, RefError, ("CI_COMMIT_TAG",)),
    ("overlong-branch", {"CI_COMMIT_BRANCH": "b" * 1025}, RefError, ("CI_COMMIT_BRANCH", "1024")),
]


@pytest.mark.parametrize(("edit", "error", "names"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_gitlab_bad_values_name_their_variable(
    edit: dict[str, str | None], error: type[Exception], names: tuple[str, ...], tmp_path: Path
) -> None:
    env = gitlab_env("branch_pipeline")
    for key, value in edit.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    with pytest.raises(error) as info:
        detect_ref(ref=None, sha=None, time=None, env=env, cwd=str(tmp_path))
    for name in names:
        assert name in info.value.message  # type: ignore[attr-defined]
    assert "\n" not in info.value.message  # type: ignore[attr-defined]
