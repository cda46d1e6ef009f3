"""``load``: ``.acr-ci.yml`` → a validated :class:`~acr_ci.config.model.Config`.

Three passes, all problems of the last two reported together:

1. read and parse the YAML (:mod:`acr_ci.config.source`), which stops at the first
   syntax error;
2. the JSON Schema (:mod:`acr_ci.config.schemas`);
3. the checks a schema cannot do (:mod:`acr_ci.config.checks`).

Only a document without problems is turned into a ``Config``.

Choices where the format leaves room:

- build ``args`` values are strings; YAML integers are accepted when written as
  plain decimals (``PORT: 8080`` → ``"8080"``); floats and booleans are refused with
  "quote it" (``GO_VERSION: 1.20`` would silently become ``1.2``);
- ``timezone`` is ``±HH:MM``, ``Z`` or ``UTC``;
- a trigger's ``match`` without ``on: regexp`` (or ``tags`` without ``on: tags``),
  and ``scan.report`` with another engine, are errors: they would be ignored;
- sync ``to`` with ``level: namespace`` is stored normalized as ``registry/namespace``
  (``team`` → ``docker.io/team``); ``image``, ``backup`` and repository-level ``to``
  as ``registry/repository``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, date, timedelta, timezone
from types import MappingProxyType
from typing import Any

from acr_ci.config.model import (
    DEFAULT_TIMEZONE,
    AccelerateConfig,
    AllowEntry,
    AttestConfig,
    BlockLogic,
    BlockPolicy,
    BuildConfig,
    Builder,
    CacheSetting,
    Config,
    OnBlock,
    RegistryLimit,
    Rule,
    ScanConfig,
    ScanEngine,
    ScanMode,
    Severity,
    SignConfig,
    SyncLevel,
    SyncRule,
    Trigger,
    TriggerOn,
)
from acr_ci.errors import ConfigError
from acr_ci.models import CacheMode, RefType

DEFAULT_FILE = ".acr-ci.yml"
ENV_VAR = "ACR_CI_CONFIG"


def resolve_path(path: str | None, env: Mapping[str, str] | None = None) -> str:
    """The config file to read: ``path``, else ``$ACR_CI_CONFIG``, else ``.acr-ci.yml``."""
    if path:
        return path
    environ = os.environ if env is None else env
    return environ.get(ENV_VAR) or DEFAULT_FILE


def load(path: str | None, *, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and return the rule config; raise :class:`ConfigError` with every problem."""
    from acr_ci.config import checks, schemas, source

    file = resolve_path(path, env)
    doc = source.read(file)
    problems = list(doc.problems)
    problems += schemas.validate(doc)
    problems += checks.check(doc)
    if problems:
        problems.sort(key=lambda p: (p.line, p.column, p.path))
        raise ConfigError(problems)
    return build_config(file, doc.data)


def parse_timezone(text: str) -> timezone:
    """``+08:00`` / ``-05:30`` / ``Z`` / ``UTC`` → a fixed-offset timezone."""
    if text in ("Z", "UTC"):
        return UTC
    m = re.fullmatch(r"([+-])([0-9]{2}):([0-9]{2})", text)
    if m is None:
        raise ValueError(f"not a UTC offset: {text!r}")
    offset = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return timezone(-offset if m.group(1) == "-" else offset)


def _cache(value: Mapping[str, Any] | None) -> CacheSetting | None:
    """A ``cache:`` mapping (checked) → its setting; ``None`` (absent or ``null``) → none."""
    if value is None:
        return None
    return CacheSetting(ref=value["ref"], mode=CacheMode(value.get("mode", "min")))


