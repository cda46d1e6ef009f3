"""Typed run records for the front-end tests: what ``acr-ci run`` would have written."""

from __future__ import annotations

from datetime import UTC, datetime

from acr_ci.config.model import ScanMode
from acr_ci.models import RefContext, RefType, Status
from acr_ci.record import (
    ImageRecord,
    NoDetail,
    RunRecord,
    ScanDetail,
    StepDetail,
    StepRecord,
    SyncDetail,
)

T0 = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def step(
    kind: str,
    status: Status,
    *,
    name: str | None = None,
    reason: str | None = None,
    detail: StepDetail | None = None,
) -> StepRecord:
    """One step; a sync step gets its destination ``mirror.example/NAME`` unless ``detail``."""
    if detail is None and kind == "sync":
        detail = SyncDetail(f"mirror.example/{name}", tags=None if status is Status.SKIPPED else ())
    return StepRecord(step=kind, status=status, started=T0, finished=T0, name=name, reason=reason,
                      detail=detail if detail is not None else NoDetail())


def scan_detail(image: str, *, blocking: tuple[str, ...] = (), would_block: bool = False) -> ScanDetail:
    """A scan step's detail with ``blocking`` vulnerability ids."""
    return ScanDetail(
        image=image, scanner="trivy", mode=ScanMode.BLOCKING, counts={"high": len(blocking)},
        findings=len(blocking), vulnerabilities=len(blocking), blocking=blocking,
        would_block=would_block or bool(blocking), verdict="blocked" if blocking else "passed",
    )


def image(rule: str, repo: str, tags: tuple[str, ...], digest: str | None, *steps: StepRecord) -> ImageRecord:
    return ImageRecord(rule=rule, image=repo, tags=tags, digest=digest, steps=steps)


def run_record(*images: ImageRecord) -> RunRecord:
    ref = RefContext(type=RefType.BRANCH, name="main", sha="a" * 40, time=T0)
    return RunRecord(ref=ref, plans=(), images=images, started=T0, finished=T0, config=".acr-ci.yml")
