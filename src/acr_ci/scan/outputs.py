"""What the scan gate writes: a human summary, a JSON document, a GitLab
container-scanning report (schema 15.2.4) and a SARIF 2.1.0 log.

Writers build plain JSON values (dicts) from the findings and the verdict;
:func:`write_json` puts one on disk. Nothing here reads a clock: times come in.

Mappings:

* GitLab: one ``vulnerabilities[]`` entry per finding (id × package × platform),
  ``id`` a UUID derived from image, platform, id, package and version (stable
  across runs); identifiers are the finding's id and aliases (``cve``, ``ghsa``,
  else the id's prefix as type); severity negligible → ``Info``, unknown →
  ``Unknown``; ``solution`` ``Upgrade PACKAGE to VERSION`` when a fix is known;
  ``location.operating_system`` is what the scanner named (else ``unknown``) plus
  the platform, so the same package on two platforms stays two entries.
  ``scan.messages`` carries the verdict.
* SARIF: one rule per vulnerability (merged; rule id = its canonical id, aliases
  in ``properties.aliases``), one result per finding; ``security-severity`` is the
  lower bound of the severity's band (critical 9.0, high 7.0, medium 4.0, low 0.1,
  negligible 0.0; none for unknown) so acr-ci reads its own SARIF back unchanged;
  ``level`` error for critical/high, warning for medium and unknown, note below.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from acr_ci import __version__, fileio
from acr_ci.config.model import Severity
from acr_ci.errors import OutputError as OutputError  # raised by write_json
from acr_ci.scan.findings import Finding, Vulnerability, normalize_id
from acr_ci.scan.policy import Verdict

GITLAB_SCHEMA_VERSION = "15.2.4"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://github.com/acr-ci/acr-ci"
_UUID_NAMESPACE = uuid.UUID("6f0a4c1e-8d43-5d7b-9a55-3c1f0e2b7d11")

_GITLAB_SEVERITY = {
    Severity.UNKNOWN: "Unknown",
    Severity.NEGLIGIBLE: "Info",
    Severity.LOW: "Low",
    Severity.MEDIUM: "Medium",
    Severity.HIGH: "High",
    Severity.CRITICAL: "Critical",
}
_SARIF_SCORE = {
    Severity.NEGLIGIBLE: "0.0",
    Severity.LOW: "0.1",
    Severity.MEDIUM: "4.0",
    Severity.HIGH: "7.0",
    Severity.CRITICAL: "9.0",
}
_SARIF_LEVEL = {
    Severity.UNKNOWN: "warning",
    Severity.NEGLIGIBLE: "note",
    Severity.LOW: "note",
    Severity.MEDIUM: "warning",
    Severity.HIGH: "error",
    Severity.CRITICAL: "error",
}
_URL_RE = re.compile(r"(https?|ftp)://.+")


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


# --- human summary ------------------------------------------------------------------------


def summary(
    ctx: ScanContext, findings: Sequence[Finding], verdict: Verdict, *, limit: int = 20
) -> str:
    """The human summary (for stderr): counts by severity, the verdict, what fired it."""
    out: list[str] = []
    plat = f" ({', '.join(ctx.platforms)})" if ctx.platforms else ""
    out.append(f"scan of {ctx.image}{plat} by {ctx.scanner}")
    by_finding = dict.fromkeys(Severity, 0)
    for f in findings:
        by_finding[f.severity] += 1
    counts = verdict.counts
    out.append(f"  {'severity':<11} {'vulnerabilities':>15} {'findings':>9}")
    for sev in sorted(Severity, reverse=True):
        out.append(f"  {sev!s:<11} {counts[sev]:>15} {by_finding[sev]:>9}")
    out.append(f"  {'total':<11} {len(verdict.vulnerabilities):>15} {len(findings):>9}")
    out.append("  (vulnerabilities: findings merged by id and aliases; the policy counts these)")
    word = "BLOCKED" if verdict.blocked else "PASSED"
    out.append(f"{word}: {verdict.reason.split(': ', 1)[1]}")
    if verdict.blocked:
        shown = verdict.blocking_vulnerabilities
        for v in shown[:limit]:
            out.append("  " + _vuln_line(v))
        if len(shown) > limit:
            out.append(f"  … and {len(shown) - limit} more (see --output-json)")
    if verdict.ignored_unfixed:
        out.append(
            f"ignored {verdict.ignored_unfixed} finding(s) without a fixed version (ignore_unfixed)"
        )
    for use in verdict.allowed:
        until = f" until {use.entry.until.isoformat()}" if use.entry.until else ""
        what = ", ".join(use.vulnerabilities) if use.vulnerabilities else "nothing found"
        out.append(f"allowed {use.entry.id}{until} ({use.entry.reason}): {what}")
    for entry in verdict.expired:
        assert entry.until is not None
        out.append(
            f"EXPIRED allow entry {entry.id} (until {entry.until.isoformat()}, {entry.reason}): "
            "it no longer allows anything; renew or remove it"
        )
    if verdict.blocked and not ctx.enforced:
        out.append("mode non-blocking: the verdict is recorded, the image is not blocked")
    return "\n".join(out) + "\n"


def _vuln_line(v: Vulnerability) -> str:
    aliases = f" ({', '.join(sorted(v.aliases))})" if v.aliases else ""
    fixes = sorted({f.fixed_version for f in v.findings if f.fixed_version})
    fix = f"fixed in {', '.join(fixes)}" if fixes else "no fix"
    plats = f" [{', '.join(v.platforms)}]" if v.platforms else ""
    title = f" {v.title}" if v.title else ""
    return f"{v.id}{aliases} {v.severity}: {', '.join(v.packages)}; {fix}{plats}{title}"


# --- JSON --------------------------------------------------------------------------------


def json_document(
    ctx: ScanContext,
    findings: Sequence[Finding],
    verdict: Verdict,
    gate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``--output-json``: the context, every finding, the merged vulnerabilities and the verdict."""
    return {
        "image": ctx.image,
        "platforms": list(ctx.platforms),
        "scanner": ctx.scanner,
        "sources": list(ctx.sources),
        "started": _iso(ctx.started),
        "finished": _iso(ctx.finished),
        "enforced": ctx.enforced,
        "verdict": verdict.to_json(),
        "vulnerabilities": [v.to_json() for v in verdict.vulnerabilities],
        "findings": [f.to_json() for f in findings],
        "gate": gate,
    }


