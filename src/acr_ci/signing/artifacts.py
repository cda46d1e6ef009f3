"""cosign's classic artifacts in a registry: the ``sha256-<hex>.sig`` / ``.att`` manifests.

For an image ``REPO@sha256:HEX`` cosign keeps, in the same repository:

- ``REPO:sha256-HEX.sig`` — an OCI image manifest with one layer per signature
  (``application/vnd.dev.cosign.simplesigning.v1+json``, the signature in the layer's
  ``dev.cosignproject.cosign/signature`` annotation);
- ``REPO:sha256-HEX.att`` — the same shape with one DSSE envelope per attestation.

The manifest is what go-containerregistry makes of ``empty.Image`` plus
``mutate.Append`` (cosign's own code path): ``mediaType`` OCI manifest, config
``application/vnd.oci.image.config.v1+json`` holding ``{"architecture":"","created":
"0001-01-01T00:00:00Z","history":[one {"created":…} per layer],"os":"","rootfs":
{"type":"layers","diff_ids":[the layer digests]},"config":{}}``, descriptors as
``{"mediaType","size","digest","annotations"}``. A new signature is appended as one more
layer of the manifest already at the tag (a layer with the same digest and annotations is
not added twice); nothing else in the repository changes.

Two signers appending to one tag at the same moment can lose one of the two layers (the
registry has no compare-and-swap on tags); the chain signs once per image, so it does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from acr_ci.errors import NotFoundError, SigningError, UnsupportedError
from acr_ci.registry.client import Client
from acr_ci.registry.media import OCI_MANIFEST, Descriptor, Manifest, sha256_digest
from acr_ci.registry.reference import Reference
from acr_ci.registry.remote import RegistryRepository
from acr_ci.registry.store import verified
from acr_ci.signing.simplesigning import go_json

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_ANNOTATION = "predicateType"
ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero ``time.Time``, as go-containerregistry writes the config's ``created``."""
MAX_LAYERS = 1000
"""More layers than this in one ``.sig``/``.att`` manifest are refused (hostile input)."""


def artifact_tag(digest: str, suffix: str) -> str:
    """``sha256-<hex>.sig`` / ``.att`` for ``digest``."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}-{encoded}.{suffix}"


@dataclass(frozen=True)
class Layer:
    """One layer of a ``.sig``/``.att`` manifest: its descriptor (annotations included)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "mediaType": self.media_type,
            "size": self.size,
            "digest": self.digest,
        }
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        return doc

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)


@dataclass(frozen=True)
class AppendResult:
    """What :func:`append_layer` did."""

    tag: str
    """The tag the manifest is at (``sha256-<hex>.sig``)."""
    manifest_digest: str
    """The digest of the manifest now at the tag."""
    layer_digest: str
    """The digest of the payload layer (the signed payload or the envelope)."""
    layers: int
    """How many layers the manifest has now."""
    added: bool
    """False when an identical layer was already there (nothing was written)."""


def read_layers(client: Client, ref: Reference, tag: str) -> list[Layer] | None:
    """The layers of the manifest at ``tag`` in ``ref``'s repository; None when there is none."""
    repo = client.repository(ref)
    try:
        manifest = repo.get_manifest(tag)
    except NotFoundError:
        return None
    return _layers_of(manifest, f"{ref.name}:{tag}")


def _layers_of(manifest: Manifest, where: str) -> list[Layer]:
    if manifest.is_index:
        raise UnsupportedError(f"{where} is an index, not a cosign signature manifest")
    raw = manifest.json.get("layers") or []
    if not isinstance(raw, list):
        raise UnsupportedError(f"{where}: 'layers' is not a list")
    if len(raw) > MAX_LAYERS:
        raise UnsupportedError(f"{where} has {len(raw)} layers (at most {MAX_LAYERS} are read)")
    out: list[Layer] = []
    for entry in raw:
        d = Descriptor.from_json(entry, where=where)
        out.append(Layer(d.media_type, d.digest, d.size, dict(d.annotations)))
    return out


def read_blob(client: Client, ref: Reference, layer: Layer, *, limit: int) -> bytes:
    """The bytes of ``layer`` (at most ``limit``; the digest is checked)."""
    where = f"{ref.name}@{layer.digest}"
    if layer.size > limit:
        raise UnsupportedError(
            f"{where}: the layer is {layer.size} bytes (at most {limit} are read)"
        )
    repo = client.repository(ref)
    with repo.open_blob(layer.descriptor) as chunks:
        return b"".join(verified(chunks, layer.descriptor, where))


def config_blob(layers: Sequence[Layer]) -> bytes:
    """The config go-containerregistry writes for an ``empty.Image`` with ``layers`` appended."""
    doc = {
        "architecture": "",
        "created": ZERO_TIME,
        "history": [{"created": ZERO_TIME} for _ in layers],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        "config": {},
    }
    return go_json(doc)


def manifest_bytes(config: bytes, layers: Sequence[Layer]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": sha256_digest(config)},
        "layers": [layer.to_json() for layer in layers],
    }
    return go_json(doc)


def append_layer(
    client: Client,
    ref: Reference,
    tag: str,
    data: bytes,
    media_type: str,
    annotations: Mapping[str, str],
) -> AppendResult:
    """Add ``data`` as a layer (with ``annotations``) to the manifest at ``tag``, making
    the manifest if there is none; the blobs go up before the manifest."""
    where = f"{ref.name}:{tag}"
    layers = read_layers(client, ref, tag) or []
    new = Layer(media_type, sha256_digest(data), len(data), dict(annotations))
    repo = client.repository(ref)
    if new in layers:
        current = repo.resolve(tag)
        return AppendResult(tag, current.digest if current else "", new.digest, len(layers), False)
    if len(layers) >= MAX_LAYERS:
        raise SigningError(f"{where} already has {len(layers)} layers; not adding more")
    layers = [*layers, new]
    config = config_blob(layers)
    _put_blob(repo, Descriptor(media_type, new.digest, new.size), data)
    _put_blob(repo, Descriptor(OCI_CONFIG, sha256_digest(config), len(config)), config)
    body = manifest_bytes(config, layers)
    manifest = Manifest(data=body, media_type=OCI_MANIFEST, digest=sha256_digest(body))
    repo.put_manifest(manifest, tag)
    return AppendResult(tag, manifest.digest, new.digest, len(layers), True)


def _put_blob(repo: RegistryRepository, desc: Descriptor, data: bytes) -> None:
    if not repo.has_blob(desc):
        repo.put_blob(desc, [data])
