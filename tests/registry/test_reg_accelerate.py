"""``acr-ci accelerate`` against a real registry, read back by independent tools.

The twin is converted by acr-ci from a real ``docker-registry`` and checked by:

- containerd's own tools (Debian's ``containerd`` + ``ctr-remote`` from
  ``stargz-snapshotter``, on a private socket): ``images pull --plain-http`` fetches and
  unpacks it, ``images get-toc-digest`` prints, for every layer, the TOC digest the
  manifest's annotation claims, and ``--dump-toc`` lists exactly the original layer's files;
  ``images convert --estargz --oci`` of the same original lists the same files;
- ``skopeo`` copies the twin to an OCI layout whose unpacked tree (paths, contents, modes,
  owners, links) equals the original's.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support import RegistryServer
from tests.support.containerd import Containerd
from tests.support.trees import (
    Entry,
    Tree,
    apply_layer,
    layout_blob,
    make_tree_layout,
    tar_bytes,
    unpack,
)

from acr_ci.accelerate import estargz
from acr_ci.accelerate.service import FORMAT_ANNOTATION, SOURCE_ANNOTATION, accelerate
from acr_ci.cli import main
from acr_ci.registry import Client, Reference
from acr_ci.registry.media import Descriptor, Manifest

MiB = 1024 * 1024
FORMAT_FILES = {estargz.NO_PREFETCH_LANDMARK, estargz.TOC_NAME}
"""What an eStargz layer holds besides the original's files (every client unpacks them)."""


def _big(n: int, seed: str) -> bytes:
    out, block, i = bytearray(), b"", 0
    while len(out) < n:
        block = hashlib.sha256(f"{seed}{i}".encode()).digest()
        out += block * 64 if i % 3 else os.urandom(2048)
        i += 1
    return bytes(out[:n])


BASE = [
    Entry("etc/", "dir", mode=0o755),
    Entry("etc/hostname", data=b"twin\n"),
    Entry("etc/secret", data=b"s3cret\n", mode=0o600, uid=1000, gid=1000),
    Entry("bin/", "dir", mode=0o755),
    Entry("bin/tool", data=b"#!/bin/sh\necho hi\n" * 50, mode=0o4755),
    Entry("bin/sh", "symlink", link="tool", mode=0o777),
    Entry("bin/tool-again", "hardlink", link="bin/tool", mode=0o4755),
    Entry("var/", "dir", mode=0o1777),
    Entry("var/empty", data=b""),
    Entry("var/pipe", "fifo"),
    Entry("usr/share/" + "long-directory-name/" * 8 + "file.txt", data=b"long name\n"),
    Entry("data/big.bin", data=_big(9 * MiB + 123, "big"), mode=0o640),
    Entry("data/attr", data=b"x", xattrs=(("user.note", "hello"),)),
]


def _top(platform: str) -> list[Entry]:
    return [
        Entry("etc/.wh.secret"),  # a whiteout: the platform layer deletes a base file
        Entry(f"opt/{platform.replace('/', '-')}.txt", data=platform.encode() * 1000),
        Entry("etc/hostname", data=f"{platform}\n".encode()),
    ]


@pytest.fixture(scope="module")
def original(
    registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str, Reference]]:
    """A two-platform image (a shared base layer and one layer each) at accel/app:v1."""
    layout = tmp_path_factory.mktemp("original")
    digest = make_tree_layout(
        layout,
        {p: [BASE, _top(p)] for p in ("linux/amd64", "linux/arm64")},
        annotations={"org.opencontainers.image.title": "twin test"},
    )
    ref = Reference.parse(f"{registry.host}/accel/app:v1")
    with Client() as c:
        c.push_layout(layout, ref.with_tag(None), ["v1", "v2"])
    yield layout, digest, ref


