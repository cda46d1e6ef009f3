"""`make demo`: run acr-ci on the example app with local defaults.

Today the demo shows what `acr-ci plan` computes from `examples/.acr-ci.yml` for
the pushes a team makes every day: to `main`, to a release branch, a version
tag, and a branch that no rule builds. The commit is this checkout's HEAD (or a
fixed one outside git); the push time is fixed so the output is reproducible.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE / ".acr-ci.yml"
PUSH_TIME = "2020-10-15T16:13:00+08:00"
FALLBACK_SHA = "4a8b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b"
REFS = ["refs/heads/main", "refs/heads/release-v1", "refs/tags/v1.2.3", "refs/heads/feature/login"]


def acr_ci() -> list[str]:
    exe = shutil.which("acr-ci", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "acr_ci"]


def head_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return FALLBACK_SHA


def main() -> int:
    sha = head_sha()
    for ref in REFS:
        print(f"\n$ acr-ci plan --ref {ref} --sha {sha[:12]}… --time {PUSH_TIME}", flush=True)
        base = [*acr_ci(), "plan", "--config", str(CONFIG), "--ref", ref, "--sha", sha]
        base += ["--time", PUSH_TIME]
        text = subprocess.run(base, check=False)
        if text.returncode != 0:
            return text.returncode
    print(f"\n$ acr-ci plan --ref refs/heads/release-v1 … --format json", flush=True)
    out = subprocess.run(
        [*acr_ci(), "plan", "--config", str(CONFIG), "--ref", "refs/heads/release-v1",
         "--sha", sha, "--time", PUSH_TIME, "--format", "json"],
        capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        return out.returncode
    doc = json.loads(out.stdout)
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
