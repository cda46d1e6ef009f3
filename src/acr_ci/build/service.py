"""From a :class:`BuildPlan` to a builder's job: paths, annotations, registries, auth.

:func:`prepare_job` resolves everything a builder needs around a plan, and
:func:`layout_folder` names where its OCI layout goes; the chain (:mod:`acr_ci.chain`)
runs the builder and pushes the result, for ``acr-ci build`` and ``acr-ci run`` alike.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from acr_ci.annotations import image_annotations, source_url
from acr_ci.build.base import BuildJob, LogSink, stderr_sink
from acr_ci.build.context import base_images, resolve_paths
from acr_ci.errors import UsageError
from acr_ci.hosts import is_loopback, registry_host
from acr_ci.models import BuildCache, BuildPlan, RefContext
from acr_ci.registry.access import hosts_of
from acr_ci.registry.auth import CredentialSource
from acr_ci.text import clean_remote

if TYPE_CHECKING:
    from acr_ci.registry.client import Client

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
    cache_error: str | None = None,
) -> BuildJob:
    """Everything a builder needs for ``plan``.

    ``extra_hosts``: registries to put credentials for besides the ``FROM`` ones (the
    target image's registry, whose base images are often private). The registry of
    ``plan.cache`` gets credentials too, and plain HTTP when it is loopback, like a base
    image's. ``secrets_dir`` is where the auth file goes: the caller removes it after the
    build. ``cache_error``: why the cache cannot be used (see :func:`cache_problem`).
    """
    context, dockerfile = resolve_paths(plan, config_dir)
    hosts = [h for image in base_images(dockerfile, plan.args) if (h := registry_host(image))]
    if plan.cache is not None and cache_error is None:
        hosts += hosts_of(plan.cache.ref)
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
        cache_error=cache_error,
    )


def cache_problem(client: Client, cache: BuildCache) -> str | None:
    """Why the registry cache ``cache`` cannot be read, asked before the build, or ``None``.

    One ``HEAD`` of a tag nobody writes, with ``client``'s credentials and TLS rules but
    only one retry: a registry that does not answer, or refuses the credentials, is found
    in seconds, where buildah would retry it three times for each step (and say nothing
    about refused credentials). A missing tag or repository is fine: an empty cache.
    """
    from acr_ci.errors import AcrError
    from acr_ci.registry.client import Client as ProbeClient
    from acr_ci.registry.reference import Reference
    from acr_ci.registry.transport import RetryPolicy

    probe = ProbeClient(
        credentials=client.credentials,
        insecure=client.insecure,
        retry=RetryPolicy(attempts=2, base_delay=0.5, budget=10.0),
        timeout=10.0,
        deadline=15.0,
    )
    try:
        with probe:
            probe.tag_digest(
                Reference.parse(cache.repository, what="cache ref").with_tag(PROBE_TAG)
            )
    except AcrError as e:
        return f"cannot read the cache: {clean_remote(e.message, 300)}"
    return None


PROBE_TAG = "acr-ci-cache-probe"
"""The tag :func:`cache_problem` asks for (no builder writes it)."""


def layout_folder(workdir: Path, number: int, rule: str) -> Path:
    """Where build ``number`` (1-based, plan order) of rule ``rule`` writes its OCI layout:
    ``WORKDIR/layouts/N-RULE``, the rule's name made safe for a file name."""
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in rule) or "rule"
    return workdir / "layouts" / f"{number}-{safe}"


def select_platforms(plans: Sequence[BuildPlan], platforms: Sequence[str]) -> list[BuildPlan]:
    """``plans`` building only ``platforms`` (``--platform``; empty: all of each rule's).

    Each platform must be one of every plan's platforms: otherwise a :class:`UsageError`
    naming the rule and the platforms it has."""
    if not platforms:
        return list(plans)
    from acr_ci.registry.media import Platform, platforms_from_flags

    wanted = platforms_from_flags(platforms)
    chosen: list[BuildPlan] = []
    for plan in plans:
        have = {Platform.parse(p): p for p in plan.platforms}
        missing = [str(w) for w in wanted if w not in have]
        if missing:
            raise UsageError(
                f"--platform {', '.join(missing)}: rule {plan.rule!r} does not build it",
                f"rule {plan.rule!r} builds {', '.join(plan.platforms)}; pass one of these, "
                "or --rule to build another rule",
            )
        keep = {have[w] for w in wanted}
        chosen.append(replace(plan, platforms=tuple(p for p in plan.platforms if p in keep)))
    return chosen


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
