"""The GitHub Action: GitHub's schemas, zizmor, and the runner's contract run for real.

``act`` needs a Docker engine, which these machines do not have, so the runner's side of
the composite action is emulated the way it is documented: the inputs get their defaults
(``${{ github.token }}`` included); each step's ``if:`` is evaluated, its ``env:`` values
rendered (``${{ inputs.x }}``, ``${{ github.* }}``, ``${{ runner.temp }}``,
``${{ steps.ID.outputs.NAME }}``: the only places expressions appear), and its ``run:``
runs as ``bash --noprofile --norc -eo pipefail FILE`` in the workspace, with
``GITHUB_ACTION_PATH``, ``RUNNER_TEMP``, a fresh ``GITHUB_OUTPUT`` per step,
``GITHUB_STEP_SUMMARY`` and ``GITHUB_EVENT_PATH`` (a real push event). A ``uses:`` step
cannot run here: ``actions/setup-python`` must be skipped, which it is because this
machine's python3 is new enough (``python: auto``). The action's outputs are its
``outputs.*.value`` expressions over the steps' outputs. The venv step really installs the
lock with ``pip --require-hashes`` (once per module: the venv is reused like in one job),
the build is real (``builder: auto`` → buildah, there is no Docker here), the registry is
real (basic auth), and the outputs are compared with the registry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.e2e.sync_support import digest_at
from tests.frontends.frontend_support import ROOT, load_yaml, read_github_outputs, tool
from tests.support import RegistryServer
from tests.support.buildenv import BaseImage

FIXTURES = ROOT / "tests" / "fixtures" / "github"
WORKFLOWS = sorted((ROOT / "examples" / "github").glob("*.yml"))
ACTIONS = [ROOT / "action.yml", ROOT / "docker" / "action.yml"]
SEVERITY_ORDER = ["unknown", "informational", "low", "medium", "high"]


def action(path: Path = ROOT / "action.yml") -> dict[str, object]:
    doc = load_yaml(path)
    assert isinstance(doc, dict)
    return doc


# -- the ecosystem's checkers ------------------------------------------------------------------


def test_action_yml_matches_githubs_action_schema() -> None:
    p = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions",
                        *map(str, ACTIONS)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_example_workflows_match_githubs_workflow_schema() -> None:
    assert len(WORKFLOWS) >= 2
    p = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                        *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_zizmor_finds_nothing_above_low() -> None:
    p = subprocess.run([tool("zizmor"), "--offline", "--format", "json", "--no-exit-codes",
                        *map(str, ACTIONS), *map(str, WORKFLOWS)],
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


def test_action_is_composite_pinned_and_passes_inputs_through_env_only() -> None:
    doc = action()
    runs = doc["runs"]
    assert isinstance(runs, dict) and runs["using"] == "composite"
    steps = runs["steps"]
    declared = doc["inputs"]
    assert isinstance(declared, dict)
    assert declared["github-token"]["default"] == "${{ github.token }}"
    assert declared["python"]["default"] == "auto"
    for step in steps:
        if "uses" in step:
            ref = step["uses"].split("@", 1)[1]
            assert re.fullmatch(r"[0-9a-f]{40}", ref), step["uses"]
        else:
            assert step["shell"] == "bash"
            assert "${{" not in step["run"], f"an expression inside run: of {step['id']}"
    (setup,) = [s for s in steps if "uses" in s]
    assert setup["uses"].startswith("actions/setup-python@")
    assert setup["if"] == "steps.python.outputs.setup == 'true'"
    assert setup["with"]["update-environment"] is False  # the job's own python stays
    last = steps[-1]
    assert last["id"] == "acr" and last["run"].endswith("-m acr_ci.frontends.github")
    assert {k: v for k, v in last["env"].items() if k.startswith("INPUT_")} == {
        "INPUT_" + name.upper(): "${{ inputs." + name + " }}" for name in declared if name != "python"
    }
    outputs = doc["outputs"]
    assert isinstance(outputs, dict)
    assert {"digest", "tags", "images", "record", "blocked"} <= set(outputs)
    assert all(o["value"] == "${{ steps.acr.outputs." + n + " }}" for n, o in outputs.items())


def test_docker_variant_runs_the_frontend_in_a_pinned_image() -> None:
    doc = action(ROOT / "docker" / "action.yml")
    runs = doc["runs"]
    assert isinstance(runs, dict)
    assert runs["using"] == "docker"
    assert str(runs["image"]).startswith("docker://")
    assert [runs["entrypoint"], *runs["args"]] == ["python3", "-m", "acr_ci.frontends.github"]
    composite = action()
    assert isinstance(doc["inputs"], dict) and isinstance(composite["inputs"], dict)
    assert set(doc["inputs"]) == set(composite["inputs"]) - {"python"}
    assert doc["outputs"].keys() == composite["outputs"].keys()  # type: ignore[attr-defined]


# -- the runner's contract --------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def evaluate(expr: str, ctx: Mapping[str, object]) -> str:
    """The expressions action.yml uses: a context path, or ``path == 'literal'``."""
    m = re.fullmatch(r"([\w.-]+)\s*==\s*'([^']*)'", expr)
    if m:
        return "true" if evaluate(m.group(1), ctx) == m.group(2) else "false"
    assert re.fullmatch(r"[\w.-]+", expr), f"expression not emulated: {expr!r}"
    value: object = ctx
    for part in expr.split("."):
        value = value.get(part, "") if isinstance(value, Mapping) else ""
    return value if isinstance(value, str) else ""


def render(text: str, ctx: Mapping[str, object]) -> str:
    return EXPRESSION.sub(lambda m: evaluate(m.group(1), ctx), text)


@dataclass
class ActionRun:
    """What the runner shows of one run of the composite action."""

    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    steps: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each step's outputs (``steps.ID.outputs``)."""
    step_env: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each step's rendered ``env:``."""
    skipped: list[str] = field(default_factory=list)


