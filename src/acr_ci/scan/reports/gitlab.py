"""GitLab container-scanning reports (security report schema 15.x; 14.x reads the same).

Every ``vulnerabilities[i]`` is one finding. Its id is the first identifier of
type ``cve`` (else the first identifier); the values of the other identifiers
are its aliases, except classification identifiers (``cwe``, ``owasp``…), which
name weakness classes shared by unrelated vulnerabilities. ``severity``
``Info`` is negligible. The schema has no fixed-version field: the fixed version
is read from a ``solution`` of the form ``Upgrade PACKAGE to VERSION`` (what the
GitLab analyzer writes), otherwise there is none. The report names no platform.
"""

from __future__ import annotations

import re
from typing import Any

from acr_ci.scan.findings import Finding, FixState
from acr_ci.scan.reports.base import Reader, Report, ReportFormat, valid_platform

_NOT_IDS = frozenset({"cwe", "owasp", "wasc"})
_UPGRADE_RE = re.compile(r"Upgrade\s+(?P<pkg>\S+)\s+to\s+(?P<version>\S.*?)\.?\s*", re.IGNORECASE)
_SUPPORTED_MAJORS = ("14", "15")
_PLATFORM_SUFFIX_RE = re.compile(r"\(([^()\s]+)\)\s*$")


class GitlabParser:
    format = ReportFormat.GITLAB

    def sniff(self, doc: Any) -> bool:
        return (
            isinstance(doc, dict)
            and isinstance(doc.get("vulnerabilities"), list)
            and isinstance(doc.get("version"), str)
        )

    def parse(self, doc: Any, *, source: str, platform: str | None) -> Report:
        r = Reader(source, self.format)
        top = r.obj(doc, "$")
        version = r.required_text(top.get("version"), "$.version")
        if version.split(".")[0] not in _SUPPORTED_MAJORS:
            raise r.fail("$.version", f"is {version!r}; acr-ci reads schema versions 14.x and 15.x")
        scanner = ""
        scan = top.get("scan")
        if scan is not None:
            sc = r.obj(scan, "$.scan")
            kind = r.text(sc.get("type"), "$.scan.type", optional=True)
            if kind and kind not in (
                "container_scanning",
                "dependency_scanning",
                "cluster_image_scanning",
            ):
                raise r.fail("$.scan.type", f"is {kind!r}; expected container_scanning")
            tool = sc.get("scanner")
            if isinstance(tool, dict):
                scanner = " ".join(
                    str(tool[k]) for k in ("name", "version") if isinstance(tool.get(k), str)
                )
        findings: list[Finding] = []
        artifact = ""
        for i, item in enumerate(r.lst(top.get("vulnerabilities"), "$.vulnerabilities")):
            path = f"$.vulnerabilities[{i}]"
            v = r.obj(item, path)
            ids: list[tuple[str, str, str]] = []  # (type, value, url)
            for k, ident in enumerate(r.lst(v.get("identifiers"), f"{path}.identifiers")):
                ip = f"{path}.identifiers[{k}]"
                d = r.obj(ident, ip)
                kind = r.text(d.get("type"), f"{ip}.type", optional=True).lower()
                if kind in _NOT_IDS:
                    continue
                ids.append(
                    (
                        kind,
                        r.required_text(d.get("value"), f"{ip}.value"),
                        r.text(d.get("url"), f"{ip}.url", optional=True),
                    )
                )
            if not ids:
                raise r.fail(
                    f"{path}.identifiers",
                    "names no vulnerability id (only weakness classes or nothing)",
                )
            primary = next((x for x in ids if x[0] == "cve"), ids[0])
            loc = r.obj(v.get("location"), f"{path}.location")
            dep = r.obj(loc.get("dependency"), f"{path}.location.dependency")
            pkg = r.obj(dep.get("package"), f"{path}.location.dependency.package")
            package = r.required_text(pkg.get("name"), f"{path}.location.dependency.package.name")
            solution = r.text(v.get("solution"), f"{path}.solution", optional=True).strip()
            match = _UPGRADE_RE.fullmatch(solution)
            fixed = match.group("version") if match else None
            links = r.lst(v.get("links"), f"{path}.links", optional=True)
            url = primary[2] or next(
                (x["url"] for x in links if isinstance(x, dict) and isinstance(x.get("url"), str)),
                "",
            )
            description = r.text(v.get("description"), f"{path}.description", optional=True)
            name = r.text(v.get("name"), f"{path}.name", optional=True)
            image = r.text(loc.get("image"), f"{path}.location.image", optional=True)
            os_text = r.text(
                loc.get("operating_system"), f"{path}.location.operating_system", optional=True
            )
            suffix = _PLATFORM_SUFFIX_RE.search(os_text)
            if suffix and valid_platform(suffix.group(1)):
                os_text = os_text[: suffix.start()].strip()
                found_platform = platform or suffix.group(1)
            else:
                found_platform = platform
            artifact = artifact or image
            findings.append(
                Finding(
                    id=primary[1],
                    aliases=frozenset(x[1] for x in ids if x is not primary),
                    severity=r.severity(v.get("severity"), f"{path}.severity"),
                    package=package,
                    installed_version=r.text(
                        dep.get("version"), f"{path}.location.dependency.version", optional=True
                    ),
                    fixed_version=fixed,
                    fix_state=FixState.FIXED if fixed else FixState.UNKNOWN,
                    platform=found_platform,
                    title=name if name and name != primary[1] else "",
                    url=url or None,
                    description=description,
                    target=os_text,
                    source=source,
                )
            )
        return Report(self.format, tuple(findings), platform, artifact, scanner)
