"""Platform choice, the flags' own checks, and hostile names from CI variables."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from refdetect_support import GitRepo, github_env, gitlab_env

from acr_ci.errors import RefError, UsageError
from acr_ci.models import RefType
from acr_ci.platforms import detect_platform, detect_ref

REF_FLAGS = [
    ("bare-branch", "main", RefType.BRANCH, "main"),
    ("bare-with-slash", "feature/x", RefType.BRANCH, "feature/x"),
    ("heads", "refs/heads/release/1.x", RefType.BRANCH, "release/1.x"),
    ("tags", "refs/tags/v1.2.3", RefType.TAG, "v1.2.3"),
    ("unicode", "refs/heads/功能", RefType.BRANCH, "功能"),
    ("max-length", "b" * 1024, RefType.BRANCH, "b" * 1024),
]


@pytest.mark.parametrize(
    ("value", "rtype", "name"), [r[1:] for r in REF_FLAGS], ids=[r[0] for r in REF_FLAGS]
)
def test_ref_flag(value: str, rtype: RefType, name: str, tmp_path: Path) -> None:
    got = detect_ref(ref=value, sha="abcd", time="0", env={}, cwd=str(tmp_path))
    assert (got.type, got.name, got.source) == (rtype, name, "flags")


BAD_REFS = [
    ("pull", "refs/pull/1/merge", "refs/pull/1/merge"),
    ("merge-request", "refs/merge-requests/3/head", "refs/heads/NAME"),
    ("remotes", "refs/remotes/origin/main", "bare branch name"),
    ("empty-after-prefix", "refs/heads/", "empty"),
    ("control", "main\x00", "control"),
    ("escape", "main\x1b[31m", "control"),
    ("too-long", "b" * 1025, "1024"),
]


@pytest.mark.parametrize(
    ("value", "fragment"), [r[1:] for r in BAD_REFS], ids=[r[0] for r in BAD_REFS]
)
def test_bad_ref_flag(value: str, fragment: str, tmp_path: Path) -> None:
    with pytest.raises(RefError) as info:
        detect_ref(ref=value, sha=None, time=None, env={}, cwd=str(tmp_path))
    assert info.value.message.startswith("--ref")
    assert fragment in info.value.diagnostics()
    assert "\n" not in info.value.message
    assert "\x1b" not in info.value.message


SHAS = [
    ("short-4", "abcd", "abcd"),
    ("upper", "ABCDEF0123", "abcdef0123"),
    (
        "sha1",
        "3F1E9C2B7D4A5E6F8091A2B3C4D5E6F708192A3B",
        "3f1e9c2b7d4a5e6f8091a2b3c4d5e6f708192a3b",
    ),
    ("sha256", "a" * 64, "a" * 64),
]


@pytest.mark.parametrize(("value", "expected"), [s[1:] for s in SHAS], ids=[s[0] for s in SHAS])
def test_sha_flag(value: str, expected: str, tmp_path: Path) -> None:
    got = detect_ref(ref="main", sha=value, time="0", env={}, cwd=str(tmp_path))
    assert got.sha == expected


BAD_SHAS = [("too-short", "abc"), ("too-long", "a" * 65), ("not-hex", "xyz1"), ("dash", "-abcd")]


@pytest.mark.parametrize("value", [s[1] for s in BAD_SHAS], ids=[s[0] for s in BAD_SHAS])
def test_bad_sha_flag(value: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        detect_ref(ref="main", sha=value, time=None, env={}, cwd=str(tmp_path))
    assert info.value.message.startswith("--sha")
    assert "4 to 64" in info.value.message


def test_bad_time_flag(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        detect_ref(ref="main", sha=None, time="next tuesday", env={}, cwd=str(tmp_path))
    assert info.value.message.startswith("--time")
    assert "ISO 8601" in info.value.message and "epoch seconds" in info.value.message


PLATFORMS = [
    ("nothing", {}, None),
    ("plain-CI-means-nothing", {"CI": "true"}, None),
    ("github", {"GITHUB_ACTIONS": "true"}, "github"),
    ("gitlab", {"GITLAB_CI": "true"}, "gitlab"),
    ("github-first", {"GITHUB_ACTIONS": "true", "GITLAB_CI": "true"}, "github"),
    ("not-true", {"GITHUB_ACTIONS": "false", "GITLAB_CI": "0"}, None),
    ("override-tekton", {"GITLAB_CI": "true", "ACR_CI_PLATFORM": "tekton"}, "tekton"),
    ("override-local", {"GITHUB_ACTIONS": "true", "ACR_CI_PLATFORM": "Local"}, "local"),
    ("override-empty", {"GITLAB_CI": "true", "ACR_CI_PLATFORM": ""}, "gitlab"),
]


@pytest.mark.parametrize(
    ("env", "expected"), [p[1:] for p in PLATFORMS], ids=[p[0] for p in PLATFORMS]
)
def test_detect_platform(env: dict[str, str], expected: str | None) -> None:
    assert detect_platform(env) == expected


def test_tekton_flags_are_labelled_tekton_and_ci_env_ignored(
    make_repo: Callable[[str], GitRepo],
) -> None:
    repo = make_repo("workspace")
    sha = repo.commit("one", "2024-02-03T04:05:06Z")
    env = dict(gitlab_env("tag_pipeline"), ACR_CI_PLATFORM="tekton")
    got = detect_ref(ref="refs/heads/main", sha=None, time=None, env=env, cwd=str(repo.path))
    # sha and time come from the workspace checkout, not from the GitLab variables
    assert (got.type, got.name, got.sha) == (RefType.BRANCH, "main", sha)
    assert got.time == datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert got.source == "tekton"
    assert got.event is None and got.repository is None


def test_tekton_without_ref_flag_reads_the_checkout(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("workspace")
    repo.commit("one", "2024-02-03T04:05:06Z")
    got = detect_ref(
        ref=None, sha=None, time=None, env={"ACR_CI_PLATFORM": "tekton"}, cwd=str(repo.path)
    )
    assert (got.name, got.source) == ("main", "local")


def test_local_override_ignores_ci_env(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("repo")
    repo.commit("one", "2024-02-03T04:05:06Z")
    env = dict(github_env("event_push_tag"), ACR_CI_PLATFORM="local")
    got = detect_ref(ref=None, sha=None, time=None, env=env, cwd=str(repo.path))
    assert (got.type, got.name, got.source) == (RefType.BRANCH, "main", "local")


HOSTILE = [
    ("dollar-paren", "$(touch pwned)"),
    ("semicolon-rm", ";rm -rf canary"),
    ("backticks", "`touch pwned`"),
    ("and-and", "x && touch pwned"),
]


@pytest.mark.parametrize("name", [h[1] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("where", ["github-env", "github-event", "gitlab-env", "flag"])
def test_hostile_names_from_ci_are_data(
    name: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "canary").write_text("still here")
    monkeypatch.chdir(tmp_path)
    ref: str | None = None
    if where == "github-env":
        env = github_env("event_pull_request")
        env["GITHUB_HEAD_REF"] = name
    elif where == "github-event":
        doc = json.loads(Path(github_env("event_pull_request")["GITHUB_EVENT_PATH"]).read_text())
        doc["pull_request"]["head"]["ref"] = name
        event = tmp_path / "event.json"
        event.write_text(json.dumps(doc))
        env = github_env("event_pull_request", event)
        env["GITHUB_HEAD_REF"] = ""
    elif where == "gitlab-env":
        env = gitlab_env("branch_pipeline")
        env["CI_COMMIT_BRANCH"] = name
    else:
        env, ref = {}, f"refs/heads/{name}"
    got = detect_ref(ref=ref, sha=None, time=None, env=env, cwd=str(tmp_path))
    assert (got.type, got.name) == (RefType.BRANCH, name)
    assert list(tmp_path.rglob("pwned")) == []
    assert (tmp_path / "canary").read_text() == "still here"
