"""Optional commit statuses: one per chain step of the run record, on GitHub or GitLab.

Off by default; a front end calls :func:`post_github` or :func:`post_gitlab` only when
asked (``commit-statuses: true``) and given a token. The API clients are imported here,
lazily (PyGitHub, python-gitlab: ``pip install PyGithub python-gitlab``), so nothing
else pays for them.

GitHub's statuses go to the commit the run record names (its ``ref.sha``: for a pull
request the head commit, not the merge commit in ``$GITHUB_SHA``).

Each step that ran becomes one status, named ``acr-ci/RULE/STEP`` (``/NAME`` for a
mirror or trigger): succeeded → success, failed and blocked → failure; skipped steps are
not posted (a green mark for a step that never ran would mislead). The description is
the step's reason or status, cut to GitHub's 140 characters. The token never reaches a
message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from acr_ci.errors import StatusError as StatusError  # lives in errors.py; importable here too
from acr_ci.errors import UsageError
from acr_ci.models import Status

if TYPE_CHECKING:
    from acr_ci.record import RunRecord

MAX_DESCRIPTION = 140


@dataclass(frozen=True)
class CommitStatus:
    """One status to post."""

    context: str
    state: str
    """``success`` or ``failure`` (GitHub's names; GitLab's ``failed`` is mapped)."""
    description: str


def statuses_from_record(record: RunRecord) -> list[CommitStatus]:
    """The statuses for every step of every image of a run record that ran."""
    out: list[CommitStatus] = []
    for img in record.images:
        for step in img.steps:
            if step.status is Status.SKIPPED:
                continue
            context = f"acr-ci/{img.rule}/{step.step}"
            if step.name:
                context += f"/{step.name}"
            text = step.reason or str(step.status)
            out.append(
                CommitStatus(
                    context=context,
                    state="success" if step.status is Status.SUCCEEDED else "failure",
                    description=text[: MAX_DESCRIPTION - 1] + "…"
                    if len(text) > MAX_DESCRIPTION
                    else text,
                )
            )
    return out


def _record(path: str) -> RunRecord:
    from acr_ci import record

    try:
        return record.read(path)
    except record.RecordError as e:
        raise StatusError(
            f"{e.message}; commit statuses need the record of command run", e.hint
        ) from None


def _need(env: Mapping[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise UsageError(f"commit statuses need ${', $'.join(missing)}")
    return [env[n] for n in names]


def post_github(token: str, env: Mapping[str, str], *, record_path: str) -> int:
    """Post the record's statuses to the commit that was built; returns how many were posted.

    That commit is the run record's ``ref.sha`` (for a pull request the head commit, which
    the record holds), not ``$GITHUB_SHA`` (the pull request's merge commit); the job's
    ``$GITHUB_SHA`` only stands in when the record names no commit."""
    api, repo_name = _need(env, "GITHUB_API_URL", "GITHUB_REPOSITORY")
    server = env.get("GITHUB_SERVER_URL", "")
    run_id = env.get("GITHUB_RUN_ID", "")
    target = f"{server}/{repo_name}/actions/runs/{run_id}" if server and run_id else None
    run = _record(record_path)
    sha = run.ref.sha or _need(env, "GITHUB_SHA")[0]
    todo = statuses_from_record(run)
    try:
        from github import (  # type: ignore[import-not-found, unused-ignore]
            Auth,
            Github,
            GithubException,
        )
    except ImportError:
        raise StatusError("commit statuses need PyGithub: pip install PyGithub") from None
    import requests

    gh = Github(auth=Auth.Token(token), base_url=api, retry=None, lazy=True)
    try:
        repo = gh.get_repo(repo_name)
        commit = repo.get_commit(sha)
        for s in todo:
            if target:
                commit.create_status(
                    s.state, target_url=target, description=s.description, context=s.context
                )
            else:
                commit.create_status(s.state, description=s.description, context=s.context)
    except GithubException as e:
        raise StatusError(f"GitHub refused a commit status (HTTP {e.status})") from None
    except requests.RequestException as e:
        raise StatusError(f"cannot reach the GitHub API ({type(e).__name__})") from None
    finally:
        gh.close()
    return len(todo)


def post_gitlab(token: str, env: Mapping[str, str], *, record_path: str) -> int:
    """Post the record's statuses to the commit that was built; returns how many were posted.

    As on GitHub, that is the run record's ``ref.sha`` (in a merged-results pipeline the
    merge request's source commit, not ``$CI_COMMIT_SHA``, the merge commit); the job's
    ``$CI_COMMIT_SHA`` only stands in when the record names no commit."""
    server, project_id = _need(env, "CI_SERVER_URL", "CI_PROJECT_ID")
    target = env.get("CI_JOB_URL") or None
    run = _record(record_path)
    sha = run.ref.sha or _need(env, "CI_COMMIT_SHA")[0]
    todo = statuses_from_record(run)
    try:
        import gitlab  # type: ignore[import-not-found, unused-ignore]
        from gitlab.exceptions import (  # type: ignore[import-not-found, unused-ignore]
            GitlabError,
        )
    except ImportError:
        raise StatusError("commit statuses need python-gitlab: pip install python-gitlab") from None
    import requests

    gl = gitlab.Gitlab(server, private_token=token, retry_transient_errors=False)
    try:
        commit = gl.projects.get(project_id, lazy=True).commits.get(sha, lazy=True)
        for s in todo:
            data = {
                "state": "success" if s.state == "success" else "failed",
                "name": s.context,
                "description": s.description,
            }
            if target:
                data["target_url"] = target
            commit.statuses.create(data)
    except GitlabError as e:
        raise StatusError(f"GitLab refused a commit status (HTTP {e.response_code})") from None
    except requests.RequestException as e:
        raise StatusError(f"cannot reach the GitLab API ({type(e).__name__})") from None
    finally:
        gl.session.close()
    return len(todo)
