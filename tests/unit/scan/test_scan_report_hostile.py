"""Hostile report files: duplicate keys, integers too long to read, nesting too deep, files
without end. Each is one ReportError line naming the file (exit 2), never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from acr_ci.errors import EXIT_USAGE
from acr_ci.scan import reports
from acr_ci.scan.findings import ReportError
from acr_ci.scan.reports import load_json, read_report

ROW = '{"VulnerabilityID": "CVE-2024-1", "PkgName": "p", "Severity": "CRITICAL"}'


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.json"
    p.write_text(text)
    return p


def refused(path: Path, message: str) -> ReportError:
    with pytest.raises(ReportError, match=message) as info:
        read_report(path)
    assert info.value.exit_code == EXIT_USAGE
    assert "\n" not in info.value.message and len(info.value.message) < 300
    assert str(path) in info.value.message
    return info.value


@pytest.mark.parametrize(
    "text",
    [
        # the second "Vulnerabilities" would hide the CRITICAL one under json's last-key-wins
        '{"SchemaVersion": 2, "Results": [{"Target": "t", "Vulnerabilities": [' + ROW + "],"
        ' "Vulnerabilities": []}]}',
        '{"SchemaVersion": 2, "Results": [], "Results": [{"Vulnerabilities": [' + ROW + "]}]}",
        '{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-2024-1",'
        ' "PkgName": "p", "Severity": "CRITICAL", "Severity": "LOW"}]}]}',
    ],
    ids=["nested-list", "top-level", "severity"],
)
def test_duplicate_keys_are_refused(tmp_path: Path, text: str) -> None:
    assert json.loads(text)  # json itself takes it, keeping the last key
    error = refused(write(tmp_path, text), "appears twice in one object")
    assert error.hint and "duplicate keys" in error.hint


def test_duplicate_key_is_named_and_cut(tmp_path: Path) -> None:
    key = "k" * 5000
    error = refused(write(tmp_path, f'{{"{key}": 1, "{key}": 2}}'), "appears twice")
    assert "kkk" in error.message and len(error.message) < 300


def test_integer_over_4300_digits(tmp_path: Path) -> None:
    text = '{"SchemaVersion": 2, "Results": [], "Size": ' + "9" * 5000 + "}"
    refused(write(tmp_path, text), "not a usable JSON report")


def test_nesting_too_deep(tmp_path: Path) -> None:
    depth = 200_000
    refused(write(tmp_path, "[" * depth + "]" * depth), "nested too deep")
    refused(write(tmp_path, '{"a":' * depth + "1" + "}" * depth), "nested too deep")


def test_reads_are_capped_whatever_the_file_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "MAX_REPORT_BYTES", 1024 * 1024)
    link = tmp_path / "zero.json"
    os.symlink("/dev/zero", link)  # stat says 0 bytes; reading never ends
    refused(link, "larger than the 1048576 bytes")
    big = write(tmp_path, " " * (1024 * 1024 + 1))
    refused(big, "larger than")


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    p.write_bytes(b'{"a": "\xff"}')
    refused(p, "not UTF-8")


def test_load_json_keeps_good_documents() -> None:
    assert load_json(b'\xef\xbb\xbf{"a": [1, {"b": 2}]}', "x") == {"a": [1, {"b": 2}]}
    assert load_json('{"a": {"a": 1}}', "x") == {
        "a": {"a": 1}
    }  # the same key at two levels is fine
