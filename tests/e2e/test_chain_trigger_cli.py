"""`acr-ci trigger` as a user runs it: a subprocess, a config, a real registry and receiver."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.e2e.sync_support import dead_host
from tests.support import RegistryServer
from tests.support.layout import Layout
from tests.support.webhook import WebhookReceiver

from acr_ci.registry.client import Client
from acr_ci.registry.reference import Reference

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "12" * 32



def acr(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB", "ACR_CI_"))}
    base.pop("CI", None)
    return subprocess.run(
        [sys.executable, "-m", "acr_ci", *args],
        capture_output=True, text=True, env={**base, **(env or {})}, cwd=ROOT, timeout=120,
    )


def config(tmp_path: Path, image: str, triggers: str) -> str:
    path = tmp_path / "c.yml"
    path.write_text(f"version: 1\nimage: {image}\ntimezone: \"+00:00\"\ntriggers:\n{triggers}")
    return str(path)


def test_trigger_resolves_the_digest_and_signs(
    registry: RegistryServer, oci_layout_factory: Callable[..., Layout], receiver: WebhookReceiver, tmp_path: Path
) -> None:
    layout = oci_layout_factory(seed=201)
    with Client() as c:
        c.push_layout(layout.path, Reference.parse(registry.ref("team/trig")), ["v3"])
    cfg = config(tmp_path, registry.ref("team/trig"), f"""  - name: deploy
    url: {receiver.url("/deploy/PATHSECRET")}?token=SECRET
    on: tags
    tags: [v3]
    secret_env: TRIG_SECRET
  - name: only-latest
    url: {receiver.url("/latest")}
    on: tags
    tags: [latest]
""")
    p = acr("trigger", registry.ref("team/trig:v3"), "--config", cfg, env={"TRIG_SECRET": "k3y"})
    assert p.returncode == 0, p.stderr
    [req] = receiver.to("/deploy/PATHSECRET")
    body = req.json()
    assert body["push_data"]["digest"] == layout.index_digest
    assert body["push_data"]["tag"] == "v3"
    assert body["repository"]["name"] == "trig" and body["repository"]["namespace"] == "team"
    assert req.headers["x-acr-ci-signature"] == "sha256=" + hmac.new(b"k3y", req.body, hashlib.sha256).hexdigest()
    assert receiver.to("/latest") == []
    assert p.stdout.splitlines() == [
        f"trigger deploy -> {receiver.origin}: succeeded: v3 HTTP 200",
        f"trigger only-latest -> {receiver.origin}: skipped (no pushed tag selected (on: tags))",
    ]
    assert "SECRET" not in p.stdout + p.stderr and "k3y" not in p.stdout + p.stderr


def test_trigger_with_digest_skips_the_lookup(receiver: WebhookReceiver, tmp_path: Path) -> None:
    image = f"{dead_host()}/team/app"  # any registry request would fail
    cfg = config(tmp_path, image, f"  - name: all\n    url: {receiver.url('/all')}\n")
    p = acr("trigger", f"{image}:v1@{DIGEST}", "--config", cfg)
    assert p.returncode == 0, p.stderr
    [req] = receiver.to("/all")
    assert req.json()["push_data"]["digest"] == DIGEST


def test_trigger_failure_exits_1_and_shows_only_the_origin(receiver: WebhookReceiver, tmp_path: Path) -> None:
    receiver.script("/bad", [400])
    cfg = config(tmp_path, "r.example.com/team/app", f"  - name: bad\n    url: {receiver.url('/bad')}?token=SECRET\n")
    p = acr("trigger", f"r.example.com/team/app:v1@{DIGEST}", "--config", cfg)
    assert p.returncode == 1
    assert len(receiver.to("/bad")) == 1  # 4xx: no retry
    assert p.stdout.strip() == (
        f"trigger bad -> {receiver.origin}: failed: v1 HTTP 400 (1 of 1 deliveries failed: "
        "HTTP 400 from the receiver (not retried))"
    )
    assert "SECRET" not in p.stdout + p.stderr


BAD = [
    ("no-tag", "r.example.com/team/app", 2, "names no tag"),
    ("digest-only", f"r.example.com/team/app@{DIGEST}", 2, "names no tag"),
    ("bad-ref", "NOT A REF", 2, "not a valid image reference"),
]


@pytest.mark.parametrize(("case", "image", "code", "message"), BAD, ids=[b[0] for b in BAD])
def test_trigger_bad_input(receiver: WebhookReceiver, tmp_path: Path, case: str, image: str, code: int, message: str) -> None:
    cfg = config(tmp_path, "r.example.com/team/app", f"  - name: all\n    url: {receiver.url('/x')}\n")
    p = acr("trigger", image, "--config", cfg)
    assert p.returncode == code
    assert message in p.stderr
    assert "Traceback" not in p.stderr
    assert receiver.requests == []


def test_trigger_missing_tag_in_registry(registry: RegistryServer, receiver: WebhookReceiver, tmp_path: Path) -> None:
    cfg = config(tmp_path, registry.ref("team/none"), f"  - name: all\n    url: {receiver.url('/x')}\n")
    p = acr("trigger", registry.ref("team/none:v1"), "--config", cfg)
    assert p.returncode == 1
    assert "does not exist" in p.stderr
    assert receiver.requests == []
