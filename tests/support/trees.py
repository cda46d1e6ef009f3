"""OCI layouts whose layers are real file trees (dirs, modes, symlinks, hard links, long
names, whiteouts, large files), and the file tree an image unpacks to.

``make_tree_layout(dir, {platform: [layer, …]})`` writes an index over one image per
platform; a layer is a list of :class:`Entry` (the same list object under two platforms is
the same blob: a shared layer). ``unpack(layout_dir, manifest_digest)`` applies an image's
layers in order (OCI whiteouts included) with :mod:`tarfile` and returns ``{path:
(type, mode, uid, gid, sha256 or link target)}``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"

Tree = dict[str, tuple[str, int, int, int, str]]


@dataclass(frozen=True)
class Entry:
    """One tar entry: ``kind`` is reg, dir, symlink, hardlink or fifo."""

    name: str
    kind: str = "reg"
    data: bytes = b""
    mode: int = 0o644
    link: str = ""
    uid: int = 0
    gid: int = 0
    xattrs: tuple[tuple[str, str], ...] = ()


_KINDS = {
    "reg": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def tar_bytes(entries: Sequence[Entry], *, compress: bool = True) -> bytes:
    """A tar of ``entries`` in order (gzip-compressed unless ``compress=False``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = _KINDS[e.kind]
            info.mode = e.mode
            info.uid, info.gid = e.uid, e.gid
            info.uname, info.gname = ("root", "root") if e.uid == 0 else ("", "")
            info.mtime = 1_700_000_000
            info.linkname = e.link
            if e.xattrs:
                info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e.xattrs}
            if e.kind == "reg":
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    raw = buf.getvalue()
    return gzip.compress(raw, compresslevel=1, mtime=0) if compress else raw


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def make_tree_layout(
    directory: Path,
    layers: Mapping[str, Sequence[Sequence[Entry]]],
    *,
    compress: bool = True,
    annotations: Mapping[str, str] | None = None,
) -> str:
    """Write the layout; returns the index digest (also in ``index.json`` as ``latest``)."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data: bytes) -> str:
        digest = _sha(data)
        (blobs / digest[7:]).write_bytes(data)
        return digest

    entries = []
    for platform, platform_layers in layers.items():
        os_name, arch = platform.split("/")[:2]
        descs, diff_ids = [], []
        for layer in platform_layers:
            raw = tar_bytes(layer, compress=False)
            blob = gzip.compress(raw, compresslevel=1, mtime=0) if compress else raw
            descs.append(
                {
                    "mediaType": OCI_LAYER_GZIP if compress else OCI_LAYER,
                    "digest": put(blob),
                    "size": len(blob),
                }
            )
            diff_ids.append(_sha(raw))
        config = _json(
            {
                "architecture": arch,
                "os": os_name,
                "config": {"Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        )
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": put(config), "size": len(config)},
                "layers": descs,
                "annotations": {"org.example.platform": platform},
            }
        )
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": put(manifest),
                "size": len(manifest),
                "platform": {"os": os_name, "architecture": arch},
                "annotations": {"org.example.entry": platform},
            }
        )
    index_doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    }
    if annotations:
        index_doc["annotations"] = dict(annotations)
    index = _json(index_doc)
    digest = put(index)
    (directory / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": OCI_INDEX,
                        "digest": digest,
                        "size": len(index),
                        "annotations": {"org.opencontainers.image.ref.name": "latest"},
                    }
                ],
            }
        )
    )
    return digest


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def unzstd(blob: bytes) -> bytes:
    """Every zstd frame of ``blob`` decompressed in order, skippable frames skipped (the
    ``zstandard`` package as an ordinary reader, independent of the converter)."""
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob), read_across_frames=True)
    return reader.read()


def _clean(name: str) -> str:
    name = name.removeprefix("./").strip("/")
    return name


def apply_layer(tree: Tree, layer: bytes) -> None:
    """Apply one layer (gzip, zstd or plain tar) to ``tree``, OCI whiteouts included."""
    if layer.startswith(ZSTD_MAGIC):
        layer = unzstd(layer)
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:*") as tar:
        for info in tar:
            name = _clean(info.name)
            parent, _, base = name.rpartition("/")
            if base == ".wh..wh..opq":
                for p in [p for p in tree if p.startswith(parent + "/" if parent else "")]:
                    if p != parent:
                        del tree[p]
                continue
            if base.startswith(".wh."):
                gone = (parent + "/" if parent else "") + base[4:]
                for p in [p for p in tree if p == gone or p.startswith(gone + "/")]:
                    del tree[p]
                continue
            if info.isreg():
                f = tar.extractfile(info)
                assert f is not None
                what = _sha(f.read())
                kind = "reg"
            elif info.issym():
                kind, what = "symlink", info.linkname
            elif info.islnk():
                kind, what = "hardlink", _clean(info.linkname)
            elif info.isdir():
                kind, what = "dir", ""
            else:
                kind, what = str(info.type), ""
            tree[name] = (kind, info.mode, info.uid, info.gid, what)


def layout_blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / digest.split(":", 1)[0] / digest.split(":", 1)[1]).read_bytes()


def unpack(layout: Path, manifest_digest: str) -> Tree:
    """The file tree of the image manifest ``manifest_digest`` in ``layout``."""
    manifest = json.loads(layout_blob(layout, manifest_digest))
    tree: Tree = {}
    for layer in manifest["layers"]:
        apply_layer(tree, layout_blob(layout, layer["digest"]))
    return tree
