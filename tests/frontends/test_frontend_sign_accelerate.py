"""Signing and accelerated twins through the front ends (issues 13 and 16).

* inputs → options: the ``accelerate`` input of ``run`` and the ``sign``, ``attest``,
  ``verify`` and ``accelerate`` commands, on all three platforms, give exactly the typed
  options the CLI's own parser makes of the same command line; wrong combinations stop
  before anything runs, naming the input;
* outputs: the twin's digest read from a run record's ``accelerate`` step (written and read
  back as JSON, the way the front end reads it) reaches each sink (GitHub's
  ``accelerated-digest``, GitLab's ``ACR_CI_ACCELERATED_DIGEST``, Tekton's
  ``ACCELERATED_DIGEST``);
* secrets: the signing key is never an input, a param or an argument: the action and the
  component document it as env / a masked variable, the Tekton Task takes it from a Secret,
  and a real ``sign`` through the GitHub front end (a real registry) reads it from the
  environment and prints it nowhere;
* the twin's digest from a real ``accelerate`` through the front ends is the one the
  registry serves for ``TAG_accelerated``.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.frontends.frontend_support import ROOT, load_yaml, read_github_outputs
from tests.frontends.records import image, run_record, step
from tests.frontends.test_frontend_multi_runner import github, gitlab, same_as_cli, tekton
from tests.support import RegistryServer
from tests.support.layout import make_layout

from acr_ci import config as config_mod
from acr_ci import record as record_mod
from acr_ci.cli.run import with_accelerate
from acr_ci.config.model import AccelerateConfig
from acr_ci.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from acr_ci.frontends import Inputs, Invocation, collect, invocation
from acr_ci.frontends import github as gh
from acr_ci.frontends import gitlab as gl
from acr_ci.models import Status
from acr_ci.platforms.sinks.github import GitHubSink
from acr_ci.platforms.sinks.gitlab import GitLabSink
from acr_ci.platforms.sinks.tekton import TektonSink
from acr_ci.record import AccelerateDetail
from acr_ci.registry import Client, Reference

IMG = "registry.example/team/app:1.0"
SHA = "0123456789abcdef0123456789abcdef01234567"
D_SRC = "sha256:" + "a" * 64
D_TWIN = "sha256:" + "b" * 64
D_TWIN2 = "sha256:" + "c" * 64


# -- inputs → the options of the same command line ----------------------------------------

ROWS: list[Any] = [
    pytest.param(lambda: github(command="run", accelerate="true"), ["run", "--accelerate"],
                 id="github-run-accelerate"),
    pytest.param(lambda: github(command="run", accelerate="false"), ["run", "--no-accelerate"],
                 id="github-run-no-accelerate"),
    pytest.param(lambda: github(command="run", accelerate=""), ["run"], id="github-run-config-decides"),
    pytest.param(lambda: gitlab(command="run", accelerate="true", config=".acr-ci.yml"),
                 ["run", "--config", ".acr-ci.yml", "--accelerate"], id="gitlab-run-accelerate"),
    pytest.param(lambda: tekton(command="run", accelerate="true", record="r.json"),
                 ["run", "--record", "r.json", "--accelerate"], id="tekton-run-accelerate"),
    pytest.param(lambda: github(command="accelerate", image=IMG), ["accelerate", IMG],
                 id="github-accelerate"),
    pytest.param(lambda: gitlab({"ACR_CI_IMAGE": IMG}, command="accelerate", image="$ACR_CI_IMAGE",
                                config="ci.yml"),
                 ["accelerate", IMG, "--config", "ci.yml"], id="gitlab-accelerate-dotenv-image"),
    pytest.param(lambda: github(command="sign", image=IMG, config="ci.yml"),
                 ["sign", IMG, "--config", "ci.yml"], id="github-sign"),
    pytest.param(lambda: gitlab(command="sign", image=f"{IMG}@{D_SRC}"),
                 ["sign", f"{IMG}@{D_SRC}"], id="gitlab-sign-by-digest"),
    pytest.param(lambda: github(command="attest", image=IMG, ref="refs/heads/main", sha=SHA,
                                time="2026-11-23T10:00:00Z"),
                 ["attest", IMG, "--ref", "refs/heads/main", "--sha", SHA, "--time",
                  "2026-11-23T10:00:00Z"], id="github-attest-provenance-ref"),
    pytest.param(lambda: github(command="verify", image=IMG, public_key="cosign.pub"),
                 ["verify", IMG, "--key", "cosign.pub"], id="github-verify"),
    pytest.param(lambda: gitlab(command="verify", image=IMG, public_key="keys/cosign.pub",
                                attestations="true"),
                 ["verify", IMG, "--key", "keys/cosign.pub", "--attestations"],
                 id="gitlab-verify-attestations"),
]


@pytest.mark.parametrize(("make", "argv"), ROWS)
def test_inputs_give_the_options_of_the_same_command_line(
    make: Callable[[], Inputs], argv: list[str], tmp_path: Path
) -> None:
    same_as_cli(make(), argv, tmp_path)


BAD: list[Any] = [
    pytest.param(dict(command="build", push="true", accelerate="true"),
                 "input accelerate is for command run, not build", id="accelerate-on-build"),
    pytest.param(dict(command="accelerate", image=IMG, accelerate="false"),
                 "input accelerate is for command run, not accelerate", id="accelerate-on-accelerate"),
    pytest.param(dict(command="run", accelerate="maybe"),
                 "input accelerate 'maybe' is not a boolean", id="accelerate-not-boolean"),
    pytest.param(dict(command="verify", image=IMG), "command verify needs the public-key input",
                 id="verify-without-key"),
    pytest.param(dict(command="sign", image=IMG, public_key="cosign.pub"),
                 "input public-key is for command verify, not sign", id="public-key-on-sign"),
    pytest.param(dict(command="scan", image=IMG, attestations="true"),
                 "input attestations is for command verify, not scan", id="attestations-on-scan"),
    pytest.param(dict(command="sign"), "acr-ci sign needs the image input", id="sign-no-image"),
    pytest.param(dict(command="attest"), "acr-ci attest needs the image input", id="attest-no-image"),
    pytest.param(dict(command="accelerate"), "acr-ci accelerate needs the image input",
                 id="accelerate-no-image"),
    pytest.param(dict(command="cosign"), "input command 'cosign' is not supported", id="unknown"),
]


@pytest.mark.parametrize(("inputs", "message"), BAD)
def test_bad_inputs_name_the_input(
    inputs: dict[str, str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as e:
        invocation(github(**inputs), tmp_path, {})
    assert e.value.message.startswith(message), e.value.message
    assert e.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize("command", ["sign", "attest", "verify", "accelerate"])
def test_gitlab_commands_on_an_image_need_the_target_image(command: str) -> None:
    with pytest.raises(UsageError, match=f"acr-ci {command}: the target-image input is still"):
        gitlab(command=command, image="$ACR_CI_IMAGE")


CONFIG = """version: 1
image: registry.example/team/app
build:
  rules:
    - {name: main, type: branch, match: main, tags: [latest]}
