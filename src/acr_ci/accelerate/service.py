"""An image's accelerated (eStargz or zstd:chunked) twin, converted from the registry and
pushed beside it.

The twin has the original's shape: an index for an index (every platform, in order, with
its platform and annotations), a manifest for a manifest. Each image manifest keeps its
media type and annotations; its config gets the new ``rootfs.diff_ids``; each layer is
rewritten by :func:`acr_ci.accelerate.estargz.convert` with the format's codec (streamed
from the registry, written to a temporary file, uploaded, the file removed), with the
format's annotations on its descriptor (``toc.digest`` and ``uncompressed-size``; for
zstd:chunked the ``manifest-checksum`` and ``manifest-position`` too). A layer already in
the format (a gzip layer with a ``toc.digest`` annotation for eStargz, a zstd layer with a
``manifest-checksum`` one for zstd:chunked) is kept as it is; a layer shared by several
platforms is converted once. Manifests that are not images (attestations, signatures in an index) are
kept as they are. Every twin manifest names the manifest it came from in
:data:`SOURCE_ANNOTATION`.

Nothing is put under a tag before every blob and child manifest is in the registry, and
with ``immutable`` the suffixed tags are checked first: a conversion that fails leaves the
registry's tags as they were (the original is never written to).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from acr_ci.accelerate import estargz, zstdchunked
from acr_ci.errors import AccelerateError, UsageError
from acr_ci.jsonload import loads_bounded
from acr_ci.registry.client import Client
from acr_ci.registry.media import (
    DOCKER_MANIFEST,
    IMAGE_TYPES,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    sha256_digest,
)
from acr_ci.registry.reference import TAG_RE, Reference
from acr_ci.registry.remote import RegistryRepository
from acr_ci.registry.store import CHUNK, MAX_CONFIG_BLOB, verified

SOURCE_ANNOTATION = "dev.acr-ci.accelerated.source.digest"
"""On every twin manifest and index: the digest of the manifest it was converted from.
(``org.opencontainers.image.base.digest`` is kept for what the image-spec means by it, the
image the original was built ``FROM``.)"""
FORMAT_ANNOTATION = "dev.acr-ci.accelerated.format"
"""On every twin manifest and index: the format of its layers (``estargz``,
``zstd-chunked``)."""
DEFAULT_SUFFIX = "_accelerated"

OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
_CONVERTIBLE = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        OCI_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar",
        DOCKER_GZIP,
    }
)
_SUFFIX_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


class Format(StrEnum):
    """The layer formats of an accelerated twin."""

    ESTARGZ = "estargz"
    ZSTD_CHUNKED = "zstd-chunked"


_CODECS: dict[Format, estargz.Codec] = {
    Format.ESTARGZ: estargz.ESTARGZ,
    Format.ZSTD_CHUNKED: zstdchunked.ZSTD_CHUNKED,
}


def _in_format(d: Descriptor, fmt: Format) -> bool:
    """Whether layer ``d`` is already in ``fmt`` (kept as it is)."""
    if fmt is Format.ZSTD_CHUNKED:
        return (
            d.media_type == zstdchunked.MEDIA_TYPE
            and zstdchunked.MANIFEST_CHECKSUM_ANNOTATION in d.annotations
        )
    return (
        d.media_type in (OCI_GZIP, DOCKER_GZIP) and estargz.TOC_DIGEST_ANNOTATION in d.annotations
    )


@dataclass(frozen=True)
class AccelerateResult:
    """What one conversion pushed."""

    source: str
    """Digest of the original image (index or manifest)."""
    digest: str
    """Digest of the twin's top manifest."""
    media_type: str
    """Its media type (the original's)."""
    tags: tuple[str, ...]
    """Tags now pointing at the twin."""
    platforms: tuple[str, ...] = ()
    """Platforms of the twin's image manifests (``os/arch[/variant]``), where they say."""
    layers_converted: int = 0
    """Distinct layers rewritten."""
    layers_kept: int = 0
    """Distinct layers already in the format, kept."""
    bytes_uploaded: int = 0
    """Bytes of converted layers and configs sent to the registry."""


