"""Generate valid OCI image layouts with seeded random layers, streamed to disk.

``make_layout(directory, platforms=…, layer_sizes=…, seed=…, media="oci"|"docker")``
writes ``oci-layout``, ``index.json`` and ``blobs/sha256/…``: an image index (or a Docker
manifest list with ``media="docker"``) over one image manifest per platform, each with
its own config JSON (``os``/``architecture``/``variant``, ``rootfs.diff_ids``) and its
own layers. Each layer is a real tar holding one file of seeded random bytes, written in
1 MiB chunks (memory stays flat even for 400 MiB layers). ``compress=True`` gzips layers
at level 1 (random data does not shrink, so the default is uncompressed ``…tar``).

Same arguments, same bytes, same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

MiB = 1024 * 1024
CHUNK = MiB

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

Media = Literal["oci", "docker"]
CREATED = "2024-01-01T00:00:00Z"


@dataclass(frozen=True)
class Blob:
    """A descriptor of a blob written into the layout."""

    digest: str
    size: int
    media_type: str

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Layout:
    """What :func:`make_layout` wrote."""

    path: Path
    """The layout directory."""
    index_digest: str
    """Digest of the top image index / manifest list (what a registry serves for the tag);
    with ``wrap_index=False`` and one platform, the manifest's digest."""
    index_size: int
    manifests: dict[str, str]
    """Platform (``linux/amd64``) → image manifest digest."""
    configs: dict[str, str]
    """Platform → config blob digest."""
    layers: dict[str, list[str]]
    """Platform → layer blob digests, bottom first."""
    media: Media
    tag: str
    """The ``org.opencontainers.image.ref.name`` written in ``index.json``."""
    blobs: list[Blob] = field(default_factory=list)
    """Every blob written (configs, layers, manifests, index)."""

    @property
    def ref(self) -> str:
        """``oci-layout:PATH`` — the acr-ci CLI's name for this layout."""
        return f"oci-layout:{self.path}"

    @property
    def skopeo_ref(self) -> str:
        """``oci:PATH`` — skopeo's name for this layout."""
        return f"oci:{self.path}"

    @property
    def total_bytes(self) -> int:
        """Sum of every blob's size."""
        return sum(b.size for b in self.blobs)

    def blob_path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        return self.path / "blobs" / algo / hexpart


def _json_bytes(obj: object) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=False).encode() + b"\n"


