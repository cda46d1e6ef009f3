"""The scan gate as one call: image → findings → verdict → outputs → gate.

:func:`run_scan` resolves a tag to its digest first and works on the digest
from then on. Findings come from report files, or from an engine run once per
platform manifest of a multi-arch index (attestation manifests skipped) and
merged. The verdict is written (summary to ``log``, the requested files), then
— blocked, in blocking mode — the gate backs up and/or deletes the image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO, assert_never

from acr_ci.config.model import ScanConfig, ScanMode
from acr_ci.config.model import ScanEngine as EngineChoice
from acr_ci.errors import AcrError, UsageError
from acr_ci.registry.client import Client
from acr_ci.registry.reference import Reference
from acr_ci.scan import outputs
from acr_ci.scan.engine import ScanEngine, ScanTarget
from acr_ci.scan.findings import Finding
from acr_ci.scan.gate import GateError, GateResult, enforce
from acr_ci.scan.grype import GrypeEngine
from acr_ci.scan.policy import Verdict, evaluate
from acr_ci.scan.reports import Report, ReportFormat, read_report, split_spec
from acr_ci.scan.trivy import TrivyEngine

ATTESTATION_ANNOTATION = "vnd.docker.reference.type"


@dataclass(frozen=True)
class ScanRequest:
    """Everything one ``acr-ci scan`` needs, already validated and merged from config and flags."""

    image: str | None
    """``IMAGE[:TAG][@DIGEST]`` as given; None only with report files (then no gate)."""
    config: ScanConfig
    """The effective scan settings (engine, reports, mode, policy, on_block)."""
    reports: tuple[str, ...] = ()
    """Report specs (``[PLATFORM=]PATH``); non-empty means ``engine: report``."""
    report_format: ReportFormat | None = None
    """The format of every report, None to auto-detect each."""
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    """The date allow-list expiry is checked against."""
    output_json: str | None = None
    gitlab_report: str | None = None
    sarif: str | None = None


@dataclass(frozen=True)
class ScanOutcome:
    """What a scan found and decided, and what the gate did."""

    image: Reference | None
    """The image scanned, by digest (None for reports without an image)."""
    findings: tuple[Finding, ...]
    verdict: Verdict
    context: outputs.ScanContext
    gate: GateResult | None = None
    """None unless the image was blocked in blocking mode."""

    @property
    def enforced_block(self) -> bool:
        """Blocked, and the mode says act on it (exit 3)."""
        return self.verdict.blocked and self.context.enforced


def engine_for(choice: EngineChoice) -> ScanEngine | None:
    """The engine of ``scan.engine`` (None for ``report``)."""
    if choice is EngineChoice.TRIVY:
        return TrivyEngine()
    if choice is EngineChoice.GRYPE:
        return GrypeEngine()
    if choice is EngineChoice.REPORT:
        return None
    assert_never(choice)


def resolve_image(client: Client, text: str) -> Reference:
    """``IMAGE[:TAG][@DIGEST]`` → a reference pinned to a digest (a tag is resolved now)."""
    ref = Reference.parse(text, what="image")
    if ref.digest:
        return ref
    return ref.with_digest(client.resolve(ref).digest)


def scan_targets(client: Client, image: Reference) -> list[ScanTarget]:
    """One target per platform manifest of ``image`` (itself when it is not an index)."""
    assert image.digest
    manifest = client.get_manifest(Reference(image.registry, image.repository, None, image.digest))
    transport = client.transport(image.api_host)
    insecure = transport.insecure
    plain_http = transport.base_url.startswith("http://")
    creds = transport.credentials
    name = f"{image.api_host}/{image.repository}"
    if not manifest.is_index:
        return [ScanTarget(f"{name}@{image.digest}", None, insecure, plain_http, creds)]
    targets: list[ScanTarget] = []
    for child in manifest.children():
        if child.annotations.get(ATTESTATION_ANNOTATION) == "attestation-manifest":
            continue
        if child.platform is not None and child.platform.os == "unknown":
            continue
        platform = str(child.platform) if child.platform else None
        targets.append(ScanTarget(f"{name}@{child.digest}", platform, insecure, plain_http, creds))
    if not targets:
        raise UsageError(f"{image}: the index lists no image manifest to scan")
    return targets


def read_reports(specs: Sequence[str], fmt: ReportFormat | None) -> list[Report]:
    reports: list[Report] = []
    for spec in specs:
        platform, path = split_spec(spec)
        reports.append(read_report(path, fmt, platform))
    return reports


def _warn_uncovered(
    client: Client, image: Reference, reports: Sequence[Report], log: TextIO
) -> None:
    """Say which platforms of ``image`` no report speaks for: their findings are not gated.

    Reports that name no platform cover everything (one report for the whole image).
    """
    covered = {r.platform for r in reports}
    if None in covered:
        return
    for target in scan_targets(client, image):
        if target.platform and target.platform not in covered:
            log.write(
                f"warning: no report covers {target.platform} of {image}: its vulnerabilities "
                f"are not gated (add a report: --report {target.platform}=FILE)\n"
            )


def run_scan(
    request: ScanRequest,
    *,
    client: Client | None,
    log: TextIO,
    engine: ScanEngine | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ScanOutcome:
    """Scan, decide, write outputs, and act on a block; see the module docstring.

    ``engine`` overrides the config's engine (tests pass stand-ins); ``client``
    may be None only for report files without an image.
    """
    started = clock()
    cfg = request.config
    image: Reference | None = None
    if request.image is not None:
        if client is None:
            raise UsageError("a registry client is needed to resolve the image")
        image = resolve_image(client, request.image)

    reports: list[Report]
    sources: list[str]
    scanner, scanner_version = "report", "unknown"
    if request.reports:
        reports = read_reports(request.reports, request.report_format)
        sources = [spec for spec in request.reports]
        if image is not None and client is not None:
            _warn_uncovered(client, image, reports, log)
        names = sorted({r.scanner for r in reports if r.scanner})
        if len(names) == 1:
            scanner, _, scanner_version = names[0].partition(" ")
            scanner_version = scanner_version or "unknown"
    else:
        chosen = engine or engine_for(cfg.engine)
        if chosen is None:
            raise UsageError(
                "engine: report needs report files (scan.report in the config, or --report FILE)"
            )
        if image is None or client is None:
            raise UsageError(f"engine {chosen.name} needs the image to scan (acr-ci scan IMAGE)")
        targets = scan_targets(client, image)
        reports = []
        sources = []
        for target in targets:
            log.write(
                f"scanning {target.reference}"
                + (f" ({target.platform})" if target.platform else "")
                + f" with {chosen.name}\n"
            )
            reports.append(chosen.scan(target))
            sources.append(f"{chosen.name} {target.reference}")
        scanner = chosen.name
        versions = sorted(
            {r.scanner.partition(" ")[2] for r in reports if r.scanner.partition(" ")[2]}
        )
        scanner_version = versions[0] if len(versions) == 1 else "unknown"

    findings = tuple(f for r in reports for f in r.findings)
    platforms = tuple(
        sorted(
            {r.platform for r in reports if r.platform}
            | {f.platform for f in findings if f.platform}
        )
    )
    verdict = evaluate(findings, cfg.block, request.today)
    enforced = cfg.mode is ScanMode.BLOCKING
    ctx = outputs.ScanContext(
        image=str(image)
        if image
        else (reports[0].artifact if reports and reports[0].artifact else "unknown"),
        platforms=platforms,
        scanner=scanner,
        scanner_version=scanner_version,
        sources=tuple(sources),
        started=started,
        finished=clock(),
        enforced=enforced,
    )
    log.write(outputs.summary(ctx, findings, verdict))

    gate: GateResult | None = None
    gate_error: GateError | None = None
    if verdict.blocked and enforced and (cfg.on_block.backup or cfg.on_block.delete):
        if image is None or client is None:
            log.write(
                "on_block is configured but no image was named: nothing to back up or delete\n"
            )
        else:
            try:
                gate = enforce(client, image, cfg.on_block)
                log.write(f"gate: {gate.describe()}\n")
            except GateError as e:
                gate_error = e
    gate_json: dict[str, Any] | None = gate.to_json() if gate else None
    if gate_error is not None:
        gate_json = {"error": gate_error.message, "deleted": False}

    _write_outputs(request, ctx, findings, verdict, gate_json)
    if gate_error is not None:
        raise gate_error
    return ScanOutcome(image, findings, verdict, ctx, gate)


def _write_outputs(
    request: ScanRequest,
    ctx: outputs.ScanContext,
    findings: Sequence[Finding],
    verdict: Verdict,
    gate: dict[str, Any] | None,
) -> None:
    errors: list[AcrError] = []
    jobs: list[tuple[str | None, str, Callable[[], dict[str, Any]]]] = [
        (
            request.output_json,
            "--output-json",
            lambda: outputs.json_document(ctx, findings, verdict, gate),
        ),
        (
            request.gitlab_report,
            "--gitlab-report",
            lambda: outputs.gitlab_report(ctx, findings, verdict),
        ),
        (request.sarif, "--sarif", lambda: outputs.sarif_log(ctx, findings, verdict)),
    ]
    for path, flag, build in jobs:
        if path:
            try:
                outputs.write_json(Path(path), build(), what=flag)
            except AcrError as e:
                errors.append(e)
    if errors:
        raise errors[0]
