"""The run record: statuses and exit codes, schema validity, redaction, the Markdown summary."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from acr_ci.config.model import ScanMode
from acr_ci.errors import EXIT_BLOCKED, EXIT_FAILED, EXIT_OK, OutputError
from acr_ci.models import BuildCache, BuildPlan, CacheMode, CacheOutcome, RefContext, RefType
from acr_ci.record import (
    BuildDetail,
    ImageRecord,
    PushDetail,
    RecordError,
    RunRecord,
    ScanDetail,
    Status,
    StepRecord,
    SyncDetail,
    TriggerDetail,
    redact,
    schema,
    summary_markdown,
    validate,
    write,
)
from acr_ci.sync import TagSync
from acr_ci.triggers import Delivery

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
    cache=BuildCache(ref="reg.example.com/cache/main", mode=CacheMode.MAX),
)
CACHE = CacheOutcome(ref="reg.example.com/cache/main", read=True, written=False, error="cache push refused")


def step(kind: str, status: Status, *, at: int = 0, **kw: object) -> StepRecord:
    return StepRecord(
        step=kind,
        status=status,
        started=T0 + timedelta(seconds=at),
        finished=T0 + timedelta(seconds=at + 1.5),
        **kw,  # type: ignore[arg-type]
    )


SCAN = ScanDetail(
    image=f"{PLAN.image}@{DIGEST}", scanner="report", mode=ScanMode.BLOCKING, counts={"critical": 1, "high": 0},
    findings=1, vulnerabilities=1, blocking=("CVE-2024-3094",), would_block=True,
    verdict="1 critical finding at or above high",
)


def full_steps(scan: Status = Status.SUCCEEDED, sync: Status = Status.SUCCEEDED) -> tuple[StepRecord, ...]:
    return (
        step("build", Status.SUCCEEDED,
             detail=BuildDetail(builder="buildah", digest=DIGEST, platforms={"linux/amd64": DIGEST}, seconds=1.5,
                                cache=CACHE)),
        step("push", Status.SUCCEEDED, at=2,
             detail=PushDetail(digest=DIGEST, tags=("latest", "aaaaaa"), images=PLAN.images, bytes_sent=0,
                               blobs_copied=0, blobs_skipped=0)),
        step("scan", scan, at=4, detail=SCAN,
             reason="1 critical finding at or above high" if scan is Status.BLOCKED else None),
        step(
            "sync",
            sync,
            at=6,
            name="mirror-a",
            detail=SyncDetail(
                destination="mirror.example.com/team/app",
                tags=(TagSync(tag="latest", digest=DIGEST, status=sync),),
            ),
            reason="connection refused" if sync is Status.FAILED else None,
        ),
        step(
            "trigger",
            Status.SUCCEEDED,
            at=8,
            name="deploy",
            detail=TriggerDetail(
                target="https://hooks.example.com",
                http_status=200,
                deliveries=(Delivery(tag="latest", status=Status.SUCCEEDED, http_status=200, attempts=1, signed=True),),
            ),
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
        detail=TriggerDetail(target="https://user:SECRET@hooks.example.com/p?token=SECRET", http_status=None,
                             deliveries=(Delivery(tag="latest", status=Status.FAILED, http_status=None, attempts=1,
                                                  signed=False, reason="POST http://127.0.0.1:8080/SECRET: refused"),)),
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
    # a succeeded build whose registry cache failed gets a detail line
    assert any(
        line.startswith("| main | build |") and "registry cache reg.example.com/cache/main: cache push refused" in line
        for line in lines
    )
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


# -- reading a record back -----------------------------------------------------------------

ROUND_TRIPS = [
    ("all-ok", [full_steps()]),
    ("blocked-and-failed", [full_steps(scan=Status.BLOCKED), full_steps(sync=Status.FAILED)]),
    ("nothing-built", []),
]


@pytest.mark.parametrize(("case", "images"), ROUND_TRIPS, ids=[c[0] for c in ROUND_TRIPS])
def test_from_json_round_trips(case: str, images: list[tuple[StepRecord, ...]]) -> None:
    doc = run(*(img(s, rule=f"r{i}") for i, s in enumerate(images))).to_json()
    back = RunRecord.from_json(doc)
    assert back.to_json() == doc
    assert back.status is RunRecord.from_json(back.to_json()).status


def test_every_kind_of_detail_round_trips() -> None:
    from acr_ci.record import GateFailure, NoDetail, SyncCopy
    from acr_ci.scan.gate import GateResult

    gate = GateResult(image=f"{PLAN.image}@{DIGEST}", tags=("latest",), backup=f"r/q@{DIGEST}",
                      backup_tags=("latest",), deleted=True, deleted_children=(DIGEST,))
    steps = (
        step("build", Status.FAILED, reason="buildah exited 1"),
        step("push", Status.SKIPPED, reason="skipped: build failed"),
        step("scan", Status.BLOCKED, reason="blocked; the gate failed: x", detail=GateFailure("x")),
        step("scan", Status.BLOCKED, reason="blocked", detail=replace(SCAN, gate=gate)),
        step("scan", Status.SUCCEEDED, detail=replace(SCAN, mode=ScanMode.NON_BLOCKING)),
        step("sync", Status.SKIPPED, name="s", detail=SyncDetail("m.example/app")),
        step("sync", Status.FAILED, name="g", reason="boom", detail=SyncDetail("m.example/app", tags=())),
        step("sync", Status.SUCCEEDED, name="full", detail=SyncDetail(
            "m.example/app", tags=(TagSync("latest", DIGEST, Status.SKIPPED, "already present with this digest"),),
            copied=SyncCopy(bytes_sent=10, blobs_copied=1, blobs_skipped=2, referrers=(DIGEST,)))),
        step("trigger", Status.SKIPPED, name="t", detail=TriggerDetail("https://hooks.example.com")),
    )
    doc = run(img(steps)).to_json()
    assert doc["images"][0]["steps"][0]["detail"] == {}
    assert doc["images"][0]["steps"][2]["detail"] == {"gate": {"error": "x"}}
    assert doc["images"][0]["steps"][5]["detail"] == {"destination": "m.example/app"}
    assert doc["images"][0]["steps"][6]["detail"] == {"destination": "m.example/app", "tags": []}
    assert doc["images"][0]["steps"][8]["detail"] == {"target": "https://hooks.example.com"}
    back = RunRecord.from_json(doc)
    assert back.to_json() == doc
    assert isinstance(back.images[0].steps[0].detail, NoDetail)
    assert back.images[0].steps[3].detail == replace(SCAN, gate=gate)


def test_a_merged_run_has_a_merge_step_and_column() -> None:
    from acr_ci.record import MergeDetail

    merge = MergeDetail(digest=DIGEST, platforms={"linux/amd64": "sha256:" + "1" * 64},
                        sources=("amd64.jsonl:1",))
    steps = (step("merge", Status.SUCCEEDED, detail=merge), *full_steps()[1:])
    record = run(img(steps))
    doc = record.to_json()
    validate(doc)
    assert doc["images"][0]["steps"][0]["detail"] == {
        "digest": DIGEST, "platforms": {"linux/amd64": "sha256:" + "1" * 64}, "sources": ["amd64.jsonl:1"]}
    assert RunRecord.from_json(doc).to_json() == doc
    lines = summary_markdown(record).splitlines()
    header = next(line for line in lines if line.startswith("| rule | image"))
    assert header == "| rule | image | tags | digest | merge | push | scan | sync | triggers |"
    # a build run keeps its build column
    built = summary_markdown(run(img(full_steps()))).splitlines()
    assert "| rule | image | tags | digest | build | push | scan | sync | triggers |" in built


def test_durations_are_those_of_the_written_times() -> None:
    # 0.0009 → 0.0011 s: written as .000 and .001, so the duration read back is 0.001
    s = StepRecord(step="build", status=Status.FAILED, started=T0 + timedelta(microseconds=900),
                   finished=T0 + timedelta(microseconds=1100))
    doc = run(img((s,))).to_json()
    assert doc["images"][0]["steps"][0]["duration"] == 0.001
    assert RunRecord.from_json(doc).to_json() == doc


NOT_RECORDS = [
    ("schema", lambda d: d.update(exit_code=2), "does not match its schema"),
    ("status-lies", lambda d: d.update(status="succeeded", exit_code=0), "its images say blocked"),
    ("image-status-lies", lambda d: d["images"][0].update(status="succeeded"), "its steps say blocked"),
    ("unknown-detail-key", lambda d: d["images"][0]["steps"][1]["detail"].update(extra=1), "unexpected key 'extra'"),
    ("build-detail-schema", lambda d: d["images"][0]["steps"][0]["detail"].update(extra=1), "does not match its schema"),
    ("cache-unknown-key", lambda d: d["images"][0]["steps"][0]["detail"]["cache"].update(hits=1), "does not match its schema"),
    ("cache-read-no-bool", lambda d: d["images"][0]["steps"][0]["detail"]["cache"].update(read="yes"), "does not match its schema"),
    ("plan-cache-mode", lambda d: d["plan"][0]["cache"].update(mode="all"), "does not match its schema"),
    ("wrong-type", lambda d: d["images"][0]["steps"][1]["detail"].update(bytes_sent="0"), "not an integer"),
    ("bool-is-no-int", lambda d: d["images"][0]["steps"][1]["detail"].update(bytes_sent=True), "not an integer"),
    ("missing", lambda d: d["images"][0]["steps"][2]["detail"].pop("verdict"), "'verdict' is missing"),
    ("bad-mode", lambda d: d["images"][0]["steps"][2]["detail"].update(mode="loud"), "not a scan mode"),
    ("plan-images", lambda d: d["plan"][0].update(images=["x:y", "x:z"]), "not one repo:tag per tag"),
]


@pytest.mark.parametrize(("case", "mutate", "message"), NOT_RECORDS, ids=[c[0] for c in NOT_RECORDS])
def test_from_json_refuses_what_it_could_not_write_back(case: str, mutate: object, message: str) -> None:
    doc = run(img(full_steps(scan=Status.BLOCKED))).to_json()
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(RecordError, match=re.escape(message)):
        RunRecord.from_json(doc)


def test_a_step_refuses_another_steps_detail() -> None:
    with pytest.raises(ValueError, match="a push step cannot carry a BuildDetail"):
        step("push", Status.SUCCEEDED, detail=full_steps()[0].detail)


def test_read_names_what_is_wrong(tmp_path: Path) -> None:
    from acr_ci.record import read

    with pytest.raises(RecordError, match="no run record at"):
        read(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(RecordError, match="not a JSON object"):
        read(tmp_path / "list.json")
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(RecordError, match="not JSON"):
        read(tmp_path / "junk.json")
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(RecordError, match="nested 200000 levels deep"):
        read(tmp_path / "deep.json")
    (tmp_path / "latin1.json").write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(RecordError, match="not JSON"):
        read(tmp_path / "latin1.json")


# -- write failures: exit 1, no temporary file ------------------------------------------------


@pytest.mark.parametrize("case", ["parent-is-a-file", "target-is-a-folder"])
def test_a_failed_write_is_exit_1_and_leaves_no_temp_file(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "record.json"
    if case == "parent-is-a-file":
        (folder / "file").write_text("x")
        target = folder / "file" / "record.json"
    else:
        target.mkdir()  # the temp file is made, the rename fails: the temp file must go
    with pytest.raises(OutputError) as info:
        write(run(img(full_steps())), target)
    assert info.value.exit_code == EXIT_FAILED
    assert str(info.value).startswith(f"cannot write the run record to {str(target)!r}: ")
    assert info.value.hint == "pass --record with a writable path"
    left = sorted(p.name for p in folder.rglob("*"))
    assert left == {"parent-is-a-file": ["file"], "target-is-a-folder": ["record.json"]}[case]


def test_build_cache_round_trips_and_older_records_read_without_it() -> None:
    doc = run(img(full_steps())).to_json()
    assert doc["plan"][0]["cache"] == {"ref": "reg.example.com/cache/main", "mode": "max"}
    assert doc["images"][0]["steps"][0]["detail"]["cache"] == {
        "ref": "reg.example.com/cache/main", "read": True, "written": False, "error": "cache push refused",
    }
    back = RunRecord.from_json(doc)
    assert back.plans[0].cache == PLAN.cache
    detail = back.images[0].steps[0].detail
    assert isinstance(detail, BuildDetail) and detail.cache == CACHE
    # no cache configured: null, both in the plan and in the detail
    plain = replace(PLAN, cache=None)
    steps = (step("build", Status.SUCCEEDED,
                  detail=BuildDetail(builder="buildx", digest=DIGEST, platforms={"linux/amd64": DIGEST}, seconds=1)),)
    doc = replace(run(img(steps)), plans=(plain,)).to_json()
    assert doc["plan"][0]["cache"] is None and doc["images"][0]["steps"][0]["detail"]["cache"] is None
    assert RunRecord.from_json(doc).to_json() == doc
    # written before the cache existed: neither key
    del doc["plan"][0]["cache"], doc["images"][0]["steps"][0]["detail"]["cache"]
    back = RunRecord.from_json(doc)
    assert back.plans[0].cache is None
    assert back.to_json()["images"][0]["steps"][0]["detail"]["cache"] is None


def test_sign_and_attest_steps_round_trip_validate_and_get_columns() -> None:
    from acr_ci.record import NoDetail, SignDetail, summary_markdown, validate

    other = "sha256:" + "ef" * 32
    keyed = SignDetail(subject=DIGEST, kind="signature", where="sha256-" + "cd" * 32 + ".sig",
                       manifest=other, layer=other, key="sha256:" + "12" * 32)
    keyless = SignDetail(subject=DIGEST, kind="attestation", where="sha256-" + "cd" * 32,
                         manifest=other, layer=other, identity="https://ci.example/wf@refs/heads/main",
                         predicate_type="https://slsa.dev/provenance/v1")
    steps = (
        *full_steps()[:3],
        step("sign", Status.SUCCEEDED, name="index", detail=keyed),
        step("sign", Status.FAILED, name="linux/arm64", reason="registry refused"),
        step("attest", Status.SUCCEEDED, name="provenance", detail=keyless),
        step("attest", Status.SKIPPED, reason="skipped: sign linux/arm64 failed"),
    )
    record = run(img(steps))
    doc = record.to_json()
    validate(doc)
    back = RunRecord.from_json(doc)
    assert back.to_json() == doc
    got = [s.detail for s in back.images[0].steps if s.step in ("sign", "attest")]
    assert got == [keyed, NoDetail(), keyless, NoDetail()]
    assert record.exit_code == EXIT_FAILED
    head = summary_markdown(record).splitlines()
    assert any("| sign | attest |" in line for line in head)
    # a succeeded sign step must say what it attached
    bad = json.loads(json.dumps(doc))
    bad["images"][0]["steps"][3]["detail"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema()).validate(bad)
    # without sign/attest steps there are no such columns
    assert "| sign |" not in summary_markdown(run(img(full_steps())))
