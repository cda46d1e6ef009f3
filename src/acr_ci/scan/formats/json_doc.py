"""``--output-json``: the context, every finding, the merged vulnerabilities, the
verdict and what the gate did, as one JSON document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from acr_ci.scan.findings import Finding
from acr_ci.scan.formats.interface import DocumentFormat, OutputFormat, ScanContext, iso_time
from acr_ci.scan.policy import Verdict


class JsonFormat(DocumentFormat):
    """acr-ci's own JSON document of a scan."""

    name = OutputFormat.JSON

    def render(
        self,
        ctx: ScanContext,
        findings: Sequence[Finding],
        verdict: Verdict,
        gate: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "image": ctx.image,
            "platforms": list(ctx.platforms),
            "scanner": ctx.scanner,
            "sources": list(ctx.sources),
            "started": iso_time(ctx.started),
            "finished": iso_time(ctx.finished),
            "enforced": ctx.enforced,
            "verdict": verdict.to_json(),
            "vulnerabilities": [v.to_json() for v in verdict.vulnerabilities],
            "findings": [f.to_json() for f in findings],
            "gate": dict(gate) if gate is not None else None,
        }
