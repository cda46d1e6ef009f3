"""The scan gate as one call: image → findings → verdict → outputs → gate.

:func:`run_scan` resolves a tag to its digest first and works on the digest
from then on, then runs four steps, one function each:

* :func:`scan`: findings from report files, or from an engine run once per
  platform manifest of a multi-arch index (attestation manifests skipped);
* the verdict: :func:`~acr_ci.scan.policy.evaluate` of the merged findings;
* the outputs: the summary table to ``log`` first, the requested files
  (:func:`write_outputs`, through :func:`~acr_ci.scan.formats.format_for`)
  once the gate has run, since ``--output-json`` records what the gate did;
* :func:`gate`: blocked, in blocking mode, the image is backed up and/or deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TextIO, assert_never

from acr_ci.config.model import ScanConfig, ScanMode
from acr_ci.config.model import ScanEngine as EngineChoice
from acr_ci.errors import AcrError, UsageError
from acr_ci.registry.client import Client
from acr_ci.registry.reference import Reference
from acr_ci.scan.engine import ScanEngine, ScanTarget
from acr_ci.scan.findings import Finding, ReportError
from acr_ci.scan.formats import OutputFormat, ScanContext, format_for
from acr_ci.scan.gate import GateError, GateResult, enforce
from acr_ci.scan.grype import GrypeEngine
from acr_ci.scan.identity import Match, image_facts, match
from acr_ci.scan.policy import Verdict, evaluate
from acr_ci.scan.reports import Report, ReportFormat, read_report, split_spec
from acr_ci.scan.trivy import TrivyEngine

ATTESTATION_ANNOTATION = "vnd.docker.reference.type"


@dataclass(frozen=True)
class ScanRequest:
    """Everything one ``acr-ci scan`` needs, already validated and merged from config and flags."""

    image: Reference | None
    """The image (by tag, or pinned to a digest); None only with report files (then no gate)."""
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
    allow_report_mismatch: bool = False
    """Gate on report files that say they are about another image (warned, not refused)."""


@dataclass(frozen=True)
class ScanOutcome:
    """What a scan found and decided, and what the gate did."""

    image: Reference | None
    """The image scanned, by digest (None for reports without an image)."""
    findings: tuple[Finding, ...]
    verdict: Verdict
    context: ScanContext
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


def resolve_image(client: Client, ref: Reference) -> Reference:
    """``ref`` pinned to a digest (a tag is resolved now)."""
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


def _check_identity(
    client: Client, image: Reference, request: ScanRequest, reports: Sequence[Report], log: TextIO
) -> None:
    """Refuse report files about another image (see :mod:`acr_ci.scan.identity`); warn about
    those that cannot be matched, and about mismatches ``--allow-report-mismatch`` lets through."""
    facts = image_facts(client, image)
    refused: list[str] = []
    for spec, report in zip(request.reports, reports, strict=True):
        path = split_spec(spec)[1]
        found = match(report.identity, facts)
        if found.match is Match.UNKNOWN:
            log.write(
                f"warning: {path} names no image digest or image ID to match with {image}: "
                "it is taken to be about that image\n"
            )
        elif found.match is Match.CONTRADICTS:
            if request.allow_report_mismatch:
                log.write(
                    f"warning: {path} is about another image ({found.reason}); "
                    "gated on anyway (--allow-report-mismatch)\n"
                )
            else:
                refused.append(f"{path}: {found.reason}")
    if refused:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise ReportError(
            f"report about another image than {image}: {refused[0]}{more}",
            hint="give the report of this image (scan it by digest), or pass "
            "--allow-report-mismatch to gate on it anyway",
        )


@dataclass(frozen=True)
class Scanned:
    """What the scan step gives: the reports read or made, and who made them."""

    reports: tuple[Report, ...]
    sources: tuple[str, ...]
    """The report specs read, or ``ENGINE REFERENCE`` per engine run."""
    scanner: str
    """The engine's name, the one scanner every report names, else ``report``."""
    scanner_version: str
    """Its version when one is known, else ``unknown``."""

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding of every report, in report order."""
        return tuple(f for r in self.reports for f in r.findings)

    def context(
        self, image: Reference | None, *, started: datetime, finished: datetime, enforced: bool
    ) -> ScanContext:
        """The outputs' context of this scan of ``image``."""
        findings = self.findings
        platforms = {r.platform for r in self.reports if r.platform}
        platforms |= {f.platform for f in findings if f.platform}
        first = self.reports[0].artifact if self.reports else ""
        return ScanContext(
            image=str(image) if image else (first or "unknown"),
            platforms=tuple(sorted(platforms)),
            scanner=self.scanner,
            scanner_version=self.scanner_version,
            sources=self.sources,
            started=started,
            finished=finished,
            enforced=enforced,
        )


