"""Real local services for ``make demo`` and the test suite, started only on loopback.

Not part of the delivery chain and never imported by it: the demo (``examples/demo.py``)
and the tests (``tests/support/``, which adds test-only modes on top) use these to run
what the chain talks to, for real, on ``127.0.0.1``:

* :mod:`acr_ci.devkit.registry` — Debian's ``docker-registry`` on a free port
  (:class:`~acr_ci.devkit.registry.RegistryServer`, anonymous, plain HTTP);
* :mod:`acr_ci.devkit.receiver` — a recording webhook receiver in a thread
  (:class:`~acr_ci.devkit.receiver.WebhookReceiver`);
* :mod:`acr_ci.devkit.baseimage` — a linux/amd64 + linux/arm64 base image made from
  Debian's ``busybox-static``, and qemu registered for arm64 builds.

What the machine lacks (a package, root, binfmt_misc) is a :class:`DevkitError` with the
command that fixes it as its hint; the tests turn it into a skip (or a failure under CI).
"""

from __future__ import annotations

import shutil

from acr_ci.errors import AcrError


class DevkitError(AcrError):
    """A local service could not be started or a tool it needs is missing here."""


def require_tool(name: str, package: str) -> str:
    """The path of the command ``name``, or :class:`DevkitError` naming its Debian package."""
    found = shutil.which(name)
    if found is None:
        raise DevkitError(f"{name!r} not found", f"apt-get install {package}")
    return found


__all__ = ["DevkitError", "require_tool"]
