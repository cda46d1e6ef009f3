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

Each step's ``detail`` is typed (:data:`StepDetail`: :class:`BuildDetail`,
:class:`PushDetail`, :class:`ScanDetail`, :class:`GateFailure`, :class:`SyncDetail`,
:class:`TriggerDetail`, :class:`NoDetail`). :meth:`RunRecord.from_json` (and :func:`read`
for a file) turns a written record back into the typed one, validated by the schema;
writing it again gives the same document.

:func:`summary_markdown` renders the short human summary (a Markdown table) that the CLI
prints and the CI front ends put in their step summaries.

No secret reaches the record: steps carry names, digests and redacted targets only, and
:func:`redact` strips every URL in the detail down to ``scheme://host`` as a last guard.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

from acr_ci import __version__, fileio
from acr_ci.config.model import ScanMode
from acr_ci.errors import EXIT_BLOCKED, EXIT_FAILED, EXIT_OK
from acr_ci.errors import RecordError as RecordError  # lives in errors.py; importable here too
from acr_ci.models import BuildPlan, RefContext, RefType, Status
from acr_ci.sync import TagSync
from acr_ci.triggers import Delivery

if TYPE_CHECKING:
    from acr_ci.scan.gate import GateResult
    from acr_ci.sync import SyncResult
    from acr_ci.triggers import TriggerResult

DEFAULT_PATH = "acr-ci-record.json"
RECORD_KIND = "acr-ci/run-record"
RECORD_VERSION = 1
STEP_NAMES = ("build", "push", "scan", "sync", "trigger")
MAX_RECORD_BYTES = 32 * 1024 * 1024
""":func:`read` refuses bigger files (a record of a few hundred images is far smaller)."""

_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*)://(?:[^/\s?#@'\"]*@)?([^/\s?#'\"]*)[^\s'\"]*")


