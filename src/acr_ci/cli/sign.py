"""``acr-ci sign``: a cosign-compatible signature for an image, by digest."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acr_ci.cli.common import Command, add_config_flag, add_registry_flags, registry_access
from acr_ci.errors import EXIT_OK
from acr_ci.registry.access import RegistryAccess

if TYPE_CHECKING:
    from acr_ci.config.model import Config, SignConfig
    from acr_ci.registry.client import Client
    from acr_ci.signing.sign import SignResult
    from acr_ci.signing.stage import Signer


@dataclass(frozen=True)
class KeyOptions:
    """Which environment variables hold the signing key and its password (never the key)."""

    key_env: str | None = None
    """``--key-env``; None: the config's ``sign.key_env`` (default ``ACR_CI_SIGNING_KEY``)."""
    password_env: str | None = None
    """``--password-env``; None: the config's ``sign.password_env``."""


@dataclass(frozen=True)
class SignOptions:
    image: str
    """``IMAGE[:TAG][@DIGEST]``: a tag is resolved to its digest; the digest is signed."""
    config: str | None = None
    keys: KeyOptions = field(default_factory=KeyOptions)
    recursive: bool = False
    """Also sign every manifest an index lists (cosign ``sign --recursive``)."""
    json: bool = False
    access: RegistryAccess = field(default_factory=RegistryAccess)


def add_key_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--key-env",
        metavar="NAME",
        help="the environment variable holding the PEM private key (default: the config's "
        "sign.key_env, else ACR_CI_SIGNING_KEY)",
    )
    p.add_argument(
        "--password-env",
        metavar="NAME",
        help="the environment variable holding the key's password (default: the config's "
        "sign.password_env, else ACR_CI_SIGNING_PASSWORD)",
    )


def key_options(args: argparse.Namespace) -> KeyOptions:
    return KeyOptions(key_env=args.key_env, password_env=args.password_env)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    add_config_flag(
        p,
        help="the rule config, for its sign: section (default: $ACR_CI_CONFIG "
        "or .acr-ci.yml when it exists)",
    )
    add_key_flags(p)
    p.add_argument(
        "--recursive",
        action="store_true",
        help="also sign each platform manifest of an index (what podman and CRI-O check)",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> SignOptions:
    return SignOptions(
        image=args.image,
        config=args.config,
        keys=key_options(args),
        recursive=args.recursive,
        json=args.format == "json",
        access=registry_access(args),
    )


def optional_config(path: str | None) -> Config | None:
    """The config when one is named or the default file exists; None otherwise (signing
    needs no config: the key variables have defaults)."""
    from acr_ci import config as config_mod
    from acr_ci.config.loader import resolve_path

    if path is None and not os.path.exists(resolve_path(None)):
        return None
    return config_mod.load(path)


def sign_settings(cfg: Config | None, keys: KeyOptions) -> SignConfig:
    from acr_ci.config.model import SignConfig

    base = (cfg.sign if cfg is not None else None) or SignConfig()
    return SignConfig(
        key_env=keys.key_env or base.key_env,
        password_env=keys.password_env or base.password_env,
        keyless=base.keyless,
        trust_config=base.trust_config,
    )


def signer_of(cfg: Config | None, keys: KeyOptions) -> Signer:
    """The key (or, with ``sign.keyless: true``, the CI's OIDC identity) to sign with."""
    from pathlib import Path

    from acr_ci.signing.stage import signer_for

    base = Path(cfg.path).resolve().parent if cfg is not None else None
    return signer_for(sign_settings(cfg, keys), base)


def open_for(cfg: Config | None, access: RegistryAccess, image: str) -> Client:
    from acr_ci.cli import _registry as rc
    from acr_ci.cli.common import config_client
    from acr_ci.registry.reference import Reference

    if cfg is not None:
        return config_client(cfg, access, images=(image,))
    return rc.client_for(access, Reference.parse(image))


def describe(r: SignResult) -> str:
    if not r.key and not r.identity:  # an unsigned referrer (the SBOM's plain OCI referrer)
        return f"{r.image}: {r.kind} {r.manifest_digest} listed in {r.tag}"
    what = f"{r.kind} {r.predicate_type}" if r.predicate_type else r.kind
    if r.identity:
        return (
            f"{r.image}: keyless {what} bundle {r.manifest_digest} listed in {r.tag} "
            f"(identity {r.identity})"
        )
    state = "added to" if r.added else "already in"
    return f"{r.image}: {what} {state} {r.tag} (manifest {r.manifest_digest}, key {r.key})"


def print_results(results: list[SignResult], *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps([r.to_json() for r in results], indent=2) + "\n")
    else:
        for r in results:
            print(describe(r))


def execute(opts: SignOptions) -> int:
    from acr_ci.registry.reference import Reference
    from acr_ci.signing.sign import resolve_digest

    image = Reference.parse(opts.image, what="image")
    cfg = optional_config(opts.config)
    signer = signer_of(cfg, opts.keys)
    with open_for(cfg, opts.access, opts.image) as client:
        pinned = resolve_digest(client, image)
        results = [signer.sign(client, pinned)]
        if opts.recursive:
            for child in client.get_manifest(pinned).children():
                results.append(signer.sign(client, pinned.with_digest(child.digest)))
    print_results(results, as_json=opts.json)
    return EXIT_OK


COMMAND = Command(
    name="sign",
    help="sign an image by digest (cosign's classic .sig format)",
    description=(
        "Sign IMAGE (a tag is resolved to its digest; the digest is signed) with the EC P-256 "
        "key in the environment variable --key-env names, and attach the signature to "
        "REPO:sha256-<hex>.sig, as cosign sign --key does. A second signature is appended "
        "to the same manifest; the same key signing again adds nothing."
    ),
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
