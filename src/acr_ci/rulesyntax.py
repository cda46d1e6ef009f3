"""The syntax of a rule's ``match`` and ``tags``: checked when the config loads, used to plan.

Both the config checks and :mod:`acr_ci.tags` need it, so it sits below both (and
imports neither). Template fields are described in :mod:`acr_ci.tags`.

Config regexes (a rule's ``match``, a mirror's ``tags``, a trigger's ``match``) run
against names someone else chose (a pushed branch, a registry's tag list), so they are
compiled with the ``regex`` package and every match has a time limit
(:data:`MATCH_TIMEOUT`): a catastrophically backtracking pattern such as
``([a-z]+-?)+`` is a :class:`MatchTimeoutError` (exit 2), never a hung job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import regex

from acr_ci.errors import MAX_SHOWN, UsageError, clip

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


MATCH_TIMEOUT = 0.5
"""Seconds one config regex may spend on one name (a sane pattern needs microseconds)."""

PatternError = re.error
"""What :func:`compile_match` raises for a malformed regex (``msg``, ``pos``)."""


class MatchTimeoutError(UsageError):
    """A config regex took longer than its time limit on one name (catastrophic backtracking)."""


def clipped(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` quoted, cut to ``limit`` characters with an ellipsis and its length."""
    cut = clip(text, limit)
    return repr(text) if cut == text else f"{text[:limit]!r}{cut[limit:]}"


@dataclass(frozen=True)
class MatchPattern:
    """A compiled config regex whose every match is bounded in time."""

    pattern: str
    """The regex as written in the config."""
    compiled: regex.Pattern[str] = field(repr=False, compare=False)

    @property
    def groupindex(self) -> dict[str, int]:
        """The named groups and their numbers."""
        return dict(self.compiled.groupindex)

    def fullmatch(
        self, text: str, *, timeout: float = MATCH_TIMEOUT, what: str = "the regular expression"
    ) -> regex.Match[str] | None:
        """Match all of ``text``; :class:`MatchTimeoutError` (naming ``what``) past ``timeout``."""
        limit = max(timeout, 0.001)
        try:
            return self.compiled.fullmatch(text, timeout=limit)
        except TimeoutError:
            raise MatchTimeoutError(
                f"{what} {clipped(self.pattern)} took more than {limit:.2g} s to match "
                f"{clipped(text)}: it backtracks catastrophically",
                "simplify the regex: avoid a repeated group that itself repeats, "
                "such as ([a-z]+-?)+ (write [a-z0-9-]+ instead)",
            ) from None


def compile_match(source: str) -> MatchPattern:
    """Compile a config regex (a rule's ``match``, a mirror's or trigger's tags).

    Accepts ``(?<name>…)`` (the hosted product's and Java's syntax) as well as
    ``(?P<name>…)``; ``\\w``, ``\\d`` and ``\\s`` are ASCII. Raises :data:`PatternError`.
    """
    python = _python_groups(source)
    re.compile(python, re.ASCII)  # the syntax (and the messages) of Python's own re
    try:
        compiled = regex.compile(python, regex.ASCII | regex.V0)
    except regex.error as e:  # re accepted it: should not happen; the same error type
        raise re.error(str(e), python, getattr(e, "pos", None)) from None
    return MatchPattern(source, compiled)


def _python_groups(source: str) -> str:
    out: list[str] = []
    i, n = 0, len(source)
    in_class = False
    while i < n:
        c = source[i]
        if c == "\\":
            out.append(source[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            # a ']' right after '[' or '[^' is literal
            j = i + 1
            if j < n and source[j] == "^":
                j += 1
            if j < n and source[j] == "]":
                out.append(source[i : j + 1])
                i = j + 1
                continue
        elif source.startswith("(?<", i) and i + 3 < n and source[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)


CACHE_RULE_FIELD = "${rule}"
"""The one field a ``cache.ref`` may hold: the rule's name."""


def render_cache_ref(template: str, rule: str) -> str:
    """A ``cache.ref`` with every ``${rule}`` replaced by the rule's name in lowercase
    (repository paths are lowercase)."""
    return template.replace(CACHE_RULE_FIELD, rule.lower())


def cache_ref_fields(template: str) -> list[str]:
    """The ``${…}`` fields of a ``cache.ref`` other than ``${rule}`` (each one an error)."""
    return [f"${{{m}}}" for m in _FIELD_RE.findall(template) if m != "rule"]
