"""TLS is verified for every registry that is not loopback or marked insecure.

A real docker-registry serves HTTPS with a self-signed certificate for
``registry.test``. The only stand-in is name resolution: ``registry.test`` resolves
to 127.0.0.1 inside this process (no DNS or /etc/hosts entry can be made for a test).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.support import RegistryServer
from tests.support.layout import Layout

from acr_ci.errors import RegistryError
from acr_ci.registry import Client, LayoutReference, Reference

pytestmark = pytest.mark.registry

NAME = "registry.test"


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RegistryServer, Path]]:
    cert, key = self_signed(tmp_path)
    server = RegistryServer(tmp_path / "registry", tls=(cert, key)).start()
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo("127.0.0.1" if host == NAME else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    try:
        yield server, cert
    finally:
        server.stop()


def test_an_untrusted_certificate_is_refused(
    tls_registry: tuple[RegistryServer, Path], oci_layout_factory: Callable[..., Layout]
) -> None:
    server, _ = tls_registry
    layout = oci_layout_factory(seed=601, layer_sizes=(1024,))
    target = Reference.parse(f"{NAME}:{server.port}/tls/app:v1")
    with Client() as client, pytest.raises(RegistryError) as info:
        client.push_layout(LayoutReference(str(layout.path)), target, ["v1"])
    text = info.value.diagnostics()
    assert "TLS error" in text, text
    assert "certificate is not trusted" in text and "--insecure" in text, "the hint says why, and the ways out"
    # the registry saw the handshake fail (its log line may land a moment later under
    # load: wait for it, bounded), and nothing was written
    deadline = time.monotonic() + 10
    while "TLS handshake error" not in server.log_tail(200) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "TLS handshake error" in server.log_tail(200)
    assert not list((server.storage).rglob("_manifests"))


def test_the_certificate_verifies_with_its_ca(
    tls_registry: tuple[RegistryServer, Path],
    oci_layout_factory: Callable[..., Layout],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, cert = tls_registry
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    layout = oci_layout_factory(seed=602, layer_sizes=(1024,))
    target = Reference.parse(f"{NAME}:{server.port}/tls/app:v1")
    with Client() as client:
        pushed = client.push_layout(LayoutReference(str(layout.path)), target, ["v1"])
        assert client.tag_digest(target) == layout.index_digest == pushed.digest


def test_insecure_allows_an_unverified_registry(
    tls_registry: tuple[RegistryServer, Path], oci_layout_factory: Callable[..., Layout]
) -> None:
    server, _ = tls_registry
    layout = oci_layout_factory(seed=603, layer_sizes=(1024,))
    target = Reference.parse(f"{NAME}:{server.port}/tls/app:v1")
    with Client(insecure=[f"{NAME}:{server.port}"]) as client:
        client.push_layout(LayoutReference(str(layout.path)), target, ["v1"])
        assert client.tag_digest(target) == layout.index_digest
