"""Registry credentials and ``WWW-Authenticate`` challenges.

Credentials come from, in order: explicit ones given to the client (CI env
``ACR_CI_REGISTRY_USERNAME`` / ``ACR_CI_REGISTRY_PASSWORD`` or
``--password-stdin``, scoped to the hosts the caller names), then
``$REGISTRY_AUTH_FILE``, then the docker config directory ``$DOCKER_CONFIG`` (or
``~/.docker``): its ``config.json``, then its ``.dockerconfigjson`` (the file a Kubernetes
Secret of type ``kubernetes.io/dockerconfigjson`` mounts; same format), each with
``credHelpers[host]``, ``credsStore``, ``auths``.
Helpers run as ``docker-credential-NAME get`` with the host on stdin; nothing
secret ever goes into argv.

:class:`Credentials` hides its secret from ``repr`` so it cannot leak into
logs or tracebacks by accident.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from acr_ci.errors import AcrError, UnauthorizedError, UsageError
from acr_ci.fileio import read_bounded
from acr_ci.jsonload import loads_bounded

ENV_USERNAME = "ACR_CI_REGISTRY_USERNAME"
ENV_PASSWORD = "ACR_CI_REGISTRY_PASSWORD"  # noqa: S105 - a variable name, not a secret
DOCKER_HUB_KEYS = (
    "https://index.docker.io/v1/",
    "index.docker.io",
    "docker.io",
    "registry-1.docker.io",
)
HELPER_TIMEOUT = 30.0
MAX_CONFIG_BYTES = 4 * 1024 * 1024
"""The largest docker config file read."""
MAX_HELPER_OUTPUT = 1024 * 1024
"""The largest answer of a credential helper parsed."""


@dataclass(frozen=True)
class Credentials:
    """A username and a secret (password, or an identity token when ``username`` is ``<token>``)."""

    username: str
    """The user name (``<token>`` for an identity/refresh token)."""
    secret: str = field(repr=False)
    """The password or token: never printed."""

    @property
    def is_identity_token(self) -> bool:
        return self.username == "<token>"

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, secret=<redacted>)"


class CredentialSource(Protocol):
    """Where the client gets credentials for a registry host (``host[:port]``)."""

    def get(self, host: str) -> Credentials | None:
        """Credentials for ``host``, or None for anonymous access."""
        ...


@dataclass(frozen=True)
class StaticCredentials:
    """Fixed credentials for a set of hosts (the CI env / ``--password-stdin`` case)."""

    credentials: Credentials
    """What to use."""
    hosts: frozenset[str]
    """Which registry hosts to use it for; never sent anywhere else."""

    def get(self, host: str) -> Credentials | None:
        return self.credentials if normalize_host(host) in self.hosts else None


@dataclass(frozen=True)
class ChainedCredentials:
    """The first source that has credentials for a host wins."""

    sources: tuple[CredentialSource, ...]
    """Sources in order of precedence."""

    def get(self, host: str) -> Credentials | None:
        for source in self.sources:
            creds = source.get(host)
            if creds is not None:
                return creds
        return None


def ci_then_docker_config(
    ci: CredentialSource | None, env: Mapping[str, str] | None = None
) -> CredentialSource:
    """The credentials every command uses: CI credentials (env or ``--password-stdin``,
    already scoped to their hosts) first, then the docker config files."""
    files = DockerConfigCredentials(env=env)
    return ChainedCredentials((ci, files)) if ci else files


def normalize_host(key: str) -> str:
    """``https://host:port/v1/`` → ``host:port``; Docker Hub aliases → ``docker.io``."""
    key = key.strip()
    key = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", key)
    key = key.split("/", 1)[0].lower()
    if key in ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"):
        return "docker.io"
    return key


