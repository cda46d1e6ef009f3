"""1,000 configs mutated from the shipped ones (a fixed seed): load + plan never raises
anything but acr-ci's own errors, and no load or plan takes more than 2 s (issue 11).

Each case is one of the example configs with a few mutations of its structure (types
swapped, keys dropped or added, deep nesting within the loader's bounds), its values
(huge strings, control characters, unicode, backtracking regexes, odd numbers) and its
text (anchors and merge keys, ``.nan``/``1e999``, cuts). A failure prints the case.
"""

from __future__ import annotations

import io
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from tests.unit.config.config_cases import POSITIVE

from acr_ci import config, tags
from acr_ci.errors import AcrError
from acr_ci.models import RefContext, RefType

SEED = 11
CASES = 1_000
BOUND = 2.0
"""Seconds one load or one plan may take: a bound, not a benchmark."""

BASES = [
    *sorted(POSITIVE.glob("*.yml")),
    Path(__file__).resolve().parents[3] / "examples/.acr-ci.yml",
]
SHA = "4a8b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b"
REFS = [
    (RefType.BRANCH, "main"),
    (RefType.TAG, "v1.2.3"),
    (RefType.BRANCH, "feature/" + "a" * 30 + "!"),
    (RefType.BRANCH, "release-" + "9" * 1000),
    (RefType.BRANCH, "a" * 60 + "!"),
    (RefType.TAG, "v\u202e1"),
]
"""Ordinary names and hostile ones (backtracking bait, the longest accepted, bidi)."""

HOSTILE_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    1.5,
    1e308,
    "",
    " ",
    "x" * 100_000,
    "a\x00b",
    "\x1b[31mred\x1b[0m",
    "::error::owned",
    "line\nbreak",
    "main\n",
    "linux/amd64\n",
    "é",
    "\u202eevil",
    "日本語",
    "\U0001f600",
    "${",
    "${time:%s}",
    "${time:%Y\\q}",
    "${commit:41}",
    "${commit:0}",
    "${unknown}",
    "${topic}",
    "(?<topic>[a-z]+)",
    "feature/(?<topic>([a-z0-9]+-?)+)",
    "(a|aa)+",
    "((a+)+)+",
    "(?<time>x)",
    "[",
    "https://user:pw@hooks.example/x?token=SECRET",
    "http://10.0.0.1/hook",
    "+25:00",
    "9999-12-31",
    "2024-02-30",
    "registry.example.com/team/app:tag",
    "reg.example/" + "a/" * 200 + "b",
    [],
    {},
    [[[[[[["deep"]]]]]]],
    {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}},
]
TEXT_INSERTS = [
    ".nan",
    ".inf",
    "-.inf",
    "1e999",
    "0x10",
    "0o17",
    "1_000",
    "~",
    "!!binary aGk=",
    "*undefined",
]


MATCHES = [
    "feature/(?<topic>([a-z0-9]+-?)+)",
    "(a|aa)+",
    "((a+)+)+b",
    "(?<x>.*)*!",
    "v(?<major>\\d+)\\.(?<minor>\\d+)\\.\\d+",
    "release-(?<n>[0-9]+)",
    "(?<topic>.*)",
    ".*",
    "[\u202e-\u202f]?v.*",
]
TEMPLATES = [
    "${topic}",
    "${x}",
    "${n}-${time:%s}",
    "${time:%Y\ud800}",
    "${time:%Q%%%}",
    "${branch}${branch}${branch}",
    "${commit:40}-${sha}",
    "${tag}",
    "...---",
    "${ref}-" + "x" * 200,
]


def _mutate_rule(rng: random.Random, doc: Any) -> None:
    """Keep the config valid-looking, but give a rule a hostile match or template."""
    rules = doc.get("build", {}).get("rules") if isinstance(doc.get("build"), dict) else None
    if not isinstance(rules, list) or not rules or not isinstance(rules[0], dict):
        return
    r = rng.choice(rules)
    if not isinstance(r, dict):
        return
    r["match"] = rng.choice(MATCHES)
    r["type"] = rng.choice(["branch", "tag"])
    r["tags"] = rng.sample(TEMPLATES, rng.randrange(1, 4))


def _deep(depth: int) -> Any:
    node: Any = "leaf"
    for i in range(depth):
        node = [node] if i % 2 else {"k": node}
    return node


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    node = doc
    for part in path[:-1]:
        node = node[part]
    return node