def build_config(file: str, d: Mapping[str, Any]) -> Config:
    """The typed ``Config`` of a document that passed the schema and the checks."""
    from acr_ci.config.checks import namespace_name
    from acr_ci.registry.reference import Reference
    from acr_ci.rulesyntax import compile_match

    build = d.get("build") or {}
    default_cache = _cache(build.get("cache"))
    rules = tuple(
        Rule(
            name=r["name"],
            type=RefType(r["type"]),
            match=r["match"],
            pattern=compile_match(r["match"]),
            tags=tuple(r["tags"]),
            context=r.get("context", "."),
            dockerfile=r.get("dockerfile", "Dockerfile"),
            platforms=tuple(r.get("platforms", ("linux/amd64",))),
            args=MappingProxyType({k: str(v) for k, v in r.get("args", {}).items()}),
            no_cache=r.get("no_cache", False),
            cache=_cache(r["cache"]) if "cache" in r else default_cache,
            accelerate=r.get("accelerate", True),
        )
        for r in build.get("rules", [])
    )
    scan: ScanConfig | None = None
    if "scan" in d:
        s = d["scan"]
        report = s.get("report")
        b = s.get("block", {})
        ob = s.get("on_block", {})
        scan = ScanConfig(
            engine=ScanEngine(s.get("engine", "trivy")),
            report=()
            if report is None
            else (report,)
            if isinstance(report, str)
            else tuple(report),
            mode=ScanMode(s.get("mode", "blocking")),
            block=BlockPolicy(
                severity=Severity.parse(b["severity"]) if "severity" in b else None,
                count=b.get("count", 1),
                vulnerabilities=tuple(b.get("vulnerabilities", ())),
                logic=BlockLogic(b.get("logic", "any")),
                ignore_unfixed=b.get("ignore_unfixed", False),
                allow=tuple(
                    AllowEntry(
                        id=a["id"],
                        reason=a["reason"],
                        until=date.fromisoformat(a["until"]) if "until" in a else None,
                    )
                    for a in b.get("allow", ())
                ),
            ),
            on_block=OnBlock(
                backup=Reference.parse(ob["backup"]).name if "backup" in ob else None,
                delete=ob.get("delete", False),
            ),
        )
    sync = []
    for item in d.get("sync", ()):
        level = SyncLevel(item.get("level", "namespace"))
        if level is SyncLevel.NAMESPACE:
            to = namespace_name(item["to"]) or item["to"]
        else:
            to = Reference.parse(item["to"]).name
        sync.append(
            SyncRule(
                name=item["name"],
                to=to,
                level=level,
                tags=compile_match(item["tags"]) if "tags" in item else None,
                insecure=item.get("insecure", False),
            )
        )
    triggers = tuple(
        Trigger(
            name=t["name"],
            url=t["url"],
            on=TriggerOn(t.get("on", "all")),
            match=compile_match(t["match"]) if "match" in t else None,
            tags=tuple(t.get("tags", ())),
            secret_env=t.get("secret_env"),
            allow_http=t.get("allow_http", False),
            timeout=float(t.get("timeout", 10.0)),
        )
        for t in d.get("triggers", ())
    )
    sign: SignConfig | None = None
    if "sign" in d:
        sg = d["sign"] or {}
        sign = SignConfig(
            key_env=sg.get("key_env", SignConfig.key_env),
            password_env=sg.get("password_env", SignConfig.password_env),
            keyless=sg.get("keyless", False),
            trust_config=sg.get("trust_config"),
        )
    attest: AttestConfig | None = None
    if "attest" in d:
        at = d["attest"] or {}
        attest = AttestConfig(sbom=at.get("sbom", False), provenance=at.get("provenance", True))
    return Config(
        path=file,
        image=Reference.parse(d["image"]).name,
        timezone=parse_timezone(d["timezone"]) if "timezone" in d else DEFAULT_TIMEZONE,
        immutable_tags=d.get("immutable_tags", False),
        build=BuildConfig(
            builder=Builder(build.get("builder", "auto")), rules=rules, cache=default_cache
        ),
        scan=scan,
        sync=tuple(sync),
        triggers=triggers,
        insecure_registries=tuple(d.get("insecure_registries", ())),
        registries=tuple(
            RegistryLimit(
                host=str(host).lower(),
                max_concurrent=v.get("max_concurrent"),
                max_per_second=float(v["max_per_second"]) if "max_per_second" in v else None,
            )
            for host, v in d.get("registries", {}).items()
        ),
        sign=sign,
        attest=attest,
        accelerate=AccelerateConfig(
            format=d["accelerate"].get("format", "estargz"),
            suffix=d["accelerate"].get("suffix", "_accelerated"),
        )
        if "accelerate" in d
        else None,
    )
