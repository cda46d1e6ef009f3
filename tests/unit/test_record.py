"""The run record: statuses and exit codes, schema validity, redaction, the Markdown summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from acr_ci.errors import EXIT_BLOCKED, EXIT_FAILED, EXIT_OK
from acr_ci.models import BuildPlan, RefContext, RefType
from acr_ci.record import (
    ImageRecord,
    RecordError,
    RunRecord,
    Status,
    StepRecord,
    redact,
    schema,
    summary_markdown,
    validate,
    write,
)

T0 = datetime(2024, 3, 1, 4, 0, 0, tzinfo=UTC)
DIGEST = "sha256:" + "cd" * 32
REF = RefContext(type=RefType.BRANCH, name="main", sha="a" * 40, time=T0, source="flags")
PLAN = BuildPlan(
    rule="main",
    image="reg.example.com/team/app",
    tags=("latest", "aaaaaa"),
    platforms=("linux/amd64",),
    context=".",
    dockerfile="Dockerfile",
)


def step(kind: str, status: Status, *, at: int = 0, **kw: object) -> StepRecord:
    return StepRecord(
        step=kind,
        status=status,
        started=T0 + timedelta(seconds=at),
        finished=T0 + timedelta(seconds=at + 1.5),
        **kw,  # type: ignore[arg-type]
    )


def full_steps(scan: Status = Status.SUCCEEDED, sync: Status = Status.SUCCEEDED) -> tuple[StepRecord, ...]:
    return (
        step("build", Status.SUCCEEDED, detail={"digest": DIGEST, "platforms": ["linux/amd64"]}),
        step("push", Status.SUCCEEDED, at=2, detail={"digest": DIGEST, "tags": ["latest", "aaaaaa"]}),
        step("scan", scan, at=4, detail={"counts": {"critical": 1, "high": 0}},
             reason="1 critical finding at or above high" if scan is Status.BLOCKED else None),
        step(
            "sync",
            sync,
            at=6,
            name="mirror-a",
            detail={
                "destination": "mirror.example.com/team/app",
                "tags": [{"tag": "latest", "digest": DIGEST, "status": str(sync)}],
            },
            reason="connection refused" if sync is Status.FAILED else None,
        ),
        step(
            "trigger",
            Status.SUCCEEDED,
            at=8,
            name="deploy",
            detail={
                "target": "https://hooks.example.com",
                "http_status": 200,
                "deliveries": [
                    {"tag": "latest", "status": "succeeded", "http_status": 200, "attempts": 1, "signed": True}
                ],
            },
        ),
    )


def run(*images: ImageRecord) -> RunRecord:
    return RunRecord(
        ref=REF, plans=(PLAN,), images=images, started=T0, finished=T0 + timedelta(seconds=12),
        config=".acr-ci.yml",
    )


def img(steps: tuple[StepRecord, ...], rule: str = "main") -> ImageRecord:
    return ImageRecord(rule=rule, image=PLAN.image, tags=PLAN.tags, digest=DIGEST, steps=steps)


EXITS = [
    ("all-ok", [full_steps()], Status.SUCCEEDED, EXIT_OK),
    ("sync-failed", [full_steps(sync=Status.FAILED)], Status.FAILED, EXIT_FAILED),
    ("blocked", [full_steps(scan=Status.BLOCKED)], Status.BLOCKED, EXIT_BLOCKED),
    ("blocked-wins-over-failed", [full_steps(sync=Status.FAILED), full_steps(scan=Status.BLOCKED)],
     Status.BLOCKED, EXIT_BLOCKED),
    ("skipped-scan-is-ok", [full_steps(scan=Status.SKIPPED)], Status.SUCCEEDED, EXIT_OK),
    ("nothing-built", [], Status.SKIPPED, EXIT_OK),
]


@pytest.mark.parametrize(("case", "images", "status", "code"), EXITS, ids=[c[0] for c in EXITS])
def test_status_and_exit_code(case: str, images: list[tuple[StepRecord, ...]], status: Status, code: int) -> None:
    record = run(*(img(s, rule=f"r{i}") for i, s in enumerate(images)))
    assert record.status is status
    assert record.exit_code == code
    doc = record.to_json()
    validate(doc)
    assert doc["exit_code"] == code


def test_record_document_shape() -> None:
    doc = run(img(full_steps())).to_json()
    assert doc["ref"]["name"] == "main"
    assert doc["plan"] == [PLAN.to_json()]
    steps = doc["images"][0]["steps"]
    assert [s["step"] for s in steps] == ["build", "push", "scan", "sync", "trigger"]
    assert steps[0]["started"] == "2024-03-01T04:00:00.000Z"
    assert steps[0]["duration"] == 1.5
    assert doc["duration"] == 12.0
    # the shipped schema is itself a valid 2020-12 schema
    jsonschema.Draft202012Validator.check_schema(schema())


BAD_DOCS = [
    ("bad-status", lambda d: d["images"][0]["steps"][0].update(status="ok")),
    ("missing-finished", lambda d: d["images"][0]["steps"][0].pop("finished")),
    ("blocked-non-scan", lambda d: d["images"][0]["steps"][0].update(status="blocked")),
    ("tokened-target", lambda d: d["images"][0]["steps"][4]["detail"].update(target="https://h/x?token=1")),
    ("bad-digest", lambda d: d["images"][0].update(digest="sha256:xyz")),
    ("bad-exit", lambda d: d.update(exit_code=2)),
]


@pytest.mark.parametrize(("case", "mutate"), BAD_DOCS, ids=[c[0] for c in BAD_DOCS])
def test_schema_rejects(case: str, mutate: object) -> None:
    doc = run(img(full_steps())).to_json()
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(RecordError):
        validate(doc)


def test_urls_in_detail_and_reasons_are_cut_to_origin() -> None:
    s = step(
        "trigger",
        Status.FAILED,
        name="t",
        reason="POST https://hooks.example.com/deploy/SECRET?token=SECRET failed",
        detail={"target": "https://user:SECRET@hooks.example.com/p?token=SECRET", "http_status": None,
                "deliveries": [], "nested": [{"u": "http://127.0.0.1:8080/SECRET"}]},
    )
    record = run(img((s,)))
    text = json.dumps(record.to_json()) + summary_markdown(record)
    assert "SECRET" not in text
    assert "https://hooks.example.com" in text
    assert redact({"a": ("x https://h.example/p?q=1 y",)}) == {"a": ["x https://h.example y"]}


def test_write_validates_and_is_readable(tmp_path: Path) -> None:
    path = write(run(img(full_steps())), tmp_path / "sub" / "record.json")
    doc = json.loads(path.read_text())
    validate(doc)
    assert doc["status"] == "succeeded"
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]  # no temp files left


def test_write_to_an_unwritable_place_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(Exception) as info:
        write(run(img(full_steps())), blocker / "record.json")
    assert "cannot write the run record" in str(info.value)


def test_summary_markdown() -> None:
    record = run(img(full_steps(sync=Status.FAILED)), img(full_steps(scan=Status.BLOCKED), rule="release"))
    md = summary_markdown(record)
    lines = md.splitlines()
    assert lines[0] == "### acr-ci run: ⛔ blocked"
    header = next(i for i, line in enumerate(lines) if line.startswith("| rule | image"))
    rows = lines[header + 2 : header + 4]
    assert rows[0].startswith("| main | `reg.example.com/team/app` | `latest`, `aaaaaa` | `sha256:cdcdcdcdcdcd` |")
    assert "❌ 1" in rows[0]  # the failed mirror
    assert "⛔ blocked" in rows[1]
    assert any("sync mirror-a" in line and "connection refused" in line for line in lines)
    assert any("trigger deploy" in line and "HTTP 200" in line for line in lines)
    # each table row has the same number of cells as its header
    for line in lines:
        if line.startswith("| main") or line.startswith("| release"):
            assert line.replace("\\|", "").count("|") in (10, 5)


def test_summary_escapes_hostile_ref_names() -> None:
    ref = RefContext(type=RefType.BRANCH, name="x|y`<script>", sha="", time=T0)
    record = RunRecord(ref=ref, plans=(), images=(), started=T0, finished=T0)
    md = summary_markdown(record)
    assert "<script>" not in md
    assert "No build rule matches" in md
