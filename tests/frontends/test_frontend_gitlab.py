"""The GitLab CI/CD component: its spec, and a real pipeline run with gitlab-ci-local.

gitlab-ci-local (npm, 4.65.0) runs ``examples/gitlab/.gitlab-ci.yml`` in a throwaway git
repository laid out like this one: the example includes ``gitlab/templates/acr-ci.yml``
through ``include: local`` with ``inputs:``, twice (a ``run`` job and a ``scan`` job).
``--force-shell-executor`` runs the jobs on this machine instead of in their image (the
component's jobs name one, so ``--shell-executor-no-image`` alone would ask Docker), with
this test's Python first on ``PATH`` (its ``python3`` runs this checkout's acr-ci). The
build is real (buildah), the registry is real; the ``run`` job's dotenv artifact must
hold the digest the registry serves, and the ``scan`` job (which reads that dotenv) must
leave a ``container_scanning`` report valid against GitLab's schema 15.2.4.
(``include: component:`` needs a GitLab server and cannot resolve here.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

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
from tests.support.buildenv import BaseImage

TEMPLATE = ROOT / "gitlab" / "templates" / "acr-ci.yml"
EXAMPLE = ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"
MULTI_ARCH = ROOT / "examples" / "gitlab" / "multi-arch.gitlab-ci.yml"
INPUT_REF = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")


def template_parts() -> tuple[dict[str, object], str]:
    header, _, body = TEMPLATE.read_text().partition("\n---\n")
    spec = load_yaml_text(header)
    return spec, body


def load_yaml_text(text: str) -> dict[str, object]:
    from ruamel.yaml import YAML

    doc = YAML(typ="safe", pure=True).load(text)
    assert isinstance(doc, dict)
    return doc


def test_component_inputs_are_typed_defaulted_described_and_all_used() -> None:
    spec, body = template_parts()
    inputs = spec["spec"]["inputs"]  # type: ignore[index]
    assert isinstance(inputs, dict)
    used = set(INPUT_REF.findall(body))
    assert used == set(inputs), f"declared but unused: {set(inputs) - used}; unknown: {used - set(inputs)}"
    for name, entry in inputs.items():
        assert re.fullmatch(r"[a-z][a-z0-9-]*", name), f"{name}: kebab-case like the others"
        assert entry.get("description"), name
        assert "default" in entry, f"{name}: every input has a default"
        if isinstance(entry["default"], bool):
            assert entry.get("type") == "boolean", name
        if "options" in entry:
            assert entry["default"] in entry["options"], name
        if "regex" in entry:
            assert re.search(entry["regex"], str(entry["default"])), name
    from acr_ci.frontends import COMMANDS

    assert set(inputs["command"]["options"]) == set(COMMANDS)
    assert ":latest" not in TEMPLATE.read_text()


def test_component_job_holds_no_logic_and_publishes_reports() -> None:
    _, body = template_parts()
    jobs = load_yaml_text(body)
    ((name, job),) = jobs.items()
    assert name == "$[[ inputs.job-name ]]"
    assert isinstance(job, dict)
    assert job["script"] == ["python3 -m acr_ci.frontends.gitlab"]  # no input in shell text
    variables = job["variables"]
    assert variables["ACR_CI_PLATFORM"] == "gitlab"
    for key, value in variables.items():
        assert key.startswith("ACR_CI_") and isinstance(value, str), key
    reports = job["artifacts"]["reports"]
    assert set(reports) == {"dotenv", "container_scanning"}
    assert job["artifacts"]["when"] == "always"
    assert job["image"]["entrypoint"] == [""]
    defaults = template_parts()[0]["spec"]["inputs"]  # type: ignore[index]
    assert defaults["registry-user"]["default"] == "$CI_REGISTRY_USER"
    assert defaults["registry-password"]["default"] == "$CI_REGISTRY_PASSWORD"


def test_component_project_layout() -> None:
    readme = (ROOT / "gitlab" / "README.md").read_text()
    assert "\n## Components\n" in readme
    assert (ROOT / "gitlab" / "templates" / "acr-ci.md").exists()
    example = load_yaml(EXAMPLE)
    locals_ = [inc for inc in example["include"] if "local" in inc]
    assert len(locals_) == 2 and all(inc["local"] == "gitlab/templates/acr-ci.yml" for inc in locals_)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})


@pytest.mark.registry
@pytest.mark.e2e
def test_gitlab_ci_local_runs_the_example_with_the_component(
    busybox_base: BaseImage, buildah_env: Path, registry: RegistryServer, tmp_path: Path
) -> None:
    gcl = tool("gitlab-ci-local")
    tool("rsync")
    repo = tmp_path / "project"
    (repo / "gitlab" / "templates").mkdir(parents=True)
    shutil.copy(TEMPLATE, repo / "gitlab" / "templates" / "acr-ci.yml")
    shutil.copy(EXAMPLE, repo / ".gitlab-ci.yml")
    shutil.copytree(ROOT / "examples" / "hello", repo / "hello")
    (repo / "trivy.json").write_text(json.dumps({
        "SchemaVersion": 2, "ArtifactName": "hello", "ArtifactType": "container_image",
        "Results": [{"Target": "hello", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
            {"VulnerabilityID": "CVE-2023-0002", "PkgName": "busybox", "InstalledVersion": "1.36",
             "FixedVersion": "1.37", "Severity": "MEDIUM"}]}],
    }))
    image = f"{registry.host}/demo/gl-component"
    (repo / ".acr-ci.yml").write_text(f"""version: 1
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
      args: {{BASE: "{busybox_base.ref}"}}
