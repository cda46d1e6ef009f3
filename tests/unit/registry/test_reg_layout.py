"""OCI layouts on disk (read, write, which image a bare ``oci-layout:DIR`` means), layout→layout
copies, and progress output."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.layout import Layout

from acr_ci.errors import DigestMismatchError, NotFoundError, UnsupportedError, UsageError
from acr_ci.registry import Client, LayoutReference
from acr_ci.registry.copy import Copier
from acr_ci.registry.layout import OciLayout
from acr_ci.registry.media import OCI_MANIFEST, Descriptor, Manifest, sha256_digest
from acr_ci.registry.progress import StreamProgress
from acr_ci.registry.store import verified

LayoutFactory = Callable[..., Layout]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _rewrite_index(path: Path, manifests: list[dict[str, object]]) -> None:
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))


def test_default_image_is_the_only_entry(oci_layout_factory: LayoutFactory) -> None:
    made = oci_layout_factory(seed=1)
    layout = OciLayout(made.path)
    assert layout.get_manifest("").digest == made.index_digest
    assert layout.get_manifest("latest").digest == made.index_digest
    assert layout.list_tags() == ["latest"]


def test_platform_entries_mean_index_json_itself(oci_layout_factory: LayoutFactory) -> None:
    made = oci_layout_factory(seed=2)
    index = json.loads(made.blob_path(made.index_digest).read_bytes())
    _rewrite_index(made.path, index["manifests"])  # builders may write per-platform entries directly
    m = OciLayout(made.path).get_manifest("")
    assert m.is_index
    assert sorted(c.digest for c in m.children()) == sorted(made.manifests.values())
    assert m.digest == sha((made.path / "index.json").read_bytes())


def test_several_named_images_need_a_tag(oci_layout_factory: LayoutFactory) -> None:
    made = oci_layout_factory(seed=3)
    entry = json.loads((made.path / "index.json").read_text())["manifests"][0]
    other = dict(entry, annotations={"org.opencontainers.image.ref.name": "other"})
    _rewrite_index(made.path, [entry, other])
    layout = OciLayout(made.path)
    with pytest.raises(UsageError) as info:
        layout.get_manifest("")
    assert "latest" in (info.value.hint or "") and "other" in (info.value.hint or "")
    with pytest.raises(NotFoundError):
        layout.get_manifest("missing")


def test_empty_and_missing_layouts(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        OciLayout(tmp_path / "nope")
    assert "no index.json" in info.value.message
    empty = OciLayout(tmp_path / "new", create=True)
    assert json.loads((tmp_path / "new" / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    with pytest.raises(NotFoundError):
        empty.get_manifest("")


def test_tags_are_replaced_not_duplicated(tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "l", create=True)
    for n in (1, 2):
        data = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
            "mediaType": "application/vnd.oci.empty.v1+json", "digest": sha(b"{}"), "size": 2}, "layers": [],
            "n": n}).encode()
        layout.put_manifest(Manifest(data, OCI_MANIFEST, sha256_digest(data)), "v1")
    entries = layout.entries()
    assert len(entries) == 1
    assert layout.get_manifest("v1").json["n"] == 2


def test_bad_blob_leaves_nothing(tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "l", create=True)
    desc = Descriptor("application/octet-stream", sha(b"right"), 5)
    with pytest.raises(DigestMismatchError):
        layout.put_blob(desc, verified([b"wrong"], desc, "test"))
    assert not layout.has_blob(desc)
    assert [p.name for p in (tmp_path / "l" / "blobs" / "sha256").iterdir()] == []


def test_set_entries_read_blob_and_delete_blob(tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "l", create=True)
    config = b'{"architecture":"amd64","os":"linux"}'
    desc = Descriptor("application/vnd.oci.image.config.v1+json", sha(config), len(config))
    layout.put_blob(desc, [config])
    assert layout.read_blob(desc) == config
    with pytest.raises(DigestMismatchError):
        layout.read_blob(Descriptor(desc.media_type, desc.digest, len(config) - 1))
    with pytest.raises(UnsupportedError, match="more than the 8"):
        layout.read_blob(desc, limit=8)
    named = Descriptor(OCI_MANIFEST, desc.digest, desc.size, annotations={"org.opencontainers.image.ref.name": "v1"})
    layout.set_entries([named, named])
    layout.set_entries([named])
    top = json.loads((tmp_path / "l" / "index.json").read_text())
    assert top["schemaVersion"] == 2 and top["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert top["manifests"] == [named.to_json()]
    assert layout.list_tags() == ["v1"]
    layout.delete_blob(desc.digest)
    layout.delete_blob(desc.digest)  # gone already: no error
    assert not layout.has_blob(desc)


def test_layout_to_layout_copy_and_rerun(oci_layout_factory: LayoutFactory, tmp_path: Path) -> None:
    made = oci_layout_factory(seed=4, platforms=["linux/amd64", "linux/arm64", "linux/s390x"])
    with Client() as c:
        first = c.copy(LayoutReference(str(made.path)), LayoutReference(str(tmp_path / "out"), "v1"))
        second = c.copy(LayoutReference(str(made.path)), LayoutReference(str(tmp_path / "out"), "v1"))
    assert first.digest == second.digest == made.index_digest
    assert second.bytes_sent == 0 and second.blobs_copied == 0
    for blob in made.blobs:
        copied = tmp_path / "out" / "blobs" / "sha256" / blob.digest.split(":")[1]
        assert sha(copied.read_bytes()) == blob.digest
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [made.index_digest]


def test_layout_referrers_by_subject(oci_layout_factory: LayoutFactory, tmp_path: Path) -> None:
    made = oci_layout_factory(seed=5)
    src = OciLayout(made.path)
    subject = src.get_manifest("")
    data = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x-sig",
                       "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha(b"{}"),
                                  "size": 2},
                       "layers": [], "subject": {"mediaType": subject.media_type, "digest": subject.digest,
                                                 "size": subject.size}}).encode()
    src.put_blob(Descriptor("application/vnd.oci.empty.v1+json", sha(b"{}"), 2), [b"{}"])
    sig = Manifest(data, OCI_MANIFEST, sha256_digest(data))
    src.put_manifest(sig, sig.digest, top_level=True)
    assert [d.digest for d in src.referrers(subject.digest)] == [sig.digest]
    dst = OciLayout(tmp_path / "dst", create=True)
    result = Copier(src, dst).copy("latest", ["latest"], referrers=True)
    assert result.referrers == (sig.digest,)
    assert [d.digest for d in dst.referrers(subject.digest)] == [sig.digest]
    assert dst.get_manifest(sig.digest).data == data


@pytest.mark.parametrize("live", [False, True], ids=["log", "terminal"])
def test_progress_lines(live: bool) -> None:
    out = io.StringIO()
    p = StreamProgress(out, live=live, interval=0.0)
    p.started("sha256:" + "a" * 64, 2048)
    p.advanced("sha256:" + "a" * 64, 1024)
    p.advanced("sha256:" + "a" * 64, 1024)
    p.finished("sha256:" + "a" * 64, "copied")
    p.started("sha256:" + "b" * 64, 10)
    p.finished("sha256:" + "b" * 64, "exists")
    text = out.getvalue()
    assert "aaaaaaaaaaaa: copied 2.0 KiB" in text
    assert "bbbbbbbbbbbb: already there" in text
    if live:
        assert "\x1b[2K" in text and ("50.0%" in text or "100.0%" in text)
    else:
        assert "\x1b" not in text and len(text.splitlines()) == 2
