"""A real OCI registry on loopback: Debian's ``docker-registry`` (distribution 2.8).

``RegistryServer(workdir)`` writes a config, starts ``docker-registry serve`` on a free
``127.0.0.1`` port (retrying on bind conflicts), waits until ``GET /v2/`` answers and, on
:meth:`RegistryServer.stop`, terminates it (then kills it). The log file stays in
``workdir`` and :meth:`RegistryServer.log_tail` returns its end for messages.

This registry is anonymous and speaks plain HTTP (``http://127.0.0.1:PORT``): what the demo
needs. The tests' ``tests/support/registry.py`` extends it (basic and token auth, TLS)
through the ``_prepare`` / ``_config_extra`` / ``_probe`` / ``_cleanup`` hooks.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from acr_ci.devkit import DevkitError

REGISTRY_BINARY = "/usr/bin/docker-registry"
"""Debian's ``docker-registry`` (distribution 2.8); override with ``ACR_CI_TEST_REGISTRY_BIN``."""
REGISTRY_BINARY_ENV = "ACR_CI_TEST_REGISTRY_BIN"

START_TIMEOUT = 20.0
"""Seconds to wait for ``GET /v2/`` to answer after starting."""
BIND_ATTEMPTS = 5
STOP_TIMEOUT = 5.0
"""Seconds to wait after SIGTERM (then after SIGKILL) for the process to exit."""


class RegistryStartError(DevkitError):
    """The registry did not come up; the hint carries the end of its log."""


def registry_binary() -> str:
    """The path of the registry binary, or :class:`DevkitError` when it is missing."""
    path = os.environ.get(REGISTRY_BINARY_ENV, REGISTRY_BINARY)
    found = shutil.which(path)
    if found is None:
        raise DevkitError(
            f"registry binary {path!r} not found",
            "install Debian's docker-registry package (apt-get install docker-registry) "
            f"or set {REGISTRY_BINARY_ENV}",
        )
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on bind conflicts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when the starting process dies (no strays)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class RegistryServer:
    """One ``docker-registry`` process with its config, storage and log under ``workdir``."""

    def __init__(self, workdir: Path, *, delete: bool = True) -> None:
        self.workdir = Path(workdir)
        self.delete = delete
        """Whether ``storage.delete.enabled`` is on (manifest/blob DELETE allowed)."""
        self.storage = self.workdir / "storage"
        """The filesystem storage root (``docker/registry/v2/…`` below it)."""
        self.config_path = self.workdir / "config.yml"
        self.log_path = self.workdir / "registry.log"
        self.port = 0
        self._binary = registry_binary()
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses -----------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` — the registry part of an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}"

    def ref(self, repo_and_tag: str) -> str:
        """``127.0.0.1:PORT/`` + ``repo_and_tag`` (e.g. ``ref("team/app:v1")``)."""
        return f"{self.host}/{repo_and_tag}"

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> RegistryServer:
        """Start the registry; raise :class:`RegistryStartError` if it does not answer."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(exist_ok=True)
        last = ""
        try:
            self._prepare()
            for _ in range(BIND_ATTEMPTS):
                self.port = free_port()
                self._write_config()
                if self._spawn_and_wait():
                    return self
                last = self.log_tail()
                if "address already in use" not in last:
                    break
            raise RegistryStartError(
                f"docker-registry did not start; log {self.log_path}", f"its log ends:\n{last}"
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate the registry (kill after 5 s) and clean up. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        self._cleanup()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the registry's log (for messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"RegistryServer(url={self.url!r}, delete={self.delete})"

    # -- hooks for extensions (auth, TLS) ------------------------------------------

    def _prepare(self) -> None:
        """Called once by :meth:`start` before the first port is tried."""

    def _config_extra(self) -> list[str]:
        """Lines appended to the config: ``http.tls`` keys, then top-level ``auth:``."""
        return []

    def _probe(self) -> http.client.HTTPConnection:
        """The connection :meth:`start` asks ``GET /v2/`` on."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)

    def _cleanup(self) -> None:
        """Called by :meth:`stop` after the process is gone."""

    # -- internals -------------------------------------------------------------

    def _write_config(self) -> None:
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  formatter: text",
            "  accesslog:",
            "    disabled: false",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage}",
            "  delete:",
            f"    enabled: {'true' if self.delete else 'false'}",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            f"  secret: {secrets.token_hex(16)}",
            "  headers:",
            "    X-Content-Type-Options: [nosniff]",
            *self._config_extra(),
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def _spawn_and_wait(self) -> bool:
        """Start the process; True once ``/v2/`` answers, False if it exited first."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [self._binary, "serve", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                return False
            # "listening on" proves *our* process holds the port (not a stranger's server).
            if f"listening on 127.0.0.1:{self.port}" in self._log_text() and self._answers():
                return self._proc.poll() is None
            time.sleep(0.05)
        self.stop()
        raise RegistryStartError(
            f"docker-registry did not answer GET /v2/ within {START_TIMEOUT}s; log {self.log_path}",
            f"its log ends:\n{self.log_tail()}",
        )

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _answers(self) -> bool:
        conn = self._probe()
        try:
            conn.request("GET", "/v2/")
            status = conn.getresponse().status
            return status in (200, 401)
        except OSError:
            return False
        finally:
            conn.close()


__all__ = [
    "REGISTRY_BINARY",
    "RegistryServer",
    "RegistryStartError",
    "free_port",
    "registry_binary",
]
