"""A real OCI registry for tests: Debian's ``docker-registry`` (distribution 2.8) on loopback.

``RegistryServer(workdir, kind=…)`` writes a config, starts ``docker-registry serve`` on a
free ``127.0.0.1`` port (retrying on bind conflicts), waits until ``GET /v2/`` answers and,
on :meth:`RegistryServer.stop`, terminates it (then kills it). The log file stays in
``workdir`` and :meth:`RegistryServer.log_tail` returns its end for failure messages.

Kinds:

* ``plain`` — anonymous read/write;
* ``basic`` — htpasswd (bcrypt) with one user, :attr:`username` / :attr:`password`;
* ``token`` — distribution's ``auth.token``: a :class:`~tests.support.tokenserver.TokenServer`
  (in a thread) issues JWTs for the same user; reach it as :attr:`token_server`.

The registry speaks plain HTTP (``http://127.0.0.1:PORT``).
"""

from __future__ import annotations

import ctypes
import http.client
import os
import secrets
import signal
import ssl
import subprocess
import time
from pathlib import Path
from typing import Literal

from tests.support._proc import free_port, registry_binary
from tests.support.tokenserver import TokenServer

Kind = Literal["plain", "basic", "token"]
KINDS: tuple[Kind, ...] = ("plain", "basic", "token")

START_TIMEOUT = 20.0
"""Seconds to wait for ``GET /v2/`` to answer after starting."""
BIND_ATTEMPTS = 5


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when the test process dies (no strays)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class RegistryStartError(RuntimeError):
    """The registry did not come up; the message carries the end of its log."""


class RegistryServer:
    """One ``docker-registry`` process with its config, storage and log under ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        *,
        kind: Kind = "plain",
        delete: bool = True,
        username: str = "acr-user",
        password: str | None = None,
        token_expires_in: int = 300,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown registry kind {kind!r}; one of {KINDS}")
        self.workdir = Path(workdir)
        self.kind: Kind = kind
        self.delete = delete
        """Whether ``storage.delete.enabled`` is on (manifest/blob DELETE allowed)."""
        self.username = username
        """The user for ``basic`` and ``token`` kinds."""
        self.password = password or ("pw-" + secrets.token_urlsafe(12))
        """That user's password (random per server unless given)."""
        self.tls = tls
        """``(certificate PEM, key PEM)``: serve HTTPS with them instead of plain HTTP."""
        self.storage = self.workdir / "storage"
        """The filesystem storage root (``docker/registry/v2/…`` below it)."""
        self.config_path = self.workdir / "config.yml"
        self.log_path = self.workdir / "registry.log"
        self.port = 0
        self.token_server: TokenServer | None = None
        """The token server of a ``token`` registry (``None`` otherwise)."""
        if kind == "token":
            self.token_server = TokenServer(
                users={username: self.password}, expires_in=token_expires_in
            )
        self._binary = registry_binary()
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses -----------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` — the registry part of an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with ``tls``; no trailing slash)."""
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def credentials(self) -> tuple[str, str] | None:
        """``(username, password)`` for ``basic``/``token`` kinds, ``None`` for ``plain``."""
        return None if self.kind == "plain" else (self.username, self.password)

    def ref(self, repo_and_tag: str) -> str:
        """``127.0.0.1:PORT/`` + ``repo_and_tag`` (e.g. ``ref("team/app:v1")``)."""
        return f"{self.host}/{repo_and_tag}"

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> RegistryServer:
        """Start the registry (and the token server); raise :class:`RegistryStartError`."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(exist_ok=True)
        if self.token_server is not None:
            self.token_server.start()
            self.token_server.write_cert_bundle(self.workdir / "token-root.pem")
        if self.kind == "basic":
            self._write_htpasswd()
        last = ""
        try:
            for _ in range(BIND_ATTEMPTS):
                self.port = free_port()
                self._write_config()
                if self._spawn_and_wait():
                    return self
                last = self.log_tail()
                if "address already in use" not in last:
                    break
            raise RegistryStartError(
                f"docker-registry ({self.kind}) did not start; log {self.log_path}:\n{last}"
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate the registry (kill after 5 s) and stop the token server. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self.token_server is not None:
            self.token_server.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the registry's log (for assertion messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"RegistryServer(kind={self.kind!r}, url={self.url!r}, delete={self.delete})"

    # -- internals -------------------------------------------------------------

    def _write_htpasswd(self) -> None:
        # -i: the password comes on stdin, never in argv; -C 4: the cheapest bcrypt cost.
        out = subprocess.run(
            ["htpasswd", "-niBC", "4", self.username],
            input=self.password.encode(),
            capture_output=True,
            check=True,
        ).stdout
        (self.workdir / "htpasswd").write_bytes(out.strip() + b"\n")

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
        ]
        if self.tls is not None:
            cert, key = self.tls
            lines += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
        if self.kind == "basic":
            lines += [
                "auth:",
                "  htpasswd:",
                "    realm: acr-ci-test",
                f"    path: {self.workdir / 'htpasswd'}",
            ]
        elif self.kind == "token":
            ts = self.token_server
            assert ts is not None
            lines += [
                "auth:",
                "  token:",
                f"    realm: {ts.realm}",
                f"    service: {ts.service}",
                f"    issuer: {ts.issuer}",
                f"    rootcertbundle: {self.workdir / 'token-root.pem'}",
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
            f"docker-registry did not answer GET /v2/ within {START_TIMEOUT}s; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _answers(self) -> bool:
        conn: http.client.HTTPConnection
        if self.tls is not None:  # the fixture only asks whether it is up: no verification
            unverified = ssl._create_unverified_context()
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=1, context=unverified)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            conn.request("GET", "/v2/")
            status = conn.getresponse().status
            return status in (200, 401)
        except OSError:
            return False
        finally:
            conn.close()
