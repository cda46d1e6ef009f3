"""Report parsers: Trivy JSON, Grype JSON, GitLab container scanning, SARIF 2.1.0.

:func:`read_report` reads one file with the parser for ``--report-format`` or,
when none is given, the one whose :meth:`~ReportParser.sniff` recognizes it.
A report spec may name its platform: ``linux/arm64=reports/arm64.json`` (one
report per platform of a multi-arch image); otherwise the platform is what the
report itself says (Trivy and Grype name it), else unknown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, assert_never

from acr_ci.scan.findings import ReportError
from acr_ci.scan.reports.base import Report, ReportFormat, ReportParser, valid_platform
from acr_ci.scan.reports.gitlab import GitlabParser
from acr_ci.scan.reports.grype import GrypeParser
from acr_ci.scan.reports.sarif import SarifParser
from acr_ci.scan.reports.trivy import TrivyParser

__all__ = [
    "Report",
    "ReportFormat",
    "ReportParser",
    "detect",
    "parse_report",
    "parser_for",
    "read_report",
    "split_spec",
]

MAX_REPORT_BYTES = 256 * 1024 * 1024


def parser_for(fmt: ReportFormat) -> ReportParser:
    """The parser of one format."""
    if fmt is ReportFormat.TRIVY:
        return TrivyParser()
    if fmt is ReportFormat.GRYPE:
        return GrypeParser()
    if fmt is ReportFormat.GITLAB:
        return GitlabParser()
    if fmt is ReportFormat.SARIF:
        return SarifParser()
    assert_never(fmt)


def detect(doc: Any, source: str) -> ReportFormat:
    """The format ``doc`` is in; :class:`ReportError` when no parser recognizes it."""
    found = [fmt for fmt in ReportFormat if parser_for(fmt).sniff(doc)]
    if len(found) == 1:
        return found[0]
    names = ", ".join(str(f) for f in ReportFormat)
    if not found:
        raise ReportError(
            f"{source}: not a report format acr-ci knows ({names})",
            hint="give --report-format FMT if it is one of them",
        )
    raise ReportError(
        f"{source}: looks like several formats ({', '.join(map(str, found))})",
        hint="give --report-format FMT to choose",
    )


def split_spec(spec: str) -> tuple[str | None, str]:
    """``PLATFORM=PATH`` → (platform, path); a plain path (or an existing file) → (None, path)."""
    head, sep, tail = spec.partition("=")
    if sep and tail and valid_platform(head) and not Path(spec).exists():
        return head, tail
    return None, spec


def parse_report(
    doc: Any, *, source: str, fmt: ReportFormat | None = None, platform: str | None = None
) -> Report:
    """Parse an already-loaded JSON report."""
    chosen = fmt if fmt is not None else detect(doc, source)
    return parser_for(chosen).parse(doc, source=source, platform=platform)


def read_report(
    path: str | Path, fmt: ReportFormat | None = None, platform: str | None = None
) -> Report:
    """Read and parse one report file (``fmt`` None: auto-detect)."""
    source = str(path)
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_REPORT_BYTES:
            raise ReportError(
                f"{source}: {size} bytes is larger than the {MAX_REPORT_BYTES} acr-ci reads"
            )
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReportError(
            f"{source}: no such report file", hint="check the --report path"
        ) from None
    except IsADirectoryError:
        raise ReportError(f"{source}: is a directory, not a report file") from None
    except UnicodeDecodeError:
        raise ReportError(f"{source}: not UTF-8 text; reports are JSON") from None
    except OSError as e:
        raise ReportError(f"{source}: cannot read: {e.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ReportError(
            f"{source}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})",
            hint="reports are read in their JSON forms (trivy --format json, grype -o json, SARIF, GitLab)",
        ) from None
    return parse_report(doc, source=source, fmt=fmt, platform=platform)