def suffixed_tags(tags: Sequence[str], suffix: str) -> list[str]:
    """Each of ``tags`` with ``suffix`` appended, in order, once each; :class:`UsageError` if a
    suffix or a resulting tag is not a valid OCI tag."""
    if not suffix or not set(suffix) <= _SUFFIX_CHARS:
        raise UsageError(
            f"accelerate suffix {suffix!r} is not valid",
            "use letters, digits, '.', '_' or '-' (for example _accelerated)",
        )
    out: list[str] = []
    for tag in tags:
        new = tag + suffix
        if not TAG_RE.fullmatch(new):
            raise UsageError(
                f"tag {tag!r} with suffix {suffix!r} is longer than 128 characters",
                "use a shorter suffix or a shorter tag",
            )
        if new not in out:
            out.append(new)
    return out


@dataclass
class _Layer:
    desc: dict[str, Any]
    diff_id: str


class _Conversion:
    """The state of one image's conversion: converted layers by original digest."""

    def __init__(
        self,
        client: Client,
        repo: RegistryRepository,
        *,
        work_dir: str,
        fmt: Format,
        chunk_size: int,
        level: int | None,
    ) -> None:
        self.client = client
        self.repo = repo
        self.work_dir = work_dir
        self.fmt = fmt
        self.chunk_size = chunk_size
        self.level = level
        self.lock = threading.Lock()
        self.layers: dict[str, _Layer] = {}
        self.kept: set[str] = set()
        self.uploaded = 0
        self.children: list[Manifest] = []
        self.configs: dict[str, tuple[Descriptor, dict[str, Any], list[Any]]] = {}

    # -- blobs -------------------------------------------------------------------

    def _upload_bytes(self, data: bytes, media_type: str) -> Descriptor:
        desc = Descriptor(media_type, sha256_digest(data), len(data))
        if not self.repo.has_blob(desc):
            self.repo.put_blob(desc, [data])
            with self.lock:
                self.uploaded += len(data)
        return desc

    def convert_layer(self, desc: Descriptor) -> _Layer:
        where = f"layer {desc.digest} of {self.repo.describe()}"
        fd, path = tempfile.mkstemp(prefix=f"{self.fmt.value}-", dir=self.work_dir)
        try:
            with os.fdopen(fd, "wb") as out, self.repo.open_blob(desc) as chunks:
                result = estargz.convert(
                    verified(chunks, desc, where),
                    out,
                    where=where,
                    codec=_CODECS[self.fmt],
                    chunk_size=self.chunk_size,
                    level=self.level,
                )
            if self.fmt is Format.ZSTD_CHUNKED:
                media_type = zstdchunked.MEDIA_TYPE  # (an OCI manifest: Docker ones are refused)
            elif desc.media_type.startswith("application/vnd.docker"):
                media_type = DOCKER_GZIP
            else:
                media_type = OCI_GZIP
            new = Descriptor(media_type, result.digest, result.size)
            if not self.repo.has_blob(new):
                self.repo.put_blob(new, _file_chunks(path))
                with self.lock:
                    self.uploaded += result.size
        finally:
            os.unlink(path)
        doc = {k: v for k, v in desc.raw.items() if k not in ("mediaType", "digest", "size")}
        annotations = dict(desc.annotations)
        annotations.update(result.annotations)
        doc = {
            "mediaType": media_type,
            "digest": result.digest,
            "size": result.size,
            **doc,
            "annotations": annotations,
        }
        return _Layer(doc, result.diff_id)

    # -- manifests ---------------------------------------------------------------

    def layers_of(self, manifests: Sequence[Manifest]) -> None:
        """Convert every distinct layer of ``manifests`` (in parallel, ``client.jobs`` at once)."""
        todo: dict[str, Descriptor] = {}
        for m in manifests:
            if self.fmt is Format.ZSTD_CHUNKED and m.media_type == DOCKER_MANIFEST:
                # the Docker schema has no zstd layer type, and clients refuse an OCI one in it
                raise AccelerateError(
                    f"manifest {m.digest} is a Docker schema 2 manifest, which cannot hold "
                    "zstd:chunked layers",
                    "use --format estargz for it, or push the image as OCI",
                )
            self.config(m)  # an inconsistent image is refused before any upload
            for d in _layers(m):
                if _in_format(d, self.fmt):
                    continue
                if d.media_type not in _CONVERTIBLE:
                    title = _CODECS[self.fmt].title
                    raise AccelerateError(
                        f"manifest {m.digest}: layer {d.digest} has media type "
                        f"{d.media_type!r}, which cannot be converted to {title}",
                        f"{title} layers are made from tar or tar+gzip layers",
                    )
                todo.setdefault(d.digest, d)
        with ThreadPoolExecutor(max_workers=max(1, self.client.jobs)) as pool:
            results = dict(zip(todo, pool.map(self.convert_layer, todo.values()), strict=True))
        self.layers.update(results)

    def config(self, m: Manifest) -> tuple[Descriptor, dict[str, Any], list[Any]]:
        """The config of image manifest ``m`` (read once), its ``rootfs.diff_ids`` checked
        against the layers: (descriptor, document, diff_ids)."""
        cached = self.configs.get(m.digest)
        if cached is not None:
            return cached
        doc = m.json
        config_desc = Descriptor.from_json(doc.get("config"), where=f"manifest {m.digest} config")
        if config_desc.size > MAX_CONFIG_BLOB:
            raise AccelerateError(
                f"manifest {m.digest}: config of {config_desc.size} bytes is too large"
            )
        where = f"config of {m.digest}"
        with self.repo.open_blob(config_desc) as chunks:
            data = b"".join(verified(chunks, config_desc, where))
        config = loads_bounded(data, what=where, max_bytes=MAX_CONFIG_BLOB)
        rootfs = config.get("rootfs") if isinstance(config, dict) else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        layers = doc.get("layers")
        if not isinstance(config, dict) or not isinstance(diff_ids, list):
            raise AccelerateError(f"{where}: no rootfs.diff_ids to rewrite")
        if not isinstance(layers, list) or len(diff_ids) != len(layers):
            count = len(layers) if isinstance(layers, list) else 0
            raise AccelerateError(
                f"{where}: {len(diff_ids)} diff_ids for {count} layers",
                "the image is inconsistent; rebuild it",
            )
        self.configs[m.digest] = (config_desc, config, diff_ids)
        return self.configs[m.digest]

    def image(self, m: Manifest) -> Manifest:
        """The twin of image manifest ``m`` (its layers already uploaded)."""
        doc = m.json
        config_desc, config, diff_ids = self.config(m)
        layers = doc["layers"]
        new_layers: list[dict[str, Any]] = []
        new_diff_ids: list[Any] = []
        for raw, diff_id in zip(layers, diff_ids, strict=True):
            d = Descriptor.from_json(raw, where=f"manifest {m.digest} layer")
            converted = self.layers.get(d.digest)
            if converted is None:  # already in the format: kept
                new_layers.append(raw)
                new_diff_ids.append(diff_id)
                with self.lock:
                    self.kept.add(d.digest)
            else:
                new_layers.append(converted.desc)
                new_diff_ids.append(converted.diff_id)
        config = {**config, "rootfs": {**config["rootfs"], "diff_ids": new_diff_ids}}
        new_config = _dumps(config)
        cdesc = self._upload_bytes(new_config, config_desc.media_type)
        doc["config"] = {
            **dict(config_desc.raw),
            "digest": cdesc.digest,
            "size": cdesc.size,
        }
        doc["layers"] = new_layers
        doc["annotations"] = _marked(doc.get("annotations"), m.digest, self.fmt)
        return _manifest(doc, m.media_type)

    def index(self, m: Manifest, children: Sequence[Manifest]) -> Manifest:
        doc = m.json
        twins = {c.digest: self.image(c) for c in children}
        entries: list[Any] = []
        for raw in doc.get("manifests") or []:
            d = Descriptor.from_json(raw, where=f"index {m.digest}")
            twin = twins.get(d.digest)
            if twin is None:
                entries.append(raw)
                continue
            entry = dict(raw)
            entry.update(mediaType=twin.media_type, digest=twin.digest, size=twin.size)
            entries.append(entry)
        self.children = list(twins.values())
        doc["manifests"] = entries
        doc["annotations"] = _marked(doc.get("annotations"), m.digest, self.fmt)
        return _manifest(doc, m.media_type)