@dataclass
class Runner:
    """A job on a runner: its env, workspace, temp dir and the action's inputs."""

    env: dict[str, str]
    workspace: Path
    inputs: dict[str, str]
    token: str = ""

    def run(self) -> ActionRun:
        doc = action()
        temp = Path(self.env["RUNNER_TEMP"])
        github = {"action_path": str(ROOT), "token": self.token, "sha": self.env["GITHUB_SHA"],
                  "actor": self.env["GITHUB_ACTOR"], "workspace": str(self.workspace)}
        ctx: dict[str, object] = {"github": github, "runner": {"temp": str(temp)}, "steps": {}}
        declared = doc["inputs"]
        assert isinstance(declared, dict)
        unknown = set(self.inputs) - set(declared)
        assert not unknown, f"not inputs of action.yml: {unknown}"
        ctx["inputs"] = {n: self.inputs.get(n, render(str(spec.get("default", "")), ctx))
                         for n, spec in declared.items()}
        result = ActionRun(0, "", "", {})
        runs = doc["runs"]
        assert isinstance(runs, dict)
        steps: dict[str, dict[str, str]] = {}
        ctx["steps"] = {}
        for i, step in enumerate(runs["steps"]):
            sid = step.get("id", f"__{i}")
            if "if" in step and render("${{ " + step["if"] + " }}", ctx) != "true":
                result.skipped.append(sid)
                continue
            assert "uses" not in step, f"the runner would run {step['uses']} here"
            env = {**self.env, **{k: render(str(v), ctx) for k, v in step.get("env", {}).items()}}
            result.step_env[sid] = env
            output = temp / f"_runner_file_commands/set_output_{sid}"
            output.parent.mkdir(exist_ok=True)
            output.write_text("")
            env.update(GITHUB_OUTPUT=str(output), GITHUB_ACTION_PATH=str(ROOT))
            script = temp / f"{sid}.sh"
            script.write_text(step["run"])
            p = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                               env=env, cwd=self.workspace, capture_output=True, text=True,
                               timeout=900)
            result.stdout += p.stdout
            result.stderr += p.stderr
            steps[sid] = read_github_outputs(output.read_text())
            ctx["steps"] = {k: {"outputs": v} for k, v in steps.items()}
            if p.returncode != 0:
                result.returncode = p.returncode
                break
        result.steps = steps
        outputs = doc["outputs"]
        assert isinstance(outputs, dict)
        result.outputs = {n: render(o["value"], ctx) for n, o in outputs.items()}
        return result


