"""One runner per architecture through the front ends: the ``platforms``,
``push-by-digest``, ``digests-file`` and ``merge`` inputs of all three platforms.

Each row gives a platform's inputs (GitHub ``INPUT_*``, GitLab ``ACR_CI_INPUT_*``, Tekton
``PARAM_*``) and the ``acr-ci`` command line a user would type for the same thing; the
front end's typed options must be exactly what the CLI's own parser makes of that argv
(the ``--output-json`` file and the registry login aside, which the front end supplies).
Bad combinations stop before anything runs, with an error naming the input.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from acr_ci.cli import build_parser
from acr_ci.errors import EXIT_USAGE, UsageError
from acr_ci.frontends import MAX_MERGE_FILES, Inputs, invocation, merge_files
from acr_ci.frontends import github as gh
from acr_ci.frontends import gitlab as gl
from acr_ci.frontends import tekton as tk
from acr_ci.platforms import outputs

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
SHA = "0123456789abcdef0123456789abcdef01234567"


def github(**inputs: str) -> Inputs:
    return gh.inputs_from_env({gh.input_env_name(k.replace("_", "-")): v for k, v in inputs.items()})


def gitlab(env: Mapping[str, str] | None = None, **inputs: str) -> Inputs:
    return gl.inputs_from_env({**(env or {}), **{gl.var(k.replace("_", "-")): v for k, v in inputs.items()}})


def tekton(env: Mapping[str, str] | None = None, **params: str) -> Inputs:
    return tk.inputs_from_env({**(env or {}), **{tk.var(k.replace("_", "-")): v for k, v in params.items()}})


def cli_options(argv: list[str]) -> Any:
    """What ``acr-ci ARGV`` hands its command: the CLI's own parser, not the front end."""
    args = build_parser().parse_args(argv)
    return args.handler.options(args)


def same_as_cli(inputs: Inputs, argv: list[str], tmp_path: Path) -> Any:
    inv = invocation(inputs, tmp_path, {})
    assert inv.command == argv[0]
    if inv.output_json:
        argv = [*argv, "--output-json", inv.output_json]
    expected = cli_options(argv)
    got = inv.options
    assert type(got) is type(expected)
    assert dataclasses.replace(got, access=expected.access) == expected  # type: ignore[type-var]
    return got


ROWS: list[Any] = [
    pytest.param(
        lambda: github(command="build", platforms="linux/arm64", push_by_digest="true",
                       digests_file="digests-arm64.jsonl"),
        ["build", "--platform", "linux/arm64", "--push-by-digest", "--digests-file",
         "digests-arm64.jsonl"],
        id="github-build-one-platform",
    ),
    pytest.param(
        lambda: github(command="build", platforms="linux/amd64,\nlinux/arm64 ,"),
        ["build", "--platform", "linux/amd64", "--platform", "linux/arm64"],
        id="github-platforms-list-no-push",
    ),
    pytest.param(
        lambda: github(command="merge", merge="a.jsonl\nb.jsonl", config="ci/.acr-ci.yml"),
        ["merge", "a.jsonl", "b.jsonl", "--config", "ci/.acr-ci.yml"],
        id="github-merge",
    ),
    pytest.param(
        lambda: github(command="run", merge="a.jsonl, b.jsonl", record="r.json"),
        ["run", "--record", "r.json", "--merge", "a.jsonl", "b.jsonl"],
        id="github-run-merge",
    ),
    pytest.param(
        lambda: gitlab({"ARCH": "arm64", "CI_JOB_ID": "4711"}, command="build",
                       platforms="linux/$ARCH", push_by_digest="true",
                       digests_file="acr-ci-digests-$CI_JOB_ID.jsonl"),
        ["build", "--platform", "linux/arm64", "--push-by-digest", "--digests-file",
         "acr-ci-digests-4711.jsonl"],
        id="gitlab-build-matrix-leg",
    ),
    pytest.param(
        # the component's default digests file means nothing without push-by-digest
        lambda: gitlab({"CI_JOB_ID": "4711"}, command="build", push="true",
                       digests_file="acr-ci-digests-$CI_JOB_ID.jsonl"),
        ["build", "--push"],
        id="gitlab-default-digests-file-ignored",
    ),
    pytest.param(
        lambda: gitlab(command="merge", merge="x.jsonl,y.jsonl", config=".acr-ci.yml"),
        ["merge", "x.jsonl", "y.jsonl", "--config", ".acr-ci.yml"],
        id="gitlab-merge",
    ),
    pytest.param(
        # acr-ci-build's push defaults to "true": push-by-digest replaces it
        lambda: tekton({"ACR_CI_RESULT_DIGESTS": "/tekton/results/DIGESTS"}, command="build",
                       push="true", platforms="linux/arm64", push_by_digest="true",
                       ref="refs/heads/main", sha=SHA),
        ["build", "--ref", "refs/heads/main", "--sha", SHA, "--platform", "linux/arm64",
         "--push-by-digest", "--digests-file", "/tekton/results/DIGESTS"],
        id="tekton-build-digests-result",
    ),
    pytest.param(
        lambda: tekton({"ACR_CI_RESULT_DIGESTS": "/tekton/results/DIGESTS"}, command="build",
                       push="true", push_by_digest="true", digests_file="digests/amd64.jsonl"),
        ["build", "--push-by-digest", "--digests-file", "digests/amd64.jsonl"],
        id="tekton-build-digests-file-param",
    ),
    pytest.param(
        lambda: tekton({"ACR_CI_RESULT_DIGESTS": "/tekton/results/DIGESTS"}, command="build",
                       push="true"),
        ["build", "--push"],
        id="tekton-build-push-as-before",
    ),
]


