"""Optional commit statuses through PyGithub and python-gitlab, against a loopback stand-in.

The GitHub and GitLab APIs cannot be reached from here, so a small HTTP server on
127.0.0.1 plays them: it answers what the clients ask and records every request; the
tests check the exact requests (method, path, auth header, JSON body). The clients are the
real libraries (skipped, or failed under CI, when not installed).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.frontends.records import image, run_record, step
from tests.support._proc import skip_or_fail

from acr_ci.errors import UsageError
from acr_ci.frontends.statuses import (
    CommitStatus,
    StatusError,
    post_github,
    post_gitlab,
    statuses_from_record,
)
from acr_ci.models import Status
from acr_ci.record import TriggerDetail

SHA = "3f1e9c2b7d4a5e6f8091a2b3c4d5e6f708192a3b"
TOKEN = "ghp_test_token_0123456789"

RECORD = run_record(
    image("main", "r/app", ("latest",), "sha256:" + "a" * 64,
          step("build", Status.SUCCEEDED),
          step("push", Status.SUCCEEDED),
          step("scan", Status.BLOCKED, reason="blocked: 1 vulnerability at or above high"),
          step("sync", Status.SKIPPED, name="mirror", reason="blocked"),
          step("trigger", Status.SKIPPED, name="deploy", reason="blocked",
               detail=TriggerDetail("https://hooks.example"))),
)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeApi:
    """Records requests; answers GET with ``{"sha", "url"}`` and POST with 201 + the body."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, doc: object) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                api.seen.append(Seen("GET", self.path, dict(self.headers), None))
                self._answer(200, {"sha": SHA, "url": f"{api.url}{self.path}"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                api.seen.append(Seen("POST", self.path, dict(self.headers), body))
                self._answer(201, {"id": len(api.seen), **(body or {})})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with FakeApi() as server:
        yield server


@pytest.fixture
def record(tmp_path: Path) -> str:
    path = tmp_path / "acr-ci-record.json"
    path.write_text(json.dumps(RECORD.to_json()))
    return str(path)


def test_statuses_from_record_skip_what_did_not_run() -> None:
    assert statuses_from_record(RECORD) == [
        CommitStatus("acr-ci/main/build", "success", "succeeded"),
        CommitStatus("acr-ci/main/push", "success", "succeeded"),
        CommitStatus("acr-ci/main/scan", "failure", "blocked: 1 vulnerability at or above high"),
    ]
    long = run_record(image("r", "r/app", ("v1",), None, step("build", Status.FAILED, reason="x" * 300)))
    (s,) = statuses_from_record(long)
    assert len(s.description) == 140 and s.description.endswith("…")


def test_github_statuses_exact_requests(api: FakeApi, record: str) -> None:
    try:
        import github  # noqa: F401
    except ImportError:
        skip_or_fail("PyGithub is not installed: pip install PyGithub")
    env = {"GITHUB_API_URL": api.url, "GITHUB_REPOSITORY": "acme/hello-app", "GITHUB_SHA": SHA,
           "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "8912345678"}
    assert post_github(TOKEN, env, record_path=record) == 3
    posts = [s for s in api.seen if s.method == "POST"]
    assert [s.path for s in posts] == [f"/repos/acme/hello-app/statuses/{SHA}"] * 3
    target = "https://github.com/acme/hello-app/actions/runs/8912345678"
    assert [s.body for s in posts] == [
        {"state": "success", "target_url": target, "description": "succeeded", "context": "acr-ci/main/build"},
        {"state": "success", "target_url": target, "description": "succeeded", "context": "acr-ci/main/push"},
        {"state": "failure", "target_url": target,
         "description": "blocked: 1 vulnerability at or above high", "context": "acr-ci/main/scan"},
    ]
    assert all(s.headers.get("Authorization") == f"token {TOKEN}" for s in api.seen)
    assert {s.method for s in api.seen} <= {"GET", "POST"}


def test_gitlab_statuses_exact_requests(api: FakeApi, record: str) -> None:
    try:
        import gitlab  # noqa: F401
    except ImportError:
        skip_or_fail("python-gitlab is not installed: pip install python-gitlab")
    env = {"CI_SERVER_URL": api.url, "CI_PROJECT_ID": "1217", "CI_COMMIT_SHA": SHA,
           "CI_JOB_URL": "https://gitlab.example.com/acme/app/-/jobs/594603"}
    assert post_gitlab(TOKEN, env, record_path=record) == 3
    assert [(s.method, s.path) for s in api.seen] == [("POST", f"/api/v4/projects/1217/statuses/{SHA}")] * 3
    target = "https://gitlab.example.com/acme/app/-/jobs/594603"
    assert [s.body for s in api.seen] == [
        {"state": "success", "name": "acr-ci/main/build", "description": "succeeded", "target_url": target},
        {"state": "success", "name": "acr-ci/main/push", "description": "succeeded", "target_url": target},
        {"state": "failed", "name": "acr-ci/main/scan",
         "description": "blocked: 1 vulnerability at or above high", "target_url": target},
    ]
    assert all(s.headers.get("PRIVATE-TOKEN") == TOKEN for s in api.seen)


def test_statuses_need_a_record_and_the_ci_variables(tmp_path: Path) -> None:
    with pytest.raises(StatusError, match="no run record"):
        post_github(TOKEN, {"GITHUB_API_URL": "x", "GITHUB_REPOSITORY": "a/b", "GITHUB_SHA": SHA},
                    record_path=str(tmp_path / "missing.json"))
    with pytest.raises(UsageError, match=r"\$CI_PROJECT_ID"):
        post_gitlab(TOKEN, {"CI_SERVER_URL": "x", "CI_COMMIT_SHA": SHA}, record_path="r.json")


def test_unreachable_api_names_no_token(record: str) -> None:
    try:
        import github  # noqa: F401
        import gitlab  # noqa: F401
    except ImportError:
        skip_or_fail("PyGithub and python-gitlab are needed: pip install PyGithub python-gitlab")
    env = {"GITHUB_API_URL": "http://127.0.0.1:1", "GITHUB_REPOSITORY": "acme/app", "GITHUB_SHA": SHA}
    with pytest.raises(StatusError, match="cannot reach the GitHub API") as info:
        post_github(TOKEN, env, record_path=record)
    assert TOKEN not in str(info.value)
    env = {"CI_SERVER_URL": "http://127.0.0.1:1", "CI_PROJECT_ID": "1", "CI_COMMIT_SHA": SHA}
    with pytest.raises(StatusError, match="cannot reach the GitLab API") as info:
        post_gitlab(TOKEN, env, record_path=record)
    assert TOKEN not in str(info.value)
