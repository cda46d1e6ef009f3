"""The one interface both sides of a copy implement (a registry repository, an OCI layout).

Like regclient's scheme API: the copy engine only speaks :class:`Store`, so a
push is a copy from an :class:`~acr_ci.registry.layout.OciLayout` and a save is
a copy into one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from acr_ci.errors import DigestMismatchError
from acr_ci.jsonload import loads_bounded
from acr_ci.registry.media import Descriptor, Manifest, Platform, new_hasher

CHUNK = 1024 * 1024
"""Bytes per read/write while streaming blobs."""

BytesCallback = Callable[[int], None]


@dataclass(frozen=True)
class PutManifestResult:
    """What a store said when it stored a manifest."""

    digest: str
    """The digest the manifest is stored under."""
    subject_indexed: bool
    """True when the store indexed the manifest's ``subject`` itself (OCI 1.1 referrers API)."""


class Store(Protocol):
    """One repository of images: a registry repository or an OCI layout."""

    def describe(self) -> str:
        """A display name for messages (``host/repo`` or ``oci-layout:DIR``)."""
        ...

    def get_manifest(self, ref: str) -> Manifest:
        """The manifest for a tag or digest; :class:`NotFoundError` if there is none."""
        ...

    def resolve(self, ref: str) -> Descriptor | None:
        """A descriptor for a tag or digest, or None when it does not exist."""
        ...

    def put_manifest(
        self, manifest: Manifest, ref: str, *, top_level: bool = False
    ) -> PutManifestResult:
        """Store ``manifest`` under ``ref`` (its digest, or a tag). ``top_level`` marks an image
        (not a child of an index): a layout lists it in ``index.json`` even without a tag."""
        ...

    def has_blob(self, desc: Descriptor) -> bool:
        """True when the blob is present (and of the right size where the store says)."""
        ...

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[Iterator[bytes]]:
        """The blob's bytes, in chunks, unverified (the caller verifies)."""
        ...

    def put_blob(
        self, desc: Descriptor, chunks: Iterable[bytes], on_bytes: BytesCallback | None = None
    ) -> None:
        """Store a blob from ``chunks`` (which must hash to ``desc.digest``)."""
        ...

    def referrers(self, digest: str) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``digest`` (API or ``sha256-<hex>`` tag fallback)."""
        ...

    def supports_referrers_api(self) -> bool:
        """True when the store indexes subjects itself (no fallback tag needed)."""
        ...

    def list_tags(self) -> list[str]:
        """Every tag in the repository."""
        ...


def verified(
    chunks: Iterable[bytes],
    desc: Descriptor,
    where: str,
    on_bytes: BytesCallback | None = None,
    *,
    hash_content: bool = True,
) -> Iterator[bytes]:
    """Pass ``chunks`` through, hashing them; raise :class:`DigestMismatchError` at the end
    (before the consumer can commit) when size or digest is not ``desc``'s.

    ``hash_content=False`` checks only the size: for a destination that verifies the
    digest itself (a registry refuses a blob whose bytes do not match ``?digest=``)."""
    hasher = new_hasher(desc.digest) if hash_content else None
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > desc.size:
            raise DigestMismatchError(
                f"{where}: blob {desc.digest} is larger than its descriptor's {desc.size} bytes"
            )
        if hasher is not None:
            hasher.update(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk))
        yield chunk
    if seen != desc.size:
        raise DigestMismatchError(
            f"{where}: blob {desc.digest} has {seen} bytes, its descriptor says {desc.size}"
        )
    if hasher is None:
        return
    actual = f"{desc.digest.split(':', 1)[0]}:{hasher.hexdigest()}"
    if actual != desc.digest:
        raise DigestMismatchError(
            f"{where}: blob content hashes to {actual}, expected {desc.digest}"
        )


class SizedStream:
    """An iterable body with a known length, so HTTP sends ``Content-Length`` and streams it."""

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = chunks
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


class ChunkReader:
    """Cuts an iterator of chunks into pieces of at most ``n`` bytes, in order."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._rest = b""
        self._done = False

    def take(self, n: int) -> Iterator[bytes]:
        """The next ``n`` bytes (fewer at the end), without holding more than a chunk."""
        left = n
        while left > 0:
            if not self._rest:
                try:
                    self._rest = next(self._it)
                except StopIteration:
                    self._done = True
                    return
                if not self._rest:
                    continue
            piece, self._rest = self._rest[:left], self._rest[left:]
            left -= len(piece)
            yield piece

    def drain(self) -> None:
        """Run the iterator to its end (so a verifying wrapper checks the digest)."""
        if self._rest:
            raise DigestMismatchError("blob has more bytes than its descriptor says")
        for chunk in self._it:
            if chunk:
                raise DigestMismatchError("blob has more bytes than its descriptor says")
        self._done = True


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return "sha256:" + h.hexdigest()


MAX_CONFIG_BLOB = 1024 * 1024
"""The largest image config read (configs are a few KiB; a hostile one is refused)."""


def image_config(store: Store, m: Manifest) -> dict[str, Any] | None:
    """The image config of the image manifest ``m`` (read from ``store``, digest-checked,
    at most :data:`MAX_CONFIG_BLOB` bytes); None for an index, an artifact or a config
    that is not an image config."""
    if m.is_index:
        return None
    config = m.json.get("config")
    if not isinstance(config, dict):
        return None
    media_type = str(config.get("mediaType", ""))
    if "image.config" not in media_type and "container.image" not in media_type:
        return None
    blobs = m.blobs()
    if not blobs or blobs[0].size > MAX_CONFIG_BLOB:
        return None
    where = f"config of {m.digest}"
    with store.open_blob(blobs[0]) as chunks:
        # verified: at most the descriptor's size is read, and the digest is checked
        data = b"".join(verified(chunks, blobs[0], where))
    doc = loads_bounded(data, what=where, max_bytes=MAX_CONFIG_BLOB)
    return doc if isinstance(doc, dict) else None


def image_platform(store: Store, m: Manifest) -> Platform | None:
    """The platform the config of image manifest ``m`` names; None where it names none."""
    config = image_config(store, m)
    if config is None:
        return None
    p = Platform.from_json(config)
    return p if p.os and p.architecture else None
