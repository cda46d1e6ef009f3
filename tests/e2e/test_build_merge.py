"""One runner per architecture, for real: `acr-ci build --platform P --push-by-digest` in two
separate processes with separate build storage (CONTAINERS_STORAGE_CONF), then `acr-ci
merge` / `acr-ci run --merge` in a third. Everything is read back from the registry over
plain HTTP (tests/e2e/sync_support.py), not through acr-ci's client.

The arm64 "runner" runs its build through qemu here (this machine has one architecture);
on a real pipeline each job runs on its own native runner.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.sync_support import digest_at, manifest, tags_at
from tests.support import RegistryServer
from tests.support.buildenv import BaseImage, private_storage
from tests.support.webhook import WebhookReceiver

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SHA = "0badc0de0123456789abcdef0123456789abcdef"
TIME = "2026-11-30T08:15:00Z"
REF = "refs/heads/release-v3"
TAGS = ["latest", "v3", f"v3-{SHA[:8]}"]
PLATFORMS = {"amd64": "linux/amd64", "arm64": "linux/arm64"}


def config_text(image: str, base: str, extra: str = "") -> str:
    return f"""\
version: 1
image: {image}
immutable_tags: true
build:
  builder: buildah
  rules:
    - name: release
      type: branch
      match: release-(?<v>\\w+)
      context: hello
      tags: [latest, "${{v}}", "${{v}}-${{commit:8}}"]
      platforms: [linux/amd64, linux/arm64]
      args: {{BASE: "{base}", GREETING: "one runner per arch"}}
{extra}"""


def acr(
    *args: str, cwd: Path, storage: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "CI_", "GITLAB", "ACR_CI_", "CONTAINERS_STORAGE"))
    }
    base.pop("CI", None)
    if storage is not None:
        base.update(
            CONTAINERS_STORAGE_CONF=str(storage), STORAGE_DRIVER="vfs", BUILDAH_ISOLATION="chroot"
        )
    return subprocess.run(
        [sys.executable, "-m", "acr_ci", *args],
        capture_output=True, text=True, cwd=cwd, env={**base, **(env or {})}, timeout=900,
    )


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_lines(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@dataclass
class Runners:
    repo: Path
    """The checkout (config and examples/hello)."""
    image: str
    registry: RegistryServer
    files: dict[str, Path]
    """arch → the digests file that runner wrote."""
    outputs: dict[str, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def storage_amd64(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from private_storage(tmp_path_factory)


@pytest.fixture(scope="module")
def storage_arm64(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from private_storage(tmp_path_factory)


@pytest.fixture(scope="module")
def runners(
    busybox_base: BaseImage,
    registry: RegistryServer,
    storage_amd64: Path,
    storage_arm64: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Runners:
    """Two runner processes, each with its own build storage, each building one platform."""
    repo = tmp_path_factory.mktemp("checkout")
    shutil.copytree(ROOT / "examples" / "hello", repo / "hello")
    image = registry.ref("team/merged")
    (repo / ".acr-ci.yml").write_text(config_text(image, busybox_base.ref))
    files: dict[str, Path] = {}
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}
    for arch, storage in (("amd64", storage_amd64), ("arm64", storage_arm64)):
        files[arch] = repo / f"digests-{arch}.jsonl"
        outputs[arch] = p = acr(
            "build", "--ref", REF, "--sha", SHA, "--time", TIME,
            "--platform", PLATFORMS[arch], "--push-by-digest", "--digests-file", str(files[arch]),
            "--layout-dir", str(repo / f"work-{arch}"),
            cwd=repo, storage=storage,
        )
        assert p.returncode == 0, p.stderr[-4000:]
    return Runners(repo, image, registry, files, outputs)


def relocate(runners: Runners, repository: str, tmp: Path) -> dict[str, Path]:
    """The runners' platform images copied by digest to ``repository`` of the same registry
    (as if the runners had pushed there), and digests files naming it."""
    from acr_ci.registry.client import Client
    from acr_ci.registry.reference import Reference

    new_image = runners.registry.ref(repository)
    out: dict[str, Path] = {}
    with Client(insecure=[runners.registry.host]) as client:
        for arch, path in runners.files.items():
            lines = lines_of(path)
            for line in lines:
                client.copy(Reference.parse(f"{line['image']}@{line['digest']}"),
                            Reference.parse(new_image), [])
                line["image"] = new_image
            out[arch] = write_lines(tmp / f"{repository.replace('/', '-')}-{arch}.jsonl", lines)
    return out


# -- the runners ------------------------------------------------------------------------


def test_each_runner_pushes_its_platform_by_digest_and_moves_no_tag(runners: Runners) -> None:
    repo_path = "team/merged"
    for arch, path in runners.files.items():
        [line] = lines_of(path)
        assert set(line) == {"rule", "image", "platform", "digest", "ref", "sha", "time"}
        assert (line["rule"], line["image"], line["platform"]) == (
            "release", runners.image, PLATFORMS[arch]
        )
        assert (line["ref"], line["sha"]) == (REF, SHA)
        # the registry holds that digest, an image manifest whose config says this arch
        got = manifest(runners.registry, repo_path, line["digest"])
        assert got is not None
        doc = json.loads(got[0])
        assert "layers" in doc and "manifests" not in doc
        config = json.loads(
            _blob(runners.registry, repo_path, doc["config"]["digest"])
        )
        assert (config["os"], config["architecture"]) == ("linux", arch)
        assert runners.outputs[arch].stdout.splitlines() == [f"{runners.image}@{line['digest']}"]
    # same time in both files, parsed to the same instant as the pipeline's
    times = {lines_of(p)[0]["time"] for p in runners.files.values()}
    assert len(times) == 1
    assert tags_at(runners.registry, repo_path) == [], "push by digest creates no tag"


def _blob(server: RegistryServer, repo: str, digest: str) -> bytes:
    import requests

    r = requests.get(f"{server.url}/v2/{repo}/blobs/{digest}", timeout=30)
    r.raise_for_status()
    return r.content


# -- merges that must not tag ----------------------------------------------------------


def test_merge_missing_a_platform_exits_1_and_tags_nothing(runners: Runners) -> None:
    before = tags_at(runners.registry, "team/merged")
    p = acr("merge", str(runners.files["amd64"]), cwd=runners.repo)
    assert p.returncode == 1, p.stderr
    assert "no digest for platform(s) linux/arm64" in p.stderr
    assert "Traceback" not in p.stderr
    assert tags_at(runners.registry, "team/merged") == before


def test_merge_of_two_shas_exits_1_and_tags_nothing(runners: Runners, tmp_path: Path) -> None:
    before = tags_at(runners.registry, "team/merged")
    other = lines_of(runners.files["arm64"])
    other[0]["sha"] = "1111111111111111111111111111111111111111"
    mixed = write_lines(tmp_path / "other-sha.jsonl", other)
    p = acr("merge", str(runners.files["amd64"]), str(mixed), cwd=runners.repo)
    assert p.returncode == 1, p.stderr
    assert "disagree on sha" in p.stderr and "other-sha.jsonl:1" in p.stderr
    assert tags_at(runners.registry, "team/merged") == before


def test_merge_of_two_digests_for_one_platform_exits_1(runners: Runners, tmp_path: Path) -> None:
    twice = lines_of(runners.files["amd64"])
    twice[0]["digest"] = lines_of(runners.files["arm64"])[0]["digest"]
    clash = write_lines(tmp_path / "clash.jsonl", twice)
    p = acr("merge", *map(str, runners.files.values()), str(clash), cwd=runners.repo)
    assert p.returncode == 1, p.stderr
    assert "two digests for linux/amd64" in p.stderr


def test_merge_of_a_bad_file_names_file_line_and_field(runners: Runners, tmp_path: Path) -> None:
    bad = lines_of(runners.files["amd64"])
    bad[0]["digest"] = "sha256:nothex"
    path = tmp_path / "bad.jsonl"
    path.write_text("\n" + json.dumps(bad[0]) + "\n")
    p = acr("merge", str(path), str(runners.files["arm64"]), cwd=runners.repo)
    assert p.returncode == 2, p.stderr
    assert f"{path}:2: field 'digest'" in p.stderr and "Traceback" not in p.stderr


def test_merge_refuses_to_move_an_immutable_tag_before_any_tag_moves(
    runners: Runners, tmp_path: Path
) -> None:
    files = relocate(runners, "team/immutable", tmp_path)
    # v3 already names another image there (the amd64 image alone)
    amd64 = lines_of(files["amd64"])[0]["digest"]
    from acr_ci.registry.client import Client
    from acr_ci.registry.reference import Reference

    with Client(insecure=[runners.registry.host]) as client:
        target = Reference.parse(runners.registry.ref("team/immutable"))
        client.copy(target.with_digest(amd64), target, ["v3"])
    config = tmp_path / "immutable.yml"
    config.write_text(config_text(runners.registry.ref("team/immutable"), "unused"))
    p = acr("merge", "--config", str(config), *map(str, files.values()), cwd=runners.repo)
    assert p.returncode == 1, p.stderr
    assert "'v3' points at" in p.stderr and "immutable" in p.stderr
    assert tags_at(runners.registry, "team/immutable") == ["v3"], "latest was not created"
    assert digest_at(runners.registry, "team/immutable", "v3") == amd64


# -- the merge ---------------------------------------------------------------------------


def test_merge_tags_one_index_with_both_platforms(runners: Runners, tmp_path: Path) -> None:
    assert tags_at(runners.registry, "team/merged") == [], "no tag existed before the merge"
    out_json = tmp_path / "merged.json"
    # any order, one file twice
    files = [runners.files["arm64"], runners.files["amd64"], runners.files["arm64"]]
    p = acr("merge", *map(str, files), "--output-json", str(out_json), cwd=runners.repo)
    assert p.returncode == 0, p.stderr[-3000:]

    digest = digest_at(runners.registry, "team/merged", "latest")
    assert digest is not None
    assert sorted(tags_at(runners.registry, "team/merged")) == sorted(TAGS)
    for tag in TAGS:
        assert digest_at(runners.registry, "team/merged", tag) == digest
    assert p.stdout.splitlines() == [f"{runners.image}:{t}@{digest}" for t in TAGS]

    got = manifest(runners.registry, "team/merged", digest)
    assert got is not None
    data, media_type = got
    index = json.loads(data)
    assert media_type == "application/vnd.oci.image.index.v1+json"
    wanted = {
        lines_of(path)[0]["digest"]: arch for arch, path in runners.files.items()
    }
    assert {m["digest"]: m["platform"]["architecture"] for m in index["manifests"]} == wanted
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    # the annotations a single-machine build writes: the same the runners put on each image
    notes = index["annotations"]
    assert notes["org.opencontainers.image.revision"] == SHA
    assert notes["org.opencontainers.image.created"] == TIME
    assert notes["org.opencontainers.image.version"] == "latest"
    for entry in index["manifests"]:
        platform_manifest = manifest(runners.registry, "team/merged", entry["digest"])
        assert platform_manifest is not None
        # (buildah adds base.name/base.digest on the image manifests, not on an index)
        assert notes.items() <= json.loads(platform_manifest[0])["annotations"].items()
        assert entry["size"] == len(platform_manifest[0])
        assert entry["mediaType"] == platform_manifest[1]

    doc = json.loads(out_json.read_text())
    [build] = doc["builds"]
    assert build["index_digest"] == digest and build["tags"] == TAGS
    assert build["platforms"] == {PLATFORMS[a]: d for d, a in wanted.items()}

    # merging again is a no-op: same digest, immutable tags already there
    again = acr("merge", *map(str, files), cwd=runners.repo)
    assert again.returncode == 0, again.stderr
    assert digest_at(runners.registry, "team/merged", "v3") == digest


def test_merge_disagreeing_with_its_own_ref_exits_1(runners: Runners) -> None:
    p = acr(
        "merge", "--ref", "refs/heads/release-v4", *map(str, runners.files.values()),
        cwd=runners.repo,
    )
    assert p.returncode == 1, p.stderr
    assert "refs/heads/release-v4" in p.stderr and REF in p.stderr
    p = acr("merge", "--time", "2026-11-30T08:16:00Z", *map(str, runners.files.values()),
            cwd=runners.repo)
    assert p.returncode == 1 and "--time" in p.stderr, p.stderr


# -- run --merge ------------------------------------------------------------------------



def test_run_merge_gates_mirrors_and_announces_the_merged_index(
    runners: Runners,
    registry_factory: Callable[..., RegistryServer],
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    files = relocate(runners, "team/chain", tmp_path)
    mirror = registry_factory("plain")
    report = tmp_path / "trivy.json"
    report.write_text(json.dumps({
        "SchemaVersion": 2, "ArtifactName": "hello", "ArtifactType": "container_image",
        "Results": [{"Target": "hello", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
            {"VulnerabilityID": "CVE-2023-0001", "PkgName": "busybox", "InstalledVersion": "1",
             "Severity": "LOW"}]}],
    }))
    config = tmp_path / "chain.yml"
    config.write_text(config_text(runners.registry.ref("team/chain"), "unused", f"""\
