"""SBOMs: a CycloneDX document per platform image, from trivy, attested and attached.

For each platform manifest of an image (the image itself when it is not an index),
``trivy image --format cyclonedx --skip-db-update --offline-scan`` lists the packages its
package databases hold (dpkg, apk, rpm, language lock files): no vulnerability database is
needed or downloaded. The document then goes to the registry twice:

- as a signed attestation (predicate type :data:`PREDICATE_TYPE`, the document itself as
  the predicate) in the platform manifest's ``sha256-<hex>.att`` — what ``cosign
  verify-attestation --type cyclonedx`` reads;
- as a plain OCI 1.1 referrer of the platform manifest: an image manifest with
  ``artifactType`` :data:`MEDIA_TYPE`, the empty config, one layer (the document) and a
  ``subject``. Where the registry has no referrers API, the ``sha256-<hex>`` fallback tag's
  index gets the referrer added (what ``oras discover`` and ``acr-ci copy --referrers`` read).

trivy gets the registry's credentials through its environment and ``--insecure`` only for
loopback or insecure registries, as the scan gate's trivy does (:mod:`acr_ci.scan`).
A CycloneDX document carries a timestamp and a serial number, so each run attaches a new one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from acr_ci.errors import NotFoundError, ScanError
from acr_ci.registry.client import Client
from acr_ci.registry.media import (
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    referrers_tag,
    sha256_digest,
)
from acr_ci.registry.reference import Reference
from acr_ci.scan.engine import Invocation, ScanTarget, run_json
from acr_ci.signing.keys import SigningKey
from acr_ci.signing.sign import SignResult, attest_image, resolve_digest
from acr_ci.signing.simplesigning import go_json

PREDICATE_TYPE = "https://cyclonedx.org/bom"
MEDIA_TYPE = "application/vnd.cyclonedx+json"
EMPTY_CONFIG = b"{}"
DEFAULT_TIMEOUT = 15 * 60.0


@dataclass(frozen=True)
class SbomTool:
    """How trivy is run for SBOMs."""

    program: str = "trivy"
    timeout: float = DEFAULT_TIMEOUT
    base_env: Mapping[str, str] | None = None
    """The environment trivy starts from (None: this process's)."""

    def invocation(self, target: ScanTarget) -> Invocation:
        from acr_ci.scan.trivy import trivy_image_invocation

        args = ["--format", "cyclonedx", "--skip-db-update", "--offline-scan"]
        return trivy_image_invocation(self.program, args, target)

    def generate(self, target: ScanTarget) -> dict[str, Any]:
        """The CycloneDX document of one platform manifest."""
        what = f"SBOM of {target.reference}"
        doc = run_json(
            self.invocation(target), what=what, timeout=self.timeout, base_env=self.base_env
        )
        if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
            raise ScanError(f"{what}: trivy did not write a CycloneDX document")
        return doc


def attach_referrer(
    client: Client,
    subject: Reference,
    data: bytes,
    *,
    artifact_type: str = MEDIA_TYPE,
    annotations: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Push ``data`` as an OCI referrer of ``subject`` (by digest): a manifest of
    ``artifact_type`` whose one layer (of that media type) is ``data``, with
    ``annotations``; ``(referrer digest, where it is listed)`` — ``referrers API`` or the
    fallback tag."""
    assert subject.digest
    repo = client.repository(subject)
    target = client.get_manifest(subject)
    for media_type, blob in ((OCI_EMPTY, EMPTY_CONFIG), (artifact_type, data)):
        d = Descriptor(media_type, sha256_digest(blob), len(blob))
        if not repo.has_blob(d):
            repo.put_blob(d, [blob])
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": _desc(OCI_EMPTY, EMPTY_CONFIG),
        "layers": [_desc(artifact_type, data)],
        "subject": {"mediaType": target.media_type, "digest": target.digest, "size": target.size},
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    body = go_json(doc)
    manifest = Manifest(data=body, media_type=OCI_MANIFEST, digest=sha256_digest(body))
    result = repo.put_manifest(manifest, manifest.digest)
    if result.subject_indexed or repo.supports_referrers_api():
        return manifest.digest, "referrers API"
    tag = referrers_tag(target.digest)
    try:
        current = repo.get_manifest(tag)
        existing = current.children() if current.is_index else []
    except NotFoundError:
        existing = []
    entries = [d.to_json() for d in existing if d.digest != manifest.digest]
    entry: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "digest": manifest.digest,
        "size": manifest.size,
        "artifactType": artifact_type,
    }
    if annotations:
        entry["annotations"] = dict(annotations)
    entries.append(entry)
    index_body = go_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    repo.put_manifest(
        Manifest(data=index_body, media_type=OCI_INDEX, digest=sha256_digest(index_body)), tag
    )
    return manifest.digest, tag


def _desc(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


Attest = Callable[[Reference, str, Mapping[str, Any]], SignResult]
"""Attests a predicate (type, document) about an image by digest: a key's or keyless."""


def attest_sboms(
    client: Client,
    image: Reference,
    key: SigningKey | None,
    tool: SbomTool | None = None,
    *,
    attest: Attest | None = None,
) -> list[SignResult]:
    """An SBOM for every platform manifest of ``image``: attested (with ``key``, or by
    ``attest`` when given), and attached as a referrer."""
    from acr_ci.scan.service import scan_targets

    tool = tool or SbomTool()
    if attest is None:
        assert key is not None
        signing_key = key

        def attest(ref: Reference, predicate_type: str, doc: Mapping[str, Any]) -> SignResult:
            return attest_image(client, ref, signing_key, predicate_type, doc)

    pinned = resolve_digest(client, image)
    out: list[SignResult] = []
    for target in scan_targets(client, pinned):
        digest = target.reference.rsplit("@", 1)[1]
        platform_ref = pinned.with_digest(digest)
        doc = tool.generate(target)
        out.append(attest(platform_ref, PREDICATE_TYPE, doc))
        data = json.dumps(doc, separators=(",", ":")).encode()
        referrer, where = attach_referrer(client, platform_ref, data)
        out.append(
            SignResult(
                f"{pinned.name}@{digest}", digest, "sbom referrer", where, referrer,
                sha256_digest(data), key="", added=True, predicate_type=MEDIA_TYPE,
            )
        )  # fmt: skip
    return out