@pytest.fixture(scope="module")
def runner_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$RUNNER_TEMP`` of one job: the action's venv is made once and then reused."""
    return tmp_path_factory.mktemp("runner-temp")


def runner_env(tmp: Path, workspace: Path, runner_temp: Path,
               event: str = "push_branch") -> dict[str, str]:
    """The env a runner gives a step for an event (fixture dump), without this checkout's
    PYTHONPATH: what runs is what the action installed."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "INPUT_", "CI_", "GITLAB", "ACR_CI_", "RUNNER_"))}
    env.pop("CI", None)
    env.pop("PYTHONPATH", None)
    for line in (FIXTURES / f"event_{event}.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            env[k] = v
    files = tmp / "_runner_file_commands"
    files.mkdir()
    event_file = tmp / "_github_workflow" / "event.json"
    event_file.parent.mkdir()
    shutil.copy(FIXTURES / f"event_{event}.json", event_file)
    env.update(
        GITHUB_STEP_SUMMARY=str(files / "step_summary"),
        GITHUB_EVENT_PATH=str(event_file),
        GITHUB_WORKSPACE=str(workspace),
        RUNNER_TEMP=str(runner_temp),
    )
    env.pop("GITHUB_OUTPUT", None)  # one per step, from the runner
    return env


def job(tmp: Path, workspace: Path, runner_temp: Path, inputs: dict[str, str],
        *, token: str = "", event: str = "push_branch") -> Runner:
    return Runner(runner_env(tmp, workspace, runner_temp, event), workspace, inputs, token)


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
  builder: auto
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
    busybox_base: BaseImage, buildah_env: Path, basic_registry: RegistryServer, tmp_path: Path,
    runner_temp: Path,
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    repo = f"{basic_registry.host}/demo/gh-action"
    write_workspace(workspace, repo, busybox_base.ref)
    assert basic_registry.credentials is not None
    user, password = basic_registry.credentials
    runner = job(tmp_path, workspace, runner_temp, {
        "command": "run", "registry-username": user, "registry-password": password,
    })
    env = runner.env
    p = runner.run()
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert p.step_env["acr"]["INPUT_REGISTRY-PASSWORD"] == password  # hyphen kept
    assert "builder: auto → buildah" in p.stderr  # no Docker engine here

    sha = env["GITHUB_SHA"]
    digest = digest_at(basic_registry, "demo/gh-action", "latest")
    assert digest is not None
    assert digest_at(basic_registry, "demo/gh-action", sha[:6]) == digest

    out = p.outputs
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


def test_runner_contract_config_error_is_annotated(tmp_path: Path, runner_temp: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / ".acr-ci.yml").write_text(
        "version: 1\nimage: 127.0.0.1:1/demo/app\nbuild:\n  rules:\n"
        "    - name: main\n      type: twig\n      match: main\n      tags: [latest]\n"
    )
    runner = job(tmp_path, workspace, runner_temp, {"command": "plan"})
    p = runner.run()
    assert p.returncode == 2, p.stderr
    errors = [line for line in p.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1, p.stdout
    assert errors[0].startswith(
        "::error title=acr-ci config,file=.acr-ci.yml,line=6,col=13::"
        "build.rules[0].type: must be one of: branch, tag"
    )
    out = p.outputs
    assert out["status"] == "error" and out["exit-code"] == "2" and out["digest"] == ""


def test_runner_contract_plan_outputs_tags_without_digest(tmp_path: Path, runner_temp: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / ".acr-ci.yml").write_text(
        "version: 1\nimage: 127.0.0.1:1/demo/app\nbuild:\n  rules:\n"
        "    - name: main\n      type: branch\n      match: main\n      tags: [latest, \"${commit:8}\"]\n"
    )
    runner = job(tmp_path, workspace, runner_temp, {"command": "plan"})
    env = runner.env
    p = runner.run()
    assert p.returncode == 0, p.stderr
    out = p.outputs
    sha = env["GITHUB_SHA"]
    assert out["tags"].splitlines() == ["127.0.0.1:1/demo/app:latest", f"127.0.0.1:1/demo/app:{sha[:8]}"]
    assert out["digest"] == "" and out["status"] == "succeeded"


def test_runner_contract_scan_gate_blocks_with_annotation_and_sarif(
    tmp_path: Path, runner_temp: Path
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "trivy.json").write_text(json.dumps({
        "SchemaVersion": 2, "ArtifactName": "app", "ArtifactType": "container_image",
        "Results": [{"Target": "app", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
            {"VulnerabilityID": "CVE-2024-3094", "PkgName": "xz-utils", "InstalledVersion": "5.6.0",
             "FixedVersion": "5.6.1", "Severity": "CRITICAL"}]}],
    }))
    runner = job(tmp_path, workspace, runner_temp, {
        "command": "scan", "report": "trivy.json", "severity": "high", "sarif": "acr-ci.sarif",
    })
    p = runner.run()
    assert p.returncode == 3, p.stderr
    errors = [line for line in p.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1 and errors[0].startswith("::error title=acr-ci scan gate::blocked")
    assert errors[0].endswith("(CVE-2024-3094)")
    out = p.outputs
    assert out["blocked"] == "true" and out["status"] == "blocked" and out["exit-code"] == "3"
    assert out["sarif-report"] == "acr-ci.sarif"
    sarif = json.loads((workspace / "acr-ci.sarif").read_text())
    assert sarif["version"] == "2.1.0"

    # non-blocking: the step passes, the verdict becomes a warning
    (tmp_path / "nb").mkdir()
    runner = job(tmp_path / "nb", workspace, runner_temp, {
        "command": "scan", "report": "trivy.json", "severity": "high", "non-blocking": "true",
    })
    p = runner.run()
    assert p.returncode == 0, p.stderr
    warnings = [line for line in p.stdout.splitlines() if line.startswith("::warning ")]
    assert len(warnings) == 1 and "CVE-2024-3094" in warnings[0]
    out = p.outputs
    assert out["blocked"] == "false" and out["status"] == "succeeded"


PLAN_CONFIG = (
    "version: 1\nimage: 127.0.0.1:1/demo/app\nbuild:\n  rules:\n"
    "    - name: main\n      type: branch\n      match: main\n      tags: [latest]\n"
)


def test_runner_contract_auto_picks_the_runners_python_and_reuses_the_venv(
    tmp_path: Path, runner_temp: Path
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / ".acr-ci.yml").write_text(PLAN_CONFIG)
    (tmp_path / "a").mkdir()
    first = job(tmp_path / "a", workspace, runner_temp, {"command": "plan"})
    p = first.run()
    assert p.returncode == 0, p.stdout + p.stderr
    python3 = shutil.which("python3", path=first.env["PATH"])
    assert p.steps["python"] == {"setup": "false", "python": python3}  # 3.11 here: no setup
    assert p.skipped == ["setup-python"]
    venv_python = Path(p.steps["venv"]["python"])
    assert venv_python.parent.parent.parent == runner_temp
    assert p.steps["venv"]["python"].startswith(str(runner_temp))
    # the same job runs the action again: the venv is reused, not rebuilt
    (tmp_path / "b").mkdir()
    again = job(tmp_path / "b", workspace, runner_temp, {"command": "plan"}).run()
    assert again.returncode == 0
    assert again.steps["venv"] == p.steps["venv"]
    assert f"acr-ci: reusing {venv_python.parent.parent}" in again.stdout
    # what ran is the installed package, not this checkout
    site = subprocess.run([str(venv_python), "-c", "import acr_ci; print(acr_ci.__file__)"],
                          capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert site.stdout.startswith(str(venv_python.parent.parent)), site.stdout + site.stderr
    # every command gets a step summary, plan included
    summary = Path(first.env["GITHUB_STEP_SUMMARY"]).read_text()
    assert summary.startswith("### acr-ci plan: ✅ succeeded\n")
    assert "- `127.0.0.1:1/demo/app:latest`" in summary


def test_runner_contract_python_input_is_checked(tmp_path: Path, runner_temp: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (tmp_path / "a").mkdir()
    p = job(tmp_path / "a", workspace, runner_temp, {"python": "$(id)"}).run()
    assert p.returncode == 2 and list(p.steps) == ["python"]
    assert p.stdout.strip() == (
        "::error title=acr-ci action inputs::input python must be auto, runner or setup"
    )
    (tmp_path / "b").mkdir()
    runner = job(tmp_path / "b", workspace, runner_temp, {"python": "setup"})
    with pytest.raises(AssertionError, match="the runner would run actions/setup-python@"):
        runner.run()  # python: setup always asks for actions/setup-python


def test_runner_contract_commit_statuses_without_a_token_is_an_error(
    tmp_path: Path, runner_temp: Path
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / ".acr-ci.yml").write_text(PLAN_CONFIG)
    runner = job(tmp_path, workspace, runner_temp, {"command": "run", "commit-statuses": "true"},
                 token="")
    p = runner.run()
    assert p.returncode == 2, p.stdout + p.stderr
    errors = [line for line in p.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1, p.stdout
    assert errors[0].startswith("::error title=acr-ci action inputs::commit-statuses: true needs")
    assert "acr-ci run" not in p.stderr  # nothing ran


def test_runner_contract_pull_request_record_names_the_head_commit(
    tmp_path: Path, runner_temp: Path
) -> None:
    """The commit statuses go to the record's ref sha: for a pull request, its head."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / ".acr-ci.yml").write_text(PLAN_CONFIG)  # no rule for feature/login
    token = "ghs_job_token_0123456789abcdef"
    runner = job(tmp_path, workspace, runner_temp, {"command": "run"}, token=token,
                 event="pull_request")
    p = runner.run()
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.step_env["acr"]["INPUT_GITHUB-TOKEN"] == token  # the default, ${{ github.token }}
    assert f"::add-mask::{token}" in p.stdout and (p.stdout + p.stderr).count(token) == 1
    event = json.loads((FIXTURES / "event_pull_request.json").read_text())
    record = json.loads((workspace / p.outputs["record"]).read_text())
    head = event["pull_request"]["head"]["sha"]
    assert record["ref"]["sha"] == head != runner.env["GITHUB_SHA"]


