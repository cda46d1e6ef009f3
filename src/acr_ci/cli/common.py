"""What the command modules share: the parser class, the flag groups, typed options.

Each command module (:mod:`acr_ci.cli.plan`, :mod:`~acr_ci.cli.build`, …) defines one
:class:`Command`: how its flags look (``add_arguments``), how parsed flags become its
typed options (``options``), and ``execute(options) -> exit code``, which calls one stage
and formats its result. The front ends build the same options from their inputs and call
the same ``execute``; nothing else in acr-ci sees argparse, stdin or exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TextIO, TypeVar

from acr_ci.errors import EXIT_USAGE
from acr_ci.registry.access import DEFAULT_JOBS, Login, RegistryAccess

if TYPE_CHECKING:
    from acr_ci.config.model import Config
    from acr_ci.models import RefContext
    from acr_ci.registry.client import Client

OptionsT = TypeVar("OptionsT")

CONFIG_HELP = "the rule config (default: $ACR_CI_CONFIG or .acr-ci.yml)"


class Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit 2 (its own convention too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"acr-ci: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


@dataclass(frozen=True)
class Command(Generic[OptionsT]):
    """One subcommand: its grammar, its typed options, and what it does."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    options: Callable[[argparse.Namespace], OptionsT]
    """Parsed flags (and the environment, stdin for ``--password-stdin``) → options."""
    execute: Callable[[OptionsT], int]
    """Options → one stage call → printed result → exit code."""
    description: str | None = None

    def run(self, args: argparse.Namespace) -> int:
        return self.execute(self.options(args))


# -- shared option groups ---------------------------------------------------------------


@dataclass(frozen=True)
class RefOptions:
    """Where the config is and which ref the run is about (unset: from the CI environment)."""

    config: str | None = None
    ref: str | None = None
    sha: str | None = None
    time: str | None = None

    def load_config(self) -> Config:
        from acr_ci import config as config_mod

        return config_mod.load(self.config)

    def detect_ref(self) -> RefContext:
        from acr_ci import platforms

        return platforms.detect_ref(ref=self.ref, sha=self.sha, time=self.time)


def add_config_flag(p: argparse.ArgumentParser, help: str = CONFIG_HELP) -> None:
    p.add_argument("--config", metavar="F", help=help)


def add_ref_flags(p: argparse.ArgumentParser) -> None:
    add_config_flag(p)
    p.add_argument("--ref", metavar="R", help="refs/heads/X, refs/tags/X or a bare branch name")
    p.add_argument("--sha", metavar="S", help="the commit ID (hex)")
    p.add_argument("--time", metavar="T", help="the push time: ISO 8601 or epoch seconds")


def add_layout_dir_flag(p: argparse.ArgumentParser) -> None:
    """``--layout-dir``: where ``build`` and ``run`` write their OCI layouts."""
    p.add_argument(
        "--layout-dir",
        metavar="DIR",
        help="where the OCI layouts go (default: a new temporary directory, kept)",
    )


def ref_options(args: argparse.Namespace) -> RefOptions:
    return RefOptions(config=args.config, ref=args.ref, sha=args.sha, time=args.time)


def add_registry_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the registry password from stdin (user from $ACR_CI_REGISTRY_USERNAME)",
    )
    p.add_argument(
        "--insecure",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="allow plain HTTP / unverified TLS for this registry (loopback always is)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=DEFAULT_JOBS,
        metavar="N",
        help=f"parallel transfers per registry (default {DEFAULT_JOBS})",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def registry_access(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
) -> RegistryAccess:
    """:class:`RegistryAccess` from the registry flags and the CI login in the environment;
    ``--password-stdin`` reads one line of ``stdin`` here (the only read of stdin)."""
    env = os.environ if env is None else env
    password: str | None = None
    if getattr(args, "password_stdin", False):
        password = (stdin or sys.stdin).readline().rstrip("\r\n")
    return RegistryAccess(
        insecure=tuple(getattr(args, "insecure", ())),
        jobs=getattr(args, "jobs", DEFAULT_JOBS),
        quiet=getattr(args, "quiet", False),
        login=Login.from_env(env, password=password),
    )


def config_client(
    config: Config,
    access: RegistryAccess | None = None,
    *,
    images: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> Client:
    """The registry client of a command over ``config`` (sync, trigger, scan, build, run).

    The CI login goes to the config's image registry and the registries of ``images``;
    every other host, mirrors included, gets what the docker config holds for it. Plain
    HTTP is allowed for ``access.insecure``, ``$ACR_CI_INSECURE_REGISTRIES``, the config's
    ``insecure_registries`` and sync destinations marked ``insecure: true``. Requests per
    host are limited as the config's ``registries:`` says.
    """
    from acr_ci.registry.access import hosts_of, open_client
    from acr_ci.sync import insecure_hosts

    return open_client(
        access or RegistryAccess(),
        login_hosts=hosts_of(config.image, *images),
        insecure=insecure_hosts(config),
        env=env,
        limits=config.registries,
    )
