"""The provenance's CI identity: one row per platform environment (real variable names)."""

from __future__ import annotations

import pytest

from acr_ci.signing.provenance import (
    LOCAL_BUILDER,
    ProvenanceInput,
    builder_id,
    predicate,
    source_url,
)

ROWS = [
    ("github", {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "7", "GITHUB_RUN_ATTEMPT": "2"},
     ("https://github.com/o/r/actions/runs/7", "https://github.com/o/r/actions/runs/7/attempts/2"), "https://github.com/o/r"),
    ("github-enterprise", {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://ghe.example/", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "7"},
     ("https://ghe.example/o/r/actions/runs/7", "https://ghe.example/o/r/actions/runs/7"), "https://ghe.example/o/r"),
    ("gitlab", {"GITLAB_CI": "true", "CI_JOB_URL": "https://gl.example/g/p/-/jobs/9", "CI_PROJECT_URL": "https://gl.example/g/p"},
     ("https://gl.example/g/p/-/jobs/9", "https://gl.example/g/p/-/jobs/9"), "https://gl.example/g/p"),
    ("override", {"ACR_CI_BUILDER_ID": "https://k8s.example/taskruns/x", "GITLAB_CI": "true", "CI_JOB_URL": "https://gl.example/j"},
     ("https://k8s.example/taskruns/x", "https://k8s.example/taskruns/x"), None),
    ("local", {}, (LOCAL_BUILDER, None), None),
]


@pytest.mark.parametrize(("case", "env", "ids", "source"), ROWS, ids=[r[0] for r in ROWS])
def test_builder_and_source(case: str, env: dict[str, str], ids: tuple[str, str | None], source: str | None) -> None:
    assert builder_id(env) == ids
    if case != "override":
        assert source_url(env) == source


def test_predicate_lists_commit_and_base_images() -> None:
    p = predicate(ProvenanceInput(ref="refs/heads/main", sha="ab" * 20, source_url="https://gl.example/g/p",
                                  base_images=("r.example/base@sha256:" + "cd" * 32,)))
    deps = p["buildDefinition"]["resolvedDependencies"]
    assert deps == [
        {"digest": {"gitCommit": "ab" * 20}, "uri": "git+https://gl.example/g/p@refs/heads/main"},
        {"uri": "pkg:docker/r.example/base", "digest": {"sha256": "cd" * 32}},
    ]
    assert p["runDetails"] == {"builder": {"id": LOCAL_BUILDER}}
