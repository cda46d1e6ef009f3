"""Trivy JSON (``trivy image --format json``), SchemaVersion 2.

Every ``Results[i].Vulnerabilities[j]`` is one finding; a result may have no
``Vulnerabilities`` key (a clean target, or one scanned for secrets only) and
the whole ``Results`` key may be missing (nothing found at all). An empty
``FixedVersion`` means no fix. ``Status`` maps to :class:`FixState`
(``will_not_fix`` → wont-fix; ``affected``/``fix_deferred``/``end_of_life`` →
not-fixed). Trivy gives no alias ids (``VendorIDs`` are distribution advisories
that cover several CVEs, so they are not aliases). The platform comes from
``Metadata.ImageConfig`` (``os``/``architecture``/``variant``); the image the
report is about from ``ArtifactName``, ``Metadata.RepoTags``/``RepoDigests`` and
``Metadata.ImageID``.
"""

from __future__ import annotations

from typing import Any

from acr_ci.scan.findings import Finding, FixState
from acr_ci.scan.reports.base import (
    ArtifactIdentity,
    Reader,
    Report,
    ReportFormat,
    platform_of,
    strings,
    text_or_empty,
)

_STATUS = {
    "fixed": FixState.FIXED,
    "affected": FixState.NOT_FIXED,
    "fix_deferred": FixState.NOT_FIXED,
    "end_of_life": FixState.NOT_FIXED,
    "will_not_fix": FixState.WONT_FIX,
}


class TrivyParser:
    format = ReportFormat.TRIVY

    def sniff(self, doc: Any) -> bool:
        return (
            isinstance(doc, dict)
            and "SchemaVersion" in doc
            and ("Results" in doc or "ArtifactName" in doc)
        )

    def parse(self, doc: Any, *, source: str, platform: str | None) -> Report:
        r = Reader(source, self.format)
        top = r.obj(doc, "$")
        version = top.get("SchemaVersion")
        if version != 2:
            raise r.fail(
                "$.SchemaVersion",
                f"is {version!r}; acr-ci reads SchemaVersion 2 (Trivy 0.20 and later)",
            )
        if platform is None:
            meta = top.get("Metadata")
            config = meta.get("ImageConfig") if isinstance(meta, dict) else None
            if isinstance(config, dict):
                platform = platform_of(
                    config.get("os"), config.get("architecture"), config.get("variant")
                )
        findings: list[Finding] = []
        targets: list[str] = []
        for i, result in enumerate(r.lst(top.get("Results"), "$.Results", optional=True)):
            rpath = f"$.Results[{i}]"
            res = r.obj(result, rpath)
            target = r.text(res.get("Target"), f"{rpath}.Target", optional=True)
            targets.append(target)
            for j, item in enumerate(
                r.lst(res.get("Vulnerabilities"), f"{rpath}.Vulnerabilities", optional=True)
            ):
                path = f"{rpath}.Vulnerabilities[{j}]"
                v = r.obj(item, path)
                fixed = r.text(v.get("FixedVersion"), f"{path}.FixedVersion", optional=True).strip()
                status = r.text(v.get("Status"), f"{path}.Status", optional=True)
                findings.append(
                    Finding(
                        id=r.required_text(v.get("VulnerabilityID"), f"{path}.VulnerabilityID"),
                        severity=r.severity(v.get("Severity"), f"{path}.Severity"),
                        package=r.required_text(v.get("PkgName"), f"{path}.PkgName"),
                        installed_version=r.text(
                            v.get("InstalledVersion"), f"{path}.InstalledVersion", optional=True
                        ),
                        fixed_version=fixed or None,
                        fix_state=_STATUS.get(status, FixState.UNKNOWN),
                        platform=platform,
                        title=r.text(v.get("Title"), f"{path}.Title", optional=True),
                        url=r.text(v.get("PrimaryURL"), f"{path}.PrimaryURL", optional=True)
                        or None,
                        description=r.text(
                            v.get("Description"), f"{path}.Description", optional=True
                        ),
                        target=target,
                        source=source,
                    )
                )
        artifact = top.get("ArtifactName")
        trivy = top.get("Trivy")
        scanner = "trivy"
        if isinstance(trivy, dict) and isinstance(trivy.get("Version"), str):
            scanner = f"trivy {trivy['Version']}"
        meta = top.get("Metadata")
        meta = meta if isinstance(meta, dict) else {}
        name = text_or_empty(artifact)
        identity = ArtifactIdentity(
            names=((name,) if name else ()) + strings(meta.get("RepoTags")),
            repo_digests=strings(meta.get("RepoDigests")),
            image_id=text_or_empty(meta.get("ImageID")),
        )
        return Report(
            format=self.format,
            findings=tuple(findings),
            platform=platform,
            artifact=artifact if isinstance(artifact, str) else "",
            scanner=scanner,
            targets=tuple(targets),
            identity=identity,
        )
