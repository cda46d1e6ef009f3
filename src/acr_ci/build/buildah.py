"""The buildah builder: one ``buildah build`` for all platforms, then the list as an OCI layout.

Steps for a :class:`~acr_ci.build.base.BuildJob`:

1. ``buildah build --platform P1,P2 --manifest LIST`` with ``--build-arg``,
   ``--annotation`` (reaches each image manifest), ``--file`` and the context; ``--layers``
   (reuse cached steps), or ``--no-cache --pull-always`` when the rule says
   ``no_cache: true``. Foreign platforms run through qemu-user-static (binfmt_misc).
   A base image without ``history`` in its config (valid OCI) makes buildah 1.28 fail with
   ``--layers`` once a second step commits ("internal error: history lists N non-empty
   layers, but we have N+1 layers on disk"); on that error alone the rule is built once
   more without ``--layers``, and the log says so in one line.

   A registry cache (the rule's ``cache``) adds ``--cache-from REPO --cache-to REPO`` (the
   repository without tag: buildah tags each step by its cache key) — ``--cache-to`` only
   with ``no_cache``, which then keeps ``--layers`` as ``--cache-to`` needs it — and is left
   out when the chain found the cache unusable (``BuildJob.cache_error``) or when the rule
   is built without ``--layers``. Measured with buildah 1.28.2: a cache it cannot read only
   costs time (three tries two seconds apart per step, with a warning; refused credentials
   not even warned about), but a cache it cannot write fails the build (``failed pushing
   cache to …``, exit 125): on that error the rule is built once more without the cache,
   with one warning (the steps built so far are reused from the local storage). What the
   log said becomes :attr:`BuildResult.cache <acr_ci.build.base.BuildResult.cache>` (see
   :mod:`acr_ci.build.cache`).
2. ``buildah manifest push --all --format oci LIST oci:DIR``: the layout the chain pushes.
3. :func:`~acr_ci.build.layout.finish_layout` adds the index annotations (buildah 1.28
   has no flag for them) and the config labels: ``buildah build --label`` would append one
   ``LABEL`` step per label, each a full copy of the root filesystem with vfs, and a
   per-commit label would end every build's cache with new layers.
4. Clean-up: the manifest list is always removed. Each platform's image is kept as the cache
   for the next build of the same rule, under ``localhost/acr-ci-cache/RULE:OS-ARCH``; the
   image that held that name before is removed (with the layers only it used), so the
   storage holds one generation per rule and platform. After a ``no_cache`` build the new
   images are removed instead.

Environment: unprivileged CI containers have neither a usable overlay filesystem nor user
namespaces, so acr-ci runs buildah with ``STORAGE_DRIVER=vfs`` and
``BUILDAH_ISOLATION=chroot`` unless these variables are already set (set
``STORAGE_DRIVER=overlay`` / ``BUILDAH_ISOLATION=oci`` where those work: faster).

Registries: credentials for base images and the cache reach buildah through
``REGISTRY_AUTH_FILE`` (a 0600 file), never argv. Registries to reach over plain HTTP
(loopback ones, and the config's ``insecure_registries``) are marked ``insecure`` in a
generated ``registries.conf`` (``CONTAINERS_REGISTRIES_CONF``); TLS stays verified for
every other registry. The generated file keeps the system file's ``unqualified-search-registries`` and
``short-name-mode``; drop-ins in ``registries.conf.d`` still apply.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path

from acr_ci.build.base import BuildJob, BuildResult, child_env, run_quiet, run_streaming
from acr_ci.build.cache import BuildahCacheLog
from acr_ci.build.layout import finish_layout
from acr_ci.errors import BuildError
from acr_ci.jsonload import loads_bounded
from acr_ci.models import CacheOutcome

DEFAULT_STORAGE_DRIVER = "vfs"
DEFAULT_ISOLATION = "chroot"
SYSTEM_REGISTRIES_CONF = Path("/etc/containers/registries.conf")
CACHE_REPO = "localhost/acr-ci-cache"
NO_HISTORY_ERROR = re.compile(
    r"internal error: history lists \d{1,9} non-empty layers, but we have \d{1,9} layers on disk\Z"
)
"""buildah 1.28's ``--layers`` failure on a base image whose config has no ``history``
(matched at the end of a line, on its last :data:`NO_HISTORY_TAIL` characters)."""
NO_HISTORY_TAIL = 200
NO_HISTORY_RETRY = "base image has no history: building again without the layer cache"
CACHE_RETRY = "building again without it"
QEMU_HINT = (
    "a foreign platform's binaries cannot run here: install qemu-user-static and register it "
    "in binfmt_misc (e.g. the line of /usr/lib/binfmt.d/qemu-aarch64.conf written to "
    "/proc/sys/fs/binfmt_misc/register), or drop that platform from the rule"
)


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() or c in "._-" else "-" for c in text.lower())
    return out.strip(".-") or "x"


def registries_conf(insecure: tuple[str, ...], system: Path = SYSTEM_REGISTRIES_CONF) -> str:
    """A v2 ``registries.conf`` marking ``insecure`` hosts (see the module doc)."""
    lines: list[str] = []
    try:
        base = tomllib.loads(system.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        base = {}
    search = base.get("unqualified-search-registries")
    if isinstance(search, list) and all(isinstance(s, str) for s in search):
        lines.append(f"unqualified-search-registries = {json.dumps(search)}")
    mode = base.get("short-name-mode")
    if isinstance(mode, str):
        lines.append(f"short-name-mode = {json.dumps(mode)}")
    for host in sorted(set(insecure)):
        lines += ["", "[[registry]]", f"location = {json.dumps(host)}", "insecure = true"]
    return "\n".join(lines) + "\n"


class BuildahBuilder:
    """Builds with buildah (see the module doc)."""

    def __init__(
        self,
        *,
        binary: str = "buildah",
        storage_root: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``storage_root``: a separate containers-storage root (``--root``/``--runroot``),
        e.g. for tests; ``env``: extra environment for buildah."""
        self.binary = binary
        self.storage_root = storage_root
        self._extra_env = dict(env or {})

    @property
    def name(self) -> str:
        return "buildah"

    # -- helpers -----------------------------------------------------------------

    def environment(self, job: BuildJob, workdir: Path) -> dict[str, str]:
        env = child_env(self._extra_env)
        env.setdefault("STORAGE_DRIVER", DEFAULT_STORAGE_DRIVER)
        env.setdefault("BUILDAH_ISOLATION", DEFAULT_ISOLATION)
        if job.auth_file is not None:
            env["REGISTRY_AUTH_FILE"] = str(job.auth_file)
        if job.insecure_registries:
            conf = workdir / "registries.conf"
            conf.write_text(registries_conf(job.insecure_registries))
            env["CONTAINERS_REGISTRIES_CONF"] = str(conf)
        return env

    def _global(self) -> list[str]:
        argv = [self.binary]
        if self.storage_root is not None:
            argv += ["--root", str(self.storage_root / "root")]
            argv += ["--runroot", str(self.storage_root / "run")]
        return argv

    def build_argv(
        self, job: BuildJob, manifest: str, *, layers: bool = True, cache: bool = True
    ) -> list[str]:
        """The ``buildah build`` argv for ``job`` (a list: never through a shell);
        ``layers=False`` leaves out ``--layers`` and the registry cache, ``cache=False`` the
        registry cache (see the module doc)."""
        plan = job.plan
        registry = plan.cache if cache and layers and job.cache_error is None else None
        argv = [*self._global(), "build", "--platform", ",".join(plan.platforms)]
        argv += ["--manifest", manifest, "--format", "oci"]
        if plan.no_cache:
            argv += ["--no-cache", "--pull-always"]
            if registry is not None:  # --cache-to needs --layers; --no-cache still reads nothing
                argv += ["--layers"]
        elif layers:
            argv += ["--layers"]
        if registry is not None:
            if not plan.no_cache:
                argv += ["--cache-from", registry.repository]
            argv += ["--cache-to", registry.repository]
        for key, value in plan.args.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in job.annotations.items():
            argv += ["--annotation", f"{key}={value}"]
        argv += ["--file", str(job.dockerfile), str(job.context)]
        return argv

    def _image_ids(self, env: Mapping[str, str]) -> dict[str, str]:
        """Manifest digest → image ID for every image in the storage."""
        proc = run_quiet(
            [
                *self._global(),
                "images",
                "--all",
                "--no-trunc",
                "--digests",
                "--format",
                "{{.ID}} {{.Digest}}",
            ],
            env=env,
            what="buildah images",
        )
        out: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2:
                out[parts[1]] = parts[0]
        return out

    def _list_instances(self, manifest: str, env: Mapping[str, str]) -> dict[str, str]:
        """Platform → instance digest of the local manifest list."""
        proc = run_quiet(
            [*self._global(), "manifest", "inspect", manifest],
            env=env,
            what="buildah manifest inspect",
        )
        doc = loads_bounded(proc.stdout, what="buildah manifest inspect's output", error=BuildError)
        out: dict[str, str] = {}
        for d in (doc.get("manifests") if isinstance(doc, dict) else None) or []:
            p = d.get("platform") or {}
            key = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
            out[key] = d["digest"]
        return out

    def _cached_id(self, name: str, env: Mapping[str, str]) -> str | None:
        proc = run_quiet(
            [*self._global(), "images", "--no-trunc", "--format", "{{.ID}}", name],
            env=env,
            what="buildah images",
            check=False,
        )
        ids = proc.stdout.split()
        return ids[0] if proc.returncode == 0 and ids else None

    def _keep_cache(self, job: BuildJob, manifest: str, env: Mapping[str, str]) -> None:
        instances = self._list_instances(manifest, env)
        ids = self._image_ids(env)
        new_ids = [ids[d] for d in instances.values() if d in ids]
        if job.plan.no_cache:
            if new_ids:
                run_quiet(
                    [*self._global(), "rmi", *new_ids], env=env, what="buildah rmi", check=False
                )
            return
        for platform, digest in instances.items():
            image_id = ids.get(digest)
            if image_id is None:
                continue
            name = f"{CACHE_REPO}/{_slug(job.plan.rule)}:{_slug(platform.replace('/', '-'))}"
            old = self._cached_id(name, env)
            run_quiet([*self._global(), "tag", image_id, name], env=env, what="buildah tag")
            if old and old != image_id:
                run_quiet([*self._global(), "rmi", old], env=env, what="buildah rmi", check=False)

    # -- the build -----------------------------------------------------------------

    def _run_build(
        self, job: BuildJob, manifest: str, env: Mapping[str, str], prefix: str
    ) -> CacheOutcome | None:
        """``buildah build``; again without the registry cache if writing it failed, and
        again without ``--layers`` if the base image has no history (see the module doc).
        Any other failure is raised as it is. Returns what happened to the cache."""
        plan = job.plan
        watch = BuildahCacheLog(plan.cache) if plan.cache is not None else None
        no_history = False

        def log(line: str) -> None:
            nonlocal no_history
            no_history = no_history or bool(NO_HISTORY_ERROR.search(line[-NO_HISTORY_TAIL:]))
            if watch is not None:
                watch.feed(line.removeprefix(prefix))
            job.log(line)

        what = f"rule {plan.rule!r}: buildah build"
        layers, cache = True, watch is not None and job.cache_error is None
        error = job.cache_error
        while True:
            argv = self.build_argv(job, manifest, layers=layers, cache=cache)
            try:
                run_streaming(argv, env=env, log=log, prefix=prefix, what=what)
                break
            except BuildError:
                if cache and watch is not None and watch.write_error is not None:
                    error = f"cannot write the cache: {watch.write_error}"
                    job.log(
                        f"{prefix}warning: registry cache {watch.cache.ref}: {error}; {CACHE_RETRY}"
                    )
                    cache = False
                elif no_history and "--layers" in argv:
                    job.log(f"{prefix}{NO_HISTORY_RETRY}")
                    if cache:
                        error = error or "base image has no history: built without the cache"
                    layers, cache = False, False
                else:
                    raise
            # the next build starts from an empty list, whatever this one added to it
            self._remove_manifest(manifest, env)
        if watch is None:
            return None
        if error is None and watch.read_error is not None:
            error = f"cannot read the cache: {watch.read_error}"
            job.log(f"{prefix}warning: registry cache {watch.cache.ref}: {error}; built without it")
        return CacheOutcome(ref=watch.cache.ref, read=watch.pulled > 0, written=cache, error=error)

    def _remove_manifest(self, manifest: str, env: Mapping[str, str]) -> None:
        """Remove the local manifest list ``manifest`` (gone already: fine)."""
        run_quiet(
            [*self._global(), "manifest", "rm", manifest],
            env=env,
            what="buildah manifest rm",
            check=False,
        )

    def build(self, job: BuildJob) -> BuildResult:
        if shutil.which(self.binary) is None:
            raise BuildError(
                f"{self.binary} not found",
                "install buildah (Debian/Ubuntu: apt-get install buildah; for foreign "
                "platforms also qemu-user-static)",
            )
        plan = job.plan
        prefix = f"[{plan.rule}] "
        manifest = f"localhost/acr-ci-build/{_slug(plan.rule)}:{secrets.token_hex(6)}"
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="acr-ci-buildah-") as tmp:
            env = self.environment(job, Path(tmp))
            job.log(
                f"{prefix}buildah: STORAGE_DRIVER={env['STORAGE_DRIVER']} "
                f"BUILDAH_ISOLATION={env['BUILDAH_ISOLATION']}, platforms {', '.join(plan.platforms)}"
            )
            built = False
            cache: CacheOutcome | None = None
            try:
                try:
                    cache = self._run_build(job, manifest, env, prefix)
                except BuildError as e:
                    if "exec format error" in e.message:
                        raise BuildError(e.message, QEMU_HINT) from None
                    raise
                built = True
                if job.layout.exists():
                    shutil.rmtree(job.layout)
                job.layout.parent.mkdir(parents=True, exist_ok=True)
                run_streaming(
                    [
                        *self._global(),
                        "manifest",
                        "push",
                        "--all",
                        "--format",
                        "oci",
                        manifest,
                        f"oci:{job.layout}",
                    ],
                    env=env,
                    log=job.log,
                    prefix=prefix,
                    what=f"rule {plan.rule!r}: buildah manifest push to an OCI layout",
                )
            finally:
                # also after a failure: platforms that did build are good cache, and the
                # list must not stay behind
                try:
                    self._keep_cache(job, manifest, env)
                except (BuildError, ValueError, KeyError) as e:  # must not hide the outcome
                    if built:
                        detail = e.message if isinstance(e, BuildError) else repr(e)
                        job.log(f"{prefix}warning: cache clean-up: {detail}")
                self._remove_manifest(manifest, env)
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
