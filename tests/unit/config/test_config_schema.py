"""The shipped JSON Schema on its own: a valid draft 2020-12 schema, described for editors,
accepting every positive fixture and rejecting the schema-level negative ones when used
by a stock validator (as editors and check-jsonschema would), and printed by the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML
from tests.unit.config.config_cases import NEGATIVE, NEGATIVE_CASES, POSITIVE

from acr_ci.config import schema, schema_text

SHA = "4a8b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b"


def plain_yaml(path: Path) -> Any:
    """The file as JSON data, read by a loader independent of acr-ci's (dates as ISO text)."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, date):
            return v.isoformat()
        return v

    return plain(YAML(typ="safe", pure=True).load(path.read_text()))


def stock_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text()))


def test_schema_is_valid_draft_2020_12() -> None:
    doc = json.loads(schema_text())
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema() == doc
    schema()["title"] = "changed"  # a copy: the shipped one does not change
    assert schema()["title"] == doc["title"]


def _walk(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if node.get("type") == "object" and "additionalProperties" not in node:
            found.append((path, node))
        for key, value in node.items():
            found += _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _walk(value, f"{path}/{i}")
    return found


def test_every_object_is_closed_and_every_property_described() -> None:
    doc = json.loads(schema_text())
    open_objects = [p for p, n in _walk(doc, "#") if "/if" not in p]
    assert open_objects == []

    def described(sub: dict[str, Any]) -> bool:
        if "description" in sub:
            return True
        ref = sub.get("$ref", "")
        return ref.startswith("#/$defs/") and "description" in doc["$defs"][ref.split("/")[-1]]

    missing: list[str] = []

    def visit(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if "/if" not in path and not described(sub):
                    missing.append(f"{path}/{name}")
            for key, value in node.items():
                visit(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                visit(value, f"{path}/{i}")

    visit(doc, "#")
    assert missing == []


@pytest.mark.parametrize("name", sorted(f.stem for f in POSITIVE.glob("*.yml")))
def test_stock_validator_accepts_positive(name: str) -> None:
    errors = list(stock_validator().iter_errors(plain_yaml(POSITIVE / f"{name}.yml")))
    assert [e.message for e in errors] == []


_SCHEMA_CASES = [c for c in NEGATIVE_CASES if c[5]]
_SEMANTIC_CASES = [
    c for c in NEGATIVE_CASES
    if not c[5] and c[0] not in {
        # not JSON documents at all: the YAML layer refuses them
        "yaml_syntax", "duplicate_key", "empty", "comments_only", "multi_document",
        "yaml_tag", "yaml11_bool_key", "top_level_list",
        # a stock YAML loader raises a bare ValueError on 2027-02-30; acr-ci locates it
        "allow_until_not_a_date",
    }
]


@pytest.mark.parametrize("case", [c[0] for c in _SCHEMA_CASES])
def test_stock_validator_rejects_schema_level_negative(case: str) -> None:
    errors = list(stock_validator().iter_errors(plain_yaml(NEGATIVE / f"{case}.yml")))
    assert errors, f"{case} passes the plain schema"


@pytest.mark.parametrize("case", [c[0] for c in _SEMANTIC_CASES])
def test_semantic_negatives_need_the_loader(case: str) -> None:
    """These pass the schema: only acr-ci's checks catch them (so both layers are needed)."""
    errors = list(stock_validator().iter_errors(plain_yaml(NEGATIVE / f"{case}.yml")))
    assert [e.message for e in errors] == []


def test_top_level_list_is_rejected_by_the_schema_too() -> None:
    assert list(stock_validator().iter_errors(plain_yaml(NEGATIVE / "top_level_list.yml")))


# --------------------------------------------------------------------------- CLI


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acr_ci", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )


def test_cli_schema_prints_it(tmp_path: Path) -> None:
    proc = run_cli("schema", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(schema_text())


CLI_BAD = [
    ("rule_type_enum", "6:13: build.rules[0].type: must be one of: branch, tag"),
    ("yaml_syntax", "8:1: YAML syntax error"),
    ("trigger_http_token", "5:10: triggers[0].url: plain http to http://hooks.example "),
]


@pytest.mark.parametrize(("case", "expected"), CLI_BAD, ids=[c[0] for c in CLI_BAD])
def test_cli_plan_bad_config_exits_2_with_one_located_line(
    tmp_path: Path, case: str, expected: str
) -> None:
    bad = NEGATIVE / f"{case}.yml"
    proc = run_cli("plan", "--config", str(bad), "--ref", "main", "--sha", SHA, "--time", "0", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"acr-ci: error: {bad}:{expected}")
    assert "Traceback" not in proc.stderr
    assert "SECRET123" not in proc.stderr


def test_cli_plan_missing_default_config(tmp_path: Path) -> None:
    proc = run_cli("plan", "--ref", "main", "--sha", SHA, "--time", "0", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("acr-ci: error: .acr-ci.yml: no such file\n  hint: ")
    assert "Traceback" not in proc.stderr
