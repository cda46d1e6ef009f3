"""The bytes other verifiers read: the simple-signing payload, DSSE's PAE, the envelope."""

from __future__ import annotations

import base64
import json

import pytest

from acr_ci.registry.reference import Reference
from acr_ci.signing import dsse, simplesigning

DIGEST = "sha256:" + "ab" * 32


def test_pae_matches_the_dsse_spec_example() -> None:
    # DSSE v1 protocol document: PAE("http://example.com/HelloWorld", "hello world")
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


@pytest.mark.parametrize(
    ("image", "reference"),
    [
        ("registry.example.com/team/app:v1", "registry.example.com/team/app"),
        ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b"),
        ("busybox", "index.docker.io/library/busybox"),  # go-containerregistry's name for Docker Hub
        ("docker.io/team/app", "index.docker.io/team/app"),
    ],
)
def test_payload_is_cosigns_compact_json(image: str, reference: str) -> None:
    data = simplesigning.payload(Reference.parse(image), DIGEST)
    assert data == (
        b'{"critical":{"identity":{"docker-reference":"' + reference.encode()
        + b'"},"image":{"docker-manifest-digest":"' + DIGEST.encode()
        + b'"},"type":"cosign container image signature"},"optional":null}'
    )
    claims = simplesigning.parse(data)
    assert (claims.docker_reference, claims.docker_manifest_digest) == (reference, DIGEST)


def test_annotations_are_escaped_as_go_does() -> None:
    data = simplesigning.payload(Reference.parse("r.example/a"), DIGEST, {"k": "<a&b>"})
    assert data.endswith(b'"optional":{"k":"\\u003ca\\u0026b\\u003e"}}')
    assert simplesigning.parse(data).optional == {"k": "<a&b>"}


@pytest.mark.parametrize(
    ("doc", "phrase"),
    [
        (b"[]", "no 'critical' object"),
        (b'{"critical":{"type":"other"}}', "critical.type is not"),
        (b'{"critical":{"type":"cosign container image signature","image":{"docker-manifest-digest":"sha256:12"}}}', "is not a digest"),
        (b"{" * 200, "nested"),
        (b"x" * 70_000, "larger than"),
    ],
)
def test_bad_payloads(doc: bytes, phrase: str) -> None:
    with pytest.raises(simplesigning.PayloadError, match=phrase):
        simplesigning.parse(doc)


def test_envelope_signs_the_pae_and_reads_back() -> None:
    seen: list[bytes] = []

    def sign(data: bytes) -> bytes:
        seen.append(data)
        return b"sig"

    body = json.dumps(dsse.statement([("r.example/a", DIGEST)], "https://example.com/p", {"x": 1})).encode()
    raw = dsse.envelope(body, sign)
    assert seen == [dsse.pae(dsse.PAYLOAD_TYPE, body)]
    doc = json.loads(raw)
    assert doc == {"payloadType": "application/vnd.in-toto+json", "payload": base64.b64encode(body).decode(), "signatures": [{"keyid": "", "sig": base64.b64encode(b"sig").decode()}]}
    env = dsse.parse_envelope(raw)
    statement = env.statement()
    assert statement["subject"] == [{"name": "r.example/a", "digest": {"sha256": "ab" * 32}}]
    assert dsse.subject_digests(statement) == {DIGEST}


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        (b"[]", "not a JSON object"),
        (b'{"payloadType":"x"}', "lacks payloadType"),
        (b'{"payloadType":"x","payload":"!!","signatures":[]}', "not base64"),
    ],
)
def test_bad_envelopes(raw: bytes, phrase: str) -> None:
    with pytest.raises(dsse.EnvelopeError, match=phrase):
        dsse.parse_envelope(raw)


def test_a_statement_of_another_type_is_refused() -> None:
    env = dsse.Envelope("text/plain", b"{}", ())
    with pytest.raises(dsse.EnvelopeError, match="payloadType is not"):
        env.statement()
    env = dsse.Envelope(dsse.PAYLOAD_TYPE, b'{"_type":"other"}', ())
    with pytest.raises(dsse.EnvelopeError, match="not an in-toto statement"):
        env.statement()
