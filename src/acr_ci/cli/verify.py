"""``acr-ci verify``: check an image's cosign classic signatures with a public key."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from acr_ci.cli.common import Command, add_registry_flags, registry_access
from acr_ci.errors import EXIT_FAILED, EXIT_OK, NotVerifiedError
from acr_ci.registry.access import RegistryAccess
from acr_ci.text import safe_output


@dataclass(frozen=True)
class VerifyOptions:
    image: str
    key: str
    """The PEM public key file (``cosign.pub``)."""
    attestations: bool = False
    access: RegistryAccess = field(default_factory=RegistryAccess)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    p.add_argument(
        "--key", required=True, metavar="PUB.pem", help="the PEM public key (cosign.pub)"
    )
    p.add_argument(
        "--attestations",
        action="store_true",
        help="also require a verified attestation (.att) naming the image's digest",
    )
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> VerifyOptions:
    return VerifyOptions(
        image=args.image, key=args.key, attestations=args.attestations, access=registry_access(args)
    )


def execute(opts: VerifyOptions) -> int:
    from acr_ci.cli import _registry as rc
    from acr_ci.registry.reference import Reference
    from acr_ci.signing.keys import load_public_key
    from acr_ci.signing.verify import verify_image

    image = Reference.parse(opts.image, what="image")
    key = load_public_key(opts.key)
    with rc.client_for(opts.access, image) as client:
        try:
            result = verify_image(client, image, key, attestations=opts.attestations)
        except NotVerifiedError as e:
            sys.stderr.write(f"acr-ci: not verified: {safe_output(e.message)}\n")
            return EXIT_FAILED
    line = f"verified: {result.image}: {result.signatures} signature(s) by {result.key}"
    if opts.attestations:
        line += f"; attestations: {', '.join(result.predicate_types)}"
    print(line)
    return EXIT_OK


COMMAND = Command(
    name="verify",
    help="verify an image's signatures (and attestations) with a public key",
    description=(
        "Verify IMAGE's cosign classic signatures (REPO:sha256-<hex>.sig) with the PEM "
        "public key --key, as cosign verify --key --insecure-ignore-tlog does. Exit 0 when "
        "verified; 1 with a one-line reason (no signature, wrong key, digest mismatch)."
    ),
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
