"""The Tekton Tasks' entrypoint: ``python3 -m acr_ci.frontends.tekton``.

A Task step passes every param through ``env`` (``PARAM_<NAME>``, upper case, ``-`` →
``_``), never through its script text, sets ``ACR_CI_PLATFORM=tekton`` and names its
results files in ``ACR_CI_RESULT_<NAME>: $(results.<NAME>.path)``. This module runs the
one ``acr-ci`` command those params describe (``PARAM_COMMAND``; the Tasks fix it) and
writes the results (:mod:`acr_ci.platforms.sinks.tekton`). Registry credentials come from
the ``dockerconfig`` workspace (the script sets ``$DOCKER_CONFIG`` when it is bound); a
step of one's own may instead set ``PARAM_REGISTRY_USERNAME``/``PARAM_REGISTRY_PASSWORD``
from a Secret. The workspace may hold ``config.json`` or ``.dockerconfigjson`` (what a
``kubernetes.io/dockerconfigjson`` Secret mounts): acr-ci reads both.

One node per architecture: ``acr-ci-build`` with ``push-by-digest: "true"`` (which
replaces its ``push`` default) appends its digests lines to its ``DIGESTS`` result (unless
``digests-file`` names a file), written even when nothing was built; ``acr-ci-merge`` and
``acr-ci-run`` take those results as their ``digests`` param, which becomes one more
digests file after the ``merge`` param's (:func:`inputs_from_env`).

Before the command runs, :func:`prepare_env` turns what the Task mounted into the variables
acr-ci and buildah read:

* the ``sslcertdir`` workspace (``WORKSPACE_SSLCERTDIR_BOUND``/``_PATH``): its ``*.crt``/
  ``*.pem`` files are added to the CA bundle acr-ci's HTTPS client uses
  (``REQUESTS_CA_BUNDLE``, a file: the client's default bundle plus these) and to
  ``SSL_CERT_DIR`` (which buildah reads, like the catalog buildah Task's ``--cert-dir``);
* a trigger's signing secret: the trigger Task puts its Secret's value in
  ``ACR_CI_TRIGGER_SECRET`` and the name the config's ``secret_env`` uses in
  ``PARAM_SECRET_ENV``; the value is moved to that name (never to argv or a log).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from acr_ci.errors import AcrError, UsageError
from acr_ci.frontends import Inputs, env_get, execute, parse_bool, parse_list, read_inputs
from acr_ci.platforms.sinks.tekton import TektonSink

PREFIX = "PARAM_"
SECRET_VALUE_ENV = "ACR_CI_TRIGGER_SECRET"  # noqa: S105 - a variable name, not a secret
"""Where the trigger Task puts its Secret's value (``valueFrom.secretKeyRef``, optional)."""
CERT_SUFFIXES = (".crt", ".pem", ".cert")
MAX_CERT_FILES = 64
MAX_CERT_BYTES = 1 << 20
"""Bounds on the ``sslcertdir`` workspace: how many files, how large each."""


def var(name: str) -> str:
    """The env var carrying param ``name``."""
    return PREFIX + name.replace("-", "_").upper()


MAX_DIGESTS_PARAM = 1 << 20
"""The ``digests`` param (build Tasks' ``DIGESTS`` results, joined) is at most this long."""


def inputs_from_env(env: Mapping[str, str], scratch: Path | None = None) -> Inputs:
    """The Task's params as :class:`Inputs`. One runner of a multi-node build
    (``push-by-digest: "true"``) pushes by digest instead (its ``push`` param, ``"true"``
    by default in ``acr-ci-build``, is ignored) and appends its digests lines to its
    ``DIGESTS`` result unless ``digests-file`` names a file; the ``digests`` param of
    ``acr-ci-merge``/``acr-ci-run`` (those results' text) becomes one more digests file
    (in ``scratch``) after the ``merge`` param's files."""

    def get(name: str, default: str = "") -> str:
        return env_get(env, var(name), default)

    by_digest = parse_bool(get("push-by-digest", "false"), "push-by-digest")
    digests_file = get("digests-file")
    if by_digest and not digests_file:
        digests_file = env_get(env, "ACR_CI_RESULT_DIGESTS")
    merge = parse_list(get("merge"))
    lines = env.get(var("digests")) or ""
    if lines.strip():
        merge = (*merge, _digests_file(lines, scratch))
    return read_inputs(
        get,
        password=(env.get(var("registry-password")) or "").strip(),
        push=parse_bool(get("push", "false"), "push") and not by_digest,
        digests_file=digests_file,
        merge=merge,
    )


