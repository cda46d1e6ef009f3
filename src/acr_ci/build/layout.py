"""Reading and finishing the OCI image layouts builders write.

After a builder wrote its layout, :func:`finish_layout` makes it what the rest of the
chain expects: ``index.json`` holds exactly one descriptor, an image index over one
manifest per platform; the index carries the image annotations (builders such as
buildah 1.28 cannot set index annotations, so the index blob is rewritten here — its
digest changes, the manifests' do not); the descriptor in ``index.json`` carries
``org.opencontainers.image.ref.name`` (the first tag), as the layout spec intends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acr_ci.annotations import REF_NAME
from acr_ci.errors import BuildError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
_MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    if algorithm not in ("sha256", "sha512") or not encoded.isalnum():
        raise BuildError(f"the OCI layout {layout} references a malformed digest {digest!r}")
    return layout / "blobs" / algorithm / encoded


def read_json_blob(layout: Path, digest: str) -> dict[str, Any]:
    path = blob_path(layout, digest)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BuildError(f"the OCI layout {layout} lacks blob {digest}") from None
    algorithm = digest.split(":", 1)[0]
    if f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}" != digest:
        raise BuildError(f"blob {digest} in {layout} does not match its digest")
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise BuildError(f"blob {digest} in {layout} is not a JSON object")
    return doc


def write_json_blob(layout: Path, doc: Mapping[str, Any]) -> tuple[str, int]:
    data = json.dumps(doc, separators=(",", ":")).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(layout, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest, len(data)


def platform_string(platform: Mapping[str, Any]) -> str:
    parts = [str(platform.get("os", "")), str(platform.get("architecture", ""))]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def _top(layout: Path) -> dict[str, Any]:
    try:
        top = json.loads((layout / "index.json").read_text())
    except FileNotFoundError:
        raise BuildError(f"the builder wrote no OCI layout at {layout} (no index.json)") from None
    if not isinstance(top, dict) or not isinstance(top.get("manifests"), list):
        raise BuildError(f"{layout}/index.json is not an OCI image index")
    return top


def top_digest(layout: Path) -> str | None:
    """The digest ``index.json`` points at when it points at exactly one thing."""
    manifests = _top(layout)["manifests"]
    return str(manifests[0].get("digest")) if len(manifests) == 1 else None


def wrap_single_manifest(layout: Path) -> None:
    """Turn a layout whose ``index.json`` points at one image manifest (buildx's OCI
    exporter does that for a single platform) into one pointing at an index over it."""
    top = _top(layout)
    if len(top["manifests"]) != 1 or top["manifests"][0].get("mediaType") not in _MANIFEST_TYPES:
        return
    descriptor = dict(top["manifests"][0])
    manifest = read_json_blob(layout, str(descriptor["digest"]))
    config = read_json_blob(layout, str(manifest["config"]["digest"]))
    platform = {"architecture": config.get("architecture", ""), "os": config.get("os", "")}
    if config.get("variant"):
        platform["variant"] = config["variant"]
    descriptor.pop("annotations", None)
    descriptor["platform"] = platform
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor]}
    digest, size = write_json_blob(layout, index)
    top["manifests"] = [{"mediaType": OCI_INDEX, "digest": digest, "size": size}]
    (layout / "index.json").write_text(json.dumps(top, separators=(",", ":")))


def read_index(layout: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(descriptor in index.json, image index)`` of a single-image layout."""
    top = _top(layout)
    indexes = [d for d in top["manifests"] if d.get("mediaType") in _INDEX_TYPES]
    if len(indexes) != 1:
        kinds = sorted({str(d.get("mediaType")) for d in top["manifests"]})
        raise BuildError(
            f"{layout}/index.json should point at exactly one image index, "
            f"found {len(indexes)} (media types: {', '.join(kinds) or 'none'})"
        )
    return indexes[0], read_json_blob(layout, str(indexes[0]["digest"]))


def platform_digests(index: Mapping[str, Any]) -> dict[str, str]:
    """``os/arch[/variant]`` → manifest digest for the index's image manifests.

    Attestation manifests (``unknown/unknown``, as buildx writes) are skipped.
    """
    out: dict[str, str] = {}
    for d in index.get("manifests", []):
        if d.get("mediaType") not in _MANIFEST_TYPES:
            continue
        platform = platform_string(d.get("platform") or {})
        if platform.startswith("unknown/"):
            continue
        out[platform] = str(d["digest"])
    return out


def _stamp_manifest(
    layout: Path,
    descriptor: Mapping[str, Any],
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    stale: set[str],
) -> dict[str, Any]:
    """Make one image manifest carry ``annotations`` and its config ``labels``.

    Returns the (possibly new) descriptor; digests of replaced blobs go into ``stale``.
    """
    manifest = read_json_blob(layout, str(descriptor["digest"]))
    new_manifest = dict(manifest)
    config_desc = dict(manifest["config"])
    config = read_json_blob(layout, str(config_desc["digest"]))
    inner = dict(config.get("config") or {})
    current = dict(inner.get("Labels") or {})
    if any(current.get(k) != v for k, v in labels.items()):
        inner["Labels"] = {**current, **labels}
        new_config = {**config, "config": inner}
        digest, size = write_json_blob(layout, new_config)
        stale.add(str(config_desc["digest"]))
        config_desc.update(digest=digest, size=size)
        new_manifest["config"] = config_desc
    merged = {**(manifest.get("annotations") or {}), **annotations}
    if merged:
        new_manifest["annotations"] = merged
    if new_manifest == manifest:
        return dict(descriptor)
    digest, size = write_json_blob(layout, new_manifest)
    stale.add(str(descriptor["digest"]))
    return {**descriptor, "digest": digest, "size": size}


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
    labels = annotations if labels is None else labels
    wrap_single_manifest(layout)
    descriptor, index = read_index(layout)
    stale: set[str] = set()
    new_index = dict(index)
    new_index["manifests"] = [
        _stamp_manifest(layout, d, labels, annotations, stale)
        if d.get("mediaType") in _MANIFEST_TYPES
        and not platform_string(d.get("platform") or {}).startswith("unknown/")
        else d
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
    old_digest = str(descriptor["digest"])
    if new_index != index:
        digest, size = write_json_blob(layout, new_index)
        stale.add(old_digest)
    else:
        digest, size = old_digest, int(descriptor["size"])
    new_descriptor: dict[str, Any] = {
        "mediaType": new_index["mediaType"],
        "digest": digest,
        "size": size,
    }
    ref_name = annotations.get(REF_NAME)
    if ref_name:
        new_descriptor["annotations"] = {REF_NAME: ref_name}
    top = _top(layout)
    top["manifests"] = [new_descriptor]
    (layout / "index.json").write_text(json.dumps(top, separators=(",", ":")))
    keep = {digest, *platforms.values()}
    for old in stale - keep:
        blob_path(layout, old).unlink(missing_ok=True)
    return digest, platforms
