"""Keyless signatures and attestations of an image: Sigstore bundles as OCI 1.1 referrers.

What ``cosign sign --new-bundle-format`` and GitHub's attestations store: for an image
``REPO@DIGEST``, an image manifest in ``REPO`` with

- ``artifactType`` and its one layer of media type :data:`BUNDLE_MEDIA_TYPE` (the bundle
  v0.3 JSON), the empty config, ``subject`` = the image's descriptor;
- annotations ``dev.sigstore.bundle.content: dsse-envelope`` and
  ``dev.sigstore.bundle.predicateType`` (the statement's predicate type).

Every bundle is a DSSE envelope over an in-toto statement whose subject is the image's
digest: a signature is the statement of predicate type :data:`SIGN_PREDICATE_TYPE` (what
cosign's new bundle format signs), an attestation the provenance or SBOM statement. Where
the registry has no referrers API the referrer is listed in the ``sha256-<hex>`` fallback
tag's index (:func:`acr_ci.signing.sbom.attach_referrer`), which the registry client
reads back the same way.

:func:`verify_image_keyless` finds those referrers and checks each bundle with
:func:`acr_ci.sigstore_keyless.verify_keyless`; the reasons it gives when none verifies:
**no signature**, **identity mismatch** (the certificate names another identity or
issuer), **digest mismatch** (the statement names another digest), or the verifier's own
line.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acr_ci.errors import AcrError, NotVerifiedError
from acr_ci.jsonload import loads_bounded
from acr_ci.registry.client import Client
from acr_ci.registry.media import sha256_digest
from acr_ci.registry.reference import Reference
from acr_ci.signing import dsse, simplesigning
from acr_ci.signing.artifacts import Layer, read_blob
from acr_ci.signing.sbom import attach_referrer
from acr_ci.signing.sign import SignResult, resolve_digest
from acr_ci.sigstore_keyless import (
    BUNDLE_MEDIA_TYPE,
    MAX_BUNDLE,
    OIDC_SETUP_HINT,
    KeylessError,
    ci_identity_token,
    sign_statement_keyless,
    verify_keyless,
)
from acr_ci.text import clean_remote

SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
"""The predicate type of a keyless image signature (cosign's new bundle format)."""
CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
ENV_TRUST_CONFIG = "ACR_CI_SIGSTORE_TRUST_CONFIG"
"""The environment variable naming a Sigstore client trust config (a private instance)."""
MAX_REFERRERS = 200
"""At most this many bundle referrers of one digest are checked (hostile input)."""
OIDC_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"
OIDC_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"


def trust_config_path(
    setting: str | None, base: Path | None = None, env: Mapping[str, str] | None = None
) -> Path | None:
    """The trust config to use: ``$ACR_CI_SIGSTORE_TRUST_CONFIG`` when set, else
    ``setting`` (``sign.trust_config``, relative to ``base``), else None (public Sigstore)."""
    env = os.environ if env is None else env
    value = env.get(ENV_TRUST_CONFIG, "").strip()
    if value:
        return Path(value)
    if setting:
        path = Path(setting)
        return path if path.is_absolute() or base is None else base / path
    return None


@dataclass(frozen=True)
class KeylessSigner:
    """A CI's OIDC identity token and the Sigstore instance to sign with."""

    token: str = field(default="", repr=False)
    """The OIDC token (never shown: ``repr`` leaves it out)."""
    trust_config: Path | None = None

    @classmethod
    def from_env(
        cls, trust_config: Path | None, env: Mapping[str, str] | None = None
    ) -> KeylessSigner:
        """The CI's identity token (:func:`~acr_ci.sigstore_keyless.ci_identity_token`);
        :class:`KeylessError` when the CI offers none."""
        token = ci_identity_token(os.environ if env is None else env)
        if not token:
            raise KeylessError(
                "keyless signing: the CI offers no OIDC identity token", OIDC_SETUP_HINT
            )
        return cls(token=token, trust_config=trust_config)


def _statement(pinned: Reference, predicate_type: str, predicate: Mapping[str, Any]) -> bytes:
    assert pinned.digest
    doc = dsse.statement(
        [(simplesigning.docker_reference(pinned), pinned.digest)], predicate_type, predicate
    )
    return json.dumps(doc, separators=(",", ":")).encode()


def bundle_identity(bundle: bytes) -> tuple[str, str]:
    """``(identity, issuer)`` of a bundle's certificate (SAN, Fulcio OIDC issuer); empty
    strings where the bundle or certificate does not say."""
    from cryptography import x509

    try:
        doc = loads_bounded(bundle, what="the Sigstore bundle", max_bytes=MAX_BUNDLE)
        material = (doc.get("verificationMaterial") if isinstance(doc, dict) else None) or {}
        cert = material.get("certificate") or {}  # v0.3; v0.1/0.2 carry a chain
        if not cert and isinstance(material.get("x509CertificateChain"), dict):
            cert = (material["x509CertificateChain"].get("certificates") or [{}])[0]
        der = base64.b64decode(str(cert.get("rawBytes", "")), validate=True)
        parsed = x509.load_der_x509_certificate(der)
    except (AcrError, ValueError, TypeError, AttributeError, IndexError, binascii.Error):
        return "", ""
    identity = ""
    try:
        san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.UniformResourceIdentifier)]
        names += san.get_values_for_type(x509.RFC822Name)
        identity = names[0] if names else ""
    except x509.ExtensionNotFound:
        pass
    issuer = ""
    for ext in parsed.extensions:
        oid = ext.oid.dotted_string
        raw = getattr(ext.value, "value", b"")
        if oid == OIDC_ISSUER_V2 and len(raw) >= 2 and raw[0] == 0x0C:  # DER UTF8String
            issuer = _der_string(raw)
        elif oid == OIDC_ISSUER_V1 and not issuer:
            issuer = raw.decode("utf-8", "replace")
    return identity, issuer