@pytest.fixture(scope="module")
def twin(original: tuple[Path, str, Reference]) -> tuple[str, Manifest]:
    _, _, ref = original
    assert main(["accelerate", str(ref), "--tag", "v2", "--quiet"]) == 0
    with Client() as c:
        m = c.get_manifest(ref.with_tag("v1_accelerated"))
        assert c.tag_digest(ref.with_tag("v2_accelerated")) == m.digest
    return m.digest, m


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    daemon = Containerd(tmp_path_factory.mktemp("containerd"))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def _names(entries: list[str]) -> list[str]:
    return sorted(n.removeprefix("./").rstrip("/") for n in entries)


def _tar_names(blob: bytes) -> list[str]:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
        return [m.name for m in tar]


def _children(c: Client, ref: Reference, index: Manifest) -> list[Manifest]:
    return [c.get_manifest(ref.with_digest(d.digest)) for d in index.children()]


def test_twin_has_the_originals_shape_and_points_back(
    original: tuple[Path, str, Reference], twin: tuple[str, Manifest]
) -> None:
    layout, digest, ref = original
    _, m = twin
    original_index = json.loads(layout_blob(layout, digest))
    doc = m.json
    assert m.is_index
    assert doc["annotations"][SOURCE_ANNOTATION] == digest
    assert doc["annotations"][FORMAT_ANNOTATION] == "estargz"
    assert doc["annotations"]["org.opencontainers.image.title"] == "twin test"
    assert [e["platform"] for e in doc["manifests"]] == [
        e["platform"] for e in original_index["manifests"]
    ]
    assert [e["annotations"] for e in doc["manifests"]] == [
        e["annotations"] for e in original_index["manifests"]
    ]
    with Client() as c:
        children = _children(c, ref, m)
        layers_seen: list[list[str]] = []
        for child, entry in zip(children, original_index["manifests"], strict=True):
            cdoc = child.json
            assert cdoc["annotations"][SOURCE_ANNOTATION] == entry["digest"]
            assert cdoc["annotations"]["org.example.platform"] == str(
                entry["platform"]["os"] + "/" + entry["platform"]["architecture"]
            )
            repo = c.repository(ref)
            config_desc = child.blobs()[0]
            with repo.open_blob(config_desc) as chunks:
                config = json.loads(b"".join(chunks))
            digests = []
            for layer, diff_id in zip(cdoc["layers"], config["rootfs"]["diff_ids"], strict=True):
                desc = Descriptor(layer["mediaType"], layer["digest"], layer["size"])
                with repo.open_blob(desc) as chunks:
                    blob = b"".join(chunks)
                assert hashlib.sha256(blob).hexdigest() == layer["digest"][7:]
                raw = _gunzip(blob)
                # diff_id and uncompressed size are those of the layer's tar
                assert "sha256:" + hashlib.sha256(raw).hexdigest() == diff_id
                ann = layer["annotations"]
                assert int(ann[estargz.UNCOMPRESSED_SIZE_ANNOTATION]) == len(raw)
                assert ann[estargz.TOC_DIGEST_ANNOTATION].startswith("sha256:")
                assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
                digests.append(layer["digest"])
            layers_seen.append(digests)
    # the shared base layer was converted once: both platforms point at the same blob
    assert layers_seen[0][0] == layers_seen[1][0]
    assert layers_seen[0][1] != layers_seen[1][1]


def _gunzip(blob: bytes) -> bytes:
    """Every gzip member of ``blob``, decompressed (Python's zlib as a second reader)."""
    out, rest = bytearray(), blob
    while rest:
        z = zlib.decompressobj(zlib.MAX_WBITS | 16)
        out += z.decompress(rest)
        assert z.eof, "a gzip member is cut off"
        rest = z.unused_data
    return bytes(out)


def test_skopeo_copy_of_the_twin_unpacks_to_the_originals_files(
    original: tuple[Path, str, Reference], twin: tuple[str, Manifest], tmp_path: Path
) -> None:
    assert_skopeo_copy_unpacks_to_the_original(
        original, twin[0], "v1_accelerated", tmp_path / "twin-layout", FORMAT_FILES
    )


