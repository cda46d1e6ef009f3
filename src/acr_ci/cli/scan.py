"""``acr-ci scan``: scan an image (or read scanner reports) and apply the scan gate.

Flags become :class:`~acr_ci.scan.settings.ScanOverrides` over the config's ``scan:``
section (see :mod:`acr_ci.scan.settings` for where the policy comes from), then one
:func:`~acr_ci.scan.service.run_scan`; exit 3 when the image was blocked in blocking mode.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from acr_ci.cli.common import Command, add_config_flag, add_registry_flags, registry_access
from acr_ci.config.model import BlockLogic, Config, ScanEngine
from acr_ci.errors import EXIT_BLOCKED, EXIT_OK, UsageError
from acr_ci.registry.access import RegistryAccess
from acr_ci.scan.settings import ScanOverrides

REPORT_FORMATS = ("trivy", "grype", "gitlab", "sarif")
"""``--report-format`` choices (the values of ``ReportFormat``; spelled out so ``--help`` stays light)."""


@dataclass(frozen=True)
class ScanOptions:
    image: str | None = None
    """``IMAGE[:TAG|@DIGEST]``; optional with report files."""
    config: str | None = None
    overrides: ScanOverrides = field(default_factory=ScanOverrides)
    report_format: str | None = None
    today: date | None = None
    """Allow-list expiry is checked as of this date (None: today, UTC)."""
    output_json: str | None = None
    gitlab_report: str | None = None
    sarif: str | None = None
    access: RegistryAccess = field(default_factory=RegistryAccess)


def _load_config(path: str | None) -> Config | None:
    """The config, or None when none was named and the default file does not exist."""
    from acr_ci import config as config_mod

    if path is None and not Path(config_mod.resolve_path(None)).exists():
        return None
    return config_mod.load(path)


def execute(opts: ScanOptions) -> int:
    from acr_ci.cli.common import config_client
    from acr_ci.registry.access import hosts_of, open_client
    from acr_ci.registry.client import Client
    from acr_ci.scan.reports import ReportFormat
    from acr_ci.scan.service import ScanRequest, run_scan
    from acr_ci.scan.settings import effective_scan_config, report_specs

    if opts.report_format and not opts.overrides.reports:
        raise UsageError("--report-format needs --report FILE")
    cfg = _load_config(opts.config)
    scan = effective_scan_config(opts.overrides, cfg)
    specs = report_specs(opts.overrides, cfg, scan)
    if opts.image is None and not specs:
        raise UsageError("name the image to scan: acr-ci scan IMAGE[:TAG|@DIGEST]")
    from acr_ci.registry.reference import Reference

    image = Reference.parse(opts.image, what="image") if opts.image is not None else None
    request = ScanRequest(
        image=image,
        config=scan,
        reports=specs,
        report_format=ReportFormat(opts.report_format) if opts.report_format else None,
        today=opts.today or datetime.now(UTC).date(),
        output_json=opts.output_json,
        gitlab_report=opts.gitlab_report,
        sarif=opts.sarif,
        allow_report_mismatch=opts.overrides.allow_report_mismatch,
    )
    client: Client | None = None
    if opts.image is not None:
        images = (opts.image, *((scan.on_block.backup,) if scan.on_block.backup else ()))
        if cfg is not None:
            client = config_client(cfg, opts.access, images=images)
        else:
            client = open_client(opts.access, login_hosts=hosts_of(*images))
    try:
        outcome = run_scan(request, client=client, log=sys.stderr)
    finally:
        if client is not None:
            client.close()
    return EXIT_BLOCKED if outcome.enforced_block else EXIT_OK


def _parse_today(text: str) -> date:
    """argparse type for ``--today``: an ISO date."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "image",
        nargs="?",
        metavar="IMAGE[:TAG|@DIGEST]",
        help="the image; a tag is resolved to its digest first (optional with --report)",
    )
    add_config_flag(p, "the rule config (default: $ACR_CI_CONFIG or .acr-ci.yml if present)")
    p.add_argument("--engine", choices=[e.value for e in ScanEngine], help="override scan.engine")
    p.add_argument(
        "--report",
        action="append",
        default=[],
        metavar="[PLATFORM=]FILE",
        help="read findings from a scanner report (repeat: one per platform); implies engine report",
    )
    p.add_argument(
        "--report-format",
        choices=REPORT_FORMATS,
        help="the reports' format (default: detected per file)",
    )
    p.add_argument(
        "--severity", metavar="LEVEL", help="block at or above: low|medium|high|critical"
    )
    p.add_argument(
        "--count",
        type=int,
        metavar="N",
        help="block when at least N vulnerabilities are at/above --severity",
    )
    p.add_argument(
        "--fail-on",
        action="append",
        default=[],
        metavar="ID",
        help="block when this vulnerability id (or an alias) is present; repeatable",
    )
    p.add_argument(
        "--logic", choices=[x.value for x in BlockLogic], help="combine --severity and --fail-on"
    )
    p.add_argument(
        "--ignore-unfixed",
        action="store_true",
        help="findings without a fixed version do not count",
    )
    p.add_argument(
        "--non-blocking", action="store_true", help="record the verdict, exit 0 even when blocked"
    )
    p.add_argument(
        "--allow-report-mismatch",
        action="store_true",
        help="gate on a --report whose image digest or image ID is not the image's (warned)",
    )
    p.add_argument(
        "--today",
        type=_parse_today,
        metavar="YYYY-MM-DD",
        help="check allow-list expiry as of this date (default: today, UTC)",
    )
    p.add_argument("--output-json", metavar="FILE", help="write findings and verdict as JSON")
    p.add_argument(
        "--gitlab-report",
        metavar="FILE",
        help="write a GitLab container_scanning report (schema 15.2.4)",
    )
    p.add_argument("--sarif", metavar="FILE", help="write a SARIF 2.1.0 log")
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> ScanOptions:
    return ScanOptions(
        image=args.image,
        config=args.config,
        overrides=ScanOverrides(
            engine=ScanEngine(args.engine) if args.engine else None,
            reports=tuple(args.report),
            severity=args.severity,
            count=args.count,
            fail_on=tuple(args.fail_on),
            logic=BlockLogic(args.logic) if args.logic else None,
            ignore_unfixed=args.ignore_unfixed,
            non_blocking=args.non_blocking,
            allow_report_mismatch=args.allow_report_mismatch,
        ),
        report_format=args.report_format,
        today=args.today,
        output_json=args.output_json,
        gitlab_report=args.gitlab_report,
        sarif=args.sarif,
        access=registry_access(args),
    )


COMMAND = Command(
    name="scan",
    help="scan an image (or read scanner reports) and apply the scan gate",
    description=(
        "Scan IMAGE by digest (a tag is resolved first) with scan.engine, or read --report files, "
        "then apply the policy (scan.block, or --severity/--fail-on when the config has no scan: "
        "section; one of them is required). Counts vulnerabilities: findings merged by id and "
        "aliases. Exit 3 when blocked in blocking mode, after on_block's backup-then-delete."
    ),
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
