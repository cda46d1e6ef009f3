"""The Tekton Tasks' entrypoint: ``python3 -m acr_ci.frontends.tekton``.

A Task step passes every param through ``env`` (``PARAM_<NAME>``, upper case, ``-`` →
``_``), never through its script text, sets ``ACR_CI_PLATFORM=tekton`` and names its
results files in ``ACR_CI_RESULT_<NAME>: $(results.<NAME>.path)``. This module runs the
one ``acr-ci`` command those params describe (``PARAM_COMMAND``; the Tasks fix it) and
writes the results (:mod:`acr_ci.platforms.sinks.tekton`). Registry credentials come from
the ``dockerconfig`` workspace (the script sets ``$DOCKER_CONFIG`` when it is bound); a
step of one's own may instead set ``PARAM_REGISTRY_USERNAME``/``PARAM_REGISTRY_PASSWORD``
from a Secret.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

from acr_ci.errors import AcrError
from acr_ci.frontends import Inputs, env_get, execute, read_inputs
from acr_ci.platforms.sinks.tekton import TektonSink

PREFIX = "PARAM_"


def var(name: str) -> str:
    """The env var carrying param ``name``."""
    return PREFIX + name.replace("-", "_").upper()


def inputs_from_env(env: Mapping[str, str]) -> Inputs:
    def get(name: str, default: str = "") -> str:
        return env_get(env, var(name), default)

    return read_inputs(get, password=(env.get(var("registry-password")) or "").strip())


def main(environ: MutableMapping[str, str] | None = None) -> int:
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    sink = TektonSink.from_env(env)
    try:
        return execute(inputs_from_env(env), sink, environ=env)
    except AcrError as e:
        sys.stderr.write(f"acr-ci: error: {e.diagnostics()}\n")
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
