"""Text from hostile remotes never reaches the console raw.

A registry stand-in, a webhook receiver and a scanner stand-in (all loopback, all bounded)
answer with newlines, ``::error::`` workflow commands, ANSI escapes, carriage returns and
1 MiB bodies; the CLI runs in-process and every line it prints must be free of control
characters, must not start with ``::`` (GitHub runs such lines as workflow commands) and
must be bounded in length."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from acr_ci.cli import main
from acr_ci.models import Status
from acr_ci.platforms.outputs import Annotation, Level
from acr_ci.platforms.sinks.github import annotation_command
from acr_ci.record.summary import _cell
from acr_ci.text import LINE_LIMIT, REMOTE_LIMIT, clean_remote, safe_output


class _QuietServer(ThreadingHTTPServer):
    """A stand-in whose own tracebacks (a client that stops reading a 1 MiB body: acr-ci
    caps what it reads) stay out of the stderr the tests read."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass

HOSTILE = "bad\n::error::pwned\r\n  ::add-mask::x\x1b[31mred\x1b[0m\x1b]0;title\x07\x1b[2K\x1b[1A\rover\x00\x9b1m\u202eevil"
BIG = "A" * (1 << 20)
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
MAX_LINE = LINE_LIMIT + 200


def assert_clean(text: str) -> None:
    assert "\r" not in text and "\x1b" not in text
    for line in text.split("\n"):
        assert not line.lstrip().startswith("::"), line
        assert not CONTROL.search(line), repr(line)
        assert len(line) <= MAX_LINE, len(line)


# -- the cleaner --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("plain words", "plain words"),
        ("::error::pwned", ": :error::pwned"),
        ("  ::warning::x", ": :warning::x"),
        ("a\n::error::b", "a ::error::b"),
        ("\x1b[31mred\x1b[0m", "red"),
        ("osc\x1b]8;;http://x\x07link\x1b]8;;\x07", "osclink"),
        ("a\rb\tc", "a b c"),
        ("nul\x00del\x7fc1\x85x", "nuldelc1 x"),
        ("rtl\u202eevil", "rtlevil"),
    ],
)
def test_clean_remote(text: str, want: str) -> None:
    assert clean_remote(text) == want
    assert clean_remote(want) == want  # idempotent: a record read back and written again


def test_clean_remote_is_one_bounded_line() -> None:
    out = clean_remote(HOSTILE + BIG)
    assert len(out) == REMOTE_LIMIT and out.endswith("…")
    assert_clean(out)
    assert "\n" not in out
    assert clean_remote(BIG, 50) == "A" * 49 + "…"


def test_safe_output_keeps_lines_and_neutralises_each() -> None:
    out = safe_output("first\n::error::pwned\n    ::group::x\r\x1b[1Aup\n" + BIG)
    assert out.split("\n")[:4] == ["first", ": :error::pwned", "    : :group::x", "up"]
    assert_clean(out)


def test_summary_cells_and_annotations_are_cleaned() -> None:
    assert_clean(_cell(HOSTILE))
    assert "|" not in _cell("a|b").replace("\\|", "")
    command = annotation_command(Annotation(Level.ERROR, HOSTILE, title="t\x1b[1m"))
    assert command.startswith("::error title=t::")  # acr-ci's own command, and only one line
    assert "\n" not in command and "\r" not in command and "\x1b" not in command


# -- a hostile registry ----------------------------------------------------------------------

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "0" * 64,
            "size": 2,
        },
        "layers": [],
    }
).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def hostile_errors(message: str, code: str = "MANIFEST_UNKNOWN") -> bytes:
    return json.dumps(
        {"errors": [{"code": code, "message": message, "detail": message}] * 5}
    ).encode()


BODIES = {
    "/v2/json/": hostile_errors(HOSTILE),
    "/v2/code/": hostile_errors("x", code=HOSTILE),
    "/v2/big/": hostile_errors(HOSTILE + BIG),
    "/v2/raw/": (HOSTILE + "\n" + BIG).encode(),
}


