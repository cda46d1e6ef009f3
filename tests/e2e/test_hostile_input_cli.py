"""Hostile command-line and config input through the real CLI (issue 11): each is one
line on stderr and exit 2, never an internal error, and `run` leaves no temporary file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / ".acr-ci.yml"
SHA = "4a8b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b"


def acr_ci(*args: str | bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB"))}
    env.pop("CI", None)
    env.pop("ACR_CI_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "acr_ci", *args], capture_output=True, env=env, cwd=cwd, timeout=60
    )


def assert_one_line_usage_error(done: subprocess.CompletedProcess[bytes]) -> str:
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, err
    assert "internal error" not in err
    assert "Traceback" not in err
    assert err.startswith("acr-ci: error: ")
    assert len([line for line in err.splitlines() if not line.startswith("  hint:")]) == 1, err
    return err


@pytest.mark.parametrize("time", ["9999-12-31T23:59:59Z", "253402300799"])
def test_a_push_time_at_the_end_of_time(tmp_path: Path, time: str) -> None:
    done = acr_ci(
        "plan",
        "--config",
        str(EXAMPLE),
        "--ref",
        "main",
        "--sha",
        SHA,
        "--time",
        time,
        cwd=tmp_path,
    )
    assert "--time" in assert_one_line_usage_error(done)


def test_a_merge_key_naming_its_own_anchor(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("version: 1\nimage: r.example/a/b\nx-a: &a\n  <<: *a\n")
    done = acr_ci("plan", "--config", str(cfg), "--ref", "main", "--sha", SHA, cwd=tmp_path)
    assert_one_line_usage_error(done)


def test_a_time_format_with_a_lone_surrogate(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        "version: 1\nimage: r.example/a/b\nbuild:\n  rules:\n"
        '    - {name: m, type: branch, match: main, tags: ["${time:%Y\\ud800}"]}\n'
    )
    done = acr_ci("plan", "--config", str(cfg), "--ref", "main", "--sha", SHA, cwd=tmp_path)
    assert "not Unicode text" in assert_one_line_usage_error(done)


def test_a_backtracking_match_is_bounded(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        "version: 1\nimage: r.example/a/b\nbuild:\n  rules:\n"
        "    - {name: slow, type: branch, match: '(a|aa)+', tags: [x]}\n"
    )
    done = acr_ci("plan", "--config", str(cfg), "--ref", "a" * 60 + "!", "--sha", SHA, cwd=tmp_path)
    assert "rule 'slow'" in assert_one_line_usage_error(done)


@pytest.mark.parametrize("command", ["plan", "run"])
def test_undecodable_bytes_in_the_ref(tmp_path: Path, command: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    args: list[str | bytes] = [
        command,
        "--config",
        str(EXAMPLE),
        "--ref",
        b"refs/heads/feature/\xff",
    ]
    if command == "run":
        args += ["--record", str(out / "record.json"), "--layout-dir", str(out / "layouts")]
    done = acr_ci(*args, "--sha", SHA, cwd=tmp_path)
    assert "not valid UTF-8" in assert_one_line_usage_error(done)
    assert list(out.iterdir()) == []  # no record half-written, no temporary file
