"""The run record: what ``acr-ci run`` did, step by step, as one JSON document.

The CI-native counterpart of the hosted console's "Record" page. One document per run
(``--record FILE``, default :data:`DEFAULT_PATH`), valid against ``record.schema.json``
shipped next to this module (:func:`schema`, :func:`validate`):

* ``ref`` — the git ref the run was about; ``plan`` — the builds, in the shape of
  ``acr-ci plan --format json``;
* ``images`` — one entry per build: its rule, repository, tags, digest, overall status,
  and ``steps``: ``build``, ``push``, ``scan``, then one ``sync`` step per destination and
  one ``trigger`` step per trigger. Every step has ``status`` (succeeded | failed | blocked
  | skipped), ``started``, ``finished`` (ISO 8601, UTC), ``duration`` (seconds), a
  one-line ``reason`` when it did not succeed, and ``detail`` (digests, tags, finding
  counts, per-mirror and per-delivery results with HTTP status);
* ``status`` and ``exit_code`` of the whole run (3 if any image was blocked, else 1 if any
  step failed, else 0).

:func:`summary_markdown` renders the short human summary (a Markdown table) that the CLI
prints and the CI front ends put in their step summaries.

No secret reaches the record: steps carry names, digests and redacted targets only, and
:func:`redact` strips every URL in the detail down to ``scheme://host`` as a last guard.
"""

from __future__ import annotations

import enum
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from acr_ci import __version__
from acr_ci.errors import EXIT_BLOCKED, EXIT_FAILED, EXIT_OK, UsageError
from acr_ci.errors import RecordError as RecordError  # lives in errors.py; importable here too
from acr_ci.models import BuildPlan, RefContext

DEFAULT_PATH = "acr-ci-record.json"
RECORD_KIND = "acr-ci/run-record"
RECORD_VERSION = 1
STEP_NAMES = ("build", "push", "scan", "sync", "trigger")

_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*)://(?:[^/\s?#@'\"]*@)?([^/\s?#'\"]*)[^\s'\"]*")


class Status(enum.StrEnum):
    """The outcome of one step (and, summed up, of an image and a run)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    BLOCKED = "blocked"
    """The scan gate refused the image (scan step only)."""
    SKIPPED = "skipped"
    """Not run: not configured, nothing selected, or an earlier step of the image failed."""


def redact(value: Any) -> Any:
    """``value`` with every URL in every string cut to ``scheme://host`` (recursively)."""
    if isinstance(value, str):
        return _URL.sub(lambda m: f"{m.group(1)}://{m.group(2)}", value)
    if isinstance(value, Mapping):
        return {str(k): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _frozen(detail: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(detail or {}))


@dataclass(frozen=True)
class StepRecord:
    """One step of one image."""

    step: str
    """``build``, ``push``, ``scan``, ``sync`` or ``trigger``."""
    status: Status
    """How it ended."""
    started: datetime
    """When it started (timezone-aware)."""
    finished: datetime
    """When it ended (timezone-aware)."""
    name: str | None = None
    """The sync destination's or trigger's name (``None`` for the other steps)."""
    reason: str | None = None
    """One line: why it failed, was blocked or skipped."""
    detail: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """JSON-ready facts: digests, tags, finding counts, per-mirror/per-delivery results."""

    def __post_init__(self) -> None:
        if self.step not in STEP_NAMES:
            raise ValueError(f"unknown step {self.step!r}")
        object.__setattr__(self, "detail", _frozen(self.detail))

    @classmethod
    def skipped(
        cls,
        step: str,
        reason: str,
        *,
        name: str | None = None,
        at: datetime | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> StepRecord:
        """A step that did not run, stamped ``at`` (default: now)."""
        now = at or datetime.now(UTC)
        return cls(
            step=step,
            status=Status.SKIPPED,
            started=now,
            finished=now,
            name=name,
            reason=reason,
            detail=_frozen(detail),
        )

    @property
    def duration(self) -> float:
        """Seconds from start to finish."""
        return max(0.0, (self.finished - self.started).total_seconds())

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "name": self.name,
            "status": str(self.status),
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "duration": round(self.duration, 3),
            "reason": redact(self.reason),
            "detail": redact(dict(self.detail)),
        }


@dataclass(frozen=True)
class ImageRecord:
    """Every step of one build (one rule's image)."""

    rule: str
    """The build rule's name."""
    image: str
    """The repository (``registry/namespace/repo``)."""
    tags: tuple[str, ...]
    """The tags the plan gave it."""
    digest: str | None = None
    """The pushed digest, once known."""
    steps: tuple[StepRecord, ...] = ()
    """In the order they ran."""

    @property
    def status(self) -> Status:
        """``blocked`` if a step was, else ``failed`` if one failed, else ``succeeded``
        (``skipped`` when nothing ran)."""
        states = {s.status for s in self.steps}
        if Status.BLOCKED in states:
            return Status.BLOCKED
        if Status.FAILED in states:
            return Status.FAILED
        if Status.SUCCEEDED in states:
            return Status.SUCCEEDED
        return Status.SKIPPED

    def step(self, name: str) -> list[StepRecord]:
        """The steps called ``name`` (several for sync and trigger)."""
        return [s for s in self.steps if s.step == name]

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "image": self.image,
            "tags": list(self.tags),
            "digest": self.digest,
            "status": str(self.status),
            "steps": [s.to_json() for s in self.steps],
        }