class _HashingWriter:
    """A file object that hashes and counts what is written through it."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("wb")
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.file.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _platform_parts(platform: str) -> tuple[str, str, str | None]:
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform {platform!r} is not OS/ARCH[/VARIANT]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


class _LayoutWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.blob_dir = path / "blobs" / "sha256"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.blobs: list[Blob] = []

    def put_bytes(self, data: bytes, media_type: str) -> Blob:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (self.blob_dir / digest[7:]).write_bytes(data)
        blob = Blob(digest, len(data), media_type)
        self.blobs.append(blob)
        return blob

    def put_layer(
        self, size: int, rng: random.Random, media_type: str, compress: bool, name: str
    ) -> tuple[Blob, str]:
        """A tar with one random file of ``size`` bytes; returns (blob, diff_id)."""
        tmp = self.blob_dir / f".tmp-{name}"
        outer = _HashingWriter(tmp)
        gz = gzip.GzipFile(fileobj=outer, mode="wb", compresslevel=1, mtime=0) if compress else None
        diff = hashlib.sha256()

        def emit(data: bytes) -> None:
            diff.update(data)
            (gz or outer).write(data)

        info = tarfile.TarInfo(f"data/{name}.bin")
        info.size = size
        info.mtime = 0
        info.mode = 0o644
        emit(info.tobuf(format=tarfile.PAX_FORMAT))
        left = size
        while left:
            n = min(CHUNK, left)
            emit(rng.randbytes(n))
            left -= n
        pad = (-size) % tarfile.BLOCKSIZE
        emit(b"\0" * (pad + 2 * tarfile.BLOCKSIZE))
        if gz is not None:
            gz.close()
        outer.close()
        digest = "sha256:" + outer.sha.hexdigest()
        tmp.replace(self.blob_dir / digest[7:])
        blob = Blob(digest, outer.size, media_type)
        self.blobs.append(blob)
        return blob, "sha256:" + diff.hexdigest()


def make_layout(
    directory: Path | str,
    platforms: Sequence[str] = ("linux/amd64", "linux/arm64"),
    layer_sizes: Sequence[int] | Mapping[str, Sequence[int]] = (256 * 1024, 64 * 1024),
    seed: int = 0,
    media: Media = "oci",
    *,
    compress: bool = False,
    tag: str = "latest",
    wrap_index: bool = True,
) -> Layout:
    """Write an OCI image layout into ``directory`` (created if needed) and describe it.

    ``layer_sizes``: payload bytes of each layer, bottom first — one list for every
    platform, or a mapping ``platform -> sizes`` (e.g. ``{"linux/amd64": [400 * MiB],
    "linux/arm64": [100 * MiB]}``). Every platform gets distinct random content derived
    from ``seed``. ``media="docker"`` uses Docker schema 2 media types (manifest list,
    ``…rootfs.diff.tar[.gzip]``). ``wrap_index=False`` (one platform only) points
    ``index.json`` straight at the image manifest instead of at an image index.
    """
    if media not in ("oci", "docker"):
        raise ValueError(f"media must be 'oci' or 'docker', not {media!r}")
    if not platforms:
        raise ValueError("at least one platform")
    if not wrap_index and len(platforms) != 1:
        raise ValueError("wrap_index=False needs exactly one platform")
    path = Path(directory)
    writer = _LayoutWriter(path)
    docker = media == "docker"
    layer_type = (
        (DOCKER_LAYER_GZIP if compress else DOCKER_LAYER)
        if docker
        else (OCI_LAYER_GZIP if compress else OCI_LAYER)
    )
    manifest_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    config_type = DOCKER_CONFIG if docker else OCI_CONFIG
    index_type = DOCKER_LIST if docker else OCI_INDEX

    manifests: dict[str, str] = {}
    configs: dict[str, str] = {}
    layers: dict[str, list[str]] = {}
    entries: list[dict[str, object]] = []
    for p_index, platform in enumerate(platforms):
        os_name, arch, variant = _platform_parts(platform)
        sizes = layer_sizes[platform] if isinstance(layer_sizes, Mapping) else layer_sizes
        rng = random.Random(f"{seed}:{platform}")
        layer_blobs: list[Blob] = []
        diff_ids: list[str] = []
        for i, size in enumerate(sizes):
            blob, diff_id = writer.put_layer(
                int(size), rng, layer_type, compress, f"p{p_index}-l{i}-s{seed}"
            )
            layer_blobs.append(blob)
            diff_ids.append(diff_id)
        config: dict[str, object] = {
            "created": CREATED,
            "architecture": arch,
            "os": os_name,
            "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [
                {"created": CREATED, "created_by": f"acr-ci test layer {i} ({platform})"}
                for i in range(len(diff_ids))
            ],
        }
        if variant:
            config["variant"] = variant
        config_blob = writer.put_bytes(_json_bytes(config), config_type)
        manifest = {
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": config_blob.descriptor(),
            "layers": [b.descriptor() for b in layer_blobs],
        }
        manifest_blob = writer.put_bytes(_json_bytes(manifest), manifest_type)
        plat: dict[str, str] = {"architecture": arch, "os": os_name}
        if variant:
            plat["variant"] = variant
        entries.append({**manifest_blob.descriptor(), "platform": plat})
        manifests[platform] = manifest_blob.digest
        configs[platform] = config_blob.digest
        layers[platform] = [b.digest for b in layer_blobs]

    if wrap_index:
        index = {"schemaVersion": 2, "mediaType": index_type, "manifests": entries}
        top = writer.put_bytes(_json_bytes(index), index_type)
    else:
        top = writer.blobs[-1]
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}\n')
    top_entry = {
        **top.descriptor(),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    (path / "index.json").write_bytes(
        _json_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top_entry]})
    )
    return Layout(
        path=path,
        index_digest=top.digest,
        index_size=top.size,
        manifests=manifests,
        configs=configs,
        layers=layers,
        media=media,
        tag=tag,
        blobs=list(writer.blobs),
    )
