"""``acr-ci build [--push]``: the chain stopped after the build (or the push).

Builds every rule matching the ref (or ``--rule``'s), stopping at the first failure;
with ``--push``, checks immutable tags for every image before the first push, then
pushes each under all its tags. Prints ``IMAGE:TAG@DIGEST`` per tag, and writes
``--output-json``.
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
from acr_ci.errors import EXIT_OK
from acr_ci.registry.access import RegistryAccess

if TYPE_CHECKING:
    from acr_ci.build import BuildResult
    from acr_ci.models import BuildPlan


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


def _add_arguments(p: argparse.ArgumentParser) -> None:
    add_ref_flags(p)
    p.add_argument("--push", action="store_true", help="push each image under all its tags")
    p.add_argument("--rule", metavar="NAME", help="build only this rule")
    p.add_argument(
        "--output-json", metavar="FILE", help="write rule, tags and digests of each build here"
    )
    add_layout_dir_flag(p)
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> BuildOptions:
    return BuildOptions(
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


def execute(opts: BuildOptions) -> int:
    from acr_ci import fileio, tags
    from acr_ci.build.service import select_plans
    from acr_ci.chain import Chain, ChainParts, Stop
    from acr_ci.cli.common import config_client

    cfg = opts.ref.load_config()
    ref = opts.ref.detect_ref()
    plans = select_plans(tags.plan(cfg, ref), opts.rule, [r.name for r in cfg.build.rules])
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
    for plan, result in built:
        for image in plan.images:
            print(f"{image}@{result.index_digest}")
    if opts.output_json:
        doc["builds"] = [result_json(p, b) for p, b in built]
        fileio.write_json(opts.output_json, doc, what="--output-json")
    return EXIT_OK


COMMAND = Command(
    name="build",
    help="build the images of every rule matching this ref",
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
