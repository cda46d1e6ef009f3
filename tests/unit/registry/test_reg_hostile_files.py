"""Hostile files: deep or huge JSON, devices and FIFOs where a layout or a docker config
should be, a non-ASCII ``auth``, a config blob that is not what its descriptor says."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.layout import Layout

from acr_ci.errors import AcrError, DigestMismatchError, UnsupportedError, UsageError
from acr_ci.fileio import read_bounded
from acr_ci.jsonload import MAX_DEPTH, json_depth, loads_bounded
from acr_ci.registry import Client, LayoutReference
from acr_ci.registry.auth import DockerConfigCredentials
from acr_ci.registry.layout import OciLayout
from acr_ci.registry.media import Manifest

LayoutFactory = Callable[..., Layout]
DEEP = b"[" * 200_000 + b"]" * 200_000


# -- the bounded JSON loader ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "depth"),
    [(b"{}", 1), (b"1", 0), (b'{"a": [1, {"b": "[[[\\"["}]}', 3), (b'"[[[["', 0), (DEEP, 200_000)],
)
def test_json_depth(data: bytes, depth: int) -> None:
    assert json_depth(data) == depth


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (DEEP, "nested 200000 levels deep"),
        (b"{" * 200_000, "nested"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested"),
        (b'{"a": "' + b"x" * 100 + b'"}', "larger than 64 bytes"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1" + b"0" * 5000 + b"]", "not valid JSON"),  # Python's int digit limit
        (b"{nope", "not valid JSON (line 1)"),
    ],
)
def test_loads_bounded_refuses_cleanly(data: bytes, text: str) -> None:
    with pytest.raises(UnsupportedError) as info:
        loads_bounded(data, what="doc", max_bytes=64 if b"x" * 100 in data else 4 << 20)
    assert text in info.value.message and info.value.message.startswith("doc ")


def test_loads_bounded_takes_text_and_the_caller_s_error() -> None:
    assert loads_bounded('{"a": [1, 2]}', what="doc") == {"a": [1, 2]}
    assert loads_bounded(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, what="doc") is not None
    with pytest.raises(UsageError) as info:
        loads_bounded("[" * 5000, what="report r.json", error=UsageError, hint="fix it")
    assert info.value.hint == "fix it"


def test_deep_manifest_is_refused() -> None:
    with pytest.raises(UnsupportedError) as info:
        Manifest.from_bytes(b'{"manifests": ' + DEEP[:4000] + b"}", None, where="m")
    assert "nested" in info.value.message


# -- bounded file reads -----------------------------------------------------------------------


def test_read_bounded_refuses_devices_fifos_and_big_files(tmp_path: Path) -> None:
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    ok = tmp_path / "ok"
    ok.write_bytes(b"x" * 100)
    link = tmp_path / "link"
    link.symlink_to(ok)
    for path, text in (
        (zero, "not a regular file"),
        (fifo, "not a regular file"),
        (big, "larger than 100 bytes"),
        (tmp_path, "not a regular file"),
    ):
        with pytest.raises(UsageError) as info:
            read_bounded(path, limit=100, what="thing", error=UsageError)
        assert text in info.value.message and str(path) in info.value.message
    assert read_bounded(link, limit=100, what="thing", error=UsageError) == b"x" * 100
    with pytest.raises(FileNotFoundError):
        read_bounded(tmp_path / "absent", limit=100, what="thing", error=UsageError)


# -- docker config ----------------------------------------------------------------------------


def _config(tmp_path: Path, doc: object | bytes) -> Path:
    path = tmp_path / "config.json"
    path.write_bytes(
        doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False).encode()
    )
    return path


@pytest.mark.parametrize(
    ("doc", "text"),
    [
        ({"auths": {"r.io": {"auth": "dXNlcjpwYXNz\u00e9"}}}, "not base64 of user:password"),
        ({"auths": {"r.io": {"auth": "\u00fc\u00f1\u00ee"}}}, "not base64 of user:password"),
        ({"auths": {"r.io": {"auth": base64.b64encode(b"\xff\xfe:pw").decode()}}}, "not base64"),
        (b'{"auths": ' + DEEP + b"}", "nested"),
        (b"\xff\xfe{}", "not valid JSON"),
    ],
    ids=["non-ascii-in-base64", "non-ascii", "non-utf8-inside", "deep", "not-utf8"],
)
def test_hostile_docker_config_is_a_usage_error_naming_the_file(
    tmp_path: Path, doc: object | bytes, text: str
) -> None:
    path = _config(tmp_path, doc)
    with pytest.raises(UsageError) as info:
        DockerConfigCredentials(paths=[path]).get("r.io")
    assert text in info.value.message and str(path) in info.value.message


def test_docker_config_that_is_dev_zero_or_a_fifo(tmp_path: Path) -> None:
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for path in (zero, fifo):
        with pytest.raises(UsageError) as info:
            DockerConfigCredentials(paths=[path]).get("r.io")
        assert "not a regular file" in info.value.message


# -- OCI layouts ------------------------------------------------------------------------------


def test_layout_index_that_is_dev_zero_or_deep(oci_layout_factory: LayoutFactory) -> None:
    made = oci_layout_factory(seed=11)
    index = made.path / "index.json"
    index.unlink()
    index.symlink_to("/dev/zero")
    with pytest.raises(UsageError) as info:
        OciLayout(made.path).get_manifest("")
    assert "no index.json" in info.value.message  # refused before any read
    index.unlink()
    index.write_bytes(b" " * (5 * 1024 * 1024))
    with pytest.raises(UsageError) as info:
        OciLayout(made.path).get_manifest("")
    assert "larger than" in info.value.message
    index.unlink()
    index.write_bytes(b'{"manifests": ' + DEEP + b"}")
    with pytest.raises(UnsupportedError) as info2:
        OciLayout(made.path).get_manifest("")
    assert "nested" in info2.value.message


def test_layout_manifest_blob_that_is_dev_zero(oci_layout_factory: LayoutFactory) -> None:
    made = oci_layout_factory(seed=12)
    blob = made.blob_path(made.index_digest)
    blob.unlink()
    blob.symlink_to("/dev/zero")
    with pytest.raises(UnsupportedError) as info:
        OciLayout(made.path).get_manifest("")
    assert "not a regular file" in info.value.message


def test_layout_layer_that_is_a_fifo_does_not_hang(
    oci_layout_factory: LayoutFactory, tmp_path: Path
) -> None:
    made = oci_layout_factory(seed=13)
    layer = made.blob_path(next(iter(made.layers.values()))[0])
    layer.unlink()
    os.mkfifo(layer)
    result: list[BaseException | None] = []

    def run() -> None:
        try:
            with Client() as c:
                c.copy(LayoutReference(str(made.path)), LayoutReference(str(tmp_path / "out")))
            result.append(None)
        except BaseException as e:
            result.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "the copy hung on a FIFO"
    assert isinstance(result[0], AcrError) and "not a regular file" in result[0].message


def test_inspect_verifies_the_config_blob(oci_layout_factory: LayoutFactory) -> None:
    from acr_ci.cli._registry import inspect

    made = oci_layout_factory(seed=14, platforms=["linux/amd64"], wrap_index=False)
    config = made.blob_path(next(iter(made.configs.values())))
    size = config.stat().st_size
    config.write_bytes(b"{" + b" " * (size - 2) + b"}")  # same size, other content
    with Client() as c, pytest.raises(DigestMismatchError):
        inspect(c, LayoutReference(str(made.path)), raw=False)
    config.write_bytes(b" " * (300 * 1024))  # far more than its descriptor says
    with Client() as c, pytest.raises(DigestMismatchError):
        inspect(c, LayoutReference(str(made.path)), raw=False)
