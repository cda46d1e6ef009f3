"""The buildx builder: ``docker buildx build`` for all platforms into an OCI layout directory.

``docker buildx build [--builder NAME] --platform P1,P2 [--no-cache --pull]
[--cache-from type=registry,ref=REF] [--cache-to type=registry,ref=REF,mode=M,ignore-error=true]
--build-arg K=V --label K=V --annotation index,manifest:K=V --file DOCKERFILE
--output type=oci,dest=DIR,tar=false --metadata-file FILE --progress plain CONTEXT``
(annotations go to ``manifest:`` only when one platform is built: no index is exported).

The default builder of a Docker engine uses the ``docker`` driver, which can neither build
several platforms into one image nor export an OCI layout; ``docker buildx inspect`` says
which driver the current builder has, and when it is ``docker`` acr-ci uses (creating it
once) a ``docker-container`` builder named ``acr-ci``. Foreign platforms need qemu in
binfmt_misc on the runner, as for any buildx build.

A registry build cache (the rule's ``cache``) is read with ``--cache-from`` (not with
``no_cache: true``) and written with ``--cache-to … ignore-error=true``, so BuildKit never
fails a build over it; what its log says about the import and export steps becomes the
record's ``cache`` (:mod:`acr_ci.build.cache`).

Credentials for base images (and the cache registry): buildx reads them from ``$DOCKER_CONFIG/config.json``. When
acr-ci has credentials of its own (e.g. ``ACR_CI_REGISTRY_PASSWORD``) the build gets a
private ``DOCKER_CONFIG`` directory whose ``config.json`` is the runner's plus those
``auths`` (mode 0600, removed afterwards), with the runner's ``buildx`` and ``contexts``
state linked in; nothing secret is ever in argv or in the environment.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acr_ci.build.base import BuildJob, BuildResult, LogSink, child_env, run_quiet, run_streaming
from acr_ci.build.cache import BuildxCacheLog
from acr_ci.build.layout import finish_layout, top_digest
from acr_ci.errors import BuildError
from acr_ci.fileio import read_bounded
from acr_ci.jsonload import DEFAULT_MAX_BYTES, loads_bounded
from acr_ci.models import CacheOutcome

CONTAINER_BUILDER = "acr-ci"
"""Name of the ``docker-container`` builder acr-ci creates when the default cannot do the job."""


def parse_inspect(text: str) -> tuple[str | None, list[str]]:
    """``(driver, platforms)`` from ``docker buildx inspect`` text output."""
    driver: str | None = None
    platforms: list[str] = []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "driver" and driver is None:
            driver = value.strip() or None
        elif key == "platforms":
            platforms += [p.strip().rstrip("*") for p in value.split(",") if p.strip()]
    return driver, platforms


class BuildxBuilder:
    """Builds with ``docker buildx`` (see the module doc)."""

    def __init__(self, *, binary: str = "docker", env: Mapping[str, str] | None = None) -> None:
        self.binary = binary
        self._extra_env = dict(env or {})

    @property
    def name(self) -> str:
        return "buildx"

    def choose_builder(self, env: Mapping[str, str], log: LogSink, prefix: str) -> str | None:
        """``None`` to use the current builder, else the ``docker-container`` builder's name."""
        proc = run_quiet(
            [self.binary, "buildx", "inspect"], env=env, what="docker buildx inspect", check=False
        )
        driver, _ = parse_inspect(proc.stdout) if proc.returncode == 0 else (None, [])
        if driver is not None and driver != "docker":
            log(f"{prefix}buildx: using the current builder (driver {driver})")
            return None
        existing = run_quiet(
            [self.binary, "buildx", "inspect", CONTAINER_BUILDER],
            env=env,
            what="docker buildx inspect",
            check=False,
        )
        if existing.returncode != 0:
            log(
                f"{prefix}buildx: the current builder (driver {driver or 'unknown'}) cannot export "
                f"multi-platform OCI layouts; creating docker-container builder {CONTAINER_BUILDER!r}"
            )
            run_quiet(
                [
                    self.binary,
                    "buildx",
                    "create",
                    "--name",
                    CONTAINER_BUILDER,
                    "--driver",
                    "docker-container",
                    "--bootstrap",
                ],
                env=env,
                what="docker buildx create",
            )
        else:
            log(f"{prefix}buildx: using docker-container builder {CONTAINER_BUILDER!r}")
        return CONTAINER_BUILDER

    def build_argv(
        self, job: BuildJob, *, output: Path, metadata: Path, builder: str | None
    ) -> list[str]:
        """The ``docker buildx build`` argv for ``job`` (a list: never through a shell)."""
        plan = job.plan
        argv = [self.binary, "buildx", "build"]
        if builder is not None:
            argv += ["--builder", builder]
        argv += ["--platform", ",".join(plan.platforms)]
        if plan.no_cache:
            argv += ["--no-cache", "--pull"]
        if plan.cache is not None and job.cache_error is None:
            ref = plan.cache.ref
            if not plan.no_cache:
                argv += ["--cache-from", f"type=registry,ref={ref}"]
            argv += [
                "--cache-to",
                f"type=registry,ref={ref},mode={plan.cache.mode},ignore-error=true",
            ]
        for key, value in plan.args.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in job.annotations.items():
            argv += ["--label", f"{key}={value}"]
        # BuildKit refuses index annotations when a single platform exports no index;
        # finish_layout wraps that manifest in an index and annotates it instead.
        levels = "index,manifest" if len(plan.platforms) > 1 else "manifest"
        for key, value in job.annotations.items():
            argv += ["--annotation", f"{levels}:{key}={value}"]
        argv += ["--file", str(job.dockerfile)]
        argv += ["--output", f"type=oci,dest={output},tar=false"]
        argv += ["--metadata-file", str(metadata), "--progress", "plain", str(job.context)]
        return argv

    def _docker_config(self, job: BuildJob, env: dict[str, str], tmp: Path) -> None:
        """Give buildx ``job.auth_file``'s credentials through a private DOCKER_CONFIG."""
        if job.auth_file is None:
            return
        original = Path(
            env.get("DOCKER_CONFIG") or Path(env.get("HOME") or Path.home()) / ".docker"
        )
        private = tmp / "docker-config"
        private.mkdir(mode=0o700)
        doc: dict[str, Any] = {}
        try:
            data = read_bounded(
                original / "config.json",
                limit=DEFAULT_MAX_BYTES,
                what="docker config",
                error=BuildError,
            )
            loaded = loads_bounded(data, what="docker config", error=BuildError)
            if isinstance(loaded, dict):
                doc = loaded
        except (OSError, BuildError):  # unreadable or hostile: buildx gets only our auths
            pass
        ours = json.loads(job.auth_file.read_text()).get("auths", {})
        auths = doc.get("auths") if isinstance(doc.get("auths"), dict) else {}
        doc["auths"] = {**(auths or {}), **ours}
        target = private / "config.json"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        for name in ("buildx", "contexts", "cli-plugins"):
            if (original / name).exists():
                (private / name).symlink_to(original / name)
        env["DOCKER_CONFIG"] = str(private)

    def build(self, job: BuildJob) -> BuildResult:
        if shutil.which(self.binary) is None:
            raise BuildError(
                f"{self.binary} not found",
                "install Docker with the buildx plugin (docs.docker.com/build/install-buildx), "
                "or use builder: buildah",
            )
        plan = job.plan
        prefix = f"[{plan.rule}] "
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="acr-ci-buildx-") as tmp_name:
            tmp = Path(tmp_name)
            env = child_env(self._extra_env)
            self._docker_config(job, env, tmp)
            builder = self.choose_builder(env, job.log, prefix)
            if job.layout.exists():
                shutil.rmtree(job.layout)
            job.layout.parent.mkdir(parents=True, exist_ok=True)
            metadata = tmp / "metadata.json"
            watch = BuildxCacheLog(plan.cache) if plan.cache is not None else None

            def log(line: str) -> None:
                if watch is not None:
                    watch.feed(line)
                job.log(line)

            run_streaming(
                self.build_argv(job, output=job.layout, metadata=metadata, builder=builder),
                env=env,
                log=log,
                prefix=prefix,
                what=f"rule {plan.rule!r}: docker buildx build",
            )
            reported = _metadata_digest(metadata)
        cache = self._cache_outcome(job, watch, prefix)
        if reported is not None and reported != (held := top_digest(job.layout)):
            raise BuildError(
                f"rule {plan.rule!r}: buildx reported digest {reported} but its OCI layout "
                f"holds {held}"
            )
        index_digest, platforms = finish_layout(job.layout, job.annotations, plan.platforms)
        return BuildResult(
            rule=plan.rule,
            builder=self.name,
            layout=job.layout,
            index_digest=index_digest,
            platforms=platforms,
            seconds=time.monotonic() - started,
            cache=cache,
        )

    @staticmethod
    def _cache_outcome(
        job: BuildJob, watch: BuildxCacheLog | None, prefix: str
    ) -> CacheOutcome | None:
        """What BuildKit's log said about the registry cache; one warning if it failed."""
        if watch is None:
            return None
        if job.cache_error is not None:
            return CacheOutcome(
                ref=watch.cache.ref, read=False, written=False, error=job.cache_error
            )
        outcome = watch.outcome(read=not job.plan.no_cache)
        if outcome.error is not None:
            job.log(f"{prefix}warning: registry cache {outcome.ref}: {outcome.error}")
        return outcome


def _metadata_digest(path: Path) -> str | None:
    try:
        data = read_bounded(path, limit=DEFAULT_MAX_BYTES, what="buildx metadata", error=BuildError)
        doc = loads_bounded(data, what="buildx metadata", error=BuildError)
    except (OSError, BuildError):
        return None
    value = doc.get("containerimage.digest") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None
