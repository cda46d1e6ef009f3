"""Rule matching and tag rendering: ``Config`` + ``RefContext`` → ``BuildPlan``s.

Pure functions: the ref, the commit and the push time come in as arguments;
nothing here reads the environment, the clock or git.

Template fields (``${…}``):

- ``${NAME}``: a named capture group of the rule's ``match``;
- ``${commit}`` / ``${commit:N}``: the first 6 (or N, 1-40) characters of the commit ID;
- ``${time}`` / ``${time:FORMAT}``: the push time in the config's timezone,
  ``%Y%m%d%H%M`` by default, else the strftime ``FORMAT`` (``%s``: the push time's epoch
  seconds, whatever the timezone);
- ``${branch}``, ``${tag}``, ``${ref}``: the ref's name; ``${sha}``: the full commit ID.

A named group shadows the built-ins ``branch``, ``tag``, ``ref`` and ``sha``;
groups may not be called ``commit`` or ``time`` (those take arguments).

Every rendered tag is sanitized (:func:`sanitize_tag`): a tag over 128 characters keeps
its first 111 and ends in ``-`` plus 16 hex digits (64 bits) of its SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, tzinfo

import regex

from acr_ci.config.model import Config, Rule
from acr_ci.errors import RefError, TagError
from acr_ci.models import MAX_REF_NAME, BuildCache, BuildPlan, RefContext
from acr_ci.registry.reference import TAG_RE, Reference
from acr_ci.rulesyntax import (  # the syntax lives in rulesyntax.py; importable here too
    BUILTINS,
    DEFAULT_COMMIT_LENGTH,
    MATCH_TIMEOUT,
    MAX_COMMIT_LENGTH,
    RESERVED_GROUPS,
    Field,
    TemplateSyntaxError,
    check_template,
    clipped,
    compile_match,
    parse_template,
    render_cache_ref,
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
MATCH_BUDGET = MATCH_TIMEOUT
"""Seconds all the rules' ``match`` regexes together may spend on one ref name."""
MAX_TAG = 128
HASH_DIGITS = 16
"""Hex digits of SHA-256 (64 bits) that end a shortened tag: a second ref name with the same
tag cannot be searched for."""
_HASHED_PREFIX = MAX_TAG - 1 - HASH_DIGITS
_INVALID_RUN = re.compile(r"[^A-Za-z0-9_.-]+")
_STRFTIME_CODE = re.compile(r"%.", re.DOTALL)


def sanitize_tag(text: str) -> str:
    """Make ``text`` a valid OCI tag, as DESIGN.md specifies; may return ''."""
    tag = _INVALID_RUN.sub("-", text).lstrip(".-")
    if len(tag) > MAX_TAG:
        digest = hashlib.sha256(tag.encode()).hexdigest()[:HASH_DIGITS]
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
                try:
                    local_time = ref.time.astimezone(tz)
                except OverflowError:
                    raise TagError(
                        f"the push time {ref.time.isoformat()} cannot be shown in the "
                        "config's timezone",
                        "pass a real push time with --time",
                    ) from None
            out.append(_strftime(local_time, ref.time, part.arg or DEFAULT_TIME_FORMAT))
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


def _strftime(local_time: datetime, push_time: datetime, fmt: str) -> str:
    """``local_time.strftime(fmt)``, where ``%s`` is the push time's epoch seconds (the C
    library's ``%s`` reads the runner's ``TZ``); a format it cannot render is a ``TagError``."""
    epoch = str(int(push_time.timestamp()))
    rewritten = _STRFTIME_CODE.sub(lambda m: epoch if m.group(0) == "%s" else m.group(0), fmt)
    try:
        return local_time.strftime(rewritten)
    except (ValueError, UnicodeError, OverflowError):
        raise TagError(
            f"the ${{time:…}} format {clipped(fmt)} cannot be rendered on this system",
            "use the usual strftime codes, e.g. ${time:%Y%m%d%H%M}",
        ) from None


def matching_rules(
    config: Config, ref: RefContext, *, budget: float = MATCH_BUDGET
) -> Iterator[tuple[Rule, regex.Match[str]]]:
    """The rules whose type and whole-name ``match`` fit the ref, in config order.

    All the rules' matches together get ``budget`` seconds: a regex that backtracks
    past it is a :class:`~acr_ci.rulesyntax.MatchTimeoutError` naming the rule (exit 2)."""
    check_ref_name(ref.name)
    deadline = time.monotonic() + budget
    for i, rule in enumerate(config.build.rules):
        if rule.type != ref.type:
            continue
        m = rule.pattern.fullmatch(
            ref.name,
            timeout=min(MATCH_TIMEOUT, deadline - time.monotonic()),
            what=f"rule {clipped(rule.name)} (build.rules[{i}].match):",
        )
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
    if not _encodable(name):
        raise RefError(
            "the ref name is not valid UTF-8 (it holds undecodable bytes)",
            "git ref names acr-ci builds must be UTF-8 text",
        )


def _encodable(text: str) -> bool:
    """Whether ``text`` is real Unicode (no lone surrogates, e.g. from undecodable argv bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
                cache=_cache(rule),
            )
        )
    return plans


def _cache(rule: Rule) -> BuildCache | None:
    """The rule's registry cache with ``${rule}`` filled in, normalized like ``image``
    (``cache/app`` → ``docker.io/cache/app``); the config checks made sure it parses."""
    if rule.cache is None:
        return None
    ref = Reference.parse(render_cache_ref(rule.cache.ref, rule.name), what="cache ref")
    return BuildCache(ref=str(ref), mode=rule.cache.mode)
