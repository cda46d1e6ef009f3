"""The config's JSON Schema (draft 2020-12) and human messages for its errors.

The schema ships as ``schema.json`` next to this module; ``acr-ci schema``
prints it for editors. Every jsonschema error is turned into a located
:class:`~acr_ci.errors.ConfigProblem` whose message says what would be right,
never a raw jsonschema dump (those repeat the offending value, which may be a
tokened URL).
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

from acr_ci.config.source import Document, Path, show
from acr_ci.errors import ConfigProblem


@functools.cache
def schema_text() -> str:
    """The JSON Schema of ``.acr-ci.yml``, as text."""
    return resources.files("acr_ci.config").joinpath("schema.json").read_text(encoding="utf-8")


@functools.cache
def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_text())
    return loaded


def schema() -> dict[str, Any]:
    """The JSON Schema of ``.acr-ci.yml``, as a fresh dict (safe to change)."""
    return copy.deepcopy(_schema())


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator, validators

    # A YAML float is never an "integer" here: `count: 1.0` or `X: 1.0` is refused.
    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool)
    )
    cls = validators.extend(
        Draft202012Validator, {"pattern": _pattern_keyword}, type_checker=checker
    )
    return cls(_schema())


def _pattern_keyword(validator: Any, pattern: str, instance: Any, _schema: Any) -> Iterator[Any]:
    """``pattern`` as JSON Schema means it (ECMA 262): ``$`` is the end of the text.

    jsonschema's own uses ``re.search``, where ``$`` also matches before a final newline,
    so ``"linux/amd64\n"`` would pass ``^…$``."""
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        yield ValidationError(f"does not match {pattern!r}")  # never the value: may be a secret


@functools.cache
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """A schema ``pattern`` compiled for Python with ECMA's end anchor: each ``$`` outside a
    character class becomes ``\\Z`` (the end of the text, not "before a final newline")."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        out.append("\\Z" if c == "$" and not in_class else c)
        i += 1
    return re.compile("".join(out))


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "empty",
}

_PATTERN_MESSAGES = {
    "name": "must be a name of letters, digits, '.', '_' and '-', starting with a letter "
    "or digit, at most 63 characters",
    "timezone": 'must be a UTC offset such as "+08:00" or "-05:30" (quoted), or "Z"/"UTC"',
    "hostPort": "must be a registry host with an optional :port (e.g. registry.internal:5000), "
    "without scheme or path",
    "platform": "must be os/arch[/variant] in lowercase, e.g. linux/amd64, linux/arm64, "
    "linux/arm/v7, linux/386, linux/ppc64le, linux/s390x",
    "argName": "is not a valid build arg name: use letters, digits and _, not starting with a digit",
    "envName": "must be the NAME of an environment variable (letters, digits and _, not "
    "starting with a digit), not the secret itself",
    "tag": "must be a valid tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}",
    "tagSuffix": "must be a tag suffix of letters, digits, '.', '_' and '-', 1 to 64 characters",
    "vulnId": "must be a vulnerability id without spaces, e.g. CVE-2024-3094",
    "date": "must be a date written YYYY-MM-DD, e.g. 2027-01-31",
}
_NO_ECHO = frozenset({"envName"})
"""Patterns whose failing value is never repeated (a secret may have been pasted there)."""

_COUNT_NOUNS = {"tags": "tag templates", "args": "build args", "platforms": "platforms"}


def validate(doc: Document) -> list[ConfigProblem]:
    """Every schema problem of ``doc``, located and worded for people."""
    problems: list[ConfigProblem] = []
    seen: set[tuple[int, int, str, str]] = set()
    for error in _validator().iter_errors(doc.data):
        for path, message, key in _translate(doc, error):
            p = doc.problem(path, message, key=key)
            ident = (p.line, p.column, p.path, p.message)
            if ident not in seen:
                seen.add(ident)
                problems.append(p)
    return problems


