"""The chain (build → push → scan → sync → triggers) over real registries and a real webhook
receiver. The builder is a stand-in that hands over pre-made OCI layouts (real builds are
in test_chain_run_cli.py); the scanner is a stand-in returning a Trivy report per platform
manifest (Trivy's database cannot be downloaded here). Everything else is real: config
loading, push, scan policy and gate, sync, triggers, the record and its schema."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from tests.e2e.sync_support import dead_host, digest_at, tags_at
from tests.support import RegistryServer
from tests.support.layout import Layout
from tests.support.webhook import WebhookReceiver

from acr_ci import config as config_mod
from acr_ci import record as record_mod
from acr_ci.build import BuildJob, BuildResult
from acr_ci.chain import ChainParts, run_chain
from acr_ci.cli.common import config_client
from acr_ci.errors import BuildError
from acr_ci.models import RefContext, RefType
from acr_ci.record import RunRecord, Status
from acr_ci.scan.engine import ScanTarget
from acr_ci.scan.reports import Report, read_report
from acr_ci.triggers import Sender

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

SHA = "0123456789abcdef0123456789abcdef01234567"
REF = RefContext(type=RefType.BRANCH, name="main", sha=SHA, time=datetime(2026, 11, 23, 4, 0, tzinfo=UTC))
SECRET = "hook-secret-value"


# -- stand-ins for what cannot run in these tests --------------------------------------------


@dataclass
class PrebuiltBuilder:
    """A builder that copies a pre-made OCI layout per rule into the job's layout directory."""

    layouts: dict[str, Layout]
    fail: set[str] = field(default_factory=set)
    jobs: list[BuildJob] = field(default_factory=list)
    name: str = "prebuilt"

    def build(self, job: BuildJob) -> BuildResult:
        self.jobs.append(job)
        if job.plan.rule in self.fail:
            raise BuildError(f"rule {job.plan.rule!r}: the build failed (stand-in)")
        layout = self.layouts[job.plan.rule]
        shutil.copytree(layout.path, job.layout)
        return BuildResult(
            rule=job.plan.rule, builder=self.name, layout=job.layout,
            index_digest=layout.index_digest, platforms=dict(layout.manifests),
        )


def trivy_report(path: Path, vulns: list[tuple[str, str]]) -> Path:
    """A Trivy JSON report (schema 2) with ``(id, severity)`` findings."""
    doc = {
        "SchemaVersion": 2,
        "ArtifactName": "test",
        "ArtifactType": "container_image",
        "Results": [{
            "Target": "test (debian 12)", "Class": "os-pkgs", "Type": "debian",
            "Vulnerabilities": [
                {"VulnerabilityID": v, "PkgName": "pkg", "InstalledVersion": "1.0",
                 "FixedVersion": "1.1", "Severity": s}
                for v, s in vulns
            ],
        }],
    }
    path.write_text(json.dumps(doc))
    return path


@dataclass
class ReportEngine:
    """A scanner stand-in: a real Trivy-format report per manifest digest (clean by default)."""

    clean: Path
    by_digest: dict[str, Path] = field(default_factory=dict)
    scanned: list[str] = field(default_factory=list)
    name: str = "trivy"

    def scan(self, target: ScanTarget) -> Report:
        self.scanned.append(target.reference)
        digest = target.reference.rsplit("@", 1)[1]
        return read_report(str(self.by_digest.get(digest, self.clean)), None, target.platform)


# -- fixtures -------------------------------------------------------------------------------



@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    return root


def write_config(project: Path, text: str) -> config_mod.Config:
    path = project / ".acr-ci.yml"
    path.write_text(text)
    return config_mod.load(str(path))


def rules(*names_and_tags: tuple[str, str]) -> str:
    out = "build:\n  rules:\n"
    for name, tags in names_and_tags:
        out += (f"    - name: {name}\n      type: branch\n      match: main\n      context: app\n"
                f"      tags: {tags}\n      platforms: [linux/amd64, linux/arm64]\n")
    return out


def run(cfg: config_mod.Config, builder: PrebuiltBuilder, engine: ReportEngine | None = None,
        log: io.StringIO | None = None) -> RunRecord:
    with config_client(cfg) as client:
        parts = ChainParts(
            client=client, builder=builder, scan_engine=engine,
            sender=Sender(sleep=lambda s: None), log=log or io.StringIO(),
        )
        return run_chain(cfg, REF, parts)


