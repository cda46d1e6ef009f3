"""GitLab CI: the ref from a job's predefined variables.

Active when ``GITLAB_CI=true`` (or ``ACR_CI_PLATFORM=gitlab``). Empty variables
count as unset (GitLab sets some of them empty, e.g. the source branch sha in
a detached merge-request pipeline).

- Ref: ``CI_COMMIT_TAG`` (a tag pipeline), else
  ``CI_MERGE_REQUEST_SOURCE_BRANCH_NAME`` (a merge-request pipeline: the source
  branch), else ``CI_COMMIT_BRANCH``, else ``CI_COMMIT_REF_NAME`` (a branch,
  unless it is written as a full ``refs/…`` name).
- Commit: ``CI_MERGE_REQUEST_SOURCE_BRANCH_SHA`` when set (in a merged-results
  pipeline ``CI_COMMIT_SHA`` is the merge commit; this is the source head), else
  ``CI_COMMIT_SHA``.
- Push time: ``CI_PIPELINE_CREATED_AT``, the same in every job of a pipeline.
- Event: ``CI_PIPELINE_SOURCE``; repository: ``CI_PROJECT_PATH``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from acr_ci.models import RefType
from acr_ci.platforms.base import checked_name, checked_sha, env_value, parse_full_ref
from acr_ci.platforms.timeparse import parse_time


def is_active(env: Mapping[str, str]) -> bool:
    """True when running in a GitLab CI job."""
    return (env.get("GITLAB_CI") or "").strip().lower() == "true"


class GitLabSource:
    """Reads a GitLab CI job's predefined variables."""

    label = "gitlab"

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def ref(self) -> tuple[RefType, str] | None:
        tag = env_value(self._env, "CI_COMMIT_TAG")
        if tag is not None:
            return RefType.TAG, checked_name(tag, "CI_COMMIT_TAG")
        for var in ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_BRANCH"):
            branch = env_value(self._env, var)
            if branch is not None:
                return RefType.BRANCH, checked_name(branch, var)
        name = env_value(self._env, "CI_COMMIT_REF_NAME")
        if name is not None:
            return parse_full_ref(name, "CI_COMMIT_REF_NAME")
        return None

    def sha(self) -> str | None:
        for var in ("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", "CI_COMMIT_SHA"):
            sha = env_value(self._env, var)
            if sha is not None:
                return checked_sha(sha, var)
        return None

    def time(self) -> datetime | None:
        created = env_value(self._env, "CI_PIPELINE_CREATED_AT")
        return parse_time(created, origin="CI_PIPELINE_CREATED_AT") if created is not None else None

    def event(self) -> str | None:
        return env_value(self._env, "CI_PIPELINE_SOURCE")

    def repository(self) -> str | None:
        return env_value(self._env, "CI_PROJECT_PATH")
