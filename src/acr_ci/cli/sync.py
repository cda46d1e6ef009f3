"""``acr-ci sync``: an image (or, with ``--backfill``, every tag of a repository) to the
``sync:`` mirrors."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acr_ci.cli.common import (
    Command,
    add_config_flag,
    add_registry_flags,
    config_client,
    registry_access,
)
from acr_ci.errors import EXIT_FAILED, EXIT_OK
from acr_ci.models import Status
from acr_ci.registry.access import RegistryAccess

if TYPE_CHECKING:
    from acr_ci.sync import SyncResult


@dataclass(frozen=True)
class SyncOptions:
    image: str
    """``IMAGE:TAG``, ``IMAGE:TAG@DIGEST``, ``IMAGE@DIGEST``; with ``backfill`` a repository."""
    config: str | None = None
    backfill: bool = False
    access: RegistryAccess = field(default_factory=RegistryAccess)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "image", metavar="IMAGE[:TAG|@DIGEST]", help="the image; with --backfill a repository"
    )
    add_config_flag(p)
    p.add_argument(
        "--backfill",
        action="store_true",
        help="mirror every existing tag of the repository the rules select, skipping tags "
        "already there with the same digest",
    )
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> SyncOptions:
    return SyncOptions(
        image=args.image, config=args.config, backfill=args.backfill, access=registry_access(args)
    )


def describe(result: SyncResult) -> str:
    """One line for a person: destination, outcome, tags and digests."""
    head = f"sync {result.name} -> {result.destination}: {result.status}"
    if result.status is Status.SKIPPED:
        return f"{head} ({result.reason})"
    parts = []
    for t in result.tags:
        note = "" if t.status is Status.SUCCEEDED else f" {t.status}"
        parts.append(f"{t.tag}@{t.digest[:19]}{note}")
    line = f"{head}: {', '.join(parts)}"
    if result.status is Status.SUCCEEDED:
        line += f" ({result.blobs_copied} blobs copied, {result.blobs_skipped} already there)"
    elif result.reason:
        line += f" ({result.reason})"
    return line


def exit_code(statuses: Iterable[Status]) -> int:
    """1 if any destination (or trigger) failed, else 0."""
    return EXIT_FAILED if any(s is Status.FAILED for s in statuses) else EXIT_OK


def execute(opts: SyncOptions) -> int:
    from acr_ci import config as config_mod
    from acr_ci import sync

    cfg = config_mod.load(opts.config)
    with config_client(cfg, opts.access, images=(opts.image,)) as client:
        results = sync.mirror(client, cfg, opts.image, all_tags=opts.backfill)
    for r in results:
        print(describe(r))
    return exit_code(r.status for r in results)


COMMAND = Command(
    name="sync",
    help="copy an image (or with --backfill every tag of a repository) to the sync: mirrors",
    description=(
        "Copy IMAGE:TAG, IMAGE:TAG@DIGEST or IMAGE@DIGEST (every tag pointing at it) to each "
        "sync: destination whose tags regex selects the tag: by digest, all platforms, with "
        "referrers. Destinations run concurrently; each uses the docker config's credentials "
        "for its host. Exit 1 if any destination failed."
    ),
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
