"""``acr-ci trigger``: the webhooks for one pushed tag."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acr_ci.cli.common import (
    Command,
    add_config_flag,
    add_registry_flags,
    config_client,
    registry_access,
)
from acr_ci.cli.sync import exit_code
from acr_ci.models import Status
from acr_ci.registry.access import RegistryAccess

if TYPE_CHECKING:
    from acr_ci.triggers import TriggerResult


@dataclass(frozen=True)
class TriggerOptions:
    image: str
    """``IMAGE:TAG[@DIGEST]``."""
    config: str | None = None
    access: RegistryAccess = field(default_factory=RegistryAccess)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", metavar="IMAGE:TAG[@DIGEST]")
    add_config_flag(p)
    add_registry_flags(p)


def _options(args: argparse.Namespace) -> TriggerOptions:
    return TriggerOptions(image=args.image, config=args.config, access=registry_access(args))


def describe(result: TriggerResult) -> str:
    """One line for a person: trigger, redacted target, outcome per tag."""
    head = f"trigger {result.name} -> {result.target}: {result.status}"
    if not result.deliveries:
        return f"{head} ({result.reason})" if result.reason else head
    parts = []
    for d in result.deliveries:
        answer = f"HTTP {d.http_status}" if d.http_status is not None else "no answer"
        extra = f", {d.attempts} attempts" if d.attempts > 1 else ""
        parts.append(f"{d.tag} {answer}{extra}")
    line = f"{head}: {'; '.join(parts)}"
    if result.status is Status.FAILED and result.reason:
        line += f" ({result.reason})"
    return line


def execute(opts: TriggerOptions) -> int:
    from acr_ci import config as config_mod
    from acr_ci import triggers

    cfg = config_mod.load(opts.config)
    with config_client(cfg, opts.access, images=(opts.image,)) as client:
        results = triggers.announce_tag(cfg, opts.image, client=client)
    for r in results:
        print(describe(r))
    return exit_code(r.status for r in results)


COMMAND = Command(
    name="trigger",
    help="call the triggers: webhooks for one pushed tag",
    description=(
        "POST the hosted console's webhook payload for IMAGE:TAG to every trigger that "
        "selects TAG. The digest is looked up in the registry unless given (IMAGE:TAG@DIGEST). "
        "Exit 1 if any trigger failed."
    ),
    add_arguments=_add_arguments,
    options=_options,
    execute=execute,
)
