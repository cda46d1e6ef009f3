"""Keyless signing end to end, offline: sigstore-python (through acr_ci.sigstore_keyless)
against a local Fulcio, Rekor and timestamp authority (npm @sigstore/mock behind real HTTP,
tests/support/sigstore/standin.js), with a client trust config naming the stand-in's keys.

Every bundle is checked by two verifiers: sigstore-python's (acr_ci.verify_keyless) and
sigstore-js's @sigstore/verify (tests/support/sigstore/verify.js), which shares no code
with the signer. Tampering (another payload, another identity or issuer, another trust
root, an edited bundle) must make both refuse it. No test reaches the public Sigstore.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.sigstore_standin import (
    SigstoreStandin,
    mint_token,
    node_verify,
    require_sigstore,
)

from acr_ci.sigstore_keyless import (
    BUNDLE_MEDIA_TYPE,
    KeylessError,
    sign_keyless,
    sign_statement_keyless,
    verify_keyless,
)

SUBJECT = "https://ci.example.test/team/app/.ci/release.yml@refs/heads/main"
OTHER_SUBJECT = "https://ci.example.test/team/other/.ci/release.yml@refs/heads/main"
DIGEST = "sha256:" + hashlib.sha256(b"an image manifest").hexdigest()


@pytest.fixture(autouse=True)
def _sigstore_installed() -> None:
    require_sigstore()


def simple_signing(digest: str = DIGEST) -> bytes:
    """cosign's simple-signing payload for one image digest (what `cosign sign` signs)."""
    doc = {
        "critical": {
            "identity": {"docker-reference": "registry.example.test/team/app"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def statement(digest: str = DIGEST) -> bytes:
    """An in-toto v1 statement about the image (a minimal SLSA provenance shape)."""
    doc = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "registry.example.test/team/app", "digest": {"sha256": digest[7:]}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "https://acr-ci.test/build/v1"}},
    }
    return json.dumps(doc).encode()


def both_verify(
    tmp_path: Path,
    bundle: bytes,
    payload: bytes,
    *,
    identity: str,
    issuer: str,
    trust: Path,
) -> tuple[str | None, str | None]:
    """(sigstore-python's refusal, sigstore-js's refusal); None where it verified."""
    python_reason: str | None = None
    try:
        verify_keyless(bundle, payload, identity, issuer, trust)
    except KeylessError as e:
        python_reason = e.message
    bundle_file = tmp_path / "bundle.json"
    payload_file = tmp_path / "payload"
    bundle_file.write_bytes(bundle)
    payload_file.write_bytes(payload)
    done = node_verify(trust, bundle_file, payload_file, identity, issuer)
    assert done.returncode in (0, 1), done.stderr
    js_reason = None if done.returncode == 0 else done.stderr.strip()
    if js_reason is None:
        assert done.stdout.strip() == "verified"
    return python_reason, js_reason


@pytest.fixture
def signed(
    sigstore_standin: SigstoreStandin,
) -> Callable[..., bytes]:
    def sign(payload: bytes, *, dsse: bool = False, subject: str = SUBJECT) -> bytes:
        token = sigstore_standin.token(subject)
        fn = sign_statement_keyless if dsse else sign_keyless
        return fn(payload, token, sigstore_standin.trust_config)

    return sign


