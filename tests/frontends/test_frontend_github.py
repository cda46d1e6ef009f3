"""The GitHub Action: GitHub's schemas, zizmor, and the runner's contract run for real.

``act`` needs a Docker engine, which these machines do not have, so the runner's side is
emulated the way it is documented: every input of ``action.yml`` becomes
``INPUT_<NAME>`` (upper case, spaces → ``_``, hyphens kept), defaults filled in;
``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY`` and ``GITHUB_EVENT_PATH`` point at files;
the entrypoint and args of ``action.yml`` are what runs. The build is real (buildah), the
registry is real (basic auth), and the outputs file is compared with the registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.e2e.sync_support import digest_at
from tests.frontends.frontend_support import ROOT, load_yaml, read_github_outputs, tool
from tests.support import RegistryServer
from tests.support.buildenv import BaseImage

FIXTURES = ROOT / "tests" / "fixtures" / "github"
WORKFLOWS = sorted((ROOT / "examples" / "github").glob("*.yml"))
SEVERITY_ORDER = ["unknown", "informational", "low", "medium", "high"]


def action() -> dict[str, object]:
    doc = load_yaml(ROOT / "action.yml")
    assert isinstance(doc, dict)
    return doc


# -- the ecosystem's checkers ------------------------------------------------------------------


def test_action_yml_matches_githubs_action_schema() -> None:
    p = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions",
                        str(ROOT / "action.yml")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_example_workflows_match_githubs_workflow_schema() -> None:
    assert len(WORKFLOWS) >= 2
    p = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                        *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_zizmor_finds_nothing_above_low() -> None:
    p = subprocess.run([tool("zizmor"), "--offline", "--format", "json", "--no-exit-codes",
                        str(ROOT / "action.yml"), *map(str, WORKFLOWS)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    findings = json.loads(p.stdout)
    high = [(f["ident"], f["determinations"]["severity"]) for f in findings
            if SEVERITY_ORDER.index(f["determinations"]["severity"].lower()) > 2]
    assert high == [], p.stdout


def test_example_workflows_pin_actions_and_limit_permissions() -> None:
    for path in WORKFLOWS:
        doc = load_yaml(path)
        assert doc["permissions"] == {}, path.name  # nothing by default, each job asks
        for job in doc["jobs"].values():
            assert "permissions" in job
            for step in job["steps"]:
                uses = step.get("uses")
                if uses and not uses.startswith("./"):
                    ref = uses.split("@", 1)[1]
                    assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), uses


def test_action_runs_the_frontend_in_a_pinned_image() -> None:
    runs = action()["runs"]
    assert isinstance(runs, dict)
    assert runs["using"] == "docker"
    assert str(runs["image"]).startswith("docker://")
    assert [runs["entrypoint"], *runs["args"]] == ["python3", "-m", "acr_ci.frontends.github"]
    outputs = action()["outputs"]
    assert isinstance(outputs, dict)
    assert {"digest", "tags", "images", "record", "blocked"} <= set(outputs)


# -- the runner's contract --------------------------------------------------------------------


def runner_env(tmp: Path, workspace: Path, inputs: dict[str, str]) -> dict[str, str]:
    """The env a runner gives the action's container for a push to main (fixture dump)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "INPUT_", "CI_", "GITLAB", "ACR_CI_", "RUNNER_"))}
    env.pop("CI", None)
    for line in (FIXTURES / "event_push_branch.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            env[k] = v
    files = tmp / "_runner_file_commands"
    files.mkdir()
    event = tmp / "_github_workflow" / "event.json"
    event.parent.mkdir()
    shutil.copy(FIXTURES / "event_push_branch.json", event)
    env.update(
        GITHUB_OUTPUT=str(files / "set_output"),
        GITHUB_STEP_SUMMARY=str(files / "step_summary"),
        GITHUB_EVENT_PATH=str(event),
        GITHUB_WORKSPACE=str(workspace),
    )
    declared = action()["inputs"]
    assert isinstance(declared, dict)
    unknown = set(inputs) - set(declared)
    assert not unknown, f"not inputs of action.yml: {unknown}"
    for name, spec in declared.items():
        value = inputs.get(name, str(spec.get("default", "")))
        env["INPUT_" + name.replace(" ", "_").upper()] = value
    return env


def run_action(env: dict[str, str], workspace: Path) -> subprocess.CompletedProcess[str]:
    runs = action()["runs"]
    assert isinstance(runs, dict)
    argv = [sys.executable if runs["entrypoint"] == "python3" else str(runs["entrypoint"]),
            *map(str, runs["args"])]
    return subprocess.run(argv, env=env, cwd=workspace, capture_output=True, text=True, timeout=900)


def write_workspace(workspace: Path, image: str, base: str) -> None:
    shutil.copytree(ROOT / "examples" / "hello", workspace / "hello")
    (workspace / "trivy.json").write_text(json.dumps({
        "SchemaVersion": 2, "ArtifactName": "hello", "ArtifactType": "container_image",
        "Results": [{"Target": "hello", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
            {"VulnerabilityID": "CVE-2023-0001", "PkgName": "busybox", "InstalledVersion": "1.36",
             "FixedVersion": "1.37", "Severity": "LOW"}]}],
    }))
    (workspace / ".acr-ci.yml").write_text(f"""version: 1
image: {image}
build:
  builder: buildah
  rules:
    - name: main
      type: branch
      match: main
      context: hello
      tags: [latest, "${{commit}}"]
      platforms: [linux/amd64]
      args: {{BASE: "{base}"}}
scan:
  engine: report
  report: trivy.json
  block: {{severity: high}}
""")