def redact(value: Any) -> Any:
    """``value`` with every URL in every string cut to ``scheme://host`` (recursively)."""
    if isinstance(value, str):
        return _URL.sub(lambda m: f"{m.group(1)}://{m.group(2)}", value)
    if isinstance(value, Mapping):
        return {str(k): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _ms(t: datetime) -> datetime:
    """``t`` in UTC, cut to the millisecond: the precision the record's times are written in."""
    t = t.astimezone(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _iso(t: datetime) -> str:
    return _ms(t).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(started: datetime, finished: datetime) -> float:
    """The duration between two times as the record writes them (so a record read back
    gives the same ``duration``)."""
    return round(max(0.0, (_ms(finished) - _ms(started)).total_seconds()), 3)


# -- reading JSON back, with one error for every shape problem ---------------------------


class _Doc:
    """One JSON object of a record being read, with typed getters that name the place."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, Mapping):
            raise _unreadable(where, "not an object")
        self.doc: Mapping[str, Any] = value
        self.where = where

    def _at(self, key: str) -> str:
        return f"{self.where}/{key}"

    def only(self, *keys: str) -> None:
        """Refuse keys outside ``keys`` (a typed record could not write them back)."""
        extra = sorted(set(self.doc) - set(keys))
        if extra:
            raise _unreadable(self.where, f"unexpected key {extra[0]!r}")

    def has(self, key: str) -> bool:
        return key in self.doc

    def get(self, key: str) -> Any:
        if key not in self.doc:
            raise _unreadable(self.where, f"{key!r} is missing")
        return self.doc[key]

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str):
            raise _unreadable(self._at(key), "not a string")
        return value

    def opt_text(self, key: str) -> str | None:
        return None if self.doc.get(key) is None else self.text(key)

    def integer(self, key: str) -> int:
        value = self.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _unreadable(self._at(key), "not an integer")
        return value

    def opt_integer(self, key: str) -> int | None:
        return None if self.doc.get(key) is None else self.integer(key)

    def number(self, key: str) -> float:
        value = self.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _unreadable(self._at(key), "not a number")
        return float(value)

    def flag(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise _unreadable(self._at(key), "not true or false")
        return value

    def time(self, key: str) -> datetime:
        try:
            t = datetime.fromisoformat(self.text(key))
        except ValueError:
            raise _unreadable(self._at(key), "not an ISO 8601 time") from None
        if t.tzinfo is None:
            raise _unreadable(self._at(key), "a time without a timezone")
        return t

    def array(self, key: str) -> list[Any]:
        value = self.get(key)
        if not isinstance(value, list):
            raise _unreadable(self._at(key), "not a list")
        return value

    def objects(self, key: str) -> list[_Doc]:
        return [_Doc(v, f"{self._at(key)}/{i}") for i, v in enumerate(self.array(key))]

    def texts(self, key: str) -> tuple[str, ...]:
        values = self.array(key)
        if not all(isinstance(v, str) for v in values):
            raise _unreadable(self._at(key), "not a list of strings")
        return tuple(values)

    def mapping(self, key: str, kind: type) -> Mapping[str, Any]:
        """An object whose values are all of type ``kind`` (``str`` or ``int``)."""
        value = _Doc(self.get(key), self._at(key)).doc
        if not all(isinstance(v, kind) and not isinstance(v, bool) for v in value.values()):
            raise _unreadable(self._at(key), f"not an object of {kind.__name__} values")
        return MappingProxyType(dict(value))

    def status(self, key: str = "status") -> Status:
        try:
            return Status(self.text(key))
        except ValueError:
            raise _unreadable(self._at(key), "not a step status") from None


def _unreadable(where: str, what: str) -> RecordError:
    return RecordError(
        f"the run record cannot be read at {where or '(top)'}: {what}",
        "the file was not written by this version of acr-ci's `run`, or was changed since",
    )


# -- typed step details ------------------------------------------------------------------


@dataclass(frozen=True)
class NoDetail:
    """No facts: the step did not run, or failed before it had any (``{}``)."""

    def to_json(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class BuildDetail:
    """A succeeded build."""

    builder: str
    """``buildah`` or ``buildx``."""
    digest: str
    """The image index's digest."""
    platforms: Mapping[str, str]
    """``os/arch[/variant]`` → that platform's manifest digest."""
    seconds: float
    """How long the build took."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "platforms", MappingProxyType(dict(self.platforms)))

    def to_json(self) -> dict[str, Any]:
        return {
            "builder": self.builder,
            "digest": self.digest,
            "platforms": dict(self.platforms),
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> BuildDetail:
        d = _Doc(value, where)
        d.only("builder", "digest", "platforms", "seconds")
        return cls(
            builder=d.text("builder"),
            digest=d.text("digest"),
            platforms=d.mapping("platforms", str),
            seconds=d.number("seconds"),
        )


@dataclass(frozen=True)
class PushDetail:
    """A succeeded push."""

    digest: str
    """The pushed digest (what every tag points at)."""
    tags: tuple[str, ...]
    """The tags pushed."""
    images: tuple[str, ...]
    """``registry/repo:tag``, one per tag."""
    bytes_sent: int
    """Blob and manifest bytes written to the registry."""
    blobs_copied: int
    """Blobs uploaded."""
    blobs_skipped: int
    """Blobs the registry already had."""

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "tags": list(self.tags),
            "images": list(self.images),
            "bytes_sent": self.bytes_sent,
            "blobs_copied": self.blobs_copied,
            "blobs_skipped": self.blobs_skipped,
        }

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> PushDetail:
        d = _Doc(value, where)
        d.only("digest", "tags", "images", "bytes_sent", "blobs_copied", "blobs_skipped")
        return cls(
            digest=d.text("digest"),
            tags=d.texts("tags"),
            images=d.texts("images"),
            bytes_sent=d.integer("bytes_sent"),
            blobs_copied=d.integer("blobs_copied"),
            blobs_skipped=d.integer("blobs_skipped"),
        )


@dataclass(frozen=True)
class ScanDetail:
    """A scan that gave a verdict (succeeded, or blocked by the gate)."""

    image: str
    """The image scanned, by digest (``registry/repo@sha256:…``)."""
    scanner: str
    """``trivy``, ``grype`` or ``report``."""
    mode: ScanMode
    """The gate's mode (``non-blocking``: a verdict that would block is only recorded)."""
    counts: Mapping[str, int]
    """Vulnerabilities per severity, highest severity first."""
    findings: int
    """Findings before merging by id and aliases."""
    vulnerabilities: int
    """Vulnerabilities after merging."""
    blocking: tuple[str, ...]
    """The ids of the vulnerabilities that block (or would block)."""
    would_block: bool
    """Whether the verdict blocks, whatever the mode."""
    verdict: str
    """The verdict in one line."""
    gate: GateResult | None = None
    """What the gate did to a blocked image (blocking mode only)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", MappingProxyType(dict(self.counts)))

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "image": self.image,
            "scanner": self.scanner,
            "mode": str(self.mode),
            "counts": dict(self.counts),
            "findings": self.findings,
            "vulnerabilities": self.vulnerabilities,
            "blocking": list(self.blocking),
            "would_block": self.would_block,
            "verdict": self.verdict,
        }
        if self.gate is not None:
            doc["gate"] = self.gate.to_json()
        return doc

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> ScanDetail:
        d = _Doc(value, where)
        d.only(
            "image",
            "scanner",
            "mode",
            "counts",
            "findings",
            "vulnerabilities",
            "blocking",
            "would_block",
            "verdict",
            "gate",
        )
        try:
            mode = ScanMode(d.text("mode"))
        except ValueError:
            raise _unreadable(f"{where}/mode", "not a scan mode") from None
        return cls(
            image=d.text("image"),
            scanner=d.text("scanner"),
            mode=mode,
            counts=d.mapping("counts", int),
            findings=d.integer("findings"),
            vulnerabilities=d.integer("vulnerabilities"),
            blocking=d.texts("blocking"),
            would_block=d.flag("would_block"),
            verdict=d.text("verdict"),
            gate=_gate_from_json(d.get("gate"), f"{where}/gate") if d.has("gate") else None,
        )


def _gate_from_json(value: object, where: str) -> GateResult:
    from acr_ci.scan.gate import GateResult

    d = _Doc(value, where)
    d.only("image", "tags", "backup", "backup_tags", "deleted", "deleted_children")
    return GateResult(
        image=d.text("image"),
        tags=d.texts("tags"),
        backup=d.opt_text("backup"),
        backup_tags=d.texts("backup_tags"),
        deleted=d.flag("deleted"),
        deleted_children=d.texts("deleted_children"),
    )


@dataclass(frozen=True)
class GateFailure:
    """A blocked image whose gate (backup, delete) failed: the image stays blocked."""

    error: str
    """Why the gate failed."""

    def to_json(self) -> dict[str, Any]:
        return {"gate": {"error": self.error}}

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> GateFailure:
        d = _Doc(value, where)
        d.only("gate")
        gate = _Doc(d.get("gate"), f"{where}/gate")
        gate.only("error")
        return cls(error=gate.text("error"))


@dataclass(frozen=True)
class SyncCopy:
    """What a sync sent to one destination."""

    bytes_sent: int
    """Blob and manifest bytes written to the destination."""
    blobs_copied: int
    """Blobs streamed to the destination."""
    blobs_skipped: int
    """Blobs the destination already had."""
    referrers: tuple[str, ...] = ()
    """Digests of referrers copied along."""


_COPY_KEYS = ("bytes_sent", "blobs_copied", "blobs_skipped", "referrers")


@dataclass(frozen=True)
class SyncDetail:
    """One mirror: where to, each selected tag, and what was sent."""

    destination: str
    """The destination repository (``registry/namespace/repo``), or the rule's ``to``."""
    tags: tuple[TagSync, ...] | None = None
    """One entry per selected tag; ``None`` when the destination was not tried (skipped)."""
    copied: SyncCopy | None = None
    """What was sent; ``None`` when the sync stopped before it started (or was skipped)."""

    @classmethod
    def of(cls, result: SyncResult) -> SyncDetail:
        """The detail of one destination's result (only its destination when skipped)."""
        if result.status is Status.SKIPPED:
            return cls(result.destination)
        copied = SyncCopy(
            bytes_sent=result.bytes_sent,
            blobs_copied=result.blobs_copied,
            blobs_skipped=result.blobs_skipped,
            referrers=result.referrers,
        )
        return cls(result.destination, tags=result.tags, copied=copied)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"destination": self.destination}
        if self.tags is not None:
            doc["tags"] = [t.to_json() for t in self.tags]
        if self.copied is not None:
            doc.update(
                bytes_sent=self.copied.bytes_sent,
                blobs_copied=self.copied.blobs_copied,
                blobs_skipped=self.copied.blobs_skipped,
                referrers=list(self.copied.referrers),
            )
        return doc

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> SyncDetail:
        d = _Doc(value, where)
        d.only("destination", "tags", *_COPY_KEYS)
        tags: tuple[TagSync, ...] | None = None
        if d.has("tags"):
            tags = tuple(_tag_sync(t) for t in d.objects("tags"))
        copied = None
        if any(d.has(k) for k in _COPY_KEYS):
            copied = SyncCopy(
                bytes_sent=d.integer("bytes_sent"),
                blobs_copied=d.integer("blobs_copied"),
                blobs_skipped=d.integer("blobs_skipped"),
                referrers=d.texts("referrers"),
            )
        return cls(d.text("destination"), tags=tags, copied=copied)


def _tag_sync(d: _Doc) -> TagSync:
    d.only("tag", "digest", "status", "reason")
    return TagSync(d.text("tag"), d.text("digest"), d.status(), d.opt_text("reason"))


@dataclass(frozen=True)
class TriggerDetail:
    """One trigger: its redacted target and one delivery per selected tag."""

    target: str
    """``scheme://host[:port]`` of its URL."""
    http_status: int | None = None
    """The HTTP status of the last delivery, when an answer came."""
    deliveries: tuple[Delivery, ...] | None = None
    """One per selected tag; ``None`` when the trigger was not tried (skipped)."""

    @classmethod
    def of(cls, result: TriggerResult) -> TriggerDetail:
        """The detail of one trigger's result (only its target when skipped)."""
        if result.status is Status.SKIPPED:
            return cls(result.target)
        return cls(result.target, http_status=result.http_status, deliveries=result.deliveries)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"target": self.target}
        if self.deliveries is not None:
            doc.update(
                http_status=self.http_status,
                deliveries=[d.to_json() for d in self.deliveries],
            )
        return doc

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> TriggerDetail:
        d = _Doc(value, where)
        if not d.has("deliveries"):
            d.only("target")
            return cls(d.text("target"))
        d.only("target", "http_status", "deliveries")
        return cls(
            d.text("target"),
            http_status=d.opt_integer("http_status"),
            deliveries=tuple(_delivery(e) for e in d.objects("deliveries")),
        )


