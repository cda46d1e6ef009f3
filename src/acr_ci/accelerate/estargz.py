"""One layer (a gzip or uncompressed tar, read as a stream) rewritten as eStargz.

The eStargz format (containerd/stargz-snapshotter ``docs/estargz.md``) is an ordinary
gzip-compressed tar that every client unpacks, laid out so that a snapshotter can fetch
single files by HTTP range:

- the blob is a concatenation of gzip members; a new member starts at the blob's top, at
  the payload of every non-empty regular file (and at every chunk of a large one, so a
  chunk is fetched and decompressed on its own), at the TOC's tar header and at the footer;
- the first entry is the landmark file ``.no.prefetch.landmark`` (one byte ``0x0f``): this
  converter does no workload profiling, so no file is prioritized;
- the last tar entry, ``stargz.index.json``, is the TOC: ``{"version": 1, "entries": [...]}``
  with one entry per tar entry and one ``chunk`` entry per further chunk of a large file
  (``offset`` is where that chunk's gzip member starts in the blob); the TOC member also
  holds the tar end-of-archive blocks;
- a 51-byte footer: an empty gzip member whose extra field (``SG``, 22 bytes) is
  ``"%016xSTARGZ" % toc_offset``.

The TOC digest (the layer descriptor's ``containerd.io/snapshot/stargz/toc.digest``) is the
sha256 of the TOC's JSON bytes as stored, uncompressed.

The layout rules (a new compressed stream at every payload and chunk, the TOC's entries)
are shared with zstd:chunked (:mod:`acr_ci.accelerate.zstdchunked`): :func:`convert` takes a
:class:`Codec`, which names the compressor of one stream and writes the TOC and footer;
:data:`ESTARGZ` is this format's.

Memory stays flat in the layer's size: the input is read through a 1 MiB window, each chunk
of file data is compressed as it is read, the blob goes to a file. What grows with the layer
is the TOC (one small dict per entry; entries are bounded by :data:`MAX_ENTRIES`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import tarfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from acr_ci.errors import AccelerateError

TOC_NAME = "stargz.index.json"
NO_PREFETCH_LANDMARK = ".no.prefetch.landmark"
PREFETCH_LANDMARK = ".prefetch.landmark"
LANDMARK_CONTENTS = b"\x0f"
TOC_DIGEST_ANNOTATION = "containerd.io/snapshot/stargz/toc.digest"
UNCOMPRESSED_SIZE_ANNOTATION = "io.containers.estargz.uncompressed-size"
FOOTER_SIZE = 51

DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
"""Regular files larger than this are split into chunks of this many bytes."""
DEFAULT_LEVEL = 6
"""zlib compression level (1 fastest … 9 smallest)."""
MAX_ENTRIES = 1_000_000
"""Tar entries one layer may hold (each costs a TOC entry in memory)."""
READ = 1024 * 1024
"""Bytes read from the input and handed to the compressor at once."""

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"
_BLOCK = tarfile.BLOCKSIZE
END_OF_ARCHIVE = b"\x00" * (2 * _BLOCK)
"""The two zero blocks that end a tar."""

_TYPES = {
    tarfile.DIRTYPE: "dir",
    tarfile.REGTYPE: "reg",
    tarfile.AREGTYPE: "reg",
    tarfile.CONTTYPE: "reg",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}
_XATTR = "SCHILY.xattr."


@dataclass(frozen=True)
class LayerResult:
    """What one conversion wrote."""

    digest: str
    """sha256 of the blob (the layer descriptor's digest)."""
    size: int
    """Bytes of the blob."""
    diff_id: str
    """sha256 of the uncompressed tar (the config's ``rootfs.diff_ids`` entry)."""
    uncompressed_size: int
    """Bytes of the uncompressed tar (``io.containers.estargz.uncompressed-size``)."""
    toc_digest: str
    """sha256 of the TOC JSON (``containerd.io/snapshot/stargz/toc.digest``)."""
    entries: int
    """Tar entries converted (the landmark not counted)."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    """The layer descriptor's annotations the format asks for (TOC digest among them)."""


class Stream(ABC):
    """One compressed stream (a gzip member, a zstd frame) being written."""

    @abstractmethod
    def compress(self, data: bytes) -> bytes: ...

    @abstractmethod
    def flush(self) -> bytes:
        """The stream's end (it takes no more data)."""


class Codec(ABC):
    """What differs between eStargz and zstd:chunked: the compressor of one stream, and how
    the TOC and footer are written after the last entry."""

    title: str
    """The format's name in messages."""
    default_level: int
    """Compression level when none is given."""

    @abstractmethod
    def stream(self, level: int) -> Stream:
        """A new compressed stream (each payload and chunk gets one)."""

    @abstractmethod
    def finish(self, blob: Blob, toc: bytes) -> dict[str, str]:
        """Write the tar's end, the TOC (``toc``, its JSON) and the footer; the layer
        descriptor's annotations (the TOC digest and uncompressed size are added to them)."""


def footer(toc_offset: int) -> bytes:
    """The 51-byte eStargz footer pointing at the TOC's gzip member."""
    payload = b"%016xSTARGZ" % toc_offset
    extra = b"SG" + struct.pack("<H", len(payload)) + payload
    header = b"\x1f\x8b\x08\x04" + b"\x00\x00\x00\x00" + b"\x00\xff" + struct.pack("<H", len(extra))
    # an empty final stored deflate block, then CRC32 = 0 and ISIZE = 0 of no data
    data = header + extra + b"\x01\x00\x00\xff\xff" + b"\x00" * 8
    assert len(data) == FOOTER_SIZE
    return data


def parse_footer(data: bytes) -> int:
    """The TOC offset a footer names; :class:`AccelerateError` if ``data`` is not one."""
    if (
        len(data) != FOOTER_SIZE
        or data[:4] != b"\x1f\x8b\x08\x04"
        or data[12:14] != b"SG"
        or data[32:38] != b"STARGZ"
    ):
        raise AccelerateError("the blob does not end with an eStargz footer")
    return int(data[16:32], 16)


class _ChunkFile(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (for :mod:`tarfile`'s stream mode)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            try:
                self._rest = next(self._it)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n

    def peek(self, n: int) -> bytes:
        while len(self._rest) < n:
            try:
                self._rest += next(self._it)
            except StopIteration:
                break
        return self._rest[:n]

    def drain(self) -> None:
        """Read the rest (so a digest-checking iterator below gets to its end)."""
        self._rest = b""
        for _ in self._it:
            pass


class _GunzipFile(io.RawIOBase):
    """The decompressed bytes of a gzip stream of one or more members, read as a file."""

    def __init__(self, src: _ChunkFile) -> None:
        self._src = src
        self._z: Any = zlib.decompressobj(zlib.MAX_WBITS | 16)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer)
        while True:
            if self._z.unconsumed_tail:
                out = self._z.decompress(self._z.unconsumed_tail, want)
            elif self._z.eof:
                rest = self._z.unused_data or self._src.read(READ)
                if not rest:
                    return 0  # the end, between members
                self._z = zlib.decompressobj(zlib.MAX_WBITS | 16)
                out = self._z.decompress(rest, want)
            else:
                data = self._src.read(READ)
                if not data:
                    raise EOFError("the gzip stream ends inside a member")
                out = self._z.decompress(data, want)
            if out:
                buffer[: len(out)] = out
                return len(out)


class Blob:
    """The blob being written: compressed streams to a file, hashes of both sides."""

    def __init__(self, out: IO[bytes], codec: Codec, level: int) -> None:
        self.out = out
        self.codec = codec
        self.level = level
        self.offset = 0
        self.blob_hash = hashlib.sha256()
        self.tar_hash = hashlib.sha256()
        self.tar_size = 0
        self._member: Stream | None = None

    def _emit(self, data: bytes) -> None:
        if data:
            self.out.write(data)
            self.blob_hash.update(data)
            self.offset += len(data)

    def write(self, data: bytes) -> None:
        """Uncompressed tar bytes, into the open member (one is opened if none is)."""
        if not data:
            return
        if self._member is None:
            self._member = self.codec.stream(self.level)
        self.tar_hash.update(data)
        self.tar_size += len(data)
        self._emit(self._member.compress(data))

    def new_member(self) -> int:
        """Close the open member; the next write starts one here. Returns the blob offset."""
        if self._member is not None:
            self._emit(self._member.flush())
            self._member = None
        return self.offset

    def raw(self, data: bytes) -> None:
        """Bytes outside every member (a footer, a skippable frame)."""
        self.new_member()
        self._emit(data)


def _modtime(mtime: float) -> str:
    """RFC 3339 in UTC; empty (the format's "unknown") for a time no calendar holds."""
    try:
        return datetime.fromtimestamp(int(mtime), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return ""


def _entry(info: tarfile.TarInfo, kind: str) -> dict[str, Any]:
    # tarfile drops a directory's trailing slash; the tar header written keeps it
    name = info.name + "/" if kind == "dir" and not info.name.endswith("/") else info.name
    e: dict[str, Any] = {"name": name, "type": kind}
    if kind == "reg" and info.size:
        e["size"] = info.size
    modtime = _modtime(info.mtime)
    if modtime:
        e["modtime"] = modtime
    if kind in ("symlink", "hardlink"):
        e["linkName"] = info.linkname
    e["mode"] = info.mode
    e["uid"] = info.uid
    e["gid"] = info.gid
    if info.uname:
        e["userName"] = info.uname
    if info.gname:
        e["groupName"] = info.gname
    if kind in ("char", "block"):
        e["devMajor"] = info.devmajor
        e["devMinor"] = info.devminor
    xattrs = {
        k[len(_XATTR) :]: base64.b64encode(v.encode("utf-8", "surrogateescape")).decode()
        for k, v in info.pax_headers.items()
        if k.startswith(_XATTR)
    }
    if xattrs:
        e["xattrs"] = xattrs
    return e


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return b"\x00" * ((_BLOCK - size % _BLOCK) % _BLOCK)


class _Converter:
    def __init__(self, blob: Blob, chunk_size: int) -> None:
        self.blob = blob
        self.chunk_size = chunk_size
        self.entries: list[dict[str, Any]] = []

    def regular(self, info: tarfile.TarInfo, data: IO[bytes] | None, where: str) -> None:
        """A regular file: header in the open member, payload in members of its own."""
        blob = self.blob
        blob.write(_header(info))
        first = _entry(info, "reg")
        self.entries.append(first)
        if not info.size:
            return
        assert data is not None
        whole = hashlib.sha256()
        done = 0
        current = first
        while done < info.size:
            n = min(self.chunk_size, info.size - done)
            if done:
                current = {"name": info.name, "type": "chunk", "chunkOffset": done}
                self.entries.append(current)
            current["offset"] = blob.new_member()
            if done + n < info.size:
                current["chunkSize"] = n
            part = hashlib.sha256()
            left = n
            while left:
                piece = data.read(min(READ, left))
                if not piece:
                    raise AccelerateError(
                        f"{where}: {info.name!r} ends before its {info.size} bytes"
                    )
                left -= len(piece)
                part.update(piece)
                whole.update(piece)
                blob.write(piece)
            current["chunkDigest"] = "sha256:" + part.hexdigest()
            done += n
        first["digest"] = "sha256:" + whole.hexdigest()
        blob.write(_padding(info.size))

    def other(self, info: tarfile.TarInfo, kind: str) -> None:
        self.blob.write(_header(info))
        self.entries.append(_entry(info, kind))

    def landmark(self) -> None:
        info = tarfile.TarInfo(NO_PREFETCH_LANDMARK)
        info.size = len(LANDMARK_CONTENTS)
        info.mode = 0o644
        self.regular(info, io.BytesIO(LANDMARK_CONTENTS), "landmark")

    def toc(self) -> bytes:
        doc = {"version": 1, "entries": self.entries}
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogateescape"
        )


class _GzipStream(Stream):
    def __init__(self, level: int) -> None:
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def flush(self) -> bytes:
        return self._z.flush()


class _Estargz(Codec):
    title = "eStargz"
    default_level = DEFAULT_LEVEL

    def stream(self, level: int) -> Stream:
        return _GzipStream(level)

    def finish(self, blob: Blob, toc: bytes) -> dict[str, str]:
        """The TOC as the last tar entry, with the tar's end, in a member of its own; the
        footer after it."""
        offset = blob.new_member()
        info = tarfile.TarInfo(TOC_NAME)
        info.size = len(toc)
        info.mode = 0o444
        blob.write(_header(info))
        blob.write(toc)
        blob.write(_padding(len(toc)))
        blob.write(END_OF_ARCHIVE)
        blob.raw(footer(offset))
        return {}


ESTARGZ: Codec = _Estargz()
"""The eStargz codec (the default of :func:`convert`)."""


def convert(
    chunks: Iterable[bytes],
    out: IO[bytes],
    *,
    where: str,
    codec: Codec = ESTARGZ,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    level: int | None = None,
    max_entries: int = MAX_ENTRIES,
) -> LayerResult:
    """Read a tar layer (gzip-compressed or not) from ``chunks``, write it in ``codec``'s
    format (eStargz unless told) to ``out``. ``where`` names the layer in errors; ``level``:
    the codec's default unless given. Every chunk of the input is consumed (so a
    digest-verifying iterator can raise at its end)."""
    if chunk_size < 1:
        raise AccelerateError(f"{where}: chunk size {chunk_size} is not positive")
    src = _ChunkFile(chunks)
    magic = src.peek(4)
    if magic.startswith(_ZSTD_MAGIC):
        raise AccelerateError(
            f"{where}: zstd-compressed layers cannot be converted to {codec.title} yet",
            "push the image with gzip (or uncompressed) layers",
        )
    raw: io.RawIOBase = _GunzipFile(src) if magic.startswith(_GZIP_MAGIC) else src
    blob = Blob(out, codec, codec.default_level if level is None else level)
    conv = _Converter(blob, chunk_size)
    conv.landmark()
    count = 0
    buffered = io.BufferedReader(raw, READ)
    try:
        with tarfile.open(
            fileobj=buffered,
            mode="r|",
            encoding="utf-8",
            errors="surrogateescape",
        ) as tar:
            for info in tar:
                count += 1
                if count > max_entries:
                    raise AccelerateError(
                        f"{where}: more than {max_entries} tar entries", "split the layer"
                    )
                if info.name in (TOC_NAME, NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK):
                    raise AccelerateError(
                        f"{where}: the layer already has a {info.name!r} entry",
                        "an eStargz layer without its annotations cannot be converted",
                    )
                kind = _TYPES.get(info.type)
                if kind is None or info.issparse():
                    raise AccelerateError(
                        f"{where}: tar entry {info.name!r} has type {info.type!r}, which "
                        f"{codec.title} cannot hold",
                        "rebuild the layer without sparse or unusual tar entries",
                    )
                if kind == "reg":
                    conv.regular(info, tar.extractfile(info) if info.size else None, where)
                else:
                    conv.other(info, kind)
        while buffered.read(READ):  # the rest (gzip trailers checked): nothing after the tar counts
            pass
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise AccelerateError(f"{where}: the layer is not a readable tar: {e}") from None
    src.drain()
    toc = conv.toc()
    toc_digest = "sha256:" + hashlib.sha256(toc).hexdigest()
    annotations = codec.finish(blob, toc)
    annotations[TOC_DIGEST_ANNOTATION] = toc_digest
    annotations[UNCOMPRESSED_SIZE_ANNOTATION] = str(blob.tar_size)
    return LayerResult(
        digest="sha256:" + blob.blob_hash.hexdigest(),
        size=blob.offset,
        diff_id="sha256:" + blob.tar_hash.hexdigest(),
        uncompressed_size=blob.tar_size,
        toc_digest=toc_digest,
        entries=count,
        annotations=annotations,
    )
