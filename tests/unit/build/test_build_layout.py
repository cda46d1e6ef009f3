"""finish_layout: annotations on the index and every manifest, labels on every config."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from tests.support.buildenv import write_busybox_layout

from acr_ci.build.layout import finish_layout
from acr_ci.errors import BuildError

ANN = {
    "org.opencontainers.image.revision": "abc",
    "org.opencontainers.image.version": "v1",
    "org.opencontainers.image.ref.name": "v1",
}


def blob(layout: Path, digest: str) -> dict[str, Any]:
    data = (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    doc: dict[str, Any] = json.loads(data)
    return doc


def fake_layout(tmp_path: Path, arches: tuple[str, ...] = ("amd64", "arm64")) -> Path:
    binaries = {}
    for arch in arches:
        path = tmp_path / f"bb-{arch}"
        path.write_bytes(f"not really busybox for {arch}".encode())
        binaries[arch] = path
    return write_busybox_layout(tmp_path / "layout", binaries, applets=["sh"]).path


def all_blobs_referenced(layout: Path, top: dict[str, Any]) -> None:
    wanted: set[str] = set()
    for d in top["manifests"]:
        wanted.add(d["digest"])
        index = blob(layout, d["digest"])
        for m in index["manifests"]:
            wanted.add(m["digest"])
            manifest = blob(layout, m["digest"])
            wanted.add(manifest["config"]["digest"])
            wanted.update(layer["digest"] for layer in manifest["layers"])
    present = {"sha256:" + p.name for p in (layout / "blobs" / "sha256").iterdir()}
    assert present == wanted, "replaced blobs are removed, nothing referenced is missing"


def test_stamps_index_manifests_and_configs(tmp_path: Path) -> None:
    layout = fake_layout(tmp_path)
    digest, platforms = finish_layout(layout, ANN, ("linux/amd64", "linux/arm64"))
    top = json.loads((layout / "index.json").read_text())
    assert top["manifests"] == [
        {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": (layout / "blobs/sha256" / digest.split(":")[1]).stat().st_size,
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }
    ]
    index = blob(layout, digest)
    assert index["annotations"] == ANN
    assert set(platforms) == {"linux/amd64", "linux/arm64"}
    for m in index["manifests"]:
        manifest = blob(layout, m["digest"])
        assert manifest["annotations"] == ANN
        config = blob(layout, manifest["config"]["digest"])
        assert config["config"]["Labels"] == ANN
        assert platforms[f"linux/{config['architecture']}"] == m["digest"]
    all_blobs_referenced(layout, top)
    # a second pass has nothing left to do: same digests
    assert finish_layout(layout, ANN, ("linux/amd64",)) == (digest, platforms)


def test_single_manifest_layout_is_wrapped_in_an_index(tmp_path: Path) -> None:
    layout = fake_layout(tmp_path, ("arm64",))
    top = json.loads((layout / "index.json").read_text())
    index = blob(layout, top["manifests"][0]["digest"])
    # make it look like buildx's single-platform OCI export: index.json → the manifest
    top["manifests"] = [{k: v for k, v in index["manifests"][0].items() if k != "platform"}]
    (layout / "index.json").write_text(json.dumps(top))
    digest, platforms = finish_layout(layout, ANN, ("linux/arm64",))
    assert list(platforms) == ["linux/arm64"]
    assert blob(layout, digest)["manifests"][0]["platform"] == {"architecture": "arm64", "os": "linux"}


@pytest.mark.parametrize(
    ("case", "mutate", "message"),
    [
        ("missing-platform", None, "lacks platform(s) linux/s390x"),
        ("no-index-json", "delete", "wrote no OCI layout"),
        ("two-images", "duplicate", "exactly one image index, found 2"),
    ],
)
def test_bad_layouts(tmp_path: Path, case: str, mutate: str | None, message: str) -> None:
    layout = fake_layout(tmp_path)
    if mutate == "delete":
        (layout / "index.json").unlink()
    elif mutate == "duplicate":
        top = json.loads((layout / "index.json").read_text())
        top["manifests"] *= 2
        (layout / "index.json").write_text(json.dumps(top))
    with pytest.raises(BuildError, match=message.replace("(", r"\(").replace(")", r"\)")):
        finish_layout(layout, ANN, ("linux/amd64", "linux/s390x"))


@pytest.mark.parametrize("kind", ["manifest", "config"])
def test_corrupt_blob_is_a_build_error(tmp_path: Path, kind: str) -> None:
    layout = fake_layout(tmp_path)
    top = json.loads((layout / "index.json").read_text())
    entry = blob(layout, top["manifests"][0]["digest"])["manifests"][0]
    digest = entry["digest"] if kind == "manifest" else blob(layout, entry["digest"])["config"]["digest"]
    (layout / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(b"{}")
    with pytest.raises(BuildError, match=f"OCI layout .* is not usable: .*blob {digest}"):
        finish_layout(layout, ANN, ("linux/amd64",))
