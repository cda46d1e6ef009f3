"""``--gitlab-report``: a GitLab ``container_scanning`` report (schema 15.2.4).

One ``vulnerabilities[]`` entry per finding (id × package × platform), ``id`` a
UUID derived from image, platform, id, package and version (stable across runs);
identifiers are the finding's id and aliases (``cve``, ``ghsa``, else the id's
prefix as type); severity negligible → ``Info``, unknown → ``Unknown``;
``solution`` ``Upgrade PACKAGE to VERSION`` when a fix is known;
``location.operating_system`` is what the scanner named (else ``unknown``) plus
the platform, so the same package on two platforms stays two entries.
``scan.messages`` carries the verdict.

:meth:`GitlabFormat.render_scans` makes one report of several images' scans (``acr-ci
run --gitlab-report``): every image's entries, each verdict named by its image.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from acr_ci import __version__
from acr_ci.config.model import Severity
from acr_ci.scan.findings import Finding, Vulnerability, normalize_id
from acr_ci.scan.formats.interface import (
    INFORMATION_URI,
    DocumentFormat,
    OutputFormat,
    ScanContext,
)
from acr_ci.scan.policy import Verdict

GITLAB_SCHEMA_VERSION = "15.2.4"
_UUID_NAMESPACE = uuid.UUID("6f0a4c1e-8d43-5d7b-9a55-3c1f0e2b7d11")

_GITLAB_SEVERITY = {
    Severity.UNKNOWN: "Unknown",
    Severity.NEGLIGIBLE: "Info",
    Severity.LOW: "Low",
    Severity.MEDIUM: "Medium",
    Severity.HIGH: "High",
    Severity.CRITICAL: "Critical",
}
_URL_RE = re.compile(r"(https?|ftp)://.+")


class GitlabFormat(DocumentFormat):
    """A GitLab container-scanning report; ``gate`` is not part of it."""

    name = OutputFormat.GITLAB

    def render(
        self,
        ctx: ScanContext,
        findings: Sequence[Finding],
        verdict: Verdict,
        gate: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        vulns: list[dict[str, Any]] = []
        canonical = {f: v for v in verdict.vulnerabilities for f in v.findings}
        seen: set[str] = set()
        for f in findings:
            key = "\x00".join((ctx.image, f.platform or "", f.id, f.package, f.installed_version))
            vid = str(uuid.uuid5(_UUID_NAMESPACE, key))
            if vid in seen:  # the same row twice (two reports of one platform): once is enough
                continue
            seen.add(vid)
            vulns.append(_entry(ctx, f, vid, canonical.get(f)))
        messages = [{"level": "info", "value": f"acr-ci scan gate: {verdict.reason}"}]
        messages += [
            {
                "level": "warn",
                "value": f"allow-list entry {e.id} expired on "
                f"{e.until.isoformat() if e.until else '?'}",
            }
            for e in verdict.expired
        ]
        return {
            "version": GITLAB_SCHEMA_VERSION,
            "scan": {
                "analyzer": {
                    "id": "acr-ci",
                    "name": "acr-ci scan gate",
                    "url": INFORMATION_URI,
                    "vendor": {"name": "acr-ci"},
                    "version": __version__,
                },
                "scanner": {
                    "id": re.sub(r"[^a-z0-9_-]+", "-", ctx.scanner.lower()) or "report",
                    "name": ctx.scanner or "report",
                    "vendor": {"name": ctx.scanner or "report"},
                    "version": ctx.scanner_version or "unknown",
                },
                "type": "container_scanning",
                "start_time": _gitlab_time(ctx.started),
                "end_time": _gitlab_time(ctx.finished),
                "status": "success",
                "messages": messages,
            },
            "vulnerabilities": vulns,
            "remediations": [],
        }

    def render_scans(
        self, scans: Sequence[tuple[ScanContext, Sequence[Finding], Verdict]]
    ) -> dict[str, Any]:
        """One report over ``scans`` (at least one): the first scan's header, the last
        one's end time, every entry and every message (prefixed with its image)."""
        if len(scans) == 1:
            return self.render(*scans[0])
        docs = [(ctx.image, self.render(ctx, f, v)) for ctx, f, v in scans]
        doc = docs[0][1]
        doc["scan"]["messages"] = []
        for image, d in docs:
            doc["scan"]["messages"] += [
                {**m, "value": f"{image}: {m['value']}"} for m in d["scan"]["messages"]
            ]
            doc["scan"]["end_time"] = d["scan"]["end_time"]
            if d is not doc:
                doc["vulnerabilities"] += d["vulnerabilities"]
        return doc


def _entry(ctx: ScanContext, f: Finding, vid: str, merged: Vulnerability | None) -> dict[str, Any]:
    """One ``vulnerabilities[]`` entry; ``merged`` is the finding's merged vulnerability."""
    spellings = (merged.id, *sorted(merged.aliases)) if merged else tuple(sorted(f.aliases))
    identifiers = [_identifier(f.id, f.url)] + [
        _identifier(x, None) for x in spellings if normalize_id(x) != normalize_id(f.id)
    ]
    entry: dict[str, Any] = {
        "id": vid,
        "severity": _GITLAB_SEVERITY[f.severity],
        "identifiers": identifiers,
        "links": [{"url": f.url}] if f.url and _URL_RE.fullmatch(f.url) else [],
        "location": {
            "dependency": {
                "package": {"name": f.package or "unknown"},
                "version": f.installed_version,
            },
            "operating_system": _operating_system(f),
            "image": ctx.image or "unknown",
        },
    }
    entry["name"] = (f.title or f.id)[:255]
    if f.description:
        entry["description"] = f.description[:1_048_576]
    if f.fixed_version:
        entry["solution"] = f"Upgrade {f.package} to {f.fixed_version}"
    return entry


def _identifier(value: str, url: str | None) -> dict[str, str]:
    key = normalize_id(value)
    if key.startswith("CVE-"):
        kind = "cve"
    elif key.startswith("GHSA-"):
        kind = "ghsa"
    else:
        prefix = key.split("-", 1)[0].lower()
        kind = prefix if prefix.isalnum() and prefix != key.lower() else "other"
    ident = {"type": kind, "name": value, "value": value}
    if url and _URL_RE.fullmatch(url):
        ident["url"] = url
    return ident


def _operating_system(f: Finding) -> str:
    m = re.search(r"\(([^()]+)\)\s*$", f.target)
    os_name = m.group(1) if m else (f.target if f.target and "/" not in f.target else "")
    os_name = os_name or "unknown"
    return f"{os_name} ({f.platform})" if f.platform else os_name


def _gitlab_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")
