"""``acr-ci push``: an OCI layout to a registry under one or more tags."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from acr_ci.cli.common import Command, add_registry_flags, registry_access
from acr_ci.errors import EXIT_OK
from acr_ci.registry.access import RegistryAccess


@dataclass(frozen=True)
class PushOptions:
    source: str
    """``oci-layout:DIR[:TAG]``."""
    destination: str
    """``REGISTRY/REPO:TAG``."""
    extra_tags: tuple[str, ...] = ()
    access: RegistryAccess = field(default_factory=RegistryAccess)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="oci-layout:DIR[:TAG]")
    p.add_argument("destination", metavar="REGISTRY/REPO:TAG")
    p.add_argument("extra_tags", nargs="*", metavar="TAG", help="more tags for the same image")
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> PushOptions:
    return PushOptions(
        source=args.source,
        destination=args.destination,
        extra_tags=tuple(args.extra_tags),
        access=registry_access(args),
    )


def execute(opts: PushOptions) -> int:
    from acr_ci.cli import _registry as rc

    src = rc.parse_layout(opts.source, what="push source")
    dst, tags = rc.push_destination(opts.destination, opts.extra_tags)
    with rc.client_for(opts.access, dst) as client:
        result = client.push_layout(src, dst, tags)
    rc.report(result, dst, quiet=opts.access.quiet)
    print(result.digest)
    return EXIT_OK


COMMAND = Command(
    name="push",
    help="push an OCI layout to a registry under one or more tags",
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