def assert_skopeo_copy_unpacks_to_the_original(
    original: tuple[Path, str, Reference],
    twin_digest: str,
    tag: str,
    out: Path,
    format_files: set[str],
) -> None:
    """skopeo copies the twin at ``tag`` to an OCI layout at ``out``; each platform's
    unpacked tree is the original's plus ``format_files`` (the format's own entries)."""
    layout, digest, ref = original
    subprocess.run(
        [
            "skopeo", "copy", "--all", "--src-tls-verify=false",
            f"docker://{ref.with_tag(tag)}", f"oci:{out}:twin",
        ],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    twin_index = json.loads(layout_blob(out, twin_digest))
    original_index = json.loads(layout_blob(layout, digest))
    for mine, theirs in zip(twin_index["manifests"], original_index["manifests"], strict=True):
        got: Tree = unpack(out, mine["digest"])
        want: Tree = unpack(layout, theirs["digest"])
        assert {k: v for k, v in got.items() if k not in format_files} == want
        assert set(got) - set(want) == format_files
        assert "etc/secret" not in got  # the whiteout still whites out
        assert got["bin/tool"][1] == 0o4755 and got["bin/sh"] == ("symlink", 0o777, 0, 0, "tool")


def test_containerd_pulls_the_twin_and_reads_every_toc(
    original: tuple[Path, str, Reference],
    twin: tuple[str, Manifest],
    containerd: Containerd,
) -> None:
    assert_containerd_reads_every_toc(
        original, twin[1], "v1_accelerated", containerd, [], FORMAT_FILES
    )


def assert_containerd_reads_every_toc(
    original: tuple[Path, str, Reference],
    twin: Manifest,
    tag: str,
    containerd: Containerd,
    flags: list[str],
    format_files: set[str],
) -> None:
    """containerd pulls (and unpacks) the twin at ``tag``; for every layer,
    ``get-toc-digest FLAGS`` prints the annotated TOC digest and ``--dump-toc`` lists the
    original layer's files plus ``format_files``."""
    layout, digest, ref = original
    twin_ref = str(ref.with_tag(tag))
    containerd.ctr("images", "pull", "--plain-http", "--all-platforms", twin_ref)
    containerd.ctr("images", "pull", "--plain-http", twin_ref)  # and unpack the host's one
    original_index = json.loads(layout_blob(layout, digest))
    with Client() as c:
        children = _children(c, ref, twin)
    for child, entry in zip(children, original_index["manifests"], strict=True):
        original_layers = json.loads(layout_blob(layout, entry["digest"]))["layers"]
        for layer, before in zip(child.json["layers"], original_layers, strict=True):
            claimed = layer["annotations"][estargz.TOC_DIGEST_ANNOTATION]
            get = ["images", "get-toc-digest", *flags]
            printed = containerd.ctr(*get, layer["digest"]).stdout.strip()
            assert printed == claimed
            toc = json.loads(containerd.ctr(*get, "--dump-toc", layer["digest"]).stdout)
            names = [e["name"] for e in toc["entries"] if e["type"] != "chunk"]
            files = _names(_tar_names(layout_blob(layout, before["digest"])))
            assert [n for n in _names(names) if n not in format_files] == files
            chunks = [e for e in toc["entries"] if e["name"] == "data/big.bin"]
            if files.count("data/big.bin"):
                assert len(chunks) == 3  # 9 MiB in 4 MiB chunks


def test_ctr_remote_convert_of_the_original_lists_the_same_files(
    original: tuple[Path, str, Reference],
    twin: tuple[str, Manifest],
    containerd: Containerd,
) -> None:
    assert_ctr_remote_convert_agrees(original, twin[1], containerd, "--estargz", [])


def assert_ctr_remote_convert_agrees(
    original: tuple[Path, str, Reference],
    twin: Manifest,
    containerd: Containerd,
    convert_flag: str,
    toc_flags: list[str],
) -> None:
    """``ctr-remote images convert CONVERT_FLAG --oci`` of the original gives layers whose
    ``--dump-toc`` lists the same files as the twin's, with the same annotation keys."""
    _, _, ref = original
    with Client() as c:
        ours = _children(c, ref, twin)
    src = str(ref)
    containerd.ctr("images", "pull", "--plain-http", "--all-platforms", src)
    for mine in ours:
        platform = mine.json["annotations"]["org.example.platform"]
        # one platform at a time: ctr-remote 0.12's --zstdchunked --all-platforms trips over
        # the layer both platforms share (its temporary uncompressed copy removed twice)
        converted = f"acr-ci.test/converted{convert_flag}-{platform.replace('/', '-')}:v1"
        containerd.ctr(
            "images", "convert", convert_flag, "--oci", "--platform", platform, src, converted
        )
        theirs = json.loads(
            containerd.ctr(
                "content", "get", _platform_manifest(containerd, converted, platform)
            ).stdout
        )
        for a, b in zip(mine.json["layers"], theirs["layers"], strict=True):
            assert (a["mediaType"], sorted(a["annotations"])) == (
                b["mediaType"],
                sorted(b["annotations"]),
            )
            get = ["images", "get-toc-digest", *toc_flags, "--dump-toc"]
            dumps = [json.loads(containerd.ctr(*get, d).stdout) for d in (a["digest"], b["digest"])]
            names = [sorted(e["name"] for e in t["entries"] if e["type"] != "chunk") for t in dumps]
            assert _names(names[0]) == _names(names[1])

def _platform_manifest(containerd: Containerd, image: str, platform: str) -> str:
    listing = containerd.ctr("images", "ls").stdout.splitlines()
    target = next(line.split()[2] for line in listing[1:] if line.split()[0] == image)
    index = json.loads(containerd.ctr("content", "get", target).stdout)
    os_name, arch = platform.split("/")
    return next(
        e["digest"]
        for e in index["manifests"]
        if e["platform"]["os"] == os_name and e["platform"]["architecture"] == arch
    )


def test_an_estargz_image_is_kept_as_it_is(
    original: tuple[Path, str, Reference], twin: tuple[str, Manifest]
) -> None:
    _, _, ref = original
    with Client() as c:
        again = accelerate(c, ref.with_tag("v1_accelerated"), ["again"])
        first = [child.json["layers"] for child in _children(c, ref, twin[1])]
        second = [
            child.json["layers"]
            for child in _children(c, ref, c.get_manifest(ref.with_tag("again")))
        ]
    assert (
        again.layers_converted == 0 and again.layers_kept == 3
    )  # distinct: the base layer is shared
    assert first == second


def test_a_single_docker_manifest_gets_a_single_docker_manifest(
    registry: RegistryServer, tmp_path: Path
) -> None:
    from tests.support.layout import make_layout

    layout = make_layout(
        tmp_path / "docker",
        platforms=("linux/amd64",),
        layer_sizes=(300 * 1024, 5 * MiB),
        media="docker",
        compress=True,
        wrap_index=False,
    )
    ref = Reference.parse(f"{registry.host}/accel/docker:one")
    with Client() as c:
        c.push_layout(layout.path, ref.with_tag(None), ["one"])
        result = accelerate(c, ref, ["one_fast"])
        m = c.get_manifest(ref.with_tag("one_fast"))
    assert result.digest == m.digest and not m.is_index
    assert m.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert {lay["mediaType"] for lay in m.json["layers"]} == {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    }
    out = tmp_path / "copy"
    subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref.with_tag('one_fast')}",
         f"oci:{out}:x"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    index = json.loads((out / "index.json").read_text())
    got = unpack(out, index["manifests"][0]["digest"])
    want: Tree = {}
    for layer in json.loads(layout_blob(layout.path, layout.index_digest))["layers"]:
        apply_layer(want, layout_blob(layout.path, layer["digest"]))
    assert {k: v for k, v in got.items() if k not in FORMAT_FILES} == want


