"""What happens to a blocked image: backup first, verified, then delete.

1. The tags that point at the blocked digest *now* are collected.
2. With ``on_block.backup``: the image is copied by digest (every platform of an
   index, with its referrers: signatures, SBOMs) to the backup repository under
   those tags, and the copy is verified —
   the backup must serve the same digest, each tag must point at it, and every
   blob of every platform (configs and layers, read from the backup's own
   manifests) must be there with its size (a ``HEAD`` each): a registry that
   takes manifests but loses blobs holds no usable backup. Any failure here
   raises :class:`GateError` and **nothing is deleted**.
3. With ``on_block.delete``: the manifest is deleted by digest from the source
   repository (the registry drops the tags pointing at it). For an index, its
   platform manifests are deleted too unless a remaining tag still uses them.
   A registry that refuses deletes raises :class:`GateError` saying so (the
   backup, if any, stays).

The gate works only through :class:`acr_ci.registry.Client`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acr_ci.config.model import OnBlock
from acr_ci.errors import AcrError, DeniedError, NotFoundError, UsageError
from acr_ci.errors import GateError as GateError  # lives in errors.py; importable here too
from acr_ci.registry.client import Client
from acr_ci.registry.media import Manifest
from acr_ci.registry.reference import Reference


@dataclass(frozen=True)
class GateResult:
    """What the gate did to a blocked image."""

    image: str
    """The blocked image, by digest."""
    tags: tuple[str, ...]
    """The source tags that pointed at the digest when the gate ran."""
    backup: str | None = None
    """The backup copy (``repo@digest``), when one was made and verified."""
    backup_tags: tuple[str, ...] = ()
    """Tags verified at the backup."""
    deleted: bool = False
    """True when the source manifest was deleted."""
    deleted_children: tuple[str, ...] = ()
    """Platform manifests of a deleted index that were deleted too."""

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "tags": list(self.tags),
            "backup": self.backup,
            "backup_tags": list(self.backup_tags),
            "deleted": self.deleted,
            "deleted_children": list(self.deleted_children),
        }

    def describe(self) -> str:
        parts: list[str] = []
        if self.backup:
            tags = f" (tags: {', '.join(self.backup_tags)})" if self.backup_tags else ""
            parts.append(f"backed up to {self.backup}{tags}")
        if self.deleted:
            parts.append(f"deleted {self.image} from the source repository")
        return "; ".join(parts) or "left in place (on_block sets neither backup nor delete)"


def tags_pointing_at(client: Client, image: Reference) -> tuple[str, ...]:
    """The tags of ``image``'s repository that point at its digest now."""
    assert image.digest
    out: list[str] = []
    for tag in sorted(client.list_tags(image)):
        if client.tag_digest(image.with_tag(tag)) == image.digest:
            out.append(tag)
    return tuple(out)


def enforce(client: Client, image: Reference, on_block: OnBlock) -> GateResult:
    """Back up (verified) and/or delete the blocked ``image`` (which must name a digest)."""
    if not image.digest:
        raise UsageError(f"the gate needs the image by digest, got {image}")
    if not on_block.backup and not on_block.delete:
        return GateResult(image=str(image.with_tag(None).with_digest(image.digest)), tags=())
    pinned = Reference(image.registry, image.repository, None, image.digest)
    try:
        tags = tags_pointing_at(client, pinned)
    except NotFoundError:
        tags = ()  # a repository with no tag list: by digest only
    backup: str | None = None
    backup_tags: tuple[str, ...] = ()
    if on_block.backup:
        backup, backup_tags = _backup(client, pinned, tags, on_block.backup)
    if not on_block.delete:
        return GateResult(str(pinned), tags, backup, backup_tags)
    children = _delete(client, pinned, backup)
    return GateResult(str(pinned), tags, backup, backup_tags, True, children)


