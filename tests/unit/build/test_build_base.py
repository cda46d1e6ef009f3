"""Running builder processes: streaming, tails, missing tools; the auth file."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from acr_ci.build.base import run_streaming
from acr_ci.build.service import write_auth_file
from acr_ci.errors import BuildError
from acr_ci.registry.auth import Credentials, StaticCredentials


def test_streams_lines_with_prefix_and_no_shell(tmp_path: Path) -> None:
    lines: list[str] = []
    marker = tmp_path / "pwned"
    run_streaming(
        [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); print(sys.argv[1])",
         f"; touch {marker}"],
        env={}, log=lines.append, prefix="[r] ", what="x",
    )
    assert sorted(lines) == sorted(["[r] out", "[r] err", f"[r] ; touch {marker}"])
    assert not marker.exists(), "arguments never go through a shell"


def test_failure_keeps_the_last_20_lines() -> None:
    with pytest.raises(BuildError) as e:
        run_streaming(
            [sys.executable, "-c", "import sys\nfor i in range(50): print(f'l{i}')\nsys.exit(4)"],
            env={}, log=lambda line: None, prefix="", what="the thing",
        )
    assert e.value.message.startswith("the thing failed (exit 4); its last lines:\n")
    shown = [line.strip() for line in e.value.message.splitlines()[1:]]
    assert shown == [f"l{i}" for i in range(30, 50)]


def test_missing_executable_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="cannot run"):
        run_streaming([str(tmp_path / "nope")], env={}, log=lambda line: None, prefix="", what="b")


def test_auth_file(tmp_path: Path) -> None:
    source = StaticCredentials(Credentials("u", "p@ss:word"), frozenset({"a.example", "b.example:5000"}))
    path = write_auth_file(["a.example", "c.example", "b.example:5000", "a.example"], source, tmp_path / "d")
    assert path is not None and path.stat().st_mode & 0o777 == 0o600
    auths = json.loads(path.read_text())["auths"]
    assert set(auths) == {"a.example", "b.example:5000"}
    assert base64.b64decode(auths["a.example"]["auth"]).decode() == "u:p@ss:word"
    token = StaticCredentials(Credentials("<token>", "idtok"), frozenset({"a.example"}))
    path = write_auth_file(["a.example"], token, tmp_path / "d")
    assert path is not None and json.loads(path.read_text())["auths"] == {"a.example": {"identitytoken": "idtok"}}
    assert write_auth_file(["c.example"], source, tmp_path / "e") is None
    assert write_auth_file(["a.example"], None, tmp_path / "e") is None