def accelerate(
    client: Client,
    source: Reference,
    tags: Sequence[str],
    *,
    fmt: Format = Format.ESTARGZ,
    immutable: bool = False,
    chunk_size: int = estargz.DEFAULT_CHUNK_SIZE,
    level: int | None = None,
) -> AccelerateResult:
    """Convert the image ``source`` names (by digest or tag) and push its twin to the same
    repository under ``tags`` (already suffixed; none: by digest only). ``immutable``: refuse
    (before any tag moves) when one of ``tags`` other than ``latest`` points elsewhere.
    ``level``: the format's default compression level unless given."""
    if fmt not in _CODECS:
        raise UsageError(
            f"accelerate format {fmt!r} is not supported", "use estargz or zstd-chunked"
        )
    top = client.get_manifest(source)
    repo = client.repository(source)
    dst = source.with_tag(None)
    with tempfile.TemporaryDirectory(prefix="acr-ci-accelerate-") as work:
        conv = _Conversion(
            client, repo, work_dir=work, fmt=Format(fmt), chunk_size=chunk_size, level=level
        )
        if top.is_index:
            children = [
                repo.get_manifest(d.digest) for d in top.children() if d.media_type in IMAGE_TYPES
            ]
            images = [c for c in children if _is_image(c)]
            if not images:
                raise AccelerateError(f"index {top.digest} lists no image manifest to convert")
            conv.layers_of(images)
            twin = conv.index(top, images)
        else:
            if not _is_image(top):
                raise AccelerateError(
                    f"{source}: manifest {top.digest} is not a container image",
                    "accelerate converts images (an index or an image manifest)",
                )
            conv.layers_of([top])
            twin = conv.image(top)
    if immutable:
        client.check_immutable(dst, tags, twin.digest)
    for child in conv.children:
        repo.put_manifest(child, child.digest)
    client.put_manifest(dst, twin, tags)
    platforms = tuple(
        str(d.platform) for d in (twin.children() if twin.is_index else []) if d.platform
    )
    return AccelerateResult(
        source=top.digest,
        digest=twin.digest,
        media_type=twin.media_type,
        tags=tuple(dict.fromkeys(tags)),
        platforms=platforms,
        layers_converted=len(conv.layers),
        layers_kept=len(conv.kept),
        bytes_uploaded=conv.uploaded,
    )


