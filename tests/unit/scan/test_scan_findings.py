"""The findings model: merging by id and aliases, what is counted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acr_ci.config.model import Severity
from acr_ci.scan.findings import Finding, FixState, merge, severity_counts


def f(vid: str, pkg: str = "pkg", sev: Severity = Severity.HIGH, aliases: tuple[str, ...] = (), **kw: object) -> Finding:
    return Finding(id=vid, severity=sev, package=pkg, installed_version="1.0", aliases=frozenset(aliases), **kw)  # type: ignore[arg-type]


def test_ghsa_and_its_cve_are_one_vulnerability() -> None:
    vulns = merge([f("GHSA-hv5j-3h9f-99c2", "uri", aliases=("CVE-2023-28755",)), f("CVE-2023-28755", "ruby-3.0")])
    assert len(vulns) == 1
    v = vulns[0]
    assert v.id == "CVE-2023-28755"  # the CVE id is canonical
    assert v.aliases == frozenset({"GHSA-hv5j-3h9f-99c2"})
    assert v.packages == ("ruby-3.0@1.0", "uri@1.0")
    assert len(v.findings) == 2


def test_repeated_cve_across_packages_and_platforms_counts_once() -> None:
    vulns = merge([
        f("CVE-2024-0727", "libssl3", platform="linux/amd64"),
        f("CVE-2024-0727", "openssl", platform="linux/amd64"),
        f("CVE-2024-0727", "libssl3", platform="linux/arm64"),
    ])
    assert [v.id for v in vulns] == ["CVE-2024-0727"]
    assert vulns[0].platforms == ("linux/amd64", "linux/arm64")


def test_merging_is_transitive_and_case_insensitive() -> None:
    vulns = merge([
        f("GHSA-aaaa-bbbb-cccc", aliases=("CVE-2020-0001",)),
        f("cve-2020-0001", aliases=("OSV-1",)),
        f("OSV-1"),
        f("CVE-2020-0002"),
    ])
    assert sorted(v.id for v in vulns) == ["CVE-2020-0001", "CVE-2020-0002"]
    merged = next(v for v in vulns if v.id == "CVE-2020-0001")
    assert {a.upper() for a in merged.aliases} == {"GHSA-AAAA-BBBB-CCCC", "OSV-1"}


def test_severity_of_a_vulnerability_is_the_highest_of_its_findings() -> None:
    (v,) = merge([f("CVE-1", sev=Severity.LOW), f("CVE-1", "other", sev=Severity.CRITICAL), f("CVE-1", "x", sev=Severity.UNKNOWN)])
    assert v.severity is Severity.CRITICAL


def test_order_is_severity_then_id() -> None:
    vulns = merge([f("CVE-3", sev=Severity.LOW), f("CVE-2", sev=Severity.CRITICAL), f("CVE-1", sev=Severity.LOW)])
    assert [v.id for v in vulns] == ["CVE-2", "CVE-1", "CVE-3"]


def test_counts_include_every_severity() -> None:
    counts = severity_counts(merge([f("CVE-1", sev=Severity.LOW), f("CVE-1", "b", sev=Severity.LOW), f("CVE-2", sev=Severity.NEGLIGIBLE)]))
    assert counts == {Severity.UNKNOWN: 0, Severity.NEGLIGIBLE: 1, Severity.LOW: 1, Severity.MEDIUM: 0,
                      Severity.HIGH: 0, Severity.CRITICAL: 0}


def test_fixed_version_implies_fixed_state_and_alias_of_itself_is_dropped() -> None:
    x = f("CVE-1", fixed_version="2.0", aliases=("cve-1", " CVE-9 ", ""))
    assert x.fix_state is FixState.FIXED and x.fixed
    assert x.aliases == frozenset({"CVE-9"})
    assert not f("CVE-1").fixed


def test_a_finding_needs_an_id() -> None:
    with pytest.raises(ValueError):
        f("  ")

IDS = st.sampled_from(["CVE-2024-1", "cve-2024-1", "CVE-2024-2", "GHSA-aaaa-bbbb-cccc", "GHSA-dddd-eeee-ffff",
                       "OSV-1", "RHSA-2024:1"])
FINDINGS = st.lists(
    st.builds(
        lambda vid, aliases, sev, pkg: Finding(id=vid, severity=sev, package=pkg, installed_version="1",
                                              aliases=frozenset(aliases)),
        IDS, st.lists(IDS, max_size=2), st.sampled_from(list(Severity)), st.sampled_from(["a", "b"]),
    ),
    max_size=12,
)


@given(FINDINGS)
def test_merge_is_a_partition_by_overlapping_ids(findings: list[Finding]) -> None:
    vulns = merge(findings)
    placed = [f for v in vulns for f in v.findings]
    assert sorted(map(id, placed)) == sorted(map(id, findings))  # every finding exactly once
    for i, a in enumerate(vulns):
        assert a.ids == frozenset().union(*(f.ids for f in a.findings))
        assert a.severity == max(f.severity for f in a.findings)
        for b in vulns[i + 1:]:
            assert not (a.ids & b.ids)  # vulnerabilities never share an id
