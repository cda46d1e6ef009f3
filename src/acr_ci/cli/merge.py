"""``acr-ci merge FILE…``: the platform images that ``build --push-by-digest`` runners
pushed become one image index per rule, pushed under every tag of the rule, once."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from acr_ci.cli.common import (
    Command,
    RefOptions,
    add_config_flag,
    add_registry_flags,
    registry_access,
)
from acr_ci.errors import UsageError
from acr_ci.registry.access import RegistryAccess


@dataclass(frozen=True)
class MergeOptions:
    files: tuple[str, ...]
    """Digests files written by ``acr-ci build --push-by-digest --digests-file``."""
    ref: RefOptions = field(default_factory=RefOptions)
    """Only the config is read from here: ref, sha and time come from the files."""
    output_json: str | None = None
    access: RegistryAccess = field(default_factory=RegistryAccess)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="digests files, from every runner")
    add_config_flag(p)
    p.add_argument("--output-json", metavar="FILE", help="write rule, tags and index digests here")
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> MergeOptions:
    return MergeOptions(
        files=tuple(args.files),
        ref=RefOptions(config=args.config),
        output_json=args.output_json,
        access=registry_access(args),
    )


def execute(opts: MergeOptions) -> int:
    raise UsageError("acr-ci merge is not built yet")


COMMAND = Command(
    name="merge",
    help="merge the platform images of build --push-by-digest runners into one tagged index",
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
