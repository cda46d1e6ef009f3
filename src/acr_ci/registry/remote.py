"""A repository on a registry, speaking the OCI distribution API (v1.1).

Implements :class:`~acr_ci.registry.store.Store` on top of one
:class:`~acr_ci.registry.transport.Transport`, plus what only registries do:
cross-repository mounts and deletes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import requests

from acr_ci.errors import DeniedError, NotFoundError, RegistryError, UnsupportedError
from acr_ci.registry.media import (
    ACCEPT,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    Descriptor,
    Manifest,
    referrers_tag,
)
from acr_ci.registry.reference import valid_digest
from acr_ci.registry.store import CHUNK, BytesCallback, ChunkReader, PutManifestResult, SizedStream
from acr_ci.registry.transport import (
    MAX_PAGES,
    TransientError,
    Transport,
    json_body,
    parse_link_next,
    read_capped,
)

MANIFEST_CACHE_BYTES = 32 * 1024 * 1024
"""Manifests fetched in one command are kept by digest up to this many bytes (a digest
names its content: a second read of one, by the copy after a lookup, needs no request)."""

DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024
"""Blobs larger than this are uploaded in ``PATCH`` chunks of this size; smaller ones in one ``PUT``."""


@dataclass(frozen=True)
class MountResult:
    """What a cross-repository mount attempt gave."""

    mounted: bool
    """True when the registry linked the blob (201)."""
    upload_location: str | None = None
    """When not mounted: the upload session the registry opened instead (202)."""


class RegistryRepository:
    """One repository (``host/namespace/repo``) on a registry."""

    def __init__(
        self, transport: Transport, repository: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> None:
        self.transport = transport
        self.repository = repository
        self.chunk_size = chunk_size
        self._referrers_api: bool | None = None
        self._lock = threading.Lock()
        self._manifests: dict[str, Manifest] = {}
        self._cached_bytes = 0
        self._tags: set[str] | None = None
        """Every tag, as the last full :meth:`list_tags` saw them (plus tags put since)."""

    @property
    def host(self) -> str:
        return self.transport.host

    def describe(self) -> str:
        return f"{self.transport.host}/{self.repository}"

    @property
    def _pull(self) -> list[str]:
        return [f"repository:{self.repository}:pull"]

    @property
    def _push(self) -> list[str]:
        return [f"repository:{self.repository}:pull,push"]

    def _path(self, kind: str, ref: str = "") -> str:
        return (
            f"/v2/{self.repository}/{kind}/{quote(ref, safe=':')}"
            if ref
            else f"/v2/{self.repository}/{kind}/"
        )

    # -- manifests -------------------------------------------------------------

    def get_manifest(self, ref: str) -> Manifest:
        with self._lock:
            cached = self._manifests.get(ref)
        if cached is not None:
            return cached
        manifest = self._fetch_manifest(ref)
        self._remember(manifest)
        return manifest

    def _remember(self, manifest: Manifest) -> None:
        with self._lock:
            if manifest.digest in self._manifests:
                return
            while self._manifests and self._cached_bytes + manifest.size > MANIFEST_CACHE_BYTES:
                oldest = next(iter(self._manifests))
                self._cached_bytes -= self._manifests.pop(oldest).size
            if manifest.size <= MANIFEST_CACHE_BYTES:
                self._manifests[manifest.digest] = manifest
                self._cached_bytes += manifest.size

    def _fetch_manifest(self, ref: str) -> Manifest:
        what = f"manifest {self.describe()}{_sep(ref)}{ref}"
        attempt = 0
        started = time.monotonic()
        policy = self.transport.retry
        while True:
            attempt += 1
            r = self.transport.request(
                "GET",
                self._path("manifests", ref),
                scopes=self._pull,
                what=what,
                headers={"Accept": ACCEPT},
                stream=True,
            )
            try:
                try:
                    data = _read_limited(r, MAX_MANIFEST_BYTES, what)
                except TransientError:
                    if not self.transport.deadline_passed(r):
                        raise
                if self.transport.deadline_passed(r):  # a cut-off may look like the end
                    raise TransientError(
                        f"{what}: {self.host} did not send the manifest within the "
                        f"{self.transport.deadline:g} s deadline",
                        "the registry or the network is too slow; try again later",
                    )
                break
            except TransientError:
                wait = policy.delay(attempt)
                if not policy.allows(attempt, started, wait):
                    raise
                self.transport.sleep(wait)
            finally:
                r.close()
        expected = ref if valid_digest(ref) else None
        header = r.headers.get("Docker-Content-Digest")
        if expected is None and header and valid_digest(header):
            expected = header
        return Manifest.from_bytes(
            data, r.headers.get("Content-Type"), expected_digest=expected, where=what
        )

    def resolve(self, ref: str) -> Descriptor | None:
        what = f"manifest {self.describe()}{_sep(ref)}{ref}"
        r = self.transport.request(
            "HEAD",
            self._path("manifests", ref),
            scopes=self._pull,
            what=what,
            headers={"Accept": ACCEPT},
            allow=(404,),
        )
        if r.status_code == 404:
            return None
        digest = r.headers.get("Docker-Content-Digest")
        media_type = (r.headers.get("Content-Type") or "").split(";", 1)[0].strip()
        length = r.headers.get("Content-Length")
        if valid_digest(ref):
            digest = ref
        if not digest or not valid_digest(digest) or not media_type or not (length or "").isdigit():
            try:
                return self.get_manifest(ref).descriptor
            except NotFoundError:
                return None
        return Descriptor(media_type, digest, int(length or 0))

    def put_manifest(
        self, manifest: Manifest, ref: str, *, top_level: bool = False
    ) -> PutManifestResult:
        what = f"put manifest {self.describe()}{_sep(ref)}{ref}"
        r = self.transport.request(
            "PUT",
            self._path("manifests", ref),
            scopes=self._push,
            what=what,
            headers={"Content-Type": manifest.media_type},
            data=manifest.data,
            ok=(200, 201, 202),
        )
        if not valid_digest(ref):
            with self._lock:
                if self._tags is not None:
                    self._tags.add(ref)
        stored = r.headers.get("Docker-Content-Digest")
        if (
            stored
            and valid_digest(stored)
            and stored != manifest.digest
            and stored.startswith("sha256:")
            and manifest.digest.startswith("sha256:")
        ):
            raise RegistryError(
                f"{what}: the registry stored it as {stored}, not {manifest.digest}",
                "the registry rewrote the manifest; it cannot keep digests",
            )
        return PutManifestResult(manifest.digest, subject_indexed="OCI-Subject" in r.headers)

    def delete_manifest(self, digest: str) -> None:
        """Delete a manifest by digest (deleting by tag is not portable)."""
        with self._lock:
            gone = self._manifests.pop(digest, None)
            self._cached_bytes -= gone.size if gone is not None else 0
        what = f"delete {self.describe()}@{digest}"
        r = self.transport.request(
            "DELETE",
            self._path("manifests", digest),
            scopes=[f"repository:{self.repository}:delete"],
            what=what,
            ok=(200, 202),
            allow=(405, 400),
        )
        if r.status_code in (405, 400):
            raise DeniedError(
                f"registry {self.host} refuses to delete {self.repository}@{digest} (HTTP {r.status_code})",
                "deletes are disabled on this registry (distribution: storage.delete.enabled: true)",
            )

    def list_tags(self, page_size: int = 1000) -> list[str]:
        """Every tag, following ``Link: <…>; rel="next"`` pages of ``page_size`` (at most
        :data:`MAX_PAGES` pages, never the same page twice)."""
        what = f"tag list of {self.describe()}"
        url: str | None = self.transport.url(f"/v2/{self.repository}/tags/list?n={page_size}")
        tags: list[str] = []
        pages = _Pages(what)
        while url:
            pages.visit(url)
            r = self.transport.request("GET", url, scopes=self._pull, what=what)
            doc = json_body(r, what)
            page = doc.get("tags") if isinstance(doc, dict) else None
            tags.extend(str(t) for t in (page or []))
            url = parse_link_next(r.headers.get("Link"), r.url)
        with self._lock:
            self._tags = set(tags)
        return tags

    # -- referrers -------------------------------------------------------------

    def supports_referrers_api(self) -> bool:
        if self._referrers_api is None:
            self.referrers("sha256:" + "0" * 64)
        return bool(self._referrers_api)

    def referrers(self, digest: str) -> list[Descriptor]:
        what = f"referrers of {self.describe()}@{digest}"
        if self._referrers_api is not False:
            url: str | None = self.transport.url(self._path("referrers", digest))
            out: list[Descriptor] = []
            pages = _Pages(what)
            while url:
                pages.visit(url)
                r = self.transport.request(
                    "GET",
                    url,
                    scopes=self._pull,
                    what=what,
                    headers={"Accept": OCI_INDEX},
                    allow=(404, 400, 405),
                )
                ctype = (r.headers.get("Content-Type") or "").split(";", 1)[0].strip()
                if r.status_code != 200 or ctype != OCI_INDEX:
                    self._referrers_api = False
                    break
                self._referrers_api = True
                doc = json_body(r, what)
                for entry in (doc.get("manifests") or []) if isinstance(doc, dict) else []:
                    out.append(Descriptor.from_json(entry, where=what))
                url = parse_link_next(r.headers.get("Link"), r.url)
            else:
                return out
        fallback = referrers_tag(digest)
        with self._lock:
            if self._tags is not None and fallback not in self._tags:
                return []  # the tag list read in this command has no such tag: no request
        try:
            index = self.get_manifest(fallback)
        except NotFoundError:
            return []
        if not index.is_index:
            return []
        return index.children()

    # -- blobs -----------------------------------------------------------------

    def has_blob(self, desc: Descriptor) -> bool:
        what = f"blob {self.describe()}@{desc.digest}"
        r = self.transport.request(
            "HEAD", self._path("blobs", desc.digest), scopes=self._pull, what=what, allow=(404,)
        )
        if r.status_code == 404:
            return False
        length = r.headers.get("Content-Length")
        return not (length and length.isdigit() and int(length) != desc.size)

    @contextmanager
    def open_blob(self, desc: Descriptor) -> Iterator[Iterator[bytes]]:
        what = f"blob {self.describe()}@{desc.digest}"
        r = self.transport.request(
            "GET",
            self._path("blobs", desc.digest),
            scopes=self._pull,
            what=what,
            stream=True,
            headers={"Accept-Encoding": "identity"},
            size=desc.size,
        )
        try:
            yield r.iter_content(CHUNK)
        finally:
            r.close()

    def mount_blob(self, desc: Descriptor, from_repository: str) -> MountResult:
        """Ask the registry to link a blob from another repository on the same registry."""
        what = f"mount {desc.digest} from {from_repository} into {self.describe()}"
        r = self.transport.request(
            "POST",
            f"/v2/{self.repository}/blobs/uploads/",
            params={"mount": desc.digest, "from": from_repository},
            scopes=[*self._push, f"repository:{from_repository}:pull"],
            what=what,
            ok=(201, 202),
            headers={"Content-Length": "0"},
        )
        if r.status_code == 201:
            return MountResult(mounted=True)
        return MountResult(mounted=False, upload_location=r.headers.get("Location"))

    def start_upload(self) -> str:
        what = f"start upload to {self.describe()}"
        r = self.transport.request(
            "POST",
            f"/v2/{self.repository}/blobs/uploads/",
            scopes=self._push,
            what=what,
            ok=(202,),
            headers={"Content-Length": "0"},
        )
        location = r.headers.get("Location")
        if not location:
            raise UnsupportedError(f"{what}: the registry gave no upload Location")
        return location

    def put_blob(
        self,
        desc: Descriptor,
        chunks: Iterable[bytes],
        on_bytes: BytesCallback | None = None,
        *,
        location: str | None = None,
    ) -> None:
        """Upload a blob: one streamed ``PUT`` when small, ``PATCH`` chunks then ``PUT`` when large."""
        location = location or self.start_upload()
        what = f"upload {desc.digest} to {self.describe()}"
        if desc.size == 0:
            for _ in chunks:  # let a verifying wrapper check there is nothing
                pass
            self._close_upload(location, desc, what)
            return
        if desc.size <= self.chunk_size:
            self.transport.request(
                "PUT",
                location,
                params={"digest": desc.digest},
                scopes=self._push,
                what=what,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(desc.size),
                },
                data=SizedStream(chunks, desc.size),
                replayable=False,
                ok=(201, 204),
                size=desc.size,
            )
            return
        reader = ChunkReader(chunks)
        offset = 0
        while offset < desc.size:
            n = min(self.chunk_size, desc.size - offset)
            end = offset + n - 1
            r = self.transport.request(
                "PATCH",
                location,
                scopes=self._push,
                what=what,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(n),
                    "Content-Range": f"{offset}-{end}",
                },
                data=SizedStream(reader.take(n), n),
                replayable=False,
                ok=(202, 204),
                size=n,
            )
            got = _range_end(r.headers.get("Range"))
            if got is not None and got != end:
                raise RegistryError(
                    f"{what}: the registry has bytes 0-{got}, expected 0-{end} after a chunk",
                    "the upload was interrupted; run the command again",
                )
            location = r.headers.get("Location") or location
            offset = end + 1
        reader.drain()
        self._close_upload(location, desc, what)

    def _close_upload(self, location: str, desc: Descriptor, what: str) -> None:
        """End an upload session with an empty ``PUT ?digest=`` (the registry checks it)."""
        self.transport.request(
            "PUT",
            location,
            params={"digest": desc.digest},
            scopes=self._push,
            what=what,
            headers={"Content-Type": "application/octet-stream", "Content-Length": "0"},
            data=b"",
            ok=(201, 204),
        )


def _read_limited(r: requests.Response, limit: int, what: str) -> bytes:
    """The body, refusing more than ``limit`` bytes (a manifest is small; a huge one is hostile)."""
    return read_capped(r, limit, f"{what}: manifest")


class _Pages:
    """The pages a paginated walk has followed: none twice, at most :data:`MAX_PAGES`."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.seen: set[str] = set()

    def visit(self, url: str) -> None:
        if url in self.seen:
            raise RegistryError(
                f"{self.what}: the registry's next-page link points back to a page already "
                f"read (after {len(self.seen)} pages)",
                "the registry's pagination is broken; report it to its operator",
            )
        if len(self.seen) >= MAX_PAGES:
            raise RegistryError(
                f"{self.what}: more than {MAX_PAGES} pages; stopped",
                "the registry's pagination does not end; report it to its operator",
            )
        self.seen.add(url)


def _sep(ref: str) -> str:
    return "@" if valid_digest(ref) else ":"


def _range_end(header: str | None) -> int | None:
    if not header:
        return None
    _, _, tail = header.partition("-")
    return int(tail) if tail.strip().isdigit() else None
