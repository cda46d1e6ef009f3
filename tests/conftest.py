"""Shared fixtures. The machinery lives in ``tests/support/``; this file only wires it up.

Registries (real ``docker-registry`` processes on 127.0.0.1; missing binary → skip locally,
FAIL under ``CI``):

* ``registry`` / ``basic_registry`` / ``token_registry`` — one per test module; use unique
  repository names per test since the module shares the storage.
* ``registry_factory(kind="plain"|"basic"|"token", delete=True)`` — a fresh one per call,
  stopped at the end of the test.
* ``docker_config(*servers)`` — writes their credentials to a temp ``config.json`` and sets
  ``DOCKER_CONFIG`` for the test.
* ``fault_proxy_factory(upstream, ...)`` — a byte-counting, fault-injecting proxy.
* ``oci_layout_factory(**make_layout_kwargs)`` — a generated OCI image layout.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # so tests can `from tests.support import …`
    sys.path.insert(0, _ROOT)

from tests.support import Kind, RegistryServer, write_docker_config  # noqa: E402
from tests.support.faultproxy import FaultProxy  # noqa: E402
from tests.support.layout import Layout, make_layout  # noqa: E402
from tests.support.webhook import WebhookReceiver  # noqa: E402


def _module_registry(
    tmp_path_factory: pytest.TempPathFactory, kind: Kind
) -> Iterator[RegistryServer]:
    server = RegistryServer(tmp_path_factory.mktemp(f"registry-{kind}"), kind=kind)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An anonymous (no auth) registry shared by the test module; deletes enabled.

    ``registry.host`` is ``127.0.0.1:PORT`` (use it in references), ``registry.url`` is
    ``http://127.0.0.1:PORT``; ``registry.log_tail()`` helps failure messages.
    """
    yield from _module_registry(tmp_path_factory, "plain")


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry behind htpasswd basic auth, shared by the test module.

    ``basic_registry.credentials`` is ``(username, password)``; anonymous requests get 401
    with ``WWW-Authenticate: Basic realm="acr-ci-test"``.
    """
    yield from _module_registry(tmp_path_factory, "basic")


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry using bearer tokens (distribution ``auth.token``), shared by the module.

    ``token_registry.credentials`` is the ``(username, password)`` the token server
    accepts; ``token_registry.token_server`` counts requests (``.requests``, ``.issued``,
    ``.log``, ``.reset_counts()``) so tests can assert that tokens are cached. Anonymous
    token requests get 401 and no token.
    """
    yield from _module_registry(tmp_path_factory, "token")


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[Callable[..., RegistryServer]]:
    """Start fresh registries for one test: ``registry_factory(kind="basic", delete=False)``.

    Keyword arguments go to :class:`tests.support.RegistryServer` (``kind``, ``delete``,
    ``username``, ``password``, ``token_expires_in``). All are stopped after the test.
    """
    started: list[RegistryServer] = []

    def make(kind: Kind = "plain", **kwargs: object) -> RegistryServer:
        server = RegistryServer(tmp_path / f"registry-{len(started)}-{kind}", kind=kind, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """``docker_config(server, …)`` writes each server's credentials (base64 ``auth``) to a
    temp ``config.json``, sets ``DOCKER_CONFIG`` to its directory and returns it.

    Servers without credentials (plain) are skipped; pass ``creds={host: (user, pw)}`` for
    arbitrary entries.
    """
    directory = tmp_path / "docker-config"

    def write(*servers: RegistryServer, creds: dict[str, tuple[str, str]] | None = None) -> Path:
        entries = dict(creds or {})
        for s in servers:
            if s.credentials is not None:
                entries[s.host] = s.credentials
        write_docker_config(directory, entries)
        monkeypatch.setenv("DOCKER_CONFIG", str(directory))
        return directory

    return write


@pytest.fixture
def fault_proxy_factory() -> Iterator[Callable[..., FaultProxy]]:
    """``fault_proxy_factory(upstream_host_or_server, **FaultProxy kwargs)`` → a started
    :class:`tests.support.faultproxy.FaultProxy` (stopped after the test).

    With no fault options it is a faithful byte-counting proxy; see ``FaultProxy`` for
    ``fault_rate``, ``faults``, ``seed``, ``retry_after``, ``fail_first``.
    """
    started: list[FaultProxy] = []

    def make(upstream: RegistryServer | str, **kwargs: object) -> FaultProxy:
        host = upstream.host if isinstance(upstream, RegistryServer) else upstream
        proxy = FaultProxy(host, **kwargs)  # type: ignore[arg-type]
        started.append(proxy)
        return proxy.start()

    try:
        yield make
    finally:
        for proxy in started:
            proxy.stop()


@pytest.fixture
def oci_layout_factory(tmp_path: Path) -> Callable[..., Layout]:
    """``oci_layout_factory(platforms=…, layer_sizes=…, seed=…, media="oci"|"docker")`` →
    a :class:`tests.support.layout.Layout` written under ``tmp_path`` (see ``make_layout``).
    """
    count = 0

    def make(**kwargs: object) -> Layout:
        nonlocal count
        count += 1
        return make_layout(tmp_path / f"layout-{count}", **kwargs)  # type: ignore[arg-type]

    return make

# Real builds (tests/support/buildenv.py): qemu_arm64, buildah_storage, buildah_env, busybox_base.
from tests.support.buildenv import (  # noqa: E402, F401
    buildah_env,
    buildah_storage,
    busybox_base,
    qemu_arm64,
)

# Keyless signing (tests/support/sigstore_standin.py): a local Fulcio/Rekor/TSA, session-wide.
from tests.support.sigstore_standin import sigstore_standin  # noqa: E402, F401


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A real local HTTP server recording every webhook request (loopback, free port)."""
    r = WebhookReceiver().start()
    try:
        yield r
    finally:
        r.stop()
