"""``--sarif``: a SARIF 2.1.0 log.

One rule per vulnerability (merged; rule id = its canonical id, aliases in
``properties.aliases``), one result per finding; ``security-severity`` is the
lower bound of the severity's band (critical 9.0, high 7.0, medium 4.0, low 0.1,
negligible 0.0; none for unknown) so acr-ci reads its own SARIF back unchanged;
``level`` error for critical/high, warning for medium and unknown, note below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from acr_ci import __version__
from acr_ci.config.model import Severity
from acr_ci.scan.findings import Finding, Vulnerability
from acr_ci.scan.formats.interface import (
    INFORMATION_URI,
    DocumentFormat,
    OutputFormat,
    ScanContext,
    iso_time,
)
from acr_ci.scan.policy import Verdict

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
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


class SarifFormat(DocumentFormat):
    """A SARIF 2.1.0 log: one rule per vulnerability, one result per finding."""

    name = OutputFormat.SARIF

    def render(
        self,
        ctx: ScanContext,
        findings: Sequence[Finding],
        verdict: Verdict,
        gate: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        rules: list[dict[str, Any]] = []
        index: dict[Finding, int] = {}
        for n, v in enumerate(verdict.vulnerabilities):
            rules.append(_rule(v))
            for f in v.findings:
                index[f] = n
        blocking = {v.id for v in verdict.blocking_vulnerabilities}
        results: list[dict[str, Any]] = []
        for f in findings:
            n = index[f]
            results.append(_result(ctx, f, verdict.vulnerabilities[n], n, blocking))
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
                            "startTimeUtc": iso_time(ctx.started),
                            "endTimeUtc": iso_time(ctx.finished),
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


def _rule(v: Vulnerability) -> dict[str, Any]:
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
    return rule


def _result(
    ctx: ScanContext, f: Finding, v: Vulnerability, n: int, blocking: set[str]
) -> dict[str, Any]:
    """The result of finding ``f``, of vulnerability ``v`` (rule ``n``)."""
    props: dict[str, Any] = {
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
    return {
        "ruleId": v.id,
        "ruleIndex": n,
        "level": _SARIF_LEVEL[f.severity],
        "message": {"text": _message(f, v)},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1},
                },
                "message": {"text": f"{f.platform or 'image'}: {f.package}@{f.installed_version}"},
            }
        ],
        "properties": props,
    }


def _help_text(v: Vulnerability) -> str:
    return (
        f"Vulnerability {v.id}\nSeverity: {str(v.severity).upper()}\n"
        f"Packages: {', '.join(v.packages)}"
    )


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