@dataclass(frozen=True)
class RunRecord:
    """One ``acr-ci run``."""

    ref: RefContext
    """The ref the run was about."""
    plans: tuple[BuildPlan, ...]
    """What the rules asked for."""
    images: tuple[ImageRecord, ...]
    """One per plan, same order."""
    started: datetime
    """When the run started."""
    finished: datetime
    """When it ended."""
    config: str | None = None
    """The config file's path, as given."""

    @property
    def status(self) -> Status:
        states = {i.status for i in self.images}
        for s in (Status.BLOCKED, Status.FAILED, Status.SUCCEEDED):
            if s in states:
                return s
        return Status.SKIPPED

    @property
    def exit_code(self) -> int:
        """3 if any image was blocked, else 1 if any step failed, else 0."""
        status = self.status
        if status is Status.BLOCKED:
            return EXIT_BLOCKED
        if status is Status.FAILED:
            return EXIT_FAILED
        return EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": RECORD_KIND,
            "version": RECORD_VERSION,
            "acr_ci_version": __version__,
            "config": self.config,
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "duration": round(max(0.0, (self.finished - self.started).total_seconds()), 3),
            "status": str(self.status),
            "exit_code": self.exit_code,
            "ref": {
                "type": str(self.ref.type),
                "name": self.ref.name,
                "sha": self.ref.sha,
                "time": self.ref.time.isoformat(),
                "event": self.ref.event,
                "repository": redact(self.ref.repository),
                "source": self.ref.source,
            },
            "plan": [p.to_json() for p in self.plans],
            "images": [i.to_json() for i in self.images],
        }


# -- schema, files ---------------------------------------------------------------------


def schema() -> dict[str, Any]:
    """The record's JSON Schema (shipped as ``acr_ci/record.schema.json``)."""
    text = resources.files("acr_ci").joinpath("record.schema.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def validate(doc: Mapping[str, Any]) -> None:
    """Raise :class:`RecordError` naming the first problem when ``doc`` is not a valid record."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise RecordError(
            f"the run record does not match its schema at {where}: {first.message}",
            f"{len(errors)} problem(s) in all; this is a bug in acr-ci, please report it",
        )


def write(record: RunRecord, path: str | os.PathLike[str]) -> Path:
    """Validate and write ``record`` to ``path`` atomically (temp file + rename)."""
    doc = record.to_json()
    validate(doc)
    target = Path(path)
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".acr-ci-record-", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except OSError as e:
        raise UsageError(
            f"cannot write the run record to {str(target)!r}: {e.strerror or type(e).__name__}",
            "pass --record with a writable path",
        ) from None
    return target


# -- the human summary -------------------------------------------------------------------

_MARK = {
    Status.SUCCEEDED: "✅",
    Status.FAILED: "❌",
    Status.BLOCKED: "⛔",
    Status.SKIPPED: "⏭️",
}


def _cell(text: object) -> str:
    """Text made safe for one Markdown table cell (one line, no pipes, no HTML)."""
    s = redact(str(text))
    s = " ".join(s.split())
    for ch, rep in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "'")):
        s = s.replace(ch, rep)
    return s


def _short(digest: str | None) -> str:
    if not digest:
        return "—"
    algo, _, hexpart = digest.partition(":")
    return f"`{algo}:{hexpart[:12]}`"


def _steps_cell(steps: Sequence[StepRecord]) -> str:
    if not steps:
        return "—"
    if len(steps) == 1 and steps[0].name is None:
        s = steps[0]
        return f"{_MARK[s.status]} {s.status}"
    counts: dict[Status, int] = {}
    for s in steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    return " ".join(f"{_MARK[k]} {n}" for k, n in counts.items())


def summary_markdown(record: RunRecord) -> str:
    """A short Markdown summary: one row per image, then one per mirror and trigger."""
    ref = record.ref
    sha = f" @ `{ref.sha[:12]}`" if ref.sha else ""
    lines = [
        f"### acr-ci run: {_MARK[record.status]} {record.status}",
        "",
        f"{ref.type} `{_cell(ref.name)}`{sha} · exit code {record.exit_code}",
        "",
    ]
    if not record.images:
        lines.append("No build rule matches this ref: nothing was built.")
        return "\n".join(lines) + "\n"
    lines += [
        "| rule | image | tags | digest | build | push | scan | sync | triggers |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for img in record.images:
        lines.append(
            "| "
            + " | ".join(
                [
                    _cell(img.rule),
                    f"`{_cell(img.image)}`",
                    ", ".join(f"`{_cell(t)}`" for t in img.tags) or "—",
                    _short(img.digest),
                    *(_steps_cell(img.step(n)) for n in STEP_NAMES),
                ]
            )
            + " |"
        )
    details = [
        (img, s)
        for img in record.images
        for s in img.steps
        if s.status is not Status.SUCCEEDED or s.step in ("sync", "trigger")
    ]
    if details:
        lines += ["", "| rule | step | status | detail |", "| --- | --- | --- | --- |"]
        for img, s in details:
            step = f"{s.step} {_cell(s.name)}" if s.name else s.step
            lines.append(
                f"| {_cell(img.rule)} | {step} | {_MARK[s.status]} {s.status} | "
                f"{_cell(_detail_line(s))} |"
            )
    return "\n".join(lines) + "\n"


def _detail_line(s: StepRecord) -> str:
    parts: list[str] = []
    d = s.detail
    if "destination" in d:
        parts.append(str(d["destination"]))
    if "target" in d:
        parts.append(str(d["target"]))
    if d.get("http_status") is not None:
        parts.append(f"HTTP {d['http_status']}")
    entries = d.get("tags") if s.step == "sync" else d.get("deliveries")
    if isinstance(entries, list) and entries:
        names = [str(e.get("tag")) if isinstance(e, Mapping) else str(e) for e in entries]
        parts.append("tags " + ", ".join(names))
    if s.reason:
        parts.append(s.reason)
    return " · ".join(parts) or "—"
