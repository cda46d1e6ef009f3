"""``acr-ci run``: the whole chain; writes the run record and prints its summary."""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acr_ci.cli.common import (
    Command,
    RefOptions,
    add_layout_dir_flag,
    add_ref_flags,
    add_registry_flags,
    ref_options,
    registry_access,
)
from acr_ci.models import DEFAULT_RECORD_PATH as DEFAULT_PATH
from acr_ci.registry.access import RegistryAccess

if TYPE_CHECKING:
    from acr_ci.config import Config


@dataclass(frozen=True)
class RunOptions:
    ref: RefOptions = field(default_factory=RefOptions)
    record: str = DEFAULT_PATH
    """Where the run record goes."""
    layout_dir: str | None = None
    """Where the OCI layouts go (None: a new temporary folder, kept)."""
    access: RegistryAccess = field(default_factory=RegistryAccess)
    gitlab_report: str | None = None
    """Where the scans' GitLab ``container_scanning`` report goes (None: none; the GitLab
    front end's ``container-scanning-report`` input, not a flag)."""
    merge: tuple[str, ...] = ()
    """Digests files from ``build --push-by-digest`` runners: the chain goes on from their
    merged index instead of building (empty: build)."""
    accelerate: bool | None = None
    """``--accelerate``: the accelerated twin of every passed image even without the config's
    ``accelerate:`` section (its defaults then); ``--no-accelerate``: none; None: the config
    decides. A rule's ``accelerate: false`` still holds."""


def _add_arguments(p: argparse.ArgumentParser) -> None:
    add_ref_flags(p)
    p.add_argument(
        "--record",
        metavar="FILE",
        default=DEFAULT_PATH,
        help=f"where the run record goes (default: {DEFAULT_PATH})",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        default=[],
        metavar="FILE",
        help="merge these digests files (from build --push-by-digest) and run the chain on the index",
    )
    p.add_argument(
        "--accelerate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="make (or with --no-accelerate, skip) the eStargz twin of every passed image, "
        "whatever the config's accelerate: section says (default: the config decides)",
    )
    add_layout_dir_flag(p)
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        merge=tuple(args.merge),
        ref=ref_options(args),
        record=args.record,
        layout_dir=args.layout_dir,
        access=registry_access(args),
        accelerate=args.accelerate,
    )


def with_accelerate(cfg: Config, on: bool | None) -> Config:
    """``cfg`` with ``--accelerate``/``--no-accelerate`` applied (a new value): on keeps the
    config's ``accelerate:`` settings, or adds the defaults; off drops them."""
    from dataclasses import replace

    from acr_ci.config.model import AccelerateConfig

    if on is None or (on and cfg.accelerate is not None):
        return cfg
    return replace(cfg, accelerate=AccelerateConfig() if on else None)


def execute(opts: RunOptions) -> int:
    from pathlib import Path

    from acr_ci import chain, record
    from acr_ci.cli.common import config_client

    cfg = with_accelerate(opts.ref.load_config(), opts.accelerate)
    with config_client(cfg, opts.access) as client:
        if opts.merge:
            from acr_ci.cli.merge import prepare_merge

            ref, indexes = prepare_merge(opts.ref, opts.merge, cfg, client)
        else:
            ref = opts.ref.detect_ref()
        parts = chain.ChainParts(
            client=client,
            workdir=Path(opts.layout_dir) if opts.layout_dir else None,
            log=io.StringIO() if opts.access.quiet else sys.stderr,
            gitlab_report=opts.gitlab_report,
        )
        if opts.merge:
            run = chain.Chain(cfg, ref, parts).execute_merged(indexes).record
        else:
            run = chain.run_chain(cfg, ref, parts)
    path = record.write(run, opts.record)
    sys.stdout.write(record.summary_markdown(run))
    sys.stderr.write(f"acr-ci: run record written to {path}\n")
    return run.exit_code


COMMAND = Command(
    name="run",
    help="the whole chain: plan, build, push, scan gate, sync, triggers; writes the run record",
    description=(
        "Build every rule matching the ref, push, scan, mirror and announce each image, write "
        "the run record (JSON) and print a Markdown summary. Exit 3 if an image was blocked, "
        "1 if a step failed, else 0."
    ),
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
