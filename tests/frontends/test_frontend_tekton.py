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
from tests.frontends.frontend_support import (
    ROOT,
    SCHEMAS,
    load_yaml,
    python_bin_dir,
    recorded,
    recorder_bin,
    tool,
)
from tests.support import RegistryServer
from tests.support.buildenv import BaseImage, push_layout_with_skopeo
from tests.support.layout import Layout
from tests.support.webhook import WebhookReceiver

TASKS = {p.parent.parent.name: p for p in sorted((ROOT / "tekton" / "task").glob("*/0.1/*.yaml"))}
TESTS = sorted((ROOT / "tekton" / "task").glob("*/0.1/tests/run.yaml"))
PIPELINE = ROOT / "tekton" / "pipeline" / "acr-ci" / "0.1" / "acr-ci.yaml"
MULTI_ARCH = ROOT / "tekton" / "pipeline" / "acr-ci-multi-arch" / "0.1" / "acr-ci-multi-arch.yaml"
PIPELINES = sorted((ROOT / "tekton" / "pipeline").glob("*/0.1/*.yaml"))
ALL_FILES = [*TASKS.values(), *PIPELINES]
VAR = re.compile(r"\$\(([^)]+)\)")
SHA = "0123456789abcdef0123456789abcdef01234567"
TIME = "2026-11-23T12:00:00Z"
HUB_CATEGORIES = frozenset({  # Tekton Hub's list (tektoncd/hub config.yaml)
    "Automation", "Build Tools", "CLI", "Cloud", "Code Quality", "Continuous Integration",
    "Deployment", "Developer Tools", "Image Build", "Integration & Delivery", "Git", "Kubernetes",
    "Messaging", "Monitoring", "Networking", "Openshift", "Publishing", "Security", "Storage",
    "Testing",
})


def test_catalog_layout() -> None:
    assert set(TASKS) == {"acr-ci-build", "acr-ci-merge", "acr-ci-run", "acr-ci-scan", "acr-ci-sign",
                          "acr-ci-sync", "acr-ci-trigger"}
    assert PIPELINES == sorted([PIPELINE, MULTI_ARCH])
    for name, path in TASKS.items():
        assert path.name == f"{name}.yaml"
        assert (path.parent / "README.md").exists(), name
        assert list((path.parent / "samples").glob("*.yaml")), name
        assert (path.parent / "tests" / "run.yaml").exists(), name  # the catalog's e2e test
        hook = path.parent / "tests" / "pre-apply-task-hook.sh"
        assert not hook.exists() or os.access(hook, os.X_OK), name
    for pipeline in PIPELINES:
        assert (pipeline.parent / "README.md").exists(), pipeline
        assert list((pipeline.parent / "samples").glob("*.yaml")), pipeline


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_catalog_labels_and_annotations(path: Path) -> None:
    doc = load_yaml(path)
    assert doc["apiVersion"] == "tekton.dev/v1"
    meta = doc["metadata"]
    assert meta["labels"]["app.kubernetes.io/version"] == path.parent.name
    for key in ("tekton.dev/pipelines.minVersion", "tekton.dev/categories", "tekton.dev/tags",
                "tekton.dev/platforms", "tekton.dev/displayName"):
        assert meta["annotations"].get(key), f"{path.name}: {key}"
    categories = {c.strip() for c in meta["annotations"]["tekton.dev/categories"].split(",")}
    assert categories <= HUB_CATEGORIES, f"{path.name}: not a Tekton Hub category: {categories - HUB_CATEGORIES}"


