"""The GitLab CI/CD component's entrypoint: ``python3 -m acr_ci.frontends.gitlab``.

The component template (``gitlab/templates/acr-ci.yml``) puts its ``spec:inputs`` into
job variables named ``ACR_CI_INPUT_<NAME>`` (upper case, ``-`` → ``_``); the job's
script is only this module, so no input is ever spliced into shell text. It runs the one
``acr-ci`` command and writes the dotenv report (``$ACR_CI_DOTENV``, default
``acr-ci.env``: ``ACR_CI_DIGEST``, ``ACR_CI_TAGS``… see
:mod:`acr_ci.platforms.sinks.gitlab`) and, for ``scan``, the ``container_scanning``
report (``$ACR_CI_INPUT_CONTAINER_SCANNING_REPORT``).

Credentials default to the project's registry (``$CI_REGISTRY_USER`` /
``$CI_REGISTRY_PASSWORD``); a reference GitLab left unexpanded counts as none. With
``ACR_CI_INPUT_COMMIT_STATUSES=true`` and a token in ``$ACR_CI_GITLAB_TOKEN``, one commit
status per chain step is posted (:mod:`acr_ci.frontends.statuses`).
"""

from __future__ import annotations

import os
import string
import sys
from collections.abc import Mapping, MutableMapping

from acr_ci.errors import AcrError
from acr_ci.frontends import Inputs, env_get, execute, expanded, parse_bool, read_inputs
from acr_ci.platforms.sinks.gitlab import GitLabSink

PREFIX = "ACR_CI_INPUT_"
TOKEN_ENV = "ACR_CI_GITLAB_TOKEN"  # noqa: S105 - a variable name


def var(name: str) -> str:
    """The job variable carrying input ``name``."""
    return PREFIX + name.replace("-", "_").upper()


def inputs_from_env(env: Mapping[str, str]) -> Inputs:
    def get(name: str, default: str = "") -> str:
        return env_get(env, var(name), default)

    return read_inputs(
        get,
        password=expanded(env.get(var("registry-password"))),
        # `$ACR_CI_IMAGE` (an earlier job's dotenv) where GitLab left the reference as is
        image=expanded(string.Template(get("image")).safe_substitute(env)),
        gitlab_report=get("container-scanning-report"),
        username=expanded(get("registry-user")),
    )


def main(environ: MutableMapping[str, str] | None = None) -> int:
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    sink = GitLabSink.from_env(env)
    try:
        inputs = inputs_from_env(env)
        statuses = parse_bool(env_get(env, var("commit-statuses"), "false"), "commit-statuses")
        code = execute(inputs, sink, environ=env)
    except AcrError as e:
        sys.stderr.write(f"acr-ci: error: {e.diagnostics()}\n")
        return e.exit_code
    token = (env.get(TOKEN_ENV) or "").strip()
    if token and statuses:
        from acr_ci.frontends.statuses import post_gitlab

        try:
            post_gitlab(token, env, record_path=inputs.record)
        except AcrError as e:
            sys.stderr.write(f"acr-ci: warning: commit statuses: {e.message}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
