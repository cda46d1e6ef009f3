"""The upstream data files under tests/fixtures/ (real scanner reports, official schemas) are
byte-identical to what their READMEs record: each folder's SHA256SUMS lists every file in it,
and every digest matches."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
UPSTREAM = [FIXTURES / "reports" / "upstream", FIXTURES / "schemas"]
NOT_DATA = {"README.md", "SHA256SUMS"}


def sums(folder: Path) -> dict[str, str]:
    """``SHA256SUMS`` (``sha256sum`` output) as ``{name: hex digest}``."""
    out: dict[str, str] = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.partition("  ")
        assert len(digest) == 64 and name, f"bad SHA256SUMS line in {folder}: {line!r}"
        out[name] = digest
    return out


@pytest.mark.parametrize("folder", UPSTREAM, ids=lambda p: p.relative_to(FIXTURES).as_posix())
def test_every_upstream_file_matches_its_recorded_sha256(folder: Path) -> None:
    listed = sums(folder)
    on_disk = {p.name for p in folder.iterdir() if p.is_file() and p.name not in NOT_DATA}
    assert on_disk == set(listed), f"{folder}: files and SHA256SUMS differ"
    for name, digest in listed.items():
        actual = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert actual == digest, f"{folder / name} changed (sha256 {actual}, recorded {digest})"
    readme = (folder / "README.md").read_text()
    for name, digest in listed.items():
        assert f"{digest}  {name}" in readme, f"{folder}/README.md does not list {name}'s sha256"
