"""Signing keys: a PEM private key from an environment variable, a PEM public key from a file.

Accepted private keys (EC P-256 only, what cosign's classic format signs with):

- PKCS#8 ``PRIVATE KEY`` (and SEC 1 ``EC PRIVATE KEY``), unencrypted;
- PKCS#8 ``ENCRYPTED PRIVATE KEY``, with the password;
- the key file ``cosign generate-key-pair`` writes: PEM type ``ENCRYPTED SIGSTORE PRIVATE
  KEY`` (``ENCRYPTED COSIGN PRIVATE KEY`` before cosign 2), whose body is JSON —
  ``{"kdf": {"name": "scrypt", "params": {"N", "r", "p"}, "salt"}, "cipher": {"name":
  "nacl/secretbox", "nonce"}, "ciphertext"}`` with base64 byte strings — the ciphertext
  being NaCl secretbox (XSalsa20-Poly1305) under a 32-byte scrypt key of the password,
  over the key's PKCS#8 DER. An empty password is what ``COSIGN_PASSWORD=""`` makes.

Errors name the environment variable and what is wrong; never the key or the password.
The scrypt parameters are bounded (a hostile key file must not ask for gigabytes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acr_ci.errors import SigningKeyError
from acr_ci.fileio import read_bounded
from acr_ci.jsonload import loads_bounded

COSIGN_PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
"""The PEM types of cosign's encrypted key file (cosign 2 and later; cosign 1)."""
MAX_KEY_BYTES = 64 * 1024
"""A PEM key is a few hundred bytes; anything much larger is not one."""
MAX_SCRYPT_N = 1 << 20
MAX_SCRYPT_R = 32
MAX_SCRYPT_P = 16
SCRYPT_MAXMEM = 1024 * 1024 * 1024
"""scrypt needs 128·N·r bytes; N=2^15, r=8 (cosign's) is 32 MiB."""
SECRETBOX_KEY_BYTES = 32
SECRETBOX_NONCE_BYTES = 24


@dataclass(frozen=True)
class SigningKey:
    """An EC P-256 private key, ready to sign (ECDSA with SHA-256, DER signatures)."""

    private: Any = field(repr=False)
    """The ``cryptography`` private key object (never shown)."""
    source: str
    """Where it came from, for messages (``$ACR_CI_SIGNING_KEY``)."""

    def sign(self, data: bytes) -> bytes:
        """An ASN.1 DER ECDSA P-256/SHA-256 signature of ``data`` (what cosign writes)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        signature: bytes = self.private.sign(data, ec.ECDSA(hashes.SHA256()))
        return signature

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(self.private.public_key(), source=self.source)


@dataclass(frozen=True)
class PublicKey:
    """An EC P-256 public key, to verify with."""

    key: Any
    """The ``cryptography`` public key object."""
    source: str
    """Where it came from, for messages (a file name)."""

    def verifies(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` (DER) is a valid ECDSA P-256/SHA-256 signature of ``data``."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            self.key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def pem(self) -> bytes:
        """The key as a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo), as ``cosign.pub`` holds it."""
        from cryptography.hazmat.primitives import serialization

        data: bytes = self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return data

    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the key's DER SubjectPublicKeyInfo (names the key in records)."""
        from cryptography.hazmat.primitives import serialization

        der = self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return "sha256:" + hashlib.sha256(der).hexdigest()


def load_signing_key(
    key_env: str, password_env: str | None, env: Mapping[str, str] | None = None
) -> SigningKey:
    """The private key in ``$key_env`` (password, if any, in ``$password_env``)."""
    env = os.environ if env is None else env
    where = f"${key_env}"
    text = env.get(key_env, "")
    if not text.strip():
        raise SigningKeyError(
            f"{where} is not set or empty: no signing key",
            f"put a PEM private key (PKCS#8 EC P-256 or a cosign key file) in {where}",
        )
    password = env.get(password_env, "") if password_env else ""
    data = text.encode("utf-8", "replace")
    if len(data) > MAX_KEY_BYTES:
        raise SigningKeyError(f"{where} is larger than {MAX_KEY_BYTES} bytes: not a PEM key")
    return SigningKey(_private_key(data, password, where, password_env), source=where)


def _private_key(data: bytes, password: str, where: str, password_env: str | None) -> Any:
    pem_type, body = _pem_block(data, where)
    pw_hint = (
        f"check the password in ${password_env}"
        if password_env
        else "set sign.password_env to the variable holding the key's password"
    )
    if pem_type in COSIGN_PEM_TYPES:
        der = decrypt_cosign_key(body, password.encode(), where=where, pw_hint=pw_hint)
        return _check_ec(_load_der(der, where), where)
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    encrypted = pem_type == "ENCRYPTED PRIVATE KEY"
    if encrypted and not password:
        raise SigningKeyError(
            f"{where} holds an encrypted PKCS#8 key but no password is set", pw_hint
        )
    if pem_type not in ("PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"):
        raise SigningKeyError(
            f"{where} holds a PEM {pem_type!r} block, not a private key",
            "use a PKCS#8 EC P-256 private key or the cosign.key file cosign generate-key-pair writes",
        )
    try:
        key = serialization.load_pem_private_key(
            data, password=password.encode() if encrypted else None
        )
    except UnsupportedAlgorithm:
        raise SigningKeyError(f"{where}: the PEM private key uses an unsupported format") from None
    except (ValueError, TypeError):
        if encrypted:
            raise SigningKeyError(
                f"{where}: the key could not be decrypted (wrong password?)", pw_hint
            ) from None
        raise SigningKeyError(f"{where}: the PEM private key could not be read") from None
    return _check_ec(key, where)