def _is_image(m: Manifest) -> bool:
    if m.media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        return False
    config = m.json.get("config")
    media_type = str(config.get("mediaType", "")) if isinstance(config, dict) else ""
    return "image.config" in media_type or "container.image" in media_type


def _layers(m: Manifest) -> list[Descriptor]:
    layers = m.json.get("layers") or []
    if not isinstance(layers, list):
        raise AccelerateError(f"manifest {m.digest}: 'layers' is not a list")
    out = [Descriptor.from_json(d, where=f"manifest {m.digest} layer") for d in layers]
    foreign = [d.digest for d in out if d.raw.get("urls")]
    if foreign:
        raise AccelerateError(
            f"manifest {m.digest}: layer {foreign[0]} is non-distributable (has urls)",
            "images with foreign layers cannot be accelerated",
        )
    return out


def _marked(annotations: Any, source: str, fmt: Format) -> dict[str, str]:
    out = (
        {str(k): str(v) for k, v in (annotations or {}).items()}
        if isinstance(annotations, dict)
        else {}
    )
    out[SOURCE_ANNOTATION] = source
    out[FORMAT_ANNOTATION] = fmt.value
    return out


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _manifest(doc: dict[str, Any], media_type: str) -> Manifest:
    data = _dumps(doc)
    return Manifest(data=data, media_type=media_type, digest=sha256_digest(data))


def _file_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            yield block