def _der_string(raw: bytes) -> str:
    length, start = raw[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(raw[2 : 2 + count], "big"), 2 + count
    return raw[start : start + length].decode("utf-8", "replace")


def _attach(
    client: Client, image: Reference, signer: KeylessSigner, predicate_type: str, body: bytes
) -> SignResult:
    assert image.digest
    bundle = sign_statement_keyless(body, signer.token, signer.trust_config)
    annotations = {CONTENT_ANNOTATION: "dsse-envelope", PREDICATE_ANNOTATION: predicate_type}
    referrer, where = attach_referrer(
        client, image, bundle, artifact_type=BUNDLE_MEDIA_TYPE, annotations=annotations
    )
    identity, _ = bundle_identity(bundle)
    signature = predicate_type == SIGN_PREDICATE_TYPE
    return SignResult(
        f"{image.name}@{image.digest}",
        image.digest,
        "signature" if signature else "attestation",
        where,
        referrer,
        sha256_digest(bundle),
        key="",
        added=True,
        predicate_type=None if signature else predicate_type,
        identity=identity or "keyless",
    )


def sign_image_keyless(client: Client, image: Reference, signer: KeylessSigner) -> SignResult:
    """Sign ``image`` (by digest) keyless; the bundle becomes a referrer of the digest."""
    pinned = resolve_digest(client, image)
    return _attach(
        client, pinned, signer, SIGN_PREDICATE_TYPE, _statement(pinned, SIGN_PREDICATE_TYPE, {})
    )


def attest_image_keyless(
    client: Client,
    image: Reference,
    signer: KeylessSigner,
    predicate_type: str,
    predicate: Mapping[str, Any],
) -> SignResult:
    """Attest ``predicate`` about ``image`` (by digest) keyless, as a bundle referrer."""
    pinned = resolve_digest(client, image)
    return _attach(
        client, pinned, signer, predicate_type, _statement(pinned, predicate_type, predicate)
    )


@dataclass(frozen=True)
class KeylessVerifyResult:
    """A keyless-verified image."""

    image: str
    digest: str
    signatures: int
    identity: str
    issuer: str
    predicate_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Bundle:
    referrer: str
    data: bytes
    statement: bytes
    predicate_type: str
    subjects: frozenset[str]


def _bundles(client: Client, pinned: Reference) -> list[_Bundle]:
    digest = pinned.digest
    assert digest
    found = [d for d in client.referrers(pinned) if d.artifact_type == BUNDLE_MEDIA_TYPE]
    out: list[_Bundle] = []
    for desc in found[:MAX_REFERRERS]:
        manifest = client.get_manifest(pinned.with_digest(desc.digest))
        doc = manifest.json
        subject = doc.get("subject")
        if not isinstance(subject, dict) or subject.get("digest") != digest:
            continue  # a fallback-tag entry that does not refer to this digest
        layers = doc.get("layers")
        if not isinstance(layers, list) or not layers or not isinstance(layers[0], dict):
            continue
        first = layers[0]
        try:
            layer = Layer(str(first["mediaType"]), str(first["digest"]), int(first["size"]), {})
        except (KeyError, TypeError, ValueError):
            continue
        if layer.media_type != BUNDLE_MEDIA_TYPE:
            continue
        data = read_blob(client, pinned, layer, limit=MAX_BUNDLE)
        try:
            bundle = loads_bounded(data, what="the Sigstore bundle", max_bytes=MAX_BUNDLE)
            envelope = bundle["dsseEnvelope"]
            body = base64.b64decode(str(envelope["payload"]), validate=True)
            statement = loads_bounded(body, what="the in-toto statement", max_bytes=MAX_BUNDLE)
            ptype = str(statement["predicateType"])
            subjects = frozenset(dsse.subject_digests(statement))
        except (AcrError, KeyError, TypeError, ValueError, binascii.Error):
            continue
        out.append(_Bundle(desc.digest, data, body, ptype, subjects))
    return out


def verify_image_keyless(
    client: Client,
    image: Reference,
    identity: str,
    issuer: str,
    trust_config: Path | None = None,
    *,
    attestations: bool = False,
) -> KeylessVerifyResult:
    """Verify ``image``'s keyless signature (and, with ``attestations``, at least one
    keyless attestation) for ``identity`` issued by ``issuer``; :class:`NotVerifiedError`
    with the one-line reason when it fails."""
    pinned = resolve_digest(client, image)
    digest = pinned.digest
    assert digest
    shown = f"{pinned.name}@{digest}"
    bundles = _bundles(client, pinned)
    signatures = [b for b in bundles if b.predicate_type == SIGN_PREDICATE_TYPE]
    good = _verified(signatures, digest, identity, issuer, trust_config, shown, "signature")
    types: tuple[str, ...] = ()
    if attestations:
        others = [b for b in bundles if b.predicate_type != SIGN_PREDICATE_TYPE]
        verified = _verified(others, digest, identity, issuer, trust_config, shown, "attestation")
        types = tuple(dict.fromkeys(b.predicate_type for b in verified))
    return KeylessVerifyResult(shown, digest, len(good), identity, issuer, types)


def _verified(
    candidates: list[_Bundle],
    digest: str,
    identity: str,
    issuer: str,
    trust_config: Path | None,
    shown: str,
    what: str,
) -> list[_Bundle]:
    if not candidates:
        raise NotVerifiedError(f"no {what}: {shown} has no Sigstore bundle {what} referrer")
    good: list[_Bundle] = []
    other_identity: tuple[str, str] | None = None
    other_digest = False
    failure: str | None = None
    for b in candidates:
        if digest not in b.subjects:
            other_digest = True
            continue
        signer, signer_issuer = bundle_identity(b.data)
        if signer != identity or signer_issuer != issuer:
            other_identity = (signer, signer_issuer)
            continue
        try:
            verify_keyless(b.data, b.statement, identity, issuer, trust_config)
        except KeylessError as e:
            failure = e.message
            continue
        good.append(b)
    if good:
        return good
    if other_identity is not None:
        who, where = (clean_remote(v or "?") for v in other_identity)
        raise NotVerifiedError(
            f"identity mismatch: the {what} bundle of {shown} is signed by {who} (issuer "
            f"{where}), not {clean_remote(identity)} (issuer {clean_remote(issuer)})"
        )
    if other_digest:
        raise NotVerifiedError(
            f"digest mismatch: the {what} bundle referring to {shown} names another digest"
        )
    raise NotVerifiedError(f"not verified: the {what} bundle of {shown}: {failure}")
