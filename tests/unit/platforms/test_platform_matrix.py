"""Two matrix jobs of one pipeline: same env, started at different times, same push time.

Each job is a real ``python`` process whose whole environment is the CI dump
(plus PATH and HOME): it calls ``detect_ref`` with no ``env=``, as the CLI does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from refdetect_support import GitRepo, github_env, gitlab_env

JOB = (
    "import json\n"
    "from acr_ci.platforms import detect_ref\n"
    "r = detect_ref(ref=None, sha=None, time=None)\n"
    "print(json.dumps({'time': r.time.isoformat(), 'name': r.name, 'sha': r.sha}))\n"
)


def run_job(env: dict[str, str], cwd: Path, home: Path) -> dict[str, str]:
    full = dict(env, PATH=os.environ["PATH"], HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-c", JOB], env=full, cwd=cwd, capture_output=True, text=True, check=True
    )
    result: dict[str, str] = json.loads(done.stdout)
    return result


def github_job(n: int) -> dict[str, str]:
    return {"RUNNER_NAME": f"GitHub Actions {n}", "GITHUB_ACTION": f"__run_{n}"}


def gitlab_job(n: int) -> dict[str, str]:
    arch = ["amd64", "arm64"][n]
    return {
        "CI_JOB_ID": str(7345001 + n),
        "CI_JOB_NAME": f"build-image: [{arch}]",
        "CI_NODE_INDEX": str(n + 1),
        "CI_NODE_TOTAL": "2",
        "CI_JOB_STARTED_AT": f"2024-05-01T12:35:4{n}Z",
    }


PIPELINES = [
    ("github-push", lambda: github_env("event_push_branch"), github_job, False),
    ("github-pull-request", lambda: github_env("event_pull_request"), github_job, False),
    ("gitlab-branch", lambda: gitlab_env("branch_pipeline"), gitlab_job, False),
    ("gitlab-merge-request", lambda: gitlab_env("merge_request_pipeline"), gitlab_job, False),
    ("local-checkout", dict, lambda n: {}, True),
]


@pytest.mark.parametrize(
    ("base", "per_job", "in_repo"), [p[1:] for p in PIPELINES], ids=[p[0] for p in PIPELINES]
)
def test_matrix_jobs_agree_on_push_time(
    base: Callable[[], dict[str, str]],
    per_job: Callable[[int], dict[str, str]],
    in_repo: bool,
    make_repo: Callable[[str], GitRepo],
    tmp_path: Path,
) -> None:
    if in_repo:
        repo = make_repo("checkout")
        repo.commit("one", "2024-05-01T20:34:56+08:00")
        cwd = repo.path
    else:
        cwd = tmp_path / "workspace"
        cwd.mkdir()
    first = run_job(dict(base(), **per_job(0)), cwd, tmp_path)
    time.sleep(1.1)
    second = run_job(dict(base(), **per_job(1)), cwd, tmp_path)
    assert first == second


def test_control_without_any_time_source_the_jobs_differ(tmp_path: Path) -> None:
    """The check above can fail: with nothing stable to read, each job takes its own clock."""
    env = {"ACR_CI_PLATFORM": "local"}
    job = JOB.replace("ref=None", "ref='main'")
    times = []
    for _ in range(2):
        full = dict(env, PATH=os.environ["PATH"], HOME=str(tmp_path))
        done = subprocess.run(
            [sys.executable, "-c", job],
            env=full,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(json.loads(done.stdout)["time"])
        time.sleep(1.1)
    assert times[0] != times[1]
