"""Triggers against a real HTTP receiver on loopback: selection, payload, signature,
retries, redaction. Assertions read what the receiver recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from tests.support.webhook import WebhookReceiver

from acr_ci import __version__
from acr_ci.config.model import Trigger, TriggerOn
from acr_ci.errors import UsageError
from acr_ci.models import Status
from acr_ci.triggers import (
    PushedImage,
    Sender,
    check_url,
    fire,
    origin,
    payload,
    region_of,
    selected_tags,
)

DIGEST = "sha256:" + "ab" * 32
PUSHED = datetime(2024, 3, 1, 4, 5, 6, tzinfo=UTC)  # 12:05:06 in UTC+8



class Sleeps(list[float]):
    """Records backoff delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def trig(url: str, name: str = "hook", **kw: object) -> Trigger:
    match = kw.pop("match", None)
    return Trigger(
        name=name,
        url=url,
        match=re.compile(match) if isinstance(match, str) else None,
        **kw,  # type: ignore[arg-type]
    )


def image(*tags: str, repository: str = "registry.example.com/team/app") -> PushedImage:
    return PushedImage(repository=repository, digest=DIGEST, tags=tags, pushed_at=PUSHED)


# -- selection -----------------------------------------------------------------------

SELECTION = [
    ("all", {"on": TriggerOn.ALL}, ("latest", "v1.2", "abc123"), ("latest", "v1.2", "abc123")),
    ("regexp-whole", {"on": TriggerOn.REGEXP, "match": r"v\d+.*"}, ("latest", "v1.2", "xv1"), ("v1.2",)),
    ("regexp-not-prefix", {"on": TriggerOn.REGEXP, "match": r"v\d"}, ("v1", "v12"), ("v1",)),
    ("tags-list", {"on": TriggerOn.TAGS, "tags": ("latest", "stable")}, ("latest", "v1", "stable"), ("latest", "stable")),
    ("tags-none", {"on": TriggerOn.TAGS, "tags": ("stable",)}, ("latest", "v1"), ()),
    ("duplicates", {"on": TriggerOn.ALL}, ("a", "a", "b"), ("a", "b")),
]


@pytest.mark.parametrize(("case", "kw", "tags", "want"), SELECTION, ids=[c[0] for c in SELECTION])
def test_selected_tags(case: str, kw: dict[str, Any], tags: tuple[str, ...], want: tuple[str, ...]) -> None:
    assert selected_tags(trig("https://h.example/x", **kw), tags) == want


def test_one_post_per_selected_tag_per_mode(receiver: WebhookReceiver) -> None:
    triggers = [
        trig(receiver.url("/all"), "all", on=TriggerOn.ALL),
        trig(receiver.url("/re"), "re", on=TriggerOn.REGEXP, match=r"v\d+(\.\d+)*"),
        trig(receiver.url("/list"), "list", on=TriggerOn.TAGS, tags=("stable", "latest")),
        trig(receiver.url("/none"), "none", on=TriggerOn.TAGS, tags=("nope",)),
    ]
    results = fire(triggers, image("latest", "v1.2", "v1.2-rc", "3f2a1b"), sender=Sender(sleep=Sleeps()))
    assert [r.name for r in results] == ["all", "re", "list", "none"]
    sent = {p: [r.json()["push_data"]["tag"] for r in receiver.to(p)] for p in ("/all", "/re", "/list", "/none")}
    assert sent == {
        "/all": ["latest", "v1.2", "v1.2-rc", "3f2a1b"],
        "/re": ["v1.2"],
        "/list": ["latest"],
        "/none": [],
    }
    assert [r.status for r in results] == [Status.SUCCEEDED, Status.SUCCEEDED, Status.SUCCEEDED, Status.SKIPPED]
    assert results[0].http_status == 200


# -- payload and headers ---------------------------------------------------------------


def test_payload_fields_and_headers(receiver: WebhookReceiver) -> None:
    [result] = fire([trig(receiver.url("/p"))], image("v1"), tz=timezone(timedelta(hours=8)))
    assert result.status is Status.SUCCEEDED
    [req] = receiver.to("/p")
    assert req.method == "POST"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"] == f"acr-ci/{__version__}"
    assert "x-acr-ci-signature" not in req.headers
    body = req.json()
    assert body["push_data"] == {"digest": DIGEST, "pushed_at": "2024-03-01 12:05:06", "tag": "v1"}
    assert body["repository"] == {
        "date_created": "2024-03-01 12:05:06",
        "name": "app",
        "namespace": "team",
        "region": "",
        "repo_authentication_type": "NO_CERTIFIED",
        "repo_full_name": "team/app",
        "repo_origin_type": "NO_CERTIFIED",
        "repo_type": "PRIVATE",
    }
    assert body["acr_ci"]["reference"] == f"registry.example.com/team/app:v1@{DIGEST}"


