"""Fixtures for the ref-detection tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from refdetect_support import GitRepo


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[str], GitRepo]:
    """``make_repo("name")``: ``git init -b main`` in a fresh directory under tmp_path."""

    def make(name: str = "repo") -> GitRepo:
        path = tmp_path / name
        path.mkdir()
        env = dict(
            os.environ,
            HOME=str(tmp_path),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_AUTHOR_NAME="Test Author",
            GIT_AUTHOR_EMAIL="author@example.com",
            GIT_COMMITTER_NAME="Test Committer",
            GIT_COMMITTER_EMAIL="committer@example.com",
        )
        repo = GitRepo(path, env)
        repo.git("init", "--quiet", "--initial-branch=main")
        return repo

    return make
