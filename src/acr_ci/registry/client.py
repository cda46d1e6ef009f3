"""The registry client later stages call: resolve, inspect, copy, push, tags, delete.

One :class:`Client` holds one :class:`~acr_ci.registry.transport.Transport`
per registry host (connections, tokens and retries are shared by every
repository on that host) and makes :class:`~acr_ci.registry.store.Store` s
for registry repositories and OCI layouts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from acr_ci.errors import ImmutableTagError, UsageError
from acr_ci.hosts import host_without_port
from acr_ci.registry.auth import CredentialSource, DockerConfigCredentials
from acr_ci.registry.copy import BlobFlights, Copier, CopyResult
from acr_ci.registry.layout import DEFAULT_REF, OciLayout
from acr_ci.registry.limits import HostLimit, Limit, LimitedTransport
from acr_ci.registry.media import Descriptor, Manifest, Platform
from acr_ci.registry.progress import Progress
from acr_ci.registry.reference import LayoutReference, Location, Reference
from acr_ci.registry.remote import DEFAULT_CHUNK_SIZE, RegistryRepository
from acr_ci.registry.store import Store
from acr_ci.registry.transport import DEFAULT_DEADLINE, RetryPolicy, Transport

ENV_INSECURE = "ACR_CI_INSECURE_REGISTRIES"
DEFAULT_TAG = "latest"
MUTABLE_TAG = "latest"
"""With ``immutable_tags: true``, the one tag that may still move."""


def insecure_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """Hosts listed (comma-separated) in ``$ACR_CI_INSECURE_REGISTRIES``."""
    env = os.environ if env is None else env
    return [h.strip() for h in env.get(ENV_INSECURE, "").split(",") if h.strip()]


class Client:
    """An OCI distribution client with per-host transports.

    ``insecure`` lists ``host[:port]`` entries allowed plain HTTP / unverified
    TLS (a bare host matches every port); loopback hosts always are. ``jobs``
    bounds parallel blob transfers per copy. ``credentials`` defaults to the
    docker config files (see :mod:`acr_ci.registry.auth`). ``limits`` maps ``host[:port]``
    (a bare host matches every port) to its :class:`~acr_ci.registry.limits.Limit`; every
    other host gets ``default_limit`` (8 requests open at once): one limit per host, shared by
    every copy this client runs.
    """

    def __init__(
        self,
        *,
        credentials: CredentialSource | None = None,
        insecure: Iterable[str] = (),
        jobs: int = 4,
        limits: Mapping[str, Limit] | None = None,
        default_limit: Limit | None = None,
        retry: RetryPolicy | None = None,
        progress: Progress | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        timeout: float = 60.0,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        if jobs < 1:
            raise UsageError(
                f"--jobs {jobs} is not valid", "use a number of parallel transfers from 1 up"
            )
        self.credentials = credentials if credentials is not None else DockerConfigCredentials()
        self.insecure = frozenset(h.strip().lower() for h in insecure if h.strip())
        self.jobs = jobs
        self.limits = {h.strip().lower(): v for h, v in (limits or {}).items()}
        self.default_limit = default_limit or Limit()
        self.retry = retry or RetryPolicy()
        self.progress = progress
        self.chunk_size = chunk_size
        self.timeout = timeout
        self.deadline = deadline
        """Seconds one request may take in all (blob transfers get more, by size)."""
        self._transports: dict[str, Transport] = {}
        self._repositories: dict[tuple[str, str], RegistryRepository] = {}
        self._flights = BlobFlights()
        self._lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for t in self._transports.values():
                t.close()
            self._transports.clear()
            self._repositories.clear()

    # -- stores ----------------------------------------------------------------

    def is_insecure(self, host: str) -> bool:
        host = host.lower()
        return host in self.insecure or host_without_port(host) in self.insecure

    def limit_for(self, host: str) -> Limit:
        """The configured limit of ``host[:port]`` (``host:port`` wins over ``host``)."""
        host = host.lower()
        return (
            self.limits.get(host) or self.limits.get(host_without_port(host)) or self.default_limit
        )

    def transport(self, host: str) -> Transport:
        """The shared transport for ``host[:port]`` (with the host's request limit)."""
        with self._lock:
            t = self._transports.get(host)
            if t is None:
                limit = self.limit_for(host)
                t = LimitedTransport(
                    host,
                    limit=HostLimit(limit),
                    credentials=self.credentials,
                    insecure=self.is_insecure(host),
                    pool_size=self.jobs * 2 + 2,
                    retry=self.retry,
                    timeout=self.timeout,
                    deadline=self.deadline,
                    is_insecure=self.is_insecure,
                )
                self._transports[host] = t
            return t

    def repository(self, ref: Reference) -> RegistryRepository:
        """The registry repository ``ref`` names (one per repository, shared by every copy,
        so what it learns — whether the registry has the referrers API — is asked once)."""
        transport = self.transport(ref.api_host)
        key = (ref.api_host, ref.repository)
        with self._lock:
            repo = self._repositories.get(key)
            if repo is None or repo.transport is not transport:
                repo = RegistryRepository(transport, ref.repository, chunk_size=self.chunk_size)
                self._repositories[key] = repo
            return repo

    def store(self, location: Location, *, create: bool = False) -> Store:
        """A store for either side of a copy (``create`` makes a missing layout)."""
        if isinstance(location, LayoutReference):
            return OciLayout(Path(location.path), create=create)
        return self.repository(location)

    # -- reading ---------------------------------------------------------------

    def get_manifest(self, ref: Reference) -> Manifest:
        """The manifest ``ref`` names (digest wins over tag; no tag means ``latest``), byte-exact."""
        return self.repository(ref).get_manifest(_ref_of(ref))

    def resolve(self, ref: Reference) -> Descriptor:
        """The descriptor (digest, media type, size) of ``ref``; :class:`NotFoundError` if absent."""
        return self.get_manifest(ref).descriptor

    def tag_digest(self, ref: Reference) -> str | None:
        """The digest a tag points at now, or None when the tag does not exist."""
        desc = self.repository(ref).resolve(_ref_of(ref))
        return desc.digest if desc else None

    def list_tags(self, ref: Reference) -> list[str]:
        """Every tag of ``ref``'s repository (following ``Link`` pagination)."""
        return self.repository(ref).list_tags()

    def referrers(self, ref: Reference) -> list[Descriptor]:
        """Manifests that refer to ``ref`` (by digest; a tag is resolved first)."""
        repo = self.repository(ref)
        digest = ref.digest or self.resolve(ref).digest
        return repo.referrers(digest)

    # -- writing ---------------------------------------------------------------

    def delete(self, ref: Reference) -> None:
        """Delete the manifest ``ref`` pins by digest (:class:`DeniedError` if deletes are off)."""
        if not ref.digest:
            raise UsageError(f"cannot delete {ref}: name the image by digest (REPO@sha256:…)")
        self.repository(ref).delete_manifest(ref.digest)

    def copy(
        self,
        src: Location,
        dst: Location,
        tags: Sequence[str] | None = None,
        *,
        platforms: Sequence[Platform] | None = None,
        referrers: bool = False,
        probe: bool = True,
    ) -> CopyResult:
        """Copy an image between registries and/or layouts, byte-exact.

        ``tags`` default: the destination's tag, else the source's tag, else
        none (by digest only). ``platforms`` selects from an index (one match:
        that manifest; several: a new index over them). ``referrers`` brings
        signatures and SBOMs along. ``probe=False``: the caller knows no destination tag
        names the image (see :meth:`Copier.copy`).
        """
        if tags is None:
            tags = [dst.tag] if dst.tag else ([src.tag] if src.tag else [])
        src_store = self.store(src)
        dst_store = self.store(dst, create=True)
        copier = Copier(
            src_store,
            dst_store,
            jobs=self.jobs,
            progress=self.progress,
            retry=self.retry,
            flights=self._flights,
        )
        src_ref = _ref_of(src)
        result = copier.copy(
            src_ref, list(tags), platforms=platforms, referrers=referrers, probe=probe
        )
        if isinstance(dst, Reference) and dst.digest and dst.digest != result.digest:
            raise UsageError(
                f"destination {dst} pins digest {dst.digest} but the image copied is {result.digest}",
                "leave the digest off the destination",
            )
        return result

    def check_immutable(self, dst: Reference, tags: Sequence[str], digest: str) -> None:
        """Refuse to move immutable tags: :class:`ImmutableTagError` if any tag but
        ``latest`` already points at a digest other than ``digest``.

        Every tag is checked before the error is raised, so the message names all
        conflicts; a tag already at ``digest`` is fine (pushing again is a no-op).
        """
        conflicts: list[str] = []
        for tag in dict.fromkeys(tags):
            if tag == MUTABLE_TAG:
                continue
            current = self.tag_digest(dst.with_tag(tag))
            if current is not None and current != digest:
                conflicts.append(f"{tag!r} points at {current}")
        if conflicts:
            raise ImmutableTagError(
                f"{dst.name}: immutable tags would move to {digest}: " + "; ".join(conflicts),
                "tags are immutable (immutable_tags: true): build from a new ref, or delete "
                "the tag in the registry first",
            )

    def layout_digest(self, layout: str | os.PathLike[str] | LayoutReference) -> str:
        """The digest of the image an OCI layout holds (what :meth:`push_layout` pushes)."""
        src = layout if isinstance(layout, LayoutReference) else LayoutReference(str(layout))
        return self.store(src).get_manifest(_ref_of(src)).digest

    def push_layout(
        self,
        layout: str | os.PathLike[str] | LayoutReference,
        dst: Reference,
        tags: Sequence[str],
    ) -> CopyResult:
        """Push the image of an OCI layout to ``dst`` under ``tags`` (a copy from the layout).

        With immutable tags, the caller runs :meth:`check_immutable` for every image first
        (the chain does, before its first push), so that no tag moves if one would.
        """
        src = layout if isinstance(layout, LayoutReference) else LayoutReference(str(layout))
        return self.copy(src, dst, list(tags))

    def put_manifest(self, dst: Reference, manifest: Manifest, tags: Sequence[str]) -> int:
        """Put ``manifest`` (whose children and blobs ``dst``'s repository already holds)
        under each of ``tags`` (none: by digest); returns the bytes sent.

        Like :meth:`push_layout`, immutable tags are the caller's check."""
        repo = self.repository(dst)
        sent = 0
        for ref in list(dict.fromkeys(tags)) or [manifest.digest]:
            repo.put_manifest(manifest, ref, top_level=True)
            sent += manifest.size
            if self.progress is not None:
                self.progress.message(f"tagged {repo.describe()}:{ref} -> {manifest.digest}")
        return sent


def _ref_of(location: Location) -> str:
    if isinstance(location, LayoutReference):
        return location.tag or DEFAULT_REF
    return location.digest or location.tag or DEFAULT_TAG