def test_job_token_logs_in_to_ghcr_only_and_explicit_credentials_win(tmp_path: Path) -> None:
    from acr_ci.frontends import invocation
    from acr_ci.frontends.github import inputs_from_env

    base = {"GITHUB_ACTOR": "jdoe", "INPUT_GITHUB-TOKEN": "ghs_tok", "INPUT_COMMAND": "sync",
            "INPUT_IMAGE": "registry.example/app:1"}
    login = invocation(inputs_from_env(base), tmp_path, {}).options.access.login  # type: ignore[attr-defined]
    assert login is not None and (login.username, login.only) == ("jdoe", frozenset({"ghcr.io"}))
    creds = login.for_hosts(["registry.example", "ghcr.io"])
    assert creds.get("registry.example") is None
    got = creds.get("ghcr.io")
    assert got is not None and (got.username, got.secret) == ("jdoe", "ghs_tok")

    explicit = {**base, "INPUT_REGISTRY-USERNAME": "bot", "INPUT_REGISTRY-PASSWORD": "pat"}
    login = invocation(inputs_from_env(explicit), tmp_path, {}).options.access.login  # type: ignore[attr-defined]
    assert login is not None and (login.username, login.only) == ("bot", None)
    # the job token passed as the password explicitly: still for ghcr.io only
    passed = {**base, "INPUT_REGISTRY-USERNAME": "jdoe", "INPUT_REGISTRY-PASSWORD": "ghs_tok"}
    login = invocation(inputs_from_env(passed), tmp_path, {}).options.access.login  # type: ignore[attr-defined]
    assert login is not None and login.only == frozenset({"ghcr.io"})
    # no token, or a login in the environment: the job token is not used
    no_token = inputs_from_env({**base, "INPUT_GITHUB-TOKEN": ""})
    assert (no_token.username, no_token.password, no_token.login_only) == ("", "", None)
    env_login = {**base, "ACR_CI_REGISTRY_USERNAME": "u", "ACR_CI_REGISTRY_PASSWORD": "p"}
    login = invocation(inputs_from_env(env_login), tmp_path, env_login).options.access.login  # type: ignore[attr-defined]
    assert login is not None and (login.username, login.only) == ("u", None)


