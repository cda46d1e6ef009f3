"""The writers: GitLab container scanning (schema 15.2.4) and SARIF 2.1.0 validated against the
official schemas (tests/fixtures/schemas/), plus checks that run without them:
required fields, round trips through our own parsers, the JSON document, the summary."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import jsonschema
import pytest
from tests.unit.scan.scan_support import fixture, official_schema

from acr_ci.config.model import AllowEntry, BlockPolicy, Severity
from acr_ci.errors import OutputError
from acr_ci.scan.findings import Finding
from acr_ci.scan.formats import GitlabFormat, JsonFormat, SarifFormat, ScanContext, TableFormat
from acr_ci.scan.policy import evaluate
from acr_ci.scan.reports import read_report

TODAY = date(2026, 11, 23)
T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 23, 10, 0, 42, tzinfo=UTC)
IMAGE = "127.0.0.1:5000/team/app:1.4.2@sha256:" + "ab" * 32


def ctx(enforced: bool = True) -> ScanContext:
    return ScanContext(IMAGE, ("linux/amd64", "linux/arm64"), "trivy", "0.57.1",
                       ("trivy a", "trivy b"), T0, T1, enforced)


def all_findings() -> tuple[Finding, ...]:
    names = ["trivy-app-amd64.json", "grype-app-arm64.json", "gitlab-cs-app.json", "sarif-trivy-app.sarif"]
    return tuple(f for n in names for f in read_report(fixture(n)).findings)


POLICY = BlockPolicy(severity=Severity.HIGH, allow=(AllowEntry("CVE-2011-3374", "apt-key unused", date(2026, 1, 1)),))


def test_gitlab_report_validates_against_the_official_schema() -> None:
    findings = all_findings()
    verdict = evaluate(findings, POLICY, TODAY)
    doc = GitlabFormat().render(ctx(), findings, verdict)
    schema = official_schema("gitlab-container-scanning-report-15.2.4.schema.json")
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def test_gitlab_report_validates_when_clean() -> None:
    verdict = evaluate((), POLICY, TODAY)
    doc = GitlabFormat().render(ctx(), (), verdict)
    schema = official_schema("gitlab-container-scanning-report-15.2.4.schema.json")
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(doc))


def test_sarif_validates_against_the_official_schema() -> None:
    findings = all_findings()
    doc = SarifFormat().render(ctx(), findings, evaluate(findings, POLICY, TODAY))
    schema = official_schema("sarif-2.1.0.schema.json")
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(doc))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    clean = SarifFormat().render(ctx(), (), evaluate((), POLICY, TODAY))
    assert not list(jsonschema.Draft4Validator(schema).iter_errors(clean))


def test_gitlab_report_shape_without_schema() -> None:
    findings = all_findings()
    verdict = evaluate(findings, POLICY, TODAY)
    doc = GitlabFormat().render(ctx(), findings, verdict)
    assert doc["version"] == "15.2.4"
    assert doc["scan"]["type"] == "container_scanning"
    assert doc["scan"]["start_time"] == "2026-11-23T10:00:00" and doc["scan"]["end_time"] == "2026-11-23T10:00:42"
    assert {m["level"] for m in doc["scan"]["messages"]} == {"info", "warn"}  # verdict + expired allow entry
    vulns = doc["vulnerabilities"]
    # one entry per distinct (platform, id, package, version): the GitLab + SARIF inputs have no
    # platform and repeat some trivy rows, so count the distinct keys independently
    keys = {(f.platform, f.id, f.package, f.installed_version) for f in findings}
    assert len(vulns) == len(keys)
    assert len({v["id"] for v in vulns}) == len(vulns)
    severities = {"Critical", "High", "Medium", "Low", "Info", "Unknown"}
    for v in vulns:
        assert v["severity"] in severities
        assert v["identifiers"] and all(i["type"] and i["name"] and i["value"] for i in v["identifiers"])
        assert v["location"]["operating_system"] and v["location"]["image"] == IMAGE
    uri = [v for v in vulns if v["location"]["dependency"]["package"]["name"] == "uri"
           and v["location"]["operating_system"].endswith("(linux/arm64)")]
    assert {i["value"] for i in uri[0]["identifiers"]} == {"GHSA-hv5j-3h9f-99c2", "CVE-2023-28755"}
    assert uri[0]["solution"] == "Upgrade uri to 0.10.2"


def test_gitlab_round_trip_keeps_findings() -> None:
    findings = read_report(fixture("trivy-app-amd64.json")).findings
    doc = GitlabFormat().render(ctx(), findings, evaluate(findings, POLICY, TODAY))
    back = read_report_from(doc, "gitlab")
    assert sorted((f.id, f.package, f.installed_version, f.severity, f.fixed_version, f.platform) for f in back) == \
        sorted((f.id, f.package, f.installed_version, f.severity, f.fixed_version, f.platform) for f in findings)


def test_sarif_round_trip_keeps_findings() -> None:
    findings = all_findings()
    verdict = evaluate(findings, POLICY, TODAY)
    doc = SarifFormat().render(ctx(), findings, verdict)
    back = read_report_from(doc, "sarif")
    # the SARIF rule id is the merged (canonical) id; the id the scanner used is kept as an alias
    canonical = {f: v.id for v in verdict.vulnerabilities for f in v.findings}
    assert sorted((canonical[f], f.package, f.severity, f.fixed_version or "", f.platform or "") for f in findings) == \
        sorted((f.id, f.package, f.severity, f.fixed_version or "", f.platform or "") for f in back)
    assert len(doc["runs"][0]["tool"]["driver"]["rules"]) == len(verdict.vulnerabilities)
    blocking = {r["ruleId"] for r in doc["runs"][0]["results"] if r["properties"]["blocking"]}
    assert blocking == {v.id for v in verdict.blocking_vulnerabilities}


def read_report_from(doc: dict[str, object], name: str) -> tuple[Finding, ...]:
    from acr_ci.scan.reports import parse_report

    return parse_report(json.loads(json.dumps(doc)), source=name).findings


def test_json_document(tmp_path: Path) -> None:
    findings = all_findings()
    verdict = evaluate(findings, POLICY, TODAY)
    out = tmp_path / "scan.json"
    JsonFormat().save(out, ctx(), findings, verdict, {"deleted": True}, what="--output-json")
    doc = json.loads(out.read_text())
    assert doc["image"] == IMAGE and doc["gate"] == {"deleted": True}
    assert len(doc["findings"]) == len(findings)
    assert len(doc["vulnerabilities"]) == len(verdict.vulnerabilities)
    assert doc["verdict"]["blocked"] is True
    assert doc["verdict"]["counted"].startswith("vulnerabilities")
    assert doc["verdict"]["expired"][0]["id"] == "CVE-2011-3374"
    assert sum(doc["verdict"]["counts"].values()) == len(doc["vulnerabilities"])


def test_write_json_failure_is_an_acr_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"--sarif .*nope/x\.sarif: cannot write"):
        SarifFormat().save(tmp_path / "nope" / "x.sarif", ctx(), (), evaluate((), POLICY, TODAY), what="--sarif")


def test_summary_lists_counts_rule_and_findings() -> None:
    findings = all_findings()
    verdict = evaluate(findings, POLICY, TODAY)
    text = TableFormat().render(ctx(enforced=False), findings, verdict)
    assert text.startswith(f"scan of {IMAGE} (linux/amd64, linux/arm64) by trivy\n")
    assert "BLOCKED: 3 vulnerabilities at or above high (blocks at 1 or more)" in text
    assert "CVE-2023-28755 (GHSA-hv5j-3h9f-99c2) high" in text
    assert "EXPIRED allow entry CVE-2011-3374" in text
    assert "mode non-blocking" in text
    critical_line = next(line for line in text.splitlines() if line.strip().startswith("critical"))
    assert critical_line.split()[1:] == ["1", str(sum(1 for f in findings if f.severity is Severity.CRITICAL))]
