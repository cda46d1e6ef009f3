"""A real OCI registry for tests: :class:`acr_ci.devkit.registry.RegistryServer` plus auth.

The devkit's registry (Debian's ``docker-registry`` on a free ``127.0.0.1`` port; see its
module doc) is anonymous and plain HTTP, what the demo needs. Tests also need:

* ``plain`` — anonymous read/write (the devkit's);
* ``basic`` — htpasswd (bcrypt) with one user, :attr:`username` / :attr:`password`;
* ``token`` — distribution's ``auth.token``: a :class:`~tests.support.tokenserver.TokenServer`
  (in a thread) issues JWTs for the same user; reach it as :attr:`token_server`;
* ``tls=(cert, key)`` — HTTPS instead of plain HTTP, for any kind.

A missing ``docker-registry`` binary skips the test locally and fails it under ``CI``.
"""

from __future__ import annotations

import http.client
import secrets
import ssl
import subprocess
from pathlib import Path
from typing import Literal

from tests.support._proc import skip_or_fail_on
from tests.support.tokenserver import TokenServer

from acr_ci.devkit import DevkitError
from acr_ci.devkit import registry as devkit
from acr_ci.devkit.registry import RegistryStartError

__all__ = ["KINDS", "Kind", "RegistryServer", "RegistryStartError"]

Kind = Literal["plain", "basic", "token"]
KINDS: tuple[Kind, ...] = ("plain", "basic", "token")


class RegistryServer(devkit.RegistryServer):
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
        try:
            super().__init__(workdir, delete=delete)
        except DevkitError as e:
            skip_or_fail_on(e)
        self.kind: Kind = kind
        self.username = username
        """The user for ``basic`` and ``token`` kinds."""
        self.password = password or ("pw-" + secrets.token_urlsafe(12))
        """That user's password (random per server unless given)."""
        self.tls = tls
        """``(certificate PEM, key PEM)``: serve HTTPS with them instead of plain HTTP."""
        self.token_server: TokenServer | None = None
        """The token server of a ``token`` registry (``None`` otherwise)."""
        if kind == "token":
            self.token_server = TokenServer(
                users={username: self.password}, expires_in=token_expires_in
            )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with ``tls``; no trailing slash)."""
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def credentials(self) -> tuple[str, str] | None:
        """``(username, password)`` for ``basic``/``token`` kinds, ``None`` for ``plain``."""
        return None if self.kind == "plain" else (self.username, self.password)

    def __repr__(self) -> str:
        return f"RegistryServer(kind={self.kind!r}, url={self.url!r}, delete={self.delete})"

    # -- the devkit's hooks --------------------------------------------------------

    def _prepare(self) -> None:
        if self.token_server is not None:
            self.token_server.start()
            self.token_server.write_cert_bundle(self.workdir / "token-root.pem")
        if self.kind == "basic":
            self._write_htpasswd()

    def _config_extra(self) -> list[str]:
        lines: list[str] = []
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
        return lines

    def _probe(self) -> http.client.HTTPConnection:
        if self.tls is None:
            return super()._probe()
        # Only asks whether it is up: no verification.
        unverified = ssl._create_unverified_context()
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=1, context=unverified)

    def _cleanup(self) -> None:
        if self.token_server is not None:
            self.token_server.stop()

    def _write_htpasswd(self) -> None:
        # -i: the password comes on stdin, never in argv; -C 4: the cheapest bcrypt cost.
        out = subprocess.run(
            ["htpasswd", "-niBC", "4", self.username],
            input=self.password.encode(),
            capture_output=True,
            check=True,
        ).stdout
        (self.workdir / "htpasswd").write_bytes(out.strip() + b"\n")
