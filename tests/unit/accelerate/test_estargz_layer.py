"""One layer to eStargz, read back with Python's gzip/zlib/tarfile as a second reader.

What the format promises is checked from the bytes, not from the converter's own values:
the footer names the TOC member; every ``reg``/``chunk`` entry's ``offset`` starts a gzip
member that decompresses on its own to exactly that chunk (``chunkDigest``); the whole
blob is one valid gzip stream whose tar holds the original entries plus the landmark and
the TOC; the TOC digest is the sha256 of the TOC bytes in the tar.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.trees import Entry, tar_bytes

from acr_ci.accelerate import estargz
from acr_ci.errors import AccelerateError

MiB = 1024 * 1024

ENTRIES = [
    Entry("./", "dir", mode=0o755),
    Entry("./etc/", "dir", mode=0o755),
    Entry("./etc/motd", data=b"hello\n", mode=0o644, uid=7, gid=8),
    Entry("./bin/run", data=b"#!/bin/sh\n" * 300, mode=0o755),
    Entry("./bin/sh", "symlink", link="run", mode=0o777),
    Entry("./bin/again", "hardlink", link="./bin/run"),
    Entry("./empty", data=b""),
    Entry("./fifo", "fifo"),
    Entry("./" + "d" * 120 + "/f", data=b"long"),
    Entry("./x", data=b"attr", xattrs=(("user.k", "v\u00e9"),)),
    Entry("./big", data=os.urandom(5 * MiB) + b"z" * (4 * MiB + 17)),
    Entry("./exact", data=b"e" * (2 * MiB)),
]


def _convert(layer: bytes, **kw: Any) -> tuple[bytes, estargz.LayerResult]:
    out = io.BytesIO()
    pieces = [layer[i : i + 77_777] for i in range(0, len(layer), 77_777)]
    result = estargz.convert(pieces, out, where="test layer", **kw)
    return out.getvalue(), result


def _member(blob: bytes, offset: int) -> bytes:
    """The one gzip member starting at ``offset``, decompressed."""
    z = zlib.decompressobj(zlib.MAX_WBITS | 16)
    data = z.decompress(blob[offset:])
    assert z.eof
    return data


def _toc(blob: bytes) -> tuple[dict[str, Any], bytes]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        member = tar.getmember(estargz.TOC_NAME)
        f = tar.extractfile(member)
        assert f is not None
        raw = f.read()
    return json.loads(raw), raw


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("chunk", [4 * MiB, 1 * MiB], ids=["4MiB", "1MiB"])
def test_layer_round_trip(compress: bool, chunk: int) -> None:
    layer = tar_bytes(ENTRIES, compress=compress)
    blob, result = _convert(layer, chunk_size=chunk)
    plain = tar_bytes(ENTRIES, compress=False)

    assert result.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert result.size == len(blob)
    whole = gzip.decompress(blob)
    assert result.diff_id == "sha256:" + hashlib.sha256(whole).hexdigest()
    assert result.uncompressed_size == len(whole)

    # the footer: 51 bytes, an empty gzip member whose extra field names the TOC member
    footer = blob[-estargz.FOOTER_SIZE :]
    assert gzip.decompress(footer) == b""
    toc_offset = int(footer[16:32], 16)
    assert footer[12:14] == b"SG" and footer[32:38] == b"STARGZ"
    toc_tar = _member(blob, toc_offset)
    head = tarfile.TarInfo.frombuf(toc_tar[:512], "utf-8", "surrogateescape")
    assert head.name == estargz.TOC_NAME
    assert toc_offset + len(gzip.compress(b"")) <= len(blob)

    toc, raw = _toc(blob)
    assert result.toc_digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert toc["version"] == 1

    # same entries, same order, same metadata as the original (plus the landmark)
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        want = list(tar)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        got = list(tar)
        contents = {m.name: tar.extractfile(m).read() for m in got if m.isreg()}  # type: ignore[union-attr]
    assert [m.name for m in got] == [estargz.NO_PREFETCH_LANDMARK] + [m.name for m in want] + [
        estargz.TOC_NAME
    ]
    for a, b in zip(got[1:-1], want, strict=True):
        assert (a.type, a.mode, a.uid, a.gid, a.mtime, a.linkname, a.size) == (
            b.type, b.mode, b.uid, b.gid, b.mtime, b.linkname, b.size
        )  # fmt: skip
        assert {k: v for k, v in a.pax_headers.items() if k.startswith("SCHILY")} == {
            k: v for k, v in b.pax_headers.items() if k.startswith("SCHILY")
        }
    assert contents[estargz.NO_PREFETCH_LANDMARK] == b"\x0f"

    entries = toc["entries"]
    files = [e for e in entries if e["type"] != "chunk"]
    assert [e["name"].rstrip("/") for e in files] == [m.name.rstrip("/") for m in got[:-1]]
    by_name = {e["name"]: e for e in files}
    assert by_name["./etc/motd"]["uid"] == 7 and by_name["./etc/motd"]["gid"] == 8
    assert by_name["./bin/sh"]["linkName"] == "run"
    assert by_name["./bin/again"]["type"] == "hardlink"
    assert by_name["./fifo"]["type"] == "fifo"
    assert by_name["./etc/"]["type"] == "dir"
    assert json.loads(json.dumps(by_name["./x"]["xattrs"])) == {
        "user.k": __import__("base64").b64encode("v\u00e9".encode()).decode()
    }
    assert "offset" not in by_name["./empty"] and "chunkDigest" not in by_name["./empty"]

    # every non-empty file: its chunks start gzip members at their offsets, in order,
    # each decompressing alone to chunkSize bytes (the last: the rest) with its digest
    del contents[estargz.TOC_NAME]
    check_chunks(entries, contents, chunk, lambda offset: _member(blob, offset))


def check_chunks(
    entries: list[dict[str, Any]],
    contents: dict[str, bytes],
    chunk: int,
    stream_at: Callable[[int], bytes],
) -> None:
    """Every non-empty file of ``contents``: its TOC entries (a ``reg``, then ``chunk``s)
    name offsets where ``stream_at`` (one compressed stream, decompressed alone) gives that
    chunk, ``chunkSize`` bytes (the last: the rest), with its ``chunkDigest``."""
    for name, data in contents.items():
        if not data:
            continue
        chunks = [e for e in entries if e["name"] == name]
        assert chunks[0]["type"] == "reg" and all(c["type"] == "chunk" for c in chunks[1:])
        assert chunks[0]["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert len(chunks) == max(1, -(-len(data) // chunk))
        pos = 0
        for i, c in enumerate(chunks):
            assert c.get("chunkOffset", 0) == pos
            last = i == len(chunks) - 1
            size = len(data) - pos if last else c["chunkSize"]
            assert ("chunkSize" in c) is not last
            piece = stream_at(c["offset"])[:size]
            assert piece == data[pos : pos + size]
            assert c["chunkDigest"] == "sha256:" + hashlib.sha256(piece).hexdigest()
            pos += size
        assert pos == len(data)


def test_same_input_same_blob() -> None:
    layer = tar_bytes(ENTRIES[:5])
    assert _convert(layer)[0] == _convert(layer)[0]


def test_a_multi_member_gzip_input_is_read_whole() -> None:
    plain = tar_bytes(ENTRIES[:6], compress=False)
    cut = 1024
    layer = gzip.compress(plain[:cut], mtime=0) + gzip.compress(plain[cut:], mtime=0)
    blob, _ = _convert(layer)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        assert len(tar.getnames()) == 6 + 2


@pytest.mark.parametrize(
    ("case", "layer", "kw", "phrase"),
    [
        ("zstd", b"\x28\xb5\x2f\xfd" + b"\0" * 600, {}, "zstd-compressed"),
        ("garbage", b"this is not a tar" * 100, {}, "not a readable tar"),
        ("gzip_cut", tar_bytes(ENTRIES[:4])[:-5], {}, "ends inside a member"),
        ("gzip_garbage_after", tar_bytes(ENTRIES[:4]) + b"junk", {}, "not a readable tar"),
        ("too_many", tar_bytes(ENTRIES[:6]), {"max_entries": 3}, "more than 3 tar entries"),
        ("has_toc", tar_bytes([Entry(estargz.TOC_NAME, data=b"{}")]), {}, "already has"),
        (
            "has_landmark",
            tar_bytes([Entry(estargz.NO_PREFETCH_LANDMARK, data=b"\x0f")]),
            {},
            "already has",
        ),
        ("chunk_zero", tar_bytes(ENTRIES[:2]), {"chunk_size": 0}, "not positive"),
    ],
)
def test_bad_layers_are_refused_in_one_line(
    case: str, layer: bytes, kw: dict[str, Any], phrase: str
) -> None:
    with pytest.raises(AccelerateError) as e:
        _convert(layer, **kw)
    assert phrase in e.value.message
    assert e.value.message.startswith("test layer: ")
    assert "\n" not in e.value.message


def test_the_input_is_read_to_its_end() -> None:
    """A digest-checking iterator below sees every chunk, even after the tar's end."""
    layer = tar_bytes(ENTRIES[:3], compress=False) + b"\0" * 10_000
    seen: list[int] = []

    def chunks() -> Any:
        for i in range(0, len(layer), 1000):
            seen.append(i)
            yield layer[i : i + 1000]

    estargz.convert(chunks(), io.BytesIO(), where="x")
    assert seen[-1] == (len(layer) - 1) // 1000 * 1000


