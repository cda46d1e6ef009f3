"""Generated OCI layouts are valid: skopeo reads them and pushes them with the same digests."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from tests.support import RegistryServer, skip_or_fail
from tests.support.layout import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Layout,
    MiB,
    make_layout,
)

ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])


def _skopeo() -> str:
    path = shutil.which("skopeo")
    if path is None:
        skip_or_fail("skopeo not installed (apt-get install skopeo)")
    return path


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_layout_structure_and_digests(oci_layout_factory: Callable[..., Layout]) -> None:
    layout = oci_layout_factory(layer_sizes=[3000, 70_000], seed=7)
    assert json.loads((layout.path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    top = json.loads((layout.path / "index.json").read_text())["manifests"]
    assert [d["digest"] for d in top] == [layout.index_digest]
    assert top[0]["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    for blob in layout.blobs:  # every blob's name is its content's digest
        assert _sha(layout.blob_path(blob.digest).read_bytes()) == blob.digest
        assert layout.blob_path(blob.digest).stat().st_size == blob.size
    index = json.loads(layout.blob_path(layout.index_digest).read_bytes())
    assert index["mediaType"] == OCI_INDEX
    assert {(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]} == {
        ("linux", "amd64"),
        ("linux", "arm64"),
    }
    for platform, digest in layout.manifests.items():
        manifest = json.loads(layout.blob_path(digest).read_bytes())
        config = json.loads(layout.blob_path(manifest["config"]["digest"]).read_bytes())
        assert f"{config['os']}/{config['architecture']}" == platform
        assert [layer["mediaType"] for layer in manifest["layers"]] == [OCI_LAYER] * 2
        # diff_ids are the digests of the (uncompressed) tars; each tar holds one file.
        for layer, diff_id, size in zip(
            manifest["layers"], config["rootfs"]["diff_ids"], [3000, 70_000], strict=True
        ):
            path = layout.blob_path(layer["digest"])
            assert _sha(path.read_bytes()) == diff_id
            with tarfile.open(path) as tar:
                assert [m.size for m in tar.getmembers()] == [size]
    # distinct content per platform
    assert set(layout.layers["linux/amd64"]).isdisjoint(layout.layers["linux/arm64"])


def test_same_seed_same_digests(tmp_path: Path) -> None:
    base = tmp_path
    a = make_layout(base / "a", layer_sizes=[10_000], seed=3)
    b = make_layout(base / "b", layer_sizes=[10_000], seed=3)
    c = make_layout(base / "c", layer_sizes=[10_000], seed=4)
    assert a.index_digest == b.index_digest != c.index_digest


def test_compressed_docker_media_and_variant(oci_layout_factory: Callable[..., Layout]) -> None:
    layout = oci_layout_factory(
        platforms=("linux/arm/v7",), layer_sizes=[5000], media="docker", compress=True
    )
    index = json.loads(layout.blob_path(layout.index_digest).read_bytes())
    assert index["mediaType"] == DOCKER_LIST
    assert index["manifests"][0]["platform"] == {
        "architecture": "arm",
        "os": "linux",
        "variant": "v7",
    }
    manifest = json.loads(layout.blob_path(layout.manifests["linux/arm/v7"]).read_bytes())
    layer = layout.blob_path(manifest["layers"][0]["digest"])
    assert layer.read_bytes()[:2] == b"\x1f\x8b"
    with tarfile.open(layer, "r:gz") as tar:
        assert tar.getmembers()[0].size == 5000


def test_large_layer_is_streamed(tmp_path: Path) -> None:
    """64 MiB of layer data must not need 64 MiB of memory."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    layout = make_layout(tmp_path / "big", platforms=("linux/amd64",), layer_sizes=[64 * MiB])
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert layout.total_bytes > 64 * MiB
    assert grown_kib < 32 * 1024, f"peak RSS grew by {grown_kib} KiB"


def test_skopeo_reads_the_layout(oci_layout_factory: Callable[..., Layout]) -> None:
    skopeo = _skopeo()
    layout = oci_layout_factory(layer_sizes=[1000], seed=1)
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", layout.skopeo_ref], capture_output=True, check=True
    ).stdout
    assert _sha(raw) == layout.index_digest
    assert raw == layout.blob_path(layout.index_digest).read_bytes()


@pytest.mark.registry
@pytest.mark.parametrize(
    ("media", "compress"),
    [("oci", False), ("docker", False), ("oci", True), ("docker", True)],
    ids=["oci-tar", "docker-tar", "oci-gzip", "docker-gzip"],
)
def test_skopeo_pushes_the_layout_unchanged(
    registry: RegistryServer,
    oci_layout_factory: Callable[..., Layout],
    media: str,
    compress: bool,
) -> None:
    skopeo = _skopeo()
    layout = oci_layout_factory(layer_sizes=[200_000, 1000], seed=2, media=media, compress=compress)
    # Uncompressed layers: skopeo would gzip them on the way unless told to keep digests.
    keep = [] if compress else ["--preserve-digests"]
    repo = f"layout/{media}-{'gz' if compress else 'tar'}"
    done = subprocess.run(
        [
            skopeo,
            "copy",
            "--all",
            *keep,
            "--dest-tls-verify=false",
            layout.skopeo_ref,
            f"docker://{registry.host}/{repo}:y",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr + registry.log_tail()
    answer = requests.get(
        f"{registry.url}/v2/{repo}/manifests/y", headers={"Accept": ACCEPT}, timeout=10
    )
    assert answer.status_code == 200
    assert answer.headers["Docker-Content-Digest"] == layout.index_digest
    assert _sha(answer.content) == layout.index_digest
    for digest in layout.manifests.values():
        got = requests.get(
            f"{registry.url}/v2/{repo}/manifests/{digest}",
            headers={"Accept": ACCEPT},
            timeout=10,
        )
        assert _sha(got.content) == digest
