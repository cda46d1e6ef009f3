"""Grype JSON (``grype -o json``).

Every ``matches[i]`` is one finding: ``vulnerability.id`` is its id and the ids
of ``relatedVulnerabilities`` are its aliases (a GHSA's CVE). ``fix.state``
(``fixed``/``not-fixed``/``wont-fix``/``unknown``, empty → unknown) maps to
:class:`FixState`; ``fix.versions`` joined with ``", "`` is the fixed version
(none when the list is empty, whatever the state says). The platform comes from
``source.target`` (``os``/``architecture``/``variant``) of an image source, and
the image the report is about from its ``userInput``, ``tags``, ``repoDigests``,
``imageID`` and ``manifestDigest``.
"""

from __future__ import annotations

from typing import Any

from acr_ci.scan.findings import Finding, FixState
from acr_ci.scan.reports.base import (
    ArtifactIdentity,
    Reader,
    Report,
    ReportFormat,
    platform_of,
    strings,
    text_or_empty,
)

_STATES = {
    "fixed": FixState.FIXED,
    "not-fixed": FixState.NOT_FIXED,
    "wont-fix": FixState.WONT_FIX,
    "unknown": FixState.UNKNOWN,
    "": FixState.UNKNOWN,
}


class GrypeParser:
    format = ReportFormat.GRYPE

    def sniff(self, doc: Any) -> bool:
        return (
            isinstance(doc, dict)
            and isinstance(doc.get("matches"), list)
            and ("descriptor" in doc or "source" in doc)
        )

    def parse(self, doc: Any, *, source: str, platform: str | None) -> Report:
        r = Reader(source, self.format)
        top = r.obj(doc, "$")
        src = top.get("source")
        if platform is None and isinstance(src, dict) and src.get("type") == "image":
            target = src.get("target")
            if isinstance(target, dict):
                platform = platform_of(
                    target.get("os"), target.get("architecture"), target.get("variant")
                )
        findings: list[Finding] = []
        for i, item in enumerate(r.lst(top.get("matches"), "$.matches")):
            path = f"$.matches[{i}]"
            m = r.obj(item, path)
            v = r.obj(m.get("vulnerability"), f"{path}.vulnerability")
            vid = r.required_text(v.get("id"), f"{path}.vulnerability.id")
            aliases: set[str] = set()
            description = r.text(
                v.get("description"), f"{path}.vulnerability.description", optional=True
            )
            for k, rel in enumerate(
                r.lst(
                    m.get("relatedVulnerabilities"), f"{path}.relatedVulnerabilities", optional=True
                )
            ):
                rp = f"{path}.relatedVulnerabilities[{k}]"
                related = r.obj(rel, rp)
                aliases.add(r.required_text(related.get("id"), f"{rp}.id"))
                description = description or r.text(
                    related.get("description"), f"{rp}.description", optional=True
                )
            fix = v.get("fix")
            state = FixState.UNKNOWN
            fixed: str | None = None
            if fix is not None:
                fx = r.obj(fix, f"{path}.vulnerability.fix")
                word = r.text(fx.get("state"), f"{path}.vulnerability.fix.state", optional=True)
                if word not in _STATES:
                    raise r.fail(
                        f"{path}.vulnerability.fix.state",
                        f"unknown state {word!r} (expected fixed, not-fixed, wont-fix or unknown)",
                    )
                state = _STATES[word]
                versions = [
                    r.required_text(x, f"{path}.vulnerability.fix.versions[{n}]")
                    for n, x in enumerate(
                        r.lst(
                            fx.get("versions"), f"{path}.vulnerability.fix.versions", optional=True
                        )
                    )
                ]
                fixed = ", ".join(versions) or None
            art = r.obj(m.get("artifact"), f"{path}.artifact")
            urls = r.lst(v.get("urls"), f"{path}.vulnerability.urls", optional=True)
            data_source = r.text(
                v.get("dataSource"), f"{path}.vulnerability.dataSource", optional=True
            )
            url = data_source or next((u for u in urls if isinstance(u, str) and u), None)
            locations = r.lst(art.get("locations"), f"{path}.artifact.locations", optional=True)
            location = (
                locations[0].get("path", "") if locations and isinstance(locations[0], dict) else ""
            )
            findings.append(
                Finding(
                    id=vid,
                    aliases=frozenset(aliases),
                    severity=r.severity(v.get("severity"), f"{path}.vulnerability.severity"),
                    package=r.required_text(art.get("name"), f"{path}.artifact.name"),
                    installed_version=r.text(
                        art.get("version"), f"{path}.artifact.version", optional=True
                    ),
                    fixed_version=fixed,
                    fix_state=FixState.FIXED
                    if fixed
                    else (FixState.UNKNOWN if state is FixState.FIXED else state),
                    platform=platform,
                    title=_first_sentence(description),
                    url=url or None,
                    description=description,
                    target=location if isinstance(location, str) else "",
                    source=source,
                )
            )
        scanner = "grype"
        descriptor = top.get("descriptor")
        if isinstance(descriptor, dict) and isinstance(descriptor.get("version"), str):
            scanner = f"grype {descriptor['version']}"
        artifact = ""
        identity = ArtifactIdentity()
        if isinstance(src, dict) and isinstance(src.get("target"), dict):
            target = src["target"]
            artifact = text_or_empty(target.get("userInput"))
            if src.get("type") == "image":
                identity = ArtifactIdentity(
                    names=((artifact,) if artifact else ()) + strings(target.get("tags")),
                    repo_digests=strings(target.get("repoDigests")),
                    image_id=text_or_empty(target.get("imageID")),
                    manifest_digest=text_or_empty(target.get("manifestDigest")),
                )
        return Report(self.format, tuple(findings), platform, artifact, scanner, identity=identity)


def _first_sentence(text: str, limit: int = 120) -> str:
    """Grype gives no title: the description's first line, shortened."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
