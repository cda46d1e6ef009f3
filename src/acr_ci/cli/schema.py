"""``acr-ci schema``: the config's JSON Schema."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from acr_ci.cli.common import Command
from acr_ci.errors import EXIT_OK


@dataclass(frozen=True)
class SchemaOptions:
    pass


def execute(opts: SchemaOptions) -> int:
    from acr_ci.config import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


def _add_arguments(p: argparse.ArgumentParser) -> None:
    pass


COMMAND = Command(
    name="schema",
    help="print the config's JSON Schema",
    add_arguments=_add_arguments,
    options=lambda args: SchemaOptions(),
    execute=execute,
)
