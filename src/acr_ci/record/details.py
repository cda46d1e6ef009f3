"""The typed detail of each step (:data:`StepDetail`), to and from its JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

from acr_ci.config.model import ScanMode
from acr_ci.models import CacheOutcome, Status
from acr_ci.record.shape import Doc, unreadable
from acr_ci.sync import TagSync
from acr_ci.triggers import Delivery

if TYPE_CHECKING:
    from acr_ci.scan.gate import GateResult
    from acr_ci.sync import SyncResult
    from acr_ci.triggers import TriggerResult


@dataclass(frozen=True)
class NoDetail:
    """No facts: the step did not run, or failed before it had any (``{}``)."""

    def to_json(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class BuildDetail:
    """A succeeded build."""

    builder: str
    """``buildah`` or ``buildx``."""
    digest: str
    """The image index's digest."""
    platforms: Mapping[str, str]
    """``os/arch[/variant]`` → that platform's manifest digest."""
    seconds: float
    """How long the build took."""
    cache: CacheOutcome | None = None
    """What the build did with its registry cache; ``None``: no cache configured."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "platforms", MappingProxyType(dict(self.platforms)))

    def to_json(self) -> dict[str, Any]:
        return {
            "builder": self.builder,
            "digest": self.digest,
            "platforms": dict(self.platforms),
            "seconds": round(self.seconds, 3),
            "cache": None if self.cache is None else self.cache.to_json(),
        }

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> BuildDetail:
        d = Doc(value, where)
        d.only("builder", "digest", "platforms", "seconds", "cache")
        cache: CacheOutcome | None = None
        if d.has("cache") and d.doc["cache"] is not None:  # absent in older records
            c = Doc(d.doc["cache"], f"{where}/cache")
            c.only("ref", "read", "written", "error")
            cache = CacheOutcome(
                ref=c.text("ref"),
                read=c.flag("read"),
                written=c.flag("written"),
                error=c.opt_text("error"),
            )
        return cls(
            builder=d.text("builder"),
            digest=d.text("digest"),
            platforms=d.mapping("platforms", str),
            seconds=d.number("seconds"),
            cache=cache,
        )


@dataclass(frozen=True)
class MergeDetail:
    """A succeeded merge: the index built from the platform images runners pushed by digest."""

    digest: str
    """The image index's digest."""
    platforms: Mapping[str, str]
    """``os/arch[/variant]`` → that platform's manifest digest."""
    sources: tuple[str, ...]
    """The digests-file lines it came from (``FILE:LINE``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "platforms", MappingProxyType(dict(self.platforms)))

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "platforms": dict(self.platforms),
            "sources": list(self.sources),
        }

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> MergeDetail:
        d = Doc(value, where)
        d.only("digest", "platforms", "sources")
        return cls(
            digest=d.text("digest"),
            platforms=d.mapping("platforms", str),
            sources=d.texts("sources"),
        )


@dataclass(frozen=True)
class AccelerateDetail:
    """A pushed accelerated twin (eStargz) of the image."""

    digest: str
    """The twin's digest (an index for an index)."""
    source: str
    """The digest it was converted from (the pushed image)."""
    format: str
    """The layer format (``estargz`` or ``zstd-chunked``)."""
    tags: tuple[str, ...]
    """The twin's tags (each of the image's tags plus the suffix)."""
    images: tuple[str, ...]
    """``registry/repo:tag``, one per tag."""
    layers_converted: int
    """Distinct layers rewritten."""
    layers_kept: int
    """Layers already in the format, kept."""
    bytes_sent: int
    """Converted layer and config bytes uploaded."""

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "source": self.source,
            "format": self.format,
            "tags": list(self.tags),
            "images": list(self.images),
            "layers_converted": self.layers_converted,
            "layers_kept": self.layers_kept,
            "bytes_sent": self.bytes_sent,
        }

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> AccelerateDetail:
        d = Doc(value, where)
        d.only(
            "digest", "source", "format", "tags", "images", "layers_converted", "layers_kept",
            "bytes_sent",
        )  # fmt: skip
        return cls(
            digest=d.text("digest"),
            source=d.text("source"),
            format=d.text("format"),
            tags=d.texts("tags"),
            images=d.texts("images"),
            layers_converted=d.integer("layers_converted"),
            layers_kept=d.integer("layers_kept"),
            bytes_sent=d.integer("bytes_sent"),
        )


