"""What a CI front end publishes after one ``acr-ci`` command, and where it comes from.

A front end runs one command line, then hands its :class:`Results` to the platform's
output sink (:mod:`acr_ci.platforms.sinks`): GitHub step outputs, a summary and
annotations; a GitLab dotenv report; Tekton results files. Every value here is read
from what the command wrote — the run record (``run``), ``--output-json`` (``build``,
``scan``), the JSON plan (``plan``) or a :class:`~acr_ci.errors.ConfigError` — so the
front ends hold no logic of their own.

Values (the same meaning on every platform):

``digest``
    the first image's digest (``sha256:…``), ``""`` when nothing was built or pushed;
``images``
    one ``registry/repo@digest`` per built image, in rule order (Tekton Chains' ``IMAGES``);
``tags``
    every full reference ``registry/repo:tag`` of every image;
``image_url``
    the first of ``tags`` (Tekton's ``IMAGE_URL``);
``blocked``
    whether the scan gate blocked an image;
``status``
    ``succeeded``, ``failed``, ``blocked`` or ``skipped`` (nothing to do), or ``error``
    when the command itself stopped (bad usage or config);
``record``
    the run record's path (``run`` only);
``accelerated_digest``
    the digest of the first image's accelerated (eStargz) twin, from the run record's
    ``accelerate`` step (``run``) or what ``acr-ci accelerate`` printed; ``""`` when none
    was made.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from acr_ci.errors import EXIT_BLOCKED, EXIT_OK, ConfigError
from acr_ci.models import Status
from acr_ci.record import AccelerateDetail, RunRecord, ScanDetail, StepRecord


class Level(enum.StrEnum):
    """How loud an annotation is (GitHub's three levels; GitLab and Tekton print them)."""

    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"


@dataclass(frozen=True)
class Annotation:
    """One message tied, when possible, to a place in a file of the repository."""

    level: Level
    """error, warning or notice."""
    message: str
    """What is wrong (one or more lines); never a secret."""
    title: str | None = None
    """A short heading (``acr-ci config``, ``scan gate``)."""
    file: str | None = None
    """The file, relative to the repository's root as the user gave it."""
    line: int = 0
    """1-based line (0: unknown)."""
    column: int = 0
    """1-based column (0: unknown)."""


@dataclass(frozen=True)
class Results:
    """The outcome of one front-end run, ready for a sink (see the module doc)."""

    command: str
    """The ``acr-ci`` subcommand that ran."""
    exit_code: int
    """Its exit code (0 done, 1 failed, 2 usage/config, 3 blocked)."""
    digest: str = ""
    images: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    blocked: bool = False
    status: str = "succeeded"
    record: str = ""
    summary: str = ""
    """Markdown for the platform's summary page (may be empty)."""
    annotations: tuple[Annotation, ...] = ()
    reports: Mapping[str, str] = field(default_factory=dict)
    """Report files written: ``container_scanning``, ``sarif``, ``scan_json`` → path."""
    accelerated_digest: str = ""
    """The first accelerated twin's digest (see the module doc)."""

    @property
    def image_url(self) -> str:
        return self.tags[0] if self.tags else ""

    def values(self) -> dict[str, str]:
        """The published values as strings, keyed by their lowercase names; lists one per line."""
        return {
            "digest": self.digest,
            "images": "\n".join(self.images),
            "tags": "\n".join(self.tags),
            "image-url": self.image_url,
            "blocked": "true" if self.blocked else "false",
            "status": self.status,
            "exit-code": str(self.exit_code),
            "record": self.record,
            "accelerated-digest": self.accelerated_digest,
        }


class OutputSink(Protocol):
    """Where a platform's outputs go. Sinks never print secrets."""

    def mask(self, secret: str) -> None:
        """Ask the platform to hide ``secret`` from the job log (no-op where unsupported)."""
        ...

    def publish(self, results: Results) -> None:
        """Write ``results`` the platform's way."""
        ...


def status_for(exit_code: int) -> str:
    """The ``status`` of a command that wrote no record: from its exit code."""
    if exit_code == EXIT_OK:
        return "succeeded"
    if exit_code == EXIT_BLOCKED:
        return "blocked"
    if exit_code == 2:
        return "error"
    return "failed"


# -- from what the commands wrote ------------------------------------------------------------


def from_record(record: RunRecord, *, path: str, summary: str = "") -> Results:
    """``acr-ci run``'s record → results; a failed or blocked step becomes an annotation."""
    images: list[str] = []
    tags: list[str] = []
    digest = ""
    twin = ""
    notes: list[Annotation] = []
    for img in record.images:
        if img.digest:
            digest = digest or img.digest
            images.append(f"{img.image}@{img.digest}")
            tags.extend(f"{img.image}:{t}" for t in img.tags)
        for step in img.steps:
            notes.extend(_step_annotations(img.rule, step))
            if (
                not twin
                and step.status is Status.SUCCEEDED
                and isinstance(step.detail, AccelerateDetail)
            ):
                twin = step.detail.digest
    status = str(record.status)
    return Results(
        command="run",
        exit_code=record.exit_code,
        digest=digest,
        images=tuple(images),
        tags=tuple(tags),
        blocked=record.status is Status.BLOCKED,
        status=status,
        record=path,
        summary=summary,
        annotations=tuple(notes),
        accelerated_digest=twin,
    )


def _step_annotations(rule: str, step: StepRecord) -> list[Annotation]:
    name = f"{step.step} {step.name}" if step.name else step.step
    reason = step.reason or ""
    detail = step.detail
    if step.status is Status.FAILED:
        return [Annotation(Level.ERROR, reason or f"{name} failed", title=f"acr-ci {rule}: {name}")]
    if step.status is Status.BLOCKED:
        ids = ", ".join(detail.blocking) if isinstance(detail, ScanDetail) else ""
        text = reason + (f" ({ids})" if ids else "")
        return [Annotation(Level.ERROR, text, title=f"acr-ci {rule}: scan gate")]
    if isinstance(detail, ScanDetail) and detail.would_block:
        return [
            Annotation(
                Level.WARNING,
                reason or "the scan gate would block",
                title=f"acr-ci {rule}: scan gate (non-blocking)",
            )
        ]
    return []


def from_build(doc: Mapping[str, Any], *, exit_code: int, command: str = "build") -> Results:
    """``acr-ci build --output-json`` (or ``merge``'s, the same shape): digests of built
    (and, with --push, pushed) images; ``merge``: the pushed indexes and their tags.

    A ``build --push-by-digest`` moved no tag: its ``images`` are the platform images it
    pushed by digest (the ``digests`` list, ``registry/repo@digest`` each), ``tags`` is
    empty and ``digest`` the first platform image's."""
    images: list[str] = []
    tags: list[str] = []
    pushed = doc.get("digests")
    if isinstance(pushed, list):
        images = [f"{d['image']}@{d['digest']}" for d in pushed if isinstance(d, Mapping)]
    else:
        for b in doc.get("builds", []):
            images.append(f"{b['image']}@{b['index_digest']}")
            tags.extend(str(i) for i in b.get("images", []))
    return Results(
        command=command,
        exit_code=exit_code,
        digest=images[0].rsplit("@", 1)[1] if images else "",
        images=tuple(images),
        tags=tuple(tags),
        status=status_for(exit_code) if images or exit_code else "skipped",
    )


def from_plan(doc: Mapping[str, Any], *, exit_code: int) -> Results:
    """``acr-ci plan --format json``: the tags this ref would get (no digest yet)."""
    tags = [str(i) for b in doc.get("builds", []) for i in b.get("images", [])]
    return Results(
        command="plan",
        exit_code=exit_code,
        tags=tuple(tags),
        status=status_for(exit_code) if tags or exit_code else "skipped",
    )


def from_scan(
    doc: Mapping[str, Any] | None, *, exit_code: int, reports: Mapping[str, str]
) -> Results:
    """``acr-ci scan --output-json``: the verdict; blocking vulnerabilities as annotations."""
    if doc is None:
        return Results(
            command="scan", exit_code=exit_code, status=status_for(exit_code), reports=dict(reports)
        )
    verdict = doc.get("verdict") or {}
    image = str(doc.get("image") or "")
    blocked = bool(verdict.get("blocked"))
    notes: list[Annotation] = []
    if blocked:
        ids = ", ".join(str(i) for i in verdict.get("blocking", []))
        level = Level.ERROR if doc.get("enforced", True) else Level.WARNING
        notes.append(
            Annotation(
                level,
                f"{verdict.get('reason', 'blocked')}" + (f" ({ids})" if ids else ""),
                title="acr-ci scan gate",
            )
        )
    digest = image.rsplit("@", 1)[1] if "@" in image else ""
    return Results(
        command="scan",
        exit_code=exit_code,
        digest=digest,
        images=(image,) if digest else (),
        blocked=blocked and exit_code == EXIT_BLOCKED,
        status=status_for(exit_code),
        annotations=tuple(notes),
        reports=dict(reports),
    )


def from_accelerate(stdout: str, image: str, *, exit_code: int) -> Results:
    """``acr-ci accelerate``: the twin's digest, the last line it printed (``sha256:…``;
    anything else counts as none). ``digest`` and ``images`` name the twin too."""
    from acr_ci.registry.reference import Reference, valid_digest

    lines = stdout.strip().splitlines()
    last = lines[-1].strip() if lines and exit_code == EXIT_OK else ""
    if not valid_digest(last):
        return from_exit("accelerate", exit_code)
    repo = Reference.parse(image, what="accelerate image").name
    return Results(
        command="accelerate",
        exit_code=exit_code,
        digest=last,
        images=(f"{repo}@{last}",),
        status=status_for(exit_code),
        accelerated_digest=last,
    )


def from_exit(command: str, exit_code: int) -> Results:
    """A command that writes nothing to read back (``sync``, ``trigger``)."""
    return Results(command=command, exit_code=exit_code, status=status_for(exit_code))


_MARKS = {"succeeded": "✅", "failed": "❌", "blocked": "⛔", "skipped": "⏭️", "error": "❌"}


def _code(text: str) -> str:
    """``text`` as one line of inline Markdown code (backticks and HTML cannot escape it)."""
    flat = " ".join(text.split()).replace("`", "'").replace("<", "&lt;").replace(">", "&gt;")
    return f"`{flat}`"


def command_summary(results: Results, *, limit: int = 50) -> str:
    """A short Markdown summary of a command that wrote no run record (plan, build, scan,
    sync, trigger): its status and exit code, the images and tags, the annotations' titles
    and messages; at most ``limit`` lines of each list."""
    mark = _MARKS.get(results.status, "")
    lines = [
        f"### acr-ci {results.command}: {mark} {results.status}".replace("  ", " "),
        "",
        f"exit code {results.exit_code}" + (" · the scan gate blocked" if results.blocked else ""),
    ]
    for title, values in (("Images", results.images), ("Tags", results.tags)):
        if values:
            lines += ["", f"{title}:", ""]
            lines += [f"- {_code(v)}" for v in values[:limit]]
            if len(values) > limit:
                lines.append(f"- … and {len(values) - limit} more")
    if results.annotations:
        lines += ["", "Messages:", ""]
        for a in results.annotations[:limit]:
            head = f"**{_code(a.title)}** " if a.title else ""
            lines.append(f"- {a.level}: {head}{_code(first_line(a.message))}")
    return "\n".join(lines) + "\n"


def config_annotations(error: ConfigError) -> tuple[Annotation, ...]:
    """One error annotation per config problem, at its file, line and column."""
    return tuple(
        Annotation(
            Level.ERROR,
            f"{p.path}: {p.message}" if p.path else p.message,
            title="acr-ci config",
            file=p.file,
            line=p.line,
            column=p.column,
        )
        for p in error.problems
    )


def with_annotations(results: Results, extra: Iterable[Annotation]) -> Results:
    """``results`` with ``extra`` annotations appended (a new value)."""
    from dataclasses import replace

    return replace(results, annotations=(*results.annotations, *extra))


def first_line(text: str) -> str:
    """The first non-empty line of ``text``."""
    return next((line for line in text.splitlines() if line.strip()), "")


def one_line(values: Sequence[str], sep: str = ",") -> str:
    """``values`` joined on one line (dotenv and Tekton results take no newlines)."""
    return sep.join(v for v in values if v)