@pytest.mark.parametrize("dsse", [False, True], ids=["message-signature", "dsse"])
def test_bundle_from_the_standin_verifies_with_both_verifiers(
    sigstore_standin: SigstoreStandin, signed: Callable[..., bytes], tmp_path: Path, dsse: bool
) -> None:
    before = sigstore_standin.requests_served()
    payload = statement() if dsse else simple_signing()
    bundle = signed(payload, dsse=dsse)
    after = sigstore_standin.requests_served()
    # One certificate, one log entry, one timestamp: all from the stand-in.
    assert {k: after[k] - before[k] for k in after} == {"fulcio": 1, "rekor": 1, "tsa": 1}

    doc = json.loads(bundle)
    assert doc["mediaType"] == BUNDLE_MEDIA_TYPE
    material = doc["verificationMaterial"]
    assert len(material["tlogEntries"]) == 1
    assert len(material["timestampVerificationData"]["rfc3161Timestamps"]) == 1
    entry = material["tlogEntries"][0]
    if dsse:
        envelope = doc["dsseEnvelope"]
        assert envelope["payloadType"] == "application/vnd.in-toto+json"
        assert base64.b64decode(envelope["payload"]) == payload
        assert entry["kindVersion"]["kind"] == "dsse"
    else:
        digest = doc["messageSignature"]["messageDigest"]
        assert base64.b64decode(digest["digest"]) == hashlib.sha256(payload).digest()
        assert entry["kindVersion"]["kind"] == "hashedrekord"

    assert both_verify(
        tmp_path,
        bundle,
        payload,
        identity=SUBJECT,
        issuer="https://oidc.standin.test",
        trust=sigstore_standin.trust_config,
    ) == (None, None)


def _edit_bundle(bundle: bytes, edit: Callable[[dict[str, object]], None]) -> bytes:
    doc = json.loads(bundle)
    edit(doc)
    return json.dumps(doc).encode()


def _flip_signature(doc: dict[str, object]) -> None:
    sig = doc["messageSignature"]
    assert isinstance(sig, dict)
    raw = bytearray(base64.b64decode(sig["signature"]))
    raw[-1] ^= 0x01
    sig["signature"] = base64.b64encode(bytes(raw)).decode()


# (case id, payload to verify, identity, issuer, how to change the bundle, python's reason)
REFUSALS = [
    ("payload-changed", simple_signing(DIGEST[:-1] + "0"), SUBJECT, None, None, "does not verify"),
    ("wrong-identity", simple_signing(), OTHER_SUBJECT, None, None, "does not verify"),
    (
        "wrong-issuer",
        simple_signing(),
        SUBJECT,
        "https://other.issuer.test",
        None,
        "does not verify",
    ),
    ("signature-flipped", simple_signing(), SUBJECT, None, _flip_signature, "does not verify"),
]


@pytest.mark.parametrize(
    ("payload", "identity", "issuer", "edit", "reason"),
    [r[1:] for r in REFUSALS],
    ids=[r[0] for r in REFUSALS],
)
def test_tampering_is_refused_by_both_verifiers(
    sigstore_standin: SigstoreStandin,
    signed: Callable[..., bytes],
    tmp_path: Path,
    payload: bytes,
    identity: str,
    issuer: str | None,
    edit: Callable[[dict[str, object]], None] | None,
    reason: str,
) -> None:
    bundle = signed(simple_signing())
    if edit is not None:
        bundle = _edit_bundle(bundle, edit)
    python_reason, js_reason = both_verify(
        tmp_path,
        bundle,
        payload,
        identity=identity,
        issuer=issuer or "https://oidc.standin.test",
        trust=sigstore_standin.trust_config,
    )
    assert python_reason is not None and reason in python_reason
    assert "\n" not in python_reason
    assert js_reason is not None and js_reason.startswith("not verified")


def test_dsse_bundle_for_another_statement_is_refused(
    sigstore_standin: SigstoreStandin, signed: Callable[..., bytes], tmp_path: Path
) -> None:
    bundle = signed(statement(), dsse=True)
    other = statement(DIGEST[:-1] + "0")
    python_reason, js_reason = both_verify(
        tmp_path,
        bundle,
        other,
        identity=SUBJECT,
        issuer="https://oidc.standin.test",
        trust=sigstore_standin.trust_config,
    )
    assert python_reason == "the DSSE envelope signs a different statement"
    assert js_reason is not None and "differs" in js_reason


def test_another_instances_trust_root_refuses_the_bundle(
    sigstore_standin: SigstoreStandin, signed: Callable[..., bytes], tmp_path: Path
) -> None:
    """The trust config is what makes a bundle good: a second stand-in (other keys) refuses."""
    bundle = signed(simple_signing())
    other = SigstoreStandin(tmp_path / "other").start()
    try:
        python_reason, js_reason = both_verify(
            tmp_path,
            bundle,
            simple_signing(),
            identity=SUBJECT,
            issuer="https://oidc.standin.test",
            trust=other.trust_config,
        )
    finally:
        other.stop()
    assert python_reason is not None and "does not verify" in python_reason
    assert js_reason is not None and js_reason.startswith("not verified")


