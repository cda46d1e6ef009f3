"""``acr-ci attest``: a signed in-toto attestation (SLSA provenance, or a given predicate)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from acr_ci.cli.common import Command, RefOptions, add_registry_flags, registry_access
from acr_ci.cli.sign import (
    KeyOptions,
    add_key_flags,
    key_options,
    open_for,
    optional_config,
    print_results,
    signer_of,
)
from acr_ci.errors import EXIT_OK, UsageError
from acr_ci.registry.access import RegistryAccess

MAX_PREDICATE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class AttestOptions:
    image: str
    ref: RefOptions = field(default_factory=RefOptions)
    """The config and the ref the image was built for (provenance)."""
    keys: KeyOptions = field(default_factory=KeyOptions)
    predicate: str | None = None
    """A JSON predicate file to attest instead of the provenance."""
    predicate_type: str | None = None
    """The predicate type (a URI) of :attr:`predicate`."""
    base_images: tuple[str, ...] = ()
    """``REPO@sha256:…`` base images for the provenance's resolved dependencies."""
    sbom: bool | None = None
    """``--sbom``: a CycloneDX SBOM per platform; None: the config's ``attest.sbom``."""
    provenance: bool | None = None
    """``--no-provenance`` makes it False; None: the config's ``attest.provenance`` (true)."""
    json: bool = False
    access: RegistryAccess = field(default_factory=RegistryAccess)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE")
    p.add_argument(
        "--config",
        metavar="F",
        help="the rule config (default: $ACR_CI_CONFIG or .acr-ci.yml when it exists)",
    )
    p.add_argument(
        "--ref", metavar="R", help="the ref the image was built for (default: from the CI)"
    )
    p.add_argument("--sha", metavar="S", help="the commit ID (hex)")
    p.add_argument("--time", metavar="T", help="the push time: ISO 8601 or epoch seconds")
    p.add_argument("--predicate", metavar="FILE", help="attest this JSON predicate, not provenance")
    p.add_argument("--type", dest="predicate_type", metavar="URI", help="the predicate's type")
    p.add_argument(
        "--base-image",
        action="append",
        default=[],
        metavar="REPO@DIGEST",
        help="a base image the build used (repeat; goes to the provenance)",
    )
    p.add_argument(
        "--sbom",
        action="store_true",
        default=None,
        help="also a CycloneDX SBOM (trivy) per platform image: attested and attached as an "
        "OCI referrer (default: the config's attest.sbom)",
    )
    p.add_argument(
        "--no-provenance",
        dest="provenance",
        action="store_false",
        default=None,
        help="no SLSA provenance (default: the config's attest.provenance, true)",
    )
    add_key_flags(p)
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> AttestOptions:
    return AttestOptions(
        image=args.image,
        ref=RefOptions(config=args.config, ref=args.ref, sha=args.sha, time=args.time),
        keys=key_options(args),
        predicate=args.predicate,
        predicate_type=args.predicate_type,
        base_images=tuple(args.base_image),
        sbom=args.sbom,
        provenance=args.provenance,
        json=args.format == "json",
        access=registry_access(args),
    )


def _read_predicate(path: str) -> dict[str, Any]:
    from acr_ci.fileio import read_bounded
    from acr_ci.jsonload import loads_bounded

    try:
        data = read_bounded(path, limit=MAX_PREDICATE_BYTES, what="--predicate", error=UsageError)
    except FileNotFoundError:
        raise UsageError(f"--predicate {path}: no such file") from None
    doc = loads_bounded(
        data, what=f"--predicate {path}", max_bytes=MAX_PREDICATE_BYTES, error=UsageError
    )
    if not isinstance(doc, dict):
        raise UsageError(f"--predicate {path} is not a JSON object")
    return doc


def _check_base_images(values: tuple[str, ...]) -> None:
    from acr_ci.registry.reference import Reference

    for value in values:
        if not Reference.parse(value, what="--base-image").digest:
            raise UsageError(f"--base-image {value!r} has no digest", "write REPO@sha256:…")


def execute(opts: AttestOptions) -> int:
    from acr_ci.config.model import AttestConfig
    from acr_ci.registry.reference import Reference
    from acr_ci.signing import provenance
    from acr_ci.signing.sign import resolve_digest

    image = Reference.parse(opts.image, what="image")
    if (opts.predicate is None) != (opts.predicate_type is None):
        raise UsageError("--predicate and --type go together", "give both, or neither (provenance)")
    _check_base_images(opts.base_images)
    predicate = _read_predicate(opts.predicate) if opts.predicate else None
    cfg = optional_config(opts.ref.config)
    wanted = cfg.attest if cfg is not None and cfg.attest is not None else AttestConfig()
    with_provenance = predicate is None and (
        wanted.provenance if opts.provenance is None else opts.provenance
    )
    with_sbom = wanted.sbom if opts.sbom is None else opts.sbom
    if predicate is None and not with_provenance and not with_sbom:
        raise UsageError(
            "nothing to attest: --no-provenance without --sbom",
            "add --sbom, or --predicate FILE --type URI",
        )
    ref = opts.ref.detect_ref() if with_provenance else None
    signer = signer_of(cfg, opts.keys)
    results = []
    with open_for(cfg, opts.access, opts.image) as client:
        pinned = resolve_digest(client, image)
        if predicate is not None:
            assert opts.predicate_type is not None
            results.append(signer.attest(client, pinned, opts.predicate_type, predicate))
        if with_provenance:
            assert ref is not None
            manifest = client.get_manifest(pinned)
            prov = provenance.from_run(
                ref,
                config=cfg,
                image=pinned.name,
                platforms=provenance.platforms_of(manifest.children()),
                base_images=opts.base_images,
            )
            results.append(
                signer.attest(client, pinned, provenance.PREDICATE_TYPE, provenance.predicate(prov))
            )
        if with_sbom:
            from acr_ci.signing.sbom import attest_sboms

            results.extend(
                attest_sboms(
                    client,
                    pinned,
                    signer.key,
                    attest=lambda ref, ptype, doc: signer.attest(client, ref, ptype, doc),
                )
            )
    print_results(results, as_json=opts.json)
    return EXIT_OK


COMMAND = Command(
    name="attest",
    help="attest an image by digest: SLSA provenance or a given predicate (cosign's .att)",
    description=(
        "Attach a signed in-toto statement about IMAGE's digest, in a DSSE envelope, to "
        "REPO:sha256-<hex>.att, as cosign attest --key does. By default the statement is "
        "SLSA v1 provenance (the ref, the matching rule, the config's digest, the image's "
        "platforms, build args, commit, --base-image digests, the CI job); --sbom adds a "
        "CycloneDX SBOM per platform image (trivy, offline), attested and attached as an OCI "
        "referrer; --predicate FILE --type URI attests any JSON predicate instead."
    ),
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