PAYLOAD_NAMES = [
    ("deep", "reg.example.com/a/b/app", "a/b", "app", ""),
    ("no-namespace", "reg.example.com:5000/app", "", "app", ""),
    ("acr-public", "registry.cn-hangzhou.aliyuncs.com/ns/app", "ns", "app", "cn-hangzhou"),
    ("acr-ee", "inst-registry.ap-southeast-1.cr.aliyuncs.com/ns/app", "ns", "app", "ap-southeast-1"),
    ("acr-vpc", "registry-vpc.cn-beijing.aliyuncs.com/ns/app", "ns", "app", "cn-beijing"),
]


@pytest.mark.parametrize(("case", "repo", "ns", "name", "region"), PAYLOAD_NAMES, ids=[c[0] for c in PAYLOAD_NAMES])
def test_payload_names(case: str, repo: str, ns: str, name: str, region: str) -> None:
    body = payload(repo, tag="t", digest=DIGEST, pushed_at=PUSHED)
    assert body["repository"]["namespace"] == ns
    assert body["repository"]["name"] == name
    assert body["repository"]["region"] == region == region_of(repo.split("/")[0])


def test_pushed_at_uses_the_given_timezone() -> None:
    body = payload("r.example.com/n/a", tag="t", digest=DIGEST, pushed_at=PUSHED, tz=UTC)
    assert body["push_data"]["pushed_at"] == "2024-03-01 04:05:06"


# -- signature ----------------------------------------------------------------------------


