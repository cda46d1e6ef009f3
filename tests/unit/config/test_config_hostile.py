"""Config values that used to pass but must not, and inputs that used to crash the loader
(issue 11): each is now a located problem in one ConfigError (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from tests.unit.config.config_cases import POSITIVE

from acr_ci import config
from acr_ci.config.schemas import ecma_pattern, schema
from acr_ci.config.source import MAX_MESSAGE, format_path
from acr_ci.errors import ConfigError


def _full() -> Any:
    return YAML(typ="safe").load((POSITIVE / "full.yml").read_text())


def _load(tmp_path: Path, doc: Any) -> ConfigError:
    file = tmp_path / "c.yml"
    file.write_text(json.dumps(doc, default=str), encoding="utf-8")  # JSON is YAML; escapes survive
    with pytest.raises(ConfigError) as info:
        config.load(str(file))
    return info.value


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    node = doc
    for part in path:
        node = node[part]
    return node


NEWLINE_PATHS = [
    ("build", "rules", 0, "name"),
    ("build", "rules", 0, "platforms", 0),
    ("sync", 0, "name"),
    ("triggers", 0, "name"),
    ("triggers", 0, "secret_env"),
    ("triggers", 1, "tags", 0),
    ("scan", "block", "vulnerabilities", 0),
    ("scan", "block", "allow", 0, "until"),
    ("insecure_registries", 0),
    ("timezone",),
]


@pytest.mark.parametrize("path", NEWLINE_PATHS, ids=[format_path(p) for p in NEWLINE_PATHS])
def test_a_trailing_newline_does_not_pass_a_pattern(tmp_path: Path, path: tuple[Any, ...]) -> None:
    doc = _full()
    _set(doc, path, str(_get(doc, path)) + "\n")
    error = _load(tmp_path, doc)
    assert [p.path for p in error.problems] == [format_path(path)], error.message


def test_a_trailing_newline_in_an_arg_name_does_not_pass(tmp_path: Path) -> None:
    doc = _full()
    doc["build"]["rules"][0]["args"]["GO_VERSION\n"] = "1"
    error = _load(tmp_path, doc)
    assert len(error.problems) == 1
    assert "build arg name" in error.problems[0].message


def test_every_schema_pattern_means_the_end_of_the_text() -> None:
    """Each `$`-anchored pattern of the schema refuses its own valid example plus a newline."""
    examples = {
        "name": "main",
        "timezone": "+08:00",
        "hostPort": "registry.internal:5000",
        "platform": "linux/amd64",
        "argName": "GO_VERSION",
        "envName": "SECRET",
        "tag": "latest",
        "vulnId": "CVE-2024-3094",
        "tagSuffix": "_accelerated",
        "date": "2027-01-31",
    }
    defs = schema()["$defs"]
    patterned = {n for n, d in defs.items() if isinstance(d, dict) and "pattern" in d}
    assert patterned == set(examples)
    for name, good in examples.items():
        pattern = ecma_pattern(defs[name]["pattern"])
        assert pattern.search(good), name
        assert not pattern.search(good + "\n"), name
    assert ecma_pattern("^[$]x$").search("$x")  # a `$` in a class stays a character


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN"])
def test_a_non_finite_trigger_timeout_is_refused(tmp_path: Path, value: str) -> None:
    file = tmp_path / "c.yml"
    file.write_text(
        "version: 1\nimage: r.example/a/b\n"
        f"triggers:\n  - name: t\n    url: https://hooks.example/x\n    timeout: {value}\n"
    )
    with pytest.raises(ConfigError) as info:
        config.load(str(file))
    assert any(
        p.path == "triggers[0].timeout" and "finite" in p.message for p in info.value.problems
    ), info.value.message


def test_a_merge_key_naming_its_own_anchor_is_a_config_error(tmp_path: Path) -> None:
    file = tmp_path / "c.yml"
    file.write_text("version: 1\nimage: r.example/a/b\nx-a: &a\n  <<: *a\n")
    with pytest.raises(ConfigError, match="refers to itself") as info:
        config.load(str(file))
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "path",
    [("build", "rules", 0, "tags", 2), ("image",), ("triggers", 0, "url")],
    ids=["time-format", "image", "url"],
)
def test_a_lone_surrogate_is_refused(tmp_path: Path, path: tuple[Any, ...]) -> None:
    doc = _full()
    _set(doc, path, str(_get(doc, path)) + "\ud800")
    error = _load(tmp_path, doc)
    assert any(
        p.path == format_path(path) and "not Unicode text" in p.message for p in error.problems
    ), error.message
    error.message.encode("utf-8")  # the message itself can be printed


def test_a_lone_surrogate_key_is_refused(tmp_path: Path) -> None:
    doc = _full()
    doc["build"]["rules"][0]["args"]["X\udc80"] = "1"
    error = _load(tmp_path, doc)
    assert any("not Unicode text" in p.message for p in error.problems)
    error.message.encode("utf-8")


@pytest.mark.parametrize(
    "path",
    [
        ("image",),
        ("build", "rules", 0, "tags", 0),
        ("build", "rules", 0, "match"),
        ("sync", 0, "to"),
        ("scan", "on_block", "backup"),
    ],
    ids=format_path,
)
def test_a_huge_value_is_not_echoed_whole(tmp_path: Path, path: tuple[Any, ...]) -> None:
    doc = _full()
    _set(doc, path, "${" + "a" * 200_000 if path[-2:] == ("tags", 0) else "a(" + "b" * 200_000)
    error = _load(tmp_path, doc)
    for p in error.problems:
        assert len(p.message) <= MAX_MESSAGE + 40, p.message[:200]
    assert len(error.message) < 2_000


def test_a_huge_key_is_not_echoed_whole(tmp_path: Path) -> None:
    doc = _full()
    doc["build"]["rules"][0]["k" * 1000] = 1  # YAML's longest simple key is 1024
    error = _load(tmp_path, doc)
    assert len(error.message) < 1_000
    assert "k" * 200 not in error.message
