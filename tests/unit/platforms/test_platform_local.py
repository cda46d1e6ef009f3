"""The local git checkout, in real temporary repositories."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from refdetect_support import GitRepo

from acr_ci.errors import RefError
from acr_ci.models import RefType
from acr_ci.platforms import detect_ref

NO_CI: dict[str, str] = {}
"""An environment without any CI platform (not even the machine's own)."""

T_FIRST = "2024-01-02T03:04:05+00:00"
T_SECOND = "2024-05-01T20:34:56+08:00"  # = 12:34:56Z
T_THIRD = "2024-06-01T00:00:00-04:00"


@dataclass
class History:
    repo: GitRepo
    first: str
    second: str
    third: str


@pytest.fixture
def history(make_repo: Callable[[str], GitRepo]) -> History:
    """main: first (tag v1.0.0) → second (tags v1.9.0, v1.10.0 annotated, v1.10.0-rc1) → third.

    A branch ``feature/x`` points at second.
    """
    repo = make_repo("repo")
    first = repo.commit("first", T_FIRST)
    repo.git("tag", "v1.0.0")
    second = repo.commit("second", T_SECOND)
    repo.git("tag", "v1.9.0")
    repo.git("tag", "-a", "v1.10.0", "-m", "release 1.10.0")
    repo.git("tag", "v1.10.0-rc1")
    repo.git("branch", "feature/x")
    third = repo.commit("third", T_THIRD)
    return History(repo, first, second, third)


CASES = [
    # id, checkout target (None: stay on main), flags, expected type, name, commit key, time
    ("on-main", None, {}, RefType.BRANCH, "main", "third", T_THIRD),
    ("on-other-branch", "feature/x", {}, RefType.BRANCH, "feature/x", "second", T_SECOND),
    ("detached-one-tag", "first", {}, RefType.TAG, "v1.0.0", "first", T_FIRST),
    (
        "detached-several-tags-highest-version",
        "second",
        {},
        RefType.TAG,
        "v1.10.0",
        "second",
        T_SECOND,
    ),
    (
        "detached-no-tag-with-flag",
        "third",
        {"ref": "main"},
        RefType.BRANCH,
        "main",
        "third",
        T_THIRD,
    ),
    (
        "flag-ref-keeps-head-sha-and-time",
        None,
        {"ref": "refs/tags/v7"},
        RefType.TAG,
        "v7",
        "third",
        T_THIRD,
    ),
]


@pytest.mark.parametrize(
    ("target", "flags", "rtype", "name", "commit", "when"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_local_checkout(
    history: History,
    target: str | None,
    flags: dict[str, str],
    rtype: RefType,
    name: str,
    commit: str,
    when: str,
) -> None:
    repo = history.repo
    if target in ("first", "second", "third"):
        repo.git("checkout", "--quiet", "--detach", getattr(history, target))
    elif target is not None:
        repo.git("checkout", "--quiet", target)
    got = detect_ref(ref=flags.get("ref"), sha=None, time=None, env=NO_CI, cwd=str(repo.path))
    assert (got.type, got.name) == (rtype, name)
    assert got.sha == getattr(history, commit)
    assert len(got.sha) == 40
    assert got.time == datetime.fromisoformat(when)
    assert got.time.utcoffset() == datetime.fromisoformat(when).utcoffset()
    assert got.source == ("flags" if flags else "local")
    assert got.event is None and got.repository is None


def test_detached_without_tag_asks_for_ref(history: History) -> None:
    history.repo.git("checkout", "--quiet", "--detach", history.third)
    with pytest.raises(RefError) as info:
        detect_ref(ref=None, sha=None, time=None, env=NO_CI, cwd=str(history.repo.path))
    assert "detached" in info.value.message
    assert history.third[:12] in info.value.message
    assert "--ref" in info.value.diagnostics()


def test_rebuilding_a_commit_gives_the_same_time(history: History) -> None:
    path = str(history.repo.path)
    one = detect_ref(ref=None, sha=None, time=None, env=NO_CI, cwd=path)
    history.repo.git("checkout", "--quiet", "-b", "rebuild")  # same commit, later
    two = detect_ref(ref=None, sha=None, time=None, env=NO_CI, cwd=path)
    assert one.time == two.time == datetime(2024, 6, 1, 4, 0, 0, tzinfo=UTC)
    assert two.name == "rebuild"


def test_not_a_checkout_needs_ref(tmp_path: Path) -> None:
    with pytest.raises(RefError) as info:
        detect_ref(ref=None, sha=None, time=None, env=NO_CI, cwd=str(tmp_path))
    assert "not a git repository" in info.value.message
    assert "--ref" in info.value.diagnostics()


def test_not_a_checkout_with_ref_uses_current_time(tmp_path: Path) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    got = detect_ref(ref="main", sha=None, time=None, env=NO_CI, cwd=str(tmp_path))
    after = datetime.now(UTC)
    assert got.sha == ""
    assert got.time.utcoffset() == timedelta(0)
    assert before <= got.time <= after


def test_unborn_branch(make_repo: Callable[[str], GitRepo]) -> None:
    repo = make_repo("empty")
    got = detect_ref(ref=None, sha=None, time=None, env=NO_CI, cwd=str(repo.path))
    assert (got.type, got.name, got.sha) == (RefType.BRANCH, "main", "")


HOSTILE = [
    ("dollar-paren", "$(touch${IFS}pwned)"),
    ("semicolon-rm", ";rm${IFS}-rf${IFS}canary"),
    ("backticks", "`touch${IFS}pwned`"),
    ("pipe-amp", "a|touch${IFS}pwned&"),
    ("redirect", "x<canary>pwned"),
]


@pytest.mark.parametrize("branch", [h[1] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_branch_names_are_data(
    make_repo: Callable[[str], GitRepo],
    branch: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = make_repo("repo")
    repo.commit("one", T_FIRST)
    repo.git("checkout", "--quiet", "-b", branch)
    (repo.path / "canary").write_text("still here")
    (tmp_path / "canary").write_text("still here")
    monkeypatch.chdir(tmp_path)  # a shell would run relative to one of these two

    got = detect_ref(ref=None, sha=None, time=None, env=NO_CI, cwd=str(repo.path))

    assert (got.type, got.name) == (RefType.BRANCH, branch)
    assert list(tmp_path.rglob("pwned")) == []  # what any of these would create
    assert (repo.path / "canary").read_text() == "still here"
    assert (tmp_path / "canary").read_text() == "still here"