# --- GitLab ------------------------------------------------------------------------------


def _identifier(value: str, url: str | None) -> dict[str, str]:
    key = normalize_id(value)
    if key.startswith("CVE-"):
        kind = "cve"
    elif key.startswith("GHSA-"):
        kind = "ghsa"
    else:
        prefix = key.split("-", 1)[0].lower()
        kind = prefix if prefix.isalnum() and prefix != key.lower() else "other"
    ident = {"type": kind, "name": value, "value": value}
    if url and _URL_RE.fullmatch(url):
        ident["url"] = url
    return ident


def _operating_system(f: Finding) -> str:
    m = re.search(r"\(([^()]+)\)\s*$", f.target)
    os_name = m.group(1) if m else (f.target if f.target and "/" not in f.target else "")
    os_name = os_name or "unknown"
    return f"{os_name} ({f.platform})" if f.platform else os_name


def gitlab_report(
    ctx: ScanContext, findings: Sequence[Finding], verdict: Verdict
) -> dict[str, Any]:
    """A GitLab ``container_scanning`` report (schema 15.2.4)."""
    vulns: list[dict[str, Any]] = []
    canonical = {f: v for v in verdict.vulnerabilities for f in v.findings}
    seen: set[str] = set()
    for f in findings:
        merged = canonical.get(f)
        key = "\x00".join((ctx.image, f.platform or "", f.id, f.package, f.installed_version))
        vid = str(uuid.uuid5(_UUID_NAMESPACE, key))
        if vid in seen:  # the same row twice (two reports of one platform): once is enough
            continue
        seen.add(vid)
        spellings = (merged.id, *sorted(merged.aliases)) if merged else tuple(sorted(f.aliases))
        identifiers = [_identifier(f.id, f.url)] + [
            _identifier(x, None) for x in spellings if normalize_id(x) != normalize_id(f.id)
        ]
        entry: dict[str, Any] = {
            "id": vid,
            "severity": _GITLAB_SEVERITY[f.severity],
            "identifiers": identifiers,
            "links": [{"url": f.url}] if f.url and _URL_RE.fullmatch(f.url) else [],
            "location": {
                "dependency": {
                    "package": {"name": f.package or "unknown"},
                    "version": f.installed_version,
                },
                "operating_system": _operating_system(f),
                "image": ctx.image or "unknown",
            },
        }
        name = (f.title or f.id)[:255]
        entry["name"] = name
        if f.description:
            entry["description"] = f.description[:1_048_576]
        if f.fixed_version:
            entry["solution"] = f"Upgrade {f.package} to {f.fixed_version}"
        vulns.append(entry)
    messages = [{"level": "info", "value": f"acr-ci scan gate: {verdict.reason}"}]
    messages += [
        {
            "level": "warn",
            "value": f"allow-list entry {e.id} expired on {e.until.isoformat() if e.until else '?'}",
        }
        for e in verdict.expired
    ]
    return {
        "version": GITLAB_SCHEMA_VERSION,
        "scan": {
            "analyzer": {
                "id": "acr-ci",
                "name": "acr-ci scan gate",
                "url": INFORMATION_URI,
                "vendor": {"name": "acr-ci"},
                "version": __version__,
            },
            "scanner": {
                "id": re.sub(r"[^a-z0-9_-]+", "-", ctx.scanner.lower()) or "report",
                "name": ctx.scanner or "report",
                "vendor": {"name": ctx.scanner or "report"},
                "version": ctx.scanner_version or "unknown",
            },
            "type": "container_scanning",
            "start_time": _gitlab_time(ctx.started),
            "end_time": _gitlab_time(ctx.finished),
            "status": "success",
            "messages": messages,
        },
        "vulnerabilities": vulns,
        "remediations": [],
    }