@dataclass(frozen=True)
class SignDetail:
    """One signature or attestation attached to the image (or one of its platform
    manifests), or the SBOM's plain referrer."""

    subject: str
    """The digest signed or attested."""
    kind: str
    """``signature``, ``attestation`` or ``sbom referrer``."""
    where: str
    """Where it is: the tag (``sha256-<hex>.sig``/``.att``, or the ``sha256-<hex>``
    referrers fallback tag) or ``referrers API``."""
    manifest: str
    """The digest of the manifest holding it (the ``.sig``/``.att`` manifest, or the referrer)."""
    layer: str
    """The digest of what was attached: the payload, envelope, bundle or SBOM."""
    key: str | None = None
    """The public key's fingerprint (``sha256:`` of its DER); None keyless or unsigned."""
    identity: str | None = None
    """Keyless: the certificate's identity (SAN)."""
    predicate_type: str | None = None
    """An attestation's predicate type (an SBOM referrer: its artifact type)."""
    added: bool = True
    """False when the same signature was already there."""

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "kind": self.kind,
            "where": self.where,
            "manifest": self.manifest,
            "layer": self.layer,
            "key": self.key,
            "identity": self.identity,
            "predicate_type": self.predicate_type,
            "added": self.added,
        }

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> SignDetail:
        d = Doc(value, where)
        d.only(
            "subject", "kind", "where", "manifest", "layer", "key", "identity", "predicate_type",
            "added",
        )  # fmt: skip
        return cls(
            subject=d.text("subject"),
            kind=d.text("kind"),
            where=d.text("where"),
            manifest=d.text("manifest"),
            layer=d.text("layer"),
            key=d.opt_text("key"),
            identity=d.opt_text("identity"),
            predicate_type=d.opt_text("predicate_type"),
            added=d.flag("added"),
        )


@dataclass(frozen=True)
class PushDetail:
    """A succeeded push."""

    digest: str
    """The pushed digest (what every tag points at)."""
    tags: tuple[str, ...]
    """The tags pushed."""
    images: tuple[str, ...]
    """``registry/repo:tag``, one per tag."""
    bytes_sent: int
    """Blob and manifest bytes written to the registry."""
    blobs_copied: int
    """Blobs uploaded."""
    blobs_skipped: int
    """Blobs the registry already had."""

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "tags": list(self.tags),
            "images": list(self.images),
            "bytes_sent": self.bytes_sent,
            "blobs_copied": self.blobs_copied,
            "blobs_skipped": self.blobs_skipped,
        }

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> PushDetail:
        d = Doc(value, where)
        d.only("digest", "tags", "images", "bytes_sent", "blobs_copied", "blobs_skipped")
        return cls(
            digest=d.text("digest"),
            tags=d.texts("tags"),
            images=d.texts("images"),
            bytes_sent=d.integer("bytes_sent"),
            blobs_copied=d.integer("blobs_copied"),
            blobs_skipped=d.integer("blobs_skipped"),
        )


