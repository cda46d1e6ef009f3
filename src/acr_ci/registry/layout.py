"""An OCI image layout on disk (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``).

Implements :class:`~acr_ci.registry.store.Store`, so builders' outputs can be
pushed (a copy from a layout) and images saved (a copy into one).

Which image ``oci-layout:DIR`` means without a tag: the only entry of
``index.json``; or, when every entry is a platform-specific manifest and none
is named, ``index.json`` itself taken as the image index (builders write a
multi-platform image that way). Anything else needs ``oci-layout:DIR:TAG``.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from acr_ci.errors import NotFoundError, UnsupportedError, UsageError
from acr_ci.fileio import read_bounded
from acr_ci.jsonload import loads_bounded
from acr_ci.registry.media import (
    ANNOTATION_REF_NAME,
    IMAGE_TYPES,
    INDEX_TYPES,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    Descriptor,
    Manifest,
    referrers_tag,
)
from acr_ci.registry.reference import valid_digest
from acr_ci.registry.store import CHUNK, BytesCallback, PutManifestResult, verified

LAYOUT_FILE = "oci-layout"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
DEFAULT_REF = ""
"""The ``ref`` that means "the layout's image" when no tag was given."""


class OciLayout:
    """An OCI image layout directory."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if create:
            self._init()
        elif not (self.path / "index.json").is_file():
            raise UsageError(
                f"oci-layout:{self.path} is not an OCI image layout (no index.json)",
                "point at the directory a builder wrote with an oci: / type=oci output",
            )

    def describe(self) -> str:
        return f"oci-layout:{self.path}"

    def _init(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            marker = self.path / LAYOUT_FILE
            if not marker.exists():
                marker.write_text(json.dumps(LAYOUT_VERSION))
            if not (self.path / "index.json").exists():
                self._write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        except OSError as e:
            raise UsageError(f"cannot create OCI layout {self.path}: {e.strerror}") from None

    # -- index.json ------------------------------------------------------------

    def _index_bytes(self) -> bytes:
        path = self.path / "index.json"
        try:
            return read_bounded(
                path, limit=MAX_MANIFEST_BYTES, what="layout index", error=UsageError
            )
        except FileNotFoundError:
            raise UsageError(f"cannot read {path}: it is gone") from None

    def _index(self) -> dict[str, Any]:
        doc = loads_bounded(
            self._index_bytes(), what=str(self.path / "index.json"), max_bytes=MAX_MANIFEST_BYTES
        )
        if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
            raise UnsupportedError(f"{self.path / 'index.json'} is not an OCI index")
        return doc

    def _write_index(self, doc: dict[str, Any]) -> None:
        data = json.dumps(doc, indent=2).encode()
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".index.json.")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, self.path / "index.json")

    def entries(self) -> list[Descriptor]:
        """The descriptors listed in ``index.json``."""
        return [
            Descriptor.from_json(e, where=str(self.path / "index.json"))
            for e in self._index().get("manifests") or []
        ]

    def set_entries(self, descriptors: Sequence[Descriptor]) -> None:
        """Make ``index.json`` list exactly ``descriptors`` (its other fields are kept)."""
        with self._lock:
            doc = self._index()
            doc["manifests"] = [d.to_json() for d in descriptors]
            doc.setdefault("schemaVersion", 2)
            self._write_index(doc)

    def list_tags(self) -> list[str]:
        return [
            d.annotations[ANNOTATION_REF_NAME]
            for d in self.entries()
            if ANNOTATION_REF_NAME in d.annotations
        ]

    # -- manifests -------------------------------------------------------------

    def _find(self, ref: str) -> Descriptor | Manifest | None:
        entries = self.entries()
        if valid_digest(ref):
            for d in entries:
                if d.digest == ref:
                    return d
            return Descriptor("", ref, -1) if self._blob_path(ref).is_file() else None
        if ref != DEFAULT_REF:
            for d in entries:
                if d.annotations.get(ANNOTATION_REF_NAME) == ref:
                    return d
            return None
        if len(entries) == 1:
            return entries[0]
        if entries and all(
            d.platform is not None
            and d.media_type in IMAGE_TYPES
            and ANNOTATION_REF_NAME not in d.annotations
            for d in entries
        ):
            return Manifest.from_bytes(
                self._index_bytes(), OCI_INDEX, where=str(self.path / "index.json")
            )
        if not entries:
            raise NotFoundError(f"{self.describe()} holds no image (index.json lists nothing)")
        names = ", ".join(sorted(self.list_tags())) or "none named"
        raise UsageError(
            f"{self.describe()} holds {len(entries)} images; say which one",
            f"write oci-layout:{self.path}:TAG (tags here: {names})",
        )

    def get_manifest(self, ref: str) -> Manifest:
        found = self._find(ref)
        where = f"{self.describe()}{'@' if valid_digest(ref) else ':'}{ref}"
        if found is None:
            raise NotFoundError(
                f"{where}: no such image in the layout",
                f"tags here: {', '.join(self.list_tags()) or 'none'}",
            )
        if isinstance(found, Manifest):
            return found
        try:
            data = read_bounded(
                self._blob_path(found.digest),
                limit=MAX_MANIFEST_BYTES,
                what=f"{where}: manifest blob",
                error=UnsupportedError,
            )
        except FileNotFoundError:
            raise NotFoundError(
                f"{where}: blob {found.digest} is missing from the layout"
            ) from None
        return Manifest.from_bytes(
            data, found.media_type or None, expected_digest=found.digest, where=where
        )

    def resolve(self, ref: str) -> Descriptor | None:
        try:
            return self.get_manifest(ref).descriptor
        except NotFoundError:
            return None

    def put_manifest(
        self, manifest: Manifest, ref: str, *, top_level: bool = False
    ) -> PutManifestResult:
        """Write the manifest blob; name it in ``index.json`` when ``ref`` is a tag or ``top_level``."""
        path = self._blob_path(manifest.digest)
        if not path.is_file():
            self._write_file(path, [manifest.data])
        if valid_digest(ref) and not top_level:
            return PutManifestResult(manifest.digest, subject_indexed=True)
        with self._lock:
            doc = self._index()
            entries: list[Any] = list(doc.get("manifests") or [])
            desc = manifest.descriptor.to_json()
            desc.pop("annotations", None)
            if valid_digest(ref):
                if any(isinstance(e, dict) and e.get("digest") == manifest.digest for e in entries):
                    return PutManifestResult(manifest.digest, subject_indexed=True)
            else:
                entries = [
                    e
                    for e in entries
                    if not (
                        isinstance(e, dict)
                        and (e.get("annotations") or {}).get(ANNOTATION_REF_NAME) == ref
                    )
                ]
                desc["annotations"] = {ANNOTATION_REF_NAME: ref}
            entries.append(desc)
            doc["manifests"] = entries
            doc.setdefault("schemaVersion", 2)
            self._write_index(doc)
        return PutManifestResult(manifest.digest, subject_indexed=True)

    # -- referrers -------------------------------------------------------------

    def supports_referrers_api(self) -> bool:
        return True

    def referrers(self, digest: str) -> list[Descriptor]:
        out: dict[str, Descriptor] = {}
        fallback = referrers_tag(digest)
        for d in self.entries():
            if d.annotations.get(ANNOTATION_REF_NAME) == fallback and d.media_type in INDEX_TYPES:
                for child in self.get_manifest(d.digest).children():
                    out.setdefault(child.digest, child)
            elif d.media_type in IMAGE_TYPES or d.media_type in INDEX_TYPES:
                try:
                    m = self.get_manifest(d.digest)
                    subject = m.subject()
                except (NotFoundError, UnsupportedError):
                    continue
                if subject is not None and subject.digest == digest:
                    out.setdefault(m.digest, m.descriptor)
        return list(out.values())

    # -- blobs -----------------------------------------------------------------

    def _blob_path(self, digest: str) -> Path:
        if not valid_digest(digest):
            raise UnsupportedError(f"{self.describe()}: invalid digest {digest!r}")
        algorithm, _, encoded = digest.partition(":")
        return self.path / "blobs" / algorithm / encoded

    def has_blob(self, desc: Descriptor) -> bool:
        try:
            return self._blob_path(desc.digest).stat().st_size == desc.size
        except FileNotFoundError:
            return False

    @contextmanager
    def open_blob(self, desc: Descriptor) -> Iterator[Iterator[bytes]]:
        path = self._blob_path(desc.digest)
        try:
            # non-blocking: a FIFO planted in the layout must not hang the open
            f = os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb")
        except FileNotFoundError:
            raise NotFoundError(
                f"{self.describe()}: blob {desc.digest} is missing from the layout"
            ) from None
        except OSError as e:
            raise UnsupportedError(
                f"{self.describe()}: cannot read blob {desc.digest}: {e.strerror}"
            ) from None
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            f.close()
            raise UnsupportedError(
                f"{self.describe()}: blob {desc.digest} is not a regular file",
                "a layout's blobs are files; rebuild the layout",
            )

        def chunks() -> Iterator[bytes]:
            while block := f.read(CHUNK):
                yield block

        try:
            yield chunks()
        finally:
            f.close()

    def put_blob(
        self, desc: Descriptor, chunks: Iterable[bytes], on_bytes: BytesCallback | None = None
    ) -> None:
        self._write_file(self._blob_path(desc.digest), chunks)

    def read_blob(self, desc: Descriptor, *, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        """A small blob (a config) whole, checked against ``desc``'s size and digest."""
        where = self.describe()
        if desc.size > limit:
            raise UnsupportedError(
                f"{where}: blob {desc.digest} has {desc.size} bytes, more than the {limit} "
                "a JSON blob may have"
            )
        with self.open_blob(desc) as chunks:
            return b"".join(verified(chunks, desc, where))

    def delete_blob(self, digest: str) -> None:
        """Remove a blob nothing references any more (no error when it is gone already)."""
        self._blob_path(digest).unlink(missing_ok=True)

    def _write_file(self, path: Path, chunks: Iterable[bytes]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
