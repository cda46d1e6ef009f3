"""cosign's "simple signing" payload: the JSON a classic cosign signature signs.

cosign (``sigstore/sigstore`` ``payload.Cosign``) marshals, with Go's ``encoding/json``
(compact, fields in struct order)::

    {"critical":{"identity":{"docker-reference":REPO},
                 "image":{"docker-manifest-digest":DIGEST},
                 "type":"cosign container image signature"},
     "optional":null}

``REPO`` is the repository the way go-containerregistry names it (``ref.Context().Name()``:
``registry/repository``, Docker Hub as ``index.docker.io``); ``optional`` is ``null`` when
no annotations are given (``cosign sign -a k=v`` fills it). The signature covers these
exact bytes, so :func:`payload` writes them the same way; :func:`parse` reads any
payload (a verifier must not care about key order or spacing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from acr_ci.errors import AcrError
from acr_ci.jsonload import loads_bounded
from acr_ci.registry.reference import DEFAULT_REGISTRY, Reference, valid_digest

SIGNATURE_TYPE = "cosign container image signature"
MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
"""The layer media type of a signature payload in a ``.sig`` manifest."""
MAX_PAYLOAD_BYTES = 64 * 1024
"""A payload is a few hundred bytes (more with annotations); larger ones are refused."""


class PayloadError(ValueError):
    """A payload that is not a cosign simple-signing document (the message says why)."""


@dataclass(frozen=True)
class SimpleSigning:
    """What a simple-signing payload claims."""

    docker_reference: str
    docker_manifest_digest: str
    optional: Mapping[str, object] | None = None


def docker_reference(ref: Reference) -> str:
    """The repository as cosign writes it in ``critical.identity.docker-reference``."""
    registry = "index.docker.io" if ref.registry == DEFAULT_REGISTRY else ref.registry
    return f"{registry}/{ref.repository}"


def payload(ref: Reference, digest: str, annotations: Mapping[str, str] | None = None) -> bytes:
    """The payload bytes cosign would sign for ``ref``'s repository at ``digest``."""
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference(ref)},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": dict(annotations) if annotations else None,
    }
    return go_json(doc)


def go_json(doc: object) -> bytes:
    """JSON as Go's ``json.Marshal`` writes it: compact, UTF-8, ``<``, ``>``, ``&`` escaped
    (Go escapes them for HTML safety; the bytes must match to the last one)."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode()


def parse(data: bytes) -> SimpleSigning:
    """The claims of a payload; :class:`PayloadError` if it is not a cosign one."""
    try:
        doc = loads_bounded(data, what="signature payload", max_bytes=MAX_PAYLOAD_BYTES)
    except AcrError as e:
        raise PayloadError(e.message) from None
    critical = doc.get("critical") if isinstance(doc, dict) else None
    if not isinstance(critical, dict):
        raise PayloadError("the payload has no 'critical' object")
    if critical.get("type") != SIGNATURE_TYPE:
        raise PayloadError(f"the payload's critical.type is not {SIGNATURE_TYPE!r}")
    identity, image = critical.get("identity"), critical.get("image")
    ref = identity.get("docker-reference") if isinstance(identity, dict) else None
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(digest, str) or not valid_digest(digest):
        raise PayloadError("the payload's critical.image.docker-manifest-digest is not a digest")
    optional = doc.get("optional")
    return SimpleSigning(
        docker_reference=ref if isinstance(ref, str) else "",
        docker_manifest_digest=digest,
        optional=optional if isinstance(optional, dict) else None,
    )