@dataclass(frozen=True)
class ScanDetail:
    """A scan that gave a verdict (succeeded, or blocked by the gate)."""

    image: str
    """The image scanned, by digest (``registry/repo@sha256:…``)."""
    scanner: str
    """``trivy``, ``grype`` or ``report``."""
    mode: ScanMode
    """The gate's mode (``non-blocking``: a verdict that would block is only recorded)."""
    counts: Mapping[str, int]
    """Vulnerabilities per severity, highest severity first."""
    findings: int
    """Findings before merging by id and aliases."""
    vulnerabilities: int
    """Vulnerabilities after merging."""
    blocking: tuple[str, ...]
    """The ids of the vulnerabilities that block (or would block)."""
    would_block: bool
    """Whether the verdict blocks, whatever the mode."""
    verdict: str
    """The verdict in one line."""
    gate: GateResult | None = None
    """What the gate did to a blocked image (blocking mode only)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", MappingProxyType(dict(self.counts)))

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "image": self.image,
            "scanner": self.scanner,
            "mode": str(self.mode),
            "counts": dict(self.counts),
            "findings": self.findings,
            "vulnerabilities": self.vulnerabilities,
            "blocking": list(self.blocking),
            "would_block": self.would_block,
            "verdict": self.verdict,
        }
        if self.gate is not None:
            doc["gate"] = self.gate.to_json()
        return doc

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> ScanDetail:
        d = Doc(value, where)
        d.only(
            "image",
            "scanner",
            "mode",
            "counts",
            "findings",
            "vulnerabilities",
            "blocking",
            "would_block",
            "verdict",
            "gate",
        )
        try:
            mode = ScanMode(d.text("mode"))
        except ValueError:
            raise unreadable(f"{where}/mode", "not a scan mode") from None
        return cls(
            image=d.text("image"),
            scanner=d.text("scanner"),
            mode=mode,
            counts=d.mapping("counts", int),
            findings=d.integer("findings"),
            vulnerabilities=d.integer("vulnerabilities"),
            blocking=d.texts("blocking"),
            would_block=d.flag("would_block"),
            verdict=d.text("verdict"),
            gate=_gate_from_json(d.get("gate"), f"{where}/gate") if d.has("gate") else None,
        )


def _gate_from_json(value: object, where: str) -> GateResult:
    from acr_ci.scan.gate import GateResult

    d = Doc(value, where)
    d.only("image", "tags", "backup", "backup_tags", "deleted", "deleted_children")
    return GateResult(
        image=d.text("image"),
        tags=d.texts("tags"),
        backup=d.opt_text("backup"),
        backup_tags=d.texts("backup_tags"),
        deleted=d.flag("deleted"),
        deleted_children=d.texts("deleted_children"),
    )


@dataclass(frozen=True)
class GateFailure:
    """A blocked image whose gate (backup, delete) failed: the image stays blocked."""

    error: str
    """Why the gate failed."""

    def to_json(self) -> dict[str, Any]:
        return {"gate": {"error": self.error}}

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> GateFailure:
        d = Doc(value, where)
        d.only("gate")
        gate = Doc(d.get("gate"), f"{where}/gate")
        gate.only("error")
        return cls(error=gate.text("error"))


@dataclass(frozen=True)
class SyncCopy:
    """What a sync sent to one destination."""

    bytes_sent: int
    """Blob and manifest bytes written to the destination."""
    blobs_copied: int
    """Blobs streamed to the destination."""
    blobs_skipped: int
    """Blobs the destination already had."""
    referrers: tuple[str, ...] = ()
    """Digests of referrers copied along."""


_COPY_KEYS = ("bytes_sent", "blobs_copied", "blobs_skipped", "referrers")


@dataclass(frozen=True)
class SyncDetail:
    """One mirror: where to, each selected tag, and what was sent."""

    destination: str
    """The destination repository (``registry/namespace/repo``), or the rule's ``to``."""
    tags: tuple[TagSync, ...] | None = None
    """One entry per selected tag; ``None`` when the destination was not tried (skipped)."""
    copied: SyncCopy | None = None
    """What was sent; ``None`` when the sync stopped before it started (or was skipped)."""

    @classmethod
    def of(cls, result: SyncResult) -> SyncDetail:
        """The detail of one destination's result (only its destination when skipped)."""
        if result.status is Status.SKIPPED:
            return cls(result.destination)
        copied = SyncCopy(
            bytes_sent=result.bytes_sent,
            blobs_copied=result.blobs_copied,
            blobs_skipped=result.blobs_skipped,
            referrers=result.referrers,
        )
        return cls(result.destination, tags=result.tags, copied=copied)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"destination": self.destination}
        if self.tags is not None:
            doc["tags"] = [t.to_json() for t in self.tags]
        if self.copied is not None:
            doc.update(
                bytes_sent=self.copied.bytes_sent,
                blobs_copied=self.copied.blobs_copied,
                blobs_skipped=self.copied.blobs_skipped,
                referrers=list(self.copied.referrers),
            )
        return doc

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> SyncDetail:
        d = Doc(value, where)
        d.only("destination", "tags", *_COPY_KEYS)
        tags: tuple[TagSync, ...] | None = None
        if d.has("tags"):
            tags = tuple(_tag_sync(t) for t in d.objects("tags"))
        copied = None
        if any(d.has(k) for k in _COPY_KEYS):
            copied = SyncCopy(
                bytes_sent=d.integer("bytes_sent"),
                blobs_copied=d.integer("blobs_copied"),
                blobs_skipped=d.integer("blobs_skipped"),
                referrers=d.texts("referrers"),
            )
        return cls(d.text("destination"), tags=tags, copied=copied)


