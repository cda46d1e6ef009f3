"""A local Sigstore instance for the keyless tests: Fulcio, Rekor (v1) and a timestamp
authority from npm ``@sigstore/mock``, served over real HTTP on 127.0.0.1 by
``tests/support/sigstore/standin.js``, plus the client trust config that names its URLs
and keys, and OIDC identity tokens it accepts.

The mock Fulcio decodes the token without checking its signature (as a real Fulcio would
check against the issuer's keys) and certifies the ``sub`` claim as a URI SAN, with the
``iss`` claim as the OIDC issuer extension; so any well-formed JWT with ``aud: sigstore``
and current ``iat``/``exp`` (what sigstore-python itself checks) is a token here.

``node`` and the npm packages (``npm ci`` in ``tests/support/sigstore``, done by
``scripts/setup.sh test``) must be there: missing is a skip locally, a failure under CI.
Nothing here reaches the public Sigstore services.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
import os
import selectors
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.support._proc import skip_or_fail

STANDIN_DIR = Path(__file__).resolve().parent / "sigstore"
ISSUER = "https://oidc.standin.test"
"""The ``iss`` of the tokens :meth:`SigstoreStandin.token` mints by default."""
START_TIMEOUT = 30.0
_SINCE = "2020-01-01T00:00:00Z"


def node_binary() -> str:
    """``node``, with the stand-in's npm packages installed, or skip (fail under CI)."""
    node = shutil.which("node")
    if node is None:
        skip_or_fail("node is not installed (scripts/setup.sh test installs nodejs)")
    for package in ("@sigstore/mock", "@sigstore/verify"):
        if not (STANDIN_DIR / "node_modules" / package / "package.json").is_file():
            skip_or_fail(
                f"npm package {package} is missing in {STANDIN_DIR}: "
                "run scripts/setup.sh test (or `npm ci` there)"
            )
    return node


def require_sigstore() -> None:
    """The PyPI ``sigstore`` package (an acr-ci dependency) is importable, or skip/fail."""
    if importlib.util.find_spec("sigstore") is None:
        skip_or_fail("the sigstore package is not installed (scripts/setup.sh test installs it)")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(
    subject: str,
    *,
    issuer: str = ISSUER,
    audience: str = "sigstore",
    lifetime: int = 600,
    **claims: Any,
) -> str:
    """An HS256 JWT with the OIDC claims sigstore-python requires (aud, sub, iat, exp, iss)."""
    now = int(time.time())
    body = {"iss": issuer, "sub": subject, "aud": audience, "iat": now, "exp": now + lifetime}
    body.update(claims)
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(body).encode())
    key = os.urandom(32)  # nobody checks it: the stand-in's Fulcio only decodes the token
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def _key_id(der_b64: str) -> str:
    return base64.b64encode(hashlib.sha256(base64.b64decode(der_b64)).digest()).decode()


def trust_config(info: dict[str, Any]) -> dict[str, Any]:
    """A Sigstore client trust config (v0.1) naming the stand-in's services and keys."""
    url = info["url"]
    tsa_url = f"{url}/api/v1/timestamp"

    def log(key: str) -> dict[str, Any]:
        return {
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": info[key],
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": _SINCE},
            },
            "logId": {"keyId": _key_id(info[key])},
        }

    def service(service_url: str) -> dict[str, Any]:
        return {
            "url": service_url,
            "majorApiVersion": 1,
            "validFor": {"start": _SINCE},
            "operator": "acr-ci stand-in",
        }

    return {
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log("rekor_key")],
            "ctlogs": [log("ctlog_key")],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "sigstore.mock", "commonName": "sigstore"},
                    "uri": url,
                    "certChain": {"certificates": [{"rawBytes": info["fulcio_root"]}]},
                    "validFor": {"start": _SINCE},
                }
            ],
            "timestampAuthorities": [
                {
                    "subject": {"organization": "sigstore.mock", "commonName": "tsa"},
                    "uri": tsa_url,
                    "certChain": {"certificates": [{"rawBytes": c} for c in info["tsa_chain"]]},
                    "validFor": {"start": _SINCE},
                }
            ],
        },
        "signingConfig": {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [service(url)],
            "oidcUrls": [],
            "rekorTlogUrls": [service(url)],
            "tsaUrls": [service(tsa_url)],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        },
    }


class SigstoreStandin:
    """One stand-in process; ``start()`` writes ``trust_config`` under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.trust_config = directory / "trust_config.json"
        self.url = ""
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr = directory / "standin.stderr"

    def start(self) -> SigstoreStandin:
        require_sigstore()
        node = node_binary()
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._stderr.open("wb") as err:
            self._proc = subprocess.Popen(
                [node, str(STANDIN_DIR / "standin.js")],
                cwd=STANDIN_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        assert self._proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            ready = sel.select(START_TIMEOUT)
        line = self._proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError(f"the Sigstore stand-in did not start: {self.log_tail()}")
        self.info = json.loads(line)
        self.url = self.info["url"]
        self.trust_config.write_text(json.dumps(trust_config(self.info), indent=2))
        return self

    def token(self, subject: str, *, issuer: str = ISSUER, **claims: Any) -> str:
        """An identity token for ``subject`` from ``issuer`` that this Fulcio certifies."""
        return mint_token(subject, issuer=issuer, **claims)

    def requests_served(self) -> dict[str, int]:
        """How many requests each service (fulcio, rekor, tsa) answered so far."""
        answer = requests.get(f"{self.url}/_standin/requests", timeout=10)
        answer.raise_for_status()
        counts: dict[str, int] = answer.json()
        return counts

    def log_tail(self) -> str:
        try:
            return self._stderr.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the stand-in stops when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def node_verify(
    trust: Path, bundle: Path, artifact: Path, identity: str, issuer: str
) -> subprocess.CompletedProcess[str]:
    """sigstore-js's verifier (``tests/support/sigstore/verify.js``) on one bundle."""
    return subprocess.run(
        [
            node_binary(),
            str(STANDIN_DIR / "verify.js"),
            str(trust),
            str(bundle),
            str(artifact),
            identity,
            issuer,
        ],
        cwd=STANDIN_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="session")
def sigstore_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SigstoreStandin]:
    """The session's Sigstore stand-in: ``.url``, ``.trust_config`` (a client trust config
    file naming its Fulcio, Rekor and TSA and their keys), ``.token(subject, issuer=…)``
    (an OIDC token its Fulcio certifies) and ``.requests_served()``."""
    standin = SigstoreStandin(tmp_path_factory.mktemp("sigstore-standin")).start()
    try:
        yield standin
    finally:
        standin.stop()


__all__ = [
    "ISSUER",
    "SigstoreStandin",
    "mint_token",
    "node_binary",
    "node_verify",
    "require_sigstore",
    "sigstore_standin",
    "trust_config",
]
