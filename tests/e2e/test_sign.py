"""`acr-ci sign|attest|verify` against a real registry, checked by an independent verifier.

The keys are made here: a PKCS#8 EC P-256 key, an encrypted PKCS#8 key, and a cosign key
file written the way `cosign generate-key-pair` writes one (scrypt N=32768 r=8 p=1 over a
32-byte salt, NaCl secretbox with a 24-byte nonce, JSON with base64 byte strings, PEM type
ENCRYPTED SIGSTORE PRIVATE KEY). What acr-ci wrote is read back with plain HTTP (urllib)
and checked with `cryptography` here — no acr-ci code verifies its own output — and the
tamper cases (a re-pointed tag, a swapped payload, a wrong key) must make `acr-ci verify`
exit 1 with the reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nacl.secret import SecretBox
from tests.support import RegistryServer
from tests.support.layout import Layout

from acr_ci.registry import Client, Reference

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"


# -- keys, made here -----------------------------------------------------------------------


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pkcs8_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> str:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc).decode()


def cosign_pem(key: ec.EllipticCurvePrivateKey, password: bytes, *, n: int = 32768, pem_type: str = "ENCRYPTED SIGSTORE PRIVATE KEY", declared_n: int | None = None) -> str:
    """A key file as `cosign generate-key-pair` writes it (go-securesystemslib `encrypted`);
    ``declared_n`` writes another N than the one used (a hostile file)."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    salt, nonce = os.urandom(32), os.urandom(24)
    box_key = hashlib.scrypt(password, salt=salt, n=n, r=8, p=1, maxmem=256 * 1024 * 1024, dklen=32)
    sealed = SecretBox(box_key).encrypt(der, nonce).ciphertext  # tag ‖ ciphertext, like Go's secretbox.Seal
    doc = {
        "kdf": {"name": "scrypt", "params": {"N": declared_n or n, "r": 8, "p": 1}, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    body = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {pem_type}-----\n" + "\n".join(lines) + f"\n-----END {pem_type}-----\n"


def write_pub(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


# -- the CLI, as a user runs it --------------------------------------------------------------


def acr(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB", "ACR_CI_"))}
    base.pop("CI", None)
    return subprocess.run(
        [sys.executable, "-m", "acr_ci", *args],
        capture_output=True, text=True, env={**base, **(env or {})}, cwd=cwd or ROOT, timeout=180,
    )


def push(registry: RegistryServer, layout: Layout, repo: str, *tags: str) -> str:
    with Client() as c:
        return c.push_layout(layout.path, Reference.parse(registry.ref(repo)), list(tags)).digest


# -- the independent reader and verifier ------------------------------------------------------


def http(registry: RegistryServer, path: str, *, accept: str | None = None, method: str = "GET", data: bytes | None = None, ctype: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(registry.url + path, method=method, data=data)
    if accept:
        req.add_header("Accept", accept)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def get_manifest(registry: RegistryServer, repo: str, ref: str) -> bytes | None:
    status, body, _ = http(registry, f"/v2/{repo}/manifests/{ref}", accept=f"{OCI_MANIFEST}, {OCI_INDEX}")
    if status == 404:
        return None
    assert status == 200, body
    return body


def get_blob(registry: RegistryServer, repo: str, digest: str) -> bytes:
    status, body, _ = http(registry, f"/v2/{repo}/blobs/{digest}")
    assert status == 200
    assert "sha256:" + hashlib.sha256(body).hexdigest() == digest, "blob bytes do not match their digest"
    return body


def put_blob(registry: RegistryServer, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, _, headers = http(registry, f"/v2/{repo}/blobs/uploads/", method="POST", data=b"")
    assert status == 202
    location = headers["Location"]
    sep = "&" if "?" in location else "?"
    url = location if location.startswith("http") else registry.url + location
    req = urllib.request.Request(f"{url}{sep}digest={digest}", method="PUT", data=data)
    req.add_header("Content-Type", "application/octet-stream")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 201
    return digest


def put_manifest(registry: RegistryServer, repo: str, ref: str, body: bytes) -> None:
    status, text, _ = http(registry, f"/v2/{repo}/manifests/{ref}", method="PUT", data=body, ctype=OCI_MANIFEST)
    assert status == 201, text


def tag_of(digest: str, suffix: str) -> str:
    return digest.replace(":", "-") + "." + suffix


def independent_signatures(registry: RegistryServer, repo: str, digest: str) -> list[tuple[bytes, bytes]]:
    """(payload, DER signature) of every layer of the .sig manifest, after checking the
    manifest is what cosign writes: OCI manifest, OCI config whose diff_ids are the layers."""
    body = get_manifest(registry, repo, tag_of(digest, "sig"))
    assert body is not None, "no .sig manifest"
    manifest = json.loads(body)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    config = json.loads(get_blob(registry, repo, manifest["config"]["digest"]))
    assert config["rootfs"] == {"type": "layers", "diff_ids": [la["digest"] for la in manifest["layers"]]}
    out = []
    for layer in manifest["layers"]:
        assert layer["mediaType"] == SIMPLESIGNING
        payload = get_blob(registry, repo, layer["digest"])
        out.append((payload, base64.b64decode(layer["annotations"][SIG_ANNOTATION])))
    return out


def verifies(key: ec.EllipticCurvePrivateKey, signature: bytes, data: bytes) -> bool:
    try:
        key.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except Exception:
        return False
    return True


def check_payload(payload: bytes, registry: RegistryServer, repo: str, digest: str) -> None:
    # cosign's bytes exactly: Go's compact json.Marshal of the simple-signing struct
    head = '{"critical":{"identity":{"docker-reference":"' + f"{registry.host}/{repo}"
    expected = (
        head + '"},"image":{"docker-manifest-digest":"' + digest
        + '"},"type":"cosign container image signature"},"optional":null}'
    ).encode()
    assert payload == expected


def pae(payload_type: str, payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


# -- tests ------------------------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Any]:
    k1, k2, k3 = new_key(), new_key(), new_key()
    return {
        "k1": k1, "k2": k2, "k3": k3,
        "pub1": write_pub(k1, tmp_path / "k1.pub"),
        "pub2": write_pub(k2, tmp_path / "k2.pub"),
        "pub3": write_pub(k3, tmp_path / "k3.pub"),
    }


def test_sign_by_tag_appends_and_verifies(registry: RegistryServer, oci_layout_factory: Callable[..., Layout], keys: dict[str, Any]) -> None:
    repo = "team/signed"
    digest = push(registry, oci_layout_factory(seed=301), repo, "v1")
    image = f"{registry.host}/{repo}:v1"

    r = acr("sign", image, env={"ACR_CI_SIGNING_KEY": pkcs8_pem(keys["k1"])})
    assert r.returncode == 0, r.stderr
    assert digest in r.stdout and tag_of(digest, "sig") in r.stdout
    sigs = independent_signatures(registry, repo, digest)
    assert len(sigs) == 1
    check_payload(sigs[0][0], registry, repo, digest)
    assert verifies(keys["k1"], sigs[0][1], sigs[0][0])

    # the same key again: nothing added (cosign's duplicate detector does the same)
    r = acr("sign", f"{registry.host}/{repo}@{digest}", env={"ACR_CI_SIGNING_KEY": pkcs8_pem(keys["k1"])})
    assert r.returncode == 0, r.stderr
    assert "already in" in r.stdout
    assert len(independent_signatures(registry, repo, digest)) == 1

    # a second key, from a cosign key file: appended to the same manifest, not a new tag
    pw = "correct horse"
    r = acr("sign", image, "--key-env", "COSIGN_KEY", "--password-env", "COSIGN_PW",
            env={"COSIGN_KEY": cosign_pem(keys["k2"], pw.encode()), "COSIGN_PW": pw})
    assert r.returncode == 0, r.stderr
    sigs = independent_signatures(registry, repo, digest)
    assert len(sigs) == 2
    assert verifies(keys["k1"], sigs[0][1], sigs[0][0])
    assert verifies(keys["k2"], sigs[1][1], sigs[1][0])
    assert not verifies(keys["k1"], sigs[1][1], sigs[1][0])
    for payload, _ in sigs:
        check_payload(payload, registry, repo, digest)

    for pub in ("pub1", "pub2"):
        r = acr("verify", image, "--key", str(keys[pub]))
        assert r.returncode == 0, r.stderr
        assert f"verified: {registry.host}/{repo}@{digest}" in r.stdout
    r = acr("verify", image, "--key", str(keys["pub3"]))
    assert r.returncode == 1
    assert "not verified: wrong key" in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize("pem_type", ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"])
def test_cosign_key_with_empty_password(registry: RegistryServer, oci_layout_factory: Callable[..., Layout], keys: dict[str, Any], pem_type: str) -> None:
    repo = f"team/empty-pw-{pem_type.split()[1].lower()}"
    digest = push(registry, oci_layout_factory(seed=302), repo, "v1")
    r = acr("sign", f"{registry.host}/{repo}:v1", env={"ACR_CI_SIGNING_KEY": cosign_pem(keys["k1"], b"", pem_type=pem_type)})
    assert r.returncode == 0, r.stderr
    (payload, sig), = independent_signatures(registry, repo, digest)
    assert verifies(keys["k1"], sig, payload)


def test_key_errors_name_the_variable_never_the_secret(registry: RegistryServer, oci_layout_factory: Callable[..., Layout], keys: dict[str, Any]) -> None:
    repo = "team/key-errors"
    push(registry, oci_layout_factory(seed=303), repo, "v1")
    image = f"{registry.host}/{repo}:v1"
    pw = "s3cret-Password-value"
    cases = [
        ({}, "$ACR_CI_SIGNING_KEY is not set"),
        ({"ACR_CI_SIGNING_KEY": cosign_pem(keys["k1"], pw.encode()), "ACR_CI_SIGNING_PASSWORD": pw + "x"}, "wrong password"),
        ({"ACR_CI_SIGNING_KEY": pkcs8_pem(keys["k1"], pw.encode()), "ACR_CI_SIGNING_PASSWORD": pw + "x"}, "wrong password"),
        ({"ACR_CI_SIGNING_KEY": pkcs8_pem(keys["k1"], pw.encode())}, "no password is set"),
        ({"ACR_CI_SIGNING_KEY": "not a key " + pw}, "is not a PEM key"),
        ({"ACR_CI_SIGNING_KEY": cosign_pem(keys["k1"], pw.encode(), declared_n=1 << 30), "ACR_CI_SIGNING_PASSWORD": pw}, "out of bounds"),
    ]
    for env, reason in cases:
        r = acr("sign", image, env=env)
        assert r.returncode == 2, (reason, r.stderr)
        assert reason in r.stderr, r.stderr
        assert "ACR_CI_SIGNING_KEY" in r.stderr or "ACR_CI_SIGNING_PASSWORD" in r.stderr
        assert pw not in r.stderr and pw not in r.stdout
        assert "Traceback" not in r.stderr
        for line in env.get("ACR_CI_SIGNING_KEY", "").splitlines()[1:-1]:
            assert line not in r.stderr  # no part of the key's body
    assert get_manifest(registry, repo, "sha256-" + "0" * 64 + ".sig") is None


def test_recursive_signs_every_platform_manifest(registry: RegistryServer, oci_layout_factory: Callable[..., Layout], keys: dict[str, Any]) -> None:
    repo = "team/recursive"
    layout = oci_layout_factory(seed=308)
    digest = push(registry, layout, repo, "v1")
    r = acr("sign", f"{registry.host}/{repo}:v1", "--recursive", "--format", "json", env={"ACR_CI_SIGNING_KEY": pkcs8_pem(keys["k1"])})
    assert r.returncode == 0, r.stderr
    signed = [x["digest"] for x in json.loads(r.stdout)]
    assert signed == [digest, *layout.manifests.values()]
    for d in signed:
        (payload, sig), = independent_signatures(registry, repo, d)
        check_payload(payload, registry, repo, d)
        assert verifies(keys["k1"], sig, payload)
        assert acr("verify", f"{registry.host}/{repo}@{d}", "--key", str(keys["pub1"])).returncode == 0


def test_encrypted_pkcs8_key_signs(registry: RegistryServer, oci_layout_factory: Callable[..., Layout], keys: dict[str, Any]) -> None:
    repo = "team/enc-pkcs8"
    digest = push(registry, oci_layout_factory(seed=304), repo, "v1")
    r = acr("sign", f"{registry.host}/{repo}:v1",
            env={"ACR_CI_SIGNING_KEY": pkcs8_pem(keys["k3"], b"pw-123"), "ACR_CI_SIGNING_PASSWORD": "pw-123"})
    assert r.returncode == 0, r.stderr
    (payload, sig), = independent_signatures(registry, repo, digest)
    assert verifies(keys["k3"], sig, payload)


def test_tampering_is_caught(registry: RegistryServer, oci_layout_factory: Callable[..., Layout], keys: dict[str, Any]) -> None:
    repo = "team/tamper"
    good = push(registry, oci_layout_factory(seed=305), repo, "v1")
    image = f"{registry.host}/{repo}:v1"
    assert acr("sign", image, env={"ACR_CI_SIGNING_KEY": pkcs8_pem(keys["k1"])}).returncode == 0
    assert acr("verify", image, "--key", str(keys["pub1"])).returncode == 0
    sig_manifest = get_manifest(registry, repo, tag_of(good, "sig"))
    assert sig_manifest is not None

    # 1. the tag re-pointed at another image: no signature for that digest
    evil = push(registry, oci_layout_factory(seed=306), repo, "v1")
    assert evil != good
    r = acr("verify", image, "--key", str(keys["pub1"]))
    assert r.returncode == 1 and "not verified: no signature" in r.stderr, r.stderr

    # 2. ... and the old signature copied to the new digest's .sig tag: digest mismatch
    put_manifest(registry, repo, tag_of(evil, "sig"), sig_manifest)
    r = acr("verify", image, "--key", str(keys["pub1"]))
    assert r.returncode == 1 and "not verified: digest mismatch" in r.stderr, r.stderr
    assert good in r.stderr and evil in r.stderr

    # 3. a swapped payload under the original signature: the signature no longer verifies
    doc = json.loads(sig_manifest)
    forged = json.dumps({
        "critical": {"identity": {"docker-reference": f"{registry.host}/{repo}"},
                     "image": {"docker-manifest-digest": evil},
                     "type": "cosign container image signature"},
        "optional": None,
    }, separators=(",", ":")).encode()
    doc["layers"][0]["digest"] = put_blob(registry, repo, forged)
    doc["layers"][0]["size"] = len(forged)
    put_manifest(registry, repo, tag_of(evil, "sig"), json.dumps(doc).encode())
    r = acr("verify", image, "--key", str(keys["pub1"]))
    assert r.returncode == 1 and "not verified: wrong key" in r.stderr, r.stderr

    # the original digest still verifies; the wrong key never does
    assert acr("verify", f"{registry.host}/{repo}@{good}", "--key", str(keys["pub1"])).returncode == 0
    r = acr("verify", f"{registry.host}/{repo}@{good}", "--key", str(keys["pub2"]))
    assert r.returncode == 1 and "not verified: wrong key" in r.stderr


def test_attest_provenance(registry: RegistryServer, oci_layout_factory: Callable[..., Layout], keys: dict[str, Any], tmp_path: Path) -> None:
    repo = "team/attested"
    layout = oci_layout_factory(seed=307, platforms=("linux/amd64", "linux/arm64"))
    digest = push(registry, layout, repo, "v1")
    image = f"{registry.host}/{repo}:v1"
    cfg = tmp_path / ".acr-ci.yml"
    cfg.write_text(
        f"""version: 1
image: {registry.host}/{repo}
build:
  rules:
    - name: release
      type: tag
      match: v(?<n>.*)
      tags: ["${{n}}"]
      platforms: [linux/amd64, linux/arm64]
      args: {{GO_VERSION: "1.22"}}
sign:
  key_env: MY_KEY
attest:
  provenance: true
"""
    )
    base = f"{registry.host}/base/busybox@sha256:" + "ab" * 32
    sha = "1234567890abcdef1234567890abcdef12345678"
    env = {"MY_KEY": pkcs8_pem(keys["k1"]), "GITLAB_CI": "true", "CI_JOB_URL": "https://gitlab.example.com/g/p/-/jobs/42"}

    r = acr("verify", image, "--key", str(keys["pub1"]), "--attestations")
    assert r.returncode == 1 and "not verified: no signature" in r.stderr

    assert acr("sign", image, "--config", str(cfg), env=env).returncode == 0
    r = acr("verify", image, "--key", str(keys["pub1"]), "--attestations")
    assert r.returncode == 1 and "not verified: no attestation" in r.stderr, r.stderr

    r = acr("attest", image, "--config", str(cfg), "--ref", "refs/tags/v1.2", "--sha", sha,
            "--time", "2026-01-02T03:04:05Z", "--base-image", base, env=env)
    assert r.returncode == 0, r.stderr

    body = get_manifest(registry, repo, tag_of(digest, "att"))
    assert body is not None
    manifest = json.loads(body)
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == DSSE
    assert layer["annotations"]["predicateType"] == "https://slsa.dev/provenance/v1"
    envelope = json.loads(get_blob(registry, repo, layer["digest"]))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    payload = base64.b64decode(envelope["payload"])
    (sig,) = envelope["signatures"]
    assert verifies(keys["k1"], base64.b64decode(sig["sig"]), pae(envelope["payloadType"], payload))
    assert not verifies(keys["k1"], base64.b64decode(sig["sig"]), payload)  # PAE, not the bare payload
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": f"{registry.host}/{repo}", "digest": {"sha256": digest.split(":")[1]}}]
    pred = statement["predicate"]
    ext = pred["buildDefinition"]["externalParameters"]
    assert ext["ref"] == "refs/tags/v1.2"
    assert ext["rule"] == "release"
    assert ext["config"]["digest"]["sha256"] == hashlib.sha256(cfg.read_bytes()).hexdigest()
    assert sorted(ext["platforms"]) == sorted(layout.manifests)
    assert ext["args"] == {"GO_VERSION": "1.22"}
    deps = pred["buildDefinition"]["resolvedDependencies"]
    assert {"digest": {"gitCommit": sha}} in [{"digest": d["digest"]} for d in deps]
    assert {"uri": f"pkg:docker/{base.split('@')[0]}", "digest": {"sha256": "ab" * 32}} in deps
    assert pred["runDetails"]["builder"]["id"] == "https://gitlab.example.com/g/p/-/jobs/42"

    r = acr("verify", image, "--key", str(keys["pub1"]), "--attestations")
    assert r.returncode == 0, r.stderr
    assert "https://slsa.dev/provenance/v1" in r.stdout
    r = acr("verify", image, "--key", str(keys["pub2"]), "--attestations")
    assert r.returncode == 1 and "wrong key" in r.stderr

    # attesting the same statement again adds nothing
    r = acr("attest", image, "--config", str(cfg), "--ref", "refs/tags/v1.2", "--sha", sha,
            "--time", "2026-01-02T03:04:05Z", "--base-image", base, env=env)
    assert r.returncode == 0 and "already in" in r.stdout, r.stdout + r.stderr
    again = get_manifest(registry, repo, tag_of(digest, "att"))
    assert again is not None and len(json.loads(again)["layers"]) == 1


def test_hostile_signature_manifests_are_one_line(registry: RegistryServer, oci_layout_factory: Callable[..., Layout], keys: dict[str, Any]) -> None:
    repo = "team/hostile-sig"
    digest = push(registry, oci_layout_factory(seed=309), repo, "v1")
    image = f"{registry.host}/{repo}@{digest}"
    config = b"{}"
    config_digest = put_blob(registry, repo, config)
    small = put_blob(registry, repo, b"x" * 10)
    cases = [
        # a payload layer claiming to be far larger than any payload: not read
        ({"mediaType": SIMPLESIGNING, "digest": small, "size": 50 * 1024 * 1024, "annotations": {SIG_ANNOTATION: "AAAA"}}, "at most"),
        # a signature annotation that is not base64, on a payload that is not JSON
        ({"mediaType": SIMPLESIGNING, "digest": small, "size": 10, "annotations": {SIG_ANNOTATION: "%%%"}}, "wrong key"),
    ]
    for layer, phrase in cases:
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config)},
            "layers": [layer],
        }).encode()
        put_manifest(registry, repo, tag_of(digest, "sig"), manifest)
        r = acr("verify", image, "--key", str(keys["pub1"]))
        assert r.returncode == 1, r.stderr
        assert phrase in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) <= 2, r.stderr  # the line, at most a hint
