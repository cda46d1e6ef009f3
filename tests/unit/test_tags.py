"""Rule matching and tag rendering (tags.py), as tables of cases.

Expected tags are written out by hand from DESIGN.md's rules and the hosted
product's documented examples, never computed by the code under test.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acr_ci import tags
from acr_ci.config.model import BuildConfig, Config, Rule
from acr_ci.errors import RefError, TagError, UsageError
from acr_ci.models import RefContext, RefType
from acr_ci.rulesyntax import MatchTimeoutError

SHA = "4a8b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b"
# 2020-10-15 16:13 in UTC+8 (the hosted product's docs example time 202010151613)
PUSH = datetime(2020, 10, 15, 8, 13, tzinfo=UTC)
OCI_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


def rule(
    name: str, match: str, tag_templates: list[str], type_: str = "branch", **kw: object
) -> Rule:
    return Rule(
        name=name,
        type=RefType(type_),
        match=match,
        pattern=tags.compile_match(match),
        tags=tuple(tag_templates),
        **kw,  # type: ignore[arg-type]
    )


def config(*rules: Rule, tz: timezone = timezone(timedelta(hours=8))) -> Config:
    return Config(
        path=".acr-ci.yml",
        image="registry.example.com/team/app",
        timezone=tz,
        build=BuildConfig(rules=rules),
    )


def ref(name: str, type_: str = "branch", sha: str = SHA, time: datetime = PUSH) -> RefContext:
    return RefContext(type=RefType(type_), name=name, sha=sha, time=time)


RENDER_CASES = [
    # id, match, templates, ref name, expected tags
    ("docs-release-v1", r"release-(?<imageTag>\w*)", ["${imageTag}"], "release-v1", ["v1"]),
    (
        "docs-three-groups",
        r"release-(?<major>\d*)-(?<minor>\d*)-(?<version>\d*)",
        ["${major}.${minor}.${version}"],
        "release-1-2-3",
        ["1.2.3"],
    ),
    (
        "docs-release-time-commit",
        r"release-(?<imageTag>\w*)",
        ["${imageTag}", "${imageTag}-${time:%Y%m%d}", "${imageTag}-${commit:8}"],
        "release-v1",
        ["v1", "v1-20201015", "v1-4a8b1c2d"],
    ),
    ("python-group-syntax", r"release-(?P<v>\w+)", ["${v}"], "release-v2", ["v2"]),
    ("time-default-format", "main", ["${time}"], "main", ["202010151613"]),
    ("commit-default-6", "main", ["${commit}"], "main", ["4a8b1c"]),
    ("commit-1", "main", ["${commit:1}"], "main", ["4"]),
    ("commit-40", "main", ["${commit:40}"], "main", [SHA]),
    ("sha-full", "main", ["x-${sha}"], "main", [f"x-{SHA}"]),
    ("branch-builtin", "feat/.*", ["${branch}"], "feat/login", ["feat-login"]),
    ("ref-builtin", "feat/.*", ["pre-${ref}"], "feat/a", ["pre-feat-a"]),
    ("latest-is-plain", "main", ["latest"], "main", ["latest"]),
    ("dedupe-keeps-order", "main", ["${branch}", "latest", "main"], "main", ["main", "latest"]),
    (
        "non-ascii-runs-become-one-dash",
        "feature/.*",
        ["${branch}"],
        "feature/ünïcode-名前",
        ["feature-n-code--"],
    ),
    ("leading-dots-dashes-removed", r".*", ["${branch}"], "..--x.y", ["x.y"]),
    ("group-shadows-builtin", r"rel-(?<tag>\w+)", ["${tag}"], "rel-abc", ["abc"]),
    ("lookbehind-untouched", r"(?<=)main", ["ok"], "main", ["ok"]),
    ("dollar-without-brace-is-literal", "main", ["a$b"], "main", ["a-b"]),
]


@pytest.mark.parametrize(
    ("match", "templates", "name", "expected"),
    [c[1:] for c in RENDER_CASES],
    ids=[c[0] for c in RENDER_CASES],
)
def test_render(match: str, templates: list[str], name: str, expected: list[str]) -> None:
    plans = tags.plan(config(rule("r", match, templates)), ref(name))
    assert len(plans) == 1
    assert list(plans[0].tags) == expected
    assert list(plans[0].images) == [f"registry.example.com/team/app:{t}" for t in expected]


TIME_CASES = [
    # id, push time (UTC), timezone, template, expected
    (
        "before-utc8-midnight",
        datetime(2020, 10, 15, 15, 59, tzinfo=UTC),
        8,
        "${time}",
        "202010152359",
    ),
    (
        "after-utc8-midnight",
        datetime(2020, 10, 15, 16, 0, tzinfo=UTC),
        8,
        "${time}",
        "202010160000",
    ),
    (
        "date-flips-in-utc8",
        datetime(2020, 10, 15, 16, 30, tzinfo=UTC),
        8,
        "${time:%Y%m%d}",
        "20201016",
    ),
    (
        "same-instant-in-utc",
        datetime(2020, 10, 15, 16, 30, tzinfo=UTC),
        0,
        "${time:%Y%m%d}",
        "20201015",
    ),
    (
        "negative-offset",
        datetime(2020, 1, 1, 2, 0, tzinfo=UTC),
        -5,
        "${time:%Y-%m-%dT%H}",
        "2019-12-31T21",
    ),
    (
        "input-offset-ignored",
        datetime(2020, 10, 16, 1, 0, tzinfo=timezone(timedelta(hours=9))),
        8,
        "${time}",
        "202010160000",
    ),
]


@pytest.mark.parametrize(
    ("push", "hours", "template", "expected"),
    [c[1:] for c in TIME_CASES],
    ids=[c[0] for c in TIME_CASES],
)
def test_time_in_config_timezone(push: datetime, hours: int, template: str, expected: str) -> None:
    cfg = config(rule("r", "main", [template]), tz=timezone(timedelta(hours=hours)))
    assert tags.plan(cfg, ref("main", time=push))[0].tags == (expected,)


def test_long_branch_is_cut_and_hashed() -> None:
    name = "feature/" + "a" * 300
    sanitized = "feature-" + "a" * 300
    expected = sanitized[:111] + "-" + hashlib.sha256(sanitized.encode()).hexdigest()[:16]
    (plan,) = tags.plan(config(rule("r", "feature/.*", ["${branch}"])), ref(name))
    assert plan.tags == (expected,)
    assert len(plan.tags[0]) == 128


def test_long_names_differing_at_the_end_do_not_collide() -> None:
    cfg = config(rule("r", ".*", ["${branch}"]))
    a = tags.plan(cfg, ref("x" * 200 + "-one"))[0].tags[0]
    b = tags.plan(cfg, ref("x" * 200 + "-two"))[0].tags[0]
    assert a != b
    assert a[:111] == b[:111]


def test_exactly_128_is_kept_whole() -> None:
    name = "b" * 128
    assert tags.plan(config(rule("r", ".*", ["${branch}"])), ref(name))[0].tags == (name,)


MATCH_CASES = [
    # id, match, type, ref name, ref type, matches?
    ("whole-name-only", "main", "branch", "main2", "branch", False),
    ("whole-name-prefix", "main", "branch", "xmain", "branch", False),
    ("exact", "main", "branch", "main", "branch", True),
    ("branch-rule-ignores-tags", "main", "branch", "main", "tag", False),
    ("tag-rule-ignores-branches", r"v\d+", "tag", "v1", "branch", False),
    ("tag-rule", r"v\d+", "tag", "v1", "tag", True),
    ("w-is-ascii", r"release-\w*", "branch", "release-vé", "branch", False),
    ("d-is-ascii", r"\d+", "branch", "١٢", "branch", False),
    ("alternation-anchored", "main|dev", "branch", "devx", "branch", False),
]


@pytest.mark.parametrize(
    ("match", "rtype", "name", "reftype", "matches"),
    [c[1:] for c in MATCH_CASES],
    ids=[c[0] for c in MATCH_CASES],
)
def test_matching(match: str, rtype: str, name: str, reftype: str, matches: bool) -> None:
    plans = tags.plan(config(rule("r", match, ["x"], type_=rtype)), ref(name, type_=reftype))
    assert bool(plans) is matches


def test_every_matching_rule_builds_in_config_order() -> None:
    cfg = config(
        rule("second-listed-first", "rel.*", ["a"]),
        rule("no", "main", ["b"]),
        rule("third", r"release-(?<v>\w+)", ["${v}"]),
    )
    plans = tags.plan(cfg, ref("release-v9"))
    assert [p.rule for p in plans] == ["second-listed-first", "third"]
    assert [p.tags for p in plans] == [("a",), ("v9",)]


def test_defaults_and_rule_fields_reach_the_plan() -> None:
    r = rule(
        "r",
        "main",
        ["x"],
        context="app",
        dockerfile="Dockerfile.prod",
        platforms=("linux/amd64", "linux/arm64"),
        no_cache=True,
    )
    (p,) = tags.plan(config(r), ref("main"))
    assert (p.context, p.dockerfile, p.platforms, p.no_cache) == (
        "app",
        "Dockerfile.prod",
        ("linux/amd64", "linux/arm64"),
        True,
    )
    (d,) = tags.plan(config(rule("d", "main", ["x"])), ref("main"))
    assert (d.context, d.dockerfile, d.platforms, dict(d.args), d.no_cache) == (
        ".",
        "Dockerfile",
        ("linux/amd64",),
        {},
        False,
    )


ERROR_CASES = [
    # id, match, templates, ref name, sha, error type, phrase
    ("empty-after-sanitize", r"(?<v>.*)", ["${v}"], "...", SHA, TagError, "rule 'r'"),
    ("empty-group", r"rel-(?<v>\w*)", ["${v}"], "rel-", SHA, TagError, "empty tag"),
    ("commit-unknown", "main", ["${commit}"], "main", "", TagError, "commit ID is unknown"),
    ("commit-too-short", "main", ["${commit:12}"], "main", "abcdef01", TagError, "--sha"),
    ("ref-too-long", ".*", ["x"], "a" * 1025, SHA, RefError, "1024"),
    ("ref-control-chars", ".*", ["x"], "a\nb", SHA, RefError, "control"),
]


@pytest.mark.parametrize(
    ("match", "templates", "name", "sha", "error", "phrase"),
    [c[1:] for c in ERROR_CASES],
    ids=[c[0] for c in ERROR_CASES],
)
def test_errors(
    match: str, templates: list[str], name: str, sha: str, error: type[Exception], phrase: str
) -> None:
    with pytest.raises(error) as info:
        tags.plan(config(rule("r", match, templates)), ref(name, sha=sha))
    assert phrase in str(info.value) + (getattr(info.value, "hint", "") or "")


TEMPLATE_ERRORS = [
    ("unknown-group", "${nope}", "neither a named group"),
    ("commit-zero", "${commit:0}", "1 to 40"),
    ("commit-41", "${commit:41}", "1 to 40"),
    ("commit-not-number", "${commit:x}", "1 to 40"),
    ("unclosed", "v-${commit", "never closed"),
    ("empty-field", "${}", "not a field"),
    ("group-with-arg", "${v:3}", "no argument"),
    ("builtin-with-arg", "${branch:3}", "no argument"),
    ("time-empty-format", "${time:}", "strftime"),
]


@pytest.mark.parametrize(
    ("template", "phrase"), [c[1:] for c in TEMPLATE_ERRORS], ids=[c[0] for c in TEMPLATE_ERRORS]
)
def test_check_template_errors(template: str, phrase: str) -> None:
    with pytest.raises(tags.TemplateSyntaxError, match=re.escape(phrase)):
        tags.check_template(template, frozenset({"v"}))


@pytest.mark.parametrize(
    "template", ["${v}", "${commit}", "${commit:40}", "${time:%Y}", "${sha}", "plain", "a$b"]
)
def test_check_template_accepts(template: str) -> None:
    tags.check_template(template, frozenset({"v"}))


@settings(max_examples=400, deadline=None)
@given(
    name=st.text(min_size=1, max_size=1100).filter(
        lambda s: not any(ord(c) < 0x20 or ord(c) == 0x7F for c in s)
    ),
    prefix=st.text(max_size=20).filter(lambda s: "${" not in s and not s.endswith("$")),
    commit_len=st.integers(min_value=1, max_value=40),
)
def test_every_rendered_tag_is_a_valid_oci_tag(name: str, prefix: str, commit_len: int) -> None:
    cfg = config(
        rule("r", "(?s).*", [f"{prefix}${{branch}}", f"${{branch}}-${{commit:{commit_len}}}"])
    )
    r = ref(name)
    if len(name) > 1024:
        with pytest.raises(RefError):
            tags.plan(cfg, r)
        return
    try:
        (p,) = tags.plan(cfg, r)
    except TagError as e:  # only when a template sanitizes to nothing
        assert "empty tag" in str(e)
        return
    for t in p.tags:
        assert OCI_TAG.fullmatch(t), t


# --- hostile ref names and odd templates (issue 11) ---

REDOS_MATCH = "feature/(?<topic>([a-z0-9]+-?)+)"
REDOS_REF = "feature/" + "a" * 30 + "!"


def test_redos_match_from_the_issue_gives_a_clear_outcome() -> None:
    """The issue's pattern took 41 s with Python's re; now it ends, with no match."""
    cfg = config(rule("feat", REDOS_MATCH, ["${topic}"]))
    assert tags.plan(cfg, ref(REDOS_REF)) == []
    (plan,) = tags.plan(cfg, ref("feature/new-thing"))
    assert plan.tags == ("new-thing",)  # the (?<n>…) group still works


def test_backtracking_match_times_out_naming_the_rule() -> None:
    """A pattern the regex engine cannot shortcut hits the time limit: exit 2, one line."""
    cfg = config(rule("ok", "main", ["x"]), rule("slow", "(a|aa)+", ["x"]))
    with pytest.raises(UsageError) as info:
        list(tags.matching_rules(cfg, ref("a" * 60 + "!"), budget=0.05))
    assert isinstance(info.value, MatchTimeoutError)
    assert info.value.exit_code == 2
    assert "rule 'slow' (build.rules[1].match)" in info.value.message
    assert "\n" not in info.value.message
    assert info.value.hint and "simplify" in info.value.hint


def test_match_timeout_is_bounded_for_a_very_long_name() -> None:
    pattern = tags.compile_match("(a|aa)+")
    with pytest.raises(MatchTimeoutError) as info:
        pattern.fullmatch("a" * 1000 + "!", timeout=0.01)
    assert "(1001 characters)" in info.value.message  # the name is cut, not echoed whole
    assert len(info.value.message) < 400


def test_ref_with_undecodable_bytes_is_refused() -> None:
    name = b"feature/\xff".decode("utf-8", "surrogateescape")
    with pytest.raises(RefError, match="not valid UTF-8"):
        tags.plan(config(rule("r", ".*", ["${branch}"])), ref(name))


def test_time_s_is_the_push_times_epoch_seconds() -> None:
    push = datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)  # 1714566896, by `date -d … +%s`
    for hours in (-5, 0, 8):
        cfg = config(
            rule("r", "main", ["t${time:%s}", "p${time:%%s}"]), tz=timezone(timedelta(hours=hours))
        )
        assert tags.plan(cfg, ref("main", time=push))[0].tags == ("t1714566896", "p-s")


@pytest.mark.parametrize("fmt", ["%Y\ud800", "%Y\udcff%m"])
def test_unrenderable_time_format_is_a_tag_error(fmt: str) -> None:
    cfg = config(rule("r", "main", ["${time:" + fmt + "}"]))
    with pytest.raises(TagError, match="cannot be rendered"):
        tags.plan(cfg, ref("main"))


def test_push_time_at_the_end_of_time_is_a_tag_error() -> None:
    cfg = config(rule("r", "main", ["${time}"]), tz=timezone(timedelta(hours=8)))
    with pytest.raises(TagError, match="cannot be shown"):
        tags.plan(cfg, ref("main", time=datetime.max.replace(tzinfo=UTC)))


def test_hash_suffix_has_64_bits() -> None:
    tag = tags.sanitize_tag("x" * 500)
    assert len(tag) == 128
    assert re.fullmatch(r"x{111}-[0-9a-f]{16}", tag)
