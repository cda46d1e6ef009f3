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
    "load_json",
    "parse_report",
    "parser_for",
    "read_report",
    "split_spec",
]

MAX_REPORT_BYTES = 256 * 1024 * 1024
"""The most acr-ci reads of one report file."""
JSON_HINT = (
    "reports are read in their JSON forms (trivy --format json, grype -o json, SARIF, GitLab)"
)


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


def load_json(data: bytes | str, source: str) -> Any:
    """Parse report JSON strictly: a one-line :class:`ReportError` for anything but a document.

    A key given twice in one object is refused (``json`` keeps only the last one, so a
    finding could vanish), as are integers too long for Python to read (over 4,300
    digits) and documents nested too deep to parse.
    """

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ReportError(
                    f"{source}: the key {_cut(key)!r} appears twice in one object",
                    hint="a report with duplicate keys is ambiguous (which one counts?); "
                    "regenerate it with the scanner",
                )
            out[key] = value
        return out

    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        return json.loads(text, object_pairs_hook=unique)
    except UnicodeDecodeError:
        raise ReportError(f"{source}: not UTF-8 text; reports are JSON") from None
    except json.JSONDecodeError as e:
        raise ReportError(
            f"{source}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})",
            hint=JSON_HINT,
        ) from None
    except RecursionError:
        raise ReportError(f"{source}: JSON nested too deep to read", hint=JSON_HINT) from None
    except ValueError as e:  # e.g. an integer over sys.get_int_max_str_digits() digits
        raise ReportError(f"{source}: not a usable JSON report ({_cut(str(e))})") from None


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_report(
    path: str | Path, fmt: ReportFormat | None = None, platform: str | None = None
) -> Report:
    """Read and parse one report file (``fmt`` None: auto-detect); at most
    :data:`MAX_REPORT_BYTES` are read, whatever the file is (a FIFO, ``/dev/zero``)."""
    source = str(path)
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_REPORT_BYTES + 1)
    except FileNotFoundError:
        raise ReportError(
            f"{source}: no such report file", hint="check the --report path"
        ) from None
    except IsADirectoryError:
        raise ReportError(f"{source}: is a directory, not a report file") from None
    except OSError as e:
        raise ReportError(f"{source}: cannot read: {e.strerror}") from None
    if len(data) > MAX_REPORT_BYTES:
        raise ReportError(
            f"{source}: larger than the {MAX_REPORT_BYTES} bytes acr-ci reads of a report"
        )
    doc = load_json(data, source)
    return parse_report(doc, source=source, fmt=fmt, platform=platform)
