#!/usr/bin/env python3
"""Fail when a test file on disk is not collected by a whole-suite pytest run.

pytest loses files silently: a folder matching ``norecursedirs`` (its default list has
``build``), a ``python_files`` pattern that does not match, a ``test_*.py`` module that
holds no test. Each of those still passes ``make test``. This script runs
``pytest --collect-only -q`` over the whole suite (the ``testpaths`` of the project's
pytest configuration), takes the file of every collected test, and compares them with
every ``test_*.py`` / ``*_test.py`` under the tests directory. A file that is on disk
but not collected is named and the exit status is 1; a collection error is exit 1 too.

    python scripts/check_collected.py            # this repository
    python scripts/check_collected.py --root DIR # another tree (its own pytest config)

``make test`` runs it before the tests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATTERNS = ("test_*.py", "*_test.py")
COLLECT_TIMEOUT = 600  # seconds; collecting the whole suite takes a few


def files_on_disk(tests: Path, root: Path) -> set[str]:
    """Every test file under ``tests``, as a ``/``-separated path relative to ``root``."""
    found: set[str] = set()
    for pattern in PATTERNS:
        for path in tests.rglob(pattern):
            if path.is_file() and "__pycache__" not in path.parts:
                found.add(path.relative_to(root).as_posix())
    return found


def collected_files(output: str) -> set[str]:
    """The files of the node ids in ``pytest --collect-only -q`` output (``file::name``)."""
    return {line.split("::", 1)[0] for line in output.splitlines() if "::" in line}


def collect(root: Path) -> tuple[int, str]:
    """Run the whole-suite collection in ``root``; its exit status and combined output."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}  # no -k/-m/--deselect
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--rootdir={root}",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=COLLECT_TIMEOUT,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the project root (default: this repository)"
    )
    parser.add_argument(
        "--tests", default="tests", help="the tests directory, relative to the root"
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    tests = root / args.tests
    if not tests.is_dir():
        print(f"check_collected: FAILED: no tests directory {tests}", file=sys.stderr)
        return 1
    status, output = collect(root)
    if status not in (0, 5):  # 5: nothing collected, which the comparison below reports
        print(output, file=sys.stderr)
        print(
            f"check_collected: FAILED: pytest --collect-only exited {status} (see above)",
            file=sys.stderr,
        )
        return 1
    on_disk = files_on_disk(tests, root)
    missing = sorted(on_disk - collected_files(output))
    if missing:
        print(
            f"check_collected: FAILED: {len(missing)} of {len(on_disk)} test files were not collected "
            "by a whole-suite pytest run:",
            file=sys.stderr,
        )
        for name in missing:
            print(f"  NOT COLLECTED: {name}", file=sys.stderr)
        print(
            "  Why: a folder in norecursedirs (pytest's default has 'build'), a name python_files "
            "does not match, or a module with no tests (rename a helper module to *_support.py).",
            file=sys.stderr,
        )
        return 1
    print(f"check_collected: all {len(on_disk)} test files under {args.tests}/ are collected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
