"""``acr-ci verify``: check an image's signatures — cosign classic with a public key, or
Sigstore keyless bundles (OCI referrers) against an identity and issuer."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acr_ci.cli.common import Command, add_registry_flags, registry_access
from acr_ci.errors import EXIT_FAILED, EXIT_OK, NotVerifiedError, UsageError
from acr_ci.registry.access import RegistryAccess
from acr_ci.text import safe_output

if TYPE_CHECKING:
    from acr_ci.registry.reference import Reference


@dataclass(frozen=True)
class VerifyOptions:
    image: str
    key: str | None = None
    """The PEM public key file (``cosign.pub``); None: keyless (:attr:`identity`)."""
    attestations: bool = False
    identity: str | None = None
    """``--certificate-identity``: the certificate SAN a keyless signature must carry."""
    issuer: str | None = None
    """``--certificate-oidc-issuer``: the OIDC issuer it must name."""
    trust_config: str | None = None
    """``--trust-config``; None: ``$ACR_CI_SIGSTORE_TRUST_CONFIG``, else public Sigstore."""
    access: RegistryAccess = field(default_factory=RegistryAccess)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--key", metavar="PUB.pem", help="the PEM public key (cosign.pub)")
    p.add_argument(
        "--certificate-identity",
        dest="identity",
        metavar="ID",
        help="keyless: the identity (certificate SAN, e.g. a workflow URL) that must have signed",
    )
    p.add_argument(
        "--certificate-oidc-issuer",
        dest="issuer",
        metavar="URL",
        help="keyless: the OIDC issuer of that identity",
    )
    p.add_argument(
        "--trust-config",
        metavar="F",
        help="keyless: a Sigstore client trust config (a private instance; default "
        "$ACR_CI_SIGSTORE_TRUST_CONFIG, else the public Sigstore)",
    )
    p.add_argument(
        "--attestations",
        action="store_true",
        help="also require a verified attestation naming the image's digest",
    )
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> VerifyOptions:
    return VerifyOptions(
        image=args.image,
        key=args.key,
        attestations=args.attestations,
        identity=args.identity,
        issuer=args.issuer,
        trust_config=args.trust_config,
        access=registry_access(args),
    )


def _check(opts: VerifyOptions) -> None:
    keyless = opts.identity is not None or opts.issuer is not None
    if opts.key is not None and keyless:
        raise UsageError("--key and --certificate-identity exclude each other", "give one of them")
    if opts.key is None and not keyless:
        raise UsageError(
            "verify needs --key PUB.pem, or --certificate-identity ID --certificate-oidc-issuer URL"
        )
    if keyless and not (opts.identity and opts.issuer):
        raise UsageError("--certificate-identity and --certificate-oidc-issuer go together")
    if opts.trust_config is not None and not keyless:
        raise UsageError("--trust-config is for keyless verification (--certificate-identity)")


def execute(opts: VerifyOptions) -> int:
    from acr_ci.cli import _registry as rc
    from acr_ci.registry.reference import Reference

    _check(opts)
    image = Reference.parse(opts.image, what="image")
    if opts.key is None:
        return _keyless(opts, image)
    from acr_ci.signing.keys import load_public_key
    from acr_ci.signing.verify import verify_image

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


def _keyless(opts: VerifyOptions, image: Reference) -> int:
    from pathlib import Path

    from acr_ci.cli import _registry as rc
    from acr_ci.signing.bundles import ENV_TRUST_CONFIG, verify_image_keyless

    assert opts.identity and opts.issuer
    trust = opts.trust_config or os.environ.get(ENV_TRUST_CONFIG, "").strip() or None
    with rc.client_for(opts.access, image) as client:
        try:
            result = verify_image_keyless(
                client,
                image,
                opts.identity,
                opts.issuer,
                Path(trust) if trust else None,
                attestations=opts.attestations,
            )
        except NotVerifiedError as e:
            sys.stderr.write(f"acr-ci: not verified: {safe_output(e.message)}\n")
            return EXIT_FAILED
    line = (
        f"verified: {result.image}: {result.signatures} keyless signature(s) by "
        f"{result.identity} ({result.issuer})"
    )
    if opts.attestations:
        line += f"; attestations: {', '.join(result.predicate_types)}"
    print(safe_output(line))
    return EXIT_OK


COMMAND = Command(
    name="verify",
    help="verify an image's signatures (and attestations): a public key, or keyless",
    description=(
        "Verify IMAGE's signatures. With --key: cosign classic signatures "
        "(REPO:sha256-<hex>.sig) with the PEM public key, as cosign verify --key "
        "--insecure-ignore-tlog does. With --certificate-identity and "
        "--certificate-oidc-issuer: Sigstore bundles attached as OCI referrers of the "
        "digest (keyless), checked against the trust config's Fulcio, Rekor and TSA. Exit 0 "
        "when verified; 1 with a one-line reason (no signature, wrong key, identity mismatch, "
        "digest mismatch)."
    ),
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