def test_footer_round_trip() -> None:
    for offset in (0, 1, 123456789, 2**40):
        assert estargz.parse_footer(estargz.footer(offset)) == offset
    with pytest.raises(AccelerateError):
        estargz.parse_footer(b"\0" * 51)


@pytest.mark.parametrize(
    ("mtime", "modtime"),
    [(-1, "1969-12-31T23:59:59Z"), (0, "1970-01-01T00:00:00Z"), (10**15, None), (10**30, None)],
)
def test_any_mtime_converts(mtime: int, modtime: str | None) -> None:
    """A PAX mtime outside every calendar is "unknown" in the TOC, kept in the tar."""
    info = tarfile.TarInfo("f")
    info.size, info.mtime = 1, mtime
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b"x"))
    blob, _ = _convert(buf.getvalue())
    toc, _ = _toc(blob)
    [entry] = [e for e in toc["entries"] if e["name"] == "f"]
    assert entry.get("modtime") == modtime
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as before:
        want = before.getmember("f").mtime
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        assert tar.getmember("f").mtime == want


@pytest.mark.parametrize(
    ("case", "tags", "suffix", "want", "phrase"),
    [
        ("plain", ["v1", "latest"], "_accelerated", ["v1_accelerated", "latest_accelerated"], None),
        ("dedup", ["v1", "v1"], "-x", ["v1-x"], None),
        ("slash", ["v1"], "/x", None, "is not valid"),
        ("empty", ["v1"], "", None, "is not valid"),
        ("too_long", ["t" * 120], "_accelerated", None, "longer than 128"),
    ],
)
def test_suffixed_tags(
    case: str, tags: list[str], suffix: str, want: list[str] | None, phrase: str | None
) -> None:
    from acr_ci.accelerate.service import suffixed_tags
    from acr_ci.errors import UsageError

    if want is not None:
        assert suffixed_tags(tags, suffix) == want
        return
    with pytest.raises(UsageError) as e:
        suffixed_tags(tags, suffix)
    assert phrase is not None and phrase in e.value.message