def _pem_block(data: bytes, where: str) -> tuple[str, bytes]:
    """The type and base64-decoded body of the first PEM block in ``data``."""
    lines = [ln.strip() for ln in data.decode("ascii", "replace").splitlines()]
    begin = next((i for i, ln in enumerate(lines) if ln.startswith("-----BEGIN ")), None)
    if begin is None or not lines[begin].endswith("-----"):
        raise SigningKeyError(
            f"{where} is not a PEM key (no -----BEGIN …----- line)",
            "put the whole PEM file in the variable, BEGIN and END lines included",
        )
    pem_type = lines[begin][len("-----BEGIN ") : -len("-----")]
    end_line = f"-----END {pem_type}-----"
    try:
        end = lines.index(end_line, begin + 1)
    except ValueError:
        raise SigningKeyError(f"{where}: the PEM block has no {end_line!r} line") from None
    body_lines = [ln for ln in lines[begin + 1 : end] if ln and ":" not in ln]
    try:
        body = base64.b64decode("".join(body_lines), validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError(f"{where}: the PEM body is not base64") from None
    return pem_type, body


def decrypt_cosign_key(body: bytes, password: bytes, *, where: str, pw_hint: str = "") -> bytes:
    """The PKCS#8 DER inside a cosign encrypted key's JSON ``body``."""
    doc = loads_bounded(
        body, what=f"{where}: the cosign key", max_bytes=MAX_KEY_BYTES, error=SigningKeyError
    )
    if not isinstance(doc, dict):
        raise SigningKeyError(f"{where}: the cosign key is not a JSON object")
    kdf, cipher = doc.get("kdf"), doc.get("cipher")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise SigningKeyError(f"{where}: the cosign key's kdf is not scrypt")
    if not isinstance(cipher, dict) or cipher.get("name") != "nacl/secretbox":
        raise SigningKeyError(f"{where}: the cosign key's cipher is not nacl/secretbox")
    params = kdf.get("params")
    if not isinstance(params, dict):
        raise SigningKeyError(f"{where}: the cosign key has no kdf params")
    n, r, p = params.get("N"), params.get("r"), params.get("p")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (n, r, p)):
        raise SigningKeyError(f"{where}: the cosign key's scrypt N, r, p are not positive integers")
    assert isinstance(n, int) and isinstance(r, int) and isinstance(p, int)
    if n & (n - 1) or n < 2 or n > MAX_SCRYPT_N or r > MAX_SCRYPT_R or p > MAX_SCRYPT_P:
        raise SigningKeyError(
            f"{where}: the cosign key's scrypt parameters N={n} r={r} p={p} are out of bounds",
            f"N a power of two up to {MAX_SCRYPT_N}, r up to {MAX_SCRYPT_R}, p up to {MAX_SCRYPT_P}",
        )
    salt = _b64_field(kdf.get("salt"), "kdf.salt", where)
    nonce = _b64_field(cipher.get("nonce"), "cipher.nonce", where)
    ciphertext = _b64_field(doc.get("ciphertext"), "ciphertext", where)
    if len(nonce) != SECRETBOX_NONCE_BYTES:
        raise SigningKeyError(
            f"{where}: the cosign key's nonce is not {SECRETBOX_NONCE_BYTES} bytes"
        )
    try:
        key = hashlib.scrypt(
            password, salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=SECRETBOX_KEY_BYTES
        )
    except (ValueError, MemoryError):
        raise SigningKeyError(f"{where}: scrypt refused the cosign key's parameters") from None
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    try:
        return bytes(SecretBox(key).decrypt(ciphertext, nonce))
    except CryptoError:
        raise SigningKeyError(
            f"{where}: the cosign key could not be decrypted (wrong password?)", pw_hint or None
        ) from None


def _b64_field(value: Any, name: str, where: str) -> bytes:
    if not isinstance(value, str):
        raise SigningKeyError(f"{where}: the cosign key's {name} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError(f"{where}: the cosign key's {name} is not base64") from None


def _load_der(der: bytes, where: str) -> Any:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SigningKeyError(
            f"{where}: the decrypted cosign key is not a PKCS#8 private key"
        ) from None


def _check_ec(key: Any, where: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningKeyError(
            f"{where} holds a key that is not EC P-256",
            "cosign's classic format is verified with ECDSA P-256; make one with "
            "cosign generate-key-pair",
        )
    return key


def load_public_key(path: str) -> PublicKey:
    """The EC P-256 public key in the PEM file ``path`` (``cosign.pub``)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    what = "public key"
    try:
        data = read_bounded(Path(path), limit=MAX_KEY_BYTES, what=what, error=SigningKeyError)
    except FileNotFoundError:
        raise SigningKeyError(f"--key {path}: no such file") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SigningKeyError(
            f"--key {path} is not a PEM public key", "pass the cosign.pub file (PEM PUBLIC KEY)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningKeyError(f"--key {path} is not an EC P-256 public key")
    return PublicKey(key, source=path)
