"""Reading and finishing the OCI image layouts builders write.

After a builder wrote its layout, :func:`finish_layout` makes it what the rest of the
chain expects: ``index.json`` holds exactly one descriptor, an image index over one
manifest per platform; the index carries the image annotations (builders such as
buildah 1.28 cannot set index annotations, so the index blob is rewritten here — its
digest changes, the manifests' do not); the descriptor in ``index.json`` carries
``org.opencontainers.image.ref.name`` (the first tag), as the layout spec intends.

Only that assembling is here: reading and writing the layout (``index.json``, verified
blobs) is :class:`~acr_ci.registry.layout.OciLayout`, the store pushes copy from, and
media types and descriptors are :mod:`acr_ci.registry.media`'s. New blobs are compact
JSON, so the same input gives the same digests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from acr_ci.annotations import REF_NAME
from acr_ci.errors import BuildError, RegistryError
from acr_ci.jsonload import loads_bounded
from acr_ci.registry.layout import OciLayout
from acr_ci.registry.media import (
    IMAGE_TYPES,
    INDEX_TYPES,
    OCI_INDEX,
    Descriptor,
    Platform,
    sha256_digest,
)

_T = TypeVar("_T")


@contextmanager
def _layout_errors(layout: Path) -> Iterator[None]:
    """The layout store's errors (missing or mismatched blobs…) as the build's failure."""
    try:
        yield
    except RegistryError as e:
        raise BuildError(f"the builder's OCI layout {layout} is not usable: {e.message}") from None


def _open(layout: Path) -> OciLayout:
    if not (layout / "index.json").is_file():
        raise BuildError(f"the builder wrote no OCI layout at {layout} (no index.json)")
    return OciLayout(layout)


def _guarded(layout: Path, work: Callable[[OciLayout], _T]) -> _T:
    with _layout_errors(layout):
        return work(_open(layout))


def _json(store: OciLayout, desc: Descriptor) -> dict[str, Any]:
    """A manifest or config blob as JSON, its size and digest checked."""
    data = store.read_blob(desc)
    try:
        doc = loads_bounded(data, what=f"blob {desc.digest} in {store.path}", error=BuildError)
    except BuildError:
        doc = None
    if not isinstance(doc, dict):
        raise BuildError(f"blob {desc.digest} in {store.path} is not a JSON object")
    return doc


def _descriptor(store: OciLayout, doc: Any, what: str) -> Descriptor:
    return Descriptor.from_json(doc, where=f"{store.describe()} {what}")


def _put_json(store: OciLayout, doc: Mapping[str, Any], media_type: str) -> Descriptor:
    """Write ``doc`` as a compact JSON blob; its descriptor."""
    data = json.dumps(doc, separators=(",", ":")).encode()
    desc = Descriptor(media_type, sha256_digest(data), len(data))
    store.put_blob(desc, [data])
    return desc


def platform_string(platform: Mapping[str, Any]) -> str:
    """``os/arch[/variant]`` of a descriptor's ``platform`` object."""
    return str(Platform.from_json(platform))


def _platform_of(d: Mapping[str, Any]) -> str:
    platform = d.get("platform")
    return platform_string(platform if isinstance(platform, Mapping) else {})


def _is_image(d: Mapping[str, Any]) -> bool:
    """An image manifest of the index, not an attestation (``unknown/unknown``, as buildx writes)."""
    return d.get("mediaType") in IMAGE_TYPES and not _platform_of(d).startswith("unknown/")


def top_digest(layout: Path) -> str | None:
    """The digest ``index.json`` points at when it points at exactly one thing."""

    def work(store: OciLayout) -> str | None:
        entries = store.entries()
        return entries[0].digest if len(entries) == 1 else None

    return _guarded(layout, work)


def _wrap_single_manifest(store: OciLayout) -> None:
    """Turn a layout whose ``index.json`` points at one image manifest (buildx's OCI
    exporter does that for a single platform) into one pointing at an index over it."""
    entries = store.entries()
    if len(entries) != 1 or entries[0].media_type not in IMAGE_TYPES:
        return
    entry = entries[0]
    manifest = _json(store, entry)
    config = _json(store, _descriptor(store, manifest.get("config"), "config"))
    platform = {"architecture": config.get("architecture", ""), "os": config.get("os", "")}
    if config.get("variant"):
        platform["variant"] = config["variant"]
    child = {k: v for k, v in entry.to_json().items() if k != "annotations"}
    child["platform"] = platform
    index = _put_json(
        store, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child]}, OCI_INDEX
    )
    store.set_entries([index])


