"""The ``acr-ci`` command layer: argv (or a front end's inputs) → typed options → one stage
call → formatted result → exit code.

All of argparse lives in this package, one module per command (:mod:`.plan`,
:mod:`.build`, :mod:`.merge`, :mod:`.run`, :mod:`.scan`, :mod:`.sync`, :mod:`.trigger`, :mod:`.push`,
:mod:`.copy`, :mod:`.inspect`, :mod:`.schema`, :mod:`.sign`, :mod:`.attest`, :mod:`.verify`,
:mod:`.accelerate`); :mod:`.common` holds the shared flag
groups, typed options and the registry client over a config. :func:`invoke` is the one
top-level handler: it maps :class:`~acr_ci.errors.AcrError` to its exit code with a
one-line message (``--verbose``: the traceback too; the message cleaned of control
characters and workflow commands by :func:`acr_ci.text.safe_output`), and anything else — a bug — to one
line and exit 1. The front ends build the same typed options and call :func:`invoke`
with the command's ``execute``.

Heavy modules are imported inside the command that needs them, so that
``acr-ci --help`` and ``acr-ci plan`` start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from acr_ci import __version__
from acr_ci.cli import (
    accelerate,
    attest,
    build,
    copy,
    inspect,
    merge,
    plan,
    push,
    run,
    scan,
    schema,
    sign,
    sync,
    trigger,
    verify,
)
from acr_ci.cli.common import Command, Parser
from acr_ci.errors import EXIT_FAILED, EXIT_OK, AcrError
from acr_ci.text import safe_output

COMMANDS: tuple[Command[Any], ...] = (
    plan.COMMAND,
    build.COMMAND,
    merge.COMMAND,
    schema.COMMAND,
    push.COMMAND,
    copy.COMMAND,
    inspect.COMMAND,
    scan.COMMAND,
    sync.COMMAND,
    trigger.COMMAND,
    sign.COMMAND,
    attest.COMMAND,
    verify.COMMAND,
    run.COMMAND,
    accelerate.COMMAND,
)
"""Every subcommand, in ``--help`` order."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="acr-ci",
        description="Build, push, scan, mirror and announce container images from any CI.",
    )
    parser.add_argument("--version", action="version", version=f"acr-ci {__version__}")
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="log what acr-ci does; tracebacks on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.description)
        command.add_arguments(p)
        p.set_defaults(handler=command)
    return parser


def verbose_logging() -> None:
    """acr-ci's own log lines on stderr; HTTP libraries stay at warnings (their debug lines
    carry request paths, which may hold tokens)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="acr-ci: %(name)s: %(message)s")
    logging.getLogger("acr_ci").setLevel(logging.DEBUG)
    for noisy in ("urllib3", "requests"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def invoke(action: Callable[[], int], *, verbose: bool = False) -> int:
    """Run one command (``action``) under the top-level handler; returns its exit code."""
    if verbose:
        verbose_logging()
    try:
        return action()
    except AcrError as e:
        if verbose:
            traceback.print_exc()
        sys.stderr.write(f"acr-ci: error: {safe_output(e.diagnostics())}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("acr-ci: interrupted\n")
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. `acr-ci plan | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # a bug: one line (the traceback with --verbose), never a crash
        if verbose:
            traceback.print_exc()
        sys.stderr.write(
            f"acr-ci: internal error: {type(e).__name__} (run with --verbose for details, "
            "and please report it)\n"
        )
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Command[Any] = args.handler
    return invoke(lambda: command.run(args), verbose=args.verbose)


__all__ = ["COMMANDS", "build_parser", "invoke", "main", "verbose_logging"]
