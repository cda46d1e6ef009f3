"""The validated rule config, as typed values.

``config.load`` builds these from ``.acr-ci.yml`` after the JSON Schema and the
semantic checks passed; every later stage reads only these values.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta, timezone
from types import MappingProxyType

from acr_ci.models import CacheMode, RefType
from acr_ci.rulesyntax import MatchPattern

DEFAULT_TIMEZONE = timezone(timedelta(hours=8))
"""``${time}`` is rendered in UTC+8 unless the config says otherwise (the hosted product's zone)."""
MAX_TAGS_PER_RULE = 3
MAX_BUILD_ARGS = 20


class Builder(enum.StrEnum):
    AUTO = "auto"
    BUILDX = "buildx"
    BUILDAH = "buildah"


class Severity(enum.IntEnum):
    """Finding severities, ordered so that comparisons mean "at or above"."""

    UNKNOWN = 0
    NEGLIGIBLE = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.strip().upper()]

    def __str__(self) -> str:
        return self.name.lower()


class ScanEngine(enum.StrEnum):
    TRIVY = "trivy"
    GRYPE = "grype"
    REPORT = "report"


class ScanMode(enum.StrEnum):
    BLOCKING = "blocking"
    NON_BLOCKING = "non-blocking"


class BlockLogic(enum.StrEnum):
    ANY = "any"
    ALL = "all"


class SyncLevel(enum.StrEnum):
    NAMESPACE = "namespace"
    REPOSITORY = "repository"


class TriggerOn(enum.StrEnum):
    ALL = "all"
    REGEXP = "regexp"
    TAGS = "tags"


@dataclass(frozen=True)
class CacheSetting:
    """A ``cache:`` entry (``build.cache`` or a rule's)."""

    ref: str
    """``registry/repository[:tag]`` as written; may hold ``${rule}``."""
    mode: CacheMode = CacheMode.MIN


@dataclass(frozen=True)
class Rule:
    """One build rule."""

    name: str
    type: RefType
    match: str
    """The regex as written in the config."""
    pattern: MatchPattern
    """``match`` compiled (``(?<n>…)`` or ``(?P<n>…)`` groups, ASCII classes), each match
    bounded in time."""
    tags: tuple[str, ...]
    """1 to 3 tag templates."""
    context: str = "."
    dockerfile: str = "Dockerfile"
    platforms: tuple[str, ...] = ("linux/amd64",)
    args: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    no_cache: bool = False
    cache: CacheSetting | None = None
    """The rule's registry build cache: its own ``cache``, else ``build.cache``."""
    accelerate: bool = True
    """False: this rule's images get no accelerated twin (``accelerate: false``)."""


@dataclass(frozen=True)
class BuildConfig:
    builder: Builder = Builder.AUTO
    rules: tuple[Rule, ...] = ()
    cache: CacheSetting | None = None
    """``build.cache``: the default of rules without their own ``cache``."""


@dataclass(frozen=True)
class AllowEntry:
    """An accepted risk: a vulnerability id that does not count, with why and until when."""

    id: str
    reason: str
    until: date | None = None


@dataclass(frozen=True)
class BlockPolicy:
    severity: Severity | None = None
    """Block at or above this severity (None: severity never blocks)."""
    count: int = 1
    vulnerabilities: tuple[str, ...] = ()
    logic: BlockLogic = BlockLogic.ANY
    ignore_unfixed: bool = False
    allow: tuple[AllowEntry, ...] = ()


@dataclass(frozen=True)
class OnBlock:
    backup: str | None = None
    """Repository to copy a blocked image to before anything is deleted."""
    delete: bool = False


@dataclass(frozen=True)
class ScanConfig:
    engine: ScanEngine = ScanEngine.TRIVY
    report: tuple[str, ...] = ()
    mode: ScanMode = ScanMode.BLOCKING
    block: BlockPolicy = field(default_factory=BlockPolicy)
    on_block: OnBlock = field(default_factory=OnBlock)


@dataclass(frozen=True)
class SyncRule:
    name: str
    to: str
    level: SyncLevel = SyncLevel.NAMESPACE
    tags: MatchPattern | None = None
    """Whole-tag regex; None selects every tag."""
    insecure: bool = False
    """Plain HTTP / unverified TLS allowed for this destination."""


@dataclass(frozen=True)
class Trigger:
    name: str
    url: str = field(repr=False)
    """May carry a secret: never logged or recorded whole (and left out of the repr)."""
    on: TriggerOn = TriggerOn.ALL
    match: MatchPattern | None = None
    tags: tuple[str, ...] = ()
    secret_env: str | None = None
    allow_http: bool = False
    timeout: float = 10.0


@dataclass(frozen=True)
class RegistryLimit:
    """One ``registries:`` entry: the request limit of one registry host."""

    host: str
    """``host`` or ``host:port``, lowercase."""
    max_concurrent: int | None = None
    """Requests open at once; ``None``: the default (8)."""
    max_per_second: float | None = None
    """Requests started per second; ``None``: unlimited."""


@dataclass(frozen=True)
class SignConfig:
    """``sign:``: how images are signed (cosign classic with a key, or Sigstore keyless)."""

    key_env: str = "ACR_CI_SIGNING_KEY"
    """The NAME of the environment variable holding the PEM private key (never the key)."""
    password_env: str = "ACR_CI_SIGNING_PASSWORD"  # noqa: S105 - a variable name, not a secret
    """The NAME of the environment variable holding the key's password, if any."""
    keyless: bool = False
    """Sigstore keyless signing with the CI's OIDC identity (bundles as OCI referrers)."""
    trust_config: str | None = None
    """A Sigstore client trust config file (relative to the config's folder) naming a
    private Fulcio/Rekor/TSA; None: ``$ACR_CI_SIGSTORE_TRUST_CONFIG``, else public Sigstore."""


@dataclass(frozen=True)
class AttestConfig:
    """``attest:``: which attestations are attached (signed with the ``sign:`` key)."""

    sbom: bool = False
    """A CycloneDX SBOM for each platform image."""
    provenance: bool = True
    """SLSA v1 provenance for the index."""


@dataclass(frozen=True)
class AccelerateConfig:
    """``accelerate:``: an eStargz twin of every passed image, tagged TAG + ``suffix``."""

    format: str = "estargz"
    """The twin's layer format (``estargz`` or ``zstd-chunked``)."""
    suffix: str = "_accelerated"
    """Appended to every tag of the image."""


@dataclass(frozen=True)
class Config:
    """The whole validated ``.acr-ci.yml``."""

    path: str
    """The file it was read from, as given."""
    image: str
    """The target repository, normalized (``registry/namespace/repo``, no tag)."""
    timezone: timezone = DEFAULT_TIMEZONE
    immutable_tags: bool = False
    build: BuildConfig = field(default_factory=BuildConfig)
    scan: ScanConfig | None = None
    sync: tuple[SyncRule, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    """Registries (host[:port]) allowed over plain HTTP / unverified TLS besides loopback."""
    registries: tuple[RegistryLimit, ...] = ()
    """Per-registry request limits (``registries:``), in file order."""
    sign: SignConfig | None = None
    """``sign:``; None when the config has no such section (nothing is signed)."""
    attest: AttestConfig | None = None
    """``attest:``; None when the config has no such section (nothing is attested)."""
    accelerate: AccelerateConfig | None = None
    """``accelerate:``; None: no accelerated twins."""
