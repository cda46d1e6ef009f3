"""Keyless helpers that need no Sigstore service: where the trust config comes from, and a
bundle's certificate identity read from hostile or odd bundles (never an exception)."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acr_ci.signing.bundles import ENV_TRUST_CONFIG, bundle_identity, trust_config_path

BASE = Path("/project")


@pytest.mark.parametrize(
    ("setting", "env", "expected"),
    [
        pytest.param(None, {}, None, id="public-sigstore"),
        pytest.param("trust.json", {}, BASE / "trust.json", id="relative-to-config"),
        pytest.param("/etc/trust.json", {}, Path("/etc/trust.json"), id="absolute"),
        pytest.param("trust.json", {ENV_TRUST_CONFIG: "/env/t.json"}, Path("/env/t.json"), id="env-wins"),
        pytest.param(None, {ENV_TRUST_CONFIG: "  "}, None, id="blank-env-ignored"),
    ],
)
def test_trust_config_path(setting: str | None, env: dict[str, str], expected: Path | None) -> None:
    assert trust_config_path(setting, BASE, env) == expected


def _certificate(san: x509.GeneralName, issuer: bytes | None) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.test")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(minutes=10))
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
    )  # fmt: skip
    if issuer is not None:  # Fulcio's v2 issuer extension: a DER UTF8String
        der = bytes([0x0C, len(issuer)]) + issuer
        oid = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, der), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _bundle(cert: bytes) -> bytes:
    raw = base64.b64encode(cert).decode()
    return json.dumps({"verificationMaterial": {"certificate": {"rawBytes": raw}}}).encode()


def test_identity_and_issuer_of_a_certificate() -> None:
    uri = "https://ci.example.test/wf.yml@refs/heads/main"
    cert = _certificate(x509.UniformResourceIdentifier(uri), b"https://issuer.test")
    assert bundle_identity(_bundle(cert)) == (uri, "https://issuer.test")
    mail = _certificate(x509.RFC822Name("dev@example.test"), None)
    assert bundle_identity(_bundle(mail)) == ("dev@example.test", "")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[1, 2]", id="not-object"),
        pytest.param(b'{"verificationMaterial": 7}', id="material-not-object"),
        pytest.param(b'{"verificationMaterial": {"certificate": {"rawBytes": "!!"}}}', id="bad-base64"),
        pytest.param(b'{"verificationMaterial": {"certificate": {"rawBytes": "AAAA"}}}', id="not-der"),
        pytest.param(b'{"verificationMaterial": {"x509CertificateChain": {"certificates": []}}}', id="empty-chain"),
        pytest.param(b"[" * 10000 + b"]" * 10000, id="deep"),
    ],
)
def test_odd_bundles_have_no_identity(data: bytes) -> None:
    assert bundle_identity(data) == ("", "")
