"""``acr-ci accelerate --format zstd-chunked`` against a real registry, read back by
independent tools (the same image as ``test_reg_accelerate``):

- containerd's own tools: ``ctr-remote images pull --plain-http`` fetches and unpacks the
  twin; ``images get-toc-digest --zstdchunked`` prints, for every layer, the TOC digest
  the descriptor's annotation claims, and ``--dump-toc`` lists exactly the original
  layer's files (plus the landmark);
- the ``zstandard`` package and ``tarfile`` read every layer to the original's entries, the
  sha256 of the decompressed tar being the config's diff_id;
- ``skopeo`` copies the twin to an OCI layout whose unpacked tree equals the original's.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from tests.registry.test_reg_accelerate import (  # noqa: F401 (fixtures)
    _children,
    _names,
    _tar_names,
    assert_containerd_reads_every_toc,
    assert_ctr_remote_convert_agrees,
    assert_skopeo_copy_unpacks_to_the_original,
    containerd,
    original,
)
from tests.support import RegistryServer
from tests.support.containerd import Containerd
from tests.support.trees import layout_blob, unzstd

from acr_ci.accelerate import estargz, zstdchunked
from acr_ci.accelerate.service import FORMAT_ANNOTATION, SOURCE_ANNOTATION, accelerate
from acr_ci.cli import main
from acr_ci.registry import Client, Reference
from acr_ci.registry.media import Descriptor, Manifest

SUFFIX = "_zstd"
LANDMARK = {estargz.NO_PREFETCH_LANDMARK}
"""What a zstd:chunked layer holds besides the original's files (its TOC is no tar entry)."""


@pytest.fixture(scope="module")
def ztwin(original: tuple[Path, str, Reference]) -> tuple[str, Manifest]:  # noqa: F811
    _, _, ref = original
    argv = ["accelerate", str(ref), "--format", "zstd-chunked", "--suffix", SUFFIX, "--quiet"]
    assert main(argv) == 0
    with Client() as c:
        m = c.get_manifest(ref.with_tag("v1" + SUFFIX))
    return m.digest, m


def _blob(c: Client, ref: Reference, layer: dict[str, object]) -> bytes:
    desc = Descriptor(str(layer["mediaType"]), str(layer["digest"]), int(str(layer["size"])))
    with c.repository(ref).open_blob(desc) as chunks:
        return b"".join(chunks)


def test_zstd_twin_layers_read_with_an_ordinary_zstd_reader(
    original: tuple[Path, str, Reference],  # noqa: F811
    ztwin: tuple[str, Manifest],
) -> None:
    layout, digest, ref = original
    _, m = ztwin
    original_index = json.loads(layout_blob(layout, digest))
    assert m.is_index and m.json["annotations"][FORMAT_ANNOTATION] == "zstd-chunked"
    assert m.json["annotations"][SOURCE_ANNOTATION] == digest
    layers_seen: list[list[str]] = []
    with Client() as c:
        for child, entry in zip(_children(c, ref, m), original_index["manifests"], strict=True):
            assert child.json["annotations"][SOURCE_ANNOTATION] == entry["digest"]
            original_layers = json.loads(layout_blob(layout, entry["digest"]))["layers"]
            with c.repository(ref).open_blob(child.blobs()[0]) as chunks:
                config = json.loads(b"".join(chunks))
            layers = child.json["layers"]
            for layer, diff_id, before in zip(
                layers, config["rootfs"]["diff_ids"], original_layers, strict=True
            ):
                assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
                blob = _blob(c, ref, layer)
                raw = unzstd(blob)
                assert "sha256:" + hashlib.sha256(raw).hexdigest() == diff_id
                ann = layer["annotations"]
                assert int(ann[estargz.UNCOMPRESSED_SIZE_ANNOTATION]) == len(raw)
                # the position annotation names the compressed TOC its checksum is of
                off, clen, ulen, kind = map(
                    int, ann[zstdchunked.MANIFEST_POSITION_ANNOTATION].split(":")
                )
                assert kind == 1
                toc_frame = blob[off : off + clen]
                assert ann[zstdchunked.MANIFEST_CHECKSUM_ANNOTATION] == (
                    "sha256:" + hashlib.sha256(toc_frame).hexdigest()
                )
                toc = unzstd(toc_frame)
                assert len(toc) == ulen
                assert (
                    ann[estargz.TOC_DIGEST_ANNOTATION]
                    == "sha256:" + hashlib.sha256(toc).hexdigest()
                )
                with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
                    names = tar.getnames()
                want = _names(_tar_names(layout_blob(layout, before["digest"])))
                assert _names([n for n in names if n not in LANDMARK]) == want
            layers_seen.append([lay["digest"] for lay in layers])
    assert layers_seen[0][0] == layers_seen[1][0]  # the shared base layer: converted once