def _mutate_data(rng: random.Random, doc: Any) -> None:
    paths = [p for p in _paths(doc) if p]
    if not paths:
        doc["image"] = rng.choice(HOSTILE_VALUES)
        return
    path = rng.choice(paths)
    parent = _parent(doc, path)
    key = path[-1]
    value = parent[key]
    kind = rng.randrange(8)
    if kind == 0:
        parent[key] = rng.choice(HOSTILE_VALUES)
    elif kind == 1:  # swap the type
        if isinstance(value, dict):
            parent[key] = list(value.values())
        elif isinstance(value, list):
            parent[key] = {f"k{i}": v for i, v in enumerate(value)}
        elif isinstance(value, str):
            parent[key] = rng.choice([[value], {value[:20] or "k": value}, len(value), value == ""])
        else:
            parent[key] = str(value)
    elif kind == 2 and isinstance(parent, dict):
        del parent[key]
    elif kind == 3 and isinstance(parent, dict):
        parent[rng.choice(["extra", "x-extra", "Name", "tags ", "<<"])] = rng.choice(HOSTILE_VALUES)
    elif kind == 4 and isinstance(value, str):
        parent[key] = value + rng.choice(["\n", "\t", " ", "\x7f", "\u00a0", "\ud800", "é" * 70])
    elif kind == 5:
        parent[key] = _deep(rng.randrange(10, 70))
    elif kind == 6 and isinstance(value, str):
        parent[key] = value * rng.choice([2, 50, 5_000])
    else:
        parent[key] = rng.choice(HOSTILE_VALUES)


def _mutate_text(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    kind = rng.randrange(6)
    if kind == 0 and lines:  # an anchor on a mapping line and merges of it elsewhere
        i = rng.randrange(len(lines))
        line = lines[i]
        if line.rstrip().endswith(":"):
            lines[i] = line + " &a"
            indent = " " * (len(line) - len(line.lstrip()) + 2)
            j = rng.randrange(i + 1, len(lines) + 1)
            lines.insert(j, indent + rng.choice(["<<: *a", "k: *a", "<<: [*a, *a]"]))
    elif kind == 1 and lines:  # a value's text replaced by an odd YAML scalar
        i = rng.randrange(len(lines))
        head, sep, _ = lines[i].partition(": ")
        if sep:
            lines[i] = f"{head}: {rng.choice(TEXT_INSERTS)}"
    elif kind == 2:
        return text[: rng.randrange(len(text) + 1)]
    elif kind == 3 and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])  # a duplicate key (or item)
    elif kind == 4:
        return "x-a: &a {k: [*a]}\n" + text if rng.random() < 0.5 else "x-a: &a\n  <<: *a\n" + text
    else:
        pos = rng.randrange(len(text) + 1)
        return (
            text[:pos]
            + rng.choice(["\x00", "\t", "\ufeff", "\x85", "{", "[", "'", '"'])
            + text[pos:]
        )
    return "\n".join(lines) + "\n"


def _dump(doc: Any) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _cases() -> list[str]:
    rng = random.Random(SEED)
    bases = [YAML(typ="safe").load(p.read_text(encoding="utf-8")) for p in BASES]
    texts: list[str] = []
    for _ in range(CASES):
        doc = _roundtrip(rng.choice(bases))
        if rng.random() < 0.4:
            _mutate_rule(rng, doc)
        else:
            for _ in range(rng.choice([1, 1, 1, 2, 3, 4])):
                _mutate_data(rng, doc)
        text = _dump(doc)
        if rng.random() < 0.4:
            text = _mutate_text(rng, text)
        texts.append(text)
    return texts


def _roundtrip(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _roundtrip(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_roundtrip(v) for v in doc]
    return doc if isinstance(doc, str | int | float | bool) or doc is None else str(doc)


def _show(n: int, text: str, what: str) -> str:
    shown = text if len(text) < 3_000 else text[:3_000] + f"… ({len(text)} characters)"
    return f"case {n} (seed {SEED}): {what}\n--- config ---\n{shown!s}"


def test_a_thousand_mutated_configs_give_no_internal_error(tmp_path: Path) -> None:
    file = tmp_path / ".acr-ci.yml"
    loaded = 0
    push = datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)
    for n, text in enumerate(_cases()):
        file.write_text(text, encoding="utf-8", errors="surrogatepass")
        start = time.monotonic()
        try:
            cfg = config.load(str(file))
        except AcrError:
            cfg = None
        except Exception as e:  # the point of the test: report any other exception
            raise AssertionError(_show(n, text, f"load raised {e!r}")) from e
        took = time.monotonic() - start
        assert took < BOUND, _show(n, text, f"load took {took:.2f} s")
        if cfg is None:
            continue
        loaded += 1
        for type_, name in REFS:
            ref = RefContext(type=type_, name=name, sha=SHA, time=push)
            start = time.monotonic()
            try:
                tags.plan(cfg, ref)
            except AcrError:
                pass
            except Exception as e:
                raise AssertionError(_show(n, text, f"plan of {name[:40]!r} raised {e!r}")) from e
            took = time.monotonic() - start
            assert took < BOUND, _show(n, text, f"plan of {name[:40]!r} took {took:.2f} s")
    assert loaded >= CASES // 20, (
        f"only {loaded} of {CASES} mutated configs loaded: mutations too harsh"
    )