def _translate(doc: Document, error: Any) -> Iterator[tuple[Path, str, bool]]:
    path: Path = tuple(error.absolute_path)
    kind: str = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    schema_path = list(error.schema_path)

    if "propertyNames" in schema_path:
        name = str(instance)
        shown = show(name)
        yield (
            (*path, name),
            f"key {shown} {_pattern_message(error.schema)}".replace("  ", " "),
            True,
        )
        return
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        for extra in instance:
            if extra in allowed or any(p.search(extra) for p in patterns):
                continue
            yield (*path, extra), _unknown_key(extra, allowed), True
        return
    if kind == "required" and isinstance(instance, dict):
        condition = _condition(schema_path)
        for name in value:
            if name not in instance:
                text = f"missing required key {name!r}"
                if condition:
                    text += f" (needed with {condition})"
                yield path, text, False
        return
    if kind == "type":
        yield path, _type_message(doc, path, value, instance), False
        return
    if kind == "enum":
        yield path, _choice_message(value, instance), False
        return
    if kind == "const":
        yield path, f"must be {json.dumps(value)}" + _got(instance), False
        return
    if kind == "pattern":
        message = _pattern_message(error.schema)
        if _pattern_def(error.schema) not in _NO_ECHO and show(instance):
            message += f" (got {show(instance)})"
        yield path, message, False
        return
    if kind == "minLength":
        yield path, "must not be empty", False
        return
    if kind == "minItems":
        if value == 1:
            yield path, "must not be an empty list", False
        else:
            yield path, f"must have at least {value} items", False
        return
    if kind in ("maxItems", "maxProperties"):
        noun = _COUNT_NOUNS.get(str(path[-1]) if path else "", "items")
        yield path, f"has {len(instance)} {noun}; at most {value} are allowed", False
        return
    if kind == "uniqueItems" and isinstance(instance, list):
        firsts: dict[str, int] = {}
        for i, item in enumerate(instance):
            ident = json.dumps(item, sort_keys=True)
            if ident in firsts:
                shown = show(item)
                yield (
                    (*path, i),
                    f"duplicate item {shown} (the same as item {firsts[ident]})".replace("  ", " "),
                    False,
                )
            else:
                firsts[ident] = i
        return
    if kind == "minimum":
        yield path, f"must be at least {value}" + _got(instance), False
        return
    if kind == "exclusiveMinimum":
        yield path, f"must be more than {value}" + _got(instance), False
        return
    if kind == "maximum":
        yield path, f"must be at most {value}" + _got(instance), False
        return
    yield path, f"is not valid here (fails the schema's {kind!r} rule)", False


def _got(instance: Any) -> str:
    shown = show(instance)
    return f" (got {shown})" if shown else ""


def _unknown_key(key: str, allowed: list[str]) -> str:
    shown = show(key) or "here"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if not close:
        close = [a for a in allowed if a.lower() == key.lower().replace("-", "_")]
    if close:
        return f"unknown key {shown}; did you mean {close[0]!r}?"
    return f"unknown key {shown}; allowed here: {', '.join(allowed)}"


def _choice_message(choices: list[Any], instance: Any) -> str:
    text = "must be one of: " + ", ".join(str(c) for c in choices)
    if isinstance(instance, str):
        close = difflib.get_close_matches(
            instance.lower(), [str(c) for c in choices], n=1, cutoff=0.6
        )
        if close:
            return text + f" (got {show(instance) or 'something else'}; did you mean {close[0]!r}?)"
    return text + _got(instance)


def _describe(instance: Any) -> str:
    if instance is None:
        return "empty"
    if isinstance(instance, bool):
        return "a boolean"
    if isinstance(instance, int | float):
        return "a number"
    if isinstance(instance, str):
        return "a string"
    if isinstance(instance, list):
        return "a list"
    if isinstance(instance, dict):
        return "a mapping"
    return type(instance).__name__


def _type_message(doc: Document, path: Path, expected: Any, instance: Any) -> str:
    wanted = [expected] if isinstance(expected, str) else list(expected)
    names = [_TYPE_NAMES.get(w, w) for w in wanted if w != "null"]
    text = "must be " + " or ".join(names)
    if "string" in wanted and isinstance(instance, bool | int | float):
        raw = doc.raw(path) or show(instance)
        if isinstance(instance, bool):
            return f'{text}: YAML reads {raw} as a boolean; quote it: "{raw}"'
        if isinstance(instance, float):
            return (
                f"{text}: YAML reads {raw} as the number {instance!r}, which loses how it "
                f'was written; quote it: "{raw}"'
            )
        return f'{text}: YAML reads {raw} as a number; quote it: "{raw}"'
    if instance is None:
        if len(path) >= 2 and path[-2] == "args":
            return f'{text}, but is empty; write "" for an empty value'
        return f"{text}, but is empty"
    if wanted == ["integer"] and isinstance(instance, float):
        return f"{text}, a whole number without a decimal point (got {instance!r})"
    return f"{text}, not {_describe(instance)}"


def _pattern_def(subschema: Any) -> str | None:
    defs = _schema()["$defs"]
    for name, sub in defs.items():
        if sub is subschema:
            return str(name)
    for name, sub in defs.items():  # in case the validator handed out a copy
        if sub == subschema:
            return str(name)
    return None


def _pattern_message(subschema: Any) -> str:
    name = _pattern_def(subschema)
    if name in _PATTERN_MESSAGES:
        return _PATTERN_MESSAGES[name]
    return "is not in the expected form"


def _condition(schema_path: list[Any]) -> str:
    """For a ``required`` inside ``then``: the ``if`` it depends on, as ``on: regexp``."""
    if "then" not in schema_path:
        return ""
    cut = len(schema_path) - 1 - schema_path[::-1].index("then")
    node: Any = _schema()
    for part in schema_path[:cut]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return ""
    condition = node.get("if", {}) if isinstance(node, dict) else {}
    parts = [
        f"{k}: {v['const']}"
        for k, v in condition.get("properties", {}).items()
        if isinstance(v, dict) and "const" in v
    ]
    return ", ".join(parts)
