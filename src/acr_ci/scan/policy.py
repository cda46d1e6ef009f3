"""The scan gate's policy: ``evaluate(findings, policy, today) -> Verdict``.

Pure: the date the allow list is checked against comes in as ``today``.

How the rules read ``scan.block`` (the counting unit is the *vulnerability*,
findings merged by id and aliases — see :mod:`acr_ci.scan.findings`):

1. **allow** — an entry whose ``until`` is before ``today`` has expired: it
   allows nothing and is reported. A live entry (``until`` on or after
   ``today``, or none) removes every vulnerability whose id or aliases include
   its id (decided on the fully merged vulnerabilities, so every finding of it)
   from both rules below: an accepted risk blocks nothing.
2. **severity** rule (when ``severity`` is set) — the vulnerabilities at or
   above ``severity``; it fires when there are at least ``count`` of them.
   With ``ignore_unfixed``, findings with no fixed version are dropped before
   merging, so a vulnerability counts only for the packages that can be fixed.
3. **vulnerabilities** rule (when the list is not empty) — fires when any
   vulnerability's id or aliases include a listed id (case-insensitive).
   ``ignore_unfixed`` does not apply here: a listed id blocks, fix or not.
4. **logic** — ``any``: blocked when any configured rule fires; ``all``: when
   every configured rule fires. A policy with no rule configured never blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, assert_never

from acr_ci.config.model import AllowEntry, BlockLogic, BlockPolicy, Severity
from acr_ci.scan.findings import Finding, Vulnerability, merge, normalize_id, severity_counts

RULE_SEVERITY = "severity"
RULE_VULNERABILITIES = "vulnerabilities"


@dataclass(frozen=True)
class RuleResult:
    """One configured rule, evaluated."""

    rule: str
    """``severity`` or ``vulnerabilities``."""
    fired: bool
    """True when the rule's condition holds."""
    explanation: str
    """One line saying what the rule asks and what it found."""
    matched: tuple[Vulnerability, ...]
    """The vulnerabilities the rule matched (even when too few to fire)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "fired": self.fired,
            "explanation": self.explanation,
            "matched": [v.id for v in self.matched],
        }


@dataclass(frozen=True)
class AllowUse:
    """A live allow-list entry and the vulnerabilities it removed."""

    entry: AllowEntry
    """The entry as configured."""
    vulnerabilities: tuple[str, ...]
    """Ids of the vulnerabilities it allowed (empty: it matched nothing)."""


@dataclass(frozen=True)
class Verdict:
    """What the policy decided and why."""

    blocked: bool
    """True when the combined rules say block."""
    logic: BlockLogic
    """How the rules were combined."""
    rules: tuple[RuleResult, ...]
    """Each configured rule, evaluated (empty: no rule configured)."""
    vulnerabilities: tuple[Vulnerability, ...]
    """Every vulnerability found (merged, before allow list and ignore_unfixed)."""
    findings: int
    """How many findings there were before merging."""
    allowed: tuple[AllowUse, ...]
    """Live allow-list entries and what they allowed."""
    expired: tuple[AllowEntry, ...]
    """Allow-list entries whose ``until`` has passed: they allowed nothing."""
    ignored_unfixed: int
    """Findings without a fixed version the severity rule ignored (``ignore_unfixed``)."""
    today: date
    """The date the allow list was checked against."""

    @property
    def fired(self) -> tuple[RuleResult, ...]:
        """The rules that fired."""
        return tuple(r for r in self.rules if r.fired)

    @property
    def blocking_vulnerabilities(self) -> tuple[Vulnerability, ...]:
        """The vulnerabilities that fired a rule, de-duplicated (empty when not blocked)."""
        if not self.blocked:
            return ()
        seen: dict[str, Vulnerability] = {}
        for rule in self.fired:
            for v in rule.matched:
                seen.setdefault(v.id, v)
        return tuple(seen.values())

    @property
    def counts(self) -> Mapping[Severity, int]:
        """Vulnerabilities by severity (all found, merged)."""
        return severity_counts(self.vulnerabilities)

    @property
    def reason(self) -> str:
        """One line: the verdict and the rule(s) behind it."""
        if not self.rules:
            return "passed: no blocking rule is configured"
        if self.blocked:
            return "blocked: " + "; ".join(r.explanation for r in self.fired)
        return "passed: " + "; ".join(r.explanation for r in self.rules)

    def to_json(self) -> dict[str, Any]:
        return {
            "blocked": self.blocked,
            "reason": self.reason,
            "logic": str(self.logic),
            "today": self.today.isoformat(),
            "rules": [r.to_json() for r in self.rules],
            "counts": {str(s): n for s, n in sorted(self.counts.items(), reverse=True)},
            "counted": "vulnerabilities (findings merged by id and aliases)",
            "findings": self.findings,
            "blocking": [v.id for v in self.blocking_vulnerabilities],
            "allowed": [
                {
                    "id": u.entry.id,
                    "reason": u.entry.reason,
                    "until": u.entry.until.isoformat() if u.entry.until else None,
                    "vulnerabilities": list(u.vulnerabilities),
                }
                for u in self.allowed
            ],
            "expired": [
                {"id": e.id, "reason": e.reason, "until": e.until.isoformat() if e.until else None}
                for e in self.expired
            ],
            "ignored_unfixed": self.ignored_unfixed,
        }


def _plural(n: int, word: str) -> str:
    return (
        f"{n} {word}"
        if n == 1
        else f"{n} {word}s"
        if not word.endswith("y")
        else f"{n} {word[:-1]}ies"
    )


def evaluate(findings: Iterable[Finding], policy: BlockPolicy, today: date) -> Verdict:
    """Apply ``policy`` to ``findings`` as of ``today``; see the module docstring for the rules."""
    items = tuple(findings)
    everything = merge(items)

    live: list[AllowEntry] = []
    expired: list[AllowEntry] = []
    for entry in policy.allow:
        (expired if entry.until is not None and entry.until < today else live).append(entry)
    allowed_keys: set[str] = set()
    uses: list[AllowUse] = []
    for entry in live:
        key = normalize_id(entry.id)
        hit = tuple(v.id for v in everything if key in v.ids)
        uses.append(AllowUse(entry, hit))
        if hit:
            allowed_keys.add(key)

    def is_allowed(v: Vulnerability) -> bool:
        return bool(v.ids & allowed_keys)

    # allowance is decided on the fully merged vulnerabilities, so an entry naming any alias
    # covers every finding of that vulnerability, whatever ignore_unfixed later drops
    allowed_findings = {f for v in everything if is_allowed(v) for f in v.findings}

    rules: list[RuleResult] = []
    ignored_unfixed = 0
    if policy.severity is not None:
        counted_findings = tuple(f for f in items if f not in allowed_findings)
        if policy.ignore_unfixed:
            fixable = tuple(f for f in counted_findings if f.fixed)
            ignored_unfixed = len(counted_findings) - len(fixable)
            counted_findings = fixable
        counted = merge(counted_findings)
        at_or_above = tuple(v for v in counted if v.severity >= policy.severity)
        fired = len(at_or_above) >= policy.count
        unfixed = " fixable" if policy.ignore_unfixed else ""
        rules.append(
            RuleResult(
                RULE_SEVERITY,
                fired,
                f"{_plural(len(at_or_above), 'vulnerability')}{unfixed} at or above "
                f"{policy.severity} (blocks at {policy.count} or more)",
                at_or_above,
            )
        )
    if policy.vulnerabilities:
        wanted = {normalize_id(x) for x in policy.vulnerabilities}
        listed = tuple(v for v in everything if v.ids & wanted and not is_allowed(v))
        rules.append(
            RuleResult(
                RULE_VULNERABILITIES,
                bool(listed),
                (
                    "listed vulnerabilities present: " + ", ".join(v.id for v in listed)
                    if listed
                    else "no listed vulnerability present ("
                    + ", ".join(policy.vulnerabilities)
                    + ")"
                ),
                listed,
            )
        )

    blocked: bool
    if not rules:
        blocked = False
    elif policy.logic is BlockLogic.ANY:
        blocked = any(r.fired for r in rules)
    elif policy.logic is BlockLogic.ALL:
        blocked = all(r.fired for r in rules)
    else:
        assert_never(policy.logic)

    return Verdict(
        blocked=blocked,
        logic=policy.logic,
        rules=tuple(rules),
        vulnerabilities=everything,
        findings=len(items),
        allowed=tuple(uses),
        expired=tuple(expired),
        ignored_unfixed=ignored_unfixed,
        today=today,
    )