"""


def test_run_accelerate_overrides_the_config(tmp_path: Path) -> None:
    """--accelerate adds the defaults only where the config has no accelerate: section (its
    own settings win); --no-accelerate drops it; no flag leaves the config alone."""
    plain = tmp_path / "plain.yml"
    plain.write_text(CONFIG)
    custom = tmp_path / "custom.yml"
    custom.write_text(CONFIG + "accelerate: {suffix: -lazy}\n")
    p, c = config_mod.load(str(plain)), config_mod.load(str(custom))
    assert p.accelerate is None and c.accelerate == AccelerateConfig(suffix="-lazy")
    assert with_accelerate(p, True).accelerate == AccelerateConfig()
    assert with_accelerate(c, True).accelerate == AccelerateConfig(suffix="-lazy")
    assert with_accelerate(c, False).accelerate is None
    assert with_accelerate(c, None) is c and with_accelerate(p, None) is p
    assert with_accelerate(p, True).build == p.build  # nothing else changes


# -- outputs from a run record with an accelerate step ------------------------------------


def twin_detail(digest: str, repo: str = "registry.example/team/app") -> AccelerateDetail:
    return AccelerateDetail(digest=digest, source=D_SRC, format="estargz",
                            tags=("latest_accelerated",), images=(f"{repo}:latest_accelerated",),
                            layers_converted=2, layers_kept=0, bytes_sent=1234)


RECORDS: list[Any] = [
    pytest.param([("succeeded", D_TWIN)], D_TWIN, id="one-twin"),
    pytest.param([("failed", None)], "", id="accelerate-failed"),
    pytest.param([("skipped", None)], "", id="accelerate-skipped"),
    pytest.param([("none", None), ("succeeded", D_TWIN2)], D_TWIN2, id="first-twin-of-any-image"),
    pytest.param([("succeeded", D_TWIN), ("succeeded", D_TWIN2)], D_TWIN, id="first-image-first"),
]


def record_with(twins: list[tuple[str, str | None]]) -> record_mod.RunRecord:
    images = []
    for i, (state, digest) in enumerate(twins):
        steps = [step("push", Status.SUCCEEDED)]
        if state == "succeeded":
            assert digest is not None
            steps.append(step("accelerate", Status.SUCCEEDED, detail=twin_detail(digest)))
        elif state != "none":
            steps.append(step("accelerate", Status(state), reason="conversion failed"))
        images.append(image(f"r{i}", f"registry.example/team/app{i}", ("latest",), D_SRC, *steps))
    return run_record(*images)


@pytest.mark.parametrize(("twins", "expected"), RECORDS)
def test_accelerated_digest_from_the_record_reaches_every_sink(
    twins: list[tuple[str, str | None]], expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "acr-ci-record.json"
    record_mod.write(record_with(twins), str(path))
    inputs = Inputs(command="run", record=str(path), summary=False)
    results = collect(inputs, Invocation("run", None, lambda: 0), 0, "")
    assert results.accelerated_digest == expected
    # GitHub: a step output; GitLab: the dotenv report; Tekton: the declared result
    out = tmp_path / "github-output"
    out.write_text("")
    GitHubSink(output_file=out, summary_file=None, stream=io.StringIO()).publish(results)
    assert read_github_outputs(out.read_text())["accelerated-digest"] == expected
    dotenv = tmp_path / "acr-ci.env"
    GitLabSink(dotenv=dotenv, stream=io.StringIO()).publish(results)
    values = dict(line.split("=", 1) for line in dotenv.read_text().splitlines())
    assert values.get("ACR_CI_ACCELERATED_DIGEST", "") == expected
    result = tmp_path / "results" / "ACCELERATED_DIGEST"
    TektonSink(paths={"ACCELERATED_DIGEST": result}).publish(results)
    assert result.read_text() == expected


def test_every_front_end_declares_the_accelerated_digest() -> None:
    for path in (ROOT / "action.yml", ROOT / "docker" / "action.yml"):
        assert "accelerated-digest" in load_yaml(path)["outputs"], path
    composite = load_yaml(ROOT / "action.yml")["outputs"]["accelerated-digest"]
    assert composite["value"] == "${{ steps.acr.outputs.accelerated-digest }}"
    task = load_yaml(ROOT / "tekton" / "task" / "acr-ci-run" / "0.1" / "acr-ci-run.yaml")["spec"]
    assert "ACCELERATED_DIGEST" in {r["name"] for r in task["results"]}
    for doc in (ROOT / "gitlab" / "templates" / "acr-ci.md", ROOT / "gitlab" / "README.md"):
        assert "ACR_CI_ACCELERATED_DIGEST" in doc.read_text(), doc


# -- the signing key: never an input, a param or an argument ------------------------------


def test_the_action_documents_the_key_as_env_and_id_token_write() -> None:
    for path in (ROOT / "action.yml", ROOT / "docker" / "action.yml"):
        text = path.read_text()
        assert "id-token: write" in text and "ACR_CI_SIGNING_KEY: ${{ secrets." in text, path
        inputs = load_yaml(path)["inputs"]
        assert not [n for n in inputs if re.search(r"key$|signing|private", n) and n != "public-key"]
    for doc in (ROOT / "README.md", ROOT / "docs" / "frontends.md"):
        text = doc.read_text()
        assert "id-token: write" in text and "ACR_CI_SIGNING_KEY: ${{ secrets." in text, doc


def template() -> tuple[dict[str, Any], dict[str, Any]]:
    from ruamel.yaml import YAML

    spec_text, job_text = (ROOT / "gitlab" / "templates" / "acr-ci.yml").read_text().split("\n---\n", 1)
    yaml = YAML(typ="safe", pure=True)
    return yaml.load(spec_text)["spec"]["inputs"], yaml.load(job_text)


def test_the_component_declares_the_id_token_under_its_input_name() -> None:
    inputs, jobs = template()
    (job,) = jobs.values()
    assert inputs["id-token"]["default"] == "SIGSTORE_ID_TOKEN"
    assert job["id_tokens"] == {"$[[ inputs.id-token ]]": {"aud": "sigstore"}}
    assert job["variables"]["ACR_CI_INPUT_ID_TOKEN"] == "$[[ inputs.id-token ]]"
    regex = re.compile(inputs["id-token"]["regex"])
    assert regex.fullmatch("SIGSTORE_ID_TOKEN") and regex.fullmatch("MY_ID_TOKEN")
    assert not regex.fullmatch("$X") and not regex.fullmatch("A B")
    # accelerate must be able to stay empty: a boolean false would turn the config's off
    assert inputs["accelerate"]["default"] == "" and "type" not in inputs["accelerate"]
    assert not [n for n in inputs if n.endswith("key") and n != "public-key"]
    for doc in (ROOT / "gitlab" / "templates" / "acr-ci.md", ROOT / "gitlab" / "README.md"):
        text = doc.read_text()
        assert "id-token" in text and "masked" in text and "ACR_CI_SIGNING_KEY" in text, doc


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({"ACR_CI_INPUT_ID_TOKEN": "MY_TOKEN", "MY_TOKEN": "tok"}, "tok", id="named"),
        pytest.param({"MY_TOKEN": "tok"}, None, id="default-name-unset"),
        pytest.param({"SIGSTORE_ID_TOKEN": "own"}, "own", id="default-name"),
        pytest.param({"ACR_CI_INPUT_ID_TOKEN": "MY_TOKEN", "MY_TOKEN": "tok",
                      "SIGSTORE_ID_TOKEN": "own"}, "own", id="already-set-wins"),
        pytest.param({"ACR_CI_INPUT_ID_TOKEN": "MY_TOKEN"}, None, id="named-unset"),
    ],
)
def test_gitlab_id_token_reaches_sigstore_id_token(env: dict[str, str], expected: str | None) -> None:
    gl.prepare_id_token(env)
    assert env.get("SIGSTORE_ID_TOKEN") == expected


def test_gitlab_id_token_must_be_a_variable_name() -> None:
    with pytest.raises(UsageError, match="input id-token '\\$TOKEN' is not a variable name"):
        gl.prepare_id_token({"ACR_CI_INPUT_ID_TOKEN": "$TOKEN"})


def test_the_run_task_takes_the_key_from_an_optional_secret() -> None:
    task = ROOT / "tekton" / "task" / "acr-ci-run" / "0.1" / "acr-ci-run.yaml"
    spec = load_yaml(task)["spec"]
    (run,) = spec["steps"]
    env = {e["name"]: e for e in run["env"]}
    for name, key in (("ACR_CI_SIGNING_KEY", "signing-key"),
                      ("ACR_CI_SIGNING_PASSWORD", "signing-password-key")):
        assert env[name]["valueFrom"] == {"secretKeyRef": {
            "name": "$(params.signing-secret)", "key": f"$(params.{key})", "optional": True}}
    params = {p["name"]: p for p in spec["params"]}
    # cosign generate-key-pair k8s://NS/NAME writes these keys
    assert (params["signing-key"]["default"], params["signing-password-key"]["default"]) == (
        "cosign.key", "cosign.password")
    plain = {e["name"]: e["value"] for e in run["env"] if "value" in e}
    assert not [v for v in plain.values() if "signing" in v], "a signing param in a plain env value"
    assert "SIGNING" not in run["script"]
    assert env["PARAM_ACCELERATE"]["value"] == "$(params.accelerate)"
    assert params["accelerate"]["default"] == ""


# -- real commands through the front ends, against a real registry ------------------------


@pytest.fixture
def pushed(registry: RegistryServer, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A two-platform image in the registry: (``repo:tag``, index digest)."""
    layout = make_layout(tmp_path / "layout", seed=13)
    repo = f"{registry.host}/front/signed"
    with Client() as client:
        digest = client.push_layout(layout.path, Reference.parse(f"{repo}:1.0"), ["1.0"]).digest
    yield f"{repo}:1.0", digest


