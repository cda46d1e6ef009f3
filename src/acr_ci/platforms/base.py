"""What every ref source shares: the source Protocol and value checks.

A *source* (flags, GitHub Actions, GitLab CI, the local git checkout) answers
each question about the ref separately and lazily; ``None`` means "I do not
know, ask the next source". A value a source does know but finds malformed is
an error naming where it came from (a flag, an env var, a field of a file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from acr_ci.errors import RefError, UsageError
from acr_ci.models import RefType
from acr_ci.tags import check_ref_name

_SHA_RE = re.compile(r"[0-9a-fA-F]{4,64}", re.ASCII)
_MAX_SHOWN = 64

BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"


class RefSource(Protocol):
    """One place the ref can be read from. Every method may return ``None``."""

    @property
    def label(self) -> str:
        """The ``RefContext.source`` value when the ref name comes from here."""
        ...

    def ref(self) -> tuple[RefType, str] | None:
        """The ref's type and short name."""
        ...

    def sha(self) -> str | None:
        """The commit ID, lowercase hex."""
        ...

    def time(self) -> datetime | None:
        """The push time, tz-aware, the same in every job of one pipeline."""
        ...

    def event(self) -> str | None:
        """The CI event that started the run."""
        ...

    def repository(self) -> str | None:
        """The repository the run belongs to."""
        ...


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """``env[name]``, or ``None`` when unset or empty (CI systems set empty values)."""
    value = env.get(name)
    if value is None or not value.strip():
        return None
    return value


def checked_name(name: str, origin: str) -> str:
    """``name`` if it is an acceptable ref name, else a :class:`RefError` naming ``origin``."""
    try:
        check_ref_name(name)
    except RefError as e:
        raise RefError(f"{origin}: {e.message}", e.hint) from None
    return name


def full_ref(ref_type: RefType, name: str) -> str:
    """``refs/tags/NAME`` or ``refs/heads/NAME``: what :func:`parse_full_ref` reads back."""
    return (TAG_PREFIX if ref_type is RefType.TAG else BRANCH_PREFIX) + name


def parse_full_ref(value: str, origin: str) -> tuple[RefType, str]:
    """``refs/heads/X`` → branch X, ``refs/tags/X`` → tag X, a bare name → branch.

    Any other ``refs/…`` namespace (``refs/pull/1/merge``, ``refs/remotes/…``)
    is a :class:`RefError` naming ``origin``.
    """
    if value.startswith(BRANCH_PREFIX):
        return RefType.BRANCH, checked_name(value[len(BRANCH_PREFIX) :], origin)
    if value.startswith(TAG_PREFIX):
        return RefType.TAG, checked_name(value[len(TAG_PREFIX) :], origin)
    if value.startswith("refs/"):
        raise RefError(
            f"{origin} {shown(value)} is not a branch or tag: only refs/heads/NAME, "
            "refs/tags/NAME or a bare branch name are accepted",
            "for a pull or merge request, pass the source branch: --ref refs/heads/BRANCH",
        )
    return RefType.BRANCH, checked_name(value, origin)


def checked_sha(value: str, origin: str) -> str:
    """A commit ID of 4 to 64 hex digits, lowercased; else a :class:`UsageError` naming ``origin``."""
    text = value.strip()
    if not _SHA_RE.fullmatch(text):
        raise UsageError(
            f"{origin} {shown(value)} is not a commit ID: give 4 to 64 hexadecimal digits"
        )
    return text.lower()


def shown(value: str) -> str:
    """A short, printable rendering of an untrusted value for a one-line message."""
    if len(value) > _MAX_SHOWN:
        return repr(value[:_MAX_SHOWN]) + "…"
    return repr(value)
