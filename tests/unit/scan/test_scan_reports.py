"""Report parsers against our own fixtures (counts cross-checked with jq), the upstream
conformance set of real scanner outputs (tests/fixtures/reports/upstream/), and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.unit.scan.scan_support import fixture, jq, upstream_report

from acr_ci.config.model import Severity
from acr_ci.errors import EXIT_USAGE
from acr_ci.scan.findings import FixState, ReportError, merge
from acr_ci.scan.reports import ReportFormat, parse_report, read_report, split_spec

# jq programs that count findings and distinct ids the way each format stores them
JQ_FINDINGS = {
    ReportFormat.TRIVY: "[.Results[]?.Vulnerabilities[]?] | length",
    ReportFormat.GRYPE: ".matches | length",
    ReportFormat.GITLAB: ".vulnerabilities | length",
    ReportFormat.SARIF: "[.runs[].results[]? | select((.kind // \"fail\") == \"fail\")] | length",
}
# distinct vulnerabilities after merging ids with aliases (jq groups the id sets)
JQ_IDSETS = {
    ReportFormat.TRIVY: "[.Results[]?.Vulnerabilities[]? | [.VulnerabilityID]]",
    ReportFormat.GRYPE: "[.matches[] | [.vulnerability.id] + [.relatedVulnerabilities[]?.id]]",
    ReportFormat.GITLAB: "[.vulnerabilities[] | [.identifiers[] | select(.type != \"cwe\") | .value]]",
    ReportFormat.SARIF: "[.runs[].results[]? | [.ruleId | capture(\"^(?<id>CVE-[0-9]+-[0-9]+|GHSA(-[a-z0-9]{4}){3})\").id // .ruleId]]",
}


def merged_count(id_sets: list[list[str]]) -> int:
    """Connected components of overlapping id sets: an independent count of merged vulnerabilities."""
    groups: list[set[str]] = []
    for ids in id_sets:
        s = {i.upper() for i in ids}
        overlapping = [g for g in groups if g & s]
        for g in overlapping:
            groups.remove(g)
            s |= g
        groups.append(s)
    return len(groups)


OWN = [
    ("trivy-app-amd64.json", ReportFormat.TRIVY, 6, 5),
    ("trivy-app-arm64.json", ReportFormat.TRIVY, 2, 2),
    ("trivy-clean.json", ReportFormat.TRIVY, 0, 0),
    ("grype-app-arm64.json", ReportFormat.GRYPE, 6, 6),
    ("grype-clean.json", ReportFormat.GRYPE, 0, 0),
    ("gitlab-cs-app.json", ReportFormat.GITLAB, 6, 5),
    ("gitlab-cs-clean.json", ReportFormat.GITLAB, 0, 0),
    ("sarif-trivy-app.sarif", ReportFormat.SARIF, 4, 3),
    ("sarif-grype-app.sarif", ReportFormat.SARIF, 3, 3),
    ("sarif-clean.sarif", ReportFormat.SARIF, 0, 0),
]


@pytest.mark.parametrize(("name", "fmt", "findings", "vulns"), OWN, ids=[o[0] for o in OWN])
def test_own_fixtures_parse_and_match_jq(name: str, fmt: ReportFormat, findings: int, vulns: int) -> None:
    path = fixture(name)
    report = read_report(path)  # auto-detected
    assert report.format is fmt
    assert len(report.findings) == findings == jq(JQ_FINDINGS[fmt], path)
    assert len(merge(report.findings)) == vulns == merged_count(jq(JQ_IDSETS[fmt], path))
    assert read_report(path, fmt) == report  # explicit format: same result
    for f in report.findings:
        assert f.id and f.package and f.source == str(path)


def test_trivy_fields() -> None:
    report = read_report(fixture("trivy-app-amd64.json"))
    assert report.platform == "linux/amd64"
    by = {(f.id, f.package): f for f in report.findings}
    ssl = by[("CVE-2024-0727", "libssl3")]
    assert (ssl.severity, ssl.installed_version, ssl.fixed_version, ssl.fix_state) == (
        Severity.MEDIUM, "3.0.11-1~deb12u2", "3.0.13-1~deb12u1", FixState.FIXED)
    assert ssl.title == "openssl: denial of service via null dereference"
    assert ssl.url == "https://avd.aquasec.com/nvd/cve-2024-0727"
    assert ssl.platform == "linux/amd64"
    assert ssl.target.endswith("(debian 12.4)")
    zlib = by[("CVE-2023-45853", "zlib1g")]
    assert zlib.fixed_version is None and zlib.fix_state is FixState.WONT_FIX
    login = by[("CVE-2023-4641", "login")]  # "FixedVersion": "" means no fix
    assert login.fixed_version is None and login.fix_state is FixState.NOT_FIXED
    assert read_report(fixture("trivy-app-arm64.json")).platform == "linux/arm64/v8"


def test_grype_fields() -> None:
    report = read_report(fixture("grype-app-arm64.json"))
    assert report.platform == "linux/arm64" and report.scanner == "grype 0.79.3"
    by = {f.id: f for f in report.findings}
    ghsa = by["GHSA-hv5j-3h9f-99c2"]
    assert ghsa.aliases == frozenset({"CVE-2023-28755"}) and ghsa.fixed_version == "0.10.2"
    assert ghsa.target == "/usr/local/bundle/specifications/uri-0.10.1.gemspec"
    assert by["CVE-2023-45853"].fix_state is FixState.WONT_FIX
    assert by["CVE-2011-3374"].fix_state is FixState.NOT_FIXED and by["CVE-2011-3374"].severity is Severity.NEGLIGIBLE
    assert by["CVE-2024-2236"].fix_state is FixState.UNKNOWN and by["CVE-2024-2236"].fixed_version is None
    assert by["CVE-2024-0727"].aliases == frozenset()  # its related entry is itself


def test_gitlab_fields() -> None:
    report = read_report(fixture("gitlab-cs-app.json"))
    by = {(f.id, f.package): f for f in report.findings}
    uri = by[("CVE-2023-28755", "uri")]  # the cve identifier is the id, the ghsa an alias
    assert uri.aliases == frozenset({"GHSA-hv5j-3h9f-99c2"})
    assert uri.fixed_version == "0.10.2"  # from "Upgrade uri to 0.10.2"
    ssl = by[("CVE-2024-0727", "libssl3")]
    assert ssl.aliases == frozenset()  # CWE identifiers are not vulnerability ids
    assert by[("CVE-2023-45853", "zlib1g")].fixed_version is None  # "No solution provided"
    assert by[("CVE-2011-3374", "apt")].severity is Severity.NEGLIGIBLE  # Info
    assert by[("CVE-2005-2541", "tar")].severity is Severity.UNKNOWN
    assert report.platform is None and report.scanner == "Trivy 0.44.1"


def test_sarif_trivy_fields() -> None:
    report = read_report(fixture("sarif-trivy-app.sarif"))
    by = {(f.id, f.package): f for f in report.findings}
    ssl = by[("CVE-2024-0727", "libssl3")]
    assert (ssl.severity, ssl.installed_version, ssl.fixed_version) == (Severity.MEDIUM, "3.0.11-1~deb12u2",
                                                                        "3.0.13-1~deb12u1")
    assert by[("CVE-2023-45853", "zlib1g")].severity is Severity.CRITICAL  # security-severity 9.8
    assert by[("CVE-2023-45853", "zlib1g")].fixed_version is None  # "Fixed Version: " empty
    assert by[("CVE-2011-3374", "apt")].severity is Severity.LOW  # no score: the LOW tag


def test_sarif_grype_fields() -> None:
    report = read_report(fixture("sarif-grype-app.sarif"))
    by = {f.id: f for f in report.findings}
    assert set(by) == {"CVE-2024-0727", "GHSA-hv5j-3h9f-99c2", "CVE-2023-45853"}  # suffix -PACKAGE dropped
    assert by["CVE-2024-0727"].package == "libssl3" and by["CVE-2024-0727"].fixed_version == "3.0.13-1~deb12u1"
    assert by["GHSA-hv5j-3h9f-99c2"].severity is Severity.HIGH  # 7.5
    assert by["CVE-2023-45853"].severity is Severity.HIGH  # no score, no tag: rule level error


SARIF_SEVERITY = [
    ("score-critical", {"properties": {"security-severity": "9.0"}}, {}, Severity.CRITICAL),
    ("score-high", {"properties": {"security-severity": "8.9"}}, {}, Severity.HIGH),
    ("score-medium", {"properties": {"security-severity": "4.0"}}, {}, Severity.MEDIUM),
    ("score-low", {"properties": {"security-severity": "0.1"}}, {}, Severity.LOW),
    ("score-zero", {"properties": {"security-severity": "0"}}, {}, Severity.NEGLIGIBLE),
    ("rule-score", {}, {"properties": {"security-severity": "7.1"}}, Severity.HIGH),
    ("result-score-wins", {"properties": {"security-severity": "2"}}, {"properties": {"security-severity": "9.5"}},
     Severity.LOW),
    ("word", {"properties": {"severity": "critical"}}, {}, Severity.CRITICAL),
    ("tag", {}, {"properties": {"tags": ["security", "MEDIUM"]}}, Severity.MEDIUM),
    ("level-error", {"level": "error"}, {}, Severity.HIGH),
    ("level-note", {"level": "note"}, {}, Severity.LOW),
    ("level-none", {"level": "none"}, {}, Severity.NEGLIGIBLE),
    ("rule-level", {}, {"defaultConfiguration": {"level": "error"}}, Severity.HIGH),
    ("default-warning", {}, {}, Severity.MEDIUM),
]


def sarif(result: dict[str, object], rule: dict[str, object]) -> dict[str, object]:
    return {
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "x", "rules": [{"id": "CVE-2024-1", **rule}]}},
            "results": [{"ruleId": "CVE-2024-1", "message": {"text": "Package: p"}, **result}],
        }],
    }


@pytest.mark.parametrize(("case", "result", "rule", "expected"), SARIF_SEVERITY, ids=[c[0] for c in SARIF_SEVERITY])
def test_sarif_severity_mapping(case: str, result: dict[str, object], rule: dict[str, object], expected: Severity) -> None:
    (finding,) = parse_report(sarif(result, rule), source="t.sarif").findings
    assert finding.severity is expected


def test_sarif_skips_passing_results() -> None:
    doc = sarif({"kind": "pass"}, {})
    assert parse_report(doc, source="t.sarif").findings == ()


def test_report_platform_given_wins(tmp_path: Path) -> None:
    report = read_report(fixture("trivy-app-amd64.json"), platform="linux/s390x")
    assert {f.platform for f in report.findings} == {"linux/s390x"}
    assert split_spec("linux/arm64=reports/a.json") == ("linux/arm64", "reports/a.json")
    assert split_spec("linux/arm64/v8=a=b.json") == ("linux/arm64/v8", "a=b.json")
    assert split_spec("reports/a.json") == (None, "reports/a.json")
    odd = tmp_path / "x=y.json"
    odd.write_text("{}")
    assert split_spec(str(odd)) == (None, str(odd))


def write(tmp_path: Path, text: str, name: str = "r.json") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


TRIVY_ROW = {"VulnerabilityID": "CVE-1", "PkgName": "p", "Severity": "HIGH"}
BAD = [
    ("not-json", "{nope", None, r"r\.json:1:2: not valid JSON"),
    ("unknown-format", json.dumps({"hello": 1}), None, r"r\.json: not a report format acr-ci knows"),
    ("trivy-schema-1", json.dumps({"SchemaVersion": 1, "Results": []}), None,
     r"r\.json: \$\.SchemaVersion: is 1; acr-ci reads SchemaVersion 2"),
    ("trivy-no-pkg", json.dumps({"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1"}]}]}),
     None, r"\$\.Results\[0\]\.Vulnerabilities\[0\]\.PkgName: expected a string, found null"),
    ("trivy-bad-severity", json.dumps({"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{**TRIVY_ROW, "Severity": "SEVERE"}]}]}),
     None, r"Severity: unknown severity 'SEVERE'"),
    ("trivy-results-not-list", json.dumps({"SchemaVersion": 2, "Results": {}}), None,
     r"\$\.Results: expected a list, found an object"),
    ("grype-bad-state", json.dumps({"matches": [{"vulnerability": {"id": "CVE-1", "severity": "High",
                                                                   "fix": {"state": "maybe"}},
                                                 "artifact": {"name": "p"}}], "source": {}}),
     None, r"fix\.state: unknown state 'maybe'"),
    ("gitlab-version", json.dumps({"version": "2.0", "vulnerabilities": []}), None,
     r"\$\.version: is '2\.0'; acr-ci reads schema versions 14\.x and 15\.x"),
    ("gitlab-only-cwe", json.dumps({"version": "15.0.7", "vulnerabilities": [{
        "identifiers": [{"type": "cwe", "name": "CWE-79", "value": "79"}], "severity": "High",
        "location": {"dependency": {"package": {"name": "p"}, "version": "1"}}}]}), None,
     r"identifiers: names no vulnerability id"),
    ("sarif-version", json.dumps({"version": "2.0.0", "runs": []}), ReportFormat.SARIF, r"\$\.version: is '2\.0\.0'"),
    ("sarif-bad-score", json.dumps(sarif({"properties": {"security-severity": "high"}}, {})), None,
     r"security-severity: is 'high', not a score from 0 to 10"),
    ("wrong-format-forced", json.dumps({"matches": [], "source": {}}), ReportFormat.TRIVY,
     r"\$\.SchemaVersion: is None"),
]


@pytest.mark.parametrize(("case", "text", "fmt", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_reports_are_one_line_errors(tmp_path: Path, case: str, text: str, fmt: ReportFormat | None,
                                         message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ReportError, match=message) as info:
        read_report(path, fmt)
    assert info.value.exit_code == EXIT_USAGE
    assert "\n" not in info.value.message
    assert str(path) in info.value.message


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such report file"):
        read_report(tmp_path / "nope.json")
    with pytest.raises(ReportError, match="is a directory"):
        read_report(tmp_path)


# -- the upstream conformance set: real outputs written by the scanners' own projects ------------

SHARED = [
    ("trivy-alpine-39.json", ReportFormat.TRIVY),
    ("trivy-mariner-1.0.json", ReportFormat.TRIVY),
    ("trivy-ubi-7-comprehensive.json", ReportFormat.TRIVY),
    ("trivy-sl-micro-rancher5.4.json", ReportFormat.TRIVY),
    ("grype-chainguard-ruby.json", ReportFormat.GRYPE),
    ("grype-keycloak.json", ReportFormat.GRYPE),
    ("grype-presenter-image.json", ReportFormat.GRYPE),
    ("gitlab-cs-trivy-alpine.json", ReportFormat.GITLAB),
    ("sarif-trivy-alpine-310.sarif", ReportFormat.SARIF),
]


@pytest.mark.parametrize(("name", "fmt"), SHARED, ids=[s[0] for s in SHARED])
def test_shared_conformance(name: str, fmt: ReportFormat) -> None:
    path = upstream_report(name)
    report = read_report(path)
    assert report.format is fmt
    assert len(report.findings) == jq(JQ_FINDINGS[fmt], path)
    assert len(merge(report.findings)) == merged_count(jq(JQ_IDSETS[fmt], path))


def test_shared_specifics() -> None:
    alpine = read_report(upstream_report("trivy-alpine-39.json"))
    assert len(alpine.findings) == 6 and len(merge(alpine.findings)) == 3  # CVEs repeated across packages
    mariner = read_report(upstream_report("trivy-mariner-1.0.json"))
    assert any(f.severity is Severity.HIGH and f.fixed_version is None for f in mariner.findings)
    assert read_report(upstream_report("trivy-sl-micro-rancher5.4.json")).findings == ()
    ruby = merge(read_report(upstream_report("grype-chainguard-ruby.json")).findings)
    assert [(v.id, sorted(v.aliases), len(v.findings)) for v in ruby] == [
        ("CVE-2023-28755", ["GHSA-hv5j-3h9f-99c2"], 3)]
    keycloak = read_report(upstream_report("grype-keycloak.json"))
    assert {f.fix_state for f in keycloak.findings} == {FixState.WONT_FIX}
    gitlab = read_report(upstream_report("gitlab-cs-trivy-alpine.json"))
    counts = {s: sum(1 for f in gitlab.findings if f.severity is s) for s in Severity}
    assert counts == {s: jq(f'[.vulnerabilities[] | select(.severity == "{w}")] | length',
                             upstream_report("gitlab-cs-trivy-alpine.json"))
                      for s, w in [(Severity.UNKNOWN, "Unknown"), (Severity.NEGLIGIBLE, "Info"),
                                   (Severity.LOW, "Low"), (Severity.MEDIUM, "Medium"),
                                   (Severity.HIGH, "High"), (Severity.CRITICAL, "Critical")]}
    sarif_report = read_report(upstream_report("sarif-trivy-alpine-310.sarif"))
    assert {f.package for f in sarif_report.findings} >= {"libcrypto1.1"}


def test_cli_report_format_choices_match_the_parsers() -> None:
    from acr_ci.cli.scan import REPORT_FORMATS

    assert REPORT_FORMATS == tuple(f.value for f in ReportFormat)