def test_a_token_sigstore_refuses_is_one_line_without_the_token(
    sigstore_standin: SigstoreStandin,
) -> None:
    before = sigstore_standin.requests_served()
    for token in (
        mint_token(SUBJECT, lifetime=-3600),  # expired
        mint_token(SUBJECT, audience="not-sigstore"),
        "not.a.jwt",
    ):
        with pytest.raises(KeylessError) as caught:
            sign_keyless(simple_signing(), token, sigstore_standin.trust_config)
        assert caught.value.message.startswith("the OIDC identity token is unusable")
        assert token not in caught.value.diagnostics()
        assert "id-token: write" in (caught.value.hint or "")
    assert sigstore_standin.requests_served() == before  # refused before any service


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        (b"{", "is not valid JSON"),
        (b"[" * 1000 + b"]" * 1000, "nested"),
        (
            b'{"mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"}',
            "is not a usable client trust config",
        ),
    ],
    ids=["missing", "not-json", "too-deep", "no-trusted-root"],
)
def test_bad_trust_config_names_the_file(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "trust.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(KeylessError) as caught:
        sign_keyless(b"x", mint_token(SUBJECT), path)
    assert str(path) in caught.value.message
    assert expected in caught.value.message
    assert "\n" not in caught.value.message


def test_bad_bundle_is_one_line(sigstore_standin: SigstoreStandin) -> None:
    for bundle in (
        b"not json",
        b"[]",
        b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
    ):
        with pytest.raises(KeylessError) as caught:
            verify_keyless(
                bundle, b"x", SUBJECT, "https://oidc.standin.test", sigstore_standin.trust_config
            )
        assert "Sigstore bundle" in caught.value.message
        assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("service", "url", "expected"),
    [
        ("caUrls", "http://127.0.0.1:9", "cannot connect: http://127.0.0.1:9/api/v2/signingCert"),
        ("rekorTlogUrls", "{url}/nope", "Rekor returned an unknown error with HTTP 404"),
    ],
    ids=["fulcio-unreachable", "rekor-refuses"],
)
def test_a_failing_service_is_one_line(
    sigstore_standin: SigstoreStandin, tmp_path: Path, service: str, url: str, expected: str
) -> None:
    config = json.loads(sigstore_standin.trust_config.read_text())
    config["signingConfig"][service][0]["url"] = url.format(url=sigstore_standin.url)
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(config))
    token = mint_token(SUBJECT)
    with pytest.raises(KeylessError) as caught:
        sign_keyless(simple_signing(), token, path)
    assert caught.value.message == f"keyless signing failed: {expected}"
    assert token not in caught.value.diagnostics()


def test_a_statement_that_is_not_in_toto_is_refused(sigstore_standin: SigstoreStandin) -> None:
    before = sigstore_standin.requests_served()
    with pytest.raises(KeylessError) as caught:
        sign_statement_keyless(
            simple_signing(), sigstore_standin.token(SUBJECT), sigstore_standin.trust_config
        )
    assert caught.value.message == (
        "the payload to sign is not an in-toto statement (in-toto v1 JSON)"
    )
    assert sigstore_standin.requests_served() == before


def test_a_verifier_needs_only_the_trusted_root(
    sigstore_standin: SigstoreStandin, signed: Callable[..., bytes], tmp_path: Path
) -> None:
    """A trust config whose signing config names no usable service still verifies."""
    bundle = signed(simple_signing())
    config = json.loads(sigstore_standin.trust_config.read_text())
    config["signingConfig"]["caUrls"] = []
    path = tmp_path / "verify-only.json"
    path.write_text(json.dumps(config))
    verify_keyless(bundle, simple_signing(), SUBJECT, "https://oidc.standin.test", path)
    with pytest.raises(KeylessError) as caught:
        sign_keyless(simple_signing(), sigstore_standin.token(SUBJECT), path)
    assert "No valid Fulcio CA found in signing config" in caught.value.message
