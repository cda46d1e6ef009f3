"""OIDC token discovery for keyless signing (acr_ci.sigstore_keyless.ci_identity_token).

GitHub Actions' token endpoint is a real local HTTP server here: the test checks the exact
request (path, query with audience=sigstore, bearer header) and each bad answer's message.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from acr_ci.sigstore_keyless import KeylessError, ci_identity_token

REQUEST_TOKEN = "runner-request-token-7f3a"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOnRlYW0vYXBwIn0.c2ln"


@dataclass
class TokenEndpoint:
    """A loopback HTTP server answering every GET with ``status`` and ``body``."""

    status: int = 200
    body: bytes = b""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/_apis/token?api-version=2.0") -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def endpoint() -> Iterator[TokenEndpoint]:
    state = TokenEndpoint(body=json.dumps({"count": 1, "value": ID_TOKEN}).encode())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

    state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=state.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.server.shutdown()
        state.server.server_close()
        thread.join(5)


def github_env(url: str) -> dict[str, str]:
    return {"ACTIONS_ID_TOKEN_REQUEST_URL": url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN}


def test_github_token_request_is_exact(endpoint: TokenEndpoint) -> None:
    assert ci_identity_token(github_env(endpoint.url())) == ID_TOKEN
    assert len(endpoint.requests) == 1
    path, headers = endpoint.requests[0]
    assert path == "/_apis/token?api-version=2.0&audience=sigstore"
    assert headers["authorization"] == f"bearer {REQUEST_TOKEN}"
    assert headers["accept"] == "application/json"


def test_github_url_without_query_gets_one(endpoint: TokenEndpoint) -> None:
    assert ci_identity_token(github_env(endpoint.url("/token"))) == ID_TOKEN
    assert endpoint.requests[0][0] == "/token?audience=sigstore"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"SIGSTORE_ID_TOKEN": "  "}, None),
        ({"SIGSTORE_ID_TOKEN": f" {ID_TOKEN}\n"}, ID_TOKEN),
        # explicit wins over GitHub's endpoint (which is then never asked: no server here)
        ({"SIGSTORE_ID_TOKEN": ID_TOKEN, **github_env("http://127.0.0.1:9/x")}, ID_TOKEN),
        # one of GitHub's two variables alone: the workflow lacks id-token: write
        ({"ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.example.test/x"}, None),
        ({"ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN}, None),
    ],
    ids=["none", "blank", "gitlab-or-other", "explicit-wins", "url-only", "token-only"],
)
def test_token_sources(env: dict[str, str], expected: str | None) -> None:
    assert ci_identity_token(env) == expected


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (403, b'{"message": "no id-token permission"}', "answered HTTP 403"),
        (200, b"<html>", "is not valid JSON"),
        (200, b'{"count": 0}', "has no token in `value`"),
        (200, b'{"value": 7}', "has no token in `value`"),
        (200, b'["value"]', "has no token in `value`"),
        (200, b'{"value": "' + b"x" * 70000 + b'"}', "answered more than 65536 bytes"),
    ],
    ids=["forbidden", "not-json", "no-value", "value-not-string", "not-object", "oversized"],
)
def test_bad_answers_are_one_line_without_secrets(
    endpoint: TokenEndpoint, status: int, body: bytes, message: str
) -> None:
    endpoint.status, endpoint.body = status, body
    with pytest.raises(KeylessError) as caught:
        ci_identity_token(github_env(endpoint.url()))
    text = caught.value.diagnostics()
    assert message in caught.value.message
    assert "GitHub's OIDC token endpoint (127.0.0.1)" in caught.value.message
    assert "\n" not in caught.value.message
    assert REQUEST_TOKEN not in text


@pytest.mark.parametrize(
    "url",
    ["http://token.example.test/x", "file:///etc/passwd", "ftp://127.0.0.1/x", "not a url"],
)
def test_token_is_sent_only_over_https_or_to_loopback(url: str) -> None:
    with pytest.raises(KeylessError) as caught:
        ci_identity_token(github_env(url))
    assert caught.value.message == "ACTIONS_ID_TOKEN_REQUEST_URL is not an https URL"


def test_unreachable_endpoint_is_named() -> None:
    with pytest.raises(KeylessError) as caught:
        ci_identity_token(github_env("http://127.0.0.1:9/token"))  # discard port: refused
    assert caught.value.message.startswith("cannot reach GitHub's OIDC token endpoint (127.0.0.1)")
    assert REQUEST_TOKEN not in caught.value.diagnostics()


def test_sigstore_is_imported_only_when_signing_or_verifying() -> None:
    """Importing the module (and asking for a token) must not load sigstore (pydantic, tuf…)."""
    code = (
        "import sys, acr_ci.sigstore_keyless as k\n"
        "k.ci_identity_token({'SIGSTORE_ID_TOKEN': 'x'})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sigstore', 'pydantic')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
