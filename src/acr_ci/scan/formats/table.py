"""The human summary a scan writes to the log (stderr): counts by severity, the
verdict, the vulnerabilities that fired it, and what the allow-list did."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from acr_ci.config.model import Severity
from acr_ci.scan.findings import Finding, Vulnerability
from acr_ci.scan.formats.interface import OutputFormat, ScanContext, TextFormat
from acr_ci.scan.policy import Verdict


@dataclass(frozen=True)
class TableFormat(TextFormat):
    """The summary table; at most ``limit`` blocking vulnerabilities are listed."""

    name = OutputFormat.TABLE
    limit: int = 20
    """How many blocking vulnerabilities to list (the rest are counted)."""

    def render(
        self,
        ctx: ScanContext,
        findings: Sequence[Finding],
        verdict: Verdict,
        gate: Mapping[str, Any] | None = None,
    ) -> str:
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
        out.append(
            "  (vulnerabilities: findings merged by id and aliases; the policy counts these)"
        )
        word = "BLOCKED" if verdict.blocked else "PASSED"
        out.append(f"{word}: {verdict.reason.split(': ', 1)[1]}")
        if verdict.blocked:
            shown = verdict.blocking_vulnerabilities
            for v in shown[: self.limit]:
                out.append("  " + _vuln_line(v))
            if len(shown) > self.limit:
                out.append(f"  … and {len(shown) - self.limit} more (see --output-json)")
        if verdict.ignored_unfixed:
            out.append(
                f"ignored {verdict.ignored_unfixed} finding(s) without a fixed version "
                "(ignore_unfixed)"
            )
        for use in verdict.allowed:
            until = f" until {use.entry.until.isoformat()}" if use.entry.until else ""
            what = ", ".join(use.vulnerabilities) if use.vulnerabilities else "nothing found"
            out.append(f"allowed {use.entry.id}{until} ({use.entry.reason}): {what}")
        for entry in verdict.expired:
            assert entry.until is not None
            out.append(
                f"EXPIRED allow entry {entry.id} (until {entry.until.isoformat()}, "
                f"{entry.reason}): it no longer allows anything; renew or remove it"
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
