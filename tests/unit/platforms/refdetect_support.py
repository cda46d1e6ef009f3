"""Helpers for the ref-detection tests: fixture files and real git repositories."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
GITHUB = FIXTURES / "github"
GITLAB = FIXTURES / "gitlab"


def read_env_file(path: Path) -> dict[str, str]:
    """A ``KEY=VALUE`` dump (one per line, values unquoted, as ``env`` prints them)."""
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def github_env(name: str, event_path: Path | None = None) -> dict[str, str]:
    """The runner env dump ``name.env`` with GITHUB_EVENT_PATH pointing at ``name.json``."""
    env = read_env_file(GITHUB / f"{name}.env")
    env["GITHUB_EVENT_PATH"] = str(event_path or GITHUB / f"{name}.json")
    return env


def gitlab_env(name: str) -> dict[str, str]:
    return read_env_file(GITLAB / f"{name}.env")


@dataclass
class GitRepo:
    """A real repository in a temporary directory, driven by the git CLI."""

    path: Path
    env: dict[str, str]

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def commit(self, message: str, date: str) -> str:
        """An empty commit with fixed author and committer dates; returns its full sha."""
        env = dict(self.env, GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        subprocess.run(
            ["git", "commit", "--quiet", "--allow-empty", "-m", message],
            cwd=self.path,
            env=env,
            check=True,
        )
        return self.git("rev-parse", "HEAD")