def _read_index(store: OciLayout) -> tuple[Descriptor, dict[str, Any]]:
    """``(descriptor in index.json, image index)`` of a single-image layout."""
    entries = store.entries()
    indexes = [d for d in entries if d.media_type in INDEX_TYPES]
    if len(indexes) != 1:
        kinds = sorted({d.media_type for d in entries})
        raise BuildError(
            f"{store.path}/index.json should point at exactly one image index, "
            f"found {len(indexes)} (media types: {', '.join(kinds) or 'none'})"
        )
    return indexes[0], _json(store, indexes[0])


def platform_digests(index: Mapping[str, Any]) -> dict[str, str]:
    """``os/arch[/variant]`` → manifest digest for the index's image manifests.

    Attestation manifests (``unknown/unknown``, as buildx writes) are skipped.
    """
    return {_platform_of(d): str(d["digest"]) for d in index.get("manifests", []) if _is_image(d)}


def _stamp_manifest(
    store: OciLayout,
    entry: Mapping[str, Any],
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    stale: set[str],
) -> dict[str, Any]:
    """Make one image manifest carry ``annotations`` and its config ``labels``.

    Returns the (possibly new) descriptor; digests of replaced blobs go into ``stale``.
    """
    desc = _descriptor(store, entry, "index entry")
    manifest = _json(store, desc)
    new_manifest = dict(manifest)
    config_entry = dict(manifest.get("config") or {})
    config_desc = _descriptor(store, config_entry, "config")
    config = _json(store, config_desc)
    inner = dict(config.get("config") or {})
    current = dict(inner.get("Labels") or {})
    if any(current.get(k) != v for k, v in labels.items()):
        inner["Labels"] = {**current, **labels}
        written = _put_json(store, {**config, "config": inner}, config_desc.media_type)
        stale.add(config_desc.digest)
        config_entry.update(digest=written.digest, size=written.size)
        new_manifest["config"] = config_entry
    merged = {**(manifest.get("annotations") or {}), **annotations}
    if merged:
        new_manifest["annotations"] = merged
    if new_manifest == manifest:
        return dict(entry)
    written = _put_json(store, new_manifest, desc.media_type)
    stale.add(desc.digest)
    return {**entry, "digest": written.digest, "size": written.size}


def finish_layout(
    layout: Path,
    annotations: Mapping[str, str],
    expected: tuple[str, ...],
    *,
    labels: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """Stamp and annotate the layout (see module doc); return ``(index digest, platforms)``.

    Every image manifest gets ``annotations``, its config ``labels`` (default: the same
    keys and values), and the index gets ``annotations``; blobs already carrying them are
    left alone (their digests do not change). ``expected`` are the plan's platforms: a
    layout missing one is a :class:`BuildError`.
    """
    stamp = annotations if labels is None else labels
    return _guarded(layout, lambda store: _finish(store, annotations, expected, stamp))


def _finish(
    store: OciLayout,
    annotations: Mapping[str, str],
    expected: tuple[str, ...],
    labels: Mapping[str, str],
) -> tuple[str, dict[str, str]]:
    _wrap_single_manifest(store)
    descriptor, index = _read_index(store)
    stale: set[str] = set()
    new_index = dict(index)
    new_index["manifests"] = [
        _stamp_manifest(store, d, labels, annotations, stale) if _is_image(d) else d
        for d in index.get("manifests", [])
    ]
    platforms = platform_digests(new_index)
    missing = [p for p in expected if p not in platforms]
    if missing:
        raise BuildError(
            f"the builder's index lacks platform(s) {', '.join(missing)} "
            f"(has: {', '.join(sorted(platforms)) or 'none'})"
        )
    merged = {**(index.get("annotations") or {}), **annotations}
    new_index["mediaType"] = index.get("mediaType", OCI_INDEX)
    if merged:
        new_index["annotations"] = merged
    if new_index != index:
        written = _put_json(store, new_index, str(new_index["mediaType"]))
        digest, size = written.digest, written.size
        stale.add(descriptor.digest)
    else:
        digest, size = descriptor.digest, descriptor.size
    ref_name = annotations.get(REF_NAME)
    store.set_entries(
        [
            Descriptor(
                str(new_index["mediaType"]),
                digest,
                size,
                annotations=MappingProxyType({REF_NAME: ref_name} if ref_name else {}),
            )
        ]
    )
    keep = {digest, *platforms.values()}
    for old in stale - keep:
        store.delete_blob(old)
    return digest, platforms