@pytest.mark.registry
@pytest.mark.e2e
def test_runner_contract_push_to_main(
    busybox_base: BaseImage, buildah_env: Path, basic_registry: RegistryServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    repo = f"{basic_registry.host}/demo/gh-action"
    write_workspace(workspace, repo, busybox_base.ref)
    assert basic_registry.credentials is not None
    user, password = basic_registry.credentials
    env = runner_env(tmp_path, workspace, {
        "command": "run", "registry-username": user, "registry-password": password,
    })
    assert env["INPUT_REGISTRY-PASSWORD"] == password  # hyphen kept, as the runner does

    p = run_action(env, workspace)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]

    sha = env["GITHUB_SHA"]
    digest = digest_at(basic_registry, "demo/gh-action", "latest")
    assert digest is not None
    assert digest_at(basic_registry, "demo/gh-action", sha[:6]) == digest

    out = read_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    assert out["digest"] == digest
    assert out["images"] == f"{repo}@{digest}"
    assert out["tags"].splitlines() == [f"{repo}:latest", f"{repo}:{sha[:6]}"]
    assert out["image-url"] == f"{repo}:latest"
    assert out["blocked"] == "false" and out["status"] == "succeeded" and out["exit-code"] == "0"
    record = json.loads((workspace / out["record"]).read_text())
    assert record["images"][0]["digest"] == digest
    assert record["ref"]["source"] == "github" and record["ref"]["sha"] == sha

    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "| rule | image | tags | digest |" in summary and "| main |" in summary

    log = p.stdout + p.stderr
    assert f"::add-mask::{password}" in p.stdout
    assert log.count(password) == 1, "the password shows up outside ::add-mask::"
    first = p.stdout.splitlines()[p.stdout.splitlines().index(f"::add-mask::{password}") + 1]
    assert first.startswith("::stop-commands::")


def test_runner_contract_config_error_is_annotated(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / ".acr-ci.yml").write_text(
        "version: 1\nimage: 127.0.0.1:1/demo/app\nbuild:\n  rules:\n"
        "    - name: main\n      type: twig\n      match: main\n      tags: [latest]\n"
    )
    env = runner_env(tmp_path, workspace, {"command": "plan"})
    p = run_action(env, workspace)
    assert p.returncode == 2, p.stderr
    errors = [line for line in p.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1, p.stdout
    assert errors[0].startswith(
        "::error title=acr-ci config,file=.acr-ci.yml,line=6,col=13::"
        "build.rules[0].type: must be one of: branch, tag"
    )
    out = read_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    assert out["status"] == "error" and out["exit-code"] == "2" and out["digest"] == ""


def test_runner_contract_plan_outputs_tags_without_digest(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / ".acr-ci.yml").write_text(
        "version: 1\nimage: 127.0.0.1:1/demo/app\nbuild:\n  rules:\n"
        "    - name: main\n      type: branch\n      match: main\n      tags: [latest, \"${commit:8}\"]\n"
    )
    env = runner_env(tmp_path, workspace, {"command": "plan"})
    p = run_action(env, workspace)
    assert p.returncode == 0, p.stderr
    out = read_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    sha = env["GITHUB_SHA"]
    assert out["tags"].splitlines() == ["127.0.0.1:1/demo/app:latest", f"127.0.0.1:1/demo/app:{sha[:8]}"]
    assert out["digest"] == "" and out["status"] == "succeeded"


def test_runner_contract_scan_gate_blocks_with_annotation_and_sarif(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "trivy.json").write_text(json.dumps({
        "SchemaVersion": 2, "ArtifactName": "app", "ArtifactType": "container_image",
        "Results": [{"Target": "app", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
            {"VulnerabilityID": "CVE-2024-3094", "PkgName": "xz-utils", "InstalledVersion": "5.6.0",
             "FixedVersion": "5.6.1", "Severity": "CRITICAL"}]}],
    }))
    env = runner_env(tmp_path, workspace, {
        "command": "scan", "report": "trivy.json", "severity": "high", "sarif": "acr-ci.sarif",
    })
    p = run_action(env, workspace)
    assert p.returncode == 3, p.stderr
    errors = [line for line in p.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1 and errors[0].startswith("::error title=acr-ci scan gate::blocked")
    assert errors[0].endswith("(CVE-2024-3094)")
    out = read_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    assert out["blocked"] == "true" and out["status"] == "blocked" and out["exit-code"] == "3"
    assert out["sarif-report"] == "acr-ci.sarif"
    sarif = json.loads((workspace / "acr-ci.sarif").read_text())
    assert sarif["version"] == "2.1.0"

    # non-blocking: the step passes, the verdict becomes a warning
    (tmp_path / "nb").mkdir()
    env = runner_env(tmp_path / "nb", workspace, {
        "command": "scan", "report": "trivy.json", "severity": "high", "non-blocking": "true",
    })
    p = run_action(env, workspace)
    assert p.returncode == 0, p.stderr
    warnings = [line for line in p.stdout.splitlines() if line.startswith("::warning ")]
    assert len(warnings) == 1 and "CVE-2024-3094" in warnings[0]
    out = read_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    assert out["blocked"] == "false" and out["status"] == "succeeded"
