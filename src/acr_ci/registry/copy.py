"""Copy an image (and optionally its referrers) from one store to another.

Order of work, so nothing is ever half-done under a tag:

1. read the source manifest; select platforms if asked;
2. walk the tree: manifests already at the destination (by digest) are
   skipped with everything below them;
3. transfer the blobs the rest reference, in parallel (bounded by ``jobs``):
   ``HEAD`` first and skip what exists, mount within one registry, else stream
   source → destination with the digest verified while the bytes pass;
4. only when every blob is present: put child manifests by digest, the image
   by digest, then each tag;
5. with ``referrers``: the same for every manifest whose subject is one of the
   copied digests, recursively; a destination without the referrers API gets
   its ``sha256-<hex>`` fallback tag index updated; cosign's classic
   ``sha256-<hex>.sig``/``.att``/``.sbom`` tags of each copied digest go along too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests

from acr_ci.errors import DigestMismatchError, NotFoundError, RateLimitedError
from acr_ci.registry.media import (
    Descriptor,
    Manifest,
    Platform,
    make_index,
    referrers_tag,
)
from acr_ci.registry.progress import NoProgress, Progress
from acr_ci.registry.remote import RegistryRepository
from acr_ci.registry.store import Store, verified
from acr_ci.registry.transport import RetryPolicy, TransientError

COSIGN_TAG_SUFFIXES = ("sig", "att", "sbom")
"""cosign's classic tag scheme: ``sha256-<hex>.sig`` (signatures), ``.att`` (attestations),
``.sbom`` (``cosign attach sbom``); copied with ``referrers``."""


@dataclass(frozen=True)
class CopyResult:
    """What a copy did."""

    digest: str
    """The digest of the image now at the destination."""
    media_type: str
    """Its media type (index or image manifest)."""
    size: int
    """The size of its top manifest in bytes."""
    tags: tuple[str, ...] = ()
    """Tags the destination now has pointing at ``digest``."""
    bytes_sent: int = 0
    """Blob and manifest bytes written to the destination (retries included)."""
    blobs_copied: int = 0
    """Blobs streamed."""
    blobs_skipped: int = 0
    """Blobs the destination already had."""
    blobs_mounted: int = 0
    """Blobs linked from another repository of the same registry."""
    manifests_pushed: int = 0
    """Manifests (and tags) written."""
    manifests_skipped: int = 0
    """Manifests the destination already had."""
    referrers: tuple[str, ...] = ()
    """Digests of referrers copied along (signatures, SBOMs…)."""
    platforms: tuple[str, ...] = ()
    """Platforms of the copied image (``os/arch[/variant]``), if it says."""


@dataclass
class _Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    bytes_sent: int = 0
    copied: int = 0
    skipped: int = 0
    mounted: int = 0
    pushed: int = 0
    manifests_skipped: int = 0

    def add(self, **kw: int) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


class BlobFlights:
    """Blob transfers under way, shared by the copies of one client: a copy about to send a
    blob that another copy is sending to the same destination waits for that one (then
    finds the blob there) instead of sending it a second time."""

    LANDED_MAX = 100_000
    """Blobs remembered as present (a bound on memory, not a limit on copies)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[tuple[str, str], threading.Event] = {}
        self._landed: set[tuple[str, str]] = set()

    @contextmanager
    def flight(self, destination: str, digest: str) -> Iterator[bool]:
        """Own the transfer of ``digest`` to ``destination`` while inside; yields True when
        a copy of this client already put it there (or found it there): nothing to do."""
        key = (destination, digest)
        while True:
            with self._lock:
                there = key in self._landed
                other = None if there else self._flights.get(key)
                if not there and other is None:
                    mine = self._flights[key] = threading.Event()
                    break
            if there:
                yield True
                return
            assert other is not None
            other.wait()
        try:
            yield False
        finally:
            with self._lock:
                del self._flights[key]
            mine.set()

    def landed(self, destination: str, digest: str) -> None:
        """``digest`` is at ``destination`` now."""
        with self._lock:
            if len(self._landed) < self.LANDED_MAX:
                self._landed.add((destination, digest))


