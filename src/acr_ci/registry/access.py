"""How a command reaches registries: the typed options, and the one client factory.

Every command that talks to a registry (push, copy, inspect, scan, sync, trigger, build
and run) describes its access as a :class:`RegistryAccess` — filled from flags and the
environment by the command layer, or from a front end's inputs — and gets its
:class:`~acr_ci.registry.client.Client` from :func:`open_client`.

Credentials, in order: the CI login (:class:`Login`: ``$ACR_CI_REGISTRY_USERNAME`` with
``$ACR_CI_REGISTRY_PASSWORD`` or ``--password-stdin``, or a front end's inputs), sent to
the hosts the command names only (its target registries); then the docker config files
for every host. Plain HTTP / unverified TLS: loopback always, plus ``insecure``,
``$ACR_CI_INSECURE_REGISTRIES`` and what the caller adds from the config.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acr_ci.errors import UsageError

if TYPE_CHECKING:
    from acr_ci.registry.auth import CredentialSource
    from acr_ci.registry.client import Client
    from acr_ci.registry.limits import LimitEntry
    from acr_ci.registry.progress import Progress

# The registry modules (auth: subprocess, json; client: requests) are imported where they
# are used, so that the command layer's option types cost nothing on `acr-ci plan`.

DEFAULT_JOBS = 4


@dataclass(frozen=True)
class Login:
    """The CI's registry login: a user name and a password or token (never shown)."""

    username: str
    password: str = field(repr=False)
    only: frozenset[str] | None = None
    """The registries this login was issued for (a CI job token: GitLab's for
    ``$CI_REGISTRY``, GitHub's for ``ghcr.io``); ``None``: whatever the command targets."""

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, password: str | None = None) -> Login | None:
        """The login from ``$ACR_CI_REGISTRY_USERNAME``/``PASSWORD``; ``password`` (read
        from ``--password-stdin`` by the command layer) replaces the env's password.
        ``None`` when neither is set; a :class:`UsageError` when only one is."""
        from acr_ci.registry.auth import ENV_PASSWORD, ENV_USERNAME

        user = env.get(ENV_USERNAME, "")
        if password is not None:
            if not user:
                raise UsageError(f"--password-stdin needs the user name in ${ENV_USERNAME}")
            if not password:
                raise UsageError("--password-stdin read an empty password")
            return cls(user, password)
        secret = env.get(ENV_PASSWORD, "")
        if bool(user) != bool(secret):
            missing = ENV_PASSWORD if user else ENV_USERNAME
            raise UsageError(f"${missing} is not set (set both or neither)")
        return cls(user, secret) if user else None

    def for_hosts(self, hosts: Iterable[str]) -> CredentialSource:
        """These credentials, given to ``hosts`` only (and of those, only to the ones in
        :attr:`only` when it is set)."""
        from acr_ci.registry.auth import Credentials, StaticCredentials, normalize_host

        wanted = frozenset(normalize_host(h) for h in hosts if h)
        if self.only is not None:
            wanted &= frozenset(normalize_host(h) for h in self.only)
        return StaticCredentials(Credentials(self.username, self.password), wanted)

    def issued_for(self, *hosts: str) -> Login:
        """This login, restricted to ``hosts`` (a job token for its own registry)."""
        return Login(self.username, self.password, frozenset(hosts))


@dataclass(frozen=True)
class RegistryAccess:
    """A command's registry options (the ``--insecure``/``--jobs``/``--quiet`` flags and
    the CI login)."""

    insecure: tuple[str, ...] = ()
    """``host[:port]`` entries allowed plain HTTP / unverified TLS."""
    jobs: int = DEFAULT_JOBS
    """Parallel transfers per registry."""
    quiet: bool = False
    """No progress output."""
    login: Login | None = None
    """The CI login, for the command's target registries only."""


def open_client(
    access: RegistryAccess,
    *,
    login_hosts: Iterable[str] = (),
    insecure: Iterable[str] = (),
    progress: Progress | None = None,
    env: Mapping[str, str] | None = None,
    limits: Iterable[LimitEntry] = (),
) -> Client:
    """The registry client for one command.

    ``login_hosts``: where the CI login may go (the command's target registries);
    ``insecure``: more hosts allowed plain HTTP (the config's); ``progress``: where
    transfer progress goes (``None``, or when ``access.quiet``: nowhere); ``limits``: the
    config's per-registry request limits (other hosts: ``$ACR_CI_MAX_CONCURRENT`` or 8).
    """
    from acr_ci.registry.auth import ci_then_docker_config
    from acr_ci.registry.client import Client, insecure_from_env
    from acr_ci.registry.limits import default_limit, limits_from_config

    ci = access.login.for_hosts(login_hosts) if access.login else None
    default = default_limit(env)
    return Client(
        credentials=ci_then_docker_config(ci, env),
        insecure=[*access.insecure, *insecure_from_env(env), *insecure],
        jobs=access.jobs,
        progress=None if access.quiet else progress,
        limits=limits_from_config(limits, default),
        default_limit=default,
    )


def hosts_of(*images: str) -> list[str]:
    """The registry host and API host of each image reference (those that parse), once each."""
    from acr_ci.errors import AcrError
    from acr_ci.registry.reference import Reference

    hosts: list[str] = []
    for image in images:
        try:
            ref = Reference.parse(image, what="image")
        except AcrError:
            continue
        hosts += [ref.registry, ref.api_host]
    return list(dict.fromkeys(hosts))


__all__ = ["DEFAULT_JOBS", "Login", "RegistryAccess", "hosts_of", "open_client"]
