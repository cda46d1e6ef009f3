"""The merge library's checks that need no registry (acr_ci.merge): reading digests files
written by hand here (hostile ones included), agreeing on the ref, choosing one digest per
platform, and `build`'s flag combinations. Merges against a real registry and real
builds are in tests/e2e/test_build_merge.py."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from acr_ci import config as config_mod
from acr_ci.build.service import select_platforms
from acr_ci.cli import main
from acr_ci.cli.build import BuildOptions, check_options
from acr_ci.errors import MergeError, UsageError
from acr_ci.merge import MAX_FILE_BYTES, JobRef, agreed_ref, prepare, read_digests
from acr_ci.models import BuildPlan, RefType
from acr_ci.registry.client import Client

SHA = "0123456789abcdef0123456789abcdef01234567"
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
IMAGE = "reg.example.com/team/app"


def line(**over: Any) -> dict[str, Any]:
    base = {"rule": "release", "image": IMAGE, "platform": "linux/amd64", "digest": A,
            "ref": "refs/heads/release-v1", "sha": SHA, "time": "2026-11-30T08:15:00+00:00"}
    return {**base, **over}


def digests(tmp_path: Path, name: str, *lines: dict[str, Any] | str) -> str:
    path = tmp_path / name
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return str(path)


# -- reading --------------------------------------------------------------------------


def test_lines_of_every_file_in_order_and_a_repeated_line_counts_once(tmp_path: Path) -> None:
    one = digests(tmp_path, "a.jsonl", line(), "", line(platform="linux/arm64", digest=B))
    two = digests(tmp_path, "b.jsonl", line(platform="linux/arm64", digest=B, extra="ignored"))
    got = read_digests([one, two])
    assert [(x.platform, x.digest, x.where) for x in got] == [
        ("linux/amd64", A, f"{one}:1"), ("linux/arm64", B, f"{one}:3"),
    ]


BAD_LINES = [
    ("not-json", "{nope", "f.jsonl:1"),
    ("not-an-object", "[1, 2]", "f.jsonl:1: not a JSON object"),
    ("missing-field", line(digest=None), "f.jsonl:1: field 'digest' must be a non-empty string (missing)"),
    ("number-field", line(rule=7), "field 'rule' must be a non-empty string (int '7')"),
    ("empty-rule", line(rule=""), "field 'rule' must be a non-empty string"),
    ("bad-digest", line(digest="sha256:xyz"), "field 'digest' 'sha256:xyz' is not sha256:<64 hex>"),
    ("sha512-digest", line(digest="sha512:" + "a" * 128), "is not sha256:<64 hex>"),
    ("bad-platform", line(platform="linux"), "field 'platform' 'linux' is not os/arch[/variant]"),
    ("pull-ref", line(ref="refs/pull/1/merge"), "field 'ref'"),
    ("bad-sha", line(sha="not-hex"), "field 'sha'"),
    ("bad-time", line(time="yesterday"), "time"),
    ("tagged-image", line(image=IMAGE + ":v1"), "must be REGISTRY/REPO"),
    ("long-field", line(rule="r" * 600), "field 'rule' is longer than 512 characters"),
    ("long-line", json.dumps(line()) + " " * 9000, "f.jsonl:1: the line is longer than 8192 bytes"),
    ("deep", "[" * 50 + "]" * 50, "f.jsonl:1"),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD_LINES, ids=[c[0] for c in BAD_LINES])
def test_a_bad_line_names_file_line_and_field(
    tmp_path: Path, case: str, text: dict[str, Any] | str, message: str
) -> None:
    os.chdir(tmp_path)
    digests(tmp_path, "f.jsonl", text)
    with pytest.raises(UsageError) as e:
        read_digests(["f.jsonl"])
    assert message in str(e.value)
    assert "Traceback" not in str(e.value)


def test_hostile_files_are_refused_in_one_line(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    big.write_bytes((json.dumps(line()) + "\n").encode() * (MAX_FILE_BYTES // 200 + 100))
    with pytest.raises(UsageError, match="digests file"):
        read_digests([str(big)])
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UsageError, match="not UTF-8"):
        read_digests([str(binary)])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="digests file"):
        read_digests([str(fifo)])
    with pytest.raises(UsageError, match="no such file"):
        read_digests([str(tmp_path / "absent.jsonl")])
    empty = digests(tmp_path, "empty.jsonl", "")
    with pytest.raises(UsageError, match="hold no line"):
        read_digests([empty])
    halves = []
    for half in (0, 1):  # each file below the size limit, together above the line limit
        path = tmp_path / f"many-{half}.jsonl"
        path.write_text("".join(
            json.dumps(line(digest="sha256:%064x" % (half * 3000 + i))) + "\n" for i in range(2049)))
        halves.append(str(path))
    with pytest.raises(UsageError, match="more than 4096 lines"):
        read_digests(halves)


# -- agreeing on the ref ------------------------------------------------------------------


def test_the_ref_comes_from_the_files(tmp_path: Path) -> None:
    lines = read_digests([digests(
        tmp_path, "f", line(), line(platform="linux/arm64", digest=B, sha=SHA.upper(),
                                    time="2026-11-30T09:15:00+01:00"))])
    ref = agreed_ref(lines, JobRef(event="push", repository="team/app", source="gitlab"))
    assert (ref.type, ref.name, ref.sha) == (RefType.BRANCH, "release-v1", SHA)
    assert ref.time == datetime(2026, 11, 30, 8, 15, tzinfo=UTC)  # the same instant
    assert (ref.event, ref.repository, ref.source) == ("push", "team/app", "gitlab")


DISAGREE = [
    ("ref", {"ref": "refs/tags/release-v1"}, "disagree on ref"),
    ("sha", {"sha": "f" * 40}, "disagree on sha"),
    ("time", {"time": "2026-11-30T08:15:01Z"}, "disagree on time"),
]


@pytest.mark.parametrize(("case", "over", "message"), DISAGREE, ids=[c[0] for c in DISAGREE])
def test_files_that_disagree_are_exit_1(
    tmp_path: Path, case: str, over: dict[str, str], message: str
) -> None:
    lines = read_digests([digests(tmp_path, "a", line()),
                          digests(tmp_path, "b", line(platform="linux/arm64", digest=B, **over))])
    with pytest.raises(MergeError) as e:
        agreed_ref(lines)
    assert message in str(e.value) and f"{tmp_path / 'b'}:1" in str(e.value)
    assert e.value.exit_code == 1


def test_the_merge_jobs_own_ref_must_agree(tmp_path: Path) -> None:
    lines = read_digests([digests(tmp_path, "a", line())])
    agreed_ref(lines, JobRef(ref=(RefType.BRANCH, "release-v1"), sha=SHA[:12]))  # a short sha
    with pytest.raises(MergeError, match="runs for refs/tags/release-v1"):
        agreed_ref(lines, JobRef(ref=(RefType.TAG, "release-v1")))
    with pytest.raises(MergeError, match="runs for commit ffff"):
        agreed_ref(lines, JobRef(sha="ffff"))
    with pytest.raises(MergeError, match="push time"):
        agreed_ref(lines, JobRef(time=datetime(2026, 11, 30, 8, 16, tzinfo=UTC)))


# -- one digest per platform of each rule -----------------------------------------------


CONFIG = f"""\
version: 1
image: {IMAGE}
build:
  rules:
    - name: release
      type: branch
      match: release-(?<v>\\w+)
      tags: ["${{v}}"]
      platforms: [linux/amd64, linux/arm64]