def test_examples_upload_sarif_take_every_image_and_set_up_buildx(tmp_path: Path) -> None:
    tag = load_yaml(ROOT / "examples" / "github" / "tag.yml")
    gate = tag["jobs"]["gate-report"]
    assert gate["permissions"]["security-events"] == "write"
    assert gate["strategy"]["matrix"]["image"] == "${{ fromJSON(needs.release-image.outputs.images) }}"
    (upload,) = [s for s in gate["steps"] if "upload-sarif@" in s.get("uses", "")]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload["with"]["sarif_file"] == "${{ steps.scan.outputs.sarif-report }}"
    release = tag["jobs"]["release-image"]
    assert release["outputs"]["images"] == "${{ steps.list.outputs.images }}"
    # the list step really turns several lines into a JSON list
    (listing,) = [s for s in release["steps"] if s.get("id") == "list"]
    out = tmp_path / "set_output"
    p = subprocess.run(["bash", "-eo", "pipefail", "-c", listing["run"]], capture_output=True,
                       text=True, env={**os.environ, "GITHUB_OUTPUT": str(out),
                                       "IMAGES": "r/a@sha256:1\nr/b@sha256:2\n"})
    assert p.returncode == 0, p.stderr
    assert read_github_outputs(out.read_text()) == {"images": '["r/a@sha256:1", "r/b@sha256:2"]'}

    for name in ("branch.yml", "tag.yml"):
        doc = load_yaml(ROOT / "examples" / "github" / name)
        uses = [s.get("uses", "").split("@")[0] for j in doc["jobs"].values() for s in j["steps"]]
        assert "docker/setup-buildx-action" in uses and "docker/setup-qemu-action" in uses, name


