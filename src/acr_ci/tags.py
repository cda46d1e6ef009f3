"""Rule matching and tag rendering: ``Config`` + ``RefContext`` → ``BuildPlan``s.

Pure functions: the ref, the commit and the push time come in as arguments;
nothing here reads the environment, the clock or git.

Template fields (``${…}``):

- ``${NAME}``: a named capture group of the rule's ``match``;
- ``${commit}`` / ``${commit:N}``: the first 6 (or N, 1-40) characters of the commit ID;
- ``${time}`` / ``${time:FORMAT}``: the push time in the config's timezone,
  ``%Y%m%d%H%M`` by default, else the strftime ``FORMAT``;
- ``${branch}``, ``${tag}``, ``${ref}``: the ref's name; ``${sha}``: the full commit ID.

A named group shadows the built-ins ``branch``, ``tag``, ``ref`` and ``sha``;
groups may not be called ``commit`` or ``time`` (those take arguments).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from datetime import datetime, tzinfo

from acr_ci.config.model import Config, Rule
from acr_ci.errors import RefError, TagError
from acr_ci.models import MAX_REF_NAME, BuildPlan, RefContext
from acr_ci.registry.reference import TAG_RE
from acr_ci.rulesyntax import (  # the syntax lives in rulesyntax.py; importable here too
    BUILTINS,
    DEFAULT_COMMIT_LENGTH,
    MAX_COMMIT_LENGTH,
    RESERVED_GROUPS,
    Field,
    TemplateSyntaxError,
    check_template,
    compile_match,
    parse_template,
)

__all__ = [
    "BUILTINS",
    "DEFAULT_COMMIT_LENGTH",
    "DEFAULT_TIME_FORMAT",
    "MAX_COMMIT_LENGTH",
    "MAX_TAG",
    "RESERVED_GROUPS",
    "Field",
    "TemplateSyntaxError",
    "check_ref_name",
    "check_template",
    "compile_match",
    "matching_rules",
    "parse_template",
    "plan",
    "render",
    "sanitize_tag",
]

DEFAULT_TIME_FORMAT = "%Y%m%d%H%M"
MAX_TAG = 128
_HASHED_PREFIX = 121
_INVALID_RUN = re.compile(r"[^A-Za-z0-9_.-]+")


def sanitize_tag(text: str) -> str:
    """Make ``text`` a valid OCI tag, as DESIGN.md specifies; may return ''."""
    tag = _INVALID_RUN.sub("-", text).lstrip(".-")
    if len(tag) > MAX_TAG:
        digest = hashlib.sha256(tag.encode()).hexdigest()[:6]
        tag = f"{tag[:_HASHED_PREFIX]}-{digest}"
    return tag


def render(
    template: str,
    *,
    groups: Mapping[str, str],
    ref: RefContext,
    tz: tzinfo,
) -> str:
    """Render one template (before sanitizing)."""
    out: list[str] = []
    local_time: datetime | None = None
    for part in parse_template(template):
        if isinstance(part, str):
            out.append(part)
        elif part.name == "commit":
            length = int(part.arg) if part.arg else DEFAULT_COMMIT_LENGTH
            if not ref.sha:
                raise TagError(
                    "the tag template needs ${commit} but the commit ID is unknown",
                    "pass --sha or run inside a git checkout",
                )
            if len(ref.sha) < length:
                raise TagError(
                    f"${{commit:{length}}} needs {length} characters of the commit ID, "
                    f"but only {len(ref.sha)} are known",
                    "pass the full commit ID with --sha",
                )
            out.append(ref.sha[:length])
        elif part.name == "time":
            if local_time is None:
                local_time = ref.time.astimezone(tz)
            out.append(local_time.strftime(part.arg or DEFAULT_TIME_FORMAT))
        elif part.name in groups:
            out.append(groups[part.name])
        elif part.name in ("branch", "tag", "ref"):
            out.append(ref.name)
        elif part.name == "sha":
            if not ref.sha:
                raise TagError(
                    "the tag template needs ${sha} but the commit ID is unknown",
                    "pass --sha or run inside a git checkout",
                )
            out.append(ref.sha)
        else:  # check_template ran at config load; this is a programming error
            raise TagError(f"unknown template field ${{{part.name}}}")
    return "".join(out)


def matching_rules(config: Config, ref: RefContext) -> Iterator[tuple[Rule, re.Match[str]]]:
    """The rules whose type and whole-name ``match`` fit the ref, in config order."""
    check_ref_name(ref.name)
    for rule in config.build.rules:
        if rule.type != ref.type:
            continue
        m = rule.pattern.fullmatch(ref.name)
        if m is not None:
            yield rule, m


def check_ref_name(name: str) -> None:
    """Refuse ref names no rule should see (empty, over-long, control characters)."""
    if not name:
        raise RefError("the ref name is empty", "pass --ref refs/heads/NAME or refs/tags/NAME")
    if len(name) > MAX_REF_NAME:
        raise RefError(
            f"the ref name is {len(name)} characters long; at most {MAX_REF_NAME} are accepted"
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise RefError("the ref name contains control characters")


def plan(config: Config, ref: RefContext) -> list[BuildPlan]:
    """One :class:`BuildPlan` per matching rule, in config order."""
    plans: list[BuildPlan] = []
    for rule, m in matching_rules(config, ref):
        groups = {k: v or "" for k, v in m.groupdict().items()}
        tags: list[str] = []
        for template in rule.tags:
            rendered = render(template, groups=groups, ref=ref, tz=config.timezone)
            tag = sanitize_tag(rendered)
            if not tag:
                raise TagError(
                    f"rule {rule.name!r}: tag template {template!r} renders to an empty tag "
                    f"for {ref.type} {ref.name!r}",
                    "add literal text to the template, or make the capture group non-empty",
                )
            if not TAG_RE.fullmatch(tag):  # cannot happen after sanitize_tag; guard the contract
                raise TagError(f"rule {rule.name!r}: {tag!r} is not a valid tag")
            if tag not in tags:
                tags.append(tag)
        plans.append(
            BuildPlan(
                rule=rule.name,
                image=config.image,
                tags=tuple(tags),
                platforms=rule.platforms,
                context=rule.context,
                dockerfile=rule.dockerfile,
                args=rule.args,
                no_cache=rule.no_cache,
            )
        )
    return plans
