"""Media types, descriptors and manifests: the values that move between stores.

A :class:`Manifest` keeps the exact bytes it was read as, so copies are
byte-exact and digests are preserved; parsing is only for finding what a
manifest references (children of an index, config and layers, subject).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from acr_ci.errors import DigestMismatchError, UnsupportedError, UsageError
from acr_ci.jsonload import loads_bounded
from acr_ci.registry.reference import valid_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
"""Manifests that list other manifests."""
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
"""Manifests that list a config and layers."""
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])
"""The ``Accept`` header for manifest requests: every type acr-ci can copy."""

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
"""Manifests larger than this are refused (the distribution spec's usual limit)."""


def platforms_from_flags(values: Sequence[str], flag: str = "--platform") -> list[Platform]:
    """``--platform`` values (repeated and/or comma-separated) as platforms, in order,
    each once; a :class:`UsageError` naming ``flag`` for one that is not os/arch[/variant]."""
    out: list[Platform] = []
    for value in values:
        for item in value.split(","):
            try:
                platform = Platform.parse(item.strip())
            except ValueError:
                raise UsageError(
                    f"{flag} {item!r} is not valid", "write os/arch[/variant], e.g. linux/arm64"
                ) from None
            if platform not in out:
                out.append(platform)
    return out


def sha256_digest(data: bytes) -> str:
    """The ``sha256:…`` digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def new_hasher(digest: str) -> Any:
    """A hashlib object for the algorithm of ``digest`` (sha256 or sha512)."""
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha512"):
        raise UnsupportedError(
            f"digest algorithm {algorithm!r} is not supported (sha256, sha512 are)"
        )
    return hashlib.new(algorithm)


@dataclass(frozen=True)
class Platform:
    """The platform an image manifest is for."""

    os: str
    """Operating system (``linux``)."""
    architecture: str
    """CPU architecture (``amd64``, ``arm64``)."""
    variant: str | None = None
    """CPU variant (``v8``), if any."""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]``; raise :class:`ValueError` if malformed."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} is not os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Platform:
        return cls(
            str(doc.get("os", "")),
            str(doc.get("architecture", "")),
            str(doc["variant"]) if doc.get("variant") else None,
        )

    def matches(self, wanted: Platform) -> bool:
        """True when this platform satisfies ``wanted`` (no variant wanted: any variant)."""
        return (
            self.os == wanted.os
            and self.architecture == wanted.architecture
            and (wanted.variant is None or self.variant == wanted.variant)
        )

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what, how big, which digest."""

    media_type: str
    """The referenced content's media type."""
    digest: str
    """The referenced content's digest."""
    size: int
    """The referenced content's size in bytes."""
    platform: Platform | None = None
    """For an index entry: the platform of the manifest."""
    artifact_type: str | None = None
    """For referrers: the artifact's type."""
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Annotations carried by the descriptor."""
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    """The descriptor's JSON as found, for byte-faithful re-use in new indexes."""

    @classmethod
    def from_json(cls, doc: Any, *, where: str) -> Descriptor:
        """Parse one descriptor; raise :class:`UnsupportedError` naming ``where`` if invalid."""
        if not isinstance(doc, Mapping):
            raise UnsupportedError(f"{where}: a descriptor is not a JSON object")
        digest, size, media_type = doc.get("digest"), doc.get("size"), doc.get("mediaType", "")
        if not isinstance(digest, str) or not valid_digest(digest):
            raise UnsupportedError(f"{where}: descriptor has an invalid digest {digest!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise UnsupportedError(f"{where}: descriptor {digest} has an invalid size {size!r}")
        platform = doc.get("platform")
        annotations = doc.get("annotations") or {}
        return cls(
            media_type=str(media_type),
            digest=digest,
            size=size,
            platform=Platform.from_json(platform) if isinstance(platform, Mapping) else None,
            artifact_type=str(doc["artifactType"]) if doc.get("artifactType") else None,
            annotations=MappingProxyType({str(k): str(v) for k, v in dict(annotations).items()}),
            raw=MappingProxyType(dict(doc)),
        )

    def to_json(self) -> dict[str, Any]:
        """The descriptor as JSON (the original JSON when it was parsed from one)."""
        if self.raw:
            return dict(self.raw)
        doc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform:
            doc["platform"] = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                doc["platform"]["variant"] = self.platform.variant
        if self.artifact_type:
            doc["artifactType"] = self.artifact_type
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        return doc


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as stored: bytes, media type and digest."""

    data: bytes = field(repr=False)
    """The exact bytes (never re-serialized)."""
    media_type: str
    """The manifest's media type."""
    digest: str
    """The digest of ``data``."""

    @classmethod
    def from_bytes(
        cls, data: bytes, media_type: str | None, *, expected_digest: str | None = None, where: str
    ) -> Manifest:
        """Check ``data`` against ``expected_digest`` and work out its media type.

        ``media_type`` is what the store said (``Content-Type``); when it is
        missing or generic, the document's ``mediaType`` field decides.
        """
        if len(data) > MAX_MANIFEST_BYTES:
            raise UnsupportedError(f"{where}: manifest is larger than {MAX_MANIFEST_BYTES} bytes")
        if expected_digest:
            hasher = new_hasher(expected_digest)
            hasher.update(data)
            actual = f"{expected_digest.split(':', 1)[0]}:{hasher.hexdigest()}"
            if actual != expected_digest:
                raise DigestMismatchError(
                    f"{where}: manifest content has digest {actual}, expected {expected_digest}",
                    "the registry (or something between) changed the content; try again",
                )
            digest = expected_digest
        else:
            digest = sha256_digest(data)
        doc = loads_bounded(
            data, what=f"{where}: manifest", max_bytes=MAX_MANIFEST_BYTES, invalid="is not JSON"
        )
        if not isinstance(doc, dict):
            raise UnsupportedError(f"{where}: manifest is not a JSON object")
        declared = doc.get("mediaType")
        mt = (media_type or "").split(";", 1)[0].strip()
        if mt not in MANIFEST_TYPES:
            if isinstance(declared, str) and declared in MANIFEST_TYPES:
                mt = declared
            elif mt in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
                raise UnsupportedError(
                    f"{where}: Docker schema 1 manifests are not supported",
                    "re-push the image with a current client (schema 2 or OCI)",
                )
            elif "manifests" in doc:
                mt = OCI_INDEX
            elif "config" in doc and "layers" in doc:
                mt = OCI_MANIFEST
            else:
                raise UnsupportedError(
                    f"{where}: unsupported manifest media type {mt or declared!r}"
                )
        return cls(data=data, media_type=mt, digest=digest)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def descriptor(self) -> Descriptor:
        """A descriptor of this manifest (with its artifact type, if any)."""
        doc = self.json
        artifact = doc.get("artifactType")
        if not artifact and self.media_type == OCI_MANIFEST:
            config = doc.get("config") or {}
            artifact = config.get("mediaType") if isinstance(config, Mapping) else None
        annotations = doc.get("annotations") or {}
        return Descriptor(
            self.media_type,
            self.digest,
            self.size,
            artifact_type=str(artifact) if artifact else None,
            annotations=MappingProxyType({str(k): str(v) for k, v in dict(annotations).items()}),
        )

    @property
    def json(self) -> dict[str, Any]:
        doc = loads_bounded(self.data, what=f"manifest {self.digest}")
        assert isinstance(doc, dict)
        return doc

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def children(self) -> list[Descriptor]:
        """The manifests an index lists (empty for an image manifest)."""
        if not self.is_index:
            return []
        entries = self.json.get("manifests") or []
        if not isinstance(entries, list):
            raise UnsupportedError(f"index {self.digest}: 'manifests' is not a list")
        return [Descriptor.from_json(e, where=f"index {self.digest}") for e in entries]

    def blobs(self) -> list[Descriptor]:
        """The config and layers of an image manifest (empty for an index)."""
        if self.is_index:
            return []
        doc = self.json
        out: list[Descriptor] = []
        if "config" in doc:
            out.append(Descriptor.from_json(doc["config"], where=f"manifest {self.digest} config"))
        layers = doc.get("layers") or []
        if not isinstance(layers, list):
            raise UnsupportedError(f"manifest {self.digest}: 'layers' is not a list")
        out.extend(Descriptor.from_json(d, where=f"manifest {self.digest} layer") for d in layers)
        # Non-distributable layers with URLs live elsewhere: nothing to copy.
        return [d for d in out if not d.raw.get("urls")]

    def subject(self) -> Descriptor | None:
        """The manifest this one refers to (signatures, SBOMs), if any."""
        sub = self.json.get("subject")
        if sub is None:
            return None
        return Descriptor.from_json(sub, where=f"manifest {self.digest} subject")


def make_index(descriptors: Sequence[Descriptor], media_type: str = OCI_INDEX) -> Manifest:
    """A new index listing ``descriptors`` (for platform selections and referrer tags)."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [d.to_json() for d in descriptors],
    }
    data = json.dumps(doc, separators=(",", ":")).encode()
    return Manifest(data=data, media_type=media_type, digest=sha256_digest(data))


def referrers_tag(digest: str) -> str:
    """The OCI 1.1 fallback tag for referrers of ``digest`` (``sha256-<hex>``)."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}-{encoded}"[:128]