def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "INPUT_", "CI_", "GITLAB", "ACR_CI_", "SIGSTORE")) or name == "CI":
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    monkeypatch.chdir(tmp_path)


def step_env(tmp_path: Path, name: str, **inputs: str) -> dict[str, str]:
    out = tmp_path / f"output-{name}"
    out.write_text("")
    return {"GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
            **{gh.input_env_name(k.replace("_", "-")): v for k, v in inputs.items()}}


@pytest.mark.registry
@pytest.mark.e2e
def test_sign_then_verify_through_the_action_reads_the_key_from_env_only(
    pushed: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clean_env(monkeypatch, tmp_path)
    ref, digest = pushed
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    (tmp_path / "cosign.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    # `env: ACR_CI_SIGNING_KEY: ${{ secrets.… }}` on the step: the process env, not an input
    monkeypatch.setenv("ACR_CI_SIGNING_KEY", pem)
    env = step_env(tmp_path, "sign", command="sign", image=ref)
    assert gh.main(env) == EXIT_OK
    stdout, stderr = capsys.readouterr()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    for text in (stdout, stderr, Path(env["GITHUB_OUTPUT"]).read_text()):
        assert body[:40] not in text and "PRIVATE KEY" not in text
    # the signature is where cosign looks for it, by digest
    with Client() as client:
        tags = client.list_tags(Reference.parse(ref))
    assert f"sha256-{digest.split(':', 1)[1]}.sig" in tags
    env = step_env(tmp_path, "verify", command="verify", image=ref, public_key="cosign.pub")
    monkeypatch.delenv("ACR_CI_SIGNING_KEY")
    assert gh.main(env) == EXIT_OK
    assert read_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())["status"] == "succeeded"
    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "other.pub").write_bytes(other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    env = step_env(tmp_path, "wrong", command="verify", image=ref, public_key="other.pub")
    assert gh.main(env) == EXIT_FAILED
    assert read_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())["status"] == "failed"
    assert "not verified" in capsys.readouterr().err


