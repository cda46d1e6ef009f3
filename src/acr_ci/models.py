"""Values that move between the stages of the chain.

All are frozen dataclasses: a stage makes new values, it never changes the
ones it was given.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType


class Status(enum.StrEnum):
    """The outcome of one step of the chain (and, summed up, of an image and a run)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    BLOCKED = "blocked"
    """The scan gate refused the image (scan step only)."""
    SKIPPED = "skipped"
    """Not run: not configured, nothing selected, or an earlier step of the image failed."""


class RefType(enum.StrEnum):
    """What kind of git ref a push was to."""

    BRANCH = "branch"
    TAG = "tag"


DEFAULT_RECORD_PATH = "acr-ci-record.json"
"""Where ``acr-ci run`` writes its run record unless told (``--record``, a front end's input)."""

MAX_REF_NAME = 1024
"""Ref names longer than this are refused (git allows more; nobody needs it)."""


@dataclass(frozen=True)
class RefContext:
    """The git ref a run is about, wherever it came from."""

    type: RefType
    """Branch or tag."""
    name: str
    """The ref's short name (``main``, ``release-v1``, ``v1.2.3``): attacker-controlled text."""
    sha: str
    """The full commit ID (40 or 64 hex digits), or empty when unknown."""
    time: datetime
    """The push time, timezone-aware; the same for every job of one pipeline."""
    event: str | None = None
    """The CI event that started the run (``push``, ``pull_request``, ``merge_request_event``…)."""
    repository: str | None = None
    """The source repository (``owner/name`` or a URL), when the platform says."""
    source: str = "flags"
    """Where the values came from: ``flags``, ``github``, ``gitlab``, ``tekton`` or ``local``."""


class CacheMode(enum.StrEnum):
    """Which steps a registry build cache keeps (buildx's ``mode``; buildah keeps every step)."""

    MIN = "min"
    """Only the steps of the exported image."""
    MAX = "max"
    """Every step, intermediate stages too."""


@dataclass(frozen=True)
class BuildCache:
    """A registry build cache: where cached steps are read from and written to."""

    ref: str
    """``registry/repo[:tag]`` with ``${rule}`` already replaced."""
    mode: CacheMode = CacheMode.MIN

    @property
    def repository(self) -> str:
        """``ref`` without its tag (what buildah takes: it tags each step itself)."""
        name, sep, tag = self.ref.rpartition(":")
        return name if sep and "/" not in tag else self.ref

    @property
    def host(self) -> str:
        """The registry host (``host[:port]``) of ``ref``."""
        return self.ref.split("/", 1)[0]

    def to_json(self) -> dict[str, str]:
        return {"ref": self.ref, "mode": str(self.mode)}


@dataclass(frozen=True)
class CacheOutcome:
    """What a build did with its registry cache (a cache problem never fails a build)."""

    ref: str
    """The cache's reference (as in the plan)."""
    read: bool
    """At least one step came from the registry cache."""
    written: bool
    """The build's steps were written to the registry cache."""
    error: str | None = None
    """One line: why the cache could not be read or written; ``None`` when it worked."""

    def to_json(self) -> dict[str, object]:
        return {"ref": self.ref, "read": self.read, "written": self.written, "error": self.error}


@dataclass(frozen=True)
class BuildPlan:
    """One build: what a matching rule asks for, with its tags rendered."""

    rule: str
    """The rule's name."""
    image: str
    """The repository the tags go to, without tag (``registry/namespace/repo``)."""
    tags: tuple[str, ...]
    """Rendered, sanitized, de-duplicated tags, in template order."""
    platforms: tuple[str, ...]
    """``os/arch[/variant]`` strings."""
    context: str
    """The build context directory, as written in the config (relative to the config file)."""
    dockerfile: str
    """The Dockerfile's name inside the context."""
    args: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Build arguments (at most 20)."""
    no_cache: bool = False
    """Build without cache and pull base images again (a registry cache is still written)."""
    cache: BuildCache | None = None
    """The registry build cache of the rule, or ``None``."""

    @property
    def images(self) -> tuple[str, ...]:
        """Full references, one per tag (``registry/namespace/repo:tag``)."""
        return tuple(f"{self.image}:{tag}" for tag in self.tags)

    def to_json(self) -> dict[str, object]:
        """The stable JSON shape of one build in ``acr-ci plan --format json``."""
        return {
            "rule": self.rule,
            "images": list(self.images),
            "tags": list(self.tags),
            "platforms": list(self.platforms),
            "context": self.context,
            "dockerfile": self.dockerfile,
            "args": dict(self.args),
            "no_cache": self.no_cache,
            "cache": None if self.cache is None else self.cache.to_json(),
        }
