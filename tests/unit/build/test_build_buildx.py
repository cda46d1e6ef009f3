"""The buildx builder against a recorded-argv stand-in (no Docker engine can run here).

The stand-in is an executable ``docker`` put first on ``PATH``: it appends its argv, its
environment and the ``config.json`` it would read to a JSON-lines record, answers
``buildx version``/``info``/``buildx inspect``/``buildx create`` like Docker does, and for
``buildx build`` writes a valid OCI layout (``--output type=oci,dest=DIR,tar=false``) and
the ``--metadata-file``. Tests assert the exact argv and that no secret reaches argv or env.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from acr_ci.build.base import BuildJob
from acr_ci.build.buildx import CONTAINER_BUILDER, BuildxBuilder, parse_inspect
from acr_ci.build.select import select_builder
from acr_ci.build.service import prepare_job
from acr_ci.cli import main
from acr_ci.config.model import Builder as BuilderChoice
from acr_ci.errors import BuildError
from acr_ci.models import BuildCache, BuildPlan, CacheMode, CacheOutcome, RefContext, RefType
from acr_ci.registry.auth import Credentials, StaticCredentials

ROOT = Path(__file__).resolve().parents[3]
SECRET = "s3cret-Pa55-never-in-argv"
SHA = "0123456789abcdef0123456789abcdef01234567"

STANDIN = r'''#!PYTHON
import json, os, sys
from pathlib import Path
sys.path.insert(0, ROOT)
state = Path(os.environ["STANDIN_STATE"])
argv = sys.argv[1:]
cfg = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
with open(state / "record.jsonl", "a") as f:
    f.write(json.dumps({"argv": argv, "env": dict(os.environ),
                        "config": cfg.read_text() if cfg.exists() else None}) + "\n")
if argv[:2] == ["buildx", "version"]:
    print("github.com/docker/buildx v0.17.1 standin"); sys.exit(0)
if argv == ["info"]:
    sys.exit(1 if (state / "no-engine").exists() else 0)
if argv[:2] == ["buildx", "inspect"]:
    if len(argv) == 3:
        sys.exit(0 if (state / "created").exists() else 1)
    driver = (state / "driver").read_text() if (state / "driver").exists() else "docker"
    print(f"Name:   default\nDriver: {driver}\n\nNodes:\nName:      default\nPlatforms: linux/amd64, linux/386")
    sys.exit(0)
if argv[:2] == ["buildx", "create"]:
    (state / "created").touch(); sys.exit(0)
if argv[:2] == ["buildx", "build"]:
    print("#1 [internal] load build definition from Dockerfile", flush=True)
    if (state / "fail").exists():
        for i in range(30):
            print(f"#9 step output line {i}")
        print("ERROR: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3")
        sys.exit(1)
    opts = {}
    i = 2
    while i < len(argv) - 1:
        if argv[i].startswith("--") and not argv[i + 1].startswith("--"):
            opts.setdefault(argv[i], argv[i + 1]); i += 2
        else:
            i += 1
    out = dict(kv.split("=", 1) for kv in opts["--output"].split(","))
    assert out["type"] == "oci" and out["tar"] == "false", out
    from tests.support.buildenv import write_busybox_layout
    arches = [p.split("/")[1] for p in opts["--platform"].split(",")]
    bins = {}
    for a in arches:
        b = state / f"bin-{a}"; b.write_text(a); bins[a] = b
    lay = write_busybox_layout(Path(out["dest"]), bins, applets=["sh"])
    Path(opts["--metadata-file"]).write_text(json.dumps(
        {"containerimage.digest": lay.index_digest, "buildx.build.ref": "standin/x/y"}))
    if (state / "build-log").exists():
        print((state / "build-log").read_text(), end="", flush=True)
    print("#12 exporting to oci image format", flush=True)
    print("#12 DONE 0.1s")
    sys.exit(0)
sys.exit(f"stand-in: unexpected docker {argv}")
'''


class Standin:
    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.state = root / "state"
        self.bin.mkdir(parents=True)
        self.state.mkdir()
        script = self.bin / "docker"
        script.write_text(
            STANDIN.replace("PYTHON", sys.executable).replace("sys.path.insert(0, ROOT)", f"sys.path.insert(0, {str(ROOT)!r})")
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

    def records(self) -> list[dict[str, Any]]:
        path = self.state / "record.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [r["argv"] for r in self.records()]

    def build_record(self) -> dict[str, Any]:
        builds = [r for r in self.records() if r["argv"][:2] == ["buildx", "build"]]
        assert len(builds) == 1
        return builds[0]


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Standin:
    s = Standin(tmp_path / "standin")
    monkeypatch.setenv("PATH", f"{s.bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_STATE", str(s.state))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    return s


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text(
        "ARG BASE=private.example.com/base/busybox:1\nFROM ${BASE}\nRUN true\n"
    )
    (root / "app" / "Alt.Dockerfile").write_text("FROM scratch\n")
    return root


REF = RefContext(
    type=RefType.BRANCH,
    name="main",
    sha=SHA,
    time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
)


def make_plan(**kw: Any) -> BuildPlan:
    values: dict[str, Any] = {
        "rule": "web", "image": "reg.example.com/team/app", "tags": ("v1", "latest"),
        "platforms": ("linux/amd64", "linux/arm64"), "context": "app", "dockerfile": "Dockerfile",
    }
    values.update(kw)
    return BuildPlan(**values)


def job_for(plan: BuildPlan, repo: Path, tmp_path: Path, **kw: Any) -> BuildJob:
    return prepare_job(
        plan, REF, config_dir=repo, layout=tmp_path / "out" / "layout",
        secrets_dir=tmp_path / "secrets", env={}, log=lambda line: None, **kw,
    )


ANN_ARGS = [
    "--label", f"org.opencontainers.image.revision={SHA}",
    "--label", "org.opencontainers.image.created=2026-01-02T03:04:05Z",
    "--label", "org.opencontainers.image.version=v1",
    "--label", "org.opencontainers.image.ref.name=v1",
    "--annotation", f"index,manifest:org.opencontainers.image.revision={SHA}",
    "--annotation", "index,manifest:org.opencontainers.image.created=2026-01-02T03:04:05Z",
    "--annotation", "index,manifest:org.opencontainers.image.version=v1",
    "--annotation", "index,manifest:org.opencontainers.image.ref.name=v1",
]


@pytest.mark.parametrize(
    ("case", "plan_kw", "expected_middle"),
    [
        ("defaults", {}, ["--platform", "linux/amd64,linux/arm64"]),
        ("single-platform", {"platforms": ("linux/arm64",)}, ["--platform", "linux/arm64"]),
        (
            "no-cache",
            {"no_cache": True},
            ["--platform", "linux/amd64,linux/arm64", "--no-cache", "--pull"],
        ),
        (
            "registry-cache",
            {"cache": BuildCache(ref="cache.example/team/cache:web", mode=CacheMode.MIN)},
            [
                "--platform", "linux/amd64,linux/arm64",
                "--cache-from", "type=registry,ref=cache.example/team/cache:web",
                "--cache-to", "type=registry,ref=cache.example/team/cache:web,mode=min,ignore-error=true",
            ],
        ),
        (
            # no_cache: nothing read, the cache still written
            "registry-cache-no-cache",
            {"no_cache": True, "cache": BuildCache(ref="cache.example/c", mode=CacheMode.MAX)},
            [
                "--platform", "linux/amd64,linux/arm64", "--no-cache", "--pull",
                "--cache-to", "type=registry,ref=cache.example/c,mode=max,ignore-error=true",
            ],
        ),
        (
            "build-args-in-order",
            {"args": MappingProxyType({"GREETING": "hi there; $(rm -rf /)", "B": "-x"})},
            [
                "--platform", "linux/amd64,linux/arm64",
                "--build-arg", "GREETING=hi there; $(rm -rf /)",
                "--build-arg", "B=-x",
            ],
        ),
    ],
)
def test_exact_argv(
    standin: Standin, repo: Path, tmp_path: Path, case: str, plan_kw: dict[str, Any],
    expected_middle: list[str],
) -> None:
    (standin.state / "driver").write_text("docker-container")  # the current builder can do it
    plan = make_plan(**plan_kw)
    result = BuildxBuilder().build(job_for(plan, repo, tmp_path))
    layout = tmp_path / "out" / "layout"
    record = standin.build_record()
    ann_args = ANN_ARGS
    if len(plan.platforms) == 1:  # no index is exported: manifest annotations only
        ann_args = [a.replace("index,manifest:", "manifest:") for a in ANN_ARGS]
    assert record["argv"] == [
        "buildx", "build", *expected_middle, *ann_args,
        "--file", str(repo / "app" / "Dockerfile"),
        "--output", f"type=oci,dest={layout},tar=false",
        "--metadata-file", record["argv"][-4],
        "--progress", "plain", str(repo / "app"),
    ], case
    assert record["argv"][-5] == "--metadata-file"
    assert set(result.platforms) == set(plan.platforms)
    assert result.builder == "buildx" and result.layout == layout
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == result.index_digest


def test_dockerfile_option(standin: Standin, repo: Path, tmp_path: Path) -> None:
    (standin.state / "driver").write_text("docker-container")
    BuildxBuilder().build(job_for(make_plan(dockerfile="Alt.Dockerfile"), repo, tmp_path))
    argv = standin.build_record()["argv"]
    assert argv[argv.index("--file") + 1] == str(repo / "app" / "Alt.Dockerfile")


def test_creates_a_container_builder_when_the_default_uses_the_docker_driver(
    standin: Standin, repo: Path, tmp_path: Path
) -> None:
    BuildxBuilder().build(job_for(make_plan(), repo, tmp_path))
    argvs = standin.argvs()
    assert argvs[:3] == [
        ["buildx", "inspect"],
        ["buildx", "inspect", CONTAINER_BUILDER],
        ["buildx", "create", "--name", CONTAINER_BUILDER, "--driver", "docker-container", "--bootstrap"],
    ]
    assert argvs[3][:4] == ["buildx", "build", "--builder", CONTAINER_BUILDER]
    # the second build reuses it
    BuildxBuilder().build(job_for(make_plan(), repo, tmp_path))
    assert [a for a in standin.argvs() if a[:2] == ["buildx", "create"]] == [argvs[2]]


def test_credentials_reach_buildx_by_file_only(
    standin: Standin, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACR_CI_REGISTRY_PASSWORD", SECRET)
    home_docker = tmp_path / "home" / ".docker"
    (home_docker / "buildx").mkdir(parents=True)
    (home_docker / "config.json").write_text(json.dumps({"auths": {"other.example": {"auth": "b3RoZXI6eA=="}}}))
    creds = StaticCredentials(Credentials("robot", SECRET), frozenset({"private.example.com"}))
    job = job_for(make_plan(), repo, tmp_path, credentials=creds)
    assert job.auth_file is not None and job.auth_file.stat().st_mode & 0o077 == 0
    BuildxBuilder().build(job)
    for record in standin.records():
        assert SECRET not in json.dumps(record["argv"]), record["argv"]
        assert SECRET not in json.dumps(record["env"]), "no secret in the builder's environment"
    config = json.loads(standin.build_record()["config"])
    assert base64.b64decode(config["auths"]["private.example.com"]["auth"]).decode() == f"robot:{SECRET}"
    assert config["auths"]["other.example"] == {"auth": "b3RoZXI6eA=="}, "the runner's logins are kept"
    private = Path(standin.build_record()["env"]["DOCKER_CONFIG"])
    assert not private.exists(), "the private DOCKER_CONFIG is removed after the build"


def test_failure_shows_the_last_lines(standin: Standin, repo: Path, tmp_path: Path) -> None:
    (standin.state / "fail").touch()
    lines: list[str] = []
    job = prepare_job(
        make_plan(), REF, config_dir=repo, layout=tmp_path / "l", secrets_dir=tmp_path / "s",
        env={}, log=lines.append,
    )
    with pytest.raises(BuildError) as e:
        BuildxBuilder().build(job)
    message = e.value.message
    assert "docker buildx build failed (exit 1)" in message
    assert "exit code: 3" in message and "line 29" in message and "line 11\n" in message
    assert "line 10\n" not in message, "only the last 20 lines"
    assert all(line.startswith("[web] ") for line in lines)
    assert "[web] #9 step output line 0" in lines, "the whole log was streamed"


def test_metadata_digest_must_match_the_layout(
    standin: Standin, repo: Path, tmp_path: Path
) -> None:
    (standin.state / "driver").write_text("docker-container")
    script = standin.bin / "docker"
    script.write_text(script.read_text().replace('"containerimage.digest": lay.index_digest', '"containerimage.digest": "sha256:" + "0" * 64'))
    with pytest.raises(BuildError, match="buildx reported digest sha256:0000"):
        BuildxBuilder().build(job_for(make_plan(), repo, tmp_path))


def test_parse_inspect() -> None:
    text = "Name:          b\nDriver:        docker-container\nNodes:\nPlatforms:     linux/amd64*, linux/arm64, linux/386\n"
    assert parse_inspect(text) == ("docker-container", ["linux/amd64", "linux/arm64", "linux/386"])


# -- builder: auto -------------------------------------------------------------------------


def test_auto_prefers_buildx_with_an_engine(standin: Standin) -> None:
    lines: list[str] = []
    builder = select_builder(BuilderChoice.AUTO, log=lines.append)
    assert builder.name == "buildx"
    assert lines == ["builder: auto → buildx (docker buildx and a Docker engine are available)"]
    assert standin.argvs() == [["buildx", "version"], ["info"]]


def test_auto_falls_back_to_buildah_without_an_engine(standin: Standin) -> None:
    (standin.state / "no-engine").touch()
    lines: list[str] = []
    builder = select_builder(BuilderChoice.AUTO, log=lines.append)
    assert builder.name == "buildah"
    assert lines == ["builder: auto → buildah (no working docker buildx with an engine)"]


def test_auto_without_any_builder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BuildError) as e:
        select_builder(BuilderChoice.AUTO, env={"PATH": str(empty)}, log=lambda line: None)
    assert "neither docker buildx" in e.value.message
    assert e.value.hint and "apt-get install buildah" in e.value.hint and "buildx" in e.value.hint


# -- through the CLI ----------------------------------------------------------------------


def test_cli_build_with_buildx(
    standin: Standin, repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (standin.state / "driver").write_text("docker-container")
    for var in ("GITHUB_ACTIONS", "GITLAB_CI", "CI"):
        monkeypatch.delenv(var, raising=False)
    (repo / ".acr-ci.yml").write_text(
        "version: 1\n"
        "image: reg.example.com/team/app\n"
        "build:\n"
        "  builder: buildx\n"
        "  rules:\n"
        "    - name: web\n"
        "      type: branch\n"
        "      match: main\n"
        "      context: app\n"
        "      tags: [latest, '${commit}']\n"
        "      platforms: [linux/amd64, linux/arm64]\n"
        "      args: {GREETING: hello}\n"
        "      no_cache: true\n"
    )
    out_json = tmp_path / "out.json"
    code = main([
        "build", "--config", str(repo / ".acr-ci.yml"), "--ref", "refs/heads/main", "--sha", SHA,
        "--time", "2026-01-02T03:04:05Z", "--output-json", str(out_json),
        "--layout-dir", str(tmp_path / "layouts"),
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(out_json.read_text())
    [build] = doc["builds"]
    assert build["rule"] == "web" and build["tags"] == ["latest", "012345"]
    assert set(build["platforms"]) == {"linux/amd64", "linux/arm64"}
    assert captured.out.splitlines() == [
        f"reg.example.com/team/app:latest@{build['index_digest']}",
        f"reg.example.com/team/app:012345@{build['index_digest']}",
    ]
    argv = standin.build_record()["argv"]
    assert ["--no-cache", "--pull"] == argv[argv.index("--no-cache"):argv.index("--no-cache") + 2]
    assert argv[argv.index("--build-arg") + 1] == "GREETING=hello"
    assert "[web] #12 exporting to oci image format" in captured.err


CACHE = BuildCache(ref="cache.example/team/cache:web", mode=CacheMode.MAX)
IMPORTED = "#3 importing cache manifest from cache.example/team/cache:web\n#3 DONE 0.1s\n"
STEP_CACHED = "#6 [2/2] RUN true\n#6 CACHED\n"
EXPORTED = "#13 exporting cache to registry\n#13 preparing build cache for export\n#13 DONE 0.4s\n"
EXPORT_FAILED = (
    "#13 exporting cache to registry\n#13 preparing build cache for export\n"
    "#13 ERROR: failed to push cache.example/team/cache:web: unexpected status: 401 Unauthorized\n"
)
IMPORT_FAILED = (
    "#3 importing cache manifest from cache.example/team/cache:web\n"
    "#3 ERROR: failed to do request: Head \"https://cache.example/v2/team/cache/manifests/web\": dial tcp: connection refused\n"
)


@pytest.mark.parametrize(
    ("case", "log", "no_cache", "expected", "warned"),
    [
        ("hit-and-written", IMPORTED + STEP_CACHED + EXPORTED, False,
         CacheOutcome(CACHE.ref, read=True, written=True), False),
        ("empty-cache", "#3 importing cache manifest from cache.example/team/cache:web\n#3 DONE 0.0s\n"
         "#6 [2/2] RUN true\n#6 DONE 1.0s\n" + EXPORTED, False, CacheOutcome(CACHE.ref, read=False, written=True), False),
        ("export-refused", IMPORTED + STEP_CACHED + EXPORT_FAILED, False,
         CacheOutcome(CACHE.ref, read=True, written=False,
                      error="failed to push cache.example/team/cache:web: unexpected status: 401 Unauthorized"), True),
        ("import-unreachable", IMPORT_FAILED + "#6 [2/2] RUN true\n#6 DONE 1.0s\n" + EXPORTED, False,
         CacheOutcome(CACHE.ref, read=False, written=True,
                      error='failed to do request: Head "https://cache.example/v2/team/cache/manifests/web": '
                            "dial tcp: connection refused"), True),
        # CACHED from the builder's own cache does not count as read when the registry was not asked
        ("no-cache-writes-only", STEP_CACHED + EXPORTED, True, CacheOutcome(CACHE.ref, read=False, written=True), False),
    ],
)
def test_cache_outcome_from_buildkit_log(
    standin: Standin, repo: Path, tmp_path: Path, case: str, log: str, no_cache: bool,
    expected: CacheOutcome, warned: bool,
) -> None:
    (standin.state / "driver").write_text("docker-container")
    (standin.state / "build-log").write_text(log)
    lines: list[str] = []
    job = prepare_job(
        make_plan(cache=CACHE, no_cache=no_cache), REF, config_dir=repo, layout=tmp_path / "out" / "layout",
        secrets_dir=tmp_path / "secrets", env={}, log=lines.append,
    )
    result = BuildxBuilder().build(job)
    assert result.cache == expected, case
    warnings = [line for line in lines if "warning: registry cache" in line]
    assert len(warnings) == (1 if warned else 0), lines
    if warned:
        assert expected.error is not None and expected.error in warnings[0]


def test_unusable_cache_is_left_out_and_reported(standin: Standin, repo: Path, tmp_path: Path) -> None:
    (standin.state / "driver").write_text("docker-container")
    job = replace(job_for(make_plan(cache=CACHE), repo, tmp_path), cache_error="cannot read the cache: refused")
    result = BuildxBuilder().build(job)
    argv = standin.build_record()["argv"]
    assert "--cache-from" not in argv and "--cache-to" not in argv
    assert result.cache == CacheOutcome(CACHE.ref, read=False, written=False, error="cannot read the cache: refused")
    assert make_plan().cache is None and BuildxBuilder().build(job_for(make_plan(), repo, tmp_path)).cache is None
