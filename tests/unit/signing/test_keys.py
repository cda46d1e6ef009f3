"""Signing keys from the environment: every accepted format signs, every bad one is one
line naming the variable (never the key or the password). Keys are made here; the cosign
key file is written the way cosign writes it (scrypt + NaCl secretbox), independently of
acr-ci's reader."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from nacl.secret import SecretBox

from acr_ci.errors import SigningKeyError
from acr_ci.signing.keys import load_public_key, load_signing_key

PW = "pa55-word-under-test"


def cosign_file(der: bytes, password: bytes, *, params: dict[str, int] | None = None, cipher: str = "nacl/secretbox", kdf: str = "scrypt", nonce_len: int = 24) -> str:
    salt, nonce = os.urandom(32), os.urandom(nonce_len)
    p = params or {"N": 32768, "r": 8, "p": 1}
    key = hashlib.scrypt(password, salt=salt, n=32768, r=8, p=1, maxmem=1 << 28, dklen=32)
    sealed = SecretBox(key).encrypt(der, os.urandom(24)).ciphertext if nonce_len != 24 else SecretBox(key).encrypt(der, nonce).ciphertext
    doc = {"kdf": {"name": kdf, "params": p, "salt": base64.b64encode(salt).decode()},
           "cipher": {"name": cipher, "nonce": base64.b64encode(nonce).decode()},
           "ciphertext": base64.b64encode(sealed).decode()}
    body = base64.b64encode(json.dumps(doc).encode()).decode()
    return f"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{body}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"


def der_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


EC = ec.generate_private_key(ec.SECP256R1())
P384 = ec.generate_private_key(ec.SECP384R1())
RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: object, password: bytes | None = None, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8) -> str:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc).decode()  # type: ignore[attr-defined]


GOOD = [
    ("pkcs8", pem(EC), None),
    ("sec1", pem(EC, fmt=serialization.PrivateFormat.TraditionalOpenSSL), None),
    ("pkcs8-encrypted", pem(EC, PW.encode()), PW),
    ("cosign", cosign_file(der_of(EC), PW.encode()), PW),
    ("cosign-empty-password", cosign_file(der_of(EC), b""), None),
]


@pytest.mark.parametrize(("case", "text", "password"), GOOD, ids=[g[0] for g in GOOD])
def test_accepted_keys_sign_verifiably(case: str, text: str, password: str | None) -> None:
    env = {"K": text, **({"P": password} if password else {})}
    key = load_signing_key("K", "P", env)
    sig = key.sign(b"payload")
    EC.public_key().verify(sig, b"payload", ec.ECDSA(hashes.SHA256()))  # raises if not


BAD = [
    ("unset", {}, "$K is not set or empty"),
    ("blank", {"K": "  \n"}, "$K is not set or empty"),
    ("not-pem", {"K": "hello " + PW}, "$K is not a PEM key"),
    ("no-end", {"K": "-----BEGIN PRIVATE KEY-----\nAAAA\n"}, "has no '-----END PRIVATE KEY-----' line"),
    ("certificate", {"K": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "not a private key"),
    ("bad-base64", {"K": "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"}, "not base64"),
    ("rsa", {"K": pem(RSA)}, "not EC P-256"),
    ("p384", {"K": pem(P384)}, "not EC P-256"),
    ("pkcs8-no-password", {"K": pem(EC, PW.encode())}, "no password is set"),
    ("pkcs8-wrong-password", {"K": pem(EC, PW.encode()), "P": PW + "!"}, "wrong password"),
    ("cosign-wrong-password", {"K": cosign_file(der_of(EC), PW.encode()), "P": PW + "!"}, "wrong password"),
    ("cosign-huge-n", {"K": cosign_file(der_of(EC), PW.encode(), params={"N": 1 << 30, "r": 8, "p": 1}), "P": PW}, "out of bounds"),
    ("cosign-n-not-power", {"K": cosign_file(der_of(EC), PW.encode(), params={"N": 30000, "r": 8, "p": 1}), "P": PW}, "out of bounds"),
    ("cosign-bool-n", {"K": cosign_file(der_of(EC), PW.encode(), params={"N": True, "r": 8, "p": 1}), "P": PW}, "not positive integers"),
    ("cosign-cipher", {"K": cosign_file(der_of(EC), PW.encode(), cipher="aes"), "P": PW}, "cipher is not nacl/secretbox"),
    ("cosign-kdf", {"K": cosign_file(der_of(EC), PW.encode(), kdf="pbkdf2"), "P": PW}, "kdf is not scrypt"),
    ("cosign-nonce", {"K": cosign_file(der_of(EC), PW.encode(), nonce_len=12), "P": PW}, "nonce is not 24 bytes"),
    ("cosign-not-json", {"K": "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + base64.b64encode(b"{nope").decode() + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"}, "is not valid JSON"),
    ("cosign-not-pkcs8", {"K": cosign_file(b"not a key", PW.encode()), "P": PW}, "is not a PKCS#8 private key"),
    ("huge", {"K": "A" * 70_000}, "larger than"),
]


@pytest.mark.parametrize(("case", "env", "phrase"), BAD, ids=[b[0] for b in BAD])
def test_bad_keys_are_one_line_naming_the_variable(case: str, env: dict[str, str], phrase: str) -> None:
    with pytest.raises(SigningKeyError) as info:
        load_signing_key("K", "P", env)
    text = info.value.diagnostics()
    assert phrase in text
    assert "$K" in text
    assert PW not in text
    for line in env.get("K", "").splitlines()[1:-1]:
        assert line not in text
    assert info.value.exit_code == 2


def test_public_keys(tmp_path: Path) -> None:
    good = tmp_path / "k.pub"
    good.write_bytes(EC.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    key = load_public_key(str(good))
    assert key.verifies(EC.sign(b"x", ec.ECDSA(hashes.SHA256())), b"x")
    assert not key.verifies(EC.sign(b"x", ec.ECDSA(hashes.SHA256())), b"y")
    assert not key.verifies(b"\x30\x00garbage", b"x")
    rsa_pub = tmp_path / "rsa.pub"
    rsa_pub.write_bytes(RSA.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for path, phrase in [(tmp_path / "missing.pub", "no such file"), (rsa_pub, "not an EC P-256"), (Path("/dev/zero"), "not a regular file")]:
        with pytest.raises(SigningKeyError, match=phrase):
            load_public_key(str(path))