def test_tekton_lint_is_clean() -> None:
    everything = sorted((ROOT / "tekton").rglob("*.yaml"))  # Tasks, Pipeline, samples, tests
    assert len(everything) == len(ALL_FILES) * 2 + len(TESTS)
    assert len(TESTS) == len(TASKS)
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
        env = {e["name"]: e.get("value") or json.dumps(e["valueFrom"]) for e in step["env"]}
        via_env = {m for v in env.values() for m in re.findall(r"\$\(params\.([a-z0-9-]+)\)", v)}
        assert via_env | {"acr-ci-image"} == declared, name
        assert env["ACR_CI_PLATFORM"] == "tekton"
        for result in spec["results"]:
            assert env[f"ACR_CI_RESULT_{result['name']}"] == f"$(results.{result['name']}.path)"
        assert env["WORKSPACE_DOCKERCONFIG_BOUND"] == "$(workspaces.dockerconfig.bound)"
        assert env["WORKSPACE_SSLCERTDIR_BOUND"] == "$(workspaces.sslcertdir.bound)"
        for e in step["env"]:  # a Secret reaches the step only as an optional env value
            assert set(e) == {"name", "value"} or e["valueFrom"]["secretKeyRef"]["optional"] is True
    names = {r["name"] for r in spec["results"]}
    if name in ("acr-ci-build", "acr-ci-run"):
        assert {"IMAGE_URL", "IMAGE_DIGEST", "IMAGES", "TAGS"} <= names
        # buildah's storage on a volume of its own, as in the catalog's buildah Task
        (mount,) = step["volumeMounts"]
        assert mount == {"name": "varlibcontainers", "mountPath": "/var/lib/containers"}
        assert spec["volumes"] == [{"name": "varlibcontainers", "emptyDir": {}}]
    if name == "acr-ci-run":
        assert env["PARAM_COMMAND"] == "run" and "RECORD" in names


# -- running the step scripts ------------------------------------------------------------------


def substitute(value: str, values: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        assert key in values, f"unknown substitution $({key})"
        return values[key]

    return VAR.sub(one, value)


def run_task(name: str, params: dict[str, str], source: Path, tmp: Path,
             dockerconfig: Path | None = None, *, sslcertdir: Path | None = None,
             secrets: dict[tuple[str, str], str] | None = None,
             path_first: Path | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run the Task's step as Tekton would (see the module doc); returns the results read back.

    ``secrets``: the cluster's Secrets, ``(name, key) → value``, for ``valueFrom.secretKeyRef``
    (optional ones left out when missing, as the kubelet does); ``path_first``: a directory
    put before this Python on ``PATH`` (a stand-in ``python3``)."""
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
    values["workspaces.sslcertdir.bound"] = "true" if sslcertdir else "false"
    values["workspaces.sslcertdir.path"] = str(sslcertdir) if sslcertdir else ""
    (step,) = spec["steps"]
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "CI_", "GITLAB", "ACR_CI_", "PARAM_", "DOCKER_CONFIG"))}
    base.pop("CI", None)
    env = {**base, **{e["name"]: substitute(e["value"], values) for e in step["env"] if "value" in e}}
    for e in step["env"]:
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            found = (secrets or {}).get((substitute(ref["name"], values), substitute(ref["key"], values)))
            assert found is not None or ref.get("optional"), f"{name}: Secret for {e['name']} is missing"
            if found is not None:
                env[e["name"]] = found
    env["PATH"] = python_bin_dir() + os.pathsep + base.get("PATH", "")
    if path_first is not None:
        env["PATH"] = str(path_first) + os.pathsep + env["PATH"]
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


# -- every tag of every image: the step scripts' loops, with a stand-in python3 ---------------

FAKE_PYTHON = """#!/bin/sh
# Stands in for the image's python3: logs what the step asked for, answers by the image's
# name (".../fail..." fails, ".../blocked..." is blocked) and writes the results it would.
printf '%s|%s|%s\\n' "$*" "$PARAM_COMMAND" "$PARAM_IMAGE" >> "$FAKE_LOG"
code=0; status=succeeded; blocked=false
case "$PARAM_IMAGE" in
  *fail*) code=1; status=failed ;;
  *blocked*) code=3; status=blocked; blocked=true ;;