class Copier:
    """Copies images from ``src`` to ``dst``; one instance per (source, destination) pair."""

    def __init__(
        self,
        src: Store,
        dst: Store,
        *,
        jobs: int = 4,
        progress: Progress | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        flights: BlobFlights | None = None,
    ) -> None:
        self.src = src
        self.flights = flights or BlobFlights()
        self.dst = dst
        self.jobs = max(1, jobs)
        self.progress: Progress = progress or NoProgress()
        self.retry = retry or RetryPolicy()
        self.blob_attempts = max(1, self.retry.attempts)
        self._sleep = sleep
        self._stats = _Stats()
        self._done_blobs: set[str] = set()
        self._done_lock = threading.Lock()

    # -- public ----------------------------------------------------------------

    def copy(
        self,
        ref: str,
        tags: Sequence[str] = (),
        *,
        platforms: Sequence[Platform] | None = None,
        referrers: bool = False,
        probe: bool = True,
    ) -> CopyResult:
        """Copy the image ``ref`` (a tag or digest at the source) and tag it ``tags`` at the destination.

        ``probe=False``: the caller has seen that no tag at the destination names the image,
        so the request asking whether the destination has it is left out (were it there
        after all, its blobs are still found there and the manifest put again, unchanged)."""
        root = self.src.get_manifest(ref)
        if platforms and root.is_index:
            root = self._select(root, platforms)
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="acr-ci-copy") as pool:
            tree = self._copy_tree(pool, root, tags, walk=referrers, probe=probe)
            copied_refs: list[str] = []
            if referrers:
                self._copy_referrers(pool, [m.digest for m in tree], copied_refs, set())
        s = self._stats
        return CopyResult(
            digest=root.digest,
            media_type=root.media_type,
            size=root.size,
            tags=tuple(tags),
            bytes_sent=s.bytes_sent,
            blobs_copied=s.copied,
            blobs_skipped=s.skipped,
            blobs_mounted=s.mounted,
            manifests_pushed=s.pushed,
            manifests_skipped=s.manifests_skipped,
            referrers=tuple(copied_refs),
            platforms=tuple(_platforms_of(root)),
        )

    # -- tree ------------------------------------------------------------------

    def _select(self, index: Manifest, wanted: Sequence[Platform]) -> Manifest:
        children = index.children()
        chosen = [c for c in children if c.platform and any(c.platform.matches(w) for w in wanted)]
        if not chosen:
            have = ", ".join(str(c.platform) for c in children if c.platform) or "none"
            raise NotFoundError(
                f"{self.src.describe()}@{index.digest} has no manifest for "
                f"{', '.join(str(w) for w in wanted)}",
                f"platforms in this index: {have}",
            )
        if len(chosen) == 1:
            return self.src.get_manifest(chosen[0].digest)
        return make_index(chosen, index.media_type)

    def _copy_tree(
        self,
        pool: ThreadPoolExecutor,
        root: Manifest,
        tags: Sequence[str],
        *,
        walk: bool = False,
        probe: bool = True,
    ) -> list[Manifest]:
        """Copy ``root`` and everything below; return the manifests of the tree (root first).

        ``walk``: also read the children of a tree the destination already has (to find
        their referrers); otherwise such a tree costs one ``HEAD``."""
        all_manifests: list[Manifest] = [root]
        to_put: list[list[Manifest]] = []
        blobs: dict[str, Descriptor] = {}
        root_new = False  # the destination lacked root: no tag there can point at it yet
        if probe and self.dst.resolve(root.digest) is not None:
            self._stats.add(manifests_skipped=1)
            # Still learn the children for referrers, without copying anything.
            level = [root] if root.is_index and walk else []
            while level:
                fetched = list(
                    pool.map(
                        lambda d: self.src.get_manifest(d.digest),
                        [c for m in level for c in m.children()],
                    )
                )
                all_manifests.extend(fetched)
                level = [m for m in fetched if m.is_index]
        else:
            root_new = True
            level = [root]
            to_put.append([root])
            while level:
                for m in level:
                    for b in m.blobs():
                        blobs.setdefault(b.digest, b)
                children = [c for m in level for c in m.children()]
                if not children:
                    break
                results = list(pool.map(self._fetch_child, children))
                all_manifests.extend(m for m, _ in results)
                missing = [m for m, there in results if not there]
                self._stats.add(manifests_skipped=sum(1 for _, there in results if there))
                # An index already at the destination implies its children are there too.
                to_put.append(missing)
                level = missing
            self._transfer_blobs(pool, list(blobs.values()))
            for group in reversed(to_put):
                seen: set[str] = set()
                for m in group:
                    if m.digest in seen or (m is root and tags):
                        continue  # a tagged root is put under its tags below (that stores it)
                    seen.add(m.digest)
                    self._put(m, m.digest, top_level=m is root and not tags)
        for tag in tags:
            if not root_new:  # a tag may already point at it: then there is nothing to do
                current = self.dst.resolve(tag)
                if current is not None and current.digest == root.digest:
                    continue
            self._put(root, tag)
            self.progress.message(f"tagged {self.dst.describe()}:{tag} -> {root.digest}")
        return all_manifests

    def _fetch_child(self, desc: Descriptor) -> tuple[Manifest, bool]:
        there = self.dst.resolve(desc.digest) is not None
        return self.src.get_manifest(desc.digest), there

    def _put(self, m: Manifest, ref: str, *, top_level: bool = False) -> bool:
        result = self.dst.put_manifest(m, ref, top_level=top_level)
        self._stats.add(pushed=1, bytes_sent=m.size)
        return result.subject_indexed

    # -- blobs -----------------------------------------------------------------

    def _transfer_blobs(self, pool: ThreadPoolExecutor, blobs: list[Descriptor]) -> None:
        futures: list[Future[None]] = [pool.submit(self._transfer_blob, b) for b in blobs]
        _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in pending:
            f.cancel()
        wait(pending)
        for f in futures:
            if f.done() and not f.cancelled() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]

    def _transfer_blob(self, desc: Descriptor) -> None:
        with self._done_lock:
            if desc.digest in self._done_blobs:
                return
        where = self.dst.describe()
        with self.flights.flight(where, desc.digest) as there:
            if there:  # another copy of this command put it there (or found it)
                self._stats.add(skipped=1)
                self.progress.started(desc.digest, desc.size)
                self.progress.finished(desc.digest, "exists")
                self._mark(desc)
                return
            self._transfer_new_blob(desc)
            self.flights.landed(where, desc.digest)

    def _transfer_new_blob(self, desc: Descriptor) -> None:
        if self.dst.has_blob(desc):
            self._stats.add(skipped=1)
            self.progress.started(desc.digest, desc.size)
            self.progress.finished(desc.digest, "exists")
            self._mark(desc)
            return
        location: str | None = None
        src, dst = self.src, self.dst
        if (
            isinstance(src, RegistryRepository)
            and isinstance(dst, RegistryRepository)
            and src.transport is dst.transport
            and src.repository != dst.repository
        ):
            mount = dst.mount_blob(desc, src.repository)
            if mount.mounted:
                self._stats.add(mounted=1)
                self.progress.started(desc.digest, desc.size)
                self.progress.finished(desc.digest, "mounted")
                self._mark(desc)
                return
            location = mount.upload_location
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            self.progress.started(desc.digest, desc.size)
            try:
                self._stream(desc, location)
                break
            except (
                TransientError,
                RateLimitedError,
                DigestMismatchError,
                requests.RequestException,
            ) as e:
                location = None
                retry_after = (
                    e.retry_after if isinstance(e, TransientError | RateLimitedError) else None
                )
                wait = self.retry.delay(attempt, retry_after)
                out_of_time = time.monotonic() - started + wait > self.retry.budget
                if attempt >= self.blob_attempts or out_of_time:
                    self.progress.finished(desc.digest, "failed")
                    if isinstance(e, requests.RequestException):
                        raise TransientError(
                            f"copying blob {desc.digest} from {src.describe()} failed "
                            f"({type(e).__name__}) after {attempt} tries",
                            "check the network and both registries; running again resumes",
                        ) from None
                    raise
                self._sleep(wait)
        self._stats.add(copied=1)
        self.progress.finished(desc.digest, "copied")
        self._mark(desc)

    def _stream(self, desc: Descriptor, location: str | None) -> None:
        def on_bytes(n: int) -> None:
            self._stats.add(bytes_sent=n)
            self.progress.advanced(desc.digest, n)

        with self.src.open_blob(desc) as chunks:
            if isinstance(self.dst, RegistryRepository):
                # The registry checks the digest itself (PUT ?digest=): count, don't hash.
                body = verified(chunks, desc, self.src.describe(), on_bytes, hash_content=False)
                self.dst.put_blob(desc, body, location=location)
            else:
                self.dst.put_blob(desc, verified(chunks, desc, self.src.describe(), on_bytes))

    def _mark(self, desc: Descriptor) -> None:
        with self._done_lock:
            self._done_blobs.add(desc.digest)

    # -- referrers -------------------------------------------------------------

    def _copy_referrers(
        self, pool: ThreadPoolExecutor, subjects: list[str], copied: list[str], visited: set[str]
    ) -> None:
        for subject in subjects:
            if subject in visited:
                continue
            visited.add(subject)
            found = self.src.referrers(subject)
            need_fallback: list[Descriptor] = []
            for desc in found:
                try:
                    manifest = self.src.get_manifest(desc.digest)
                except NotFoundError:  # a dangling entry in a fallback tag index (deleted artifact)
                    self.progress.message(f"referrer {desc.digest} of {subject} is gone; skipped")
                    continue
                tree = self._copy_tree(pool, manifest, (), walk=True)
                if manifest.digest not in copied:
                    copied.append(manifest.digest)
                if not self.dst.supports_referrers_api():
                    need_fallback.append(desc)
                self._copy_referrers(pool, [m.digest for m in tree], copied, visited)
            if need_fallback and not self.dst.supports_referrers_api():
                self._update_fallback_tag(subject, need_fallback)
            self._copy_cosign_tags(pool, subject, copied)

    def _copy_cosign_tags(self, pool: ThreadPoolExecutor, subject: str, copied: list[str]) -> None:
        """cosign's classic artifacts of ``subject`` (``sha256-<hex>.sig``/``.att``/``.sbom``
        tags, not referrers in the OCI sense) go along under the same tags; the source's
        manifest replaces the destination's, as ``cosign copy`` does."""
        for suffix in COSIGN_TAG_SUFFIXES:
            tag = f"{referrers_tag(subject)}.{suffix}"
            if self.src.resolve(tag) is None:
                continue
            manifest = self.src.get_manifest(tag)
            self._copy_tree(pool, manifest, (tag,))
            if manifest.digest not in copied:
                copied.append(manifest.digest)

    def _update_fallback_tag(self, subject: str, descs: list[Descriptor]) -> None:
        tag = referrers_tag(subject)
        try:
            current = self.dst.get_manifest(tag)
            existing = current.children() if current.is_index else []
        except NotFoundError:
            existing = []
        have = {d.digest for d in existing}
        missing = [d for d in descs if d.digest not in have]
        if not missing:
            return
        index = make_index([*existing, *missing])
        self._put(index, tag)


def _platforms_of(m: Manifest) -> list[str]:
    return [str(c.platform) for c in m.children() if c.platform is not None]
