"""``acr-ci plan``: which images and tags this ref would build."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Literal

from acr_ci.cli.common import Command, RefOptions, add_ref_flags, ref_options
from acr_ci.errors import EXIT_OK


@dataclass(frozen=True)
class PlanOptions:
    ref: RefOptions = field(default_factory=RefOptions)
    format: Literal["text", "json"] = "text"


def _add_arguments(p: argparse.ArgumentParser) -> None:
    add_ref_flags(p)
    p.add_argument("--format", choices=["text", "json"], default="text")


def _options(args: argparse.Namespace) -> PlanOptions:
    return PlanOptions(ref=ref_options(args), format=args.format)


def execute(opts: PlanOptions) -> int:
    from acr_ci import tags

    cfg = opts.ref.load_config()
    ref = opts.ref.detect_ref()
    plans = tags.plan(cfg, ref)
    if opts.format == "json":
        doc = {
            "ref": {"type": str(ref.type), "name": ref.name, "sha": ref.sha},
            "builds": [p.to_json() for p in plans],
        }
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    print(f"{ref.type} {ref.name} @ {ref.sha[:12] or '(unknown commit)'} (from {ref.source})")
    if not plans:
        print("no rule matches: nothing to build")
    for p in plans:
        print(f"rule {p.rule}: {', '.join(p.platforms)}  ({p.context}/{p.dockerfile})")
        for image in p.images:
            print(f"  {image}")
        if p.cache is not None:
            print(f"  cache: {p.cache.ref} (mode {p.cache.mode})")
    return EXIT_OK


COMMAND = Command(
    name="plan",
    help="show which images and tags this ref would build",
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
