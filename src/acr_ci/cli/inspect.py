"""``acr-ci inspect``: an image's digest, media type, platforms and size."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from acr_ci.cli.common import Command, add_registry_flags, registry_access
from acr_ci.errors import EXIT_OK
from acr_ci.registry.access import RegistryAccess


@dataclass(frozen=True)
class InspectOptions:
    reference: str
    raw: bool = False
    access: RegistryAccess = field(default_factory=RegistryAccess)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("reference", metavar="REF")
    p.add_argument(
        "--raw", action="store_true", help="print the manifest exactly as the registry serves it"
    )
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> InspectOptions:
    return InspectOptions(reference=args.reference, raw=args.raw, access=registry_access(args))


def execute(opts: InspectOptions) -> int:
    from acr_ci.cli import _registry as rc

    ref = rc.parse_side(opts.reference, what="inspect reference")
    with rc.client_for(opts.access, ref) as client:
        text = rc.inspect(client, ref, raw=opts.raw)
    sys.stdout.write(text)
    return EXIT_OK


COMMAND = Command(
    name="inspect",
    help="show an image's digest, media type, platforms and size",
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
