"""One layer to zstd:chunked, read back with the ``zstandard`` package and tarfile.

What the format promises is checked from the bytes: the last 48 bytes are a skippable
frame whose payload names the TOC frame (offset, lengths, type 1, ``GnUlInUx``); the TOC
frame sits in a skippable frame of its own and decompresses to the TOC JSON whose sha256 is
the toc digest; the position and checksum annotations describe that frame; every
``reg``/``chunk`` entry's ``offset`` starts a zstd frame that decompresses on its own to
exactly that chunk; the whole blob decompresses (skippable frames skipped) to a tar with the
original entries plus the landmark, whose sha256 is the diff_id.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
from typing import Any

import pytest
import zstandard
from tests.support.trees import tar_bytes
from tests.support.trees import unzstd as _whole
from tests.unit.accelerate.test_estargz_layer import ENTRIES, MiB, check_chunks

from acr_ci.accelerate import estargz, zstdchunked
from acr_ci.errors import AccelerateError


def _convert(layer: bytes, **kw: Any) -> tuple[bytes, estargz.LayerResult]:
    out = io.BytesIO()
    pieces = [layer[i : i + 77_777] for i in range(0, len(layer), 77_777)]
    result = estargz.convert(pieces, out, where="test layer", codec=zstdchunked.ZSTD_CHUNKED, **kw)
    return out.getvalue(), result


def _frame(blob: bytes, offset: int) -> bytes:
    """The one zstd frame starting at ``offset``, decompressed (and nothing after it)."""
    assert blob[offset : offset + 4] == b"\x28\xb5\x2f\xfd"
    d = zstandard.ZstdDecompressor().decompressobj()
    data = d.decompress(blob[offset:])
    assert d.eof
    return data


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("chunk", [4 * MiB, 1 * MiB], ids=["4MiB", "1MiB"])
def test_layer_round_trip(compress: bool, chunk: int) -> None:
    blob, result = _convert(tar_bytes(ENTRIES, compress=compress), chunk_size=chunk)
    plain = tar_bytes(ENTRIES, compress=False)

    assert result.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert result.size == len(blob)
    whole = _whole(blob)
    assert result.diff_id == "sha256:" + hashlib.sha256(whole).hexdigest()
    assert result.uncompressed_size == len(whole)
    assert whole.endswith(b"\x00" * 1024)  # a tar with its end-of-archive

    # the footer: a skippable frame of 40 bytes naming the TOC frame
    foot = blob[-48:]
    assert foot[:4] == b"\x50\x2a\x4d\x18" and struct.unpack("<I", foot[4:8]) == (40,)
    offset, clen, ulen, kind = struct.unpack("<QQQQ", foot[8:40])
    assert (kind, foot[40:]) == (1, b"GnUlInUx")
    # the TOC frame: inside a skippable frame that ends where the footer starts
    assert blob[offset - 8 : offset - 4] == b"\x50\x2a\x4d\x18"
    assert struct.unpack("<I", blob[offset - 4 : offset]) == (clen,)
    assert offset + clen == len(blob) - 48
    compressed = blob[offset : offset + clen]
    raw = _frame(blob, offset)
    assert len(raw) == ulen
    toc = json.loads(raw)
    assert toc["version"] == 1

    ann = result.annotations
    assert ann[estargz.TOC_DIGEST_ANNOTATION] == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert result.toc_digest == ann[estargz.TOC_DIGEST_ANNOTATION]
    assert ann[zstdchunked.MANIFEST_CHECKSUM_ANNOTATION] == (
        "sha256:" + hashlib.sha256(compressed).hexdigest()
    )
    assert ann[zstdchunked.MANIFEST_POSITION_ANNOTATION] == f"{offset}:{clen}:{ulen}:1"
    assert ann[estargz.UNCOMPRESSED_SIZE_ANNOTATION] == str(len(whole))

    # same entries, same order, same metadata as the original (plus the landmark, no TOC)
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        want = list(tar)
    with tarfile.open(fileobj=io.BytesIO(whole)) as tar:
        got = list(tar)
        contents = {m.name: tar.extractfile(m).read() for m in got if m.isreg()}  # type: ignore[union-attr]
    assert [m.name for m in got] == [estargz.NO_PREFETCH_LANDMARK] + [m.name for m in want]
    for a, b in zip(got[1:], want, strict=True):
        assert (a.type, a.mode, a.uid, a.gid, a.mtime, a.linkname, a.size) == (
            b.type, b.mode, b.uid, b.gid, b.mtime, b.linkname, b.size
        )  # fmt: skip

    entries = toc["entries"]
    files = [e for e in entries if e["type"] != "chunk"]
    assert [e["name"].rstrip("/") for e in files] == [m.name.rstrip("/") for m in got]
    # every non-empty file: its chunks start zstd frames that decompress alone to them
    check_chunks(entries, contents, chunk, lambda offset: _frame(blob, offset))


def test_an_empty_layer_is_a_valid_blob() -> None:
    blob, result = _convert(tar_bytes([], compress=False))
    with tarfile.open(fileobj=io.BytesIO(_whole(blob))) as tar:
        assert tar.getnames() == [estargz.NO_PREFETCH_LANDMARK]
    offset, _, ulen = zstdchunked.parse_footer(blob[-48:])
    assert len(_frame(blob, offset)) == ulen
    assert json.loads(_frame(blob, offset))["entries"][0]["name"] == estargz.NO_PREFETCH_LANDMARK
    assert result.entries == 0


def test_the_level_changes_the_bytes_not_the_tar() -> None:
    layer = tar_bytes(ENTRIES, compress=False)
    fast, a = _convert(layer, level=1)
    small, b = _convert(layer, level=19)
    assert a.diff_id == b.diff_id  # the TOC differs: its offsets are compressed positions
    assert len(fast) > len(small)


def test_footer_round_trip_and_refusals() -> None:
    foot = zstdchunked.footer(1234, 56, 789)
    assert zstdchunked.parse_footer(foot) == (1234, 56, 789)
    for bad in (foot[:-1], foot[:-8] + b"GnUlInUy", b"\x51" + foot[1:], estargz.footer(5)):
        with pytest.raises(AccelerateError, match="zstd:chunked footer"):
            zstdchunked.parse_footer(bad)


def test_a_zstd_input_is_refused_naming_the_format() -> None:
    layer = zstandard.ZstdCompressor().compress(tar_bytes(ENTRIES[:3], compress=False))
    with pytest.raises(AccelerateError, match=r"test layer: .*zstd:chunked"):
        _convert(layer)
