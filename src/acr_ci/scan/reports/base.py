"""What every report parser shares: the :class:`ReportParser` protocol, the parsed
:class:`Report`, and small readers that turn a wrong field into a one-line
:class:`~acr_ci.scan.findings.ReportError` naming the file and the JSON path.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from acr_ci.config.model import Severity
from acr_ci.scan.findings import Finding, ReportError


class ReportFormat(enum.StrEnum):
    """The report formats acr-ci reads (``--report-format``)."""

    TRIVY = "trivy"
    """Trivy JSON (``trivy image --format json``), SchemaVersion 2."""
    GRYPE = "grype"
    """Grype JSON (``grype -o json``)."""
    GITLAB = "gitlab"
    """A GitLab container-scanning report (security report schema 14.x/15.x)."""
    SARIF = "sarif"
    """SARIF 2.1.0 from a vulnerability scanner."""


@dataclass(frozen=True)
class ArtifactIdentity:
    """What a report says about the image it is about (empty fields: it does not say)."""

    names: tuple[str, ...] = ()
    """Image references as the report writes them (Trivy ``ArtifactName``/``RepoTags``,
    Grype ``userInput``/``tags``); only those naming a digest are compared."""
    repo_digests: tuple[str, ...] = ()
    """``NAME@DIGEST`` entries (Trivy ``Metadata.RepoDigests``, Grype ``repoDigests``)."""
    image_id: str = ""
    """The image ID, the config blob's digest (Trivy ``Metadata.ImageID``, Grype ``imageID``)."""
    manifest_digest: str = ""
    """The manifest's digest (Grype ``manifestDigest``)."""

    @property
    def empty(self) -> bool:
        return not (self.names or self.repo_digests or self.image_id or self.manifest_digest)


@dataclass(frozen=True)
class Report:
    """One parsed report file."""

    format: ReportFormat
    """The format it was read as."""
    findings: tuple[Finding, ...]
    """Every vulnerability finding in it, each stamped with ``platform``."""
    platform: str | None = None
    """The platform it covers (given by the user, else read from the report), if known."""
    artifact: str = ""
    """The image name the report names, if any (informational)."""
    scanner: str = ""
    """The scanner name and version the report names, if any."""
    targets: tuple[str, ...] = ()
    """What the scanner looked at inside the image (Trivy's result targets), if it says."""
    identity: ArtifactIdentity = ArtifactIdentity()
    """The image the report says it is about (compared with the gated image)."""


class ReportParser(Protocol):
    """Reads one format. ``doc`` is the report's parsed JSON."""

    format: ReportFormat

    def sniff(self, doc: Any) -> bool:
        """True when ``doc`` looks like this format (used to auto-detect)."""
        ...

    def parse(self, doc: Any, *, source: str, platform: str | None) -> Report:
        """All findings of ``doc``; ``platform`` (when given) overrides what the report says."""
        ...


class Reader:
    """Typed access to a JSON document that fails with the file and JSON path."""

    def __init__(self, source: str, fmt: ReportFormat) -> None:
        self.source = source
        self.fmt = fmt

    def fail(self, path: str, message: str) -> ReportError:
        return ReportError(
            f"{self.source}: {path}: {message}",
            hint=f"is this really a {self.fmt} report? give --report-format to choose the parser",
        )

    def obj(self, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected an object, found {_kind(value)}")
        return value

    def lst(self, value: Any, path: str, *, optional: bool = False) -> list[Any]:
        if value is None and optional:
            return []
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, found {_kind(value)}")
        return value

    def text(self, value: Any, path: str, *, optional: bool = False) -> str:
        if value is None and optional:
            return ""
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, found {_kind(value)}")
        return value

    def required_text(self, value: Any, path: str) -> str:
        s = self.text(value, path)
        if not s.strip():
            raise self.fail(path, "must not be empty")
        return s.strip()

    def severity(self, value: Any, path: str) -> Severity:
        word = self.text(value, path, optional=True)
        sev = severity_word(word)
        if sev is None:
            raise self.fail(
                path,
                f"unknown severity {word!r} (expected unknown, negligible, low, medium, high or critical)",
            )
        return sev


_SEVERITY_WORDS: dict[str, Severity] = {
    "": Severity.UNKNOWN,
    "unknown": Severity.UNKNOWN,
    "undefined": Severity.UNKNOWN,
    "negligible": Severity.NEGLIGIBLE,
    "info": Severity.NEGLIGIBLE,
    "informational": Severity.NEGLIGIBLE,
    "none": Severity.NEGLIGIBLE,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,
    "high": Severity.HIGH,
    "important": Severity.HIGH,
    "critical": Severity.CRITICAL,
}


def severity_word(word: str) -> Severity | None:
    """A severity from the words scanners use (any case); ``info`` is negligible; None if unknown."""
    return _SEVERITY_WORDS.get(word.strip().lower())


_PLATFORM_RE = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?", re.ASCII)


def valid_platform(text: str) -> bool:
    """True for ``os/arch[/variant]``."""
    return bool(_PLATFORM_RE.fullmatch(text))


def platform_of(os_name: Any, arch: Any, variant: Any = None) -> str | None:
    """``os/arch[/variant]`` from image-config fields, or None when they are missing."""
    if not isinstance(os_name, str) or not isinstance(arch, str) or not os_name or not arch:
        return None
    if isinstance(variant, str) and variant:
        return f"{os_name}/{arch}/{variant}"
    return f"{os_name}/{arch}"


def strings(value: Any, limit: int = 64) -> tuple[str, ...]:
    """The non-empty strings of a JSON list (at most ``limit``); anything else gives none."""
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value[:limit] if isinstance(v, str) and v)


def text_or_empty(value: Any) -> str:
    """A JSON string, or ``""`` for anything else."""
    return value if isinstance(value, str) else ""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
