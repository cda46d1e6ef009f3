"""From a :class:`BuildPlan` to a built OCI layout: paths, annotations, registries, auth.

:func:`prepare_job` resolves everything a builder needs around a plan;
:func:`build_plans` runs the builder for each plan, in order, stopping at the first failure;
:func:`push_builds` pushes the results through the registry client.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from acr_ci.annotations import image_annotations, source_url
from acr_ci.build.base import Builder, BuildJob, BuildResult, LogSink, stderr_sink
from acr_ci.build.context import base_images, is_loopback, registry_host, resolve_paths
from acr_ci.build.select import select_builder
from acr_ci.config.model import Config
from acr_ci.errors import UsageError
from acr_ci.models import BuildPlan, RefContext
from acr_ci.registry.auth import CredentialSource

if TYPE_CHECKING:
    from acr_ci.registry.client import Client
    from acr_ci.registry.copy import CopyResult

AUTH_FILE_NAME = "auth.json"


def write_auth_file(
    hosts: Sequence[str], credentials: CredentialSource | None, directory: Path
) -> Path | None:
    """A containers-auth.json (0600) with credentials for ``hosts``; ``None`` if none known.

    The file is the only way secrets reach a builder (never argv or the environment).
    """
    if credentials is None:
        return None
    auths: dict[str, dict[str, str]] = {}
    for host in dict.fromkeys(hosts):
        creds = credentials.get(host)
        if creds is None:
            continue
        if creds.is_identity_token:
            auths[host] = {"identitytoken": creds.secret}
        else:
            raw = f"{creds.username}:{creds.secret}".encode()
            auths[host] = {"auth": base64.b64encode(raw).decode("ascii")}
    if not auths:
        return None
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / AUTH_FILE_NAME
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"auths": auths}, f)
    return path


def prepare_job(
    plan: BuildPlan,
    ref: RefContext,
    *,
    config_dir: Path,
    layout: Path,
    secrets_dir: Path,
    credentials: CredentialSource | None = None,
    insecure_registries: Sequence[str] = (),
    extra_hosts: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    log: LogSink = stderr_sink,
) -> BuildJob:
    """Everything a builder needs for ``plan``.

    ``extra_hosts``: registries to put credentials for besides the ``FROM`` ones (the
    target image's registry, whose base images are often private). ``secrets_dir`` is
    where the auth file goes: the caller removes it after the build.
    """
    context, dockerfile = resolve_paths(plan, config_dir)
    hosts = [h for image in base_images(dockerfile, plan.args) if (h := registry_host(image))]
    insecure = tuple(dict.fromkeys([*(h for h in hosts if is_loopback(h)), *insecure_registries]))
    auth_file = write_auth_file([*hosts, *extra_hosts], credentials, secrets_dir)
    annotations = image_annotations(
        plan, ref, source=source_url(ref, os.environ if env is None else env)
    )
    return BuildJob(
        plan=plan,
        context=context,
        dockerfile=dockerfile,
        layout=layout,
        annotations=annotations,
        insecure_registries=insecure,
        auth_file=auth_file,
        log=log,
    )


def build_plans(
    builder: Builder,
    plans: Sequence[BuildPlan],
    ref: RefContext,
    *,
    config_dir: Path,
    workdir: Path,
    credentials: CredentialSource | None = None,
    insecure_registries: Sequence[str] = (),
    extra_hosts: Sequence[str] = (),
    log: LogSink = stderr_sink,
) -> list[BuildResult]:
    """Build each plan into ``workdir/layouts/N-RULE``; stop at the first failure."""
    results: list[BuildResult] = []
    for number, plan in enumerate(plans, 1):
        secrets_dir = workdir / "secrets" / str(number)
        try:
            job = prepare_job(
                plan,
                ref,
                config_dir=config_dir,
                layout=workdir / "layouts" / f"{number}-{_safe(plan.rule)}",
                secrets_dir=secrets_dir,
                credentials=credentials,
                insecure_registries=insecure_registries,
                extra_hosts=extra_hosts,
                log=log,
            )
            log(f"[{plan.rule}] building with {builder.name}: {', '.join(plan.platforms)}")
            results.append(builder.build(job))
        finally:
            (secrets_dir / AUTH_FILE_NAME).unlink(missing_ok=True)
    return results


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in name) or "rule"


def select_plans(
    plans: Sequence[BuildPlan], rule: str | None, known: Sequence[str]
) -> list[BuildPlan]:
    """``plans``, or only rule ``rule``'s; a :class:`UsageError` for an unknown or unmatched rule."""
    if rule is None:
        return list(plans)
    if rule not in known:
        raise UsageError(
            f"--rule {rule!r}: the config has no such rule",
            f"rules: {', '.join(known) or '(none)'}",
        )
    chosen = [p for p in plans if p.rule == rule]
    if not chosen:
        raise UsageError(
            f"--rule {rule!r} does not match this ref",
            "check the rule's type and match against `acr-ci plan`",
        )
    return chosen


def result_json(plan: BuildPlan, result: BuildResult) -> dict[str, object]:
    """One build in ``acr-ci build --output-json``."""
    return {
        "rule": plan.rule,
        "builder": result.builder,
        "image": plan.image,
        "images": list(plan.images),
        "tags": list(plan.tags),
        "index_digest": result.index_digest,
        "platforms": dict(result.platforms),
        "layout": str(result.layout),
        "seconds": round(result.seconds, 3),
    }


def build_for_config(
    config: Config,
    plans: Sequence[BuildPlan],
    ref: RefContext,
    *,
    workdir: Path,
    ci_credentials: CredentialSource | None = None,
    env: Mapping[str, str] | None = None,
    log: LogSink = stderr_sink,
) -> list[BuildResult]:
    """What ``acr-ci build`` does: pick the config's builder and build ``plans``.

    Credentials: ``ci_credentials`` (CI env / ``--password-stdin``, scoped to the target
    registry) first, then the docker config files. Insecure registries: the config's,
    ``$ACR_CI_INSECURE_REGISTRIES``, and loopback ones.
    """
    from acr_ci.registry.auth import ci_then_docker_config
    from acr_ci.registry.client import insecure_from_env

    env = os.environ if env is None else env
    credentials = ci_then_docker_config(ci_credentials, env)
    image_host = registry_host(config.image)
    builder = select_builder(config.build.builder, log=log)
    return build_plans(
        builder,
        plans,
        ref,
        config_dir=Path(config.path).resolve().parent,
        workdir=workdir,
        credentials=credentials,
        insecure_registries=[*config.insecure_registries, *insecure_from_env(env)],
        extra_hosts=[image_host] if image_host else [],
        log=log,
    )


def push_builds(
    client: Client, config: Config, plans: Sequence[BuildPlan], results: Sequence[BuildResult]
) -> list[CopyResult]:
    """Push every built layout to its image under all its tags (``acr-ci build --push``).

    Pushing goes through the registry client like every other registry write. With
    ``immutable_tags: true`` every tag of every build is checked before the first push,
    so a refused push changes no tag at all.
    """
    from acr_ci.registry.reference import Reference

    targets = [Reference.parse(p.image, what="image") for p in plans]
    if config.immutable_tags:
        for plan, result, target in zip(plans, results, targets, strict=True):
            client.check_immutable(target, plan.tags, result.index_digest)
    return [
        client.push_layout(result.layout, target, list(plan.tags))
        for plan, result, target in zip(plans, results, targets, strict=True)
    ]
