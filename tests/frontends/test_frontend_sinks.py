"""The output sinks and the front ends' input mapping, read back from the files they write."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from tests.frontends.frontend_support import read_github_outputs
from tests.frontends.records import image, run_record, scan_detail, step

from acr_ci.errors import ConfigError, ConfigProblem, UsageError
from acr_ci.frontends import Inputs, expanded, invocation, parse_bool, parse_list
from acr_ci.frontends import github as gh_frontend
from acr_ci.frontends import gitlab as gl_frontend
from acr_ci.frontends import tekton as tk_frontend
from acr_ci.models import Status
from acr_ci.platforms import outputs
from acr_ci.platforms.outputs import Annotation, Level, Results
from acr_ci.platforms.sinks import sink_for
from acr_ci.platforms.sinks.github import (
    GitHubSink,
    annotation_command,
    escape_data,
    escape_property,
    output_entry,
)
from acr_ci.platforms.sinks.gitlab import GitLabSink, dotenv_text, dotenv_values
from acr_ci.platforms.sinks.tekton import TektonSink

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64

RECORD = run_record(
    image("main", "reg.example/team/app", ("latest", "abc123"), D1,
          step("build", Status.SUCCEEDED),
          step("scan", Status.BLOCKED, reason="blocked: 1 high",
               detail=scan_detail(f"reg.example/team/app@{D1}", blocking=("CVE-2024-3094",)))),
    image("side", "reg.example/team/side", ("v1",), D2,
          step("sync", Status.FAILED, name="mirror", reason="mirror down")),
    image("never", "reg.example/team/none", ("x",), None,
          step("build", Status.FAILED, reason="buildah exited 1")),
)


# -- results from what the commands wrote -----------------------------------------------------


def test_from_record_lists_pushed_images_and_annotates_failures() -> None:
    r = outputs.from_record(RECORD, path="rec.json", summary="| t |")
    assert r.digest == D1
    assert r.images == (f"reg.example/team/app@{D1}", f"reg.example/team/side@{D2}")
    assert r.tags == ("reg.example/team/app:latest", "reg.example/team/app:abc123",
                      "reg.example/team/side:v1")
    assert r.blocked is True and r.status == "blocked" and r.exit_code == 3
    titles = [(a.level, a.title) for a in r.annotations]
    assert titles == [
        (Level.ERROR, "acr-ci main: scan gate"),
        (Level.ERROR, "acr-ci side: sync mirror"),
        (Level.ERROR, "acr-ci never: build"),
    ]
    assert "CVE-2024-3094" in r.annotations[0].message


@pytest.mark.parametrize(
    ("doc", "code", "status", "digest"),
    [
        pytest.param({"builds": []}, 0, "skipped", "", id="build-nothing"),
        pytest.param({"builds": [{"image": "r/a", "index_digest": D1, "images": ["r/a:1"]}]}, 0,
                     "succeeded", D1, id="build-one"),
        pytest.param({}, 1, "failed", "", id="build-failed"),
    ],
)
def test_from_build(doc: dict[str, object], code: int, status: str, digest: str) -> None:
    r = outputs.from_build(doc, exit_code=code)
    assert (r.status, r.digest) == (status, digest)


def test_from_scan_blocked_and_passed() -> None:
    doc = {"image": f"r/a@{D1}", "enforced": True,
           "verdict": {"blocked": True, "reason": "blocked: 2 high", "blocking": ["CVE-1", "CVE-2"]}}
    r = outputs.from_scan(doc, exit_code=3, reports={"sarif": "x.sarif"})
    assert r.blocked and r.digest == D1 and r.status == "blocked"
    assert r.annotations[0].message == "blocked: 2 high (CVE-1, CVE-2)"
    passed = outputs.from_scan({"image": "r/a:1", "verdict": {"blocked": False}}, exit_code=0, reports={})
    assert not passed.blocked and passed.annotations == () and passed.digest == ""


def test_config_annotations_keep_file_line_column() -> None:
    err = ConfigError([ConfigProblem(".acr-ci.yml", 9, 13, "build.rules[0].type", "must be one of: branch, tag")])
    (a,) = outputs.config_annotations(err)
    assert (a.file, a.line, a.column) == (".acr-ci.yml", 9, 13)
    assert annotation_command(a) == (
        "::error title=acr-ci config,file=.acr-ci.yml,line=9,col=13::"
        "build.rules[0].type: must be one of: branch, tag"
    )


# -- GitHub ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "data", "prop"),
    [
        ("plain", "plain", "plain"),
        ("100%\nnext\r", "100%25%0Anext%0D", "100%25%0Anext%0D"),
        ("a:b,c", "a:b,c", "a%3Ab%2Cc"),
    ],
)
def test_github_escaping(text: str, data: str, prop: str) -> None:
    assert escape_data(text) == data
    assert escape_property(text) == prop


def test_github_annotation_without_location() -> None:
    a = Annotation(Level.WARNING, "two\nlines", title="t")
    assert annotation_command(a) == "::warning title=t::two%0Alines"


def test_github_output_entry_forms() -> None:
    assert output_entry("digest", D1) == f"digest={D1}\n"
    entry = output_entry("tags", "a:1\na:2", delimiter="EOF_X")
    assert entry == "tags<<EOF_X\na:1\na:2\nEOF_X\n"
    with pytest.raises(UsageError):
        output_entry("tags", "x\nEOF_X", delimiter="EOF_X")


def test_github_sink_writes_outputs_summary_annotations_and_masks(tmp_path: Path) -> None:
    stream = io.StringIO()
    out, summary = tmp_path / "out", tmp_path / "summary"
    out.write_text("earlier=1\n")  # the runner appends; so do we
    sink = GitHubSink.from_env({"GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary)}, stream)
    sink.mask("s3cr3t\nline2")
    sink.publish(outputs.from_record(RECORD, path="rec.json", summary="### acr-ci run\n"))
    values = read_github_outputs(out.read_text())
    assert values["earlier"] == "1"
    assert values["digest"] == D1
    assert values["images"].splitlines() == [f"reg.example/team/app@{D1}", f"reg.example/team/side@{D2}"]
    assert len(values["tags"].splitlines()) == 3
    assert values["blocked"] == "true" and values["record"] == "rec.json"
    assert values["exit-code"] == "3" and values["status"] == "blocked"
    assert summary.read_text() == "### acr-ci run\n"
    log = stream.getvalue().splitlines()
    assert "::add-mask::s3cr3t" in log and "::add-mask::line2" in log
    assert sum(1 for line in log if line.startswith("::error ")) == 3


def test_github_stop_commands_wraps_with_a_fresh_token() -> None:
    stream = io.StringIO()
    sink = GitHubSink(output_file=None, summary_file=None, stream=stream)
    with sink.stop_commands():
        stream.write("::error::from an attacker-controlled branch name\n")
    first, _, last = stream.getvalue().splitlines()
    token = first.removeprefix("::stop-commands::")
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert last == f"::{token}::"


# -- GitLab ---------------------------------------------------------------------------------


def test_gitlab_dotenv_follows_gitlabs_rules(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "acr-ci.env"
    stream = io.StringIO()
    GitLabSink.from_env({"ACR_CI_DOTENV": str(path)}, stream).publish(
        outputs.from_record(RECORD, path="rec.json")
    )
    text = path.read_text()
    assert "\n\n" not in text and not text.startswith("#") and '"' not in text
    env = dict(line.split("=", 1) for line in text.splitlines())
    assert env["ACR_CI_DIGEST"] == D1
    assert env["ACR_CI_IMAGE"] == f"reg.example/team/app@{D1}"
    assert env["ACR_CI_IMAGES"] == f"reg.example/team/app@{D1},reg.example/team/side@{D2}"
    assert env["ACR_CI_BLOCKED"] == "true" and env["ACR_CI_EXIT_CODE"] == "3"
    assert "error: acr-ci main: scan gate: blocked: 1 high" in stream.getvalue()


def test_gitlab_dotenv_leaves_out_empty_and_refuses_multiline() -> None:
    values = dotenv_values(Results(command="sync", exit_code=0))
    assert "ACR_CI_DIGEST" not in values and values["ACR_CI_STATUS"] == "succeeded"
    with pytest.raises(ValueError, match="multi-line"):
        dotenv_text({"ACR_CI_X": "a\nb"})
    with pytest.raises(ValueError, match="not a dotenv variable name"):
        dotenv_text({"acr-ci": "a"})


def test_gitlab_dotenv_drops_tags_past_5kb(tmp_path: Path) -> None:
    many = tuple(f"reg.example/team/app:tag-{i:04d}" for i in range(300))
    path = tmp_path / "acr-ci.env"
    stream = io.StringIO()
    GitLabSink(dotenv=path, stream=stream).publish(Results(command="run", exit_code=0, digest=D1, tags=many))
    assert len(path.read_bytes()) <= 5 * 1024
    assert "ACR_CI_TAGS" not in path.read_text() and "ACR_CI_DIGEST" in path.read_text()
    assert "left out" in stream.getvalue()


# -- Tekton ---------------------------------------------------------------------------------


def test_tekton_writes_only_declared_results_without_newline(tmp_path: Path) -> None:
    env = {"ACR_CI_RESULT_IMAGE_DIGEST": str(tmp_path / "IMAGE_DIGEST"),
           "ACR_CI_RESULT_IMAGES": str(tmp_path / "IMAGES"),
           "ACR_CI_RESULT_IMAGE_URL": str(tmp_path / "IMAGE_URL"),
           "ACR_CI_RESULT_UNKNOWN": str(tmp_path / "UNKNOWN")}
    sink = sink_for("tekton", env, io.StringIO())
    assert isinstance(sink, TektonSink)
    sink.publish(outputs.from_record(RECORD, path="rec.json"))
    assert (tmp_path / "IMAGE_DIGEST").read_text() == D1
    assert (tmp_path / "IMAGE_URL").read_text() == "reg.example/team/app:latest"
    assert (tmp_path / "IMAGES").read_text() == f"reg.example/team/app@{D1},reg.example/team/side@{D2}"
    assert not (tmp_path / "UNKNOWN").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["IMAGES", "IMAGE_DIGEST", "IMAGE_URL"]


def test_sink_for_unknown_platform() -> None:
    with pytest.raises(UsageError):
        sink_for("jenkins", {})


# -- inputs → one command's typed options ---------------------------------------------------

from acr_ci.cli.build import BuildOptions  # noqa: E402
from acr_ci.cli.common import RefOptions  # noqa: E402
from acr_ci.cli.plan import PlanOptions  # noqa: E402
from acr_ci.cli.run import RunOptions  # noqa: E402
from acr_ci.cli.scan import ScanOptions  # noqa: E402
from acr_ci.cli.sync import SyncOptions  # noqa: E402
from acr_ci.cli.trigger import TriggerOptions  # noqa: E402
from acr_ci.registry.access import RegistryAccess  # noqa: E402
from acr_ci.scan.settings import ScanOverrides  # noqa: E402


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        pytest.param(Inputs(), RunOptions(record="acr-ci-record.json"), id="run-default"),
        pytest.param(Inputs(command="run", config="c.yml", ref="refs/tags/v1", insecure=("h:5000",)),
                     RunOptions(ref=RefOptions(config="c.yml", ref="refs/tags/v1"),
                                record="acr-ci-record.json",
                                access=RegistryAccess(insecure=("h:5000",))), id="run-flags"),
        pytest.param(Inputs(command="plan", ref="main"),
                     PlanOptions(ref=RefOptions(ref="main"), format="json"), id="plan"),
        pytest.param(Inputs(command="build", push=True, rule="r"),
                     BuildOptions(push=True, rule="r", output_json="W/build.json"), id="build-push"),
        pytest.param(Inputs(command="build", push=True, insecure=("h:5000",)),
                     BuildOptions(push=True, output_json="W/build.json",
                                  access=RegistryAccess(insecure=("h:5000",))),
                     id="build-push-insecure"),
        pytest.param(Inputs(command="scan", image="r/a@" + D1, reports=("a.json", "arm64=b.json"),
                            severity="high", non_blocking=True, gitlab_report="gl.json"),
                     ScanOptions(image="r/a@" + D1,
                                 overrides=ScanOverrides(reports=("a.json", "arm64=b.json"),
                                                         severity="high", non_blocking=True),
                                 output_json="W/scan.json", gitlab_report="gl.json"), id="scan"),
        pytest.param(Inputs(command="sync", image="r/a:1", backfill=True),
                     SyncOptions(image="r/a:1", backfill=True), id="sync"),
        pytest.param(Inputs(command="TRIGGER", image="r/a:1", verbose=True),
                     TriggerOptions(image="r/a:1"), id="trigger-verbose"),
        pytest.param(Inputs(command="sync", image="--backfill", ref="-x"),
                     SyncOptions(image="--backfill"), id="values-never-become-flags"),
    ],
)
def test_invocation(inputs: Inputs, expected: object) -> None:
    got = invocation(inputs, Path("W"), {})
    assert got.options == expected
    assert got.command == inputs.command.lower()


def test_invocation_login_from_inputs_or_env() -> None:
    env = {"ACR_CI_REGISTRY_USERNAME": "env-user", "ACR_CI_REGISTRY_PASSWORD": "env-pw"}
    run = invocation(Inputs(username="u", password="hunter2-secret"), Path("W"), env).options
    assert isinstance(run, RunOptions) and run.access.login is not None
    assert (run.access.login.username, run.access.login.password) == ("u", "hunter2-secret")
    run = invocation(Inputs(), Path("W"), env).options
    assert isinstance(run, RunOptions) and run.access.login is not None
    assert run.access.login.username == "env-user"
    with pytest.raises(UsageError, match="ACR_CI_REGISTRY_PASSWORD"):
        invocation(Inputs(username="u"), Path("W"), env)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (Inputs(command="deploy"), "not supported"),
        (Inputs(command="sync"), "needs the image input"),
    ],
)
def test_invocation_refuses(inputs: Inputs, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        invocation(inputs, Path("W"), {})


def test_password_never_in_options_or_repr() -> None:
    inputs = Inputs(command="run", username="u", password="hunter2-secret")
    assert "hunter2-secret" not in repr(invocation(inputs, Path("W"), {}).options)
    assert "hunter2-secret" not in repr(inputs)


def test_small_parsers() -> None:
    assert parse_bool("True", "x") is True and parse_bool("", "x") is False
    with pytest.raises(UsageError):
        parse_bool("maybe", "push")
    assert parse_list("a, b\nc\n\n") == ("a", "b", "c")
    assert expanded("$CI_REGISTRY_USER") == "" and expanded("${CI_X}") == ""
    assert expanded("gitlab-ci-token") == "gitlab-ci-token" and expanded("pa$$word") == "pa$$word"


def test_platform_input_names() -> None:
    assert gh_frontend.input_env_name("registry-username") == "INPUT_REGISTRY-USERNAME"
    assert gh_frontend.input_env_name("my input") == "INPUT_MY_INPUT"
    env = {"INPUT_COMMAND": "scan", "INPUT_IMAGE": "r/a:1", "INPUT_REPORT": "a.json\nb.json",
           "INPUT_REGISTRY-USERNAME": "me", "INPUT_REGISTRY-PASSWORD": "pw", "INPUT_PUSH": "false"}
    got = gh_frontend.inputs_from_env(env)
    assert (got.command, got.image, got.reports, got.username, got.password) == (
        "scan", "r/a:1", ("a.json", "b.json"), "me", "pw")
    gl = gl_frontend.inputs_from_env({
        "ACR_CI_INPUT_COMMAND": "scan", "ACR_CI_INPUT_IMAGE": "$ACR_CI_IMAGE",
        "ACR_CI_IMAGE": f"r/a@{D1}", "ACR_CI_INPUT_REGISTRY_USER": "$CI_REGISTRY_USER",
        "ACR_CI_INPUT_NON_BLOCKING": "true"})
    assert (gl.image, gl.username, gl.non_blocking) == (f"r/a@{D1}", "", True)
    tk = tk_frontend.inputs_from_env({"PARAM_COMMAND": "sync", "PARAM_IMAGE": "r/a:1",
                                      "PARAM_BACKFILL": "true"})
    assert (tk.command, tk.image, tk.backfill) == ("sync", "r/a:1", True)
