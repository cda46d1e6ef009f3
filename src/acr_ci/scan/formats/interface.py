"""What every scan output format shares: the :class:`Format` interface, the
:class:`OutputFormat` choice, and the :class:`ScanContext` each format renders.

A format renders one scan (its context, findings, verdict and what the gate did)
into a value: text for :class:`TextFormat`, a JSON document for
:class:`DocumentFormat`; :meth:`Format.save` writes it through the one atomic
writer (:mod:`acr_ci.fileio`). Nothing here reads a clock: times come in.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from acr_ci import fileio
from acr_ci.scan.findings import Finding
from acr_ci.scan.policy import Verdict

INFORMATION_URI = "https://github.com/acr-ci/acr-ci"

R = TypeVar("R")


class OutputFormat(enum.StrEnum):
    """The outputs of a scan."""

    TABLE = "table"
    """The human summary written to the log: counts by severity, the verdict, what fired it."""
    JSON = "json"
    """``--output-json``: the context, every finding, the merged vulnerabilities, the verdict."""
    GITLAB = "gitlab"
    """``--gitlab-report``: a GitLab ``container_scanning`` report (schema 15.2.4)."""
    SARIF = "sarif"
    """``--sarif``: a SARIF 2.1.0 log."""


@dataclass(frozen=True)
class ScanContext:
    """What was scanned, by what, when: the parts of the outputs that are not findings."""

    image: str
    """The image as scanned (``registry/repo@sha256:…``), or a description when unknown."""
    platforms: tuple[str, ...]
    """The platforms scanned (may be empty when reports named none)."""
    scanner: str
    """The scanner's name (``trivy``, ``grype``) or ``report`` for report files."""
    scanner_version: str
    """Its version when known, else ``unknown``."""
    sources: tuple[str, ...]
    """The report files read or engine runs made (``trivy linux/amd64``)."""
    started: datetime
    """When the scan started (UTC)."""
    finished: datetime
    """When it finished (UTC)."""
    enforced: bool
    """False in non-blocking mode: the verdict is recorded, not acted on."""


class Format(ABC, Generic[R]):
    """One output of a scan, rendered to an ``R`` and saved to a file."""

    name: ClassVar[OutputFormat]

    @abstractmethod
    def render(
        self,
        ctx: ScanContext,
        findings: Sequence[Finding],
        verdict: Verdict,
        gate: Mapping[str, Any] | None = None,
    ) -> R:
        """The output for one scan; ``gate`` is what the gate did (its JSON), if it ran."""

    def save(
        self,
        path: str | Path,
        ctx: ScanContext,
        findings: Sequence[Finding],
        verdict: Verdict,
        gate: Mapping[str, Any] | None = None,
        *,
        what: str,
    ) -> Path:
        """Render and write the output to ``path``; ``what`` (the flag) names it in errors."""
        return self.write(path, self.render(ctx, findings, verdict, gate), what=what)

    @abstractmethod
    def write(self, path: str | Path, out: R, *, what: str) -> Path:
        """Write a rendered output to ``path`` atomically.

        The folder must exist (:class:`~acr_ci.errors.OutputError` otherwise): a scan
        output never creates folders.
        """


class TextFormat(Format[str]):
    """A format that is text."""

    def write(self, path: str | Path, out: str, *, what: str) -> Path:
        return fileio.write_text(path, out, what=what, parents=False)


class DocumentFormat(Format[dict[str, Any]]):
    """A format that is one JSON document (written indented, UTF-8, with a final newline)."""

    def write(self, path: str | Path, out: dict[str, Any], *, what: str) -> Path:
        return fileio.write_json(path, out, what=what, parents=False)


AnyFormat = TextFormat | DocumentFormat
"""What :func:`~acr_ci.scan.formats.format_for` gives."""


def iso_time(t: datetime) -> str:
    """``2026-11-23T10:00:42Z``: the times of the JSON document and the SARIF log."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