class _Registry(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        if self.path.startswith("/v2/good/manifests/"):
            self.send_header("Docker-Content-Digest", MANIFEST_DIGEST)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/v2/":
            self._answer(200, b"{}")
        elif self.path.startswith("/v2/good/manifests/"):
            self._answer(200, MANIFEST, "application/vnd.oci.image.manifest.v1+json")
        else:
            body = next(
                (b for p, b in BODIES.items() if self.path.startswith(p)), BODIES["/v2/json/"]
            )
            self._answer(
                404, body, "text/plain" if self.path.startswith("/v2/raw/") else "application/json"
            )

    do_HEAD = do_GET


@pytest.fixture
def hostile_registry() -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), _Registry)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    for name in (
        "ACR_CI_REGISTRY_USERNAME",
        "ACR_CI_REGISTRY_PASSWORD",
        "GITHUB_ACTIONS",
        "GITLAB_CI",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("repo", ["json", "code", "big", "raw"])
def test_registry_error_text_is_cleaned(
    hostile_registry: str, repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["inspect", f"{hostile_registry}/{repo}:v1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("acr-ci: error: ")
    assert_clean(out + err)
    assert len(err) < 2500
    if repo == "json":
        assert "pwned" in err  # the registry's words are kept, only made harmless


# -- a hostile scanner -----------------------------------------------------------------------


def test_scanner_stderr_is_cleaned(
    hostile_registry: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    noise = tmp_path / "noise.txt"
    noise.write_text(HOSTILE + "\n" + BIG + "\n" + HOSTILE + "\n")
    trivy = bindir / "trivy"
    trivy.write_text(f"#!/bin/sh\ncat {noise} >&2\nprintf '::error::last\\033[1A\\r' >&2\nexit 1\n")
    trivy.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    code = main(
        [
            "scan",
            f"{hostile_registry}/good@{MANIFEST_DIGEST}",
            "--engine",
            "trivy",
            "--severity",
            "high",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "trivy exited with 1" in err
    assert_clean(out + err)
    assert len(err) < 2500


# -- a hostile webhook receiver --------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = (HOSTILE + BIG).encode()
        self.send_response(400, HOSTILE.replace("\n", " ").replace("\r", " ").replace("\u202e", ""))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Evil", "\x1b[31m::error::header")
        self.end_headers()
        self.wfile.write(body)


def test_webhook_answer_is_never_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = _QuietServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = tmp_path / ".acr-ci.yml"
        config.write_text(
            "version: 1\nimage: registry.example.com/team/app\n"
            f"triggers:\n  - name: hook\n    url: http://127.0.0.1:{server.server_address[1]}/h\n    on: all\n"
        )
        code = main(
            [
                "trigger",
                f"registry.example.com/team/app:v1@{MANIFEST_DIGEST}",
                "--config",
                str(config),
            ]
        )
    finally:
        server.shutdown()
        server.server_close()
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "HTTP 400" in out + err
    assert "pwned" not in out + err
    assert_clean(out + err)


def test_record_reasons_are_one_clean_line() -> None:
    from datetime import UTC, datetime

    from acr_ci.record import StepRecord

    now = datetime.now(UTC)
    step = StepRecord("build", Status.FAILED, now, now, reason=HOSTILE + BIG)
    reason = step.to_json()["reason"]
    assert "\n" not in reason and len(reason) <= LINE_LIMIT
    assert_clean(reason)


def test_the_top_level_handler_is_the_last_guard(capsys: pytest.CaptureFixture[str]) -> None:
    from acr_ci.cli import invoke
    from acr_ci.errors import RegistryError

    def fail() -> int:
        raise RegistryError(
            f"manifest x: invalid digest {HOSTILE + BIG!r}\n::error::second line", HOSTILE
        )

    assert invoke(fail) == 1
    err = capsys.readouterr().err
    assert err.startswith("acr-ci: error: manifest x: invalid digest ")
    assert_clean(err)
    assert len(err) < 3 * MAX_LINE