def _delivery(d: _Doc) -> Delivery:
    d.only("tag", "status", "http_status", "attempts", "signed", "reason", "duration")
    return Delivery(
        tag=d.text("tag"),
        status=d.status(),
        http_status=d.opt_integer("http_status"),
        attempts=d.integer("attempts"),
        signed=d.flag("signed"),
        reason=d.opt_text("reason"),
        duration=d.number("duration"),
    )


StepDetail: TypeAlias = (
    NoDetail | BuildDetail | PushDetail | ScanDetail | GateFailure | SyncDetail | TriggerDetail
)
"""The detail of one step: which one depends on the step (see :data:`DETAILS`)."""

DETAILS: Mapping[str, tuple[type[StepDetail], ...]] = MappingProxyType(
    {
        "build": (NoDetail, BuildDetail),
        "push": (NoDetail, PushDetail),
        "scan": (NoDetail, ScanDetail, GateFailure),
        "sync": (SyncDetail,),
        "trigger": (TriggerDetail,),
    }
)
"""The details each step may carry."""


def detail_from_json(step: str, value: object, where: str = "detail") -> StepDetail:
    """The typed detail of a ``step`` from its JSON (as :meth:`StepRecord.to_json` wrote it)."""
    d = _Doc(value, where)
    if step == "sync":
        return SyncDetail.from_json(d.doc, where)
    if step == "trigger":
        return TriggerDetail.from_json(d.doc, where)
    if not d.doc:
        return NoDetail()
    if step == "build":
        return BuildDetail.from_json(d.doc, where)
    if step == "push":
        return PushDetail.from_json(d.doc, where)
    if step == "scan":
        if not d.has("image"):
            return GateFailure.from_json(d.doc, where)
        return ScanDetail.from_json(d.doc, where)
    raise _unreadable(where, f"unknown step {step!r}")