def _digests_file(lines: str, scratch: Path | None) -> str:
    """The ``digests`` param's text as a file for ``acr-ci merge`` (which reads and checks
    every line); :class:`UsageError` when it is larger than :data:`MAX_DIGESTS_PARAM`."""
    data = lines.encode("utf-8", "replace")
    if len(data) > MAX_DIGESTS_PARAM:
        raise UsageError(
            f"param digests is {len(data)} bytes (at most {MAX_DIGESTS_PARAM})",
            "pass the build Tasks' DIGESTS results, one line per platform image",
        )
    fd, path = tempfile.mkstemp(prefix="acr-ci-digests-", suffix=".jsonl", dir=scratch)
    with os.fdopen(fd, "wb") as f:
        f.write(data if data.endswith(b"\n") else data + b"\n")
    return path


def prepare_env(env: MutableMapping[str, str], scratch: Path | None = None) -> None:
    """The ``sslcertdir`` workspace and the trigger secret, as the variables acr-ci and
    buildah read (see the module doc); ``scratch`` is where the CA bundle goes."""
    _trigger_secret(env)
    if env.get("WORKSPACE_SSLCERTDIR_BOUND", "false").strip() == "true":
        _ssl_cert_dir(env, Path(env.get("WORKSPACE_SSLCERTDIR_PATH", "")), scratch)


def _trigger_secret(env: MutableMapping[str, str]) -> None:
    value = env.pop(SECRET_VALUE_ENV, "")
    name = env.get(var("secret-env"), "").strip()
    if not name:
        return
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
        raise UsageError(
            f"param secret-env {name!r} is not an environment variable name",
            "give the name the config's trigger uses in secret_env, e.g. DEPLOY_HOOK_SECRET",
        )
    if value and not env.get(name):
        env[name] = value


def _ssl_cert_dir(env: MutableMapping[str, str], directory: Path, scratch: Path | None) -> None:
    import certifi

    try:
        files = sorted(p for p in directory.iterdir() if p.suffix in CERT_SUFFIXES and p.is_file())
    except OSError as e:
        raise UsageError(
            f"cannot read the sslcertdir workspace {directory}: {e.strerror}"
        ) from None
    if len(files) > MAX_CERT_FILES:
        raise UsageError(
            f"the sslcertdir workspace holds {len(files)} certificate files (at most {MAX_CERT_FILES})"
        )
    base = Path(env.get("REQUESTS_CA_BUNDLE") or certifi.where())
    if not base.is_file():  # a CA directory: start from the client's own bundle
        base = Path(certifi.where())
    parts: list[bytes] = []
    for path in (base, *files):
        try:
            if path.stat().st_size > MAX_CERT_BYTES:
                raise UsageError(f"{path} is larger than {MAX_CERT_BYTES} bytes: not a CA bundle")
            parts.append(path.read_bytes())
        except OSError as e:
            raise UsageError(f"cannot read {path}: {e.strerror}") from None
    fd, bundle = tempfile.mkstemp(prefix="acr-ci-ca-", suffix=".pem", dir=scratch)
    with os.fdopen(fd, "wb") as f:
        f.write(b"\n".join(part.rstrip(b"\n") for part in parts) + b"\n")
    env["REQUESTS_CA_BUNDLE"] = bundle
    env["SSL_CERT_DIR"] = os.pathsep.join(
        [str(directory), env.get("SSL_CERT_DIR") or "/etc/ssl/certs"]
    )


def main(environ: MutableMapping[str, str] | None = None) -> int:
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    try:
        prepare_env(env)
        inputs = inputs_from_env(env)
        result = env_get(env, "ACR_CI_RESULT_DIGESTS")
        if result and inputs.digests_file == result:  # written even when nothing is built
            Path(result).touch()
        # a build that did not push has no image in the registry for Chains to sign
        sink = TektonSink.from_env(
            env, pushed=inputs.push or inputs.command.strip().lower() != "build"
        )
        return execute(inputs, sink, environ=env)
    except AcrError as e:
        sys.stderr.write(f"acr-ci: error: {e.diagnostics()}\n")
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