class DockerConfigCredentials:
    """Credentials from docker-style config files (``auths``, ``credsStore``, ``credHelpers``)."""

    def __init__(
        self, paths: Iterable[Path] | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self._env = dict(os.environ if env is None else env)
        self._paths = list(paths) if paths is not None else default_config_paths(self._env)

    @property
    def paths(self) -> list[Path]:
        return list(self._paths)

    def get(self, host: str) -> Credentials | None:
        wanted = normalize_host(host)
        for path in self._paths:
            doc = _read_config(path)
            if doc is None:
                continue
            creds = self._from_config(doc, wanted, path)
            if creds is not None:
                return creds
        return None

    def _from_config(self, doc: Mapping[str, Any], host: str, path: Path) -> Credentials | None:
        helpers = doc.get("credHelpers") or {}
        if isinstance(helpers, Mapping):
            for key, helper in helpers.items():
                if normalize_host(str(key)) == host and isinstance(helper, str) and helper:
                    return run_helper(helper, _helper_server(str(key), host), self._env)
        auths = doc.get("auths") or {}
        entry: Mapping[str, Any] | None = None
        entry_key = host
        if isinstance(auths, Mapping):
            for key, value in auths.items():
                if normalize_host(str(key)) == host and isinstance(value, Mapping):
                    entry, entry_key = value, str(key)
                    break
        store = doc.get("credsStore")
        if isinstance(store, str) and store:
            creds = run_helper(store, _helper_server(entry_key, host), self._env, missing_ok=True)
            if creds is not None:
                return creds
        if entry is None:
            return None
        return _decode_auth_entry(entry, host, path)


def _helper_server(key: str, host: str) -> str:
    """What to ask a helper for: Docker Hub is stored under its legacy URL."""
    if host == "docker.io":
        return "https://index.docker.io/v1/"
    return key


DOCKER_CONFIG_FILES = ("config.json", ".dockerconfigjson")
"""The files a docker config directory may hold, in order of precedence: ``docker login``'s,
then the one a Kubernetes ``kubernetes.io/dockerconfigjson`` Secret mounts."""


def docker_config_dir(env: Mapping[str, str]) -> Path:
    """The docker config directory: ``$DOCKER_CONFIG``, else ``~/.docker``."""
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"])
    return Path(env.get("HOME") or str(Path.home())) / ".docker"


def default_config_paths(env: Mapping[str, str]) -> list[Path]:
    """``$REGISTRY_AUTH_FILE``, then the docker config directory's ``config.json`` and
    ``.dockerconfigjson``."""
    paths: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        paths.append(Path(env["REGISTRY_AUTH_FILE"]))
    directory = docker_config_dir(env)
    paths.extend(directory / name for name in DOCKER_CONFIG_FILES)
    return paths


def _read_config(path: Path) -> dict[str, Any] | None:
    what = "registry credentials file"
    try:
        data = read_bounded(path, limit=MAX_CONFIG_BYTES, what=what, error=UsageError)
    except FileNotFoundError:
        return None
    if not data.strip():
        return None
    doc = loads_bounded(
        data,
        what=f"{what} {path}",
        max_bytes=MAX_CONFIG_BYTES,
        error=UsageError,
        hint="fix or remove the file",
    )
    if not isinstance(doc, dict):
        raise UsageError(f"registry credentials file {path} is not a JSON object")
    return doc


def _decode_auth_entry(entry: Mapping[str, Any], host: str, path: Path) -> Credentials | None:
    if entry.get("identitytoken"):
        return Credentials("<token>", str(entry["identitytoken"]))
    if entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]))
    auth = entry.get("auth")
    if not auth:
        return None
    try:
        decoded = base64.b64decode(str(auth), validate=True).decode()
    except (binascii.Error, ValueError):  # not base64, not ASCII, or not UTF-8 inside
        decoded = ""
    user, sep, secret = decoded.partition(":")
    if not sep or not user:
        raise UsageError(
            f"registry credentials file {path}: the 'auth' entry for {host} is not base64 of user:password",
            f"log in to {host} again to rewrite it",
        )
    return Credentials(user, secret)


def run_helper(
    name: str, server: str, env: Mapping[str, str], *, missing_ok: bool = False
) -> Credentials | None:
    """Ask ``docker-credential-NAME get`` for ``server`` (sent on stdin, never in argv)."""
    program = f"docker-credential-{name}"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise UsageError(f"credential helper name {name!r} is not valid")
    exe = shutil.which(program, path=env.get("PATH"))
    if exe is None:
        if missing_ok:
            return None
        raise UnauthorizedError(
            f"credential helper {program} for {normalize_host(server)} is not on PATH",
            "install it or remove it from credHelpers in the docker config",
        )
    try:
        proc = subprocess.run(  # argv holds only the helper's path and "get"
            [exe, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            env=dict(env),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UnauthorizedError(
            f"credential helper {program} failed for {normalize_host(server)}: {type(e).__name__}"
        ) from None
    out = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0:
        # Helpers say "credentials not found in native keychain" when there are none.
        text = (out + proc.stderr.decode(errors="replace")).lower()
        if "not found" in text:
            return None
        raise UnauthorizedError(
            f"credential helper {program} failed for {normalize_host(server)} (exit {proc.returncode})",
            "run the helper by hand to see why",
        )
    try:
        doc = loads_bounded(out, what="helper answer", max_bytes=MAX_HELPER_OUTPUT)
        username, secret = str(doc["Username"]), str(doc["Secret"])
    except (AcrError, KeyError, TypeError):
        raise UnauthorizedError(
            f"credential helper {program} gave an unreadable answer for {normalize_host(server)}",
            'a helper prints {"Username": …, "Secret": …}',
        ) from None
    if not secret:
        return None
    return Credentials(username, secret)


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge."""

    scheme: str
    """``basic`` or ``bearer`` (lowercased)."""
    params: Mapping[str, str]
    """Its parameters (``realm``, ``service``, ``scope``, ``error``…), keys lowercased."""


_HTTP_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # noqa: S105 - RFC 7230 token grammar
# Values: quoted strings, or (leniently, as registries write URLs unquoted) runs up to a comma.
_PARAM_RE = re.compile(rf'\s*({_HTTP_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*,?')
_SCHEME_RE = re.compile(rf"\s*({_HTTP_TOKEN})(?=\s|$|,)")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` header into its challenges (RFC 7235 shape)."""
    out: list[Challenge] = []
    pos = 0
    current: tuple[str, dict[str, str]] | None = None
    while pos < len(header):
        if header[pos] in " ,":
            pos += 1
            continue
        m = _PARAM_RE.match(header, pos)
        if m and current is not None:
            value = m.group(2)
            if value is not None:
                value = re.sub(r"\\(.)", r"\1", value)
            else:
                value = m.group(3)
            current[1][m.group(1).lower()] = value
            pos = m.end()
            continue
        s = _SCHEME_RE.match(header, pos)
        if not s:
            break
        if current is not None:
            out.append(Challenge(current[0], current[1]))
        current = (s.group(1).lower(), {})
        pos = s.end()
    if current is not None:
        out.append(Challenge(current[0], current[1]))
    return out
