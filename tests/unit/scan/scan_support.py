"""Helpers for the scan tests: fixture paths, jq cross-checks, the upstream conformance set and
the official schemas (both kept under ``tests/fixtures/``, see the README beside them)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support._proc import skip_or_fail

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "reports"
UPSTREAM_REPORTS = FIXTURES / "upstream"
SCHEMAS = ROOT / "tests" / "fixtures" / "schemas"


def fixture(name: str) -> Path:
    path = FIXTURES / name
    assert path.is_file(), f"missing fixture {path}"
    return path


def jq(program: str, path: Path) -> Any:
    """Run the real ``jq`` on a file and return its JSON output."""
    exe = shutil.which("jq")
    if exe is None:
        skip_or_fail("jq is not installed (apt-get install jq)")
    out = subprocess.run([exe, "-c", program, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def upstream_report(name: str) -> Path:
    """A real scanner report from the scanners' own projects (tests/fixtures/reports/upstream/)."""
    path = UPSTREAM_REPORTS / name
    assert path.is_file(), f"missing upstream report {path}"
    return path


def official_schema(name: str) -> dict[str, Any]:
    """An official report schema (tests/fixtures/schemas/), parsed."""
    path = SCHEMAS / name
    assert path.is_file(), f"missing schema {path}"
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


STANDIN = '''#!{python}
"""A recorded stand-in for {name}: logs argv and the scanner env, prints a canned report."""
import json, os, sys
env = {{k: v for k, v in os.environ.items() if k.startswith(("TRIVY_", "GRYPE_"))}}
with open(os.environ["ACR_STANDIN_RECORD"], "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "env": env}}) + "\\n")
if os.environ.get("ACR_STANDIN_FAIL"):
    sys.stderr.write(os.environ["ACR_STANDIN_FAIL"] + "\\n")
    sys.exit(2)
reports = json.loads(os.environ.get("ACR_STANDIN_REPORTS", "{{}}"))
ref = [a for a in sys.argv[1:] if "@sha256:" in a][-1]
path = reports.get(ref.rsplit("@", 1)[1]) or reports["*"]
with open(path) as fh:
    sys.stdout.write(fh.read())
'''


def install_standin(directory: Path, name: str) -> Path:
    """Write an executable stand-in ``name`` (trivy/grype) into ``directory``; put it first on PATH."""
    import sys

    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / name
    exe.write_text(STANDIN.format(python=sys.executable, name=name))
    exe.chmod(0o755)
    return exe


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
