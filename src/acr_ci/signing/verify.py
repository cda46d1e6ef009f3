"""Verify an image's cosign classic signatures (and attestations) with a public key.

The steps cosign's ``verify --key PUB --insecure-ignore-tlog`` takes, and the reason
given when one fails:

1. the image is resolved to its digest (a tag now; a digest as given);
2. the ``sha256-<hex>.sig`` manifest of that digest is read — none, or no
   simple-signing layer in it: **no signature**;
3. each layer's payload is read (its digest checked) and its
   ``dev.cosignproject.cosign/signature`` checked with the key — none verifies:
   **wrong key** (or a payload changed after signing: the two cannot be told apart);
4. the payload of a verified signature must name the digest of step 1 in
   ``critical.image.docker-manifest-digest`` — otherwise **digest mismatch** (a tag moved
   to another image with the old signature copied along).

With ``attestations``, the ``.att`` manifest must hold at least one DSSE envelope whose
signature over the PAE verifies with the key and whose statement names the digest as a
subject; every such predicate type is reported.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from acr_ci.errors import NotVerifiedError
from acr_ci.registry.client import Client
from acr_ci.registry.reference import Reference
from acr_ci.signing import dsse, simplesigning
from acr_ci.signing.artifacts import SIGNATURE_ANNOTATION, artifact_tag, read_blob, read_layers
from acr_ci.signing.keys import PublicKey
from acr_ci.signing.sign import resolve_digest


@dataclass(frozen=True)
class VerifyResult:
    """A verified image."""

    image: str
    """``REPO@DIGEST``."""
    digest: str
    signatures: int
    """How many signatures verified with the key and name the digest."""
    key: str
    """The key's fingerprint."""
    predicate_types: tuple[str, ...] = field(default=())
    """With attestations: the predicate types of the verified attestations."""


def verify_image(
    client: Client, image: Reference, key: PublicKey, *, attestations: bool = False
) -> VerifyResult:
    """Verify ``image``; :class:`NotVerifiedError` with the one-line reason when it fails."""
    pinned = resolve_digest(client, image)
    digest = pinned.digest
    assert digest is not None
    shown = f"{pinned.name}@{digest}"
    count = _verify_signatures(client, pinned, digest, key, shown)
    types: tuple[str, ...] = ()
    if attestations:
        types = _verify_attestations(client, pinned, digest, key, shown)
    return VerifyResult(shown, digest, count, key.fingerprint(), types)


def _verify_signatures(
    client: Client, ref: Reference, digest: str, key: PublicKey, shown: str
) -> int:
    tag = artifact_tag(digest, "sig")
    layers = read_layers(client, ref, tag)
    if layers is None:
        raise NotVerifiedError(f"no signature: {shown} has no {tag} in its repository")
    candidates = [la for la in layers if la.media_type == simplesigning.MEDIA_TYPE]
    if not candidates:
        raise NotVerifiedError(f"no signature: {ref.name}:{tag} holds no simple-signing layer")
    good = 0
    other: str | None = None
    for layer in candidates:
        payload = read_blob(client, ref, layer, limit=simplesigning.MAX_PAYLOAD_BYTES)
        try:
            signature = base64.b64decode(
                layer.annotations.get(SIGNATURE_ANNOTATION, ""), validate=True
            )
        except (binascii.Error, ValueError):
            continue
        if not signature or not key.verifies(signature, payload):
            continue
        try:
            claims = simplesigning.parse(payload)
        except simplesigning.PayloadError:
            continue
        if claims.docker_manifest_digest == digest:
            good += 1
        else:
            other = claims.docker_manifest_digest
    if good:
        return good
    if other is not None:
        raise NotVerifiedError(
            f"digest mismatch: the signature in {ref.name}:{tag} verifies with {key.source} but "
            f"signs {other}, not {digest}"
        )
    raise NotVerifiedError(
        f"wrong key: none of the {len(candidates)} signature(s) in {ref.name}:{tag} verifies "
        f"with {key.source} (or the signed payload was changed)"
    )


def _verify_attestations(
    client: Client, ref: Reference, digest: str, key: PublicKey, shown: str
) -> tuple[str, ...]:
    tag = artifact_tag(digest, "att")
    layers = read_layers(client, ref, tag)
    if layers is None:
        raise NotVerifiedError(f"no attestation: {shown} has no {tag} in its repository")
    candidates = [la for la in layers if la.media_type == dsse.MEDIA_TYPE]
    if not candidates:
        raise NotVerifiedError(f"no attestation: {ref.name}:{tag} holds no DSSE envelope")
    types: list[str] = []
    mismatch = False
    for layer in candidates:
        data = read_blob(client, ref, layer, limit=dsse.MAX_ENVELOPE_BYTES)
        try:
            env = dsse.parse_envelope(data)
        except dsse.EnvelopeError:
            continue
        signed = dsse.pae(env.payload_type, env.payload)
        if not any(key.verifies(s, signed) for s in env.signatures):
            continue
        try:
            statement = env.statement()
        except dsse.EnvelopeError:
            continue
        if digest not in dsse.subject_digests(statement):
            mismatch = True
            continue
        types.append(str(statement["predicateType"]))
    if types:
        return tuple(dict.fromkeys(types))
    if mismatch:
        raise NotVerifiedError(
            f"digest mismatch: the attestations in {ref.name}:{tag} verify with {key.source} "
            f"but none names {digest} as its subject"
        )
    raise NotVerifiedError(
        f"wrong key: none of the {len(candidates)} attestation(s) in {ref.name}:{tag} verifies "
        f"with {key.source}"
    )
