"""``acr-ci scan`` through the CLI with report files: exit codes, policy sources, outputs
(GitLab and SARIF validated against the official schemas in tests/fixtures/schemas/)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from tests.unit.scan.scan_support import fixture, official_schema

from acr_ci.cli import main

pytestmark = pytest.mark.e2e


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["scan", *argv])
    return code, capsys.readouterr().err


def config(tmp_path: Path, scan: str) -> Path:
    p = tmp_path / ".acr-ci.yml"
    p.write_text(f"version: 1\nimage: registry.example.com/team/app\n{scan}")
    return p


def test_blocked_by_severity_exit_3_with_every_output(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = {k: tmp_path / f"out.{k}" for k in ("json", "gitlab", "sarif")}
    code, err = run(capsys, "--report", f"linux/amd64={fixture('trivy-app-amd64.json')}",
                    "--report", str(fixture("grype-app-arm64.json")), "--severity", "high",
                    "--output-json", str(out["json"]), "--gitlab-report", str(out["gitlab"]),
                    "--sarif", str(out["sarif"]))
    assert code == 3, err
    assert "BLOCKED: 3 vulnerabilities at or above high" in err
    doc = json.loads(out["json"].read_text())
    assert doc["verdict"]["blocked"] is True and doc["enforced"] is True
    assert doc["platforms"] == ["linux/amd64", "linux/arm64"]
    assert len(doc["findings"]) == 12
    ids = [v["id"] for v in doc["vulnerabilities"]]
    assert ids.count("CVE-2023-28755") == 1  # trivy's CVE and grype's GHSA: one vulnerability
    gitlab = json.loads(out["gitlab"].read_text())
    sarif = json.loads(out["sarif"].read_text())
    assert gitlab["scan"]["type"] == "container_scanning" and len(gitlab["vulnerabilities"]) == 12
    assert sarif["version"] == "2.1.0" and len(sarif["runs"][0]["results"]) == 12
    gs = official_schema("gitlab-container-scanning-report-15.2.4.schema.json")
    ss = official_schema("sarif-2.1.0.schema.json")
    assert not list(jsonschema.Draft7Validator(gs).iter_errors(gitlab))
    assert not list(jsonschema.Draft4Validator(ss).iter_errors(sarif))


def test_passes_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, "--report", str(fixture("trivy-clean.json")), "--severity", "low")
    assert code == 0 and "PASSED" in err
    code, err = run(capsys, "--report", str(fixture("sarif-trivy-app.sarif")), "--fail-on", "CVE-2024-3094")
    assert code == 0, err


def test_fail_on_alias_and_non_blocking(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, "--report", str(fixture("gitlab-cs-app.json")), "--fail-on", "GHSA-hv5j-3h9f-99c2")
    assert code == 3 and "listed vulnerabilities present: CVE-2023-28755" in err
    out = tmp_path / "o.json"
    code, err = run(capsys, "--report", str(fixture("gitlab-cs-app.json")), "--fail-on", "GHSA-hv5j-3h9f-99c2",
                    "--non-blocking", "--output-json", str(out))
    assert code == 0 and "mode non-blocking" in err
    doc = json.loads(out.read_text())
    assert doc["verdict"]["blocked"] is True and doc["enforced"] is False


def test_config_policy_allow_expiry_and_relative_report(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "t.json").write_text(fixture("trivy-app-amd64.json").read_text())
    cfg = config(tmp_path, (
        "scan:\n  engine: report\n  report: reports/t.json\n  block:\n    severity: critical\n"
        "    allow:\n      - {id: CVE-2023-45853, reason: minizip unused, until: 2026-12-31}\n"
    ))
    monkeypatch.chdir("/")  # the config's report path is relative to the config file
    code, err = run(capsys, "--config", str(cfg), "--today", "2026-12-31")
    assert code == 0, err
    assert "allowed CVE-2023-45853 until 2026-12-31 (minizip unused): CVE-2023-45853" in err
    code, err = run(capsys, "--config", str(cfg), "--today", "2027-01-01")
    assert code == 3
    assert "EXPIRED allow entry CVE-2023-45853" in err
    # flags override the config's rule
    code, err = run(capsys, "--config", str(cfg), "--today", "2027-01-01", "--severity", "critical", "--count", "2")
    assert code == 0, err


USAGE = [
    ("no-policy", ["--report", "R"], "no scan policy: no config file and neither --severity nor --fail-on"),
    ("no-image-no-report", ["--severity", "high"], "name the image to scan"),
    ("format-without-report", ["IMG", "--severity", "high", "--report-format", "trivy"], "--report-format needs --report"),
    ("bad-severity", ["--report", "R", "--severity", "severe"], "--severity 'severe' is not a severity"),
    ("bad-count", ["--report", "R", "--severity", "high", "--count", "0"], "--count 0 is not valid"),
    ("missing-report", ["--report", "nope.json", "--severity", "high"], "nope.json: no such report file"),
    ("wrong-format", ["--report", "R", "--report-format", "grype", "--severity", "high"], "$.matches: expected a list"),
    ("bad-image", ["Not A Ref", "--severity", "high"], "image 'Not A Ref'"),
]


@pytest.mark.parametrize(("case", "argv", "message"), USAGE, ids=[u[0] for u in USAGE])
def test_usage_errors_exit_2_in_one_line(case: str, argv: list[str], message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ACR_CI_CONFIG", raising=False)
    argv = [str(fixture("trivy-app-amd64.json")) if a == "R" else a for a in argv]
    code, err = run(capsys, *argv)
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err
    assert err.strip().startswith("acr-ci: error:")


def test_config_without_scan_section_needs_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(tmp_path, "")
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, "--config", str(cfg), "--report", str(fixture("trivy-clean.json")))
    assert code == 2 and "has no scan: section" in err
    code, err = run(capsys, "--report", str(fixture("trivy-clean.json")), "--severity", "high")  # .acr-ci.yml found
    assert code == 0, err


def test_unwritable_output_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, "--report", str(fixture("trivy-clean.json")), "--severity", "high",
                    "--sarif", str(tmp_path / "no" / "dir.sarif"))
    assert code == 1 and "--sarif" in err and "cannot write" in err
