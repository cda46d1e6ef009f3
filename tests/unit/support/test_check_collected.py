"""scripts/check_collected.py against small throwaway trees: it names every test file a
whole-suite pytest run leaves out (a ``build`` folder, a module without tests), fails on a
collection error, and passes a tree where everything is collected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "check_collected.py"
CONFIG = '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
A_TEST = "def test_ok() -> None:\n    assert True\n"


def tree(root: Path, files: dict[str, str], config: str = CONFIG) -> Path:
    (root / "pyproject.toml").write_text(config)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_build_folder_skipped_by_default_norecursedirs_fails_naming_the_file(
    tmp_path: Path,
) -> None:
    root = tree(tmp_path, {"tests/test_top.py": A_TEST, "tests/unit/build/test_buildx.py": A_TEST})
    out = check(root)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "NOT COLLECTED: tests/unit/build/test_buildx.py" in out.stderr
    assert "test_top.py" not in out.stderr
    assert "1 of 2 test files were not collected" in out.stderr


def test_the_same_tree_passes_once_build_is_collected(tmp_path: Path) -> None:
    config = CONFIG + 'norecursedirs = [".*", "__pycache__"]\n'
    root = tree(
        tmp_path, {"tests/test_top.py": A_TEST, "tests/unit/build/test_buildx.py": A_TEST}, config
    )
    out = check(root)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all 2 test files under tests/ are collected" in out.stdout


def test_a_test_module_without_tests_fails(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "tests/test_top.py": A_TEST,
            "tests/test_helpers.py": "def helper() -> int:\n    return 1\n",
            "tests/other_test.py": "X = 1\n",
        },
    )
    out = check(root)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "NOT COLLECTED: tests/test_helpers.py" in out.stderr
    assert "NOT COLLECTED: tests/other_test.py" in out.stderr


def test_a_collection_error_fails_with_pytests_output(tmp_path: Path) -> None:
    root = tree(tmp_path, {"tests/test_top.py": A_TEST, "tests/test_broken.py": "def test_x(:\n"})
    out = check(root)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "test_broken.py" in out.stderr
    assert "pytest --collect-only exited 2" in out.stderr


def test_no_tests_directory_fails(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    out = check(tmp_path)
    assert out.returncode == 1 and "no tests directory" in out.stderr
