"""DSSE envelopes around in-toto statements: what an attestation is.

- The statement (in-toto v1): ``{"_type": "https://in-toto.io/Statement/v1", "subject":
  [{"name", "digest": {"sha256": HEX}}], "predicateType", "predicate"}``.
- The envelope (DSSE v1): ``{"payloadType": "application/vnd.in-toto+json", "payload":
  BASE64(statement), "signatures": [{"keyid": "", "sig": BASE64(signature)}]}``; the
  signature is over the pre-authentication encoding :func:`pae`, never over the JSON.

cosign stores an envelope as one layer (:data:`MEDIA_TYPE`) of the ``sha256-<hex>.att``
manifest, with the statement's predicate type in the layer's ``predicateType``
annotation and an empty ``dev.cosignproject.cosign/signature`` annotation.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from acr_ci.errors import AcrError
from acr_ci.jsonload import loads_bounded
from acr_ci.signing.simplesigning import go_json

MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
"""The layer media type of an attestation in a ``.att`` manifest."""
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
STATEMENT_TYPES = frozenset({STATEMENT_TYPE, "https://in-toto.io/Statement/v0.1"})
"""Statement versions a verifier accepts (cosign still writes v0.1 for some predicates)."""
MAX_ENVELOPE_BYTES = 64 * 1024 * 1024
"""An envelope carrying an SBOM can be large; beyond this it is refused."""


class EnvelopeError(ValueError):
    """An envelope or statement that is not what DSSE / in-toto say (the message says why)."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 LEN(type) type LEN(body) body``."""
    t = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def statement(
    subjects: Sequence[tuple[str, str]], predicate_type: str, predicate: Mapping[str, Any]
) -> dict[str, Any]:
    """An in-toto v1 statement about ``subjects`` (``(name, "sha256:HEX")`` pairs)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": name, "digest": {d.split(":", 1)[0]: d.split(":", 1)[1]}}
            for name, d in subjects
        ],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def envelope(
    payload: bytes, sign: Callable[[bytes], bytes], payload_type: str = PAYLOAD_TYPE
) -> bytes:
    """The DSSE envelope JSON of ``payload``, signed by ``sign`` over :func:`pae`."""
    signature = sign(pae(payload_type, payload))
    doc = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
    }
    return go_json(doc)


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope: the payload bytes and its signatures (raw bytes)."""

    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]

    def statement(self) -> dict[str, Any]:
        """The in-toto statement the payload holds; :class:`EnvelopeError` if none."""
        if self.payload_type != PAYLOAD_TYPE:
            raise EnvelopeError(f"the envelope's payloadType is not {PAYLOAD_TYPE}")
        try:
            doc = loads_bounded(
                self.payload, what="in-toto statement", max_bytes=MAX_ENVELOPE_BYTES
            )
        except AcrError as e:
            raise EnvelopeError(e.message) from None
        if not isinstance(doc, dict) or doc.get("_type") not in STATEMENT_TYPES:
            raise EnvelopeError("the envelope's payload is not an in-toto statement")
        if not isinstance(doc.get("subject"), list) or not isinstance(
            doc.get("predicateType"), str
        ):
            raise EnvelopeError("the in-toto statement has no subject list or predicateType")
        return doc


def parse_envelope(data: bytes) -> Envelope:
    try:
        doc = loads_bounded(data, what="DSSE envelope", max_bytes=MAX_ENVELOPE_BYTES)
    except AcrError as e:
        raise EnvelopeError(e.message) from None
    if not isinstance(doc, dict):
        raise EnvelopeError("the DSSE envelope is not a JSON object")
    ptype, body, sigs = doc.get("payloadType"), doc.get("payload"), doc.get("signatures")
    if not isinstance(ptype, str) or not isinstance(body, str) or not isinstance(sigs, list):
        raise EnvelopeError("the DSSE envelope lacks payloadType, payload or signatures")
    try:
        payload = base64.b64decode(body, validate=True)
        signatures = tuple(
            base64.b64decode(s["sig"], validate=True)
            for s in sigs[:16]
            if isinstance(s, dict) and isinstance(s.get("sig"), str)
        )
    except (binascii.Error, ValueError):
        raise EnvelopeError("the DSSE envelope's payload or a signature is not base64") from None
    return Envelope(ptype, payload, signatures)


def subject_digests(doc: Mapping[str, Any]) -> set[str]:
    """Every ``algorithm:hex`` digest the statement's subjects name."""
    out: set[str] = set()
    for s in doc.get("subject") or []:
        digest = s.get("digest") if isinstance(s, dict) else None
        if isinstance(digest, dict):
            out |= {f"{k}:{v}" for k, v in digest.items() if isinstance(v, str)}
    return out