esac
printf '%s' "$status" > "$ACR_CI_RESULT_STATUS"
if [ -n "${ACR_CI_RESULT_BLOCKED:-}" ]; then printf '%s' "$blocked" > "$ACR_CI_RESULT_BLOCKED"; fi
exit "$code"
"""
DA = "sha256:" + "a" * 64
DB = "sha256:" + "b" * 64


def run_with_fake_python(name: str, params: dict[str, str], tmp: Path) -> tuple[int, dict[str, str], list[str]]:
    """The Task's step script with :data:`FAKE_PYTHON` as ``python3``: (exit code, results,
    one ``PARAM_IMAGE`` per acr-ci run)."""
    bin_dir = tmp / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    log = tmp / "fake.log"
    log.unlink(missing_ok=True)
    source = tmp / "source"
    source.mkdir(exist_ok=True)
    work = tmp / f"run-{len(list(tmp.glob('run-*')))}"
    work.mkdir()
    os.environ["FAKE_LOG"] = str(log)
    try:
        proc, results = run_task(name, params, source, work, path_first=bin_dir)
    finally:
        del os.environ["FAKE_LOG"]
    calls = log.read_text().splitlines() if log.exists() else []
    command = name.removeprefix("acr-ci-")
    for call in calls:
        argv, cmd, _ = call.split("|")
        assert (argv, cmd) == ("-m acr_ci.frontends.tekton", command), call
    return proc.returncode, results, [c.split("|")[2] for c in calls]


def test_sync_task_syncs_every_image(tmp_path: Path) -> None:
    images = f"reg.example:5000/team/app@{DA},reg.example:5000/team/worker@{DB}"
    code, results, seen = run_with_fake_python("acr-ci-sync", {"images": images}, tmp_path)
    assert (code, results) == (0, {"STATUS": "succeeded"})
    assert seen == [f"reg.example:5000/team/app@{DA}", f"reg.example:5000/team/worker@{DB}"]
    # a failure does not stop the others; the step ends with its exit code and STATUS
    images = f"r/fail@{DA},r/ok@{DB}"
    code, results, seen = run_with_fake_python("acr-ci-sync", {"images": images}, tmp_path)
    assert (code, results) == (1, {"STATUS": "failed"})
    assert seen == [f"r/fail@{DA}", f"r/ok@{DB}"]
    # one image, as before: the image param, one run
    code, results, seen = run_with_fake_python("acr-ci-sync", {"image": f"r/a:v1@{DA}"}, tmp_path)
    assert (code, results, seen) == (0, {"STATUS": "succeeded"}, [f"r/a:v1@{DA}"])
    # an empty list: nothing to sync
    code, results, seen = run_with_fake_python("acr-ci-sync", {"images": " , "}, tmp_path)
    assert (code, results, seen) == (0, {"STATUS": "skipped"}, [])


def test_trigger_task_announces_every_tag_pinned_to_its_digest(tmp_path: Path) -> None:
    tags = ("reg.example:5000/team/app:latest,reg.example:5000/team/app:v1.2,"
            "reg.example:5000/team/worker:v1.2,other.example/x:1")
    images = f"reg.example:5000/team/app@{DA},reg.example:5000/team/worker@{DB}"
    code, results, seen = run_with_fake_python("acr-ci-trigger", {"tags": tags, "images": images}, tmp_path)
    assert (code, results) == (0, {"STATUS": "succeeded"})
    assert seen == [
        f"reg.example:5000/team/app:latest@{DA}",
        f"reg.example:5000/team/app:v1.2@{DA}",
        f"reg.example:5000/team/worker:v1.2@{DB}",
        "other.example/x:1",  # no image for its repository: the tag alone
    ]
    code, results, seen = run_with_fake_python(
        "acr-ci-trigger", {"tags": f"r/fail:1,r/ok:2@{DB}", "images": f"r/fail@{DA}"}, tmp_path)
    assert (code, results) == (1, {"STATUS": "failed"})
    assert seen == [f"r/fail:1@{DA}", f"r/ok:2@{DB}"]


def test_scan_task_gates_every_image(tmp_path: Path) -> None:
    images = f"r/ok@{DA},r/blocked@{DB},r/also-ok@{DA}"
    code, results, seen = run_with_fake_python("acr-ci-scan", {"images": images}, tmp_path)
    assert code == 3
    assert results == {"STATUS": "blocked", "BLOCKED": "true"}
    assert seen == [f"r/ok@{DA}", f"r/blocked@{DB}", f"r/also-ok@{DA}"]
    code, results, seen = run_with_fake_python("acr-ci-scan", {"images": f"r/ok@{DA}"}, tmp_path)
    assert (code, results, seen) == (0, {"STATUS": "succeeded", "BLOCKED": "false"}, [f"r/ok@{DA}"])
    # a report belongs to one image
    code, results, seen = run_with_fake_python(
        "acr-ci-scan", {"images": f"r/ok@{DA}", "report": "trivy.json"}, tmp_path)
    assert (code, results, seen) == (2, {"STATUS": "error"}, [])


def test_pipeline_hands_every_image_and_tag_on() -> None:
    spec = load_yaml(PIPELINE)["spec"]
    tasks = {t["name"]: t for t in spec["tasks"]}
    params = {name: {p["name"]: p["value"] for p in t["params"]} for name, t in tasks.items()}
    images, tags = "$(tasks.build.results.IMAGES)", "$(tasks.build.results.TAGS)"
    assert params["scan"]["images"] == images and "image" not in params["scan"]
    assert params["sync"]["images"] == images and "image" not in params["sync"]
    assert params["trigger"]["tags"] == tags and params["trigger"]["images"] == images
    assert "image" not in params["trigger"]
    assert "IMAGE_URL" not in json.dumps([params[n] for n in ("scan", "sync", "trigger")])
    for name in ("scan", "sync", "trigger"):
        assert tasks[name]["when"] == [{"input": images, "operator": "notin", "values": [""]}]
        bound = {w["name"] for w in tasks[name]["workspaces"]}
        assert bound == {"source", "dockerconfig", "sslcertdir"}
    declared = {name: {p["name"] for p in load_yaml(TASKS[f"acr-ci-{name}"])["spec"]["params"]}
                for name in ("build", "scan", "sync", "trigger")}
    for name, given in params.items():
        assert set(given) <= declared[name], name


# -- what prepare_env does with the sslcertdir workspace and the trigger Secret --------------


def test_trigger_secret_goes_to_the_variable_the_config_names() -> None:
    from acr_ci.errors import UsageError
    from acr_ci.frontends.tekton import prepare_env

    env = {"PARAM_SECRET_ENV": "DEPLOY_HOOK_SECRET", "ACR_CI_TRIGGER_SECRET": "s3cret"}
    prepare_env(env)
    assert env == {"PARAM_SECRET_ENV": "DEPLOY_HOOK_SECRET", "DEPLOY_HOOK_SECRET": "s3cret"}
    env = {"PARAM_SECRET_ENV": "DEPLOY_HOOK_SECRET"}  # the optional Secret is missing
    prepare_env(env)
    assert "DEPLOY_HOOK_SECRET" not in env
    env = {"PARAM_SECRET_ENV": "", "ACR_CI_TRIGGER_SECRET": "s3cret"}
    prepare_env(env)
    assert env == {"PARAM_SECRET_ENV": ""}
    with pytest.raises(UsageError) as info:
        prepare_env({"PARAM_SECRET_ENV": "X;rm -rf /", "ACR_CI_TRIGGER_SECRET": "s3cret"})
    assert "s3cret" not in info.value.diagnostics()


def test_sslcertdir_joins_the_ca_bundle(tmp_path: Path) -> None:
    import ssl

    import certifi
    from tests.registry.test_reg_tls import self_signed

    from acr_ci.frontends.tekton import prepare_env

    certs = tmp_path / "sslcertdir"
    certs.mkdir()
    cert, _ = self_signed(tmp_path)
    shutil.copy(cert, certs / "ca.crt")
    (certs / "README").write_text("not a certificate")
    env = {"WORKSPACE_SSLCERTDIR_BOUND": "true", "WORKSPACE_SSLCERTDIR_PATH": str(certs)}
    prepare_env(env, tmp_path)
    bundle = Path(env["REQUESTS_CA_BUNDLE"])
    assert bundle.parent == tmp_path
    assert env["SSL_CERT_DIR"] == f"{certs}{os.pathsep}/etc/ssl/certs"
    default = ssl.create_default_context(cafile=certifi.where()).cert_store_stats()["x509_ca"]
    joined = ssl.create_default_context(cafile=str(bundle)).cert_store_stats()["x509_ca"]
    assert joined == default + 1  # every public CA, and the workspace's
    unbound = {"WORKSPACE_SSLCERTDIR_BOUND": "false", "WORKSPACE_SSLCERTDIR_PATH": ""}
    prepare_env(unbound)
    assert "REQUESTS_CA_BUNDLE" not in unbound


# -- the list Tasks against real registries ---------------------------------------------------


@pytest.mark.registry
@pytest.mark.e2e
def test_sync_and_trigger_tasks_cover_every_tag_of_every_image(
    registry_factory: Any, oci_layout_factory: Any, tmp_path: Path
) -> None:
    """As the Pipeline runs them: IMAGES to sync, TAGS + IMAGES to trigger; the mirror's
    credentials from a ``kubernetes.io/dockerconfigjson`` Secret mounted as it is (only
    ``.dockerconfigjson``), the trigger's signing secret from a Secret."""
    import base64
    import hashlib
    import hmac

    target = registry_factory("plain")
    mirror = registry_factory("basic")
    user, password = mirror.credentials
    secret_mount = tmp_path / "dockerconfig"
    secret_mount.mkdir()
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (secret_mount / ".dockerconfigjson").write_text(json.dumps({"auths": {mirror.host: {"auth": auth}}}))
    app, worker = f"{target.host}/demo/app", f"{target.host}/demo/worker"
    layouts = [oci_layout_factory(platforms=["linux/amd64"], seed=s) for s in (21, 22)]
    for tag in ("v1", "latest"):
        push_layout_with_skopeo(layouts[0].path, f"{app}:{tag}")
    push_layout_with_skopeo(layouts[1].path, f"{worker}:v1")
    d_app, d_worker = digest_at(target, "demo/app", "v1"), digest_at(target, "demo/worker", "v1")
    assert d_app and d_worker and digest_at(target, "demo/app", "latest") == d_app
    receiver = WebhookReceiver().start()
    try:
        source = tmp_path / "source"
        source.mkdir()
        write_config(source, app, extra=f"""sync:
  - name: vault
    to: {mirror.host}/vault
triggers:
  - name: deploy
    url: {receiver.url("/deploy")}
    on: all
    secret_env: DEPLOY_HOOK_SECRET
""")
        images = f"{app}@{d_app},{worker}@{d_worker}"
        tags = f"{app}:v1,{app}:latest,{worker}:v1"

        proc, results = run_task("acr-ci-sync", {"images": images}, source, tmp_path,
                                 dockerconfig=secret_mount)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert results == {"STATUS": "succeeded"}
        assert digest_at(mirror, "vault/app", "v1") == d_app
        assert digest_at(mirror, "vault/app", "latest") == d_app
        assert digest_at(mirror, "vault/worker", "v1") == d_worker

        proc, results = run_task(
            "acr-ci-trigger",
            {"tags": tags, "images": images, "secret-env": "DEPLOY_HOOK_SECRET",
             "secret-name": "deploy-hook", "secret-key": "hmac"},
            source, tmp_path, secrets={("deploy-hook", "hmac"): "hook-secret"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert results == {"STATUS": "succeeded"}
        assert len(receiver.requests) == 3
        for request in receiver.requests:
            mac = hmac.new(b"hook-secret", request.body, hashlib.sha256).hexdigest()
            assert request.headers["x-acr-ci-signature"] == f"sha256={mac}"
        announced = sorted(request.body.decode() for request in receiver.requests)
        for tag, digest in (("v1", d_app), ("latest", d_app), ("v1", d_worker)):
            assert any(f'"{tag}"' in body and digest in body for body in announced), (tag, digest)
        assert "hook-secret" not in proc.stdout + proc.stderr
    finally:
        receiver.stop()


@pytest.mark.registry
@pytest.mark.e2e
def test_run_task_runs_the_chain_and_a_build_without_push_gives_chains_nothing(
    busybox_base: BaseImage, buildah_env: Path, registry: RegistryServer, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT / "examples" / "hello", source / "hello")
    image = f"{registry.host}/demo/tekton-run"
    write_config(source, image, base=busybox_base.ref)
    # accelerate: "true" without accelerate: in the config: the twins, and their digest
    proc, results = run_task("acr-ci-run", {"ref": "refs/heads/main", "sha": SHA, "time": TIME,
                                            "record": "out/record.json", "accelerate": "true"},
                             source, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    digest = digest_at(registry, "demo/tekton-run", "latest")
    assert digest is not None and digest_at(registry, "demo/tekton-run", SHA[:6]) == digest
    twin = digest_at(registry, "demo/tekton-run", "latest_accelerated")
    assert twin is not None and twin != digest
    assert digest_at(registry, "demo/tekton-run", f"{SHA[:6]}_accelerated") == twin
    assert results == {
        "ACCELERATED_DIGEST": twin,
        "IMAGE_DIGEST": digest,
        "IMAGE_URL": f"{image}:latest",
        "IMAGES": f"{image}@{digest}",
        "TAGS": f"{image}:latest,{image}:{SHA[:6]}",
        "BLOCKED": "false",
        "STATUS": "succeeded",
        "RECORD": "out/record.json",
    }
    record = json.loads((source / "out" / "record.json").read_text())
    assert record["status"] == "succeeded"

    unpushed = f"{registry.host}/demo/tekton-local"
    write_config(source, unpushed, base=busybox_base.ref)
    (tmp_path / "no-push").mkdir()
    proc, results = run_task("acr-ci-build", {"ref": "refs/heads/main", "sha": SHA, "time": TIME,
                                              "push": "false"}, source, tmp_path / "no-push")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert results == {"TAGS": f"{unpushed}:latest,{unpushed}:{SHA[:6]}", "STATUS": "succeeded"}
    assert digest_at(registry, "demo/tekton-local", "latest") is None


def table_names(readme: Path, heading: str) -> set[str]:
    """The first column's `names` of the table under ``## heading`` in a README."""
    text = readme.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.M))


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_readmes_list_what_is_declared(path: Path) -> None:
    """Each README's results, params and workspaces are exactly the ones the file declares."""
    spec = load_yaml(path)["spec"]
    readme = path.parent / "README.md"
    assert table_names(readme, "Params") == {p["name"] for p in spec["params"]}
    assert table_names(readme, "Workspaces") == {w["name"] for w in spec["workspaces"]}
    if spec.get("results") or "## Results\n" in readme.read_text():
        assert table_names(readme, "Results") == {r["name"] for r in spec.get("results", [])}


# -- one node per architecture: acr-ci-multi-arch ------------------------------------------

MULTI_ARCH_RUN = MULTI_ARCH.parent / "samples" / "run.yaml"


def pipeline_tasks(path: Path) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in load_yaml(path)["spec"]["tasks"]}


