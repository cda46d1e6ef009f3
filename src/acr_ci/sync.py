"""Mirror sync: copy pushed images to the ``sync:`` destinations, by digest.

For each rule the destination repository is

* ``level: namespace`` — ``to`` is a registry/namespace and the source repository's name
  (its last path component) is kept: ``to: mirror.example.com/team`` + ``reg/ns/app`` →
  ``mirror.example.com/team/app``;
* ``level: repository`` — ``to`` is the destination repository itself.

A rule's ``tags`` regex must match the WHOLE tag; without it every tag is mirrored. Each
selected tag is copied with :meth:`acr_ci.registry.Client.copy` from the source *by
digest*: every platform, byte-exact manifests (so the digest is the same at the mirror),
referrers (signatures, SBOMs) included, blobs the mirror already has skipped. Tags that
point at the same digest go in one copy.

Destinations run concurrently (at most :data:`MAX_PARALLEL` at once), and so do the
digests of one destination (at most :data:`DIGEST_PARALLEL`), all within the client's
per-host request limit (:mod:`acr_ci.registry.limits`); each destination with the
credentials the docker config holds for its host (the client looks them up per host). One
failing destination never stops the others; each gets a :class:`SyncResult`:
``succeeded``, ``failed`` with a one-line reason, or ``skipped`` when no tag matched.

``backfill`` mirrors every existing tag of a repository that the rules select, skipping
tags the mirror already has at the same digest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from acr_ci.config.model import Config, SyncLevel, SyncRule
from acr_ci.errors import EXPECTED_ERRORS, AcrError, NotFoundError, UnauthorizedError, UsageError
from acr_ci.errors import reason as error_reason
from acr_ci.models import Status

if TYPE_CHECKING:
    from acr_ci.registry.client import Client
    from acr_ci.registry.copy import CopyResult
    from acr_ci.registry.reference import Reference

log = logging.getLogger(__name__)

MAX_PARALLEL = 4
"""Destinations synced at the same time."""
LOOKUP_PARALLEL = 8
"""Tag lookups (HEAD requests) at the same time, for backfill and ``IMAGE@DIGEST``."""
DIGEST_PARALLEL = 8
"""Digests copied to one destination at the same time (each copy's blob transfers are
bounded by the client's ``jobs``; every request by the per-host limit of the client)."""


@dataclass(frozen=True)
class TagSync:
    """One tag at one destination."""

    tag: str
    """The tag."""
    digest: str
    """The digest it points at in the source (and, when synced, at the destination)."""
    status: Status
    """``succeeded`` (copied), ``skipped`` (already there with this digest) or ``failed``."""
    reason: str | None = None
    """Why it failed or was skipped."""

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "digest": self.digest,
            "status": str(self.status),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class SyncResult:
    """What happened at one destination."""

    name: str
    """The sync rule's name."""
    destination: str
    """The destination repository (``registry/namespace/repo``), or ``to`` when it could not
    be worked out."""
    status: Status
    """``succeeded``, ``failed`` or ``skipped`` (no tag selected)."""
    started: datetime
    """When work on this destination started (UTC)."""
    finished: datetime
    """When it ended (UTC)."""
    tags: tuple[TagSync, ...] = ()
    """One entry per selected tag."""
    reason: str | None = None
    """One line: why it failed or was skipped."""
    bytes_sent: int = 0
    """Blob and manifest bytes written to the destination."""
    blobs_copied: int = 0
    """Blobs streamed to the destination."""
    blobs_skipped: int = 0
    """Blobs the destination already had."""
    referrers: tuple[str, ...] = ()
    """Digests of referrers copied along."""

    @property
    def duration(self) -> float:
        return max(0.0, (self.finished - self.started).total_seconds())


# -- pure helpers -------------------------------------------------------------------------


def destination(rule: SyncRule, source: Reference) -> Reference:
    """The repository ``rule`` mirrors ``source`` to (no tag, no digest)."""
    from acr_ci.registry.reference import Reference

    to = rule.to.strip().rstrip("/")
    if rule.level is SyncLevel.NAMESPACE:
        name = source.repository.rsplit("/", 1)[-1]
        text = f"{to}/{name}"
    else:
        text = to
    ref = Reference.parse(text, what=f"sync {rule.name!r} destination")
    if ref.tag or ref.digest:
        raise UsageError(
            f"sync {rule.name!r}: the destination {rule.to!r} names a tag or digest",
            "write `to:` as registry/namespace (level: namespace) or registry/namespace/repo "
            "(level: repository), without :tag",
        )
    return ref


def selects(rule: SyncRule, tag: str) -> bool:
    """Whether ``rule`` mirrors ``tag`` (its regex must match the whole tag)."""
    return rule.tags is None or rule.tags.fullmatch(tag) is not None


def insecure_hosts(config: Config) -> list[str]:
    """Hosts to allow plain HTTP for: the config's ``insecure_registries`` and the hosts of
    sync destinations marked ``insecure: true``."""
    from acr_ci.registry.reference import Reference

    hosts = list(config.insecure_registries)
    for rule in config.sync:
        if rule.insecure:
            try:
                hosts.append(
                    Reference.parse(rule.to.rstrip("/") + "/x", what="sync target").registry
                )
            except UsageError:
                continue
    return hosts


# -- syncing ---------------------------------------------------------------------------


def _sync_one(
    client: Client,
    rule: SyncRule,
    source: Reference,
    tag_digests: Mapping[str, str],
    *,
    skip_present: bool,
    selected_as: Mapping[str, str],
) -> SyncResult:
    started = datetime.now(UTC)
    wanted = [t for t in tag_digests if selects(rule, selected_as.get(t, t))]
    if not wanted:
        pattern = rule.tags.pattern if rule.tags is not None else "(all)"
        return SyncResult(
            name=rule.name,
            destination=rule.to,
            status=Status.SKIPPED,
            started=started,
            finished=datetime.now(UTC),
            reason=f"no tag matches {pattern!r}" if tag_digests else "no tag to sync",
        )
    try:
        dst = destination(rule, source)
    except UsageError as e:
        return SyncResult(
            name=rule.name,
            destination=rule.to,
            status=Status.FAILED,
            started=started,
            finished=datetime.now(UTC),
            reason=e.message,
            tags=tuple(TagSync(t, tag_digests[t], Status.FAILED, e.message) for t in wanted),
        )
    done: dict[str, TagSync] = {}
    groups: dict[str, list[str]] = {}
    failure: str | None = None
    try:
        present = _present(client, dst, wanted) if skip_present else {}
        for tag in wanted:
            digest = tag_digests[tag]
            if present.get(tag) == digest:
                done[tag] = TagSync(tag, digest, Status.SKIPPED, "already present with this digest")
                continue
            groups.setdefault(digest, []).append(tag)
    except EXPECTED_ERRORS as e:  # the destination cannot even be asked: fail it whole
        failure = error_reason(e)
        groups = {}
        for tag in wanted:
            done.setdefault(tag, TagSync(tag, tag_digests[tag], Status.FAILED, failure))
    lock = threading.Lock()

    def copy_group(digest: str, tags: list[str]) -> CopyResult | str:
        """One digest's copy: its result, or why it failed (a "not tried" when an
        earlier copy found the destination unreachable)."""
        nonlocal failure
        with lock:
            if failure is not None:
                return f"not tried: {failure}"
        try:
            # A backfill has read the destination's tags: a digest none of them names is
            # copied without first asking whether the destination has it.
            unseen = skip_present and all(tag in present and present[tag] is None for tag in tags)
            return client.copy(
                source.with_tag(None).with_digest(digest),
                dst,
                tags,
                referrers=True,
                probe=not unseen,
            )
        except EXPECTED_ERRORS as e:
            reason = error_reason(e)
            log.info("sync %s: %s <- %s failed: %s", rule.name, dst, digest, reason)
            # unreachable or refusing destinations fail the same way for every digest
            from acr_ci.registry.transport import TransientError

            if not isinstance(e, AcrError) or isinstance(e, TransientError | UnauthorizedError):
                with lock:
                    failure = failure or reason
            return reason

    items = list(groups.items())
    if len(items) > 1:
        with ThreadPoolExecutor(
            max_workers=min(DIGEST_PARALLEL, len(items)), thread_name_prefix="acr-ci-sync-copy"
        ) as pool:
            outcomes = list(pool.map(lambda item: copy_group(*item), items))
    else:
        outcomes = [copy_group(*item) for item in items]
    bytes_sent = copied = skipped = 0
    referrers: list[str] = []
    for (digest, tags), outcome in zip(items, outcomes, strict=True):
        if isinstance(outcome, str):
            for tag in tags:
                done[tag] = TagSync(tag, digest, Status.FAILED, outcome)
            continue
        bytes_sent += outcome.bytes_sent
        copied += outcome.blobs_copied
        skipped += outcome.blobs_skipped
        referrers.extend(r for r in outcome.referrers if r not in referrers)
        for tag in tags:
            done[tag] = TagSync(tag, outcome.digest, Status.SUCCEEDED)
        log.info("sync %s: %s:%s -> %s", rule.name, dst, ",".join(tags), outcome.digest)
    entries = tuple(done[t] for t in wanted)
    failed = [t for t in entries if t.status is Status.FAILED]
    return SyncResult(
        name=rule.name,
        destination=str(dst),
        status=Status.FAILED if failed else Status.SUCCEEDED,
        started=started,
        finished=datetime.now(UTC),
        tags=entries,
        reason=(
            f"{len(failed)} of {len(entries)} tags failed: {failed[0].reason}" if failed else None
        ),
        bytes_sent=bytes_sent,
        blobs_copied=copied,
        blobs_skipped=skipped,
        referrers=tuple(referrers),
    )


def sync_tags(
    client: Client,
    rules: Sequence[SyncRule],
    source: Reference,
    tag_digests: Mapping[str, str],
    *,
    skip_present: bool = False,
    selected_as: Mapping[str, str] | None = None,
) -> tuple[SyncResult, ...]:
    """Mirror ``tag → digest`` of repository ``source`` to every rule's destination
    (concurrently); one result per rule, in config order. Never raises for a failing
    destination. ``selected_as`` maps a tag to the tag whose selection by a rule decides
    (a twin's ``T_accelerated`` goes where ``T`` goes)."""
    if not rules:
        return ()
    source = source.with_tag(None).with_digest(None)

    def one(rule: SyncRule) -> SyncResult:
        try:
            return _sync_one(
                client,
                rule,
                source,
                tag_digests,
                skip_present=skip_present,
                selected_as=selected_as or {},
            )
        except EXPECTED_ERRORS as e:  # _sync_one catches what it can; this is a last guard
            now = datetime.now(UTC)
            return SyncResult(rule.name, rule.to, Status.FAILED, now, now, reason=error_reason(e))

    with ThreadPoolExecutor(
        max_workers=min(MAX_PARALLEL, len(rules)), thread_name_prefix="acr-ci-sync"
    ) as pool:
        return tuple(pool.map(one, rules))


def sync_image(
    client: Client,
    rules: Sequence[SyncRule],
    source: Reference,
    digest: str,
    tags: Iterable[str],
    *,
    twin: tuple[str, str] | None = None,
) -> tuple[SyncResult, ...]:
    """Mirror one image (``source`` repository at ``digest``, known under ``tags``).

    ``twin`` (digest, suffix): the image's accelerated twin, under each tag plus suffix; a
    rule that selects tag ``T`` carries ``T`` + suffix too."""
    tags = list(tags)
    tag_digests = {t: digest for t in tags}
    selected_as: dict[str, str] = {}
    if twin is not None:
        twin_digest, suffix = twin
        for t in tags:
            tag_digests.setdefault(t + suffix, twin_digest)
            selected_as[t + suffix] = t
    return sync_tags(client, rules, source, tag_digests, selected_as=selected_as)


def _present(client: Client, dst: Reference, tags: Sequence[str]) -> dict[str, str | None]:
    """``tag → digest`` at the destination (``None``: no such tag); the first error raises.

    The destination's tag list is read first and only the tags it lists are asked for,
    concurrently (a new mirror costs one request, not one per tag); when the registry
    refuses the list, every tag is asked for."""
    from acr_ci.errors import DeniedError, NotFoundError, UnsupportedError

    def one(tag: str) -> tuple[str, str | None]:
        return tag, client.tag_digest(dst.with_tag(tag))

    found: dict[str, str | None] = {}
    if len(tags) > 1:
        try:
            listed = set(client.list_tags(dst))
        except NotFoundError:  # no such repository yet: no tag is there
            listed = set()
        except (DeniedError, UnauthorizedError, UnsupportedError):  # may still HEAD each tag
            listed = set(tags)
        found = {t: None for t in tags if t not in listed}
        tags = [t for t in tags if t in listed]
    if len(tags) < 2:
        return {**found, **dict(one(t) for t in tags)}
    with ThreadPoolExecutor(max_workers=min(LOOKUP_PARALLEL, len(tags))) as pool:
        return {**found, **dict(pool.map(one, tags))}


def _lookup(client: Client, repo: Reference, tags: Sequence[str]) -> dict[str, str]:
    """``tag → digest`` for ``tags`` in ``repo`` (tags that vanished meanwhile are left out).

    Each tag's manifest is read whole (a GET, where a HEAD would do for the digest): the
    copy that follows needs it, and the client keeps what it read by digest."""

    def one(tag: str) -> tuple[str, str | None]:
        try:
            return tag, client.get_manifest(repo.with_tag(tag)).digest
        except NotFoundError:
            return tag, None

    if not tags:
        return {}
    with ThreadPoolExecutor(max_workers=min(LOOKUP_PARALLEL, len(tags))) as pool:
        pairs = list(pool.map(one, tags))
    return {t: d for t, d in pairs if d}


def resolve_source(client: Client, text: str) -> tuple[Reference, dict[str, str]]:
    """``IMAGE:TAG``, ``IMAGE:TAG@DIGEST`` or ``IMAGE@DIGEST`` → (repository, ``tag → digest``).

    ``IMAGE:TAG`` asks the registry for the digest; ``IMAGE@DIGEST`` finds the tags that
    point at it. Raises :class:`UsageError` for a bare ``IMAGE``.
    """
    from acr_ci.errors import NotFoundError
    from acr_ci.registry.reference import Reference

    ref = Reference.parse(text, what="image to sync")
    repo = ref.with_tag(None).with_digest(None)
    if ref.tag and ref.digest:
        return repo, {ref.tag: ref.digest}
    if ref.tag:
        digest = client.tag_digest(ref)
        if digest is None:
            raise NotFoundError(f"{ref} does not exist", "push it first, or check the tag")
        return repo, {ref.tag: digest}
    if ref.digest:
        found = _lookup(client, repo, client.list_tags(repo))
        return repo, {t: d for t, d in found.items() if d == ref.digest}
    raise UsageError(
        f"{text!r} names no tag or digest",
        "write IMAGE:TAG or IMAGE@sha256:…; to mirror every tag use acr-ci sync --backfill REPO",
    )


def backfill(
    client: Client, rules: Sequence[SyncRule], repository: str, *, config: Config | None = None
) -> tuple[SyncResult, ...]:
    """Mirror every existing tag of ``repository`` that the rules select, skipping tags the
    destination already has at the same digest. With the config's ``accelerate:``, a tag
    ``T`` + suffix goes where ``T`` goes."""
    from acr_ci.registry.reference import Reference

    repo = Reference.parse(repository, what="repository to backfill")
    if repo.tag or repo.digest:
        raise UsageError(
            f"--backfill takes a repository, not an image: {repository!r}",
            "drop the :tag / @digest (every tag the sync rules select is mirrored)",
        )
    tags = client.list_tags(repo)
    selected_as: dict[str, str] = {}
    if config is not None and config.accelerate is not None:
        suffix, present = config.accelerate.suffix, set(tags)
        selected_as = {
            t: t[: -len(suffix)]
            for t in tags
            if t.endswith(suffix) and t[: -len(suffix)] in present
        }
    wanted = sorted({t for t in tags if any(selects(r, selected_as.get(t, t)) for r in rules)})
    return sync_tags(
        client,
        rules,
        repo,
        _lookup(client, repo, wanted),
        skip_present=True,
        selected_as=selected_as,
    )


def mirror(
    client: Client, config: Config, image: str, *, all_tags: bool = False
) -> tuple[SyncResult, ...]:
    """``acr-ci sync``: one image (``IMAGE:TAG``, ``IMAGE:TAG@DIGEST``, ``IMAGE@DIGEST``) or,
    with ``all_tags`` (``--backfill``), every selected tag of a repository, to the config's destinations."""
    if not config.sync:
        raise UsageError(
            f"{config.path} has no sync: rules: nothing to mirror to",
            "add a sync: section (name, to, level, tags) to the config",
        )
    if all_tags:
        return backfill(client, config.sync, image, config=config)
    repo, tag_digests = resolve_source(client, image)
    selected_as: dict[str, str] = {}
    if config.accelerate is not None:  # each tag's accelerated twin goes where the tag goes
        suffix = config.accelerate.suffix
        for tag in list(tag_digests):
            if len(tag + suffix) <= 128 and (
                twin := client.tag_digest(repo.with_tag(tag + suffix))
            ):
                tag_digests.setdefault(tag + suffix, twin)
                selected_as[tag + suffix] = tag
    return sync_tags(client, config.sync, repo, tag_digests, selected_as=selected_as)


__all__ = [
    "MAX_PARALLEL",
    "SyncResult",
    "TagSync",
    "backfill",
    "destination",
    "insecure_hosts",
    "mirror",
    "resolve_source",
    "selects",
    "sync_image",
    "sync_tags",
]