@dataclass(frozen=True)
class GateStep:
    """What the gate step did: its result, or the error it failed with (or neither)."""

    result: GateResult | None = None
    error: GateError | None = None

    def to_json(self) -> dict[str, Any] | None:
        """The ``gate`` of ``--output-json``: None when the gate did not run."""
        if self.error is not None:
            return {"error": self.error.message, "deleted": False}
        return self.result.to_json() if self.result else None


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
    may be None only for report files without an image. A failed gate raises its
    :class:`GateError` after the outputs are written.
    """
    started = clock()
    image: Reference | None = None
    if request.image is not None:
        if client is None:
            raise UsageError("a registry client is needed to resolve the image")
        image = resolve_image(client, request.image)
    scanned = scan(request, image, client=client, log=log, engine=engine)
    findings = scanned.findings
    verdict = evaluate(findings, request.config.block, request.today)
    enforced = request.config.mode is ScanMode.BLOCKING
    ctx = scanned.context(image, started=started, finished=clock(), enforced=enforced)
    log.write(format_for(OutputFormat.TABLE).render(ctx, findings, verdict))
    done = gate(request.config, verdict, image, client=client, log=log)
    write_outputs(request, ctx, findings, verdict, done.to_json())
    if done.error is not None:
        raise done.error
    return ScanOutcome(image, findings, verdict, ctx, done.result)


def scan(
    request: ScanRequest,
    image: Reference | None,
    *,
    client: Client | None,
    log: TextIO,
    engine: ScanEngine | None = None,
) -> Scanned:
    """The scan step: the request's report files, else one engine run per platform."""
    if request.reports:
        return _read(request, image, client=client, log=log)
    chosen = engine or engine_for(request.config.engine)
    if chosen is None:
        raise UsageError(
            "engine: report needs report files (scan.report in the config, or --report FILE)"
        )
    if image is None or client is None:
        raise UsageError(f"engine {chosen.name} needs the image to scan (acr-ci scan IMAGE)")
    return _run_engine(chosen, image, client=client, log=log)


def _read(
    request: ScanRequest, image: Reference | None, *, client: Client | None, log: TextIO
) -> Scanned:
    reports = read_reports(request.reports, request.report_format)
    if image is not None and client is not None:
        _check_identity(client, image, request, reports, log)
        _warn_uncovered(client, image, reports, log)
    scanner, scanner_version = "report", "unknown"
    names = sorted({r.scanner for r in reports if r.scanner})
    if len(names) == 1:
        scanner, _, scanner_version = names[0].partition(" ")
        scanner_version = scanner_version or "unknown"
    return Scanned(tuple(reports), tuple(request.reports), scanner, scanner_version)


def _run_engine(engine: ScanEngine, image: Reference, *, client: Client, log: TextIO) -> Scanned:
    reports: list[Report] = []
    sources: list[str] = []
    for target in scan_targets(client, image):
        log.write(
            f"scanning {target.reference}"
            + (f" ({target.platform})" if target.platform else "")
            + f" with {engine.name}\n"
        )
        reports.append(engine.scan(target))
        sources.append(f"{engine.name} {target.reference}")
    versions = sorted({r.scanner.partition(" ")[2] for r in reports} - {""})
    version = versions[0] if len(versions) == 1 else "unknown"
    return Scanned(tuple(reports), tuple(sources), engine.name, version)


def gate(
    cfg: ScanConfig,
    verdict: Verdict,
    image: Reference | None,
    *,
    client: Client | None,
    log: TextIO,
) -> GateStep:
    """The gate step: blocked in blocking mode with ``on_block`` set, back up and/or delete.

    A :class:`GateError` is returned, not raised, so the outputs still get written.
    """
    if not (verdict.blocked and cfg.mode is ScanMode.BLOCKING):
        return GateStep()
    if not (cfg.on_block.backup or cfg.on_block.delete):
        return GateStep()
    if image is None or client is None:
        log.write("on_block is configured but no image was named: nothing to back up or delete\n")
        return GateStep()
    try:
        result = enforce(client, image, cfg.on_block)
    except GateError as e:
        return GateStep(error=e)
    log.write(f"gate: {result.describe()}\n")
    return GateStep(result=result)


def requested_files(request: ScanRequest) -> tuple[tuple[OutputFormat, str, str], ...]:
    """The files ``request`` asks for, in writing order: (format, path, the flag naming it)."""
    files = (
        (OutputFormat.JSON, request.output_json, "--output-json"),
        (OutputFormat.GITLAB, request.gitlab_report, "--gitlab-report"),
        (OutputFormat.SARIF, request.sarif, "--sarif"),
    )
    return tuple((choice, path, flag) for choice, path, flag in files if path)


def write_outputs(
    request: ScanRequest,
    ctx: ScanContext,
    findings: Sequence[Finding],
    verdict: Verdict,
    gate_json: dict[str, Any] | None,
) -> None:
    """The outputs step's files: each one requested, all attempted; the first failure raised."""
    errors: list[AcrError] = []
    for choice, path, flag in requested_files(request):
        try:
            format_for(choice).save(path, ctx, findings, verdict, gate_json, what=flag)
        except AcrError as e:
            errors.append(e)
    if errors:
        raise errors[0]