def test_signature_verifies_against_the_received_bytes(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-for-hmac"
    monkeypatch.setenv("HOOK_SECRET", secret)
    [result] = fire([trig(receiver.url("/signed"), secret_env="HOOK_SECRET")], image("v1", "latest"))
    assert result.status is Status.SUCCEEDED
    reqs = receiver.to("/signed")
    assert len(reqs) == 2
    for req in reqs:
        want = "sha256=" + hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(req.headers["x-acr-ci-signature"], want)
        wrong = "sha256=" + hmac.new(b"other", req.body, hashlib.sha256).hexdigest()
        assert req.headers["x-acr-ci-signature"] != wrong
    assert all(d.signed for d in result.deliveries)
    assert secret not in json.dumps(result.to_json())


def test_missing_secret_sends_nothing(receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_HOOK_SECRET", raising=False)
    [result] = fire([trig(receiver.url("/unsigned"), secret_env="NOT_SET_HOOK_SECRET")], image("v1"))
    assert receiver.to("/unsigned") == []
    assert result.status is Status.FAILED
    assert "NOT_SET_HOOK_SECRET" in (result.reason or "")
    assert result.deliveries[0].attempts == 0


# -- retries -------------------------------------------------------------------------------

RETRIES = [
    ("500-always", [500], 4, Status.FAILED, 500, [1.0, 2.0, 4.0]),
    ("503-then-ok", [503, 502, 200], 3, Status.SUCCEEDED, 200, [1.0, 2.0]),
    ("400-final", [400], 1, Status.FAILED, 400, []),
    ("404-final", [404], 1, Status.FAILED, 404, []),
    ("429-final", [429], 1, Status.FAILED, 429, []),
    ("302-not-followed", [302], 1, Status.FAILED, 302, []),
    ("201-ok", [201], 1, Status.SUCCEEDED, 201, []),
]


@pytest.mark.parametrize(
    ("case", "script", "count", "status", "http", "delays"), RETRIES, ids=[c[0] for c in RETRIES]
)
def test_retries_count_at_the_receiver(
    receiver: WebhookReceiver,
    case: str,
    script: list[int],
    count: int,
    status: Status,
    http: int,
    delays: list[float],
) -> None:
    path = f"/{case}"
    receiver.script(path, script)
    sleeps = Sleeps()
    [result] = fire([trig(receiver.url(path))], image("v1"), sender=Sender(sleep=sleeps))
    assert len(receiver.to(path)) == count
    assert result.status is status
    assert result.http_status == http
    assert result.deliveries[0].attempts == count
    assert sleeps == delays


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_is_retried_then_fails() -> None:
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{_dead_port()}/hook"
    [result] = fire([trig(url)], image("v1"), sender=Sender(sleep=sleeps))
    assert result.status is Status.FAILED
    assert result.deliveries[0].attempts == 4
    assert sleeps == [1.0, 2.0, 4.0]
    assert result.http_status is None
    assert "connection refused" in (result.reason or "")


def test_timeout_is_retried() -> None:
    slow = WebhookReceiver(delay=1.0).start()
    try:
        [result] = fire(
            [trig(slow.url("/slow"), timeout=0.2)], image("v1"), sender=Sender(sleep=Sleeps(), max_retries=1)
        )
        assert result.status is Status.FAILED
        assert "no answer within 0.2s" in (result.reason or "")
        assert len(slow.to("/slow")) == 2
    finally:
        slow.stop()


def test_one_failing_trigger_does_not_stop_the_others(receiver: WebhookReceiver) -> None:
    receiver.script("/bad", [400])
    results = fire(
        [trig(receiver.url("/bad"), "bad"), trig(receiver.url("/good"), "good")],
        image("v1"),
        sender=Sender(sleep=Sleeps()),
    )
    assert [r.status for r in results] == [Status.FAILED, Status.SUCCEEDED]
    assert len(receiver.to("/good")) == 1


# -- URL policy and redaction --------------------------------------------------------------

URLS = [
    ("https", "https://hooks.example.com/x", False, None),
    ("http-loopback", "http://127.0.0.1:9/x", False, None),
    ("http-localhost", "http://localhost:9/x", False, None),
    ("http-remote", "http://hooks.example.com/x?token=SECRET", False, "plain http"),
    ("http-remote-allowed", "http://hooks.example.com/x", True, None),
    ("ftp", "ftp://hooks.example.com/x", False, "not an http(s) URL"),
    ("garbage", "not a url", False, "not an http(s) URL"),
]


@pytest.mark.parametrize(("case", "url", "allow", "problem"), URLS, ids=[c[0] for c in URLS])
def test_check_url(case: str, url: str, allow: bool, problem: str | None) -> None:
    t = trig(url, allow_http=allow)
    if problem is None:
        check_url(t)
        return
    with pytest.raises(UsageError) as info:
        check_url(t)
    assert problem in info.value.message
    assert "SECRET" not in info.value.diagnostics()
    assert "/x" not in info.value.message


def test_refused_http_url_sends_nothing_and_is_a_failed_result() -> None:
    [result] = fire([trig("http://hooks.example.com/x?token=SECRET")], image("v1"))
    assert result.status is Status.FAILED
    assert result.target == "http://hooks.example.com"
    assert "SECRET" not in json.dumps(result.to_json())


ORIGINS = [
    ("https://u:p@h.example.com:8443/a/b?token=x#f", "https://h.example.com:8443"),
    ("http://127.0.0.1:5000/hook?token=SECRET", "http://127.0.0.1:5000"),
    ("https://[::1]/x", "https://[::1]"),
]


@pytest.mark.parametrize(("url", "want"), ORIGINS)
def test_origin(url: str, want: str) -> None:
    assert origin(url) == want


def test_tokened_url_never_in_logs_or_results(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.script("/tok/PATHSECRET", [500])
    dead = f"http://127.0.0.1:{_dead_port()}/tok/PATHSECRET?token=SECRET"
    results = fire(
        [
            trig(receiver.url("/tok/PATHSECRET") + "?token=SECRET", "five-hundred"),
            trig(dead, "refused"),
            trig(receiver.url("/ok/PATHSECRET") + "?token=SECRET", "ok"),
        ],
        image("v1"),
        sender=Sender(sleep=Sleeps()),
    )
    # the token did reach the receiver (the URL works) …
    assert receiver.to("/ok/PATHSECRET")[0].query == {"token": ["SECRET"]}
    # … but never the logs or the results
    text = caplog.text + json.dumps([r.to_json() for r in results]) + repr(results)
    assert "SECRET" not in text
    assert f"{receiver.origin}" in caplog.text
    assert [r.status for r in results] == [Status.FAILED, Status.FAILED, Status.SUCCEEDED]


# -- the deadline: the trigger's timeout bounds the whole request ------------------------------


class _Drip:
    """A loopback receiver that answers 200 and then drips: its body one byte per 0.5 s
    (``body``), or its headers (``headers``). Every loop is bounded; a closed connection
    ends it."""

    def __init__(self, where: str, steps: int = 60) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        drip = self
        self.requests = 0
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with drip.lock:
                    drip.requests += 1
                try:
                    if where == "body":
                        self.send_response(200)
                        self.send_header("Content-Length", str(steps))
                        self.end_headers()
                        self.wfile.flush()
                        chunks = [b"x"] * steps
                    else:
                        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                        self.wfile.flush()
                        chunks = [b"y"] * steps
                    for chunk in chunks:
                        time.sleep(0.5)
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except OSError:
                    return  # the client cut the connection: what the test wants
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_dripping_receiver_is_cut_off_at_the_deadline(where: str) -> None:
    drip = _Drip(where)
    try:
        sleeps = Sleeps()
        started = time.monotonic()
        [result] = fire(
            [trig(drip.url(), timeout=1.0)], image("v1"), sender=Sender(sleep=sleeps, max_retries=1)
        )
        took = time.monotonic() - started
    finally:
        drip.stop()
    assert result.status is Status.FAILED
    [delivery] = result.deliveries
    assert delivery.attempts == 2 and drip.requests == 2
    assert "deadline" in (delivery.reason or "") and "within 1s" in (delivery.reason or "")
    assert "(after 2 attempts)" in (delivery.reason or "")
    assert delivery.http_status is None
    assert sleeps == [1.0]
    assert took < 15, "a hang guard only: each attempt is cut at 1 s, not after 30 s of drip"


def test_an_answer_within_the_deadline_is_read_and_succeeds(receiver: WebhookReceiver) -> None:
    [result] = fire([trig(receiver.url("/quick"), timeout=2.0)], image("v1"), sender=Sender(sleep=Sleeps()))
    assert result.status is Status.SUCCEEDED
    assert result.deliveries[0].attempts == 1
