"""What every builder shares: the :class:`Builder` Protocol, its input and output values,
and running a builder process with its log streamed line by line.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from acr_ci.errors import BuildError
from acr_ci.models import BuildPlan, CacheOutcome
from acr_ci.text import LINE_LIMIT, clean_remote

LogSink = Callable[[str], None]
"""Receives one line of builder output (without the newline)."""

TAIL_LINES = 20
"""How many of the builder's last lines a failed build shows."""


def stderr_sink(line: str) -> None:
    """The default log sink: the console's stderr, flushed per line."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class BuildJob:
    """One build, ready to run: the plan plus everything resolved around it."""

    plan: BuildPlan
    """What to build (rule, platforms, build args, no_cache)."""
    context: Path
    """The build context directory, absolute and checked."""
    dockerfile: Path
    """The Dockerfile, absolute and checked (inside ``context``)."""
    layout: Path
    """Where the OCI image layout goes (an empty or missing directory)."""
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Annotations for the index and every manifest; also written as config labels."""
    insecure_registries: tuple[str, ...] = ()
    """Registries (``host[:port]``) to reach over plain HTTP / unverified TLS for base images."""
    auth_file: Path | None = None
    """A containers-auth.json with credentials for base-image registries (never in argv)."""
    log: LogSink = stderr_sink
    """Where each line of the builder's output goes (already prefixed with the rule)."""
    cache_error: str | None = None
    """Why ``plan.cache`` cannot be used (found before the build, e.g. its registry does not
    answer): the builder leaves the cache out and reports this as the cache's error."""


@dataclass(frozen=True)
class BuildResult:
    """What a builder made: an OCI layout whose ``index.json`` points at one image index."""

    rule: str
    """The rule that was built."""
    builder: str
    """``buildah`` or ``buildx``."""
    layout: Path
    """The OCI image layout directory."""
    index_digest: str
    """Digest of the image index (what every tag will point at)."""
    platforms: Mapping[str, str]
    """``os/arch[/variant]`` → digest of that platform's image manifest."""
    seconds: float = 0.0
    """Wall-clock time of the build."""
    cache: CacheOutcome | None = None
    """What the build did with the registry cache; ``None`` when the plan has none."""

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "builder": self.builder,
            "layout": str(self.layout),
            "index_digest": self.index_digest,
            "platforms": dict(self.platforms),
            "seconds": round(self.seconds, 3),
            "cache": None if self.cache is None else self.cache.to_json(),
        }


class Builder(Protocol):
    """Builds a :class:`BuildPlan` into an OCI image layout; never touches a registry
    except to pull base images."""

    @property
    def name(self) -> str:
        """``buildah`` or ``buildx``: shown in logs and results."""
        ...

    def build(self, job: BuildJob) -> BuildResult:
        """Build every platform of ``job.plan`` into ``job.layout``; raise :class:`BuildError`."""
        ...


def run_streaming(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log: LogSink,
    prefix: str,
    what: str,
    cwd: Path | None = None,
) -> None:
    """Run ``argv`` (no shell), sending each output line to ``log`` as it comes.

    stdout and stderr are merged (one ordered log). A non-zero exit raises
    :class:`BuildError` with the last :data:`TAIL_LINES` lines; a missing executable
    raises it too.
    """
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
        )
    except OSError as e:
        raise BuildError(f"{what}: cannot run {argv[0]}: {e.strerror or e}") from None
    assert proc.stdout is not None
    with proc:
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            tail.append(line)
            log(f"{prefix}{line}")
        code = proc.wait()
    if code != 0:
        shown = (
            "\n".join(f"    {clean_remote(line, LINE_LIMIT)}" for line in tail) or "    (no output)"
        )
        raise BuildError(
            f"{what} failed (exit {code}); its last lines:\n{shown}",
            "the builder's full log is above",
        )


def run_quiet(
    argv: Sequence[str], *, env: Mapping[str, str], what: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a short helper command (no shell) and capture its output."""
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=dict(env),
            check=False,
        )
    except OSError as e:
        raise BuildError(f"{what}: cannot run {argv[0]}: {e.strerror or e}") from None
    if check and proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()[-TAIL_LINES:]
        shown = (
            "\n".join(f"    {clean_remote(line, LINE_LIMIT)}" for line in lines)
            or "    (no output)"
        )
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{shown}")
    return proc


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus ``extra``, minus acr-ci's own secrets."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    env.update(extra or {})
    return env


SECRET_ENV = frozenset({"ACR_CI_REGISTRY_PASSWORD"})
"""Variables builders never inherit (credentials reach them through an auth file)."""