def _backup(
    client: Client, image: Reference, tags: tuple[str, ...], backup: str
) -> tuple[str, tuple[str, ...]]:
    dst = Reference.parse(backup, what="scan.on_block.backup")
    dst = Reference(dst.registry, dst.repository)
    if dst.name == image.name:
        raise GateError(
            f"scan.on_block.backup {backup} is the blocked image's own repository",
            "name another repository (e.g. a quarantine namespace)",
        )
    where = f"backup of {image} to {dst.name}"
    try:
        result = client.copy(image, dst, list(tags), referrers=True)  # signatures, SBOMs too
        if result.digest != image.digest:
            raise GateError(f"{where}: the copy has digest {result.digest}, not {image.digest}")
        copied = client.resolve(dst.with_digest(image.digest)).digest
        if copied != image.digest:
            raise GateError(f"{where}: the backup serves {copied}, not {image.digest}")
        for tag in tags:
            at = client.tag_digest(dst.with_tag(tag))
            if at != image.digest:
                raise GateError(
                    f"{where}: backup tag {tag} points at {at or 'nothing'}, not {image.digest}"
                )
        missing = _missing_blobs(client, dst.with_digest(image.digest))
        if missing:
            shown = ", ".join(missing[:MAX_NAMED])
            more = f" and {len(missing) - MAX_NAMED} more" if len(missing) > MAX_NAMED else ""
            raise GateError(
                f"{where}: the backup lacks {len(missing)} blob(s) it must hold: {shown}{more}",
                hint="the backup registry took the manifests but does not serve these blobs; "
                "check its storage (or use another backup registry)",
            )
    except GateError as e:
        raise GateError(f"{e.message}; the blocked image was NOT deleted") from None
    except AcrError as e:
        raise GateError(
            f"{where} failed: {e.message}; the blocked image was NOT deleted",
            hint=e.hint or "check the backup registry (reachable? credentials? push allowed?)",
        ) from None
    return f"{dst.name}@{image.digest}", tags


MAX_NAMED = 5
"""Missing blobs named in a failed backup's message (the rest are counted)."""
MAX_DEPTH = 4
"""Index levels walked when verifying a backup (an index of indexes is already rare)."""


def _missing_blobs(client: Client, backup: Reference) -> list[str]:
    """Every config and layer blob below ``backup`` (by digest) the backup does not serve
    with its size, each as ``DIGEST (SIZE bytes, WHAT)``; read from the backup's manifests."""
    repo = client.repository(backup)
    missing: list[str] = []
    seen: set[str] = set()
    level = [(client.get_manifest(backup), "")]
    for _ in range(MAX_DEPTH):
        below: list[tuple[Manifest, str]] = []
        for manifest, label in level:
            for n, blob in enumerate(manifest.blobs()):
                if blob.digest in seen:
                    continue
                seen.add(blob.digest)
                if not repo.has_blob(blob):
                    what = "config" if n == 0 and "config" in manifest.json else "layer"
                    of = f" of {label}" if label else ""
                    missing.append(f"{blob.digest} ({blob.size} bytes, {what}{of})")
            for child in manifest.children():
                if child.digest in seen:
                    continue
                seen.add(child.digest)
                name = str(child.platform) if child.platform else child.digest
                below.append((client.get_manifest(backup.with_digest(child.digest)), name))
        if not below:
            return missing
        level = below
    raise GateError(f"{backup}: indexes nested deeper than {MAX_DEPTH} levels: not verified")


def _delete(client: Client, image: Reference, backup: str | None) -> tuple[str, ...]:
    assert image.digest
    kept = f" (the backup at {backup} stays)" if backup else ""
    try:
        manifest = client.get_manifest(image)
        children = [d.digest for d in manifest.children()]
        client.delete(image)
    except DeniedError as e:
        raise GateError(
            f"cannot delete the blocked image {image}: {e.message}{kept}",
            hint=e.hint or "allow deletes on the registry, or set on_block.delete: false",
        ) from None
    except AcrError as e:
        raise GateError(
            f"deleting the blocked image {image} failed: {e.message}{kept}", hint=e.hint
        ) from None
    if not children:
        return ()
    try:
        still_used = _digests_in_use(client, image)
    except AcrError:
        return ()  # cannot tell what other tags use: keep the platform manifests
    deleted: list[str] = []
    for digest in children:
        if digest in still_used:
            continue
        try:
            client.delete(image.with_digest(digest))
            deleted.append(digest)
        except NotFoundError:
            continue
        except AcrError:
            break  # the index is gone; leftover children are unreachable by tag
    return tuple(deleted)


def _digests_in_use(client: Client, image: Reference) -> set[str]:
    """Digests the repository's remaining tags point at, with the children of tagged indexes."""
    used: set[str] = set()
    for tag in client.list_tags(image):
        try:
            manifest = client.get_manifest(image.with_tag(tag))
        except NotFoundError:
            continue
        used.add(manifest.digest)
        used.update(d.digest for d in manifest.children())
    return used