@pytest.mark.parametrize(("make", "argv"), ROWS)
def test_inputs_give_the_options_of_the_same_command_line(
    make: Callable[[], Inputs], argv: list[str], tmp_path: Path
) -> None:
    same_as_cli(make(), argv, tmp_path)


BAD: list[Any] = [
    pytest.param(dict(command="build", push="true", push_by_digest="true"),
                 "inputs push and push-by-digest exclude each other", id="push-and-by-digest"),
    pytest.param(dict(command="build", digests_file="d.jsonl"),
                 "input digests-file needs push-by-digest", id="digests-file-alone"),
    pytest.param(dict(command="build", platforms="linux/arm64", push="true"),
                 "input platforms with push: true", id="platforms-with-push"),
    pytest.param(dict(command="run", platforms="linux/arm64"),
                 "input platforms is for command build, not run", id="platforms-on-run"),
    pytest.param(dict(command="merge", merge="a.jsonl", push_by_digest="true"),
                 "input push-by-digest is for command build, not merge", id="by-digest-on-merge"),
    pytest.param(dict(command="scan", image="r/a:1", digests_file="d.jsonl"),
                 "input digests-file is for command build, not scan", id="digests-file-on-scan"),
    pytest.param(dict(command="build", merge="a.jsonl"),
                 "input merge is for commands merge and run, not build", id="merge-on-build"),
    pytest.param(dict(command="merge"), "command merge needs the merge input", id="merge-no-files"),
    pytest.param(dict(command="merge", merge="nothing-here-*.jsonl"),
                 "input merge: 'nothing-here-*.jsonl' matches no file", id="merge-no-match"),
]


@pytest.mark.parametrize(("inputs", "message"), BAD)
def test_bad_combinations_name_the_input(
    inputs: dict[str, str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as e:
        invocation(github(**inputs), tmp_path, {})
    assert e.value.message.startswith(message), e.value.message
    assert e.value.exit_code == EXIT_USAGE


def test_bad_inputs_stop_the_github_step_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in __import__("os").environ if n.startswith(("INPUT_", "GITHUB_"))]:
        monkeypatch.delenv(name)
    out = tmp_path / "output"
    out.write_text("")
    env = {"INPUT_COMMAND": "build", "INPUT_PUSH": "true", "INPUT_PUSH-BY-DIGEST": "true",
           "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")}
    assert gh.main(env) == EXIT_USAGE
    stdout, stderr = capsys.readouterr()
    assert stdout.startswith(
        "::error title=acr-ci action inputs::inputs push and push-by-digest exclude each other")
    assert "acr-ci build" not in stderr  # the command never started


