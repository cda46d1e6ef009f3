"""config.load on real YAML files: every positive fixture builds the expected Config,
every negative fixture fails with the exact location, path and message.

Expected values are written out by hand from the fixture files and DESIGN.md,
never computed by the code under test.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from tests.unit.config.config_cases import NEGATIVE, NEGATIVE_CASES, POSITIVE

from acr_ci import config
from acr_ci.config.model import (
    AttestConfig,
    BlockLogic,
    Builder,
    CacheSetting,
    Config,
    ScanEngine,
    ScanMode,
    Severity,
    SignConfig,
    SyncLevel,
    TriggerOn,
)
from acr_ci.errors import ConfigError, ConfigProblem
from acr_ci.models import BuildCache, CacheMode, RefContext, RefType


def problems_of(path: Path | str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        config.load(str(path), env={})
    assert info.value.exit_code == 2
    return info.value.problems


# --------------------------------------------------------------------------- negative

@pytest.mark.parametrize(
    ("case", "line", "column", "path", "phrase", "schema_level"),
    NEGATIVE_CASES,
    ids=[c[0] for c in NEGATIVE_CASES],
)
def test_negative(case: str, line: int, column: int, path: str, phrase: str, schema_level: bool) -> None:
    file = NEGATIVE / f"{case}.yml"
    problems = problems_of(file)
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    p = problems[0]
    assert (p.file, p.line, p.column, p.path) == (str(file), line, column, path)
    assert phrase in p.message
    # the one-line form the CLI prints starts with file:line:col
    assert str(p).startswith(f"{file}:{line}:{column}:")
    assert "\n" not in str(p)
    assert "Traceback" not in str(p)


def test_every_negative_fixture_has_a_case() -> None:
    files = {f.stem for f in NEGATIVE.glob("*.yml")}
    assert files - {"multi_error"} == {c[0] for c in NEGATIVE_CASES}


def test_all_problems_are_reported_at_once() -> None:
    file = NEGATIVE / "multi_error.yml"
    got = [(p.line, p.column, p.path) for p in problems_of(file)]
    assert got == [
        (1, 10, "version"),
        (2, 8, "image"),
        (3, 11, "timezone"),
        (5, 12, "build.builder"),
        (9, 14, "build.rules[0].match"),
        (11, 19, "build.rules[0].platforms[0]"),
        (12, 26, "build.rules[0].args.GO_VERSION"),
        (14, 5, "triggers[0]"),
        (15, 10, "triggers[0].url"),
    ]


@pytest.mark.parametrize(
    "case",
    ["trigger_http_token", "multi_error"],
    ids=["single", "multi"],
)
def test_tokened_url_never_in_error_text(case: str) -> None:
    file = NEGATIVE / f"{case}.yml"
    assert "SECRET123" in file.read_text()  # the fixture does carry the token
    with pytest.raises(ConfigError) as info:
        config.load(str(file), env={})
    error = info.value
    for text in (str(error), repr(error), error.diagnostics(), *(str(p) for p in error.problems),
                 *(repr(p) for p in error.problems)):
        assert "SECRET123" not in text
        assert "token=" not in text
        assert "/x" not in text  # no path either: scheme://host only


def test_valid_tokened_url_stays_out_of_the_repr() -> None:
    cfg = config.load(str(POSITIVE / "full.yml"), env={})
    assert cfg.triggers[0].url.endswith("?token=SECRET123")  # kept for the request itself
    assert "SECRET123" not in repr(cfg)


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("make", "phrase", "hint"),
    [
        (lambda d: d / "nope.yml", "no such file", "--config"),
        (lambda d: d, "is a directory", "name the YAML file"),
    ],
    ids=["missing", "directory"],
)
def test_unreadable(tmp_path: Path, make: object, phrase: str, hint: str) -> None:
    target = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ConfigError) as info:
        config.load(str(target), env={})
    (p,) = info.value.problems
    assert (p.file, p.line, p.column) == (str(target), 0, 0)
    assert phrase in p.message
    assert info.value.hint and hint in info.value.hint


def test_bad_utf8_is_located(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_bytes(b"version: 1\nimage: caf\xe9/app\n")
    (p,) = problems_of(f)
    assert (p.line, p.column) == (2, 11)
    assert "UTF-8" in p.message


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["version: 1", "image: app", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    f = tmp_path / "bomb.yml"
    f.write_text("\n".join(lines) + "\n")
    problems = problems_of(f)
    assert any("more than 100000 values" in p.message for p in problems)


@pytest.mark.parametrize(
    ("arg", "env", "cwd_file", "expected"),
    [
        ("given.yml", {"ACR_CI_CONFIG": "env.yml"}, True, "given.yml"),
        (None, {"ACR_CI_CONFIG": "env.yml"}, True, "env.yml"),
        (None, {"ACR_CI_CONFIG": ""}, True, ".acr-ci.yml"),
        (None, {}, True, ".acr-ci.yml"),
    ],
    ids=["argument", "env", "empty-env", "default"],
)
def test_which_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arg: str | None, env: dict[str, str],
    cwd_file: bool, expected: str,
) -> None:
    body = (POSITIVE / "minimal.yml").read_text()
    for name in ("given.yml", "env.yml", ".acr-ci.yml"):
        (tmp_path / name).write_text(body.replace("image: app", f"image: r.example.com/x/{name.strip('.').replace('.', '-')}"))
    monkeypatch.chdir(tmp_path)
    cfg = config.load(arg, env=env)
    assert cfg.path == expected
    assert cfg.image == f"r.example.com/x/{expected.strip('.').replace('.', '-')}"


def test_env_defaults_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "from-env.yml"
    f.write_text("version: 1\nimage: r.example.com/x/from-env\n")
    monkeypatch.setenv("ACR_CI_CONFIG", str(f))
    monkeypatch.chdir(tmp_path)
    assert config.load(None).image == "r.example.com/x/from-env"
    assert os.environ["ACR_CI_CONFIG"] == str(f)


# --------------------------------------------------------------------------- positive


def load_positive(name: str) -> Config:
    return config.load(str(POSITIVE / f"{name}.yml"), env={})


def test_every_positive_fixture_loads() -> None:
    names = sorted(f.stem for f in POSITIVE.glob("*.yml"))
    assert names == ["anchors", "defaults", "design_example", "full", "hosted_docs", "minimal", "signing", "signing_keyless", "single_report"]
    for name in names:
        assert isinstance(load_positive(name), Config)


def test_signing_sections() -> None:
    cfg = load_positive("signing")
    assert cfg.sign == SignConfig(key_env="ACR_CI_SIGNING_KEY", password_env="ACR_CI_SIGNING_PASSWORD")
    assert cfg.attest == AttestConfig(sbom=False, provenance=True)
    # without the sections nothing is signed or attested
    minimal = load_positive("minimal")
    assert (minimal.sign, minimal.attest) == (None, None)
    keyless = load_positive("signing_keyless")
    assert keyless.sign == SignConfig(keyless=True, trust_config="sigstore-trust.json")
    assert keyless.attest == AttestConfig(sbom=True, provenance=True)


def test_full_config_every_field() -> None:
    cfg = load_positive("full")
    assert cfg.path == str(POSITIVE / "full.yml")
    assert cfg.image == "registry.example.com/team/app"
    assert cfg.timezone == timezone(-timedelta(hours=5, minutes=30))
    assert cfg.immutable_tags is True
    assert cfg.insecure_registries == ("registry.internal:5000", "[::1]:5001", "mirror.lan")

    assert cfg.build.builder is Builder.BUILDAH
    main, release = cfg.build.rules
    assert (main.name, main.type, main.match) == ("main", RefType.BRANCH, "main")
    assert (main.context, main.dockerfile) == ("services/api", "docker/Dockerfile.prod")
    assert main.tags == ("latest", "${commit}", "main-${time}")
    assert main.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")
    assert dict(main.args) == {"GO_VERSION": "1.20", "PORT": "8080", "EMPTY": ""}
    assert main.no_cache is True
    assert release.type is RefType.TAG
    m = release.pattern.fullmatch("v12.3.4")
    assert m is not None and m.groupdict() == {"major": "12", "minor": "3"}
    assert release.tags == ("${major}.${minor}", "${tag}", "${sha}")

    scan = cfg.scan
    assert scan is not None
    assert scan.engine is ScanEngine.REPORT
    assert scan.report == ("reports/trivy.json", "reports/grype.json")
    assert scan.mode is ScanMode.NON_BLOCKING
    assert scan.block.severity is Severity.CRITICAL
    assert scan.block.count == 2
    assert scan.block.vulnerabilities == ("CVE-2024-3094", "GHSA-xxxx-yyyy-zzzz")
    assert scan.block.logic is BlockLogic.ALL
    assert scan.block.ignore_unfixed is True
    a0, a1 = scan.block.allow
    assert (a0.id, a0.reason, a0.until) == ("CVE-2023-0001", "not reachable", date(2027, 1, 31))
    assert (a1.id, a1.reason, a1.until) == ("CVE-2023-0002", "no fix upstream", None)
    assert scan.on_block.backup == "registry.example.com/quarantine/app"
    assert scan.on_block.delete is True

    beijing, hub = cfg.sync
    assert (beijing.name, beijing.to, beijing.level, beijing.insecure) == (
        "to-beijing", "mirror.example.com/team", SyncLevel.NAMESPACE, True,
    )
    assert beijing.tags is not None and beijing.tags.fullmatch("v1.2")
    assert beijing.tags.fullmatch("latest") is None
    assert (hub.name, hub.to, hub.level, hub.tags, hub.insecure) == (
        "to-hub", "docker.io/team/app-mirror", SyncLevel.REPOSITORY, None, False,
    )

    deploy, notify, local = cfg.triggers
    assert deploy.url == "https://hooks.example.com/deploy/abc?token=SECRET123"
    assert deploy.on is TriggerOn.REGEXP
    assert deploy.match is not None and deploy.match.fullmatch("v12-rc1")
    assert deploy.match.fullmatch("latest") is None
    assert (deploy.secret_env, deploy.timeout, deploy.allow_http) == ("DEPLOY_HOOK_SECRET", 2.5, False)
    assert (notify.on, notify.tags, notify.allow_http, notify.match) == (
        TriggerOn.TAGS, ("latest", "stable"), True, None,
    )
    assert (local.on, local.url, local.timeout, local.secret_env) == (
        TriggerOn.ALL, "http://127.0.0.1:8080/hook", 10.0, None,
    )


def test_hosted_product_doc_rules() -> None:
    cfg = load_positive("hosted_docs")
    main, release = cfg.build.rules
    assert (main.name, main.match, main.tags) == ("main", "main", ("latest",))
    assert release.match == r"release-(?<imageTag>\w*)"
    assert release.tags == ("${imageTag}", "${imageTag}-${time:%Y%m%d}", "${imageTag}-${commit:8}")
    m = release.pattern.fullmatch("release-v1")
    assert m is not None and m.group("imageTag") == "v1"
    assert release.pattern.fullmatch("release-é") is None  # \w is ASCII


DEFAULT_CASES = [
    ("minimal", "docker.io/library/app", 0),
    ("defaults", "localhost:5000/team/app", 1),
]


@pytest.mark.parametrize(("name", "image", "rules"), DEFAULT_CASES, ids=[c[0] for c in DEFAULT_CASES])
def test_defaults(name: str, image: str, rules: int) -> None:
    cfg = load_positive(name)
    assert cfg.image == image
    assert cfg.timezone == timezone(timedelta(hours=8))
    assert cfg.immutable_tags is False
    assert cfg.build.builder is Builder.AUTO
    assert len(cfg.build.rules) == rules
    for rule in cfg.build.rules:
        assert (rule.context, rule.dockerfile, rule.platforms, dict(rule.args), rule.no_cache) == (
            ".", "Dockerfile", ("linux/amd64",), {}, False,
        )
    assert (cfg.sync, cfg.triggers, cfg.insecure_registries) == ((), (), ())


def test_scan_absent_is_none_and_empty_scan_has_defaults() -> None:
    assert load_positive("minimal").scan is None
    scan = load_positive("defaults").scan
    assert scan is not None
    assert (scan.engine, scan.report, scan.mode) == (ScanEngine.TRIVY, (), ScanMode.BLOCKING)
    assert (scan.block.severity, scan.block.count, scan.block.logic) == (None, 1, BlockLogic.ANY)
    assert (scan.on_block.backup, scan.on_block.delete) == (None, False)


def test_anchors_and_utc() -> None:
    cfg = load_positive("anchors")
    assert cfg.timezone == UTC
    assert [r.platforms for r in cfg.build.rules] == [("linux/amd64", "linux/arm64")] * 2
    assert [r.type for r in cfg.build.rules] == [RefType.BRANCH] * 2  # from the merge key
    assert [dict(r.args) for r in cfg.build.rules] == [{"BASE": "debian:bookworm"}] * 2


def test_single_report_and_unquoted_offset() -> None:
    cfg = load_positive("single_report")
    assert cfg.timezone == timezone(timedelta(hours=8))  # `+08:00` unquoted is text in YAML 1.2
    assert cfg.scan is not None and cfg.scan.report == ("trivy.json",)
    assert cfg.scan.block.severity is Severity.HIGH


TIMEZONE_CASES = [
    ('"+00:00"', timedelta(0)),
    ('"-12:00"', timedelta(hours=-12)),
    ('"+14:00"', timedelta(hours=14)),
    ('"+05:45"', timedelta(hours=5, minutes=45)),
    ("Z", timedelta(0)),
    ("UTC", timedelta(0)),
]


@pytest.mark.parametrize(("text", "offset"), TIMEZONE_CASES, ids=[c[0] for c in TIMEZONE_CASES])
def test_timezones(tmp_path: Path, text: str, offset: timedelta) -> None:
    f = tmp_path / "c.yml"
    f.write_text(f"version: 1\nimage: app\ntimezone: {text}\n")
    assert config.load(str(f), env={}).timezone.utcoffset(None) == offset


def test_problem_text_is_one_line_per_problem() -> None:
    with pytest.raises(ConfigError) as info:
        config.load(str(NEGATIVE / "multi_error.yml"), env={})
    lines = str(info.value).splitlines()
    assert lines[0] == "9 problems in the config:"
    assert all(re.match(r".*multi_error\.yml:\d+:\d+: ", line) for line in lines[1:])


URL_CASES = [
    ("https", "https://hooks.example.com/x?token=T0KEN", False, None),
    ("http-loopback-v4", "http://127.0.0.1:8080/x?token=T0KEN", False, None),
    ("http-loopback-v4-other", "http://127.3.2.1/x", False, None),
    ("http-loopback-v6", "http://[::1]:8080/x?token=T0KEN", False, None),
    ("http-localhost", "http://localhost/x", False, None),
    ("http-allowed", "http://hooks.lan/x?token=T0KEN", True, None),
    ("http-refused", "http://hooks.lan/x?token=T0KEN", False, "plain http to http://hooks.lan would send"),
    ("http-refused-userinfo", "http://bob:T0KEN@hooks.lan:81/x", False, "plain http to http://hooks.lan:81 would"),
    ("localhost-lookalike", "http://localhost.evil.example/x", False, "plain http to http://localhost.evil.example"),
    ("scheme", "file:///etc/passwd", False, "must be an http:// or https:// URL"),
    ("no-scheme", "hooks.example.com/x?token=T0KEN", False, "must be an http:// or https:// URL"),
    ("bad-port", "https://hooks.example.com:99999/x?token=T0KEN", False, "is not a valid URL"),
    ("bad-ipv6", "https://[::1/x?token=T0KEN", False, "is not a valid URL"),
    ("space", "https://hooks.example.com/a b?token=T0KEN", False, "must not contain spaces"),
]


@pytest.mark.parametrize(("url", "allow_http", "phrase"), [c[1:] for c in URL_CASES], ids=[c[0] for c in URL_CASES])
def test_trigger_urls(tmp_path: Path, url: str, allow_http: bool, phrase: str | None) -> None:
    f = tmp_path / "c.yml"
    f.write_text(
        "version: 1\nimage: app\ntriggers:\n  - name: t\n"
        f"    url: '{url}'\n    allow_http: {'true' if allow_http else 'false'}\n"
    )
    if phrase is None:
        assert config.load(str(f), env={}).triggers[0].url == url
        return
    (p,) = problems_of(f)
    assert (p.line, p.column, p.path) == (5, 10, "triggers[0].url")
    assert phrase in p.message
    assert "T0KEN" not in str(p) and "/x" not in str(p)


SYNC_TO_CASES = [
    ("hub-namespace", "team", "namespace", "docker.io/team"),
    ("registry-root", "mirror.example.com", "namespace", "mirror.example.com"),
    ("port-nested-slash", "localhost:5000/a/b/", "namespace", "localhost:5000/a/b"),
    ("hub-repository", "team/app", "repository", "docker.io/team/app"),
    ("hub-library", "app", "repository", "docker.io/library/app"),
]


@pytest.mark.parametrize(("to", "level", "expected"), [c[1:] for c in SYNC_TO_CASES], ids=[c[0] for c in SYNC_TO_CASES])
def test_sync_to_is_normalized(tmp_path: Path, to: str, level: str, expected: str) -> None:
    f = tmp_path / "c.yml"
    f.write_text(f"version: 1\nimage: app\nsync:\n  - name: m\n    to: {to}\n    level: {level}\n")
    assert config.load(str(f), env={}).sync[0].to == expected


def test_build_cache_default_rule_override_and_null(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text(
        "version: 1\nimage: registry.example.com/team/app\nbuild:\n"
        "  cache: {ref: 'registry.example.com/cache/${rule}', mode: max}\n"
        "  rules:\n"
        "    - {name: Main, type: branch, match: main, tags: [latest]}\n"
        "    - {name: own, type: branch, match: main, tags: [latest], cache: {ref: 'c.example/x:${rule}-c'}}\n"
        "    - {name: off, type: branch, match: main, tags: [latest], cache: null}\n"
    )
    cfg = config.load(str(f), env={})
    assert cfg.build.cache == CacheSetting(ref="registry.example.com/cache/${rule}", mode=CacheMode.MAX)
    main, own, off = cfg.build.rules
    assert main.cache == cfg.build.cache
    assert own.cache == CacheSetting(ref="c.example/x:${rule}-c", mode=CacheMode.MIN)
    assert off.cache is None
    # rendered in the plans: ${rule} lowercase, normalized like `image`
    from acr_ci.tags import plan

    ref = RefContext(type=RefType.BRANCH, name="main", sha="a" * 40, time=datetime(2026, 1, 1, tzinfo=UTC))
    caches = [p.cache for p in plan(cfg, ref)]
    assert caches == [
        BuildCache(ref="registry.example.com/cache/main", mode=CacheMode.MAX),
        BuildCache(ref="c.example/x:own-c", mode=CacheMode.MIN),
        None,
    ]
    assert caches[1] is not None and caches[1].repository == "c.example/x"
    assert caches[1].host == "c.example"


def test_no_build_cache_by_default(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text("version: 1\nimage: app\nbuild:\n  rules:\n    - {name: m, type: branch, match: m, tags: [x]}\n")
    cfg = config.load(str(f), env={})
    assert cfg.build.cache is None and cfg.build.rules[0].cache is None
