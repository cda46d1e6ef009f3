"""The ``--ref``, ``--sha`` and ``--time`` flags: the first source asked.

Flags are checked as soon as they are read, whether or not a later source
would have had the value too: a bad flag is always an error. An empty (or
blank) flag value counts as not given, so a front end can pass an unset input
through as ``--ref ""`` without any logic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from acr_ci.models import RefType
from acr_ci.platforms.base import checked_sha, parse_full_ref
from acr_ci.platforms.timeparse import parse_time


@dataclass(frozen=True)
class FlagSource:
    """Values given on the command line, already checked."""

    label: str
    """``flags``, or ``tekton`` when a Tekton Task passed them (``ACR_CI_PLATFORM=tekton``)."""
    given_ref: tuple[RefType, str] | None
    """``--ref``, parsed."""
    given_sha: str | None
    """``--sha``, lowercased."""
    given_time: datetime | None
    """``--time``, tz-aware."""

    @classmethod
    def parse(
        cls, *, ref: str | None, sha: str | None, time: str | None, label: str = "flags"
    ) -> FlagSource:
        """Check the raw flag values; raise ``RefError``/``UsageError`` naming the flag."""
        ref, sha, time = _given(ref), _given(sha), _given(time)
        return cls(
            label=label,
            given_ref=parse_full_ref(ref, "--ref") if ref is not None else None,
            given_sha=checked_sha(sha, "--sha") if sha is not None else None,
            given_time=parse_time(time, origin="--time") if time is not None else None,
        )

    def ref(self) -> tuple[RefType, str] | None:
        return self.given_ref

    def sha(self) -> str | None:
        return self.given_sha

    def time(self) -> datetime | None:
        return self.given_time

    def event(self) -> str | None:
        return None

    def repository(self) -> str | None:
        return None


def _given(value: str | None) -> str | None:
    """``value``, or ``None`` when it is missing or blank."""
    if value is None or not value.strip():
        return None
    return value
