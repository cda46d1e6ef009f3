"""The GitLab front end as a job runs it, against real basic-auth registries.

``$CI_REGISTRY`` is one loopback registry (user ``gitlab-ci-token``, the job token as
password); the config's ``image:`` lives on another one with its own user. The job token
must reach ``$CI_REGISTRY`` and never the other registry: docker-registry logs
``error authenticating user "NAME"`` for every basic credential it refuses, so the other
registry's log names every user that was sent to it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jsonschema
import pytest
from tests.frontends.frontend_support import SCHEMAS
from tests.support import RegistryServer
from tests.support.buildenv import BaseImage
from tests.support.layout import make_layout

from acr_ci.frontends import gitlab
from acr_ci.registry.auth import Credentials, StaticCredentials
from acr_ci.registry.client import Client
from acr_ci.registry.reference import Reference

JOB_USER = "gitlab-ci-token"
JOB_TOKEN = "glcbt-job-token-0123456789"
SCHEMA = SCHEMAS / "gitlab-container-scanning-report-15.2.4.schema.json"
TRIVY = {
    "SchemaVersion": 2,
    "ArtifactName": "app",
    "ArtifactType": "container_image",
    "Results": [
        {
            "Target": "app (debian 12)",
            "Class": "os-pkgs",
            "Type": "debian",
            "Vulnerabilities": [
                {
                    "VulnerabilityID": "CVE-2023-0002",
                    "PkgName": "busybox",
                    "InstalledVersion": "1.36",
                    "FixedVersion": "1.37",
                    "Severity": "MEDIUM",
                }
            ],
        }
    ],
}


def push(server: RegistryServer, repo: str, layout: Path) -> str:
    creds = server.credentials
    assert creds is not None
    source = StaticCredentials(Credentials(*creds), frozenset({server.host}))
    with Client(credentials=source) as client:
        ref = Reference.parse(f"{server.host}/{repo}:1.0")
        return client.push_layout(layout, ref, ["1.0"]).digest


def job_env(workdir: Path, ci_registry: str, **inputs: str) -> dict[str, str]:
    """A GitLab job's variables: the predefined ones and the component's inputs."""
    env = dict(
        GITLAB_CI="true",
        ACR_CI_PLATFORM="gitlab",
        CI_COMMIT_BRANCH="main",
        CI_COMMIT_SHA="0123456789abcdef0123456789abcdef01234567",
        CI_PIPELINE_CREATED_AT="2026-11-23T10:00:00Z",
        CI_PROJECT_PATH="acme/app",
        CI_REGISTRY=ci_registry,
        CI_REGISTRY_USER=JOB_USER,
        CI_REGISTRY_PASSWORD=JOB_TOKEN,
        CI_JOB_TOKEN=JOB_TOKEN,
        DOCKER_CONFIG=str(workdir / "no-docker-config"),
        ACR_CI_DOTENV=str(workdir / "acr-ci.env"),
        # the template's defaults, as GitLab expands them
        ACR_CI_INPUT_CONFIG=str(workdir / ".acr-ci.yml"),
        ACR_CI_INPUT_RECORD=str(workdir / "acr-ci-record.json"),
        ACR_CI_INPUT_CONTAINER_SCANNING_REPORT=str(workdir / "gl-container-scanning-report.json"),
        ACR_CI_INPUT_REGISTRY_USER=JOB_USER,
        ACR_CI_INPUT_REGISTRY_PASSWORD=JOB_TOKEN,
    )
    env.update({gitlab.var(k.replace("_", "-")): v for k, v in inputs.items()})
    return env


def run_job(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> int:
    """``python -m acr_ci.frontends.gitlab`` in a job with exactly ``env``'s CI variables."""
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "CI_", "GITLAB", "ACR_CI_")) or name in (
            "CI",
            "DOCKER_CONFIG",
        ):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return gitlab.main()


def dotenv(env: dict[str, str]) -> dict[str, str]:
    text = Path(env["ACR_CI_DOTENV"]).read_text()
    return dict(line.split("=", 1) for line in text.splitlines())


def users_refused(server: RegistryServer) -> str:
    return "\n".join(
        line for line in server.log_path.read_text().splitlines() if "error authenticating" in line
    )


def assert_valid_report(path: Path) -> dict[str, object]:
    report = json.loads(path.read_text())
    errors = list(jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(report))
    assert errors == [], errors[0].message
    assert isinstance(report, dict)
    return report


@pytest.fixture
def registries(registry_factory: object) -> tuple[RegistryServer, RegistryServer]:
    make = registry_factory
    ci = make("basic", username=JOB_USER, password=JOB_TOKEN)  # type: ignore[operator]
    other = make("basic", username="other-user")  # type: ignore[operator]
    return ci, other


