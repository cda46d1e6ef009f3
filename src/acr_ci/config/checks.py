"""The checks a JSON Schema cannot do, each giving a located problem.

They run on the plain document even when the schema found problems (so one
run reports everything), and therefore never trust a value's type: each check
looks only at values of the type it expects.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

from acr_ci.config.source import Document, Path, format_path, show, walk_items
from acr_ci.errors import ConfigProblem, UsageError
from acr_ci.hosts import url_problem
from acr_ci.rulesyntax import (
    RESERVED_GROUPS,
    MatchPattern,
    PatternError,
    TemplateSyntaxError,
    cache_ref_fields,
    check_template,
    compile_match,
    parse_template,
    render_cache_ref,
)

_SAFE_INT = re.compile(r"-?(0|[1-9][0-9]*)")


def check(doc: Document) -> list[ConfigProblem]:
    """Every semantic problem of ``doc``."""
    out: list[ConfigProblem] = []
    d = doc.data
    out += _check_reference(doc, ("image",), d.get("image"), kind="image")
    build = d.get("build")
    if isinstance(build, dict):
        out += _check_rules(doc, build.get("rules"))
        out += _check_caches(doc, build)
    scan = d.get("scan")
    if isinstance(scan, dict):
        out += _check_scan(doc, scan)
    out += _check_names(doc, d.get("sync"), ("sync",), "sync destination")
    for path, item in walk_items(d.get("sync"), ("sync",)):
        out += _check_sync(doc, path, item)
    out += _check_names(doc, d.get("triggers"), ("triggers",), "trigger")
    for path, item in walk_items(d.get("triggers"), ("triggers",)):
        out += _check_trigger(doc, path, item)
    out += _check_signing(doc, d.get("sign"), d.get("attest"))
    return out


def _check_signing(doc: Document, sign: Any, attest: Any) -> Iterator[ConfigProblem]:
    if isinstance(sign, dict):
        if sign.get("trust_config") is not None and sign.get("keyless") is not True:
            yield doc.problem(
                ("sign", "trust_config"),
                "a Sigstore trust config is only used with keyless: true",
                key=True,
            )
        key_env, password_env = sign.get("key_env"), sign.get("password_env")
        if isinstance(key_env, str) and key_env and key_env == password_env:
            yield doc.problem(
                ("sign", "password_env"),
                f"names the same variable as key_env ({key_env}); the password needs its own",
            )
    if isinstance(attest, dict) and sign is None:
        yield doc.problem(
            ("attest",),
            "attestations are signed with the sign: key; add a sign: section (key_env)",
            key=True,
        )


def compile_regex(
    doc: Document, path: Path, value: Any
) -> tuple[MatchPattern | None, list[ConfigProblem]]:
    """Compile a config regex with :func:`acr_ci.rulesyntax.compile_match`; a problem if not."""

    if not isinstance(value, str) or not value:
        return None, []
    try:
        return compile_match(value), []
    except PatternError as e:
        where = f" at position {e.pos + 1}" if e.pos is not None else ""
        return None, [doc.problem(path, f"is not a valid regular expression: {e.msg}{where}")]
    except (RecursionError, OverflowError):
        return None, [doc.problem(path, "is not a valid regular expression: too complex")]


def _check_names(doc: Document, items: Any, base: Path, what: str) -> Iterator[ConfigProblem]:
    first: dict[str, int] = {}
    for path, item in walk_items(items, base):
        name = item.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            yield doc.problem(
                (*path, "name"),
                f"{what} name {show(name)} is already used by "
                f"{format_path((*base, first[name]))}; names must be unique",
            )
        else:
            first[name] = int(path[-1])


def _check_rules(doc: Document, rules: Any) -> Iterator[ConfigProblem]:
    base: Path = ("build", "rules")
    yield from _check_names(doc, rules, base, "rule")
    for path, rule in walk_items(rules, base):
        pattern, problems = compile_regex(doc, (*path, "match"), rule.get("match"))
        yield from problems
        groups: frozenset[str] | None = None
        if pattern is not None:
            groups = frozenset(pattern.groupindex)
            reserved = sorted(groups & RESERVED_GROUPS)
            if reserved:
                yield doc.problem(
                    (*path, "match"),
                    f"capture group name {reserved[0]!r} is reserved for ${{{reserved[0]}}}: "
                    "rename the group",
                )
        tags = rule.get("tags")
        if isinstance(tags, list):
            for j, template in enumerate(tags):
                if not isinstance(template, str) or not template:
                    continue
                try:
                    if groups is None:
                        parse_template(template)  # the groups are unknown: syntax only
                    else:
                        check_template(template, groups)
                except TemplateSyntaxError as e:
                    yield doc.problem((*path, "tags", j), str(e))
        args = rule.get("args")
        if isinstance(args, dict):
            for name, value in args.items():
                yield from _check_arg(doc, (*path, "args", name), value)


def _check_caches(doc: Document, build: dict[str, Any]) -> Iterator[ConfigProblem]:
    """Every ``cache.ref`` names a repository (``${rule}`` filled in with each rule that
    uses it) and holds no other ``${…}`` field."""
    rules = [(p, r) for p, r in walk_items(build.get("rules"), ("build", "rules"))]
    default = build.get("cache")
    if isinstance(default, dict):
        users = [r.get("name") for _, r in rules if "cache" not in r]
        names = [n for n in users if isinstance(n, str) and n] or ["rule"]
        yield from _check_cache_ref(doc, ("build", "cache", "ref"), default.get("ref"), names)
    for path, rule in rules:
        own = rule.get("cache")
        name = rule.get("name")
        if isinstance(own, dict):
            names = [name] if isinstance(name, str) and name else ["rule"]
            yield from _check_cache_ref(doc, (*path, "cache", "ref"), own.get("ref"), names)


def _check_cache_ref(
    doc: Document, path: Path, value: Any, rules: list[str]
) -> Iterator[ConfigProblem]:
    from acr_ci.registry.reference import Reference

    if not isinstance(value, str) or not value:
        return
    others = cache_ref_fields(value)
    if others:
        yield doc.problem(
            path,
            f"only ${{rule}} may be used in a cache ref (found {show(others[0]) or 'a field'})",
        )
        return
    for rule in dict.fromkeys(rules):
        rendered = render_cache_ref(value, rule)
        with_rule = f" (with ${{rule}} = {show(rule.lower())})" if rendered != value else ""
        try:
            ref = Reference.parse(rendered, what="cache ref")
        except UsageError as e:
            yield doc.problem(path, e.message + with_rule + (f"; {e.hint}" if e.hint else ""))
            return
        if ref.digest:
            yield doc.problem(path, "a cache ref names a repository[:tag], not a digest")
            return


def _check_arg(doc: Document, path: Path, value: Any) -> Iterator[ConfigProblem]:
    """Integers are used as written; anything YAML changed on reading is refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        return
    raw = doc.raw(path)
    if raw and not _SAFE_INT.fullmatch(raw):
        yield doc.problem(
            path, f'YAML reads {raw} as the number {value}; quote it to keep it as written: "{raw}"'
        )


