"""Sign and attest an image by digest, in cosign's classic format.

:func:`sign_image` writes the simple-signing payload of ``REPO@DIGEST`` as a layer of
``REPO:sha256-<hex>.sig``; :func:`attest_image` writes an in-toto statement about the
digest, in a DSSE envelope, as a layer of ``REPO:sha256-<hex>.att``. A tag is resolved to
its digest first: what is signed is always the digest.

Like cosign's duplicate detector, a layer whose payload is the same and whose signature
already verifies with this key is not added again, so signing twice is a no-op.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acr_ci.registry.client import Client
from acr_ci.registry.media import sha256_digest
from acr_ci.registry.reference import Reference
from acr_ci.signing import dsse, simplesigning
from acr_ci.signing.artifacts import (
    PREDICATE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    Layer,
    append_layer,
    artifact_tag,
    read_blob,
    read_layers,
)
from acr_ci.signing.keys import SigningKey


@dataclass(frozen=True)
class SignResult:
    """One signature or attestation attached to an image."""

    image: str
    """``REPO@DIGEST``: what was signed."""
    digest: str
    """The signed digest."""
    kind: str
    """``signature`` or ``attestation``."""
    tag: str
    """Where it is: ``sha256-<hex>.sig`` or ``.att`` in the image's repository."""
    manifest_digest: str
    """The digest of the manifest at :attr:`tag` afterwards."""
    layer_digest: str
    """The digest of the payload (or envelope) layer."""
    key: str
    """The key's fingerprint (``sha256:`` of its public key DER)."""
    added: bool
    """False when the same payload signed by the same key was there already."""
    predicate_type: str | None = None
    """For an attestation: its predicate type."""
    identity: str | None = None
    """Keyless: the identity (certificate SAN) that signed; :attr:`key` is then empty."""

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "digest": self.digest,
            "kind": self.kind,
            "tag": self.tag,
            "manifest_digest": self.manifest_digest,
            "layer_digest": self.layer_digest,
            "key": self.key,
            "added": self.added,
            "predicate_type": self.predicate_type,
            "identity": self.identity,
        }


def resolve_digest(client: Client, image: Reference) -> Reference:
    """``image`` pinned to its digest (a tag is resolved now; a digest is kept)."""
    if image.digest:
        return image
    return image.with_digest(client.resolve(image).digest)


def sign_image(client: Client, image: Reference, key: SigningKey) -> SignResult:
    """Sign ``image`` (by digest) and append the signature to its ``.sig`` manifest."""
    pinned = resolve_digest(client, image)
    digest = pinned.digest
    assert digest is not None
    payload = simplesigning.payload(pinned, digest)
    tag = artifact_tag(digest, "sig")
    public = key.public_key
    existing = _existing(client, pinned, tag, payload, simplesigning.MEDIA_TYPE, key)
    if existing is not None:
        return SignResult(
            f"{pinned.name}@{digest}",
            digest,
            "signature",
            tag,
            existing,
            sha256_digest(payload),
            public.fingerprint(),
            added=False,
        )
    signature = base64.b64encode(key.sign(payload)).decode()
    result = append_layer(
        client, pinned, tag, payload, simplesigning.MEDIA_TYPE, {SIGNATURE_ANNOTATION: signature}
    )
    return SignResult(
        f"{pinned.name}@{digest}",
        digest,
        "signature",
        tag,
        result.manifest_digest,
        result.layer_digest,
        public.fingerprint(),
        added=result.added,
    )


def attest_image(
    client: Client,
    image: Reference,
    key: SigningKey,
    predicate_type: str,
    predicate: Mapping[str, Any],
) -> SignResult:
    """Attest ``predicate`` about ``image`` (by digest) in its ``.att`` manifest."""
    pinned = resolve_digest(client, image)
    digest = pinned.digest
    assert digest is not None
    statement = dsse.statement(
        [(simplesigning.docker_reference(pinned), digest)], predicate_type, predicate
    )
    body = json.dumps(statement, separators=(",", ":"), sort_keys=False).encode()
    tag = artifact_tag(digest, "att")
    public = key.public_key
    done = _existing_attestation(client, pinned, tag, body, key)
    if done is not None:
        manifest_digest, layer_digest = done
        return SignResult(
            f"{pinned.name}@{digest}",
            digest,
            "attestation",
            tag,
            manifest_digest,
            layer_digest,
            public.fingerprint(),
            added=False,
            predicate_type=predicate_type,
        )
    envelope = dsse.envelope(body, key.sign)
    result = append_layer(
        client,
        pinned,
        tag,
        envelope,
        dsse.MEDIA_TYPE,
        {SIGNATURE_ANNOTATION: "", PREDICATE_ANNOTATION: predicate_type},
    )
    return SignResult(
        f"{pinned.name}@{digest}",
        digest,
        "attestation",
        tag,
        result.manifest_digest,
        result.layer_digest,
        public.fingerprint(),
        added=result.added,
        predicate_type=predicate_type,
    )


def _existing(
    client: Client, ref: Reference, tag: str, payload: bytes, media_type: str, key: SigningKey
) -> str | None:
    """The ``.sig`` manifest's digest when it already holds ``payload`` signed by ``key``."""
    layers = read_layers(client, ref, tag) or []
    digest = sha256_digest(payload)
    public = key.public_key
    for layer in layers:
        if layer.media_type != media_type or layer.digest != digest:
            continue
        try:
            signature = base64.b64decode(
                layer.annotations.get(SIGNATURE_ANNOTATION, ""), validate=True
            )
        except (binascii.Error, ValueError):
            continue
        if public.verifies(signature, payload):
            current = client.repository(ref).resolve(tag)
            return current.digest if current else None
    return None


def _existing_attestation(
    client: Client, ref: Reference, tag: str, body: bytes, key: SigningKey
) -> tuple[str, str] | None:
    layers: list[Layer] = read_layers(client, ref, tag) or []
    public = key.public_key
    for layer in layers:
        if layer.media_type != dsse.MEDIA_TYPE:
            continue
        data = read_blob(client, ref, layer, limit=dsse.MAX_ENVELOPE_BYTES)
        try:
            env = dsse.parse_envelope(data)
        except dsse.EnvelopeError:
            continue
        if env.payload != body:
            continue
        if any(public.verifies(s, dsse.pae(env.payload_type, env.payload)) for s in env.signatures):
            current = client.repository(ref).resolve(tag)
            return (current.digest if current else "", layer.digest)
    return None
