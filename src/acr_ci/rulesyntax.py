"""The syntax of a rule's ``match`` and ``tags``: checked when the config loads, used to plan.

Both the config checks and :mod:`acr_ci.tags` need it, so it sits below both (and
imports neither). Template fields are described in :mod:`acr_ci.tags`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_COMMIT_LENGTH = 6
MAX_COMMIT_LENGTH = 40
BUILTINS = frozenset({"commit", "time", "branch", "tag", "ref", "sha"})
RESERVED_GROUPS = frozenset({"commit", "time"})
"""Built-ins that take an argument: no capture group may use these names."""

_FIELD_RE = re.compile(r"\$\{([^{}]*)\}")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


class TemplateSyntaxError(ValueError):
    """A tag template is malformed; the message says where and why."""


@dataclass(frozen=True)
class Field:
    """One ``${name[:arg]}`` field of a template."""

    name: str
    arg: str | None
    start: int
    end: int


def parse_template(template: str) -> list[str | Field]:
    """Split a template into literal text and fields; raise on malformed ``${``."""
    parts: list[str | Field] = []
    pos = 0
    for m in _FIELD_RE.finditer(template):
        literal = template[pos : m.start()]
        _check_literal(template, literal, pos)
        if literal:
            parts.append(literal)
        body = m.group(1)
        name, colon, arg = body.partition(":")
        if not _NAME_RE.fullmatch(name):
            raise TemplateSyntaxError(
                f"${{{body}}} at character {m.start() + 1} is not a field: "
                "write ${name}, ${commit:N} or ${time:FORMAT}"
            )
        parts.append(Field(name, arg if colon else None, m.start(), m.end()))
        pos = m.end()
    rest = template[pos:]
    _check_literal(template, rest, pos)
    if rest:
        parts.append(rest)
    return parts


def _check_literal(template: str, literal: str, offset: int) -> None:
    where = literal.find("${")
    if where >= 0:
        raise TemplateSyntaxError(
            f"'${{' at character {offset + where + 1} is never closed with '}}'"
        )


def check_template(template: str, groups: frozenset[str]) -> None:
    """Raise :class:`TemplateSyntaxError` if ``template`` can never render.

    ``groups`` are the named capture groups of the rule's ``match``.
    """
    for part in parse_template(template):
        if isinstance(part, str):
            continue
        if part.name == "commit":
            if part.arg is not None:
                if not part.arg.isdigit() or not 1 <= int(part.arg) <= MAX_COMMIT_LENGTH:
                    raise TemplateSyntaxError(
                        f"${{commit:{part.arg}}} needs a length from 1 to {MAX_COMMIT_LENGTH}"
                    )
        elif part.name == "time":
            if part.arg is not None and not part.arg:
                raise TemplateSyntaxError("${time:} needs a strftime format, e.g. ${time:%Y%m%d}")
        elif part.name in groups:
            if part.arg is not None:
                raise TemplateSyntaxError(f"${{{part.name}:{part.arg}}}: a group takes no argument")
        elif part.name in BUILTINS:
            if part.arg is not None:
                raise TemplateSyntaxError(
                    f"${{{part.name}:{part.arg}}}: this field takes no argument"
                )
        else:
            known = sorted(groups) + sorted(BUILTINS)
            raise TemplateSyntaxError(
                f"${{{part.name}}} is neither a named group of the rule's match nor a built-in "
                f"(known: {', '.join(known)})"
            )


def compile_match(regex: str) -> re.Pattern[str]:
    """Compile a rule's ``match`` for Python.

    Accepts ``(?<name>…)`` (the hosted product's and Java's syntax) as well as
    ``(?P<name>…)``; ``\\w``, ``\\d`` and ``\\s`` are ASCII. Raises ``re.error``.
    """
    return re.compile(_python_groups(regex), re.ASCII)


def _python_groups(regex: str) -> str:
    out: list[str] = []
    i, n = 0, len(regex)
    in_class = False
    while i < n:
        c = regex[i]
        if c == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            # a ']' right after '[' or '[^' is literal
            j = i + 1
            if j < n and regex[j] == "^":
                j += 1
            if j < n and regex[j] == "]":
                out.append(regex[i : j + 1])
                i = j + 1
                continue
        elif regex.startswith("(?<", i) and i + 3 < n and regex[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)
