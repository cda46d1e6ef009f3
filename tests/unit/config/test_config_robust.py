"""Whatever a config file holds, load gives a Config or a ConfigError whose problems are
all located: never another exception (a traceback for the user)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from tests.unit.config.config_cases import POSITIVE

from acr_ci import config
from acr_ci.config.model import Config
from acr_ci.errors import ConfigError

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["", "linux/amd64", "main", "${commit:99}", "(?<time>x)", "v[", "http://h/x?t=1",
                     "+08:00", "namespace", "report", "regexp", "tags", "high", "a b"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


def _full() -> Any:
    return YAML(typ="safe", pure=True).load((POSITIVE / "full.yml").read_text())


_PATHS = [p for p in _paths(_full()) if p]


def _check(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "c.yml"
        f.write_text(text)
        try:
            assert isinstance(config.load(str(f), env={}), Config)
        except ConfigError as e:
            assert e.problems
            for p in e.problems:
                assert p.file == str(f)
                assert p.message and "\n" not in p.message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), values), min_size=1, max_size=3))
def test_mutated_full_config_never_crashes(changes: list[tuple[tuple[Any, ...], Any]]) -> None:
    doc = _full()
    for path, value in changes:
        node = doc
        try:
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(doc, out)
    _check(out.getvalue())


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{}'\"#&*!|>%@ \n\t1.?,")), max_size=60))
def test_random_text_never_crashes(text: str) -> None:
    _check(text)
