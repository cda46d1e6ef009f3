"""The Tekton Tasks and Pipeline: tekton-lint, Tekton's v1 schema (strict), and each Task's
step script executed here the way Tekton would run it.

No cluster runs here. What Tekton does before a step runs is done by :func:`substitute`:
``$(params.X)`` (given or default), ``$(results.X.path)``, ``$(workspaces.X.path|bound)``
are replaced in the step's ``env`` values and ``workingDir``; the script itself must hold
no substitution at all (params reach it only through env). The step's script then runs
with ``sh`` and this test's Python first on ``PATH`` (instead of the image); the results
files are what is checked, against the registry.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.sync_support import digest_at
from tests.frontends.frontend_support import ROOT, SCHEMAS, load_yaml, python_bin_dir, tool
from tests.support import RegistryServer
from tests.support.buildenv import BaseImage, push_layout_with_skopeo
from tests.support.layout import Layout
from tests.support.webhook import WebhookReceiver

TASKS = {p.parent.parent.name: p for p in sorted((ROOT / "tekton" / "task").glob("*/0.1/*.yaml"))}
PIPELINE = ROOT / "tekton" / "pipeline" / "acr-ci" / "0.1" / "acr-ci.yaml"
ALL_FILES = [*TASKS.values(), PIPELINE]
VAR = re.compile(r"\$\(([^)]+)\)")
SHA = "0123456789abcdef0123456789abcdef01234567"
TIME = "2026-11-23T12:00:00Z"


def test_catalog_layout() -> None:
    assert set(TASKS) == {"acr-ci-build", "acr-ci-scan", "acr-ci-sync", "acr-ci-trigger"}
    for name, path in TASKS.items():
        assert path.name == f"{name}.yaml"
        assert (path.parent / "README.md").exists(), name
        assert list((path.parent / "samples").glob("*.yaml")), name
    assert (PIPELINE.parent / "README.md").exists()


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_catalog_labels_and_annotations(path: Path) -> None:
    doc = load_yaml(path)
    assert doc["apiVersion"] == "tekton.dev/v1"
    meta = doc["metadata"]
    assert meta["labels"]["app.kubernetes.io/version"] == path.parent.name
    for key in ("tekton.dev/pipelines.minVersion", "tekton.dev/categories", "tekton.dev/tags",
                "tekton.dev/platforms", "tekton.dev/displayName"):
        assert meta["annotations"].get(key), f"{path.name}: {key}"


def test_tekton_lint_is_clean() -> None:
    everything = sorted((ROOT / "tekton").rglob("*.yaml"))  # Tasks, Pipeline and samples
    assert len(everything) == len(ALL_FILES) * 2
    p = subprocess.run([tool("tekton-lint"), "--format", "json", *map(str, everything)],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout) == []


def test_tekton_lint_would_catch_a_spliced_param(tmp_path: Path) -> None:
    """The checker is live: a Task using an undeclared param is reported."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(TASKS["acr-ci-sync"].read_text().replace("$(params.config)", "$(params.nope)"))
    p = subprocess.run([tool("tekton-lint"), "--format", "json", str(bad)], capture_output=True,
                       text=True, cwd=tmp_path)
    assert any(f["rule"] == "no-undefined-param" for f in json.loads(p.stdout)), p.stdout