# --- SARIF -------------------------------------------------------------------------------


def sarif_log(ctx: ScanContext, findings: Sequence[Finding], verdict: Verdict) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one rule per vulnerability, one result per finding."""
    rules: list[dict[str, Any]] = []
    index: dict[Finding, int] = {}
    for n, v in enumerate(verdict.vulnerabilities):
        props: dict[str, Any] = {
            "tags": ["vulnerability", "security", str(v.severity).upper()],
            "severity": str(v.severity),
            "aliases": sorted(v.aliases),
        }
        if v.severity in _SARIF_SCORE:
            props["security-severity"] = _SARIF_SCORE[v.severity]
        rule: dict[str, Any] = {
            "id": v.id,
            "name": "ContainerImageVulnerability",
            "shortDescription": {"text": v.title or v.id},
            "defaultConfiguration": {"level": _SARIF_LEVEL[v.severity]},
            "help": {"text": _help_text(v)},
            "properties": props,
        }
        description = next((f.description for f in v.findings if f.description), "")
        if description:
            rule["fullDescription"] = {"text": description}
        if v.url:
            rule["helpUri"] = v.url
        rules.append(rule)
        for f in v.findings:
            index[f] = n
    blocking = {v.id for v in verdict.blocking_vulnerabilities}
    results: list[dict[str, Any]] = []
    for f in findings:
        n = index[f]
        v = verdict.vulnerabilities[n]
        props = {
            "package": f.package,
            "installedVersion": f.installed_version,
            "fixedVersion": f.fixed_version or "",
            "platform": f.platform or "",
            "severity": str(f.severity),
            "aliases": sorted({f.id, *f.aliases} - {v.id}),
            "blocking": v.id in blocking,
        }
        if f.severity in _SARIF_SCORE:
            props["security-severity"] = _SARIF_SCORE[f.severity]
        uri = quote(f.target or ctx.image.split("/", 1)[-1].split("@", 1)[0] or "image", safe="/")
        results.append(
            {
                "ruleId": v.id,
                "ruleIndex": n,
                "level": _SARIF_LEVEL[f.severity],
                "message": {"text": _message(f, v)},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": uri},
                            "region": {
                                "startLine": 1,
                                "startColumn": 1,
                                "endLine": 1,
                                "endColumn": 1,
                            },
                        },
                        "message": {
                            "text": f"{f.platform or 'image'}: {f.package}@{f.installed_version}"
                        },
                    }
                ],
                "properties": props,
            }
        )
    return {
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "acr-ci",
                        "fullName": f"acr-ci scan gate ({ctx.scanner})",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "startTimeUtc": _iso(ctx.started),
                        "endTimeUtc": _iso(ctx.finished),
                    }
                ],
                "results": results,
                "properties": {
                    "image": ctx.image,
                    "platforms": list(ctx.platforms),
                    "verdict": verdict.reason,
                    "blocked": verdict.blocked,
                },
            }
        ],
    }


def _help_text(v: Vulnerability) -> str:
    return f"Vulnerability {v.id}\nSeverity: {str(v.severity).upper()}\nPackages: {', '.join(v.packages)}"


def _message(f: Finding, v: Vulnerability) -> str:
    lines = [
        f"Package: {f.package}",
        f"Installed Version: {f.installed_version}",
        f"Vulnerability {v.id}" + (f" (reported as {f.id})" if f.id != v.id else ""),
        f"Severity: {str(f.severity).upper()}",
        f"Fixed Version: {f.fixed_version or ''}",
    ]
    if f.platform:
        lines.append(f"Platform: {f.platform}")
    return "\n".join(lines)


# --- files -------------------------------------------------------------------------------


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _gitlab_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def write_json(path: str | Path, doc: dict[str, Any], *, what: str) -> None:
    """Write ``doc`` to ``path`` atomically; ``what`` names the flag in errors."""
    fileio.write_json(path, doc, what=what)
