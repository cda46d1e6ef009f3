"""`acr-ci plan` end to end, as a user runs it: a subprocess, the example config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / ".acr-ci.yml"
SHA = "4a8b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b"
IMAGE = "localhost:5000/demo/hello"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB"))}
    base.pop("CI", None)
    base.pop("ACR_CI_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "acr_ci", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd or ROOT,
        timeout=60,
    )


PLAN_CASES = [
    # id, ref, expected builds [(rule, tags)]
    ("main", "refs/heads/main", [("main", ["latest", "4a8b1c"])]),
    ("bare-branch-name", "main", [("main", ["latest", "4a8b1c"])]),
    (
        "release-branch",
        "refs/heads/release-v1",
        [("release", ["v1", "v1-20201015", "v1-4a8b1c2d"])],
    ),
    ("version-tag", "refs/tags/v1.2.3", [("version-tags", ["1.2.3", "1.2"])]),
    ("tag-named-like-branch", "refs/tags/main", []),
    ("no-rule", "refs/heads/feature/login", []),
]


@pytest.mark.parametrize(("ref", "builds"), [c[1:] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES])
def test_plan_json_contract(ref: str, builds: list[tuple[str, list[str]]]) -> None:
    out = run(
        "plan", "--config", str(EXAMPLE), "--ref", ref, "--sha", SHA,
        "--time", "2020-10-15T16:13:00+08:00", "--format", "json",
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) == {"ref", "builds"}
    assert doc["ref"]["name"] == ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
    assert doc["ref"]["type"] == ("tag" if ref.startswith("refs/tags/") else "branch")
    assert doc["ref"]["sha"] == SHA
    assert [(b["rule"], b["tags"]) for b in doc["builds"]] == builds
    for b in doc["builds"]:
        assert set(b) == {
            "rule", "images", "tags", "platforms", "context", "dockerfile", "args", "no_cache",
            "cache",
        }
        assert b["images"] == [f"{IMAGE}:{t}" for t in b["tags"]]
        assert b["platforms"] == ["linux/amd64", "linux/arm64"]
        assert b["context"] == "hello"


def test_plan_text_lists_images() -> None:
    out = run("plan", "--config", str(EXAMPLE), "--ref", "main", "--sha", SHA, "--time", "0")
    assert out.returncode == 0, out.stderr
    assert f"{IMAGE}:latest" in out.stdout
    assert f"{IMAGE}:4a8b1c" in out.stdout


def test_config_from_env_variable(tmp_path: Path) -> None:
    out = run(
        "plan", "--ref", "main", "--sha", SHA, "--time", "0", "--format", "json",
        env={"ACR_CI_CONFIG": str(EXAMPLE)}, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["builds"][0]["rule"] == "main"


def test_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / ".acr-ci.yml"
    bad.write_text(
        "version: 1\n"
        "image: registry.example.com/team/app\n"
        "build:\n"
        "  rules:\n"
        "    - name: main\n"
        "      type: branc\n"
        "      match: main\n"
        "      tags: [latest]\n"
    )
    out = run("plan", "--ref", "main", "--sha", SHA, "--time", "0", cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert ".acr-ci.yml:6:" in lines[0]
    assert "build.rules[0].type" in lines[0]


def test_missing_config_exit_2(tmp_path: Path) -> None:
    out = run("plan", "--ref", "main", "--sha", SHA, "--time", "0", cwd=tmp_path)
    assert out.returncode == 2
    assert ".acr-ci.yml" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--sha", "not-hex"), ("--time", "yesterday"), ("--ref", "refs/pull/1/merge")],
    ids=["bad-sha", "bad-time", "pull-ref"],
)
def test_bad_flags_exit_2(flag: str, value: str) -> None:
    args = {"--ref": "main", "--sha": SHA, "--time": "0", flag: value}
    out = run("plan", "--config", str(EXAMPLE), *[x for kv in args.items() for x in kv])
    assert out.returncode == 2, out.stdout + out.stderr
    assert flag in out.stderr
    assert "Traceback" not in out.stderr


def test_empty_tag_error_names_the_rule(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        "version: 1\nimage: r.example.com/a/b\nbuild:\n  rules:\n"
        "    - {name: anything, type: branch, match: '(?<v>.*)', tags: ['${v}']}\n"
    )
    out = run("plan", "--config", str(cfg), "--ref", "...", "--sha", SHA, "--time", "0")
    assert out.returncode == 2
    assert "'anything'" in out.stderr


def test_help_and_plan_do_not_import_heavy_modules() -> None:
    probe = (
        "import sys, contextlib, io\n"
        "from acr_ci.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main(['plan', '--config', {str(EXAMPLE)!r}, '--ref', 'main', '--sha', {SHA!r}, '--time', '0'])\n"
        "assert rc == 0, rc\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('github', 'gitlab', 'sigstore', 'requests')]\n"
        "later = ('acr_ci.record', 'acr_ci.chain', 'acr_ci.sync', 'acr_ci.triggers', 'acr_ci.registry.auth',\n"
        "         'acr_ci.registry.client', 'acr_ci.build.buildah', 'acr_ci.scan.service')\n"
        "heavy += [m for m in later if m in sys.modules]  # the command layer loads stages lazily\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_plan_shows_the_registry_cache(tmp_path: Path) -> None:
    cfg = tmp_path / ".acr-ci.yml"
    cfg.write_text(
        "version: 1\nimage: registry.example.com/team/app\nbuild:\n"
        "  cache: {ref: 'registry.example.com/team/cache:${rule}', mode: max}\n"
        "  rules:\n    - {name: Main, type: branch, match: main, tags: [latest]}\n"
    )
    out = run("plan", "--config", str(cfg), "--ref", "main", "--sha", SHA, "--time", "0")
    assert out.returncode == 0, out.stderr
    assert "  cache: registry.example.com/team/cache:main (mode max)" in out.stdout.splitlines()
    out = run("plan", "--config", str(cfg), "--ref", "main", "--sha", SHA, "--time", "0", "--format", "json")
    [build] = json.loads(out.stdout)["builds"]
    assert build["cache"] == {"ref": "registry.example.com/team/cache:main", "mode": "max"}
