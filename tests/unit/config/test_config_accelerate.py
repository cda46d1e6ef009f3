"""``accelerate:`` (top level) and ``accelerate: false`` (per rule) in the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from acr_ci import config
from acr_ci.errors import ConfigError

HEAD = "version: 1\nimage: registry.example.com/team/app\n"
RULE = (
    "build:\n  rules:\n    - name: main\n      type: branch\n      match: main\n"
    "      tags: [latest]\n"
)


def _load(tmp_path: Path, body: str) -> config.Config:
    f = tmp_path / "acr.yml"
    f.write_text(HEAD + body)
    return config.load(str(f), env={})


@pytest.mark.parametrize(
    ("case", "body", "fmt", "suffix", "rule_on"),
    [
        ("absent", RULE, None, None, True),
        ("defaults", "accelerate: {}\n" + RULE, "estargz", "_accelerated", True),
        ("suffix", "accelerate:\n  suffix: -lazy\n" + RULE, "estargz", "-lazy", True),
        ("format", "accelerate:\n  format: estargz\n" + RULE, "estargz", "_accelerated", True),
        ("zstd", "accelerate:\n  format: zstd-chunked\n" + RULE, "zstd-chunked", "_accelerated", True),
        ("rule_off", "accelerate: {}\n" + RULE + "      accelerate: false\n", "estargz", "_accelerated", False),
    ],
)
def test_accelerate_settings(
    tmp_path: Path, case: str, body: str, fmt: str | None, suffix: str | None, rule_on: bool
) -> None:
    cfg = _load(tmp_path, body)
    if fmt is None:
        assert cfg.accelerate is None
    else:
        assert cfg.accelerate is not None
        assert (cfg.accelerate.format, cfg.accelerate.suffix) == (fmt, suffix)
    assert cfg.build.rules[0].accelerate is rule_on


@pytest.mark.parametrize(
    ("case", "body", "line", "path", "phrase"),
    [
        ("zstd", "accelerate:\n  format: zstd\n", 4, "accelerate.format", "must be one of: estargz, zstd-chunked"),
        ("suffix_slash", "accelerate:\n  suffix: a/b\n", 4, "accelerate.suffix", "suffix"),
        ("suffix_empty", "accelerate:\n  suffix: ''\n", 4, "accelerate.suffix", "suffix"),
        ("unknown", "accelerate:\n  level: 9\n", 4, "accelerate.level", "unknown key 'level'"),
        ("not_bool", RULE + "      accelerate: 'no'\n", 9, "build.rules[0].accelerate", "true or false"),
        ("null", "accelerate:\n", 3, "accelerate", "mapping"),
    ],
)
def test_bad_accelerate(
    tmp_path: Path, case: str, body: str, line: int, path: str, phrase: str
) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, body)
    problems = e.value.problems
    assert len(problems) == 1, [str(p) for p in problems]
    assert (problems[0].line, problems[0].path) == (line, path)
    assert phrase in problems[0].message
