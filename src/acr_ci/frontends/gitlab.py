"""The GitLab CI/CD component's entrypoint: ``python3 -m acr_ci.frontends.gitlab``.

The component template (``gitlab/templates/acr-ci.yml``) puts its ``spec:inputs`` into
job variables named ``ACR_CI_INPUT_<NAME>`` (upper case, ``-`` → ``_``); the job's
script is only this module, so no input is ever spliced into shell text. It runs the one
``acr-ci`` command and writes the dotenv report (``$ACR_CI_DOTENV``, default
``acr-ci.env``: ``ACR_CI_DIGEST``, ``ACR_CI_TAGS``… see
:mod:`acr_ci.platforms.sinks.gitlab`) and, for ``scan``, the ``container_scanning``
report (``$ACR_CI_INPUT_CONTAINER_SCANNING_REPORT``), for ``run`` and ``scan``.

Credentials default to the project's registry (``$CI_REGISTRY_USER`` /
``$CI_REGISTRY_PASSWORD``); a reference GitLab left unexpanded counts as none. The job
token (a password equal to ``$CI_REGISTRY_PASSWORD`` or ``$CI_JOB_TOKEN``, however the
inputs named it) is sent to ``$CI_REGISTRY`` only, never to a config ``image:`` or
target image on another registry; any other password in the inputs goes to the
registries the command targets, as on every platform.

``scan``, ``sync`` and ``trigger`` need the target image: empty, or still an
unexpanded ``$VARIABLE`` (a ``needs:`` whose dotenv never arrived), the job stops with
exit 2 and says so, instead of gating reports with no image. With
``ACR_CI_INPUT_COMMIT_STATUSES=true`` and a token in ``$ACR_CI_GITLAB_TOKEN``, one commit
status per chain step is posted (:mod:`acr_ci.frontends.statuses`).

Signing: the key is a masked CI/CD variable named as the config's ``sign.key_env`` says
(``ACR_CI_SIGNING_KEY``, its password ``ACR_CI_SIGNING_PASSWORD``), read by acr-ci from the
job's environment, never an input. Keyless signing reads ``SIGSTORE_ID_TOKEN``: the job
declares ``id_tokens: <id-token input>: {aud: sigstore}`` and, when the ``id-token`` input
names another variable, :func:`prepare_id_token` copies that token to ``SIGSTORE_ID_TOKEN``
in this process's environment (not argv, not the log).
"""

from __future__ import annotations

import os
import re
import string
import sys
from collections.abc import Mapping, MutableMapping

from acr_ci.errors import AcrError, UsageError
from acr_ci.frontends import (
    Inputs,
    env_get,
    execute,
    expanded,
    parse_bool,
    parse_list,
    read_inputs,
)
from acr_ci.platforms import outputs
from acr_ci.platforms.outputs import Annotation, Level
from acr_ci.platforms.sinks.gitlab import GitLabSink

PREFIX = "ACR_CI_INPUT_"
TOKEN_ENV = "ACR_CI_GITLAB_TOKEN"  # noqa: S105 - a variable name
JOB_TOKENS = ("CI_REGISTRY_PASSWORD", "CI_JOB_TOKEN")
"""The job's own token, under the names GitLab gives it."""
NEEDS_IMAGE = ("scan", "sync", "trigger", "sign", "attest", "verify", "accelerate")
ID_TOKEN_ENV = "SIGSTORE_ID_TOKEN"  # noqa: S105 - a variable name
"""Where acr-ci's keyless signing reads the job's OIDC token."""


def var(name: str) -> str:
    """The job variable carrying input ``name``."""
    return PREFIX + name.replace("-", "_").upper()


def job_token_scope(password: str, env: Mapping[str, str]) -> tuple[str, ...] | None:
    """Where ``password`` may go: ``($CI_REGISTRY,)`` when it is the job's token (nowhere
    when the project has no registry), else None (any registry the command targets)."""
    tokens = {t for t in (expanded(env.get(name)) for name in JOB_TOKENS) if t}
    if not password or password not in tokens:
        return None
    registry = expanded(env.get("CI_REGISTRY"))
    return (registry,) if registry else ()


