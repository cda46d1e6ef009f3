"""SARIF 2.1.0 logs written by vulnerability scanners.

Every result (``kind`` ``fail``, the default; ``pass``/``notApplicable`` are
skipped) of every run is one finding; its rule is ``ruleId`` (or
``rule.id``/``rule.index``/``ruleIndex``) looked up in ``tool.driver.rules``.

Id: the ``ruleId``, or the CVE/GHSA id it starts with when it adds a suffix
(Grype writes ``CVE-…-PACKAGE``; such a per-package rule's ``help`` text
``Fix Version: …`` line gives the fixed version). Aliases: ``result.properties.aliases``.

Severity, first that applies:

1. ``result.properties["security-severity"]``, then the rule's: a CVSS-like
   score — ``>= 9.0`` critical, ``>= 7.0`` high, ``>= 4.0`` medium, ``> 0``
   low, ``0`` negligible (GitHub code scanning's bands);
2. a severity word in ``result.properties.severity``, the rule's
   ``properties.severity``, or the rule's ``properties.tags`` (Trivy tags
   ``HIGH``…);
3. the level (``result.level``, else the rule's
   ``defaultConfiguration.level``, else SARIF's default ``warning``):
   ``error`` high, ``warning`` medium, ``note`` low, ``none`` negligible.

Package, versions and platform: ``result.properties`` keys ``package``,
``installedVersion``, ``fixedVersion``, ``platform`` (what acr-ci writes), else
Trivy's message lines ``Package: …``, ``Installed Version: …``,
``Fixed Version: …``, else Grype's message sentence ``… package: NAME,
version VERSION was found …`` (no fixed version). A missing package is ``""``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from acr_ci.config.model import Severity
from acr_ci.scan.findings import Finding, FixState
from acr_ci.scan.reports.base import Reader, Report, ReportFormat, severity_word, valid_platform

_ID_PREFIX_RE = re.compile(
    r"(CVE-\d{4}-\d{4,}|GHSA(?:-[23456789cfghjmpqrvwx]{4}){3})", re.IGNORECASE
)
_LEVELS = {
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "note": Severity.LOW,
    "none": Severity.NEGLIGIBLE,
}


def score_severity(score: float) -> Severity:
    """The severity band of a CVSS-like score (0–10)."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.NEGLIGIBLE