scan:
  engine: report
  report: trivy.json
  block: {{severity: high}}
""")
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    git(repo, "remote", "add", "origin", "https://gitlab.example.com/acme/app.git")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "app")
    sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                         text=True, check=True).stdout.strip()

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "CI_", "GITLAB", "ACR_CI_"))}
    env.pop("CI", None)
    env["PATH"] = python_bin_dir() + os.pathsep + env.get("PATH", "")
    p = subprocess.run([gcl, "--force-shell-executor", "--shell-executor-no-image", "--no-color"], cwd=repo, env=env,
                       capture_output=True, text=True, timeout=900)
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-5000:]
    assert "PASS  build-image" in log and "PASS  scan-image" in log, log[-3000:]

    digest = digest_at(registry, "demo/gl-component", "latest")
    assert digest is not None
    assert digest_at(registry, "demo/gl-component", sha[:6]) == digest

    artifacts = repo / ".gitlab-ci-local" / "artifacts"
    dotenv = artifacts / "build-image" / ".gitlab-ci-reports" / "dotenv" / "acr-ci.env"
    values = dict(line.split("=", 1) for line in dotenv.read_text().splitlines())
    assert values["ACR_CI_DIGEST"] == digest
    assert values["ACR_CI_IMAGE"] == f"{image}@{digest}"
    assert values["ACR_CI_TAGS"] == f"{image}:latest,{image}:{sha[:6]}"
    assert values["ACR_CI_STATUS"] == "succeeded" and values["ACR_CI_BLOCKED"] == "false"
    record = json.loads((repo / "acr-ci-record.json").read_text())
    assert record["ref"]["source"] == "gitlab" and record["ref"]["sha"] == sha

    scan_env = artifacts / "scan-image" / ".gitlab-ci-reports" / "dotenv" / "acr-ci.env"
    scanned = dict(line.split("=", 1) for line in scan_env.read_text().splitlines())
    assert scanned["ACR_CI_DIGEST"] == digest  # the scan job got the image from the dotenv
    # every job writes the record artifact it declares; the scan job's has its own name, so
    # the run record above is still the build job's
    job_record = json.loads((repo / "acr-ci-scan-record.json").read_text())
    assert job_record["command"] == "scan" and job_record["outputs"]["digest"] == digest
    # gitlab-ci-local collects only dotenv reports; the shell executor ran the scan job in
    # the project directory, so its container_scanning report is there
    report = json.loads((repo / "gl-container-scanning-report.json").read_text())
    ids = {i["value"] for v in report["vulnerabilities"] for i in v["identifiers"]}
    assert "CVE-2023-0002" in ids
    assert {v["location"]["image"] for v in report["vulnerabilities"]} == {f"{image}@{digest}"}
    import jsonschema

    schema_file = SCHEMAS / "gitlab-container-scanning-report-15.2.4.schema.json"
    errors = list(jsonschema.Draft7Validator(json.loads(schema_file.read_text())).iter_errors(report))
    assert errors == [], errors[0].message


def test_component_project_ships_license_pipeline_and_release(tmp_path: Path) -> None:
    from acr_ci import config as config_mod

    for license_file in (ROOT / "LICENSE", ROOT / "gitlab" / "LICENSE"):
        text = license_file.read_text()
        assert "Apache License" in text and "Version 2.0, January 2004" in text
        assert "END OF TERMS AND CONDITIONS" in text
    pipeline_file = ROOT / "gitlab" / ".gitlab-ci.yml"
    pipeline = load_yaml(pipeline_file)
    (component,) = [inc for inc in pipeline["include"] if "component" in inc]
    assert component["component"] == "$CI_SERVER_FQDN/$CI_PROJECT_PATH/acr-ci@$CI_COMMIT_SHA"
    assert component["inputs"]["config"] == "tests/acr-ci.yml"
    config_mod.load(str(ROOT / "gitlab" / "tests" / "acr-ci.yml"))  # the config it plans with
    (release,) = [job for job in pipeline.values() if isinstance(job, dict) and "release" in job]
    assert release["release"]["tag_name"] == "$CI_COMMIT_TAG"
    assert any("$CI_COMMIT_TAG" in r["if"] for r in release["rules"])
    assert ":latest" not in pipeline_file.read_text()
    # GitLab's CI schema (vendored by check-jsonschema); `include: component:` itself
    # resolves only on a GitLab server
    checker = tool("check-jsonschema")
    p = subprocess.run(
        [checker, "--builtin-schema", "vendor.gitlab-ci", str(pipeline_file), str(EXAMPLE),
         str(MULTI_ARCH)],
        capture_output=True, text=True, check=False,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_multi_arch_example_runs_one_build_job_per_runner_architecture() -> None:
    example = load_yaml(MULTI_ARCH)
    build = example["build-image"]
    legs = build["parallel"]["matrix"]
    assert [(leg["ARCH"], leg["RUNNER_TAG"]) for leg in legs] == [
        ("amd64", "saas-linux-small-amd64"), ("arm64", "saas-linux-small-arm64")]
    assert build["tags"] == ["$RUNNER_TAG"]  # each job on a runner of its architecture
    assert example["merge-image"]["needs"] == [{"job": "build-image", "artifacts": True}]
    included = {inc["inputs"]["job-name"]: inc["inputs"] for inc in example["include"]}
    assert included["build-image"]["command"] == "build"
    assert included["build-image"]["platforms"] == "linux/$ARCH"
    assert included["merge-image"]["command"] == "merge"
    spec = template_parts()[0]["spec"]["inputs"]  # type: ignore[index]
    for inputs in included.values():
        assert set(inputs) <= set(spec), set(inputs) - set(spec)
    # the digests file is an artifact of the component's job, named after the job
    _, body = template_parts()
    (job,) = load_yaml_text(body).values()
    assert "$[[ inputs.digests-file ]]" in job["artifacts"]["paths"]  # type: ignore[index]
    assert "$CI_JOB_ID" in spec["digests-file"]["default"]


@pytest.mark.e2e
def test_gitlab_ci_local_passes_each_matrix_jobs_digests_to_the_merge_job(tmp_path: Path) -> None:
    """gitlab-ci-local runs the multi-arch example with the component (``include: local``):
    every job's script runs the real front end up to the command's typed options
    (:data:`~tests.frontends.frontend_support.RECORDER` stands in for ``python3``); each
    build job appends its line to its own digests file, which becomes its artifact, and
    the merge job gets both files through ``needs:``."""
    gcl = tool("gitlab-ci-local")
    tool("rsync")
    repo = tmp_path / "project"
    (repo / "gitlab" / "templates").mkdir(parents=True)
    shutil.copy(TEMPLATE, repo / "gitlab" / "templates" / "acr-ci.yml")
    shutil.copy(MULTI_ARCH, repo / ".gitlab-ci.yml")
    (repo / ".acr-ci.yml").write_text("version: 1\nimage: registry.example/team/app\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    git(repo, "remote", "add", "origin", "https://gitlab.example.com/acme/app.git")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "app")
    log = tmp_path / "recorder.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "CI_", "GITLAB", "ACR_CI_"))}
    env.pop("CI", None)
    env["RECORDER_LOG"] = str(log)
    env["PATH"] = str(recorder_bin(tmp_path / "bin")) + os.pathsep + env.get("PATH", "")
    p = subprocess.run([gcl, "--force-shell-executor", "--shell-executor-no-image", "--no-color"],
                       cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-5000:]
    jobs = recorded(log)
    builds = sorted((j for j in jobs if j["command"] == "build"), key=lambda j: j["options"]["platforms"])
    assert [(j["options"]["platforms"], j["options"]["push_by_digest"], j["options"]["push"])
            for j in builds] == [(["linux/amd64"], True, False), (["linux/arm64"], True, False)]
    files = [j["options"]["digests_file"] for j in builds]
    assert all(re.fullmatch(r"acr-ci-digests-[0-9]+\.jsonl", f) for f in files), files
    assert len(set(files)) == 2  # one per job: no artifact overwrites another
    artifacts = repo / ".gitlab-ci-local" / "artifacts"
    for job, name in zip(builds, files, strict=True):
        (kept,) = artifacts.glob(f"build-image*/{name}")  # the job's artifact holds its file
        assert json.loads(kept.read_text())["platform"] == job["options"]["platforms"][0]
    (merge,) = [j for j in jobs if j["command"] == "merge"]
    assert merge["options"]["files"] == sorted(files)  # the pattern, expanded in the job
    platforms = sorted(json.loads(text)["platform"] for text in merge["files"].values())
    assert platforms == ["linux/amd64", "linux/arm64"]
    assert merge["job"] == "merge-image" and "PASS  merge-image" in out
