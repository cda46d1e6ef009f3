"""GitLab CI: a ``dotenv`` report for later jobs, and readable log lines.

The dotenv file (``artifacts:reports:dotenv``) follows GitLab's rules, which are stricter
than the dotenv format: one ``KEY=value`` per line, no blank lines, no comments, no
quoting (quotes would be kept as part of the value), no multi-line values, at most 5 KB.
So lists are written comma-separated, and empty values are left out (an absent variable
reads as empty in a later job's shell too).

Variables: ``ACR_CI_DIGEST``, ``ACR_CI_IMAGE`` (the first ``repo@digest``),
``ACR_CI_IMAGES``, ``ACR_CI_TAGS``, ``ACR_CI_IMAGE_URL``, ``ACR_CI_BLOCKED``,
``ACR_CI_STATUS``, ``ACR_CI_EXIT_CODE``, ``ACR_CI_RECORD``, ``ACR_CI_ACCELERATED_DIGEST``
(the first accelerated twin's digest).

The job's ``record`` artifact (``$ACR_CI_INPUT_RECORD``): ``acr-ci run`` writes the run
record there; after any other command the sink writes the job's outputs there instead
(``{"command": …, "outputs": {digest, images, tags, …}}``, the dotenv's values with
lists as lists), so every job leaves the file its template declares.

GitLab has no annotations: problems are printed as ``file:line:col: error: message``
(which editors and GitLab's log both link well enough); the command already printed its
Markdown summary to the log. GitLab masks variables itself (masked CI/CD variables); :meth:`mask` does
nothing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from acr_ci import fileio
from acr_ci.platforms.outputs import Annotation, Results, one_line

DOTENV_ENV = "ACR_CI_DOTENV"
RECORD_ENV = "ACR_CI_INPUT_RECORD"
DEFAULT_DOTENV = "acr-ci.env"
MAX_BYTES = 5 * 1024
PREFIX = "ACR_CI_"
_KEY = re.compile(r"[A-Z_][A-Z0-9_]*")


def dotenv_values(results: Results) -> dict[str, str]:
    """The variables the dotenv report carries (empty ones left out)."""
    values = {
        "DIGEST": results.digest,
        "IMAGE": results.images[0] if results.images else "",
        "IMAGES": one_line(results.images),
        "TAGS": one_line(results.tags),
        "IMAGE_URL": results.image_url,
        "BLOCKED": "true" if results.blocked else "false",
        "STATUS": results.status,
        "EXIT_CODE": str(results.exit_code),
        "RECORD": results.record,
        "ACCELERATED_DIGEST": results.accelerated_digest,
    }
    return {PREFIX + k: v for k, v in values.items() if v}


def dotenv_text(values: Mapping[str, str]) -> str:
    """``KEY=value`` lines; ``ValueError`` for what GitLab would refuse."""
    lines: list[str] = []
    for key, value in values.items():
        if not _KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not a dotenv variable name")
        if "\n" in value or "\r" in value:
            raise ValueError(f"{key}: GitLab's dotenv takes no multi-line values")
        lines.append(f"{key}={value}")
    return "".join(line + "\n" for line in lines)


def job_outputs(results: Results) -> dict[str, object]:
    """The record artifact of a job whose command writes no run record."""
    values: dict[str, object] = dict(results.values())
    values.update(images=list(results.images), tags=list(results.tags))
    values.pop("record", None)
    return {"command": results.command, "outputs": values}


def location(a: Annotation) -> str:
    """``file:line:col: level: message`` (or ``level: message``)."""
    where = ""
    if a.file:
        where = a.file
        if a.line:
            where += f":{a.line}" + (f":{a.column}" if a.column else "")
        where += ": "
    title = f"{a.title}: " if a.title else ""
    return f"{where}{a.level}: {title}{a.message}"


@dataclass
class GitLabSink:
    """Writes the dotenv report to ``dotenv`` and messages to ``stream``."""

    dotenv: Path
    stream: TextIO
    record: Path | None = None
    """The job's record artifact, written with the outputs after a command other than
    ``run`` (None: not written)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str], stream: TextIO | None = None) -> GitLabSink:
        record = (env.get(RECORD_ENV) or "").strip()
        return cls(
            dotenv=Path(env.get(DOTENV_ENV) or DEFAULT_DOTENV),
            stream=stream or sys.stderr,
            record=Path(record) if record else None,
        )

    def mask(self, secret: str) -> None:
        """GitLab masks its own masked variables; nothing to do."""

    def publish(self, results: Results) -> None:
        for a in results.annotations:
            self.stream.write(location(a) + "\n")
        values = dotenv_values(results)
        text = dotenv_text(values)
        if len(text.encode()) > MAX_BYTES:  # many rules: keep the digests, drop the tag list
            self.stream.write(
                f"warning: the dotenv report would exceed GitLab's {MAX_BYTES} bytes; "
                f"{PREFIX}TAGS left out (the run record has every tag)\n"
            )
            values.pop(PREFIX + "TAGS", None)
            text = dotenv_text(values)
        self.dotenv.parent.mkdir(parents=True, exist_ok=True)
        self.dotenv.write_text(text, encoding="utf-8")
        if self.record is not None and results.command != "run":
            fileio.write_json(
                self.record, job_outputs(results), what="the job record", parents=True
            )
        self.stream.flush()