"""

CHOICES = [
    ("missing", [line()], "rule 'release': no digest for platform(s) linux/arm64 (have: linux/amd64)"),
    ("two-digests", [line(), line(digest=B), line(platform="linux/arm64")], "two digests for linux/amd64"),
    ("foreign-platform", [line(platform="linux/s390x")], "platform 'linux/s390x' is not one of rule 'release'"),
    ("other-image", [line(image="reg.example.com/team/other")], "pushes to reg.example.com/team/app"),
    ("unknown-rule", [line(rule="nightly")], "rule 'nightly' is not a rule of"),
    ("unmatched-ref", [line(ref="refs/heads/main")], "rule 'release' does not match"),
]


@pytest.mark.parametrize(("case", "lines", "message"), CHOICES, ids=[c[0] for c in CHOICES])
def test_each_rule_needs_every_platform_once_before_anything_is_fetched(
    tmp_path: Path, case: str, lines: list[dict[str, Any]], message: str
) -> None:
    (tmp_path / ".acr-ci.yml").write_text(CONFIG)
    cfg = config_mod.load(str(tmp_path / ".acr-ci.yml"))
    got = read_digests([digests(tmp_path, "d", *lines)])
    # reg.example.com is never asked: every check here comes before the first request
    with Client() as client, pytest.raises(MergeError) as e:
        prepare(client, cfg, agreed_ref(got), got, env={})
    assert message in str(e.value)
    assert "nothing was tagged" in (e.value.hint or "")


# -- build's flags --------------------------------------------------------------------------


FLAGS = [
    ("both-pushes", BuildOptions(push=True, push_by_digest=True), "--push and --push-by-digest"),
    ("file-alone", BuildOptions(digests_file="d"), "--digests-file needs --push-by-digest"),
    ("platform-push", BuildOptions(platforms=("linux/amd64",), push=True), "--platform with --push"),
]


@pytest.mark.parametrize(("case", "opts", "message"), FLAGS, ids=[c[0] for c in FLAGS])
def test_flag_combinations_that_cannot_work(case: str, opts: BuildOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_options(opts)
    check_options(BuildOptions(platforms=("linux/amd64",), push_by_digest=True, digests_file="d"))


def plan(rule: str, *platforms: str) -> BuildPlan:
    return BuildPlan(rule=rule, image=IMAGE, tags=("v1",), platforms=platforms,
                     context=".", dockerfile="Dockerfile")


def test_platform_selection_keeps_the_rules_order_and_names_a_rule_without_it() -> None:
    plans = [plan("a", "linux/amd64", "linux/arm64", "linux/arm/v7"), plan("b", "linux/arm64", "linux/amd64")]
    got = select_platforms(plans, ["linux/amd64"])
    assert [p.platforms for p in got] == [("linux/amd64",), ("linux/amd64",)]
    # repeated or comma-separated; the rule's order wins
    [both] = select_platforms(plans[:1], ["linux/arm/v7,linux/amd64", "linux/amd64"])
    assert both.platforms == ("linux/amd64", "linux/arm/v7")
    assert select_platforms(plans, []) == plans
    with pytest.raises(UsageError) as e:
        select_platforms(plans, ["linux/arm/v7"])
    assert "rule 'b' does not build it" in str(e.value) and e.value.exit_code == 2
    with pytest.raises(UsageError, match=r"--platform 'arm64' is not valid"):
        select_platforms(plans, ["arm64"])


def test_build_with_a_platform_the_rule_lacks_exits_2_before_building(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".acr-ci.yml").write_text(CONFIG)
    code = main(["build", "--config", str(tmp_path / ".acr-ci.yml"), "--ref", "refs/heads/release-v1",
                 "--sha", SHA, "--platform", "linux/s390x", "--push-by-digest"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--platform linux/s390x: rule 'release' does not build it" in err
    assert "Traceback" not in err
