"""The one atomic writer (fileio): text it cannot encode is a one-line OutputError, and no
file, temporary or final, is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from acr_ci import fileio
from acr_ci.errors import OutputError


def test_a_lone_surrogate_is_an_output_error_and_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    bad = b"x\xff".decode("utf-8", "surrogateescape")  # what undecodable argv bytes become
    with pytest.raises(OutputError, match="not valid Unicode"):
        fileio.write_json(target, {"ref": bad}, what="the run record")
    assert list(tmp_path.iterdir()) == []


def test_text_is_written_as_utf8(tmp_path: Path) -> None:
    target = fileio.write_json(tmp_path / "r.json", {"ref": "é"}, what="x")
    assert target.read_bytes() == b'{\n  "ref": "\xc3\xa9"\n}\n'
