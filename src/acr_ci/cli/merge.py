"""``acr-ci merge FILE…``: the platform images that ``build --push-by-digest`` runners
pushed become one image index per rule, pushed under every tag of the rule, once.

The ref, sha and push time come from the digests files (every runner computed the same
tags from them); where the merge job itself knows its ref (``--ref``/``--sha``/``--time``,
or its CI platform's environment), the files must agree with it. Every rule is checked and
its index built, then immutable tags are checked for all of them, before any tag moves.
Prints ``IMAGE:TAG@DIGEST`` per tag and writes ``--output-json`` like ``build --push``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from acr_ci.cli.common import (
    Command,
    RefOptions,
    add_ref_flags,
    add_registry_flags,
    ref_options,
    registry_access,
)
from acr_ci.errors import EXIT_OK, RefError
from acr_ci.registry.access import RegistryAccess

if TYPE_CHECKING:
    from acr_ci.config.model import Config
    from acr_ci.merge import JobRef, MergedIndex
    from acr_ci.models import RefContext
    from acr_ci.registry.client import Client


@dataclass(frozen=True)
class MergeOptions:
    files: tuple[str, ...]
    """Digests files written by ``acr-ci build --push-by-digest --digests-file``."""
    ref: RefOptions = field(default_factory=RefOptions)
    """The config; ref, sha and time come from the files, and where these options (or the
    CI environment) name them too, the files must agree."""
    output_json: str | None = None
    access: RegistryAccess = field(default_factory=RegistryAccess)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="digests files, from every runner")
    add_ref_flags(p)
    p.add_argument("--output-json", metavar="FILE", help="write rule, tags and index digests here")
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> MergeOptions:
    return MergeOptions(
        files=tuple(args.files),
        ref=ref_options(args),
        output_json=args.output_json,
        access=registry_access(args),
    )


def job_ref(opts: RefOptions) -> JobRef:
    """What the merge job knows of its ref by itself: its CI platform's environment (with
    the flags over it), else only the flags it was given; a local git checkout says
    nothing (the files decide there). The time counts when ``--time`` gives it or GitLab
    does (``CI_PIPELINE_CREATED_AT``, one per pipeline); GitHub's event file may lack one,
    and the job's clock is no pipeline's time."""
    from acr_ci.merge import JobRef
    from acr_ci.platforms.flags import FlagSource

    try:
        own = opts.detect_ref()
    except RefError:
        own = None
    if own is not None and own.source != "local":
        return JobRef(
            ref=(own.type, own.name),
            sha=own.sha or None,
            time=own.time if opts.time is not None or own.source == "gitlab" else None,
            event=own.event,
            repository=own.repository,
            source=own.source,
        )
    flags = FlagSource.parse(ref=opts.ref, sha=opts.sha, time=opts.time)
    return JobRef(ref=flags.given_ref, sha=flags.given_sha, time=flags.given_time)


def prepare_merge(
    opts: RefOptions, files: tuple[str, ...], config: Config, client: Client
) -> tuple[RefContext, list[MergedIndex]]:
    """The agreed ref of the digests ``files`` and one checked, built index per rule."""
    from acr_ci import merge

    lines = merge.read_digests(files)
    ref = merge.agreed_ref(lines, job_ref(opts))
    return ref, merge.prepare(client, config, ref, lines)


def execute(opts: MergeOptions) -> int:
    import sys

    from acr_ci import fileio
    from acr_ci.chain import Chain, ChainParts, Stop
    from acr_ci.cli.common import config_client

    cfg = opts.ref.load_config()
    with config_client(cfg, opts.access) as client:
        ref, indexes = prepare_merge(opts.ref, opts.files, cfg, client)
        parts = ChainParts(client=client, log=sys.stderr, stop=Stop.PUSH, fail_fast=True)
        Chain(cfg, ref, parts).execute_merged(indexes)
    for merged in indexes:
        for image in merged.plan.images:
            print(f"{image}@{merged.digest}")
    if opts.output_json:
        doc: dict[str, Any] = {"ref": {"type": str(ref.type), "name": ref.name, "sha": ref.sha}}
        doc["builds"] = [merged_json(m) for m in indexes]
        fileio.write_json(opts.output_json, doc, what="--output-json")
    return EXIT_OK


def merged_json(merged: MergedIndex) -> dict[str, object]:
    """One merged index in ``acr-ci merge --output-json`` (the keys ``build`` writes that a
    merge knows)."""
    plan = merged.plan
    return {
        "rule": plan.rule,
        "image": plan.image,
        "images": list(plan.images),
        "tags": list(plan.tags),
        "index_digest": merged.digest,
        "platforms": dict(merged.platforms),
        "sources": list(merged.files),
    }


COMMAND = Command(
    name="merge",
    help="merge the platform images of build --push-by-digest runners into one tagged index",
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
