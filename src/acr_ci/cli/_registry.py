"""What ``acr-ci push|copy|inspect`` need besides one library call: argument checks,
the progress line on stderr, and the inspect text.

Imported only when a registry command runs, so ``requests`` stays out of ``acr-ci plan``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from acr_ci.errors import NotFoundError, UnsupportedError, UsageError
from acr_ci.registry.access import RegistryAccess
from acr_ci.registry.client import Client
from acr_ci.registry.copy import CopyResult
from acr_ci.registry.media import Manifest, Platform, platforms_from_flags
from acr_ci.registry.progress import human_bytes
from acr_ci.registry.reference import TAG_RE, LayoutReference, Location, Reference, parse_location
from acr_ci.registry.store import Store, image_platform

"""The largest image config ``inspect`` reads to show the platform."""


def client_for(access: RegistryAccess, *targets: Location) -> Client:
    """The client of ``push``/``copy``/``inspect``: the CI login goes to the registries
    of ``targets`` only (every registry side the command names: a copy's source as well
    as its destination), transfer progress to stderr unless ``--quiet``."""
    from acr_ci.registry.access import open_client
    from acr_ci.registry.progress import StreamProgress

    hosts = [h for t in targets if isinstance(t, Reference) for h in (t.registry, t.api_host)]
    return open_client(access, login_hosts=hosts, progress=StreamProgress(sys.stderr))


def parse_side(text: str, *, what: str) -> Location:
    return parse_location(text, what=what)


def parse_layout(text: str, *, what: str) -> LayoutReference:
    if not text.startswith("oci-layout:"):
        raise UsageError(
            f"{what} {text!r} is not an OCI layout",
            "push takes oci-layout:DIR[:TAG]; to copy between registries use acr-ci copy",
        )
    return LayoutReference.parse(text, what=what)


def push_destination(text: str, extra_tags: Sequence[str]) -> tuple[Reference, list[str]]:
    dst = Reference.parse(text, what="push destination")
    if dst.digest:
        raise UsageError(
            f"push destination {text!r} has a digest",
            "push to REGISTRY/REPO:TAG; the digest is printed",
        )
    tags = [dst.tag] if dst.tag else []
    for tag in extra_tags:
        if not TAG_RE.fullmatch(tag):
            raise UsageError(
                f"extra tag {tag!r} is not a valid tag",
                "a tag is [A-Za-z0-9_][A-Za-z0-9._-]{0,127}",
            )
        if tag not in tags:
            tags.append(tag)
    if not tags:
        raise UsageError(f"push destination {text!r} has no tag", "write REGISTRY/REPO:TAG [TAG…]")
    return dst.with_tag(None), tags


def parse_platforms(values: Sequence[str]) -> list[Platform] | None:
    return platforms_from_flags(values) or None


def report(result: CopyResult, dst: Location, *, quiet: bool) -> None:
    if quiet:
        return
    parts = [
        f"{result.blobs_copied} blobs copied",
        f"{result.blobs_skipped} already there",
    ]
    if result.blobs_mounted:
        parts.append(f"{result.blobs_mounted} mounted")
    if result.referrers:
        parts.append(f"{len(result.referrers)} referrers")
    sys.stderr.write(
        f"{dst}: {result.digest} ({', '.join(parts)}; {human_bytes(result.bytes_sent)} sent)\n"
    )


def inspect(client: Client, ref: Location, *, raw: bool) -> str:
    """``acr-ci inspect`` text: the raw manifest, or digest, media type, platforms and size."""
    store = client.store(ref)
    if isinstance(ref, LayoutReference):
        key = ref.tag or ""
    else:
        key = ref.digest or ref.tag or "latest"
    manifest = store.get_manifest(key)
    if raw:
        return manifest.data.decode("utf-8", errors="replace")
    lines = [
        f"Name:       {ref}",
        f"Digest:     {manifest.digest}",
        f"MediaType:  {manifest.media_type}",
    ]
    total = manifest.size
    rows: list[str] = []
    if manifest.is_index:
        for child in manifest.children():
            try:
                sub = store.get_manifest(child.digest)
            except NotFoundError:  # a missing child is shown, not fatal
                rows.append(f"  {child.platform or '-'}  {child.digest}  (missing)")
                continue
            size = _content_size(sub)
            total += size
            rows.append(
                f"  {child.platform or child.artifact_type or '-'}  {child.digest}  {human_bytes(size)}"
            )
        lines.append(
            "Platforms:  "
            + (", ".join(str(c.platform) for c in manifest.children() if c.platform) or "-")
        )
    else:
        total = _content_size(manifest)
        lines.append("Platforms:  " + (_platform_of(store, manifest) or "-"))
    lines.append(
        f"Size:       {total} bytes ({human_bytes(total)}; manifest {manifest.size} bytes)"
    )
    if rows:
        lines.append("Manifests:")
        lines.extend(rows)
    return "\n".join(lines) + "\n"


def _content_size(m: Manifest) -> int:
    return m.size + sum(b.size for b in m.blobs())


def _platform_of(store: Store, m: Manifest) -> str | None:
    try:
        p = image_platform(store, m)
    except (UnsupportedError, AttributeError):  # a config that is not JSON: no platform
        return None
    return str(p) if p else None
