"""``acr-ci build [--push | --push-by-digest]``: the chain stopped after the build (or the push).

Builds every rule matching the ref (or ``--rule``'s), stopping at the first failure;
with ``--push``, checks immutable tags for every image before the first push, then
pushes each under all its tags. Prints ``IMAGE:TAG@DIGEST`` per tag, and writes
``--output-json``.

One runner per architecture: ``--platform P`` builds only P of each rule (P must be one of
the rule's platforms) and ``--push-by-digest`` pushes each platform image by digest only,
moving no tag; ``--digests-file F`` gets one JSON line per platform image for ``acr-ci
merge``, which tags the multi-platform index once (:mod:`acr_ci.merge`). Prints
``IMAGE@DIGEST`` per platform image.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acr_ci.cli.common import (
    Command,
    RefOptions,
    add_layout_dir_flag,
    add_ref_flags,
    add_registry_flags,
    ref_options,
    registry_access,
)
from acr_ci.errors import EXIT_OK, UsageError
from acr_ci.registry.access import RegistryAccess

if TYPE_CHECKING:
    from acr_ci.build import BuildResult
    from acr_ci.models import BuildPlan, RefContext
    from acr_ci.registry.client import Client


@dataclass(frozen=True)
class BuildOptions:
    ref: RefOptions = field(default_factory=RefOptions)
    push: bool = False
    rule: str | None = None
    """Build only this rule."""
    output_json: str | None = None
    layout_dir: str | None = None
    """Where the OCI layouts go (None: a new temporary folder, kept)."""
    access: RegistryAccess = field(default_factory=RegistryAccess)
    platforms: tuple[str, ...] = ()
    """Build only these of each rule's platforms (``--platform``, repeatable; empty: all)."""
    push_by_digest: bool = False
    """Push each platform's image manifest by digest only: no tag is created or moved."""
    digests_file: str | None = None
    """With ``push_by_digest``: append one JSON line per pushed platform image here."""


def _add_arguments(p: argparse.ArgumentParser) -> None:
    add_ref_flags(p)
    p.add_argument("--push", action="store_true", help="push each image under all its tags")
    p.add_argument("--rule", metavar="NAME", help="build only this rule")
    p.add_argument(
        "--output-json", metavar="FILE", help="write rule, tags and digests of each build here"
    )
    p.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="OS/ARCH[/VARIANT]",
        help="build only this platform of each rule (repeatable; each must be in the rule's platforms)",
    )
    p.add_argument(
        "--push-by-digest",
        action="store_true",
        help="push each platform image by digest only (no tag moves); `acr-ci merge` tags them",
    )
    p.add_argument(
        "--digests-file",
        metavar="FILE",
        help="with --push-by-digest: append one JSON line per pushed platform image here",
    )
    add_layout_dir_flag(p)
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> BuildOptions:
    return BuildOptions(
        platforms=tuple(args.platform),
        push_by_digest=args.push_by_digest,
        digests_file=args.digests_file,
        ref=ref_options(args),
        push=args.push,
        rule=args.rule,
        output_json=args.output_json,
        layout_dir=args.layout_dir,
        access=registry_access(args),
    )


def result_json(plan: BuildPlan, result: BuildResult) -> dict[str, object]:
    """One build in ``acr-ci build --output-json``."""
    return {
        "rule": plan.rule,
        "builder": result.builder,
        "image": plan.image,
        "images": list(plan.images),
        "tags": list(plan.tags),
        "index_digest": result.index_digest,
        "platforms": dict(result.platforms),
        "layout": str(result.layout),
        "seconds": round(result.seconds, 3),
        "cache": None if result.cache is None else result.cache.to_json(),
    }


def check_options(opts: BuildOptions) -> None:
    """The flag combinations that cannot work: a :class:`UsageError` naming the flags."""
    if opts.push_by_digest and opts.push:
        raise UsageError(
            "--push and --push-by-digest exclude each other",
            "--push tags the image; --push-by-digest pushes platform images for `acr-ci merge`",
        )
    if opts.digests_file and not opts.push_by_digest:
        raise UsageError(
            "--digests-file needs --push-by-digest", "add --push-by-digest, or drop --digests-file"
        )
    if opts.platforms and opts.push:
        raise UsageError(
            "--platform with --push would tag an image that lacks the rule's other platforms",
            "on one runner per platform use --push-by-digest --digests-file F, then `acr-ci "
            "merge` the files; or drop --platform",
        )


def execute(opts: BuildOptions) -> int:
    from acr_ci import fileio, tags
    from acr_ci.build.service import select_plans, select_platforms
    from acr_ci.chain import Chain, ChainParts, Stop
    from acr_ci.cli.common import config_client

    check_options(opts)
    cfg = opts.ref.load_config()
    ref = opts.ref.detect_ref()
    plans = select_plans(tags.plan(cfg, ref), opts.rule, [r.name for r in cfg.build.rules])
    plans = select_platforms(plans, opts.platforms)
    doc: dict[str, Any] = {"ref": {"type": str(ref.type), "name": ref.name, "sha": ref.sha}}
    if not plans:
        print("no rule matches: nothing to build")
        if opts.output_json:
            fileio.write_json(opts.output_json, {**doc, "builds": []}, what="--output-json")
        return EXIT_OK
    workdir = Path(opts.layout_dir or tempfile.mkdtemp(prefix="acr-ci-build-"))
    with config_client(cfg, opts.access) as client:
        parts = ChainParts(
            client=client,
            workdir=workdir,
            log=sys.stderr,
            stop=Stop.PUSH if opts.push else Stop.BUILD,
            fail_fast=True,
        )
        builds = Chain(cfg, ref, parts).execute(plans).builds
        built = [(p, b) for p, b in zip(plans, builds, strict=True) if b is not None]
        if opts.push_by_digest:
            return _push_by_digest(opts, client, ref, built, doc)
    for plan, result in built:
        for image in plan.images:
            print(f"{image}@{result.index_digest}")
    if opts.output_json:
        doc["builds"] = [result_json(p, b) for p, b in built]
        fileio.write_json(opts.output_json, doc, what="--output-json")
    return EXIT_OK


def _push_by_digest(
    opts: BuildOptions,
    client: Client,
    ref: RefContext,
    built: list[tuple[BuildPlan, BuildResult]],
    doc: dict[str, Any],
) -> int:
    """Push every built platform image by digest, then write the digests file and JSON."""
    from acr_ci import fileio, merge

    lines: list[merge.DigestLine] = []
    for plan, result in built:
        pushed = merge.push_platform_images(client, plan, result)
        for platform, digest in pushed.items():
            sys.stderr.write(f"[{plan.rule}] pushed {plan.image}@{digest} ({platform}), no tag\n")
            print(f"{plan.image}@{digest}")
        lines.extend(merge.digest_lines(plan, pushed, ref))
    if opts.digests_file:
        merge.append_digests(opts.digests_file, lines)
    if opts.output_json:
        doc["builds"] = [result_json(p, b) for p, b in built]
        doc["digests"] = [line.to_json() for line in lines]
        fileio.write_json(opts.output_json, doc, what="--output-json")
    return EXIT_OK


COMMAND = Command(
    name="build",
    help="build the images of every rule matching this ref",
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