@pytest.mark.registry
def test_the_job_token_reaches_ci_registry_and_never_another_registry(
    registries: tuple[RegistryServer, RegistryServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ci, other = registries
    layout = make_layout(tmp_path / "layout", platforms=["linux/amd64"], layer_sizes=[64], seed=7)
    ci_digest = push(ci, "acme/app", layout.path)
    push(other, "team/app", layout.path)
    (tmp_path / "trivy.json").write_text(json.dumps(TRIVY))
    (tmp_path / ".acr-ci.yml").write_text(
        f"version: 1\nimage: {other.host}/team/app\n"
        "build:\n  rules:\n    - {name: main, type: branch, match: main, tags: [latest]}\n"
        f"scan:\n  engine: report\n  report: {tmp_path / 'trivy.json'}\n"
    )

    # the config's image, on the other registry, with the component's default credentials
    env = job_env(tmp_path, ci.host, command="scan", image=f"{other.host}/team/app:1.0")
    assert run_job(monkeypatch, env) == 1
    assert dotenv(env)["ACR_CI_STATUS"] == "failed"
    log = other.log_path.read_text()
    assert "/v2/team/app/manifests/1.0" in log  # acr-ci did ask it, with no credentials
    assert JOB_USER not in log and users_refused(other) == ""
    assert JOB_TOKEN not in log

    # the project's registry gets the token (explicitly named or not)
    env = job_env(tmp_path, ci.host, command="scan", image=f"{ci.host}/acme/app:1.0")
    assert run_job(monkeypatch, env) == 0
    assert dotenv(env)["ACR_CI_DIGEST"] == ci_digest
    assert "authorized request" in ci.log_path.read_text() and users_refused(ci) == ""
    report = assert_valid_report(tmp_path / "gl-container-scanning-report.json")
    vulns = report["vulnerabilities"]
    assert isinstance(vulns, list)
    assert {v["location"]["image"] for v in vulns} == {f"{ci.host}/acme/app:1.0@{ci_digest}"}
    job_record = json.loads((tmp_path / "acr-ci-record.json").read_text())
    assert job_record["command"] == "scan" and job_record["outputs"]["digest"] == ci_digest

    # other credentials given as inputs are not the job token: they go where the config points
    env = job_env(
        tmp_path,
        ci.host,
        command="scan",
        image=f"{other.host}/team/app:1.0",
        registry_user=other.username,
        registry_password=other.password,
    )
    assert run_job(monkeypatch, env) == 0
    assert JOB_USER not in other.log_path.read_text() and users_refused(other) == ""


@pytest.mark.parametrize("image", ["", "$ACR_CI_IMAGE", "${ACR_CI_IMAGE}"])
def test_a_scan_without_its_image_stops_with_exit_2(
    image: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "trivy.json").write_text(json.dumps(TRIVY))
    env = job_env(tmp_path, "registry.example.com", command="scan", image=image)
    env["ACR_CI_INPUT_REPORT"] = str(tmp_path / "trivy.json")
    assert run_job(monkeypatch, env) == 2
    err = capsys.readouterr().err
    assert "target-image" in err and "error: acr-ci scan:" in err
    assert dotenv(env)["ACR_CI_STATUS"] == "error"
    assert not (tmp_path / "gl-container-scanning-report.json").exists()  # nothing gated
    assert json.loads((tmp_path / "acr-ci-record.json").read_text())["command"] == "scan"


@pytest.mark.registry
@pytest.mark.e2e
def test_run_publishes_the_container_scanning_report(
    busybox_base: BaseImage,
    buildah_env: Path,
    registry: RegistryServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "hello", tmp_path / "hello")
    (tmp_path / "trivy.json").write_text(json.dumps(TRIVY))
    image = f"{registry.host}/demo/gl-run"
    (tmp_path / ".acr-ci.yml").write_text(f"""version: 1
image: {image}
build:
  builder: buildah
  rules:
    - name: main
      type: branch
      match: main
      context: hello
      tags: [latest]
      platforms: [linux/amd64]
      args: {{BASE: "{busybox_base.ref}"}}
scan:
  engine: report
  report: {tmp_path / "trivy.json"}
  block: {{severity: high}}
""")
    env = job_env(tmp_path, registry.host, command="run")
    assert run_job(monkeypatch, env) == 0, dotenv(env)
    values = dotenv(env)
    report = assert_valid_report(tmp_path / "gl-container-scanning-report.json")
    vulns = report["vulnerabilities"]
    assert isinstance(vulns, list) and vulns
    assert {v["location"]["image"] for v in vulns} == {values["ACR_CI_IMAGE"]}
    ids = {i["value"] for v in vulns for i in v["identifiers"]}
    assert "CVE-2023-0002" in ids
    assert json.loads((tmp_path / "acr-ci-record.json").read_text())["status"] == "succeeded"
