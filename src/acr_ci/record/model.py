"""The record itself: :class:`StepRecord`, :class:`ImageRecord`, :class:`RunRecord`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from acr_ci import __version__
from acr_ci.errors import EXIT_BLOCKED, EXIT_FAILED, EXIT_OK
from acr_ci.models import BuildCache, BuildPlan, CacheMode, RefContext, RefType, Status
from acr_ci.record.details import DETAILS, NoDetail, SignDetail, StepDetail, detail_from_json
from acr_ci.record.shape import Doc, iso_time, redact, seconds_between, unreadable
from acr_ci.record.validation import validate
from acr_ci.text import LINE_LIMIT, clean_remote

RECORD_KIND = "acr-ci/run-record"
RECORD_VERSION = 1
STEP_NAMES = (
    "build", "merge", "push", "scan", "accelerate", "sign", "attest", "sync", "trigger",
)  # fmt: skip


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
    """The sync destination's or trigger's name; for ``sign`` and ``attest`` what it is
    about (``index``, a platform, ``provenance``, ``sbom linux/amd64``); else ``None``."""
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
            "started": iso_time(self.started),
            "finished": iso_time(self.finished),
            "duration": seconds_between(self.started, self.finished),
            "reason": None
            if self.reason is None
            else redact(clean_remote(self.reason, LINE_LIMIT)),
            "detail": self._detail_json(),
        }

    def _detail_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = redact(self.detail.to_json())
        if isinstance(self.detail, SignDetail):
            # a keyless identity (a workflow URL) and a predicate type are public names, not
            # URLs that may carry a token: kept whole, or the record could not say who signed
            doc.update(identity=self.detail.identity, predicate_type=self.detail.predicate_type)
        return doc

    @classmethod
    def from_json(cls, value: object, where: str = "step") -> StepRecord:
        d = Doc(value, where)
        step = d.text("step")
        if step not in STEP_NAMES:
            raise unreadable(f"{where}/step", f"unknown step {step!r}")
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
        d = Doc(value, where)
        image = cls(
            rule=d.text("rule"),
            image=d.text("image"),
            tags=d.texts("tags"),
            digest=d.opt_text("digest"),
            steps=tuple(StepRecord.from_json(s.doc, s.where) for s in d.objects("steps")),
        )
        if d.status() is not image.status:
            raise unreadable(f"{where}/status", f"its steps say {image.status}")
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
            "started": iso_time(self.started),
            "finished": iso_time(self.finished),
            "duration": seconds_between(self.started, self.finished),
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
        d = Doc(doc, "")
        images = tuple(ImageRecord.from_json(i.doc, i.where) for i in d.objects("images"))
        plans = tuple(
            _plan_from_json(p, images[n].image if n < len(images) else None)
            for n, p in enumerate(d.objects("plan"))
        )
        record = cls(
            ref=_ref_from_json(Doc(d.get("ref"), "ref")),
            plans=plans,
            images=images,
            started=d.time("started"),
            finished=d.time("finished"),
            config=d.opt_text("config"),
            acr_ci_version=d.text("acr_ci_version"),
        )
        if d.status() is not record.status:
            raise unreadable("status", f"its images say {record.status}")
        if d.integer("exit_code") != record.exit_code:
            raise unreadable("exit_code", f"its images say {record.exit_code}")
        return record


def _ref_from_json(d: Doc) -> RefContext:
    return RefContext(
        type=RefType(d.text("type")),
        name=d.text("name"),
        sha=d.text("sha"),
        time=d.time("time"),
        event=d.opt_text("event"),
        repository=d.opt_text("repository"),
        source=d.text("source"),
    )


def _cache_from_json(d: Doc) -> BuildCache | None:
    """A plan entry's ``cache`` (absent in records written before it existed: none)."""
    if not d.has("cache") or d.doc["cache"] is None:
        return None
    c = Doc(d.doc["cache"], f"{d.where}/cache")
    c.only("ref", "mode")
    mode = c.text("mode")
    if mode not in {m.value for m in CacheMode}:
        raise unreadable(f"{c.where}/mode", "not min or max")
    return BuildCache(ref=c.text("ref"), mode=CacheMode(mode))


def _plan_from_json(d: Doc, repository: str | None) -> BuildPlan:
    """One ``plan`` entry; its repository is its images' (``repo:tag``) less the tag, or
    ``repository`` (its image's) when it has no tag."""
    tags, images = d.texts("tags"), d.texts("images")
    if tags and images and images[0].endswith(f":{tags[0]}"):
        repository = images[0][: -len(tags[0]) - 1]
    if repository is None:
        raise unreadable(d.where, "its repository cannot be told")
    plan = BuildPlan(
        rule=d.text("rule"),
        image=repository,
        tags=tags,
        platforms=d.texts("platforms"),
        context=d.text("context"),
        dockerfile=d.text("dockerfile"),
        args=d.mapping("args", str),
        no_cache=d.flag("no_cache"),
        cache=_cache_from_json(d),
    )
    if plan.images != images:
        raise unreadable(f"{d.where}/images", "not one repo:tag per tag")
    return plan