def test_immutable_suffixed_tags_do_not_move(
    original: tuple[Path, str, Reference], twin: tuple[str, Manifest], tmp_path: Path
) -> None:
    _, digest, ref = original
    cfg = tmp_path / "acr.yml"
    cfg.write_text(f"version: 1\nimage: {ref.name}\nimmutable_tags: true\n")
    with Client() as c:
        c.put_manifest(ref.with_tag(None), c.get_manifest(ref), ["v3_accelerated"])
    assert main(["accelerate", str(ref.with_tag("v3")), "--config", str(cfg), "--quiet"]) == 1
    with Client() as c:
        assert c.tag_digest(ref.with_tag("v3_accelerated")) == digest
    # the same twin again under tags it already has is no move
    assert main(["accelerate", str(ref), "--config", str(cfg), "--quiet"]) == 0
    with Client() as c:
        assert c.tag_digest(ref.with_tag("v1_accelerated")) == twin[0]


def test_config_suffix_and_by_digest(
    original: tuple[Path, str, Reference], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, digest, ref = original
    pinned = str(ref.with_tag(None).with_digest(digest))
    assert main(["accelerate", pinned, "--quiet"]) == 2
    assert "--tag" in capsys.readouterr().err
    cfg = tmp_path / "acr.yml"
    cfg.write_text(f"version: 1\nimage: {ref.name}\naccelerate:\n  suffix: -lazy\n")
    assert main(["accelerate", pinned, "--tag", "v9", "--config", str(cfg), "--quiet"]) == 0
    printed = capsys.readouterr().out.strip()
    with Client() as c:
        assert c.tag_digest(ref.with_tag("v9-lazy")) == printed


def test_a_broken_layer_fails_and_pushes_nothing(
    registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = tmp_path / "broken"
    _bad_layout(layout, tar_bytes([Entry("x", data=b"x" * 4096)])[:-6])  # a cut-off gzip
    ref = Reference.parse(f"{registry.host}/accel/broken:v1")
    with Client() as c:
        c.push_layout(layout, ref.with_tag(None), ["v1"])
    assert main(["accelerate", str(ref), "--quiet"]) == 1
    assert "accel/broken" in capsys.readouterr().err
    with Client() as c:
        assert c.tag_digest(ref.with_tag("v1_accelerated")) is None


@pytest.mark.parametrize(
    ("case", "media_type", "diff_ids", "phrase"),
    [
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd", 1, "cannot be converted"),
        ("diff_ids", "application/vnd.oci.image.layer.v1.tar+gzip", 2, "2 diff_ids for 1 layers"),
    ],
)
def test_images_that_cannot_be_converted_are_refused_in_one_line(
    registry: RegistryServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    media_type: str,
    diff_ids: int,
    phrase: str,
) -> None:
    layout = tmp_path / case
    _bad_layout(
        layout, tar_bytes([Entry("x", data=b"x")]), media_type=media_type, diff_ids=diff_ids
    )
    ref = Reference.parse(f"{registry.host}/accel/refused-{case.replace('_', '-')}:v1")
    with Client() as c:
        c.push_layout(layout, ref.with_tag(None), ["v1"])
    assert main(["accelerate", str(ref), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert phrase in err and "Traceback" not in err
    with Client() as c:
        assert c.tag_digest(ref.with_tag("v1_accelerated")) is None


def _bad_layout(
    layout: Path,
    layer: bytes,
    *,
    media_type: str = "application/vnd.oci.image.layer.v1.tar+gzip",
    diff_ids: int = 1,
) -> None:
    """A one-platform layout whose only layer is ``layer`` (whatever bytes)."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data: bytes) -> dict[str, object]:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64] * diff_ids},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config)},
            "layers": [{"mediaType": media_type, **put(layer)}],
        }
    ).encode()
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **put(manifest)}
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {**desc, "annotations": {"org.opencontainers.image.ref.name": "latest"}}
                ],
            }
        )
    )
