"""The outputs of a scan, one module per format, chosen by :func:`format_for`.

:mod:`~acr_ci.scan.formats.table` (the summary on the log),
:mod:`~acr_ci.scan.formats.json_doc` (``--output-json``),
:mod:`~acr_ci.scan.formats.gitlab` (``--gitlab-report``, schema 15.2.4) and
:mod:`~acr_ci.scan.formats.sarif` (``--sarif``, SARIF 2.1.0) each implement
:class:`~acr_ci.scan.formats.interface.Format`. A new format is a module, an
:class:`OutputFormat` member and one branch below.
"""

from __future__ import annotations

from typing import Literal, assert_never, overload

from acr_ci.scan.formats.gitlab import GitlabFormat
from acr_ci.scan.formats.interface import (
    AnyFormat,
    DocumentFormat,
    Format,
    OutputFormat,
    ScanContext,
    TextFormat,
)
from acr_ci.scan.formats.json_doc import JsonFormat
from acr_ci.scan.formats.sarif import SarifFormat
from acr_ci.scan.formats.table import TableFormat

__all__ = [
    "AnyFormat",
    "DocumentFormat",
    "Format",
    "GitlabFormat",
    "JsonFormat",
    "OutputFormat",
    "SarifFormat",
    "ScanContext",
    "TableFormat",
    "TextFormat",
    "format_for",
]


@overload
def format_for(choice: Literal[OutputFormat.TABLE]) -> TextFormat: ...
@overload
def format_for(
    choice: Literal[OutputFormat.JSON, OutputFormat.GITLAB, OutputFormat.SARIF],
) -> DocumentFormat: ...
@overload
def format_for(choice: OutputFormat) -> AnyFormat: ...
def format_for(choice: OutputFormat) -> AnyFormat:
    """The implementation of one output format (text for the table, else a JSON document)."""
    if choice is OutputFormat.TABLE:
        return TableFormat()
    if choice is OutputFormat.JSON:
        return JsonFormat()
    if choice is OutputFormat.GITLAB:
        return GitlabFormat()
    if choice is OutputFormat.SARIF:
        return SarifFormat()
    assert_never(choice)