def steps(record: RunRecord, rule: str) -> dict[str, list[Status]]:
    [image] = [i for i in record.images if i.rule == rule]
    out: dict[str, list[Status]] = {}
    for s in image.steps:
        out.setdefault(s.step, []).append(s.status)
    return out


def validate_file(path: Path) -> dict[str, object]:
    """Validate a written record against the schema file shipped in the package."""
    schema = json.loads(resources.files("acr_ci").joinpath("record.schema.json").read_text())
    doc: dict[str, object] = json.loads(path.read_text())
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(doc)
    return doc


def assert_round_trip(path: Path) -> None:
    """A written record reads back (validated) into a typed record that writes the same JSON."""
    doc = json.loads(path.read_text())
    assert RunRecord.from_json(doc).to_json() == doc
    assert record_mod.read(path).to_json() == doc


# -- the tests ------------------------------------------------------------------------------


def test_the_whole_chain_two_rules(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    docker_config: Callable[..., Path],
    oci_layout_factory: Callable[..., Layout],
    receiver: WebhookReceiver,
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = registry_factory("plain")
    basic = registry_factory("basic")
    docker_config(basic)
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    a, b = oci_layout_factory(seed=101), oci_layout_factory(seed=102)
    cfg = write_config(project, f"""version: 1
image: {registry.host}/team/chain
{rules(("app", '[latest, "${commit}"]'), ("release", "[v1.2.3, stable]"))}
scan:
  engine: trivy
  block: {{severity: high}}
sync:
  - name: everything
    to: {plain.host}/mirror
  - name: releases-only
    to: {basic.host}/vault/chain
    level: repository
    tags: "v\\\\d+(\\\\.\\\\d+)*"
triggers:
  - name: all
    url: {receiver.url("/all")}?token=SECRET
  - name: versions
    url: {receiver.url("/versions")}
    on: regexp
    match: "v\\\\d+.*"
    secret_env: HOOK_SECRET
  - name: stable
    url: {receiver.url("/stable")}
    on: tags
    tags: [stable, prod]
""")
    builder = PrebuiltBuilder({"app": a, "release": b})
    engine = ReportEngine(trivy_report(tmp_path / "clean.json", []))
    record = run(cfg, builder, engine)

    # the registry and the mirrors hold the images, by digest
    short = SHA[:6]
    assert digest_at(registry, "team/chain", "latest") == a.index_digest
    assert digest_at(registry, "team/chain", short) == a.index_digest
    assert digest_at(registry, "team/chain", "v1.2.3") == b.index_digest
    assert digest_at(plain, "mirror/chain", "latest") == a.index_digest
    assert digest_at(plain, "mirror/chain", "stable") == b.index_digest
    assert tags_at(basic, "vault/chain") == ["v1.2.3"]
    assert digest_at(basic, "vault/chain", "v1.2.3") == b.index_digest
    # the scanner saw every platform manifest of both images, by digest
    assert sorted(engine.scanned) == sorted(
        f"{registry.host}/team/chain@{d}" for d in [*a.manifests.values(), *b.manifests.values()]
    )

    # the receiver got one POST per selected tag, signed where configured
    assert [r.json()["push_data"]["tag"] for r in receiver.to("/all")] == ["latest", short, "v1.2.3", "stable"]
    [versions] = receiver.to("/versions")
    assert versions.json()["push_data"] == {
        "digest": b.index_digest, "pushed_at": versions.json()["push_data"]["pushed_at"], "tag": "v1.2.3",
    }
    expected = "sha256=" + hmac.new(SECRET.encode(), versions.body, hashlib.sha256).hexdigest()
    assert versions.headers["x-acr-ci-signature"] == expected
    assert [r.json()["push_data"]["tag"] for r in receiver.to("/stable")] == ["stable"]
    assert all(r.json()["repository"]["repo_full_name"] == "team/chain" for r in receiver.requests)

    # the record
    assert record.exit_code == 0
    assert steps(record, "app") == {
        "build": [Status.SUCCEEDED], "push": [Status.SUCCEEDED], "scan": [Status.SUCCEEDED],
        "sync": [Status.SUCCEEDED, Status.SKIPPED],
        "trigger": [Status.SUCCEEDED, Status.SKIPPED, Status.SKIPPED],
    }
    path = record_mod.write(record, tmp_path / "record.json")
    doc = validate_file(path)
    assert_round_trip(path)
    text = path.read_text()
    assert "SECRET" not in text and SECRET not in text and basic.password not in text
    assert doc["exit_code"] == 0
    assert doc["plan"][0]["images"] == [f"{registry.host}/team/chain:latest", f"{registry.host}/team/chain:{short}"]  # type: ignore[index]
    md = record_mod.summary_markdown(record)
    assert "| app |" in md and "| release |" in md


def test_blocked_image_is_never_synced_or_triggered(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    receiver: WebhookReceiver,
    project: Path,
    tmp_path: Path,
) -> None:
    mirror = registry_factory("plain")
    bad, good = oci_layout_factory(seed=111), oci_layout_factory(seed=112)
    cfg = write_config(project, f"""version: 1
image: {registry.host}/team/gate
{rules(("bad", "[bad-1]"), ("good", "[good-1]"))}
scan:
  engine: trivy
  block: {{severity: high}}
  on_block:
    backup: {registry.host}/quarantine/gate
    delete: true
sync:
  - name: m
    to: {mirror.host}/m
triggers:
  - name: all
    url: {receiver.url("/hook")}
""")
    engine = ReportEngine(
        trivy_report(tmp_path / "clean.json", [("CVE-2020-0001", "LOW")]),
        {bad.manifests["linux/arm64"]: trivy_report(tmp_path / "bad.json", [("CVE-2024-3094", "CRITICAL")])},
    )
    record = run(cfg, PrebuiltBuilder({"bad": bad, "good": good}), engine)

    assert record.exit_code == 3
    assert steps(record, "bad") == {
        "build": [Status.SUCCEEDED], "push": [Status.SUCCEEDED], "scan": [Status.BLOCKED],
        "sync": [Status.SKIPPED], "trigger": [Status.SKIPPED],
    }
    assert steps(record, "good")["sync"] == [Status.SUCCEEDED]
    # the blocked image: backed up, deleted from the source, absent from the mirror, never announced
    assert digest_at(registry, "quarantine/gate", "bad-1") == bad.index_digest
    assert digest_at(registry, "team/gate", bad.index_digest) is None
    assert digest_at(mirror, "m/gate", "bad-1") is None
    assert [r.json()["push_data"]["tag"] for r in receiver.requests] == ["good-1"]
    assert digest_at(mirror, "m/gate", "good-1") == good.index_digest
    validate_file(record_mod.write(record, tmp_path / "r.json"))
    assert_round_trip(tmp_path / "r.json")


def test_failed_steps_stop_their_own_image_only(
    registry: RegistryServer,
    oci_layout_factory: Callable[..., Layout],
    receiver: WebhookReceiver,
    project: Path,
    tmp_path: Path,
) -> None:
    old, new, other, broken = (oci_layout_factory(seed=s) for s in (121, 122, 123, 124))
    # `v9` already points at another image, and tags are immutable: the push must fail
    with config_client(write_config(project, f"version: 1\nimage: {registry.host}/team/imm\n")) as c:
        from acr_ci.registry.reference import Reference

        c.push_layout(old.path, Reference.parse(registry.ref("team/imm")), ["v9"])
    cfg = write_config(project, f"""version: 1
image: {registry.host}/team/imm
immutable_tags: true
{rules(("pinned", "[v9]"), ("fine", "[v10]"), ("broken", "[v11]"))}
triggers:
  - name: all
    url: {receiver.url("/hook")}
""")
    record = run(cfg, PrebuiltBuilder({"pinned": new, "fine": other, "broken": broken}, fail={"broken"}))
    assert record.exit_code == 1
    assert steps(record, "pinned") == {
        "build": [Status.SUCCEEDED], "push": [Status.FAILED], "scan": [Status.SKIPPED],
        "trigger": [Status.SKIPPED],
    }
    assert steps(record, "broken") == {
        "build": [Status.FAILED], "push": [Status.SKIPPED], "scan": [Status.SKIPPED],
        "trigger": [Status.SKIPPED],
    }
    assert steps(record, "fine") == {
        "build": [Status.SUCCEEDED], "push": [Status.SUCCEEDED], "scan": [Status.SKIPPED],
        "trigger": [Status.SUCCEEDED],
    }
    [pinned] = [i for i in record.images if i.rule == "pinned"]
    assert "immutable" in (pinned.steps[1].reason or "")
    assert digest_at(registry, "team/imm", "v9") == old.index_digest  # not overwritten
    assert digest_at(registry, "team/imm", "v10") == other.index_digest
    assert digest_at(registry, "team/imm", "v11") is None
    assert [r.json()["push_data"]["tag"] for r in receiver.requests] == ["v10"]
    doc = validate_file(record_mod.write(record, tmp_path / "r.json"))
    assert_round_trip(tmp_path / "r.json")
    scan = doc["images"][1]["steps"][2]  # type: ignore[index]
    assert scan["status"] == "skipped" and "no scan: section" in scan["reason"]


def test_down_mirror_fails_alone_and_triggers_still_fire(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    receiver: WebhookReceiver,
    project: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    mirror = registry_factory("plain")
    layout = oci_layout_factory(seed=131)
    cfg = write_config(project, f"""version: 1
image: {registry.host}/team/down
{rules(("app", "[v1]"))}
sync:
  - name: up
    to: {mirror.host}/m
  - name: down
    to: {dead_host()}/m
triggers:
  - name: deploy
    url: {receiver.url("/deploy/PATHSECRET")}?token=SECRET
""")
    log = io.StringIO()
    record = run(cfg, PrebuiltBuilder({"app": layout}), log=log)
    assert record.exit_code == 1
    assert steps(record, "app")["sync"] == [Status.SUCCEEDED, Status.FAILED]
    assert steps(record, "app")["trigger"] == [Status.SUCCEEDED]
    assert digest_at(mirror, "m/down", "v1") == layout.index_digest
    assert [r.json()["push_data"]["tag"] for r in receiver.requests] == ["v1"]
    path = record_mod.write(record, tmp_path / "r.json")
    validate_file(path)
    assert_round_trip(path)
    everything = path.read_text() + log.getvalue() + caplog.text + record_mod.summary_markdown(record)
    assert "SECRET" not in everything
    assert receiver.origin in path.read_text()  # the target is recorded, as scheme://host:port


def test_trigger_failures_are_recorded_with_http_status_and_push_stays(
    registry: RegistryServer,
    oci_layout_factory: Callable[..., Layout],
    receiver: WebhookReceiver,
    project: Path,
    tmp_path: Path,
) -> None:
    receiver.script("/flaky", [500])
    receiver.script("/refuses", [403])
    layout = oci_layout_factory(seed=141)
    cfg = write_config(project, f"""version: 1
image: {registry.host}/team/hooks
{rules(("app", "[v1]"))}
triggers:
  - name: flaky
    url: {receiver.url("/flaky")}
  - name: refuses
    url: {receiver.url("/refuses")}
  - name: ok
    url: {receiver.url("/ok")}
""")
    record = run(cfg, PrebuiltBuilder({"app": layout}))
    assert record.exit_code == 1
    assert len(receiver.to("/flaky")) == 4  # 1 + 3 retries
    assert len(receiver.to("/refuses")) == 1
    assert len(receiver.to("/ok")) == 1
    assert digest_at(registry, "team/hooks", "v1") == layout.index_digest
    doc = validate_file(record_mod.write(record, tmp_path / "r.json"))
    assert_round_trip(tmp_path / "r.json")
    triggers = {s["name"]: s for s in doc["images"][0]["steps"] if s["step"] == "trigger"}  # type: ignore[index]
    assert triggers["flaky"]["detail"]["http_status"] == 500
    assert triggers["flaky"]["detail"]["deliveries"][0]["attempts"] == 4
    assert triggers["refuses"]["detail"]["http_status"] == 403
    assert triggers["ok"]["status"] == "succeeded"


def test_no_matching_rule_is_an_empty_successful_run(registry: RegistryServer, project: Path) -> None:
    cfg = write_config(project, f"version: 1\nimage: {registry.host}/team/none\n{rules(('x', '[v1]'))}")
    other = RefContext(type=RefType.BRANCH, name="feature", sha=SHA, time=REF.time)
    with config_client(cfg) as client:
        record = run_chain(cfg, other, ChainParts(client=client, builder=PrebuiltBuilder({}), log=io.StringIO()))
    assert record.images == () and record.exit_code == 0
    record_mod.validate(record.to_json())