# -- the record --------------------------------------------------------------------------


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
    detail: StepDetail = field(default_factory=NoDetail)
    """The step's facts: digests, tags, finding counts, per-mirror/per-delivery results."""

    def __post_init__(self) -> None:
        if self.step not in STEP_NAMES:
            raise ValueError(f"unknown step {self.step!r}")
        if not isinstance(self.detail, DETAILS[self.step]):
            raise ValueError(f"a {self.step} step cannot carry a {type(self.detail).__name__}")

    @classmethod
    def skipped(
        cls,
        step: str,
        reason: str,
        *,
        name: str | None = None,
        at: datetime | None = None,
        detail: StepDetail | None = None,
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
            detail=detail if detail is not None else NoDetail(),
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
            "duration": _seconds(self.started, self.finished),
            "reason": redact(self.reason),
            "detail": redact(self.detail.to_json()),
        }

    @classmethod
    def from_json(cls, value: object, where: str = "step") -> StepRecord:
        d = _Doc(value, where)
        step = d.text("step")
        if step not in STEP_NAMES:
            raise _unreadable(f"{where}/step", f"unknown step {step!r}")
        return cls(
            step=step,
            status=d.status(),
            started=d.time("started"),
            finished=d.time("finished"),
            name=d.opt_text("name"),
            reason=d.opt_text("reason"),
            detail=detail_from_json(step, d.get("detail"), f"{where}/detail"),
        )


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

    @classmethod
    def from_json(cls, value: object, where: str = "image") -> ImageRecord:
        d = _Doc(value, where)
        image = cls(
            rule=d.text("rule"),
            image=d.text("image"),
            tags=d.texts("tags"),
            digest=d.opt_text("digest"),
            steps=tuple(StepRecord.from_json(s.doc, s.where) for s in d.objects("steps")),
        )
        if d.status() is not image.status:
            raise _unreadable(f"{where}/status", f"its steps say {image.status}")
        return image


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
    acr_ci_version: str = __version__
    """The acr-ci version that made the record."""

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
            "acr_ci_version": self.acr_ci_version,
            "config": self.config,
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "duration": _seconds(self.started, self.finished),
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

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunRecord:
        """The typed record of a document :meth:`to_json` wrote; :class:`RecordError` when
        it does not match the shipped schema or cannot be one (its statuses and exit code
        must follow from its steps)."""
        validate(doc)
        d = _Doc(doc, "")
        images = tuple(ImageRecord.from_json(i.doc, i.where) for i in d.objects("images"))
        plans = tuple(
            _plan_from_json(p, images[n].image if n < len(images) else None)
            for n, p in enumerate(d.objects("plan"))
        )
        record = cls(
            ref=_ref_from_json(_Doc(d.get("ref"), "ref")),
            plans=plans,
            images=images,
            started=d.time("started"),
            finished=d.time("finished"),
            config=d.opt_text("config"),
            acr_ci_version=d.text("acr_ci_version"),
        )
        if d.status() is not record.status:
            raise _unreadable("status", f"its images say {record.status}")
        if d.integer("exit_code") != record.exit_code:
            raise _unreadable("exit_code", f"its images say {record.exit_code}")
        return record