def target_image(raw: str, command: str, env: Mapping[str, str]) -> str:
    """The target image input with job variables expanded (``$ACR_CI_IMAGE``, an earlier
    job's dotenv, where GitLab left the reference as is); a :class:`UsageError` when a
    command that needs it gets none or a reference nothing defined."""
    image = string.Template(raw).safe_substitute(env).strip()
    if command.strip().lower() not in NEEDS_IMAGE:
        return expanded(image)
    if not image:
        raise UsageError(
            f"acr-ci {command}: the target-image input is empty",
            "set target-image, or run it after a run/build job that publishes $ACR_CI_IMAGE",
        )
    if "$" in image:
        raise UsageError(
            f"acr-ci {command}: the target-image input is still {image!r}: "
            "no job variable defines it",
            "list the run/build job whose dotenv report defines it under needs: (with "
            "artifacts), and make sure that job ran; or set target-image to the image",
        )
    return image


def job_path(raw: str, env: Mapping[str, str]) -> str:
    """An input with job variables expanded where GitLab left them (``linux/$ARCH``,
    ``acr-ci-digests-$CI_JOB_ID.jsonl``); unknown references stay as written."""
    return string.Template(raw).safe_substitute(env).strip()


def inputs_from_env(env: Mapping[str, str]) -> Inputs:
    def get(name: str, default: str = "") -> str:
        return env_get(env, var(name), default)

    password = expanded(env.get(var("registry-password")))
    command = get("command", "run")
    by_digest = parse_bool(get("push-by-digest", "false"), "push-by-digest")
    return read_inputs(
        get,
        password=password,
        # the component's default digests file counts only with push-by-digest
        digests_file=job_path(get("digests-file"), env) if by_digest else "",
        platforms=tuple(job_path(v, env) for v in parse_list(get("platforms"))),
        merge=tuple(job_path(f, env) for f in parse_list(get("merge"))),
        image=target_image(get("image"), command, env),
        gitlab_report=get("container-scanning-report"),
        username=expanded(get("registry-user")),
        login_only=job_token_scope(password, env),
    )


def prepare_id_token(env: MutableMapping[str, str]) -> None:
    """The ``id-token`` input (``$ACR_CI_INPUT_ID_TOKEN``) names the job's ``id_tokens:``
    variable: its token goes to :data:`ID_TOKEN_ENV` when that is not set already. A name
    that is not a variable name is a :class:`UsageError`; an unset variable changes nothing."""
    name = env_get(env, var("id-token"), ID_TOKEN_ENV)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
        raise UsageError(
            f"input id-token {name!r} is not a variable name",
            "name the job's id_tokens: entry, e.g. SIGSTORE_ID_TOKEN",
        )
    token = (env.get(name) or "").strip()
    if name != ID_TOKEN_ENV and token and not (env.get(ID_TOKEN_ENV) or "").strip():
        env[ID_TOKEN_ENV] = token


def _refused(sink: GitLabSink, command: str, error: AcrError) -> None:
    """Publish a job that stopped before its command ran: the error as an annotation
    (printed ``error: …`` in the log) and the dotenv report (``ACR_CI_STATUS=error``)."""
    note = Annotation(Level.ERROR, error.message, title=f"acr-ci {command}")
    sink.publish(outputs.with_annotations(outputs.from_exit(command, error.exit_code), [note]))


def main(environ: MutableMapping[str, str] | None = None) -> int:
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    sink = GitLabSink.from_env(env)
    try:
        prepare_id_token(env)
        inputs = inputs_from_env(env)
        statuses = parse_bool(env_get(env, var("commit-statuses"), "false"), "commit-statuses")
        code = execute(inputs, sink, environ=env)
    except AcrError as e:
        sys.stderr.write(f"acr-ci: error: {e.diagnostics()}\n")
        _refused(sink, env_get(env, var("command"), "run"), e)
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