scan:
  engine: report
  report: {report}
  block: {{severity: high}}
sync:
  - name: mirror
    to: {mirror.host}/mirror
triggers:
  - name: deploy
    url: {receiver.url("/deploy")}
    on: all
"""))
    record_path = tmp_path / "record.json"
    p = acr("run", "--config", str(config), "--merge", *map(str, files.values()),
            "--record", str(record_path), cwd=runners.repo)
    assert p.returncode == 0, p.stderr[-3000:]

    digest = digest_at(runners.registry, "team/chain", "v3")
    assert digest is not None
    for tag in TAGS:
        assert digest_at(runners.registry, "team/chain", tag) == digest
        assert digest_at(mirror, "mirror/chain", tag) == digest
    mirrored = manifest(mirror, "mirror/chain", digest)
    assert mirrored is not None and len(json.loads(mirrored[0])["manifests"]) == 2
    assert sorted(r.json()["push_data"]["tag"] for r in receiver.to("/deploy")) == sorted(TAGS)
    assert {r.json()["push_data"]["digest"] for r in receiver.to("/deploy")} == {digest}

    doc = json.loads(record_path.read_text())
    [image] = doc["images"]
    assert image["digest"] == digest
    assert [(s["step"], s["status"]) for s in image["steps"]] == [
        ("merge", "succeeded"), ("push", "succeeded"), ("scan", "succeeded"),
        ("sync", "succeeded"), *[("trigger", "succeeded")],
    ]
    merge_step = image["steps"][0]["detail"]
    assert merge_step["digest"] == digest
    assert sorted(merge_step["platforms"]) == ["linux/amd64", "linux/arm64"]
    assert doc["ref"]["name"] == "release-v3" and doc["ref"]["sha"] == SHA
    from acr_ci import record

    record.validate(doc)  # the schema shipped in the package
    header = next(line for line in p.stdout.splitlines() if line.startswith("| rule |"))
    assert header == "| rule | image | tags | digest | merge | push | scan | sync | triggers |"


# -- the GitHub Action's merge job, for real --------------------------------------------------


def github_merge(runners: Runners, workspace: Path, config: Path, sha: str) -> tuple[
        subprocess.CompletedProcess[str], dict[str, str]]:
    """The action's merge step as the runner starts it (INPUT_*, GITHUB_* and a fresh
    GITHUB_OUTPUT), on the files download-artifact put into ``workspace/digests``."""
    from tests.frontends.frontend_support import read_github_outputs

    event = workspace / "event.json"
    event.write_text(json.dumps({"ref": REF, "after": sha, "head_commit": {"id": sha, "timestamp": TIME},
                                 "repository": {"full_name": "team/app"}}))
    output = workspace / "github_output"
    output.write_text("")
    env = {
        "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REF": REF, "GITHUB_SHA": sha, "GITHUB_REPOSITORY": "team/app",
        "GITHUB_WORKSPACE": str(workspace), "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(workspace / "summary.md"), "RUNNER_TEMP": str(workspace),
        "INPUT_COMMAND": "merge", "INPUT_MERGE": "digests/*.jsonl", "INPUT_CONFIG": str(config),
        "INPUT_SUMMARY": "false",
    }
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "CI_", "GITLAB", "ACR_CI_", "INPUT_", "RUNNER_"))}
    base.pop("CI", None)
    p = subprocess.run([sys.executable, "-m", "acr_ci.frontends.github"], capture_output=True,
                       text=True, cwd=workspace, env={**base, **env}, timeout=300)
    return p, read_github_outputs(output.read_text())


def test_the_github_merge_job_tags_the_index_and_outputs_its_digest(
    runners: Runners, tmp_path: Path
) -> None:
    files = relocate(runners, "team/github", tmp_path)
    workspace = tmp_path / "ws"
    (workspace / "digests").mkdir(parents=True)
    for path in files.values():  # download-artifact with merge-multiple: one folder
        shutil.copy(path, workspace / "digests" / path.name)
    config = tmp_path / "github.yml"
    config.write_text(config_text(runners.registry.ref("team/github"), "unused"))

    # a merge job of another commit's pipeline refuses the files, tagging nothing
    p, _ = github_merge(runners, workspace, config, "f" * 40)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "runs for commit ffff" in p.stdout + p.stderr
    assert tags_at(runners.registry, "team/github") == []

    p, outputs = github_merge(runners, workspace, config, SHA)
    assert p.returncode == 0, p.stdout + p.stderr
    digest = digest_at(runners.registry, "team/github", "latest")
    assert digest is not None and outputs["digest"] == digest
    assert sorted(tags_at(runners.registry, "team/github")) == sorted(TAGS)
    image = runners.registry.ref("team/github")
    assert sorted(outputs["tags"].splitlines()) == sorted(f"{image}:{t}" for t in TAGS)