def strict_schema(definition: str) -> dict[str, Any]:
    """Tekton's v1 swagger made strict: unknown keys are errors (``additionalProperties``
    false on every object with properties); Kubernetes types it lacks are filled in —
    ``EnvVar`` strictly, the rest open; ``ParamValue`` (a string, list or map in YAML,
    whose Go-struct shape the swagger shows) as what YAML holds."""
    swagger = json.loads((SCHEMAS / "tekton-pipeline-v1.swagger.json").read_text())
    defs: dict[str, Any] = copy.deepcopy(swagger["definitions"])
    for d in defs.values():
        if d.get("type") == "object" and "properties" in d:
            d["additionalProperties"] = False
    text = json.dumps(defs)
    for missing in set(re.findall(r'"#/definitions/([^"]+)"', text)) - set(defs):
        defs[missing] = {}
    defs["v1.EnvVar"] = {"type": "object", "required": ["name"], "additionalProperties": False,
                         "properties": {"name": {"type": "string"}, "value": {"type": "string"},
                                        "valueFrom": {"type": "object"}}}
    defs["v1.ParamValue"] = {"type": ["string", "array", "object"]}
    return {"$ref": f"#/definitions/{definition}", "definitions": defs}


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_matches_tektons_v1_schema_strictly(path: Path) -> None:
    import jsonschema

    doc = load_yaml(path)
    definition = {"Task": "v1.TaskSpec", "Pipeline": "v1.PipelineSpec"}[doc["kind"]]
    validator = jsonschema.Draft4Validator(strict_schema(definition))
    errors = sorted(validator.iter_errors(doc["spec"]), key=lambda e: list(e.absolute_path))
    assert errors == [], "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    # and the strict schema does refuse an unknown key
    broken = copy.deepcopy(doc["spec"])
    broken["stepz"] = []
    assert list(validator.iter_errors(broken))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_params_reach_the_script_only_through_env(name: str) -> None:
    spec = load_yaml(TASKS[name])["spec"]
    declared = {p["name"] for p in spec["params"]}
    for step in spec["steps"]:
        assert VAR.search(step["script"]) is None, f"{name}: $(...) inside the script"
        assert step["script"].startswith("#!/bin/sh\n")
        env = {e["name"]: e["value"] for e in step["env"]}
        via_env = {m for v in env.values() for m in re.findall(r"\$\(params\.([a-z0-9-]+)\)", v)}
        assert via_env | {"acr-ci-image"} == declared, name
        assert env["ACR_CI_PLATFORM"] == "tekton"
        for result in spec["results"]:
            assert env[f"ACR_CI_RESULT_{result['name']}"] == f"$(results.{result['name']}.path)"
        assert env["WORKSPACE_DOCKERCONFIG_BOUND"] == "$(workspaces.dockerconfig.bound)"
    names = {r["name"] for r in spec["results"]}
    if name == "acr-ci-build":
        assert {"IMAGE_URL", "IMAGE_DIGEST", "IMAGES"} <= names


# -- running the step scripts ------------------------------------------------------------------


def substitute(value: str, values: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        assert key in values, f"unknown substitution $({key})"
        return values[key]

    return VAR.sub(one, value)


def run_task(name: str, params: dict[str, str], source: Path, tmp: Path,
             dockerconfig: Path | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run the Task's step as Tekton would (see the module doc); returns the results read back."""
    spec = load_yaml(TASKS[name])["spec"]
    values: dict[str, str] = {}
    for p in spec["params"]:
        if p["name"] in params:
            values[f"params.{p['name']}"] = params[p["name"]]
        else:
            assert "default" in p, f"{name}: param {p['name']} is required"
            values[f"params.{p['name']}"] = p["default"]
    assert set(params) <= {p["name"] for p in spec["params"]}, "unknown params"
    results_dir = tmp / f"results-{name}"
    results_dir.mkdir()
    for r in spec["results"]:
        values[f"results.{r['name']}.path"] = str(results_dir / r["name"])
    values["workspaces.source.path"] = str(source)
    values["workspaces.dockerconfig.bound"] = "true" if dockerconfig else "false"
    values["workspaces.dockerconfig.path"] = str(dockerconfig) if dockerconfig else ""
    (step,) = spec["steps"]
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "CI_", "GITLAB", "ACR_CI_", "PARAM_", "DOCKER_CONFIG"))}
    base.pop("CI", None)
    env = {**base, **{e["name"]: substitute(e["value"], values) for e in step["env"]}}
    env["PATH"] = python_bin_dir() + os.pathsep + base.get("PATH", "")
    script = tmp / f"{name}.sh"
    script.write_text(step["script"])
    proc = subprocess.run(["sh", str(script)], cwd=substitute(step["workingDir"], values), env=env,
                          capture_output=True, text=True, timeout=900)
    got = {p.name: p.read_text() for p in results_dir.iterdir()}
    return proc, got


