"""The GitHub Action's entrypoint: ``python -m acr_ci.frontends.github``.

The action's inputs arrive as ``INPUT_<NAME>`` env vars, the name upper-cased with spaces
turned into ``_`` and hyphens **kept** (``INPUT_REGISTRY-USERNAME``): the runner's own
convention for Docker actions (``docker/action.yml``), which the composite action
(``action.yml``) follows in its last step's ``env:``. This module reads them into :class:`~acr_ci.frontends.Inputs`, masks the password, runs
the one ``acr-ci`` command (its output inside ``::stop-commands::`` so text from refs or
scanners cannot issue workflow commands), then writes the step outputs, the step summary
and the annotations (:mod:`acr_ci.platforms.sinks.github`). With ``commit-statuses: true``
and a ``github-token``, one commit status per chain step is posted as well
(:mod:`acr_ci.frontends.statuses`) on the commit that was built; asking for them without
a token is an input error.

Registry login: the ``registry-username``/``registry-password`` inputs when given, for the
config's registries. Without them (and without ``$ACR_CI_REGISTRY_USERNAME``), the job's
``github-token`` (``${{ github.token }}`` by default) logs in as ``$GITHUB_ACTOR`` to
``ghcr.io`` **only**: a GitHub token is issued for GitHub's own registry and never goes
anywhere else, also when it is passed as ``registry-password``. Other registries use the
docker config.

Its exit code is the command's (0, 1, 2 or 3), which fails the step on anything but 0.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

from acr_ci.errors import EXIT_USAGE, AcrError
from acr_ci.frontends import Inputs, env_get, execute, parse_bool, read_inputs
from acr_ci.platforms.outputs import Annotation, Level
from acr_ci.platforms.sinks.github import GitHubSink
from acr_ci.registry.auth import ENV_PASSWORD, ENV_USERNAME


def input_env_name(name: str) -> str:
    """The env var the runner sets for input ``name``: ``INPUT_`` + upper case, spaces → ``_``."""
    return "INPUT_" + name.replace(" ", "_").upper()


def read_input(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env_get(env, input_env_name(name), default)


GHCR = "ghcr.io"
"""The one registry a GitHub token (``${{ github.token }}``) is issued for."""


def inputs_from_env(env: Mapping[str, str]) -> Inputs:
    """The action's inputs (see ``action.yml``) as :class:`Inputs`, with the registry login
    (see the module doc): a password that is the ``github-token`` goes to ``ghcr.io`` only,
    explicit or not."""

    def get(name: str, default: str = "") -> str:
        return read_input(env, name, default)

    password = (env.get(input_env_name("registry-password")) or "").strip()
    username = get("registry-username")
    token = (env.get(input_env_name("github-token")) or "").strip()
    env_login = env.get(ENV_USERNAME) or env.get(ENV_PASSWORD)
    if token and not (username or password or env_login):
        username, password = env_get(env, "GITHUB_ACTOR", "github-actions"), token
    return read_inputs(
        get,
        username=username,
        password=password,
        login_only=(GHCR,) if token and password == token else None,
        sarif=get("sarif"),
        summary=parse_bool(get("summary", "true"), "summary"),
    )


def main(environ: MutableMapping[str, str] | None = None) -> int:
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    sink = GitHubSink.from_env(env)
    try:
        inputs = inputs_from_env(env)
        statuses = parse_bool(read_input(env, "commit-statuses", "false"), "commit-statuses")
    except AcrError as e:
        sink.annotate(Annotation(Level.ERROR, e.diagnostics(), title="acr-ci action inputs"))
        return EXIT_USAGE
    token = (env.get(input_env_name("github-token")) or "").strip()
    if token:
        if token != inputs.password:  # execute() masks the registry password itself
            sink.mask(token)
    elif statuses:
        sink.annotate(
            Annotation(
                Level.ERROR,
                "commit-statuses: true needs a github-token (the default is "
                "${{ github.token }}; the job needs permissions: statuses: write)",
                title="acr-ci action inputs",
            )
        )
        return EXIT_USAGE
    try:
        code = execute(inputs, sink, environ=env, guard=sink.stop_commands)
    except AcrError as e:  # bad inputs found while building the command line
        sink.annotate(Annotation(Level.ERROR, e.diagnostics(), title="acr-ci action inputs"))
        return e.exit_code
    if token and statuses:
        from acr_ci.frontends.statuses import post_github

        try:
            post_github(token, env, record_path=inputs.record)
        except AcrError as e:
            sink.annotate(Annotation(Level.WARNING, e.message, title="acr-ci commit statuses"))
    return code


if __name__ == "__main__":
    sys.exit(main())
