"""The short human summary (a Markdown table) that the CLI prints and the CI front ends
put in their step summaries."""

from __future__ import annotations

from collections.abc import Sequence

from acr_ci.models import Status
from acr_ci.record.details import BuildDetail, SyncDetail, TriggerDetail
from acr_ci.record.model import STEP_NAMES, RunRecord, StepRecord
from acr_ci.record.shape import redact
from acr_ci.text import LINE_LIMIT, clean_remote

_MARK = {
    Status.SUCCEEDED: "✅",
    Status.FAILED: "❌",
    Status.BLOCKED: "⛔",
    Status.SKIPPED: "⏭️",
}


def _cell(text: object) -> str:
    """Text made safe for one Markdown table cell (one line, no control characters, no
    pipes, no HTML)."""
    s = str(redact(clean_remote(str(text), LINE_LIMIT)))
    for ch, rep in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "'")):
        s = s.replace(ch, rep)
    return s


def _short(digest: str | None) -> str:
    if not digest:
        return "—"
    algo, _, hexpart = digest.partition(":")
    return f"`{algo}:{hexpart[:12]}`"


_HEADS = {"trigger": "triggers"}
"""Column heads that are not the step's name."""


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
    # a merged run (``run --merge``) has merge steps where others have build steps
    merged = any(img.step("merge") for img in record.images)
    steps = [n for n in STEP_NAMES if n != ("build" if merged else "merge")]
    for optional in ("accelerate", "sign", "attest"):  # a column only when used
        if not any(img.step(optional) for img in record.images):
            steps.remove(optional)
    heads = [_HEADS.get(n, n) for n in steps]
    lines += [
        "| rule | image | tags | digest | " + " | ".join(heads) + " |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in heads) + " |",
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
                    *(_steps_cell(img.step(n)) for n in steps),
                ]
            )
            + " |"
        )
    details = [
        (img, s)
        for img in record.images
        for s in img.steps
        if s.status is not Status.SUCCEEDED
        or s.step in ("sync", "trigger")
        or (isinstance(s.detail, BuildDetail) and s.detail.cache and s.detail.cache.error)
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
    if isinstance(d, BuildDetail) and d.cache is not None and d.cache.error:
        parts.append(f"registry cache {d.cache.ref}: {d.cache.error}")
    if names:
        parts.append("tags " + ", ".join(names))
    if s.reason:
        parts.append(s.reason)
    return " · ".join(parts) or "—"