def test_multi_arch_example_builds_each_platform_natively_then_merges(tmp_path: Path) -> None:
    """examples/github/multi-arch.yml: a matrix leg per architecture pushes by digest and
    uploads its digests file; the merge job downloads every file into one folder and
    merges them; the action's inputs are exactly what each job passes, and the merge job
    publishes the action's outputs."""
    from acr_ci.frontends import invocation, merge_files
    from acr_ci.frontends.github import inputs_from_env

    doc = load_yaml(ROOT / "examples" / "github" / "multi-arch.yml")
    build, merge = doc["jobs"]["build"], doc["jobs"]["merge"]
    legs = build["strategy"]["matrix"]["include"]
    assert [(leg["runner"], leg["platform"]) for leg in legs] == [
        ("ubuntu-24.04", "linux/amd64"), ("ubuntu-24.04-arm", "linux/arm64")]
    assert build["runs-on"] == "${{ matrix.runner }}"
    assert "docker/setup-qemu-action" not in json.dumps(build["steps"])  # native: no emulation
    declared = action()["inputs"]
    assert isinstance(declared, dict)
    (acr,) = [s for s in build["steps"] if s.get("uses") == "./"]
    (upload,) = [s for s in build["steps"] if "upload-artifact@" in s.get("uses", "")]
    (download,) = [s for s in merge["steps"] if "download-artifact@" in s.get("uses", "")]
    (merging,) = [s for s in merge["steps"] if s.get("uses") == "./"]
    assert set(acr["with"]) <= set(declared) and set(merging["with"]) <= set(declared)
    assert merge["needs"] == "build"
    assert download["with"]["merge-multiple"] is True

    # what each job would hand the action, the matrix and the artifacts played out here
    folder = tmp_path / download["with"]["path"]
    folder.mkdir()
    for leg in legs:
        ctx = {"matrix": leg}
        inputs = {k: render(str(v), ctx) for k, v in acr["with"].items()}
        env = {f"INPUT_{k.upper()}": v for k, v in inputs.items()}
        options = invocation(inputs_from_env(env), tmp_path, {}).options
        assert options.platforms == (leg["platform"],)  # type: ignore[attr-defined]
        assert options.push_by_digest is True and options.push is False  # type: ignore[attr-defined]
        digests = options.digests_file  # type: ignore[attr-defined]
        assert render(upload["with"]["path"], ctx) == digests  # the file that is uploaded
        artifact = render(upload["with"]["name"], ctx)
        assert re.fullmatch(download["with"]["pattern"].replace("*", ".*"), artifact)
        (folder / Path(digests).name).write_text(json.dumps({"platform": leg["platform"]}) + "\n")
    env = {f"INPUT_{k.upper()}": v for k, v in merging["with"].items()}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        options = invocation(inputs_from_env(env), tmp_path, {}).options
        files = merge_files([merging["with"]["merge"]])
    finally:
        os.chdir(cwd)
    assert type(options).__name__ == "MergeOptions" and options.files == files  # type: ignore[attr-defined]
    assert sorted(json.loads((tmp_path / f).read_text())["platform"] for f in files) == [
        "linux/amd64", "linux/arm64"]
    assert merge["outputs"] == {n: "${{ steps.acr.outputs." + n + " }}" for n in merge["outputs"]}
    assert {"digest", "images", "tags"} <= set(merge["outputs"]) <= set(action()["outputs"])  # type: ignore[arg-type]