def test_merge_patterns_expand_in_the_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digests").mkdir()
    for name in ("digests-arm64.jsonl", "digests-amd64.jsonl", "notes.txt"):
        (tmp_path / "digests" / name).write_text("{}\n")
    assert merge_files(["digests/*.jsonl"]) == (
        "digests/digests-amd64.jsonl", "digests/digests-arm64.jsonl")
    # a plain name stays as given (the command says when it is missing); each file once
    assert merge_files(["missing.jsonl", "digests/*-amd64.jsonl", "digests/digests-amd64.jsonl"]) == (
        "missing.jsonl", "digests/digests-amd64.jsonl")
    inv = invocation(github(command="merge", merge="digests/digests-a?d64.jsonl"), tmp_path, {})
    assert inv.options.files == ("digests/digests-amd64.jsonl",)  # type: ignore[attr-defined]
    many = tmp_path / "many"
    many.mkdir()
    for i in range(MAX_MERGE_FILES + 1):
        (many / f"{i:04}.jsonl").write_text("")
    with pytest.raises(UsageError, match=f"more than {MAX_MERGE_FILES} digests files"):
        merge_files(["many/*.jsonl"])


def test_tekton_digests_param_becomes_a_merge_file(tmp_path: Path) -> None:
    lines = (json.dumps({"rule": "main", "platform": "linux/amd64", "digest": D1}) + "\n"
             + json.dumps({"rule": "main", "platform": "linux/arm64", "digest": D2}))
    got = tk.inputs_from_env({"PARAM_COMMAND": "merge", "PARAM_MERGE": "a.jsonl",
                              "PARAM_DIGESTS": f"{lines}\n\n"}, tmp_path)
    first, written = got.merge
    assert first == "a.jsonl" and Path(written).parent == tmp_path
    assert Path(written).read_text() == f"{lines}\n\n"
    # run --merge takes it the same way; an empty param (no build pushed) adds nothing
    run = tk.inputs_from_env({"PARAM_COMMAND": "run", "PARAM_DIGESTS": lines}, tmp_path)
    assert len(run.merge) == 1 and Path(run.merge[0]).read_text() == lines + "\n"
    assert tk.inputs_from_env({"PARAM_COMMAND": "run", "PARAM_DIGESTS": " \n"}, tmp_path).merge == ()
    with pytest.raises(UsageError, match="param digests is"):
        tk.inputs_from_env({"PARAM_DIGESTS": "x" * (tk.MAX_DIGESTS_PARAM + 1)}, tmp_path)


@pytest.mark.parametrize(
    ("command", "doc", "expected"),
    [
        pytest.param(
            "build",
            {"builds": [{"image": "r/a", "index_digest": D1, "images": ["r/a:1"]}],
             "digests": [{"rule": "main", "image": "r/a", "platform": "linux/arm64", "digest": D2}]},
            {"digest": D2, "images": f"r/a@{D2}", "tags": "", "status": "succeeded"},
            id="build-by-digest-moves-no-tag",
        ),
        pytest.param(
            "merge",
            {"builds": [{"image": "r/a", "index_digest": D1, "images": ["r/a:1", "r/a:latest"]}]},
            {"digest": D1, "images": f"r/a@{D1}", "tags": "r/a:1\nr/a:latest", "status": "succeeded"},
            id="merge-index-and-tags",
        ),
        pytest.param("merge", {}, {"digest": "", "status": "failed"}, id="merge-failed"),
    ],
)
def test_outputs_of_multi_runner_commands(command: str, doc: dict[str, Any], expected: dict[str, str]) -> None:
    code = 1 if expected["status"] == "failed" else 0
    got = outputs.from_build(doc, exit_code=code, command=command)
    assert got.command == command
    values = got.values()
    assert {k: values[k] for k in expected} == expected