def test_multi_arch_pipeline_builds_each_platform_by_digest_then_merges() -> None:
    tasks = pipeline_tasks(MULTI_ARCH)
    params = {name: {p["name"]: p["value"] for p in t["params"]} for name, t in tasks.items()}
    builds = sorted(n for n, t in tasks.items() if t["taskRef"]["name"] == "acr-ci-build")
    assert builds == ["build-amd64", "build-arm64"]
    for name in builds:
        assert params[name]["platforms"] == "linux/" + name.removeprefix("build-")
        assert params[name]["push-by-digest"] == "true"
    merge = tasks["merge"]
    assert merge["taskRef"]["name"] == "acr-ci-merge"
    digests = params["merge"]["digests"].split()
    assert digests == [f"$(tasks.{n}.results.DIGESTS)" for n in builds]  # one line each
    assert merge["when"] == [{"input": f"$(tasks.{n}.results.DIGESTS)", "operator": "notin",
                              "values": [""]} for n in builds]
    images, tags = "$(tasks.merge.results.IMAGES)", "$(tasks.merge.results.TAGS)"
    assert params["scan"]["images"] == images and params["sync"]["images"] == images
    assert params["trigger"]["tags"] == tags and params["trigger"]["images"] == images
    assert "tasks.build" not in json.dumps([tasks[n] for n in ("scan", "sync", "trigger")])
    results = {r["name"]: r["value"] for r in load_yaml(MULTI_ARCH)["spec"]["results"]}
    assert all(v.startswith("$(tasks.merge.results.") for v in results.values())
    for name, given in params.items():
        declared = {p["name"] for p in load_yaml(TASKS[tasks[name]["taskRef"]["name"]])["spec"]["params"]}
        assert set(given) <= declared, name
    # the Pipeline itself pins no node: that is the PipelineRun's choice
    assert "nodeSelector" not in MULTI_ARCH.read_text()