def write_config(source: Path, image: str, extra: str = "", base: str = "") -> None:
    (source / ".acr-ci.yml").write_text(f"""version: 1
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
      args: {{BASE: "{base or 'busybox:stable'}"}}
{extra}""")


@pytest.mark.registry
@pytest.mark.e2e
def test_build_task_pushes_and_writes_chains_results(
    busybox_base: BaseImage, buildah_env: Path, registry: RegistryServer, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT / "examples" / "hello", source / "hello")
    image = f"{registry.host}/demo/tekton-build"
    write_config(source, image, base=busybox_base.ref)
    proc, results = run_task("acr-ci-build", {"ref": "refs/heads/main", "sha": SHA, "time": TIME},
                             source, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    digest = digest_at(registry, "demo/tekton-build", "latest")
    assert digest is not None and digest_at(registry, "demo/tekton-build", SHA[:6]) == digest
    assert results == {
        "IMAGE_DIGEST": digest,
        "IMAGE_URL": f"{image}:latest",
        "IMAGES": f"{image}@{digest}",
        "TAGS": f"{image}:latest,{image}:{SHA[:6]}",
        "STATUS": "succeeded",
    }


@pytest.mark.registry
@pytest.mark.e2e
def test_scan_sync_trigger_tasks_on_a_pushed_image(
    registry_factory: Any, oci_layout_factory: Any, docker_config: Any, tmp_path: Path
) -> None:
    target = registry_factory("plain")
    mirror = registry_factory("basic")
    config_dir = docker_config(mirror)  # the dockerconfig workspace
    layout: Layout = oci_layout_factory(platforms=["linux/amd64"])
    push_layout_with_skopeo(layout.path, f"{target.host}/demo/tekton:v1")
    digest = digest_at(target, "demo/tekton", "v1")
    assert digest is not None
    receiver = WebhookReceiver().start()
    try:
        source = tmp_path / "source"
        source.mkdir()
        (source / "trivy.json").write_text(json.dumps({
            "SchemaVersion": 2, "ArtifactName": "x", "ArtifactType": "container_image",
            "Results": [{"Target": "x", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
                {"VulnerabilityID": "CVE-2024-3094", "PkgName": "xz-utils", "InstalledVersion": "5.6.0",
                 "FixedVersion": "5.6.1", "Severity": "CRITICAL"}]}],
        }))
        write_config(source, f"{target.host}/demo/tekton", extra=f"""scan:
  engine: report
  report: trivy.json
  block: {{severity: high}}
sync:
  - name: vault
    to: {mirror.host}/vault
triggers:
  - name: deploy
    url: {receiver.url("/deploy")}
    on: all
""")
        ref = f"{target.host}/demo/tekton:v1@{digest}"

        proc, results = run_task("acr-ci-scan", {"image": ref, "non-blocking": "true"}, source, tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert results == {"IMAGE_DIGEST": digest, "BLOCKED": "false", "STATUS": "succeeded"}

        proc, results = run_task("acr-ci-sync", {"image": ref}, source, tmp_path, dockerconfig=config_dir)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert results == {"STATUS": "succeeded"}
        assert digest_at(mirror, "vault/tekton", "v1") == digest

        proc, results = run_task("acr-ci-trigger", {"image": ref}, source, tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert results == {"STATUS": "succeeded"}
        assert len(receiver.requests) == 1

        # blocking mode: the step fails with exit 3, and says so in its results
        blocked_dir = tmp_path / "blocked"
        blocked_dir.mkdir()
        proc, results = run_task("acr-ci-scan", {"image": ref}, source, blocked_dir)
        assert proc.returncode == 3, proc.stderr[-3000:]
        assert results["BLOCKED"] == "true" and results["STATUS"] == "blocked"
        assert "CVE-2024-3094" in proc.stderr
    finally:
        receiver.stop()
