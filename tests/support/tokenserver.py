"""A real bearer-token server for distribution's ``auth.token`` scheme, run in a thread.

The registry answers ``401`` with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…``;
a client then asks this server for a token (``GET realm?service=S&scope=S1&scope=S2`` with
HTTP basic credentials, or an OAuth2 ``POST`` form with ``grant_type=password``) and
retries with ``Authorization: Bearer TOKEN``.

Tokens are JWTs signed with ES256 by a key whose self-signed certificate is the
registry's ``rootcertbundle``; the header carries the certificate in ``x5c`` (standard
base64 of the DER), which is what distribution 2.8 verifies against the bundle.

Policy: a valid user gets every action it asks for (or only ``allowed_actions`` when
set); anonymous or wrong credentials get ``401`` and no token. Every request is counted
(:attr:`TokenServer.requests`, :attr:`TokenServer.issued`, :attr:`TokenServer.log`) so
tests can assert that a client caches its tokens.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server saw."""

    method: str
    """``GET`` or ``POST``."""
    user: str | None
    """The user name presented (``None`` for anonymous)."""
    scopes: tuple[str, ...]
    """The ``scope`` parameters, as sent (``repository:team/app:pull,push``)."""
    granted: bool
    """Whether a token was issued."""


@dataclass
class SigningKey:
    """An EC P-256 key and its self-signed certificate (the registry's root cert bundle)."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def generate(cls, common_name: str = "acr-ci test token issuer") -> SigningKey:
        """A fresh key and a certificate valid from a day ago for a year."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def cert_pem(self) -> bytes:
        """The certificate in PEM, for ``auth.token.rootcertbundle``."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign_jwt(self, claims: dict[str, object]) -> str:
        """A compact JWS (ES256) over ``claims`` with the certificate in ``x5c``."""
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode("ascii")]}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der_sig = self.key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der_sig)
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input + "." + _b64url(raw)


@dataclass
class TokenServer:
    """A token endpoint on ``127.0.0.1:PORT/token`` in a daemon thread.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``users`` maps user
    names to passwords. ``allowed_actions`` (per user) limits what is granted, e.g.
    ``{"reader": {"pull"}}``; users not in it get whatever they ask for.
    """

    users: dict[str, str]
    service: str = "acr-ci-test-registry"
    issuer: str = "acr-ci-test-token-issuer"
    expires_in: int = 300
    """Token lifetime in seconds (also sent as ``expires_in``)."""
    allowed_actions: dict[str, set[str]] = field(default_factory=dict)
    key: SigningKey = field(default_factory=SigningKey.generate)
    log: list[TokenRequest] = field(default_factory=list)
    """Every request seen, in order."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _httpd: ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def requests(self) -> int:
        """How many token requests arrived (granted or not)."""
        with self._lock:
            return len(self.log)

    @property
    def issued(self) -> int:
        """How many tokens were issued."""
        with self._lock:
            return sum(1 for r in self.log if r.granted)

    def reset_counts(self) -> None:
        """Forget the request log (e.g. between phases of one test)."""
        with self._lock:
            self.log.clear()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "token server not started"
        return int(self._httpd.server_address[1])

    @property
    def realm(self) -> str:
        """The URL a registry puts in ``WWW-Authenticate: Bearer realm=…``."""
        return f"http://127.0.0.1:{self.port}/token"

    def write_cert_bundle(self, path: Path) -> Path:
        """Write the signing certificate (PEM) to ``path`` and return it."""
        path.write_bytes(self.key.cert_pem())
        return path

    def start(self) -> TokenServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/token":
                    self._send(404, {"error": "not found"})
                    return
                query = parse_qs(url.query)
                user = self._basic_user()
                self._answer("GET", user, query.get("scope", []), query.get("service", [""])[0])

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
                if url.path != "/token":
                    self._send(404, {"error": "not found"})
                    return
                user: str | bool | None = None
                if form.get("grant_type", [""])[0] == "password":
                    name = form.get("username", [""])[0]
                    password = form.get("password", [""])[0]
                    user = name if server._check(name, password) else False
                else:
                    user = self._basic_user()
                scopes = [s for item in form.get("scope", []) for s in item.split(" ") if s]
                self._answer("POST", user, scopes, form.get("service", [""])[0])

            def _basic_user(self) -> str | bool | None:
                """The user name, None when anonymous, False when credentials are wrong."""
                header = self.headers.get("Authorization", "")
                if not header.lower().startswith("basic "):
                    return None
                try:
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    return False
                return name if server._check(name, password) else False

            def _answer(
                self, method: str, user: str | bool | None, scopes: list[str], service: str
            ) -> None:
                if not isinstance(user, str) or (service and service != server.service):
                    server._record(
                        TokenRequest(
                            method, user if isinstance(user, str) else None, tuple(scopes), False
                        )
                    )
                    self._send(
                        401,
                        {
                            "errors": [
                                {"code": "UNAUTHORIZED", "message": "authentication required"}
                            ]
                        },
                        {"WWW-Authenticate": 'Basic realm="acr-ci test token server"'},
                    )
                    return
                token = server._issue(user, scopes)
                server._record(TokenRequest(method, user, tuple(scopes), True))
                issued_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                self._send(
                    200,
                    {
                        "token": token,
                        "access_token": token,
                        "expires_in": server.expires_in,
                        "issued_at": issued_at,
                    },
                )

            def _send(
                self, status: int, body: dict[str, object], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="token-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # internals

    def _check(self, name: str, password: str) -> bool:
        expected = self.users.get(name)
        return expected is not None and secrets.compare_digest(expected, password)

    def _record(self, req: TokenRequest) -> None:
        with self._lock:
            self.log.append(req)

    def _issue(self, user: str, scopes: list[str]) -> str:
        access: list[dict[str, object]] = []
        limit = self.allowed_actions.get(user)
        for scope in scopes:
            # type:name:actions; the name may itself contain ':' (a registry host with port)
            kind, _, rest = scope.partition(":")
            name, _, actions_text = rest.rpartition(":")
            actions = [a for a in actions_text.split(",") if a]
            if limit is not None:
                actions = [a for a in actions if a in limit or (a == "*" and "*" in limit)]
            if kind and name:
                access.append({"type": kind, "name": name, "actions": actions})
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": self.issuer,
            "sub": user,
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        return self.key.sign_jwt(claims)