@pytest.mark.registry
@pytest.mark.e2e
def test_accelerate_through_the_action_and_the_component_outputs_the_twins_digest(
    pushed: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clean_env(monkeypatch, tmp_path)
    ref, digest = pushed
    env = step_env(tmp_path, "accelerate", command="accelerate", image=ref)
    assert gh.main(env) == EXIT_OK
    got = read_github_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    repo = ref.rsplit(":", 1)[0]
    with Client() as client:
        served = client.resolve(Reference.parse(f"{repo}:1.0_accelerated")).digest
    assert got["accelerated-digest"] == served != digest
    assert got["images"] == f"{repo}@{served}" and got["status"] == "succeeded"
    capsys.readouterr()
    # the GitLab job: the same twin (a conversion is reproducible) in the dotenv report
    dotenv = tmp_path / "acr-ci.env"
    for name, value in {"ACR_CI_DOTENV": str(dotenv), "ACR_CI_INPUT_COMMAND": "accelerate",
                        "ACR_CI_INPUT_IMAGE": ref,
                        "ACR_CI_INPUT_RECORD": str(tmp_path / "gl-record.json")}.items():
        monkeypatch.setenv(name, value)
    assert gl.main() == EXIT_OK
    values = dict(line.split("=", 1) for line in dotenv.read_text().splitlines())
    assert values["ACR_CI_ACCELERATED_DIGEST"] == served
    job = json.loads((tmp_path / "gl-record.json").read_text())
    assert job["outputs"]["accelerated-digest"] == served


@pytest.mark.parametrize("name", ["acr-ci-run", "acr-ci-sign"])
def test_tasks_take_the_key_from_an_optional_secret_only(name: str) -> None:
    spec = load_yaml(ROOT / "tekton" / "task" / name / "0.1" / f"{name}.yaml")["spec"]
    (only,) = spec["steps"]
    secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in only["env"] if "valueFrom" in e}
    assert secret["ACR_CI_SIGNING_KEY"] == {
        "name": "$(params.signing-secret)", "key": "$(params.signing-key)", "optional": True}
    assert secret["ACR_CI_SIGNING_PASSWORD"]["key"] == "$(params.signing-password-key)"
    assert not [p for p in spec["params"] if re.search(r"private|pem", p["name"])]


