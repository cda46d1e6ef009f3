"""SLSA v1 provenance for an image index: the predicate of ``https://slsa.dev/provenance/v1``.

The statement's subject is the index digest (what the tags name). The predicate says:

- ``buildDefinition.buildType``: :data:`BUILD_TYPE` (this format, versioned);
- ``buildDefinition.externalParameters``: what a user controls — the git ref, the rule
  that matched, the config file (path and sha256), the platforms, the build args;
- ``buildDefinition.resolvedDependencies``: the source commit (``gitCommit`` digest,
  with the repository when the platform names one) and every base image by digest;
- ``runDetails.builder.id``: the CI job — a GitHub Actions run URL, a GitLab job URL,
  ``$ACR_CI_BUILDER_ID`` (a Tekton TaskRun, say) — else :data:`LOCAL_BUILDER`;
  ``runDetails.metadata.invocationId`` the same run, ``startedOn`` the push time.

Nothing in it is secret: build args are in the config, which is in the repository.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acr_ci.config.model import Config
    from acr_ci.models import RefContext

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://acr-ci.dev/build/image/v1"
"""The build type acr-ci's provenance documents (docs/signing.md describes its parameters)."""
LOCAL_BUILDER = "urn:acr-ci:builder:local"
ENV_BUILDER_ID = "ACR_CI_BUILDER_ID"


@dataclass(frozen=True)
class ProvenanceInput:
    """What a provenance predicate is made of (all known after the build)."""

    ref: str
    """The full git ref (``refs/heads/main``)."""
    sha: str
    """The commit ID (hex), or empty when unknown."""
    rule: str | None = None
    config_path: str | None = None
    config_sha256: str | None = None
    """Hex sha256 of the config file's bytes."""
    platforms: tuple[str, ...] = ()
    args: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    base_images: tuple[str, ...] = ()
    """``REPO@sha256:…`` of every base image the build pulled."""
    source_url: str | None = None
    """The source repository's URL (:func:`source_url`), when the platform gives one."""
    started: datetime | None = None
    builder_id: str = LOCAL_BUILDER
    invocation_id: str | None = None


def builder_id(env: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """``(builder id, invocation id)`` of the CI job from its environment."""
    env = os.environ if env is None else env
    if env.get(ENV_BUILDER_ID):
        return env[ENV_BUILDER_ID], env.get(ENV_BUILDER_ID)
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        run = f"{server}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env['GITHUB_RUN_ID']}"
        attempt = env.get("GITHUB_RUN_ATTEMPT")
        return run, f"{run}/attempts/{attempt}" if attempt else run
    if env.get("GITLAB_CI") == "true" and env.get("CI_JOB_URL"):
        return env["CI_JOB_URL"], env["CI_JOB_URL"]
    return LOCAL_BUILDER, None


def config_sha256(path: str) -> str:
    """Hex sha256 of a config file's bytes."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def predicate(p: ProvenanceInput) -> dict[str, Any]:
    """The SLSA v1 provenance predicate of ``p``."""
    external: dict[str, Any] = {"ref": p.ref}
    if p.rule:
        external["rule"] = p.rule
    if p.config_path:
        config: dict[str, Any] = {"path": p.config_path}
        if p.config_sha256:
            config["digest"] = {"sha256": p.config_sha256}
        external["config"] = config
    external["platforms"] = list(p.platforms)
    external["args"] = dict(p.args)
    deps: list[dict[str, Any]] = []
    if p.sha:
        source: dict[str, Any] = {"digest": {"gitCommit": p.sha}}
        if p.source_url:
            source["uri"] = f"git+{p.source_url}@{p.ref}"
        deps.append(source)
    for image in p.base_images:
        name, _, digest = image.partition("@")
        algorithm, _, encoded = digest.partition(":")
        dep: dict[str, Any] = {"uri": f"pkg:docker/{name}"}
        if encoded:
            dep["digest"] = {algorithm: encoded}
        deps.append(dep)
    metadata: dict[str, Any] = {}
    if p.invocation_id:
        metadata["invocationId"] = p.invocation_id
    if p.started:
        metadata["startedOn"] = p.started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run: dict[str, Any] = {"builder": {"id": p.builder_id}}
    if metadata:
        run["metadata"] = metadata
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": {},
            "resolvedDependencies": deps,
        },
        "runDetails": run,
    }


def source_url(env: Mapping[str, str] | None = None, repository: str | None = None) -> str | None:
    """The source repository's URL: GitHub's server + ``$GITHUB_REPOSITORY``, GitLab's
    ``$CI_PROJECT_URL``, or ``repository`` when it is a URL already."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"{server}/{env['GITHUB_REPOSITORY']}"
    if env.get("GITLAB_CI") == "true" and env.get("CI_PROJECT_URL"):
        return env["CI_PROJECT_URL"]
    if repository and "://" in repository:
        return repository
    return None


def platforms_of(children: Sequence[Any]) -> tuple[str, ...]:
    """The platforms of an index's children (descriptors with ``platform``)."""
    return tuple(str(c.platform) for c in children if getattr(c, "platform", None))


def from_run(
    ref: RefContext,
    *,
    config: Config | None = None,
    image: str | None = None,
    platforms: Sequence[str] = (),
    base_images: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> ProvenanceInput:
    """The provenance input of an image pushed for ``ref`` (a ``RefContext``): the rules of
    ``config`` that match ``ref`` and push to ``image`` give the rule names and build args."""
    from acr_ci.platforms.base import full_ref
    from acr_ci.tags import plan

    rules: list[str] = []
    args: dict[str, str] = {}
    if config is not None:
        for build in plan(config, ref):
            if image is None or build.image == image:
                rules.append(build.rule)
                args.update(build.args)
    bid, invocation = builder_id(env)
    return ProvenanceInput(
        ref=full_ref(ref.type, ref.name),
        sha=ref.sha,
        rule=", ".join(rules) or None,
        config_path=config.path if config is not None else None,
        config_sha256=config_sha256(config.path) if config is not None else None,
        platforms=tuple(platforms),
        args=MappingProxyType(args),
        base_images=tuple(base_images),
        source_url=source_url(env, ref.repository),
        started=ref.time,
        builder_id=bid,
        invocation_id=invocation,
    )
