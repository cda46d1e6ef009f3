"""Where a run's ref comes from: flags, the CI platform, or the local git checkout.

:func:`detect_ref` asks its sources in order and takes **each field from the
first source that has it**:

1. the ``--ref``/``--sha``/``--time`` flags (:mod:`.flags`);
2. the CI platform's environment: GitHub Actions (:mod:`.github`) or GitLab CI
   (:mod:`.gitlab`); Tekton passes everything as flags (:mod:`.tekton`);
3. the git checkout at ``cwd`` (:mod:`.local`), asked only for what is still
   missing.

So ``--ref X`` alone in a GitHub job still takes the commit and the push time
from the job's env and event file. ``RefContext.source`` names the source of
the ref *name*. When no source knows the commit it is ``""``; when none knows
the push time it is the current time (UTC) — the only case where ``${time}``
depends on when the job runs.

The platform is detected from ``GITHUB_ACTIONS=true``, then ``GITLAB_CI=true``.
``ACR_CI_PLATFORM`` (``github``, ``gitlab``, ``tekton`` or ``local``) overrides
the detection; ``local`` ignores every CI variable. A plain ``CI=true`` means
nothing here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from acr_ci.errors import RefError, UsageError
from acr_ci.models import RefContext, RefType

if TYPE_CHECKING:
    from acr_ci.platforms.base import RefSource

PLATFORM_ENV = "ACR_CI_PLATFORM"
PLATFORMS = ("github", "gitlab", "tekton", "local")

__all__ = ["PLATFORMS", "PLATFORM_ENV", "detect_platform", "detect_ref"]

_T = TypeVar("_T")


def detect_platform(env: Mapping[str, str]) -> str | None:
    """``github``, ``gitlab``, ``tekton``, ``local`` or ``None`` (no CI platform seen)."""
    from acr_ci.platforms import github, gitlab
    from acr_ci.platforms.base import shown

    forced = (env.get(PLATFORM_ENV) or "").strip()
    if forced:
        if forced.lower() not in PLATFORMS:
            raise UsageError(
                f"{PLATFORM_ENV} {shown(forced)} is not a platform: give one of "
                f"{', '.join(PLATFORMS)}, or leave it unset to detect it"
            )
        return forced.lower()
    if github.is_active(env):
        return "github"
    if gitlab.is_active(env):
        return "gitlab"
    return None


def detect_ref(
    *,
    ref: str | None,
    sha: str | None,
    time: str | None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> RefContext:
    """The ref this run is about; ``RefError``/``UsageError`` naming the bad flag or variable.

    ``env`` defaults to ``os.environ``, ``cwd`` to the process's working directory.
    """
    from acr_ci.platforms import tekton
    from acr_ci.platforms.flags import FlagSource
    from acr_ci.platforms.github import GitHubSource
    from acr_ci.platforms.gitlab import GitLabSource
    from acr_ci.platforms.local import LocalGitSource

    environ: Mapping[str, str] = os.environ if env is None else env
    workdir = os.getcwd() if cwd is None else cwd
    platform = detect_platform(environ)

    flags = FlagSource.parse(
        ref=ref, sha=sha, time=time, label=tekton.LABEL if platform == "tekton" else "flags"
    )
    sources: list[RefSource] = [flags]
    if platform == "github":
        sources.append(GitHubSource(environ, workdir))
    elif platform == "gitlab":
        sources.append(GitLabSource(environ))
    sources.append(LocalGitSource(workdir))

    ref_type, name, label = _first_ref(sources)
    return RefContext(
        type=ref_type,
        name=name,
        sha=_first(sources, lambda s: s.sha()) or "",
        time=_first(sources, lambda s: s.time()) or _utcnow(),
        event=_first(sources, lambda s: s.event()),
        repository=_first(sources, lambda s: s.repository()),
        source=label,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _first_ref(sources: list[RefSource]) -> tuple[RefType, str, str]:
    """The ref type and name from the first source that knows them, and that source's label."""
    for source in sources:
        found = source.ref()
        if found is not None:
            return found[0], found[1], source.label
    raise RefError(  # the local source raises its own, more precise error first
        "cannot tell the ref", "pass --ref refs/heads/NAME or --ref refs/tags/NAME"
    )


def _first(sources: list[RefSource], ask: Callable[[RefSource], _T | None]) -> _T | None:
    """The first answer that is not ``None``; later sources are not asked."""
    for source in sources:
        value = ask(source)
        if value is not None:
            return value
    return None
