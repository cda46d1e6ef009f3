"""The effective scan settings of one scan: the config's ``scan:`` section, overridden.

Where the policy comes from (the ``acr-ci scan`` contract, shown in its ``--help``):

* the config's ``scan:`` section gives the engine, reports, mode, policy and on_block;
* :class:`ScanOverrides` (the ``scan`` command's flags) replace single fields of it:
  engine, report files, severity, count, the id list, logic, ignore_unfixed, mode;
* with no ``scan:`` section, the policy is the overrides alone and a severity or an id
  list is required: a gate without a rule would pass everything silently, so acr-ci
  refuses (exit 2) instead of guessing a default.

Report paths from the config are relative to the config file's folder
(:func:`resolve_report_specs`, which the chain uses too); report paths given as
overrides are relative to the working directory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from acr_ci.config.model import (
    BlockLogic,
    BlockPolicy,
    Config,
    ScanConfig,
    ScanEngine,
    ScanMode,
    Severity,
)
from acr_ci.errors import UsageError


@dataclass(frozen=True)
class ScanOverrides:
    """Single fields that replace the config's (``None``/empty: keep the config's)."""

    engine: ScanEngine | None = None
    reports: tuple[str, ...] = ()
    """``[PLATFORM=]FILE`` report specs; non-empty means ``engine: report``."""
    severity: str | None = None
    count: int | None = None
    fail_on: tuple[str, ...] = ()
    """Replaces the config's id list when non-empty."""
    logic: BlockLogic | None = None
    ignore_unfixed: bool = False
    non_blocking: bool = False
    allow_report_mismatch: bool = False
    """Gate on report files about another image (``--allow-report-mismatch``)."""


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except KeyError:
        raise UsageError(
            f"--severity {text!r} is not a severity", "use low, medium, high or critical"
        ) from None


def effective_scan_config(over: ScanOverrides, cfg: Config | None) -> ScanConfig:
    """The config's ``scan:`` section with ``over`` applied on top."""
    base = cfg.scan if cfg is not None else None
    has_rule = over.severity is not None or bool(over.fail_on)
    if base is None and not has_rule:
        where = f"{cfg.path} has no scan: section" if cfg is not None else "no config file"
        raise UsageError(
            f"no scan policy: {where} and neither --severity nor --fail-on was given",
            "add a scan: section to the config, or pass e.g. --severity high (and/or --fail-on CVE-…)",
        )
    scan = base or ScanConfig(engine=ScanEngine.REPORT if over.reports else ScanEngine.TRIVY)
    block = scan.block if base is not None else BlockPolicy()
    if over.severity is not None:
        block = dataclasses.replace(block, severity=_severity(over.severity))
    if over.count is not None:
        if over.count < 1:
            raise UsageError(f"--count {over.count} is not valid", "use 1 or more")
        block = dataclasses.replace(block, count=over.count)
    if over.fail_on:
        block = dataclasses.replace(block, vulnerabilities=tuple(over.fail_on))
    if over.logic is not None:
        block = dataclasses.replace(block, logic=over.logic)
    if over.ignore_unfixed:
        block = dataclasses.replace(block, ignore_unfixed=True)
    scan = dataclasses.replace(scan, block=block)
    if over.engine is not None:
        scan = dataclasses.replace(scan, engine=over.engine)
    if over.reports:
        scan = dataclasses.replace(scan, engine=ScanEngine.REPORT)
    if over.non_blocking:
        scan = dataclasses.replace(scan, mode=ScanMode.NON_BLOCKING)
    return scan


def resolve_report_specs(specs: Sequence[str], base: Path) -> tuple[str, ...]:
    """Report specs (``[PLATFORM=]PATH``) with relative paths made relative to ``base``."""
    from acr_ci.scan.reports import split_spec

    out: list[str] = []
    for spec in specs:
        platform, path = split_spec(spec)
        full = str(path if Path(path).is_absolute() else base / path)
        out.append(f"{platform}={full}" if platform else full)
    return tuple(out)


def report_specs(over: ScanOverrides, cfg: Config | None, scan: ScanConfig) -> tuple[str, ...]:
    """The report files this scan reads: the overrides', else the config's (resolved)."""
    if over.reports:
        return over.reports
    if scan.engine is not ScanEngine.REPORT:
        return ()
    if not scan.report:
        raise UsageError(
            "engine: report needs report files: set scan.report in the config or pass --report FILE"
        )
    return resolve_report_specs(
        scan.report, Path(cfg.path).parent if cfg is not None else Path(".")
    )