@pytest.mark.registry
@pytest.mark.e2e
def test_sign_task_signs_and_attests_with_the_secrets_key(
    pushed: tuple[str, str], tmp_path: Path
) -> None:
    """The acr-ci-sign step, run as Tekton would (the Secret's value in its env only): the
    image gets its .sig and .att; without the Secret, the step fails saying the key is unset."""
    from tests.frontends.test_frontend_tekton import run_task

    ref, digest = pushed
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    source = tmp_path / "source"
    source.mkdir()
    params = {"images": f"{ref.rsplit(':', 1)[0]}@{digest}", "attest": "true",
              "ref": "refs/heads/main", "sha": SHA, "time": "2026-11-23T12:00:00Z"}
    proc, results = run_task("acr-ci-sign", params, source, tmp_path,
                             secrets={("acr-ci-signing", "cosign.key"): pem})
    assert proc.returncode == 0, proc.stderr
    assert results["STATUS"] == "succeeded"
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    assert body[:40] not in proc.stdout + proc.stderr
    with Client() as client:
        tags = set(client.list_tags(Reference.parse(ref)))
    hexd = digest.split(":", 1)[1]
    assert {f"sha256-{hexd}.sig", f"sha256-{hexd}.att"} <= tags
    (tmp_path / "again").mkdir()
    proc, results = run_task("acr-ci-sign", {"image": ref}, source, tmp_path / "again")
    assert proc.returncode != 0 and results["STATUS"] in ("failed", "error")
    assert "ACR_CI_SIGNING_KEY is not set" in proc.stderr


@pytest.mark.parametrize(
    ("stdout", "code", "expected"),
    [
        pytest.param(f"{D_TWIN}\n", 0, D_TWIN, id="digest"),
        pytest.param(f"note\n{D_TWIN}\n\n", 0, D_TWIN, id="last-line"),
        pytest.param("sha256:abc\n", 0, "", id="not-a-digest"),
        pytest.param(f"{D_TWIN}\n::set-output name=x::y\n", 0, "", id="not-last"),
        pytest.param(f"{D_TWIN}\n", 1, "", id="failed"),
        pytest.param("", 0, "", id="nothing"),
    ],
)
def test_accelerate_commands_digest_is_only_a_well_formed_last_line(
    stdout: str, code: int, expected: str
) -> None:
    from acr_ci.platforms import outputs

    got = outputs.from_accelerate(stdout, IMG, exit_code=code)
    assert got.accelerated_digest == got.digest == expected
    assert got.images == ((f"registry.example/team/app@{expected}",) if expected else ())
    assert got.status == ("succeeded" if code == 0 else "failed")
