"""GitHub Actions: step outputs, the step summary, annotations and masks.

The runner's file commands and workflow commands, written the way its toolkit does:

* ``$GITHUB_OUTPUT`` gets ``name=value`` for one-line values and
  ``name<<DELIMITER`` / value / ``DELIMITER`` for multi-line ones, the delimiter random
  and checked to appear in neither name nor value;
* ``$GITHUB_STEP_SUMMARY`` gets the Markdown summary appended;
* annotations are ``::error file=F,line=L,col=C,title=T::message`` lines on stdout, data
  cleaned (:func:`acr_ci.text.safe_output`: no escape sequences or control characters) and
  escaped (``%`` ``\\r`` ``\\n``), properties escaped too (``:`` ``,``);
* ``::add-mask::`` hides a secret, one command per line of it.

Untrusted text (ref names, scanner messages) must not be able to issue workflow commands:
:meth:`GitHubSink.stop_commands` wraps a block of output so the runner ignores ``::``
lines in it until the random end token is printed.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from acr_ci.errors import UsageError
from acr_ci.platforms.outputs import Annotation, Results
from acr_ci.text import safe_output

OUTPUT_ENV = "GITHUB_OUTPUT"
SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as the runner un-escapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (``file=…``), escaped."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation_command(a: Annotation) -> str:
    """``::LEVEL props::message`` for one annotation (title and message cleaned of control
    characters and escape sequences first: they may quote a registry or a scanner)."""
    props: list[str] = []
    if a.title:
        props.append(f"title={escape_property(safe_output(a.title))}")
    if a.file:
        props.append(f"file={escape_property(a.file)}")
        if a.line:
            props.append(f"line={a.line}")
            if a.column:
                props.append(f"col={a.column}")
    head = f"::{a.level}"
    if props:
        head += " " + ",".join(props)
    return f"{head}::{escape_data(safe_output(a.message))}"


def output_entry(name: str, value: str, delimiter: str | None = None) -> str:
    """One ``$GITHUB_OUTPUT`` entry (with its final newline)."""
    if "\n" not in value and "\r" not in value:
        return f"{name}={value}\n"
    delim = delimiter or f"ghadelimiter_{secrets.token_hex(16)}"
    if delim in name or delim in value:
        raise UsageError(f"output {name!r}: the value contains the delimiter")
    return f"{name}<<{delim}\n{value}\n{delim}\n"


@dataclass
class GitHubSink:
    """Writes to the files the runner names, and workflow commands to ``stream``."""

    output_file: Path | None
    summary_file: Path | None
    stream: TextIO

    @classmethod
    def from_env(cls, env: Mapping[str, str], stream: TextIO | None = None) -> GitHubSink:
        out = env.get(OUTPUT_ENV) or None
        summary = env.get(SUMMARY_ENV) or None
        return cls(
            output_file=Path(out) if out else None,
            summary_file=Path(summary) if summary else None,
            stream=stream or sys.stdout,
        )

    def mask(self, secret: str) -> None:
        for line in {secret, *secret.splitlines()}:
            if line.strip():
                self._command(f"::add-mask::{escape_data(line)}")

    def annotate(self, annotation: Annotation) -> None:
        self._command(annotation_command(annotation))

    def set_outputs(self, values: Mapping[str, str]) -> None:
        if self.output_file is None:
            for name, value in values.items():  # outside the runner: show them
                self.stream.write(safe_output(f"{name}: {value}") + "\n")
            return
        with self.output_file.open("a", encoding="utf-8") as f:
            for name, value in values.items():
                f.write(output_entry(name, value))

    def summary(self, markdown: str) -> None:
        if self.summary_file is None or not markdown:
            return
        with self.summary_file.open("a", encoding="utf-8") as f:
            f.write(markdown if markdown.endswith("\n") else markdown + "\n")

    def publish(self, results: Results) -> None:
        for a in results.annotations:
            self.annotate(a)
        values = results.values()
        for name, path in results.reports.items():
            values[f"{name.replace('_', '-')}-report"] = path
        self.set_outputs(values)
        self.summary(results.summary)

    @contextmanager
    def stop_commands(self) -> Iterator[None]:
        """Inside the block, the runner treats ``::…`` lines as plain text."""
        token = secrets.token_hex(16)
        self._command(f"::stop-commands::{token}")
        try:
            yield
        finally:
            sys.stderr.flush()
            self._command(f"::{token}::")

    def _command(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
