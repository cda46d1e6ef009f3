"""Is a report about the image being gated? The report's own words against the registry's.

A report file is a claim about *some* image; gating ``app@sha256:A`` on a report of
``app@sha256:B`` (or of another distro altogether) would pass or block the wrong thing.
:func:`image_facts` reads what the gated image is (its digest, its platform manifests'
digests and their config digests, the image IDs); :func:`match` compares a report's
:class:`~acr_ci.scan.reports.base.ArtifactIdentity` with them:

* **contradicts** — the report's image ID is neither a config digest nor a manifest
  digest of the image (Trivy ``Metadata.ImageID``, Grype ``imageID``: a config digest,
  or the manifest's digest under Docker's containerd store); or, with nothing that
  matches, it names a digest of the *same repository* that is not one of the image's;
* **matches** — its image ID, a digest it names (any repository: digests are content
  addresses, a mirror's digest is the same image) or Grype's ``manifestDigest`` is one
  of the image's;
* **unknown** — it says nothing comparable (no metadata, a tag or a path only).

A digest of another repository proves nothing either way and is ignored.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from acr_ci.errors import UsageError
from acr_ci.registry.client import Client
from acr_ci.registry.reference import Reference, valid_digest
from acr_ci.scan.reports.base import ArtifactIdentity

MAX_CHILDREN = 256
"""Platform manifests of one index read to learn their configs."""


@dataclass(frozen=True)
class ImageFacts:
    """What the gated image is, by content address."""

    image: Reference
    """The image, pinned to its digest."""
    digests: frozenset[str]
    """Its own digest and those of its platform manifests."""
    configs: frozenset[str]
    """The config blob digests of its platform manifests (their image IDs)."""


class Match(enum.Enum):
    MATCHES = "matches"
    UNKNOWN = "unknown"
    CONTRADICTS = "contradicts"


@dataclass(frozen=True)
class Verdict:
    """How a report's identity compares with the image, and why (for the message)."""

    match: Match
    reason: str = ""


def image_facts(client: Client, image: Reference) -> ImageFacts:
    """The digests and config digests of ``image`` (which must name a digest)."""
    assert image.digest
    pinned = Reference(image.registry, image.repository, None, image.digest)
    root = client.get_manifest(pinned)
    digests = {root.digest}
    manifests = [root]
    for child in root.children()[:MAX_CHILDREN]:
        digests.add(child.digest)
        manifests.append(client.get_manifest(pinned.with_digest(child.digest)))
    configs: set[str] = set()
    for m in manifests:
        if m.is_index:
            continue
        config = m.json.get("config")
        if isinstance(config, dict) and isinstance(config.get("digest"), str):
            configs.add(config["digest"])
    return ImageFacts(pinned, frozenset(digests), frozenset(configs))


def _parsed(text: str) -> Reference | None:
    try:
        return Reference.parse(text, what="report image")
    except UsageError:
        return None


def match(identity: ArtifactIdentity, facts: ImageFacts) -> Verdict:
    """Compare what a report says it is about with the gated image; see the module doc."""
    image = facts.image
    known = facts.digests | facts.configs
    if identity.image_id and valid_digest(identity.image_id) and identity.image_id not in known:
        return Verdict(
            Match.CONTRADICTS,
            f"it names image ID {identity.image_id}, which is not the config of any "
            f"platform of {image}",
        )
    if identity.image_id in known or identity.manifest_digest in facts.digests:
        return Verdict(Match.MATCHES)
    other: str = ""
    for text in (*identity.repo_digests, *identity.names):
        ref = _parsed(text)
        if ref is None or ref.digest is None:
            continue
        if ref.digest in facts.digests:
            return Verdict(Match.MATCHES)
        if not other and ref.name == image.name:
            other = str(ref.with_tag(None).with_digest(ref.digest))
    if other:
        return Verdict(
            Match.CONTRADICTS,
            f"it names {other}, another digest of the same repository (the image is "
            f"{image.digest})",
        )
    return Verdict(Match.UNKNOWN)