def _tag_sync(d: Doc) -> TagSync:
    d.only("tag", "digest", "status", "reason")
    return TagSync(d.text("tag"), d.text("digest"), d.status(), d.opt_text("reason"))


@dataclass(frozen=True)
class TriggerDetail:
    """One trigger: its redacted target and one delivery per selected tag."""

    target: str
    """``scheme://host[:port]`` of its URL."""
    http_status: int | None = None
    """The HTTP status of the last delivery, when an answer came."""
    deliveries: tuple[Delivery, ...] | None = None
    """One per selected tag; ``None`` when the trigger was not tried (skipped)."""

    @classmethod
    def of(cls, result: TriggerResult) -> TriggerDetail:
        """The detail of one trigger's result (only its target when skipped)."""
        if result.status is Status.SKIPPED:
            return cls(result.target)
        return cls(result.target, http_status=result.http_status, deliveries=result.deliveries)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"target": self.target}
        if self.deliveries is not None:
            doc.update(
                http_status=self.http_status,
                deliveries=[d.to_json() for d in self.deliveries],
            )
        return doc

    @classmethod
    def from_json(cls, value: object, where: str = "detail") -> TriggerDetail:
        d = Doc(value, where)
        if not d.has("deliveries"):
            d.only("target")
            return cls(d.text("target"))
        d.only("target", "http_status", "deliveries")
        return cls(
            d.text("target"),
            http_status=d.opt_integer("http_status"),
            deliveries=tuple(_delivery(e) for e in d.objects("deliveries")),
        )


def _delivery(d: Doc) -> Delivery:
    d.only("tag", "status", "http_status", "attempts", "signed", "reason", "duration")
    return Delivery(
        tag=d.text("tag"),
        status=d.status(),
        http_status=d.opt_integer("http_status"),
        attempts=d.integer("attempts"),
        signed=d.flag("signed"),
        reason=d.opt_text("reason"),
        duration=d.number("duration"),
    )


StepDetail: TypeAlias = (
    NoDetail
    | BuildDetail
    | MergeDetail
    | PushDetail
    | ScanDetail
    | GateFailure
    | AccelerateDetail
    | SignDetail
    | SyncDetail
    | TriggerDetail
)
"""The detail of one step: which one depends on the step (see :data:`DETAILS`)."""

DETAILS: Mapping[str, tuple[type[StepDetail], ...]] = MappingProxyType(
    {
        "build": (NoDetail, BuildDetail),
        "merge": (NoDetail, MergeDetail),
        "push": (NoDetail, PushDetail),
        "scan": (NoDetail, ScanDetail, GateFailure),
        "accelerate": (NoDetail, AccelerateDetail),
        "sign": (NoDetail, SignDetail),
        "attest": (NoDetail, SignDetail),
        "sync": (SyncDetail,),
        "trigger": (TriggerDetail,),
    }
)
"""The details each step may carry."""


def detail_from_json(step: str, value: object, where: str = "detail") -> StepDetail:
    """The typed detail of a ``step`` from its JSON (as :meth:`StepRecord.to_json` wrote it)."""
    d = Doc(value, where)
    if step == "sync":
        return SyncDetail.from_json(d.doc, where)
    if step == "trigger":
        return TriggerDetail.from_json(d.doc, where)
    if not d.doc:
        return NoDetail()
    if step == "build":
        return BuildDetail.from_json(d.doc, where)
    if step == "merge":
        return MergeDetail.from_json(d.doc, where)
    if step == "push":
        return PushDetail.from_json(d.doc, where)
    if step == "accelerate":
        return AccelerateDetail.from_json(d.doc, where)
    if step in ("sign", "attest"):
        return SignDetail.from_json(d.doc, where)
    if step == "scan":
        if not d.has("image"):
            return GateFailure.from_json(d.doc, where)
        return ScanDetail.from_json(d.doc, where)
    raise unreadable(where, f"unknown step {step!r}")