def test_containerd_reads_every_zstd_toc(
    original: tuple[Path, str, Reference],  # noqa: F811
    ztwin: tuple[str, Manifest],
    containerd: Containerd,  # noqa: F811
) -> None:
    assert_containerd_reads_every_toc(
        original, ztwin[1], "v1" + SUFFIX, containerd, ["--zstdchunked"], LANDMARK
    )


def test_skopeo_copy_of_the_zstd_twin_unpacks_to_the_originals_files(
    original: tuple[Path, str, Reference],  # noqa: F811
    ztwin: tuple[str, Manifest],
    tmp_path: Path,
) -> None:
    assert_skopeo_copy_unpacks_to_the_original(
        original, ztwin[0], "v1" + SUFFIX, tmp_path / "ztwin-layout", LANDMARK
    )


def test_ctr_remote_convert_zstdchunked_of_the_original_agrees(
    original: tuple[Path, str, Reference],  # noqa: F811
    ztwin: tuple[str, Manifest],
    containerd: Containerd,  # noqa: F811
) -> None:
    assert_ctr_remote_convert_agrees(
        original, ztwin[1], containerd, "--zstdchunked", ["--zstdchunked"]
    )


def test_a_zstd_chunked_image_is_kept_and_estargz_refuses_it(
    original: tuple[Path, str, Reference],  # noqa: F811
    ztwin: tuple[str, Manifest],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from acr_ci.accelerate.service import Format

    _, _, ref = original
    zref = ref.with_tag("v1" + SUFFIX)
    with Client() as c:
        again = accelerate(c, zref, ["zagain"], fmt=Format.ZSTD_CHUNKED)
        assert again.layers_converted == 0 and again.layers_kept == 3
        first = [ch.json["layers"] for ch in _children(c, ref, ztwin[1])]
        second = [
            ch.json["layers"] for ch in _children(c, ref, c.get_manifest(ref.with_tag("zagain")))
        ]
    assert first == second
    # an eStargz twin of a zstd:chunked image: its zstd layers are refused in one line
    assert main(["accelerate", str(zref), "--format", "estargz", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "cannot be converted to eStargz" in err and "Traceback" not in err
    with Client() as c:
        assert c.tag_digest(ref.with_tag("v1" + SUFFIX + "_accelerated")) is None


def test_a_docker_manifest_is_refused_in_one_line_and_gets_no_twin(
    registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.layout import make_layout

    layout = make_layout(
        tmp_path / "docker",
        platforms=("linux/amd64",),
        layer_sizes=(300 * 1024,),
        media="docker",
        compress=True,
        wrap_index=False,
    )
    ref = Reference.parse(f"{registry.host}/accel/zdocker:one")
    with Client() as c:
        c.push_layout(layout.path, ref.with_tag(None), ["one"])
    assert main(["accelerate", str(ref), "--format", "zstd-chunked", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Docker schema 2 manifest" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2  # the message and its hint
    with Client() as c:
        assert c.tag_digest(ref.with_tag("one_accelerated")) is None
        # eStargz of the same image is fine
        assert main(["accelerate", str(ref), "--quiet"]) == 0
        assert c.tag_digest(ref.with_tag("one_accelerated")) is not None
