"""``evaluate(findings, policy, today)``: thresholds, count, logic, ids via aliases,
ignore_unfixed, allow-list expiry — as tables with a fixed ``today``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pytest

from acr_ci.config.model import AllowEntry, BlockLogic, BlockPolicy, Severity
from acr_ci.scan.findings import Finding
from acr_ci.scan.policy import evaluate

TODAY = date(2026, 11, 23)
C, H, M, L, N, U = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.NEGLIGIBLE,
                    Severity.UNKNOWN)


def f(vid: str, sev: Severity, pkg: str = "pkg", *, fixed: str | None = "9.9", aliases: tuple[str, ...] = ()) -> Finding:
    return Finding(id=vid, severity=sev, package=pkg, installed_version="1.0", fixed_version=fixed,
                   aliases=frozenset(aliases))


# an image: 1 critical (unfixed, in two packages), 2 high (one a GHSA with a CVE alias, also
# reported under the CVE), 1 medium, 1 low, 1 unknown
IMAGE = (
    f("CVE-2023-45853", C, "zlib1g", fixed=None),
    f("CVE-2023-45853", C, "zlib-dev", fixed=None),
    f("GHSA-hv5j-3h9f-99c2", H, "uri", aliases=("CVE-2023-28755",)),
    f("CVE-2023-28755", H, "ruby"),
    f("CVE-2023-4641", H, "login", fixed=None),
    f("CVE-2024-0727", M, "libssl3"),
    f("CVE-2011-3374", L, "apt", fixed=None),
    f("CVE-2005-2541", U, "tar", fixed=None),
)


@dataclass(frozen=True)
class Case:
    id: str
    policy: BlockPolicy
    blocked: bool
    fired: tuple[str, ...] = ()
    matched: dict[str, tuple[str, ...]] = field(default_factory=dict)


CASES = [
    Case("no-rule-never-blocks", BlockPolicy(), False),
    Case("critical-1", BlockPolicy(severity=C), True, ("severity",), {"severity": ("CVE-2023-45853",)}),
    Case("high-counts-vulnerabilities-not-findings", BlockPolicy(severity=H, count=3), True, ("severity",),
         {"severity": ("CVE-2023-45853", "CVE-2023-28755", "CVE-2023-4641")}),
    Case("high-count-4-passes", BlockPolicy(severity=H, count=4), False, (),
         {"severity": ("CVE-2023-45853", "CVE-2023-28755", "CVE-2023-4641")}),
    Case("low-count-5", BlockPolicy(severity=L, count=5), True, ("severity",)),
    Case("low-count-6-unknown-not-counted", BlockPolicy(severity=L, count=6), False),
    Case("unknown-threshold-counts-everything", BlockPolicy(severity=U, count=6), True, ("severity",)),
    Case("ignore-unfixed-high", BlockPolicy(severity=H, ignore_unfixed=True), True, ("severity",),
         {"severity": ("CVE-2023-28755",)}),
    Case("ignore-unfixed-critical-passes", BlockPolicy(severity=C, ignore_unfixed=True), False),
    Case("id-listed", BlockPolicy(vulnerabilities=("CVE-2024-0727",)), True, ("vulnerabilities",),
         {"vulnerabilities": ("CVE-2024-0727",)}),
    Case("id-via-ghsa-alias", BlockPolicy(vulnerabilities=("ghsa-hv5j-3h9f-99c2",)), True, ("vulnerabilities",),
         {"vulnerabilities": ("CVE-2023-28755",)}),
    Case("id-absent", BlockPolicy(vulnerabilities=("CVE-2024-3094",)), False),
    Case("id-ignores-ignore-unfixed", BlockPolicy(vulnerabilities=("CVE-2023-45853",), ignore_unfixed=True), True,
         ("vulnerabilities",)),
    Case("any-severity-only", BlockPolicy(severity=C, vulnerabilities=("CVE-2024-3094",)), True, ("severity",)),
    Case("any-id-only", BlockPolicy(severity=C, count=2, vulnerabilities=("CVE-2024-0727",)), True,
         ("vulnerabilities",)),
    Case("all-needs-both-fails", BlockPolicy(severity=C, vulnerabilities=("CVE-2024-3094",), logic=BlockLogic.ALL),
         False, ("severity",)),
    Case("all-both-fire", BlockPolicy(severity=H, vulnerabilities=("CVE-2024-0727",), logic=BlockLogic.ALL), True,
         ("severity", "vulnerabilities")),
    Case("all-single-rule", BlockPolicy(severity=C, logic=BlockLogic.ALL), True, ("severity",)),
    Case("allow-removes-from-severity", BlockPolicy(severity=C, allow=(AllowEntry("CVE-2023-45853", "unreachable"),)),
         False),
    Case("allow-by-alias-removes-merged", BlockPolicy(
        severity=H, count=3, allow=(AllowEntry("GHSA-hv5j-3h9f-99c2", "not used", date(2026, 11, 23)),)), False, (),
         {"severity": ("CVE-2023-45853", "CVE-2023-4641")}),
    Case("allow-removes-from-id-list", BlockPolicy(
        vulnerabilities=("CVE-2024-0727",), allow=(AllowEntry("CVE-2024-0727", "patched", date(2027, 1, 31)),)), False),
    Case("expired-allow-does-not-allow", BlockPolicy(
        severity=C, allow=(AllowEntry("CVE-2023-45853", "was ok", date(2026, 11, 22)),)), True, ("severity",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_policy_table(case: Case) -> None:
    verdict = evaluate(IMAGE, case.policy, TODAY)
    assert verdict.blocked is case.blocked, verdict.reason
    assert tuple(r.rule for r in verdict.fired) == case.fired
    for rule, ids in case.matched.items():
        result = next(r for r in verdict.rules if r.rule == rule)
        assert tuple(v.id for v in result.matched) == ids
    if case.blocked:
        assert verdict.reason.startswith("blocked: ")
        assert verdict.blocking_vulnerabilities
    else:
        assert verdict.blocking_vulnerabilities == ()


def test_counts_and_findings() -> None:
    verdict = evaluate(IMAGE, BlockPolicy(severity=H), TODAY)
    assert verdict.findings == 8
    assert len(verdict.vulnerabilities) == 6  # 8 findings, GHSA+CVE and zlib twice merged
    assert verdict.counts[C] == 1 and verdict.counts[H] == 2 and verdict.counts[U] == 1


def test_expired_entries_are_reported_and_live_ones_say_what_they_allowed() -> None:
    policy = BlockPolicy(
        severity=M,
        allow=(
            AllowEntry("CVE-2024-0727", "fixed upstream soon", date(2026, 11, 23)),  # last valid day
            AllowEntry("CVE-2023-4641", "no passwd use", date(2026, 11, 22)),  # expired yesterday
            AllowEntry("CVE-1999-0001", "old entry"),  # no expiry, matches nothing
        ),
    )
    verdict = evaluate(IMAGE, policy, TODAY)
    assert [e.id for e in verdict.expired] == ["CVE-2023-4641"]
    assert [(u.entry.id, u.vulnerabilities) for u in verdict.allowed] == [
        ("CVE-2024-0727", ("CVE-2024-0727",)),
        ("CVE-1999-0001", ()),
    ]
    severity = verdict.rules[0]
    assert "CVE-2024-0727" not in [v.id for v in severity.matched]
    assert "CVE-2023-4641" in [v.id for v in severity.matched]
    doc = verdict.to_json()
    assert doc["expired"] == [{"id": "CVE-2023-4641", "reason": "no passwd use", "until": "2026-11-22"}]
    # the same policy a day earlier: nothing expired
    assert evaluate(IMAGE, policy, date(2026, 11, 22)).expired == ()


def test_ignore_unfixed_reports_how_many_it_ignored() -> None:
    verdict = evaluate(IMAGE, BlockPolicy(severity=L, ignore_unfixed=True), TODAY)
    assert verdict.ignored_unfixed == 5


def test_verdict_explains_itself() -> None:
    verdict = evaluate(IMAGE, BlockPolicy(severity=H, count=2), TODAY)
    assert verdict.reason == "blocked: 3 vulnerabilities at or above high (blocks at 2 or more)"
    doc = verdict.to_json()
    assert doc["blocked"] is True
    assert doc["rules"][0]["matched"] == ["CVE-2023-45853", "CVE-2023-28755", "CVE-2023-4641"]
    assert doc["counts"]["critical"] == 1
    passed = evaluate(IMAGE, BlockPolicy(vulnerabilities=("CVE-2024-3094",)), TODAY)
    assert passed.reason == "passed: no listed vulnerability present (CVE-2024-3094)"


def test_empty_image_never_blocks() -> None:
    verdict = evaluate((), BlockPolicy(severity=U, vulnerabilities=("CVE-1",)), TODAY)
    assert not verdict.blocked and verdict.vulnerabilities == ()


def test_evaluate_is_pure() -> None:
    policy = BlockPolicy(severity=H, allow=(AllowEntry("CVE-2023-4641", "x", date(2026, 12, 1)),))
    assert evaluate(IMAGE, policy, TODAY) == evaluate(IMAGE, policy, TODAY)


def test_allow_covers_the_whole_merged_vulnerability_even_with_ignore_unfixed() -> None:
    findings = (
        f("GHSA-aaaa-bbbb-cccc", C, "gem", fixed=None, aliases=("CVE-2024-9",)),  # unfixed: dropped first
        f("CVE-2024-9", C, "lib"),  # fixed, and only linked to the GHSA through the unfixed finding
    )
    allow = (AllowEntry("GHSA-aaaa-bbbb-cccc", "accepted"),)
    verdict = evaluate(findings, BlockPolicy(severity=C, ignore_unfixed=True, allow=allow), TODAY)
    assert not verdict.blocked, verdict.reason
    assert verdict.allowed[0].vulnerabilities == ("CVE-2024-9",)
    assert evaluate(findings, BlockPolicy(severity=C, ignore_unfixed=True), TODAY).blocked