def test_multi_arch_pipeline_run_pins_each_build_to_its_architecture() -> None:
    import jsonschema

    doc = load_yaml(MULTI_ARCH_RUN)
    assert doc["kind"] == "PipelineRun" and doc["spec"]["pipelineRef"]["name"] == "acr-ci-multi-arch"
    validator = jsonschema.Draft4Validator(strict_schema("v1.PipelineRunSpec"))
    errors = list(validator.iter_errors(doc["spec"]))
    assert errors == [], "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    tasks = pipeline_tasks(MULTI_ARCH)
    pinned = {s["pipelineTaskName"]: s["podTemplate"]["nodeSelector"] for s in doc["spec"]["taskRunSpecs"]}
    platforms = {n: {p["name"]: p["value"] for p in t["params"]}.get("platforms") for n, t in tasks.items()}
    assert set(pinned) == {n for n, p in platforms.items() if p}
    for name, selector in pinned.items():
        assert selector == {"kubernetes.io/arch": platforms[name].removeprefix("linux/")}
    declared = {p["name"] for p in load_yaml(MULTI_ARCH)["spec"]["params"]}
    assert {p["name"] for p in doc["spec"]["params"]} <= declared


def test_multi_arch_pipeline_hands_each_builds_digests_to_the_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Pipeline played out: each build Task's step (the real front end, up to the
    command's options: :data:`~tests.frontends.frontend_support.RECORDER`) appends its
    digests line to its ``DIGESTS`` result; the merge Task gets both results through its
    ``digests`` param and hands ``acr-ci merge`` one file holding both."""
    log = tmp_path / "recorder.log"
    monkeypatch.setenv("RECORDER_LOG", str(log))
    fake = recorder_bin(tmp_path / "bin")
    source = tmp_path / "source"
    source.mkdir()
    spec = load_yaml(MULTI_ARCH)["spec"]
    run_params = {p["name"]: p["value"] for p in load_yaml(MULTI_ARCH_RUN)["spec"]["params"]}
    values = {f"params.{p['name']}": run_params.get(p["name"], p.get("default", "")) for p in spec["params"]}
    tasks = pipeline_tasks(MULTI_ARCH)
    for name in ("build-amd64", "build-arm64"):
        given = {p["name"]: substitute(p["value"], values) for p in tasks[name]["params"]}
        work = tmp_path / name
        work.mkdir()
        proc, results = run_task("acr-ci-build", given, source, work, path_first=fake)
        assert proc.returncode == 0, proc.stderr
        values[f"tasks.{name}.results.DIGESTS"] = results["DIGESTS"].rstrip("\n")
    builds = recorded(log)
    assert [(b["command"], b["options"]["platforms"], b["options"]["push_by_digest"],
             b["options"]["push"]) for b in builds] == [
        ("build", ["linux/amd64"], True, False), ("build", ["linux/arm64"], True, False)]
    given = {p["name"]: substitute(p["value"], values) for p in tasks["merge"]["params"]}
    work = tmp_path / "merge"
    work.mkdir()
    proc, _ = run_task("acr-ci-merge", given, source, work, path_first=fake)
    assert proc.returncode == 0, proc.stderr
    merge = recorded(log)[-1]
    assert merge["command"] == "merge"
    (text,) = merge["files"].values()
    assert sorted(json.loads(line)["platform"] for line in text.splitlines() if line) == [
        "linux/amd64", "linux/arm64"]


def test_build_task_without_a_matching_rule_still_writes_digests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty DIGESTS result (nothing built) lets the Pipeline skip the merge instead of
    failing on a result that was never written."""
    monkeypatch.setenv("RECORDER_LOG", str(tmp_path / "recorder.log"))
    fake = recorder_bin(tmp_path / "bin")
    source = tmp_path / "source"
    source.mkdir()
    proc, results = run_task("acr-ci-build", {"push-by-digest": "true", "platforms": "linux/amd64"},
                             source, tmp_path, path_first=fake)
    assert proc.returncode == 0, proc.stderr
    assert results["DIGESTS"].count("\n") == 1  # the recorder's one line
    from acr_ci.frontends import tekton

    result = tmp_path / "DIGESTS"
    env = {"PARAM_COMMAND": "build", "PARAM_PUSH_BY_DIGEST": "true", "PARAM_CONFIG": str(tmp_path / "none.yml"),
           "ACR_CI_RESULT_DIGESTS": str(result), "ACR_CI_RESULT_STATUS": str(tmp_path / "STATUS")}
    assert tekton.main(env) == 2  # no config: nothing built, the result exists all the same
    assert result.exists() and result.read_text() == ""
