"""The one findings model every scanner and report format is read into.

A :class:`Finding` is one scanner row: one vulnerability id in one package at
one version on one platform. Scanners report the same vulnerability many
times (a CVE in ``libssl`` and ``libcrypto``, on ``amd64`` and ``arm64``, once
as ``GHSA-…`` and once as ``CVE-…``). :func:`merge` groups findings whose id
sets overlap (id plus aliases, transitively) into one :class:`Vulnerability`.

**What the policy counts:** vulnerabilities (merged ids), as the hosted
product does, not findings (id × package × platform). A CVE present in three
packages on two platforms counts once; its severity is the highest any of its
findings gives it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from acr_ci.config.model import Severity
from acr_ci.errors import ReportError  # lives in errors.py; importable here too (see __all__)

__all__ = [
    "Finding",
    "FixState",
    "ReportError",
    "Severity",
    "Vulnerability",
    "merge",
    "severity_counts",
]


class FixState(enum.StrEnum):
    """Whether a fix exists for a finding (Grype's ``fix.state`` vocabulary)."""

    FIXED = "fixed"
    """A fixed version exists (``fixed_version`` holds it)."""
    NOT_FIXED = "not-fixed"
    """No fixed version yet."""
    WONT_FIX = "wont-fix"
    """The distribution said it will not fix this."""
    UNKNOWN = "unknown"
    """The source does not say."""


_CVE_RE = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)


def normalize_id(text: str) -> str:
    """The comparison key of a vulnerability id: stripped and upper-cased (``cve-…`` = ``CVE-…``)."""
    return text.strip().upper()


@dataclass(frozen=True)
class Finding:
    """One vulnerability in one package at one version on one platform, from any source."""

    id: str
    """The id the source reports it under (``CVE-2023-28755``, ``GHSA-hv5j-3h9f-99c2``…)."""
    severity: Severity
    """The source's severity (unknown when it gives none)."""
    package: str
    """The affected package's name."""
    installed_version: str
    """The version found in the image (empty when the source does not say)."""
    fixed_version: str | None = None
    """The version(s) that fix it (``"1.2.1, 2.1.3"`` when several lines are fixed), None when none."""
    aliases: frozenset[str] = frozenset()
    """Other ids of the same vulnerability (a GHSA's CVE…), without ``id`` itself."""
    fix_state: FixState = FixState.UNKNOWN
    """What the source says about a fix; FIXED whenever ``fixed_version`` is set."""
    platform: str | None = None
    """``os/arch[/variant]`` of the image manifest it was found in, when known."""
    title: str = ""
    """A one-line title (may be empty)."""
    url: str | None = None
    """The primary advisory URL."""
    description: str = ""
    """The longer description, when the source gives one."""
    target: str = ""
    """Where in the image the source found the package (Trivy's target, a file path), may be empty."""
    source: str = ""
    """Which report file or engine run it came from (for messages; never secret)."""

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise ValueError("a finding needs a vulnerability id")
        if self.fixed_version is not None and self.fix_state is not FixState.FIXED:
            object.__setattr__(self, "fix_state", FixState.FIXED)
        aliases = frozenset(a.strip() for a in self.aliases if a.strip())
        aliases = frozenset(a for a in aliases if normalize_id(a) != normalize_id(self.id))
        object.__setattr__(self, "aliases", aliases)

    @property
    def ids(self) -> frozenset[str]:
        """The id and its aliases, normalized for comparison."""
        return frozenset({normalize_id(self.id), *(normalize_id(a) for a in self.aliases)})

    @property
    def fixed(self) -> bool:
        """True when a fixed version is known."""
        return self.fixed_version is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "aliases": sorted(self.aliases),
            "severity": str(self.severity),
            "package": self.package,
            "installed_version": self.installed_version,
            "fixed_version": self.fixed_version,
            "fix_state": str(self.fix_state),
            "platform": self.platform,
            "title": self.title,
            "url": self.url,
            "target": self.target,
            "source": self.source,
        }


def _canonical_id(ids: Iterable[str]) -> str:
    """The id a merged vulnerability is shown under: the first CVE id, else the first id (sorted)."""
    ordered = sorted(set(ids))
    cves = [i for i in ordered if _CVE_RE.fullmatch(i)]
    return (cves or ordered)[0]


@dataclass(frozen=True)
class Vulnerability:
    """One vulnerability: every finding whose ids overlap, merged."""

    id: str
    """The canonical id: the CVE id when there is one, else the smallest id (as the source spelled it)."""
    aliases: frozenset[str]
    """Every other id any of its findings uses."""
    severity: Severity
    """The highest severity any of its findings gives."""
    findings: tuple[Finding, ...] = field(default=())
    """The findings merged into it, in input order."""

    @property
    def ids(self) -> frozenset[str]:
        """The id and aliases, normalized for comparison."""
        return frozenset({normalize_id(self.id), *(normalize_id(a) for a in self.aliases)})

    @property
    def packages(self) -> tuple[str, ...]:
        """``name@version`` of each affected package, de-duplicated, sorted."""
        return tuple(sorted({f"{f.package}@{f.installed_version}" for f in self.findings}))

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platforms it was found on (empty strings dropped), sorted."""
        return tuple(sorted({f.platform for f in self.findings if f.platform}))

    @property
    def fixed(self) -> bool:
        """True when at least one of its findings has a fixed version."""
        return any(f.fixed for f in self.findings)

    @property
    def title(self) -> str:
        return next((f.title for f in self.findings if f.title), "")

    @property
    def url(self) -> str | None:
        return next((f.url for f in self.findings if f.url), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "aliases": sorted(self.aliases),
            "severity": str(self.severity),
            "packages": list(self.packages),
            "platforms": list(self.platforms),
            "fixed": self.fixed,
            "title": self.title,
            "url": self.url,
            "findings": len(self.findings),
        }


def merge(findings: Iterable[Finding]) -> tuple[Vulnerability, ...]:
    """Group findings whose id sets overlap (transitively) into vulnerabilities.

    A GHSA whose aliases name a CVE and a finding reported under that CVE are
    one vulnerability. The result is ordered by severity (highest first), then id.
    """
    items = list(findings)
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for index, finding in enumerate(items):
        for key in finding.ids:
            if key in owner:
                a, b = find(owner[key]), find(index)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[key] = index
    groups: dict[int, list[Finding]] = {}
    for index, finding in enumerate(items):
        groups.setdefault(find(index), []).append(finding)

    result: list[Vulnerability] = []
    for members in groups.values():
        spelled: dict[str, str] = {}
        for f in members:
            for raw in (f.id, *sorted(f.aliases)):
                spelled.setdefault(normalize_id(raw), raw.strip())
        canonical_key = _canonical_id(spelled)
        result.append(
            Vulnerability(
                id=spelled[canonical_key],
                aliases=frozenset(v for k, v in spelled.items() if k != canonical_key),
                severity=max(f.severity for f in members),
                findings=tuple(members),
            )
        )
    result.sort(key=lambda v: (-int(v.severity), normalize_id(v.id)))
    return tuple(result)


def severity_counts(vulnerabilities: Iterable[Vulnerability]) -> Mapping[Severity, int]:
    """How many vulnerabilities have each severity (every severity present, zeros included)."""
    counts = dict.fromkeys(Severity, 0)
    for v in vulnerabilities:
        counts[v.severity] += 1
    return counts
