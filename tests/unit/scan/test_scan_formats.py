"""The format table: every OutputFormat has an implementation, each renders the same fixture
verdict (GitLab and SARIF validated against the official schemas) and saves exactly what it
renders; and run_scan writes every requested file through it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.unit.scan.scan_support import fixture, official_schema
from tests.unit.scan.test_scan_outputs import IMAGE, POLICY, TODAY, all_findings, ctx

from acr_ci.config.model import ScanConfig, ScanEngine
from acr_ci.errors import OutputError
from acr_ci.scan.formats import DocumentFormat, OutputFormat, TextFormat, format_for
from acr_ci.scan.policy import evaluate
from acr_ci.scan.service import ScanRequest, requested_files, run_scan


def check_table(out: Any) -> None:
    assert isinstance(out, str) and out.endswith("\n")
    assert out.startswith(f"scan of {IMAGE} (linux/amd64, linux/arm64) by trivy\n")
    assert "BLOCKED: 3 vulnerabilities at or above high" in out


def check_json(out: Any) -> None:
    assert out["image"] == IMAGE and out["gate"] == {"deleted": True}
    assert out["verdict"]["blocked"] is True and len(out["findings"]) == len(all_findings())


def check_gitlab(out: Any) -> None:
    schema = official_schema("gitlab-container-scanning-report-15.2.4.schema.json")
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(out))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def check_sarif(out: Any) -> None:
    schema = official_schema("sarif-2.1.0.schema.json")
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(out))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


CASES: dict[OutputFormat, tuple[type[TextFormat | DocumentFormat], Callable[[Any], None]]] = {
    OutputFormat.TABLE: (TextFormat, check_table),
    OutputFormat.JSON: (DocumentFormat, check_json),
    OutputFormat.GITLAB: (DocumentFormat, check_gitlab),
    OutputFormat.SARIF: (DocumentFormat, check_sarif),
}


def test_every_output_format_has_a_case_and_an_implementation() -> None:
    assert set(CASES) == set(OutputFormat)
    impls = [type(format_for(choice)) for choice in OutputFormat]
    assert len(set(impls)) == len(impls)
    assert [format_for(choice).name for choice in OutputFormat] == list(OutputFormat)


@pytest.mark.parametrize("choice", list(OutputFormat), ids=str)
def test_each_format_renders_the_fixture_verdict(choice: OutputFormat, tmp_path: Path) -> None:
    kind, check = CASES[choice]
    fmt = format_for(choice)
    assert isinstance(fmt, kind)
    findings = all_findings()
    verdict = evaluate(findings, POLICY, TODAY)
    out = fmt.render(ctx(), findings, verdict, {"deleted": True})
    check(out)
    path = tmp_path / f"out.{choice}"
    assert fmt.save(path, ctx(), findings, verdict, {"deleted": True}, what=f"--{choice}") == path
    saved = path.read_text(encoding="utf-8")
    if isinstance(out, str):
        assert saved == out
    else:  # the document as indented UTF-8 JSON with a final newline, parsed back unchanged
        assert saved == json.dumps(out, indent=2, ensure_ascii=False) + "\n"
        assert json.loads(saved) == out
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize("choice", list(OutputFormat), ids=str)
def test_each_format_refuses_a_missing_folder(choice: OutputFormat, tmp_path: Path) -> None:
    verdict = evaluate((), POLICY, TODAY)
    with pytest.raises(OutputError, match=rf"--{choice} .*no/out: cannot write"):
        format_for(choice).save(tmp_path / "no" / "out", ctx(), (), verdict, what=f"--{choice}")
    assert list(tmp_path.iterdir()) == []


def test_requested_files_map_each_flag_to_its_format() -> None:
    request = ScanRequest(image=None, config=ScanConfig(), output_json="a.json",
                          gitlab_report="b.json", sarif="c.sarif")
    assert requested_files(request) == (
        (OutputFormat.JSON, "a.json", "--output-json"),
        (OutputFormat.GITLAB, "b.json", "--gitlab-report"),
        (OutputFormat.SARIF, "c.sarif", "--sarif"),
    )
    assert requested_files(ScanRequest(image=None, config=ScanConfig(), sarif="c.sarif")) == (
        (OutputFormat.SARIF, "c.sarif", "--sarif"),
    )


def test_run_scan_writes_every_file_it_can_and_raises_the_first_failure(tmp_path: Path) -> None:
    times = iter([datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC), datetime(2026, 11, 23, 10, 0, 42, tzinfo=UTC)])
    request = ScanRequest(
        image=None,
        config=ScanConfig(engine=ScanEngine.REPORT, block=POLICY),
        reports=(str(fixture("trivy-app-amd64.json")),),
        today=TODAY,
        output_json=str(tmp_path / "scan.json"),
        gitlab_report=str(tmp_path / "missing" / "gl.json"),
        sarif=str(tmp_path / "scan.sarif"),
    )
    log = StringIO()
    with pytest.raises(OutputError, match=r"--gitlab-report .*missing/gl\.json: cannot write"):
        run_scan(request, client=None, log=log, clock=lambda: next(times))
    assert log.getvalue().startswith("scan of ")  # the table went to the log first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.json", "scan.sarif"]
    doc = json.loads((tmp_path / "scan.json").read_text())
    assert doc["started"] == "2026-11-23T10:00:00Z" and doc["finished"] == "2026-11-23T10:00:42Z"
    assert doc["gate"] is None and doc["sources"] == [str(fixture("trivy-app-amd64.json"))]
    assert json.loads((tmp_path / "scan.sarif").read_text())["runs"][0]["properties"]["blocked"] is True
