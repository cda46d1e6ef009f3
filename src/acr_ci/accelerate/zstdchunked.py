"""The zstd:chunked layer format: :data:`ZSTD_CHUNKED`, a :class:`~acr_ci.accelerate.estargz.Codec`
for :func:`acr_ci.accelerate.estargz.convert`.

zstd:chunked (containers/storage ``docs/containers-storage-zstd-chunked.md``; read by CRI-O,
podman and containerd's stargz snapshotter, ``estargz/zstdchunked``) is an ordinary
zstd-compressed tar (``application/vnd.oci.image.layer.v1.tar+zstd``) laid out like eStargz:

- a concatenation of zstd frames; a new frame starts at the blob's top, at the payload of
  every non-empty regular file and at every chunk of a large one (each is decompressed on
  its own); the first entry is the landmark ``.no.prefetch.landmark``; the tar's two
  end-of-archive blocks close the last frame;
- the TOC (the same ``{"version": 1, "entries": [...]}`` JSON as eStargz, not a tar entry)
  compressed as one zstd frame, inside a zstd *skippable* frame (magic ``50 2a 4d 18``, a
  32-bit little-endian length): every zstd decompressor skips it;
- the footer, a 48-byte skippable frame whose 40-byte payload is four little-endian 64-bit
  numbers: the TOC frame's offset in the blob, its compressed and uncompressed lengths, the
  manifest type (1, the eStargz "CRFS" TOC), then the magic ``GnUlInUx``.

The layer descriptor carries ``io.containers.zstd-chunked.manifest-checksum`` (sha256 of the
compressed TOC frame), ``io.containers.zstd-chunked.manifest-position``
(``offset:compressed:uncompressed:1``), and, as eStargz does, the sha256 of the TOC JSON as
``containerd.io/snapshot/stargz/toc.digest`` and the tar's size as
``io.containers.estargz.uncompressed-size``.
"""

from __future__ import annotations

import hashlib
import struct
import threading

import zstandard

from acr_ci.accelerate.estargz import END_OF_ARCHIVE, Blob, Codec, Stream
from acr_ci.errors import AccelerateError

MANIFEST_CHECKSUM_ANNOTATION = "io.containers.zstd-chunked.manifest-checksum"
MANIFEST_POSITION_ANNOTATION = "io.containers.zstd-chunked.manifest-position"
MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+zstd"
DEFAULT_LEVEL = 3
"""zstd compression level (1 fastest … 19 smallest; 3 is zstd's own default)."""
SKIPPABLE_MAGIC = b"\x50\x2a\x4d\x18"
FOOTER_MAGIC = b"GnUlInUx"
FOOTER_SIZE = 48
"""Bytes of the footer frame: 8 of skippable-frame header, 40 of payload."""
MANIFEST_TYPE_CRFS = 1


def skippable(payload: bytes) -> bytes:
    """``payload`` as a zstd skippable frame."""
    return SKIPPABLE_MAGIC + struct.pack("<I", len(payload)) + payload


def footer(toc_offset: int, compressed: int, uncompressed: int) -> bytes:
    """The footer frame naming the TOC frame at ``toc_offset`` (its lengths)."""
    payload = struct.pack("<QQQQ", toc_offset, compressed, uncompressed, MANIFEST_TYPE_CRFS)
    data = skippable(payload + FOOTER_MAGIC)
    assert len(data) == FOOTER_SIZE
    return data


def parse_footer(data: bytes) -> tuple[int, int, int]:
    """(TOC offset, compressed length, uncompressed length) a footer names;
    :class:`AccelerateError` if ``data`` is not one."""
    if (
        len(data) != FOOTER_SIZE
        or data[:4] != SKIPPABLE_MAGIC
        or data[4:8] != struct.pack("<I", FOOTER_SIZE - 8)
        or data[40:] != FOOTER_MAGIC
    ):
        raise AccelerateError("the blob does not end with a zstd:chunked footer")
    offset, compressed, uncompressed, kind = struct.unpack("<QQQQ", data[8:40])
    if kind != MANIFEST_TYPE_CRFS:
        raise AccelerateError(f"the zstd:chunked footer names manifest type {kind}, not 1")
    return offset, compressed, uncompressed


class _ZstdStream(Stream):
    def __init__(self, compressor: zstandard.ZstdCompressor) -> None:
        self._z = compressor.compressobj()

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def flush(self) -> bytes:
        return self._z.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


class _ZstdChunked(Codec):
    title = "zstd:chunked"
    default_level = DEFAULT_LEVEL

    def __init__(self) -> None:
        self._local = threading.local()

    def stream(self, level: int) -> Stream:
        # a compressor (its context) per thread and level, reused frame after frame: a
        # thread writes one blob, one frame at a time
        compressors: dict[int, zstandard.ZstdCompressor] = self._local.__dict__.setdefault(
            "compressors", {}
        )
        if level not in compressors:
            compressors[level] = zstandard.ZstdCompressor(level=level)
        return _ZstdStream(compressors[level])

    def finish(self, blob: Blob, toc: bytes) -> dict[str, str]:
        blob.write(END_OF_ARCHIVE)  # in the open frame (opened if the layer was empty)
        start = blob.new_member()
        compressed = zstandard.ZstdCompressor(level=blob.level).compress(toc)
        blob.raw(skippable(compressed))
        offset = start + 8  # past the skippable frame's magic and length
        blob.raw(footer(offset, len(compressed), len(toc)))
        return {
            MANIFEST_CHECKSUM_ANNOTATION: "sha256:" + hashlib.sha256(compressed).hexdigest(),
            MANIFEST_POSITION_ANNOTATION: (
                f"{offset}:{len(compressed)}:{len(toc)}:{MANIFEST_TYPE_CRFS}"
            ),
        }


ZSTD_CHUNKED: Codec = _ZstdChunked()
"""The zstd:chunked codec for :func:`acr_ci.accelerate.estargz.convert`."""
