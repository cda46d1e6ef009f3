"""GitHub Actions: the ref from the runner's env vars and event file.

Active when ``GITHUB_ACTIONS=true`` (or ``ACR_CI_PLATFORM=github``).

Ref and commit:

- Pull-request events (``pull_request``, ``pull_request_target``,
  ``pull_request_review``, ``pull_request_review_comment``) describe the merge
  ref ``refs/pull/N/merge`` and its merge commit in ``GITHUB_REF``/``GITHUB_SHA``.
  acr-ci builds the **head** instead: the branch ``GITHUB_HEAD_REF`` (else
  ``pull_request.head.ref`` from the event file) at ``pull_request.head.sha``.
  A pull-request event without a head sha is an error, never a silent fall back
  to the merge commit.
- Every other event: ``GITHUB_REF`` (``refs/heads/…`` or ``refs/tags/…``), else
  ``GITHUB_REF_TYPE`` + ``GITHUB_REF_NAME``; the commit is ``GITHUB_SHA``.

Push time (the event file is the same for every job of a workflow run, re-runs
included, so each of these is the same in every job):

- pull-request events: ``pull_request.updated_at`` (the last push to the head,
  or the last edit of the pull request), else ``repository.pushed_at``;
- other events: ``repository.pushed_at`` (epoch seconds in push events, an
  ISO string in others), else ``head_commit.timestamp``;
- events whose payload has none of these (``schedule``) leave the time to the
  next source (the checkout's HEAD commit time).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from functools import cached_property

from acr_ci.errors import RefError
from acr_ci.fileio import read_bounded
from acr_ci.jsonload import loads_bounded
from acr_ci.models import RefType
from acr_ci.platforms.base import checked_name, checked_sha, env_value, parse_full_ref, shown
from acr_ci.platforms.timeparse import from_epoch, parse_time

EVENT_PATH = "GITHUB_EVENT_PATH"
MAX_EVENT_BYTES = 64 * 1024 * 1024
"""The largest event file read (GitHub caps webhook payloads at 25 MB)."""
PULL_REQUEST_EVENTS = frozenset(
    {"pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment"}
)
"""Events whose ``GITHUB_REF`` is the merge ref ``refs/pull/N/merge`` (or the base branch)."""

_PR_TIME_FIELDS = (("pull_request", "updated_at"), ("repository", "pushed_at"))
_PUSH_TIME_FIELDS = (("repository", "pushed_at"), ("head_commit", "timestamp"))


def is_active(env: Mapping[str, str]) -> bool:
    """True when running in a GitHub Actions job."""
    return (env.get("GITHUB_ACTIONS") or "").strip().lower() == "true"


class GitHubSource:
    """Reads a GitHub Actions job's env vars and, when needed, its event file."""

    label = "github"

    def __init__(self, env: Mapping[str, str], cwd: str) -> None:
        self._env = env
        self._cwd = cwd

    @property
    def _event_name(self) -> str | None:
        return env_value(self._env, "GITHUB_EVENT_NAME")

    @property
    def _is_pull_request(self) -> bool:
        return self._event_name in PULL_REQUEST_EVENTS

    @cached_property
    def _payload(self) -> dict[str, object]:
        """The event file as a JSON object; ``{}`` when ``GITHUB_EVENT_PATH`` is unset."""
        path = env_value(self._env, EVENT_PATH)
        if path is None:
            return {}
        full = os.path.join(self._cwd, path)
        try:
            data = read_bounded(full, limit=MAX_EVENT_BYTES, what=EVENT_PATH, error=RefError)
        except FileNotFoundError:
            raise RefError(f"{EVENT_PATH} {shown(path)} cannot be read: no such file") from None
        doc = loads_bounded(
            data,
            what=f"{EVENT_PATH} {shown(path)}",
            max_bytes=MAX_EVENT_BYTES,
            error=RefError,
            invalid="is not a JSON document",
        )
        if not isinstance(doc, dict):
            raise RefError(f"{EVENT_PATH} {shown(path)} holds {type(doc).__name__}, not an object")
        return doc

    def _field(self, *keys: str) -> object:
        """``payload[k1][k2]…``, or ``None`` when any level is missing or not an object."""
        node: object = self._payload
        for key in keys:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    def _string_field(self, *keys: str) -> str | None:
        value = self._field(*keys)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise RefError(f"{_where(keys)} is {type(value).__name__}, not a string")
        return value

    def ref(self) -> tuple[RefType, str] | None:
        if self._is_pull_request:
            head = env_value(self._env, "GITHUB_HEAD_REF")
            if head is not None:
                return RefType.BRANCH, checked_name(head, "GITHUB_HEAD_REF")
            keys = ("pull_request", "head", "ref")
            name = self._string_field(*keys)
            if name is None:
                raise RefError(
                    f"GITHUB_EVENT_NAME is {self._event_name} but neither GITHUB_HEAD_REF nor "
                    f"{_where(keys)} names the head branch",
                    "pass --ref refs/heads/BRANCH",
                )
            return RefType.BRANCH, checked_name(name, _where(keys))
        full = env_value(self._env, "GITHUB_REF")
        if full is not None:
            return parse_full_ref(full, "GITHUB_REF")
        name = env_value(self._env, "GITHUB_REF_NAME")
        if name is None:
            return None
        kind = (self._env.get("GITHUB_REF_TYPE") or "").strip()
        if kind not in (RefType.BRANCH, RefType.TAG):
            raise RefError(
                f"GITHUB_REF_TYPE {shown(kind)} is neither 'branch' nor 'tag'",
                "pass --ref refs/heads/NAME or --ref refs/tags/NAME",
            )
        return RefType(kind), checked_name(name, "GITHUB_REF_NAME")

    def sha(self) -> str | None:
        if self._is_pull_request:
            keys = ("pull_request", "head", "sha")
            head = self._string_field(*keys)
            if head is None:
                raise RefError(
                    f"GITHUB_EVENT_NAME is {self._event_name} but {_where(keys)} is missing "
                    "(GITHUB_SHA is the merge commit, not the head)",
                    "pass --sha with the pull request's head commit",
                )
            return checked_sha(head, _where(keys))
        sha = env_value(self._env, "GITHUB_SHA")
        return checked_sha(sha, "GITHUB_SHA") if sha is not None else None

    def time(self) -> datetime | None:
        fields = _PR_TIME_FIELDS if self._is_pull_request else _PUSH_TIME_FIELDS
        for keys in fields:
            value = self._field(*keys)
            if value is None or value == "":
                continue
            if isinstance(value, bool):
                raise RefError(f"{_where(keys)} is a boolean, not a time")
            if isinstance(value, int | float):
                return from_epoch(value, origin=_where(keys))
            if isinstance(value, str):
                return parse_time(value, origin=_where(keys))
            raise RefError(f"{_where(keys)} is {type(value).__name__}, not a time")
        return None

    def event(self) -> str | None:
        return self._event_name

    def repository(self) -> str | None:
        return env_value(self._env, "GITHUB_REPOSITORY")


def _where(keys: tuple[str, ...]) -> str:
    return f"{'.'.join(keys)} in {EVENT_PATH}"