def _check_scan(doc: Document, scan: dict[str, Any]) -> Iterator[ConfigProblem]:
    engine = scan.get("engine", "trivy")
    if scan.get("report") is not None and engine != "report" and isinstance(engine, str):
        yield doc.problem(
            ("scan", "report"),
            f"is only read with engine: report (engine is {show(engine) or 'another engine'}); "
            "remove it or set engine: report",
        )
    block = scan.get("block")
    if isinstance(block, dict):
        for path, entry in walk_items(block.get("allow"), ("scan", "block", "allow")):
            until = entry.get("until")
            if isinstance(until, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", until):
                try:
                    date.fromisoformat(until)
                except ValueError:
                    yield doc.problem((*path, "until"), f"{until} is not a real date")
    on_block = scan.get("on_block")
    if isinstance(on_block, dict):
        yield from _check_reference(
            doc, ("scan", "on_block", "backup"), on_block.get("backup"), kind="backup"
        )


def _check_sync(doc: Document, path: Path, item: dict[str, Any]) -> Iterator[ConfigProblem]:
    yield from compile_regex(doc, (*path, "tags"), item.get("tags"))[1]
    to = item.get("to")
    if item.get("level", "namespace") == "namespace":
        if isinstance(to, str) and to and namespace_name(to) is None:
            yield doc.problem(
                (*path, "to"),
                f"{show(to) or 'this'} is not a valid registry[/namespace] for level: namespace "
                "(e.g. mirror.example.com/team, no tag or digest)",
            )
    else:
        yield from _check_reference(doc, (*path, "to"), to, kind="sync target")


def namespace_name(text: str) -> str | None:
    """``registry[/namespace]`` normalized (``team`` → ``docker.io/team``), or None if invalid."""
    from acr_ci.registry.reference import Reference

    text = text.rstrip("/")
    if not text or "@" in text:
        return None
    try:
        ref = Reference.parse(f"{text}/x")
    except UsageError:
        return None
    if ref.tag or ref.digest:
        return None
    return ref.name[: -len("/x")]


def _check_reference(
    doc: Document, path: Path, value: Any, *, kind: str
) -> Iterator[ConfigProblem]:
    from acr_ci.registry.reference import Reference

    if not isinstance(value, str) or not value:
        return
    try:
        ref = Reference.parse(value, what=kind)
    except UsageError as e:
        text = e.message + (f"; {e.hint}" if e.hint else "")
        yield doc.problem(path, text)
        return
    if ref.tag or ref.digest:
        yield doc.problem(
            path,
            f"{kind} {show(value)} must name a repository without tag or digest "
            f"(write {ref.name}); tags come from the rules",
        )


def _check_trigger(doc: Document, path: Path, item: dict[str, Any]) -> Iterator[ConfigProblem]:
    on = item.get("on", "all")
    yield from compile_regex(doc, (*path, "match"), item.get("match"))[1]
    if isinstance(on, str) and on in ("all", "regexp", "tags"):
        if "match" in item and on != "regexp":
            yield doc.problem(
                (*path, "match"),
                f"is only used with on: regexp (on is {on}); set on: regexp or remove it",
            )
        if "tags" in item and on != "tags":
            yield doc.problem(
                (*path, "tags"),
                f"is only used with on: tags (on is {on}); set on: tags or remove it",
            )
    url = item.get("url")
    if isinstance(url, str) and url:
        problem = url_problem(url, allow_http=item.get("allow_http") is True)
        if problem:
            yield doc.problem((*path, "url"), problem.message)