class SarifParser:
    format = ReportFormat.SARIF

    def sniff(self, doc: Any) -> bool:
        return (
            isinstance(doc, dict)
            and isinstance(doc.get("runs"), list)
            and (
                str(doc.get("version", "")).startswith("2.1")
                or "sarif" in str(doc.get("$schema", ""))
            )
        )

    def parse(self, doc: Any, *, source: str, platform: str | None) -> Report:
        r = Reader(source, self.format)
        top = r.obj(doc, "$")
        version = top.get("version")
        if version != "2.1.0":
            raise r.fail("$.version", f"is {version!r}; acr-ci reads SARIF 2.1.0")
        findings: list[Finding] = []
        scanners: list[str] = []
        for n, run_doc in enumerate(r.lst(top.get("runs"), "$.runs")):
            rp = f"$.runs[{n}]"
            run = r.obj(run_doc, rp)
            driver = r.obj(r.obj(run.get("tool"), f"{rp}.tool").get("driver"), f"{rp}.tool.driver")
            name = r.text(driver.get("name"), f"{rp}.tool.driver.name", optional=True)
            if name:
                scanners.append(
                    " ".join(x for x in (name, driver.get("version")) if isinstance(x, str))
                )
            rules = [
                r.obj(x, f"{rp}.tool.driver.rules[{k}]")
                for k, x in enumerate(
                    r.lst(driver.get("rules"), f"{rp}.tool.driver.rules", optional=True)
                )
            ]
            by_id = {str(x.get("id")): x for x in rules}
            for k, res_doc in enumerate(r.lst(run.get("results"), f"{rp}.results", optional=True)):
                path = f"{rp}.results[{k}]"
                res = r.obj(res_doc, path)
                if res.get("kind", "fail") in ("pass", "notApplicable"):
                    continue
                rule = self._rule(r, res, rules, by_id, path)
                rule_id = res.get("ruleId") or (rule.get("id") if rule else None)
                if not isinstance(rule_id, str) or not rule_id.strip():
                    raise r.fail(
                        f"{path}.ruleId", "missing: a result needs a rule id (the vulnerability id)"
                    )
                findings.append(
                    self._finding(r, res, rule, rule_id.strip(), path, source, platform)
                )
        return Report(self.format, tuple(findings), platform, "", ", ".join(scanners))

    def _rule(
        self,
        r: Reader,
        res: Mapping[str, Any],
        rules: list[Mapping[str, Any]],
        by_id: Mapping[str, Mapping[str, Any]],
        path: str,
    ) -> Mapping[str, Any] | None:
        index = res.get("ruleIndex")
        ref = res.get("rule")
        if isinstance(ref, dict):
            index = ref.get("index", index)
            if index is None and isinstance(ref.get("id"), str):
                return by_id.get(ref["id"])
        if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
            if index >= len(rules):
                raise r.fail(f"{path}.ruleIndex", f"is {index} but the run has {len(rules)} rules")
            return rules[index]
        rule_id = res.get("ruleId")
        return by_id.get(rule_id) if isinstance(rule_id, str) else None

    def _finding(
        self,
        r: Reader,
        res: Mapping[str, Any],
        rule: Mapping[str, Any] | None,
        rule_id: str,
        path: str,
        source: str,
        platform: str | None,
    ) -> Finding:
        props = _dict(res.get("properties"))
        rule = rule or {}
        rprops = _dict(rule.get("properties"))
        message = res.get("message")
        text = message.get("text", "") if isinstance(message, dict) else ""
        lines = _message_fields(text if isinstance(text, str) else "")

        match = _ID_PREFIX_RE.match(rule_id)
        vid = match.group(1) if match else rule_id
        aliases: set[str] = set()
        extra = props.get("aliases")
        if isinstance(extra, list):
            aliases |= {a for a in extra if isinstance(a, str)}

        package = _str(props.get("package")) or lines.get("package", "")
        installed = _str(props.get("installedVersion")) or lines.get("installed version", "")
        fixed = _str(props.get("fixedVersion")) or lines.get("fixed version", "")
        if not fixed and vid != rule_id:
            # a per-package rule (Grype: CVE-…-PACKAGE): its help names that package's fix
            help_doc = rule.get("help")
            help_text = help_doc.get("text", "") if isinstance(help_doc, dict) else ""
            fixed = _help_fix(help_text if isinstance(help_text, str) else "")
        plat = _str(props.get("platform"))
        found_platform = platform or (plat if plat and valid_platform(plat) else None)

        short = rule.get("shortDescription")
        title = short.get("text", "") if isinstance(short, dict) else ""
        full = rule.get("fullDescription")
        description = full.get("text", "") if isinstance(full, dict) else ""
        url = rule.get("helpUri")
        return Finding(
            id=vid,
            aliases=frozenset(aliases),
            severity=self._severity(r, res, rule, props, rprops, path),
            package=package,
            installed_version=installed,
            fixed_version=fixed or None,
            fix_state=FixState.FIXED if fixed else FixState.UNKNOWN,
            platform=found_platform,
            title=title if isinstance(title, str) else "",
            url=url if isinstance(url, str) and url else None,
            description=description if isinstance(description, str) else "",
            target=_location_uri(res),
            source=source,
        )

    def _severity(
        self,
        r: Reader,
        res: Mapping[str, Any],
        rule: Mapping[str, Any],
        props: Mapping[str, Any],
        rprops: Mapping[str, Any],
        path: str,
    ) -> Severity:
        for where, holder in ((f"{path}.properties", props), ("rule properties", rprops)):
            raw = holder.get("security-severity")
            if raw is None:
                continue
            try:
                score = float(raw)
            except (TypeError, ValueError):
                raise r.fail(
                    f"{where}.security-severity", f"is {raw!r}, not a score from 0 to 10"
                ) from None
            if not 0.0 <= score <= 10.0:
                raise r.fail(f"{where}.security-severity", f"is {raw!r}, not a score from 0 to 10")
            return score_severity(score)
        for holder in (props, rprops):
            word = holder.get("severity")
            if isinstance(word, str) and severity_word(word) is not None:
                sev = severity_word(word)
                assert sev is not None
                return sev
        tags = rprops.get("tags")
        if isinstance(tags, list):
            for tag in tags:
                if isinstance(tag, str) and tag.strip() and severity_word(tag) is not None:
                    sev = severity_word(tag)
                    assert sev is not None
                    return sev
        level = res.get("level")
        if level is None:
            config = rule.get("defaultConfiguration")
            level = config.get("level") if isinstance(config, dict) else None
        level = level or "warning"
        if level not in _LEVELS:
            raise r.fail(f"{path}.level", f"is {level!r}; expected none, note, warning or error")
        return _LEVELS[level]


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


_GRYPE_MESSAGE_RE = re.compile(r"package: (?P<package>[^,\s]+), version (?P<version>\S+) was found")


def _message_fields(text: str) -> dict[str, str]:
    """Package data from a result message: Trivy's ``Key: value`` lines, or Grype's
    ``… package: NAME, version VERSION was found …`` sentence."""
    fields: dict[str, str] = {}
    grype = _GRYPE_MESSAGE_RE.search(text)
    if grype:
        fields["package"] = grype.group("package")
        fields["installed version"] = grype.group("version")
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("package", "installed version", "fixed version"):
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def _help_fix(text: str) -> str:
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("fix version", "fixed version"):
            return value.strip()
    return ""


def _location_uri(res: Mapping[str, Any]) -> str:
    locations = res.get("locations")
    if isinstance(locations, list) and locations and isinstance(locations[0], dict):
        physical = locations[0].get("physicalLocation")
        if isinstance(physical, dict):
            artifact = physical.get("artifactLocation")
            if isinstance(artifact, dict) and isinstance(artifact.get("uri"), str):
                return str(artifact["uri"])
    return ""
