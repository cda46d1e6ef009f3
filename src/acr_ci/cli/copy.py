"""``acr-ci copy``: an image between registries and/or OCI layouts."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from acr_ci.cli.common import Command, add_registry_flags, registry_access
from acr_ci.errors import EXIT_OK
from acr_ci.registry.access import RegistryAccess


@dataclass(frozen=True)
class CopyOptions:
    source: str
    destination: str
    platforms: tuple[str, ...] = ()
    """``os/arch[/variant]`` (comma-separated lists allowed); empty: every platform."""
    referrers: bool = False
    access: RegistryAccess = field(default_factory=RegistryAccess)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SRC")
    p.add_argument("destination", metavar="DST")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--all-platforms", action="store_true", help="copy every platform (the default)")
    g.add_argument("--platform", action="append", default=[], metavar="OS/ARCH[/VARIANT]")
    p.add_argument(
        "--referrers", action="store_true", help="also copy signatures, SBOMs and other referrers"
    )
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> CopyOptions:
    return CopyOptions(
        source=args.source,
        destination=args.destination,
        platforms=tuple(args.platform),
        referrers=args.referrers,
        access=registry_access(args),
    )


def execute(opts: CopyOptions) -> int:
    from acr_ci.cli import _registry as rc

    src = rc.parse_side(opts.source, what="copy source")
    dst = rc.parse_side(opts.destination, what="copy destination")
    platforms = rc.parse_platforms(opts.platforms)
    with rc.client_for(opts.access, src, dst) as client:
        result = client.copy(src, dst, platforms=platforms, referrers=opts.referrers)
    rc.report(result, dst, quiet=opts.access.quiet)
    print(result.digest)
    return EXIT_OK


COMMAND = Command(
    name="copy",
    help="copy an image between registries and/or OCI layouts",
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