def _ref_from_json(d: _Doc) -> RefContext:
    return RefContext(
        type=RefType(d.text("type")),
        name=d.text("name"),
        sha=d.text("sha"),
        time=d.time("time"),
        event=d.opt_text("event"),
        repository=d.opt_text("repository"),
        source=d.text("source"),
    )


def _plan_from_json(d: _Doc, repository: str | None) -> BuildPlan:
    """One ``plan`` entry; its repository is its images' (``repo:tag``) less the tag, or
    ``repository`` (its image's) when it has no tag."""
    tags, images = d.texts("tags"), d.texts("images")
    if tags and images and images[0].endswith(f":{tags[0]}"):
        repository = images[0][: -len(tags[0]) - 1]
    if repository is None:
        raise _unreadable(d.where, "its repository cannot be told")
    plan = BuildPlan(
        rule=d.text("rule"),
        image=repository,
        tags=tags,
        platforms=d.texts("platforms"),
        context=d.text("context"),
        dockerfile=d.text("dockerfile"),
        args=d.mapping("args", str),
        no_cache=d.flag("no_cache"),
    )
    if plan.images != images:
        raise _unreadable(f"{d.where}/images", "not one repo:tag per tag")
    return plan


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
    """Validate and write ``record`` to ``path`` atomically (temp file + rename).

    :class:`~acr_ci.errors.OutputError` (exit 1) when it cannot be written; no temporary
    file is left behind."""
    doc = record.to_json()
    validate(doc)
    target = Path(path)
    return fileio.write_json(
        target,
        doc,
        what="the run record",
        message=f"cannot write the run record to {str(target)!r}",
        parents=True,
        hint="pass --record with a writable path",
    )


def read(path: str | os.PathLike[str]) -> RunRecord:
    """The run record at ``path`` (:meth:`RunRecord.from_json`); :class:`RecordError` when
    there is none, or it is not a valid record."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RECORD_BYTES + 1)
    except OSError as e:
        raise RecordError(
            f"no run record at {str(path)!r}: {e.strerror or type(e).__name__}"
        ) from None
    if len(data) > MAX_RECORD_BYTES:
        raise RecordError(f"{str(path)!r} is not a run record: over {MAX_RECORD_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except ValueError:
        raise RecordError(f"{str(path)!r} is not a run record: not JSON") from None
    if not isinstance(doc, dict):
        raise RecordError(f"{str(path)!r} is not a run record: not a JSON object")
    return RunRecord.from_json(doc)


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
    names: list[str] = []
    if isinstance(d, SyncDetail):
        parts.append(d.destination)
        names = [t.tag for t in d.tags or ()]
    if isinstance(d, TriggerDetail):
        parts.append(d.target)
        if d.http_status is not None:
            parts.append(f"HTTP {d.http_status}")
        names = [e.tag for e in d.deliveries or ()]
    if names:
        parts.append("tags " + ", ".join(names))
    if s.reason:
        parts.append(s.reason)
    return " · ".join(parts) or "—"
