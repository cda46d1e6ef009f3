"""``acr-ci accelerate``: an existing image's eStargz twin, pushed as TAG + suffix."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acr_ci.cli.common import Command, add_config_flag, add_registry_flags, registry_access
from acr_ci.errors import EXIT_OK, UsageError
from acr_ci.registry.access import RegistryAccess

if TYPE_CHECKING:
    from acr_ci.config import Config


@dataclass(frozen=True)
class AccelerateOptions:
    image: str
    """``IMAGE:TAG``, ``IMAGE:TAG@DIGEST`` or (with ``tags``) ``IMAGE@DIGEST``."""
    format: str | None = None
    """``estargz`` or ``zstd-chunked``; None: the config's ``accelerate.format``, else estargz."""
    suffix: str | None = None
    """None: the config's ``accelerate.suffix``, else ``_accelerated``."""
    tags: tuple[str, ...] = ()
    """More original tags whose suffixed names the twin gets (needed for ``IMAGE@DIGEST``)."""
    config: str | None = None
    """The rule config; None: ``$ACR_CI_CONFIG`` or ``.acr-ci.yml`` when that file exists."""
    access: RegistryAccess = field(default_factory=RegistryAccess)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE[:TAG][@DIGEST]")
    p.add_argument(
        "--format",
        choices=["estargz", "zstd-chunked"],
        default=None,
        help="the layer format (default: the config's accelerate.format, else estargz)",
    )
    p.add_argument(
        "--suffix",
        default=None,
        help="appended to each tag (default _accelerated, or the config's)",
    )
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="T",
        help="also push the twin as T + suffix (repeatable; needed for an image given by digest)",
    )
    add_config_flag(
        p,
        help="the rule config, for accelerate: defaults and immutable_tags (default: "
        "$ACR_CI_CONFIG or .acr-ci.yml, when it exists)",
    )
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> AccelerateOptions:
    return AccelerateOptions(
        image=args.image,
        format=args.format,
        suffix=args.suffix,
        tags=tuple(args.tag),
        config=args.config,
        access=registry_access(args),
    )


def _config(path: str | None) -> Config | None:
    from acr_ci import config as config_mod

    if path is None and not os.path.exists(config_mod.resolve_path(None)):
        return None
    return config_mod.load(path)


def execute(opts: AccelerateOptions) -> int:
    from acr_ci.accelerate.service import DEFAULT_SUFFIX, Format, accelerate, suffixed_tags
    from acr_ci.cli import _registry as rc
    from acr_ci.cli.common import config_client
    from acr_ci.registry.reference import TAG_RE, Reference

    source = Reference.parse(opts.image, what="accelerate image")
    for tag in opts.tags:
        if not TAG_RE.fullmatch(tag):
            raise UsageError(
                f"--tag {tag!r} is not a valid tag", "a tag is [A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
            )
    originals = list(dict.fromkeys([*([source.tag] if source.tag else []), *opts.tags]))
    if not originals:
        raise UsageError(
            f"accelerate image {opts.image!r} has no tag",
            "name it IMAGE:TAG, or give --tag T for an image given by digest",
        )
    cfg = _config(opts.config)
    settings = cfg.accelerate if cfg is not None else None
    fmt = Format(opts.format or (settings.format if settings else Format.ESTARGZ.value))
    suffix = (
        opts.suffix
        if opts.suffix is not None
        else (settings.suffix if settings else DEFAULT_SUFFIX)
    )
    tags = suffixed_tags(originals, suffix)
    client = (
        config_client(cfg, opts.access, images=(opts.image,))
        if cfg is not None
        else rc.client_for(opts.access, source)
    )
    with client:
        result = accelerate(
            client,
            source,
            tags,
            fmt=fmt,
            immutable=cfg.immutable_tags if cfg is not None else False,
        )
    if not opts.access.quiet:
        print(
            f"accelerated {source.name}@{result.source} -> {result.digest} as "
            f"{', '.join(result.tags)} ({result.layers_converted} layers converted, "
            f"{result.layers_kept} kept)",
            file=sys.stderr,
        )
    print(result.digest)
    return EXIT_OK


COMMAND = Command(
    name="accelerate",
    help="push an eStargz twin of an image (lazy pulling), tagged TAG + suffix",
    description=(
        "Convert every layer of IMAGE (every platform of an index) to eStargz, streaming from "
        "the registry, and push the twin to the same repository as each tag + suffix "
        "(default _accelerated). The twin has the original's shape and names it in the "
        "dev.acr-ci.accelerated.source.digest annotation; layers already eStargz are kept. "
        "No sync. Prints the twin's digest."
    ),
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
