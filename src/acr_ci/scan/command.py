"""``acr-ci scan``: parsed arguments → a :class:`ScanRequest` → :func:`run_scan` → exit code.

Where the policy comes from (decided here, documented in ``--help``):

* ``--config F`` (or ``$ACR_CI_CONFIG``, or ``.acr-ci.yml`` when it exists) with
  a ``scan:`` section gives the engine, reports, mode, policy and on_block;
* flags override single fields of it: ``--engine``, ``--report``,
  ``--severity``, ``--count``, ``--fail-on`` (replaces the id list),
  ``--logic``, ``--ignore-unfixed``, ``--non-blocking``;
* with no config ``scan:`` section, the policy is the flags alone and at least
  one of ``--severity`` / ``--fail-on`` is required: a gate without a rule
  would pass everything silently, so acr-ci refuses (exit 2) instead of
  guessing a default.

Report paths from the config are relative to the config file's directory;
``--report`` paths are relative to the working directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import UTC, date, datetime
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
from acr_ci.errors import EXIT_BLOCKED, EXIT_OK, UsageError

REPORT_FORMATS = ("trivy", "grype", "gitlab", "sarif")
"""``--report-format`` choices (the values of ``ReportFormat``; spelled out so ``--help`` stays light)."""


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except KeyError:
        raise UsageError(
            f"--severity {text!r} is not a severity", "use low, medium, high or critical"
        ) from None


def _load_config(path: str | None) -> Config | None:
    from acr_ci import config as config_mod

    if path is None and not Path(config_mod.resolve_path(None)).exists():
        return None
    return config_mod.load(path)


def effective_scan_config(args: argparse.Namespace, cfg: Config | None) -> ScanConfig:
    """The config's ``scan:`` section with the flags applied over it."""
    base = cfg.scan if cfg is not None else None
    has_rule_flag = args.severity is not None or bool(args.fail_on)
    if base is None and not has_rule_flag:
        where = f"{cfg.path} has no scan: section" if cfg is not None else "no config file"
        raise UsageError(
            f"no scan policy: {where} and neither --severity nor --fail-on was given",
            "add a scan: section to the config, or pass e.g. --severity high (and/or --fail-on CVE-…)",
        )
    scan = base or ScanConfig(engine=ScanEngine.REPORT if args.report else ScanEngine.TRIVY)
    block = scan.block if base is not None else BlockPolicy()
    if args.severity is not None:
        block = dataclasses.replace(block, severity=_severity(args.severity))
    if args.count is not None:
        if args.count < 1:
            raise UsageError(f"--count {args.count} is not valid", "use 1 or more")
        block = dataclasses.replace(block, count=args.count)
    if args.fail_on:
        block = dataclasses.replace(block, vulnerabilities=tuple(args.fail_on))
    if args.logic is not None:
        block = dataclasses.replace(block, logic=BlockLogic(args.logic))
    if args.ignore_unfixed:
        block = dataclasses.replace(block, ignore_unfixed=True)
    scan = dataclasses.replace(scan, block=block)
    if args.engine is not None:
        scan = dataclasses.replace(scan, engine=ScanEngine(args.engine))
    if args.report:
        scan = dataclasses.replace(scan, engine=ScanEngine.REPORT)
    if args.non_blocking:
        scan = dataclasses.replace(scan, mode=ScanMode.NON_BLOCKING)
    return scan


def _report_specs(
    args: argparse.Namespace, cfg: Config | None, scan: ScanConfig
) -> tuple[str, ...]:
    from acr_ci.scan.reports import split_spec

    if args.report:
        return tuple(args.report)
    if scan.engine is not ScanEngine.REPORT:
        return ()
    if not scan.report:
        raise UsageError(
            "engine: report needs report files: set scan.report in the config or pass --report FILE"
        )
    base = Path(cfg.path).parent if cfg is not None else Path(".")
    specs: list[str] = []
    for spec in scan.report:
        platform, path = split_spec(spec)
        full = str(path if Path(path).is_absolute() else base / path)
        specs.append(f"{platform}={full}" if platform else full)
    return tuple(specs)


def run(args: argparse.Namespace) -> int:
    """The ``scan`` command."""
    from acr_ci.registry.auth import ci_then_docker_config
    from acr_ci.registry.cli_support import env_credentials
    from acr_ci.registry.client import Client, insecure_from_env
    from acr_ci.registry.reference import Reference
    from acr_ci.scan.reports import ReportFormat
    from acr_ci.scan.service import ScanRequest, run_scan

    if args.report_format and not args.report:
        raise UsageError("--report-format needs --report FILE")
    cfg = _load_config(args.config)
    scan = effective_scan_config(args, cfg)
    specs = _report_specs(args, cfg, scan)
    if args.image is None and not specs:
        raise UsageError("name the image to scan: acr-ci scan IMAGE[:TAG|@DIGEST]")
    today = date.fromisoformat(args.today) if args.today else datetime.now(UTC).date()
    request = ScanRequest(
        image=args.image,
        config=scan,
        reports=specs,
        report_format=ReportFormat(args.report_format) if args.report_format else None,
        today=today,
        output_json=args.output_json,
        gitlab_report=args.gitlab_report,
        sarif=args.sarif,
    )
    client: Client | None = None
    if args.image is not None:
        sides = [Reference.parse(args.image, what="image")]
        if scan.on_block.backup:
            sides.append(Reference.parse(scan.on_block.backup, what="scan.on_block.backup"))
        hosts = [h for s in sides for h in (s.registry, s.api_host)]
        ci = env_credentials(args, hosts)
        credentials = ci_then_docker_config(ci)
        insecure = [*args.insecure, *insecure_from_env(), *(cfg.insecure_registries if cfg else ())]
        client = Client(credentials=credentials, insecure=insecure, jobs=args.jobs)
    try:
        outcome = run_scan(request, client=client, log=sys.stderr)
    finally:
        if client is not None:
            client.close()
    return EXIT_BLOCKED if outcome.enforced_block else EXIT_OK


def parse_today(text: str) -> str:
    """argparse type for ``--today``: an ISO date."""
    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``scan`` subcommand's flags (called from ``cli.py``)."""
    p.add_argument(
        "image",
        nargs="?",
        metavar="IMAGE[:TAG|@DIGEST]",
        help="the image; a tag is resolved to its digest first (optional with --report)",
    )
    p.add_argument(
        "--config",
        metavar="F",
        help="the rule config (default: $ACR_CI_CONFIG or .acr-ci.yml if present)",
    )
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
        "--today",
        type=parse_today,
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