def test_runner_contract_multi_runner_inputs_reach_the_front_end(
    tmp_path: Path, runner_temp: Path
) -> None:
    """Through the composite action's own env: a bad combination of the multi-runner
    inputs stops the step with one error naming them; a merge whose pattern matches
    nothing names the merge input and runs nothing."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / ".acr-ci.yml").write_text(PLAN_CONFIG)
    (tmp_path / "a").mkdir()
    p = job(tmp_path / "a", workspace, runner_temp, {
        "command": "build", "platforms": "linux/arm64", "push-by-digest": "true",
        "digests-file": "digests-arm64.jsonl", "push": "true",
    }).run()
    assert p.returncode == 2, p.stdout + p.stderr
    env = p.step_env["acr"]
    assert (env["INPUT_PLATFORMS"], env["INPUT_PUSH-BY-DIGEST"], env["INPUT_DIGESTS-FILE"]) == (
        "linux/arm64", "true", "digests-arm64.jsonl")
    errors = [line for line in p.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        "::error title=acr-ci action inputs::inputs push and push-by-digest exclude each other")
    assert not (workspace / "digests-arm64.jsonl").exists()
    (tmp_path / "b").mkdir()
    p = job(tmp_path / "b", workspace, runner_temp, {"command": "merge", "merge": "digests/*.jsonl"}).run()
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.step_env["acr"]["INPUT_MERGE"] == "digests/*.jsonl"
    errors = [line for line in p.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1 and "input merge: 'digests/*.jsonl' matches no file" in errors[0], errors
    assert "acr-ci merge" not in p.stderr


@pytest.mark.registry
@pytest.mark.e2e
def test_runner_contract_signing_key_from_the_steps_env_never_an_input(
    registry: RegistryServer, tmp_path: Path, runner_temp: Path
) -> None:
    """``env: ACR_CI_SIGNING_KEY: ${{ secrets.… }}`` on the step (the job env the runner
    gives the composite action's steps): ``command: sign`` signs by digest, and the key is
    in no ``INPUT_*`` variable and in no output."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from tests.support.layout import make_layout

    from acr_ci.registry import Client, Reference

    layout = make_layout(tmp_path / "layout", seed=31)
    ref = f"{registry.host}/action/signed:1.0"
    with Client() as client:
        digest = client.push_layout(layout.path, Reference.parse(ref), ["1.0"]).digest
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    runner = job(tmp_path, workspace, runner_temp, {"command": "sign", "image": ref})
    runner.env["ACR_CI_SIGNING_KEY"] = pem
    p = runner.run()
    assert p.returncode == 0, p.stdout + p.stderr
    env = p.step_env["acr"]
    assert env["ACR_CI_SIGNING_KEY"] == pem
    assert not [k for k, v in env.items() if k.startswith("INPUT_") and "PRIVATE KEY" in v]
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    assert body[:40] not in p.stdout + p.stderr + json.dumps(p.outputs)
    assert p.outputs["status"] == "succeeded"
    assert digest_at(registry, "action/signed", f"sha256-{digest.split(':', 1)[1]}.sig")
