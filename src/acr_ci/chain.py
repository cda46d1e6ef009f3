"""The delivery chain: plan → build → push → scan gate → sync → triggers, per image.

:func:`run_chain` walks every :class:`~acr_ci.models.BuildPlan` the rules give for a ref,
one image after another, and returns a :class:`~acr_ci.record.RunRecord`; the CLI writes
it and prints :func:`~acr_ci.record.summary_markdown`. Each stage is another module's
public API: :mod:`acr_ci.build` (a :class:`~acr_ci.build.Builder`, injectable),
:mod:`acr_ci.registry` (push, immutable-tag check), :mod:`acr_ci.scan.service`,
:mod:`acr_ci.sync`, :mod:`acr_ci.triggers`.

Rules:

* a step that fails stops the later steps *of its image* (they are recorded ``skipped``
  with the reason); other rules' images go on;
* the scan gate blocking an image (blocking mode) records the scan step ``blocked``; a
  blocked image is never synced or triggered. In ``non-blocking`` mode a verdict that
  would block is recorded (``detail.would_block``) and the chain goes on;
* without a ``scan:`` section the scan step is ``skipped``;
* sync failures and trigger failures are reported; they never undo the push, and they
  stop nothing else: a dead mirror fails alone (the other mirrors and the triggers still
  run), a dead webhook fails alone;
* the exit code is the record's: 3 if any image was blocked, else 1 if any step failed,
  else 0.

Images are addressed by digest from the push on: scan, sync and triggers all get
``repo@digest``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from acr_ci.config.model import Config, ScanEngine, ScanMode
from acr_ci.errors import AcrError
from acr_ci.models import BuildPlan, RefContext, Status
from acr_ci.record import (
    BuildDetail,
    GateFailure,
    ImageRecord,
    NoDetail,
    PushDetail,
    RunRecord,
    ScanDetail,
    StepDetail,
    StepRecord,
    SyncDetail,
    TriggerDetail,
)

if TYPE_CHECKING:
    from acr_ci.build import Builder, BuildResult
    from acr_ci.registry.client import Client
    from acr_ci.scan.engine import ScanEngine as Engine
    from acr_ci.sync import SyncResult
    from acr_ci.triggers import Sender, TriggerResult

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def _reason(e: BaseException) -> str:
    if isinstance(e, AcrError):
        return e.message
    return f"unexpected error ({type(e).__name__}); please report it"


# -- the registry client for sync, trigger and run ---------------------------------------


def open_client(
    config: Config,
    *,
    hosts: Iterable[str] = (),
    insecure: Iterable[str] = (),
    password_stdin: bool = False,
    jobs: int = 4,
) -> Client:
    """A registry client for a command over ``config``.

    CI credentials (``$ACR_CI_REGISTRY_USERNAME``/``PASSWORD`` or ``--password-stdin``)
    apply to ``hosts`` only (the config's image registry); every other host, mirrors
    included, gets what the docker config holds for it. Plain HTTP is allowed for
    ``insecure``, ``$ACR_CI_INSECURE_REGISTRIES``, the config's ``insecure_registries``
    and sync destinations marked ``insecure: true``.
    """
    from acr_ci.registry.auth import ci_then_docker_config
    from acr_ci.registry.cli_support import env_credentials
    from acr_ci.registry.client import Client, insecure_from_env
    from acr_ci.sync import insecure_hosts

    ci = env_credentials(argparse.Namespace(password_stdin=password_stdin), list(hosts))
    credentials = ci_then_docker_config(ci)
    return Client(
        credentials=credentials,
        insecure=[*insecure, *insecure_from_env(), *insecure_hosts(config)],
        jobs=jobs,
    )


def image_hosts(config: Config) -> list[str]:
    """The registry host (and API host) of the config's image, for CI credentials."""
    return hosts_of(config.image)


def hosts_of(image: str) -> list[str]:
    """The registry host and API host of an image reference ([] when it does not parse)."""
    from acr_ci.registry.reference import Reference

    try:
        ref = Reference.parse(image, what="image")
    except AcrError:
        return []
    return list(dict.fromkeys([ref.registry, ref.api_host]))


def parts_for_args(args: argparse.Namespace, client: Client) -> ChainParts:
    """The chain's parts from ``acr-ci run`` flags: ``--layout-dir``, ``--quiet``."""
    import io

    layout_dir = getattr(args, "layout_dir", None)
    return ChainParts(
        client=client,
        workdir=Path(layout_dir) if layout_dir else None,
        log=io.StringIO() if getattr(args, "quiet", False) else sys.stderr,
    )


def client_for_args(args: argparse.Namespace, config: Config, *images: str) -> Client:
    """:func:`open_client` from the registry flags (``--insecure``, ``--jobs``,
    ``--password-stdin``); CI credentials go to the config's image registry and the
    registries of ``images``."""
    hosts = [*image_hosts(config), *(h for i in images for h in hosts_of(i))]
    return open_client(
        config,
        hosts=hosts,
        insecure=getattr(args, "insecure", ()),
        password_stdin=getattr(args, "password_stdin", False),
        jobs=getattr(args, "jobs", 4),
    )


# -- record helpers -----------------------------------------------------------------------


def sync_step(result: SyncResult) -> StepRecord:
    """One sync destination as a record step."""
    return StepRecord(
        step="sync",
        name=result.name,
        status=result.status,
        started=result.started,
        finished=result.finished,
        reason=result.reason,
        detail=SyncDetail.of(result),
    )


def trigger_step(result: TriggerResult) -> StepRecord:
    """One trigger as a record step."""
    return StepRecord(
        step="trigger",
        name=result.name,
        status=result.status,
        started=result.started,
        finished=result.finished,
        reason=result.reason,
        detail=TriggerDetail.of(result),
    )


# -- the chain ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainParts:
    """What the chain uses besides the config and ref; tests inject stand-ins here."""

    client: Client
    """The registry client (push, scan, sync, tag lookups)."""
    builder: Builder | None = None
    """The builder; None picks the config's (``auto``: buildx, else buildah)."""
    scan_engine: Engine | None = None
    """Overrides the config's scan engine (None: the config's)."""
    sender: Sender | None = None
    """Delivers trigger requests (None: the default, with real backoff)."""
    workdir: Path | None = None
    """Where OCI layouts go (None: a new temporary directory, kept for inspection)."""
    log: TextIO = sys.stderr
    """Where progress lines go."""
    clock: Clock = _now
    """The time source for step times."""


_FAILS_ALONE = frozenset({"sync", "trigger"})
"""Steps whose failure is reported but skips nothing after it."""


class _Image:
    """The steps of one image as they happen."""

    def __init__(self, plan: BuildPlan, clock: Clock) -> None:
        self.plan = plan
        self.clock = clock
        self.steps: list[StepRecord] = []
        self.digest: str | None = None
        self.stop: str | None = None
        """Why later steps are skipped, once a step failed or blocked."""

    def add(self, step: StepRecord) -> None:
        self.steps.append(step)
        if step.step in _FAILS_ALONE:
            return
        if self.stop is None and step.status is Status.FAILED:
            what = f"{step.step} {step.name}" if step.name else step.step
            self.stop = f"skipped: {what} failed"
        if self.stop is None and step.status is Status.BLOCKED:
            self.stop = "skipped: the scan gate blocked the image"

    def record(self) -> ImageRecord:
        return ImageRecord(
            rule=self.plan.rule,
            image=self.plan.image,
            tags=self.plan.tags,
            digest=self.digest,
            steps=tuple(self.steps),
        )


class Chain:
    """Runs the chain for one config and ref (see the module docstring)."""

    def __init__(self, config: Config, ref: RefContext, parts: ChainParts) -> None:
        self.config = config
        self.ref = ref
        self.parts = parts
        self.client = parts.client
        self.clock = parts.clock
        self.out = parts.log
        self._workdir = parts.workdir

    # -- small helpers ------------------------------------------------------------------

    def say(self, plan: BuildPlan, text: str) -> None:
        self.line(f"[{plan.rule}] {text}")

    def line(self, text: str) -> None:
        """One progress line as is (builders prefix their own lines with the rule)."""
        self.out.write(text + "\n")
        self.out.flush()

    def workdir(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="acr-ci-run-"))
        return self._workdir

    def _step(
        self,
        name: str,
        started: datetime,
        status: Status,
        *,
        reason: str | None = None,
        detail: StepDetail | None = None,
    ) -> StepRecord:
        return StepRecord(
            step=name,
            status=status,
            started=started,
            finished=self.clock(),
            reason=reason,
            detail=detail if detail is not None else NoDetail(),
        )

    # -- the whole run ---------------------------------------------------------------------

    def run(self, plans: Sequence[BuildPlan]) -> RunRecord:
        started = self.clock()
        images: list[ImageRecord] = []
        builder: Builder | None = self.parts.builder
        builder_error: str | None = None
        if plans and builder is None:
            try:
                from acr_ci.build import select_builder

                builder = select_builder(self.config.build.builder, log=self.line)
            except Exception as e:
                builder_error = _reason(e)
        for number, plan in enumerate(plans, 1):
            images.append(self.run_image(number, plan, builder, builder_error))
        return RunRecord(
            ref=self.ref,
            plans=tuple(plans),
            images=tuple(images),
            started=started,
            finished=self.clock(),
            config=self.config.path,
        )

    def run_image(
        self, number: int, plan: BuildPlan, builder: Builder | None, builder_error: str | None
    ) -> ImageRecord:
        image = _Image(plan, self.clock)
        build = self.build(number, plan, builder, builder_error, image)
        if build is not None:
            self.push(plan, build, image)
        else:
            image.add(StepRecord.skipped("push", image.stop or "not built", at=self.clock()))
        self.scan(plan, image)
        self.sync(plan, image)
        self.trigger(plan, image)
        return image.record()

    # -- steps ------------------------------------------------------------------------------

    def build(
        self,
        number: int,
        plan: BuildPlan,
        builder: Builder | None,
        builder_error: str | None,
        image: _Image,
    ) -> BuildResult | None:
        started = self.clock()
        if builder is None:
            image.add(
                self._step(
                    "build", started, Status.FAILED, reason=builder_error or "no builder available"
                )
            )
            return None
        from acr_ci.build import prepare_job
        from acr_ci.build.service import AUTH_FILE_NAME

        work = self.workdir()
        secrets_dir = work / "secrets" / str(number)
        safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in plan.rule)
        self.say(plan, f"build with {builder.name}: {', '.join(plan.platforms)}")
        try:
            job = prepare_job(
                plan,
                self.ref,
                config_dir=Path(self.config.path).resolve().parent,
                layout=work / "layouts" / f"{number}-{safe}",
                secrets_dir=secrets_dir,
                credentials=self.client.credentials,
                insecure_registries=[
                    *self.config.insecure_registries,
                    *sorted(self.client.insecure),
                ],
                extra_hosts=image_hosts(self.config),
                log=self.line,
            )
            result = builder.build(job)
        except Exception as e:
            log.debug("build of %s failed", plan.rule, exc_info=True)
            reason = _reason(e)
            self.say(plan, f"build failed: {reason}")
            image.add(self._step("build", started, Status.FAILED, reason=reason))
            return None
        finally:
            (secrets_dir / AUTH_FILE_NAME).unlink(missing_ok=True)
        image.add(
            self._step(
                "build",
                started,
                Status.SUCCEEDED,
                detail=BuildDetail(
                    builder=result.builder,
                    digest=result.index_digest,
                    platforms=result.platforms,
                    seconds=result.seconds,
                ),
            )
        )
        self.say(plan, f"built {result.index_digest}")
        return result

    def push(self, plan: BuildPlan, build: BuildResult, image: _Image) -> None:
        from acr_ci.registry.reference import Reference

        started = self.clock()
        try:
            target = Reference.parse(plan.image, what="image")
            result = self.client.push_layout(
                build.layout, target, list(plan.tags), immutable=self.config.immutable_tags
            )
        except Exception as e:
            log.debug("push of %s failed", plan.rule, exc_info=True)
            reason = _reason(e)
            self.say(plan, f"push failed: {reason}")
            image.add(self._step("push", started, Status.FAILED, reason=reason))
            return
        image.digest = result.digest
        image.add(
            self._step(
                "push",
                started,
                Status.SUCCEEDED,
                detail=PushDetail(
                    digest=result.digest,
                    tags=plan.tags,
                    images=tuple(f"{plan.image}:{t}" for t in plan.tags),
                    bytes_sent=result.bytes_sent,
                    blobs_copied=result.blobs_copied,
                    blobs_skipped=result.blobs_skipped,
                ),
            )
        )
        self.say(plan, f"pushed {plan.image}@{result.digest} as {', '.join(plan.tags)}")

    def scan(self, plan: BuildPlan, image: _Image) -> None:
        started = self.clock()
        if image.stop:
            image.add(StepRecord.skipped("scan", image.stop, at=started))
            return
        cfg = self.config.scan
        if cfg is None:
            image.add(StepRecord.skipped("scan", "no scan: section in the config", at=started))
            return
        from acr_ci.scan.gate import GateError
        from acr_ci.scan.reports import split_spec
        from acr_ci.scan.service import ScanRequest, run_scan

        specs: list[str] = []
        if cfg.engine is ScanEngine.REPORT:
            base = Path(self.config.path).parent
            for spec in cfg.report:
                platform, path = split_spec(spec)
                full = str(path if Path(path).is_absolute() else base / path)
                specs.append(f"{platform}={full}" if platform else full)
        request = ScanRequest(
            image=f"{plan.image}@{image.digest}", config=cfg, reports=tuple(specs)
        )
        try:
            outcome = run_scan(
                request, client=self.client, log=self.out, engine=self.parts.scan_engine
            )
        except GateError as e:
            # the gate runs only for a blocked image: it stays blocked, the gate's failure noted
            image.add(
                self._step(
                    "scan",
                    started,
                    Status.BLOCKED,
                    reason=f"blocked; the gate failed: {e.message}",
                    detail=GateFailure(e.message),
                )
            )
            return
        except Exception as e:
            log.debug("scan of %s failed", plan.rule, exc_info=True)
            reason = _reason(e)
            self.say(plan, f"scan failed: {reason}")
            image.add(self._step("scan", started, Status.FAILED, reason=reason))
            return
        verdict = outcome.verdict
        detail = ScanDetail(
            image=f"{plan.image}@{image.digest}",
            scanner=outcome.context.scanner,
            mode=cfg.mode,
            counts={str(s): n for s, n in sorted(verdict.counts.items(), reverse=True)},
            findings=verdict.findings,
            vulnerabilities=len(verdict.vulnerabilities),
            blocking=tuple(v.id for v in verdict.blocking_vulnerabilities),
            would_block=verdict.blocked,
            verdict=verdict.reason,
            gate=outcome.gate,
        )
        if outcome.enforced_block:
            self.say(plan, f"scan gate: {verdict.reason}")
            image.add(
                self._step("scan", started, Status.BLOCKED, reason=verdict.reason, detail=detail)
            )
            return
        note = None
        if verdict.blocked and cfg.mode is ScanMode.NON_BLOCKING:
            note = f"non-blocking mode, would have {verdict.reason}"
        image.add(self._step("scan", started, Status.SUCCEEDED, reason=note, detail=detail))

    def sync(self, plan: BuildPlan, image: _Image) -> None:
        rules = self.config.sync
        if not rules:
            return
        if image.stop or image.digest is None:
            at = self.clock()
            for rule in rules:
                image.add(
                    StepRecord.skipped(
                        "sync",
                        image.stop or "not pushed",
                        name=rule.name,
                        at=at,
                        detail=SyncDetail(rule.to),
                    )
                )
            return
        from acr_ci.registry.reference import Reference
        from acr_ci.sync import sync_image

        started = self.clock()
        try:
            results = sync_image(
                self.client, rules, Reference.parse(plan.image), image.digest, plan.tags
            )
        except Exception as e:  # sync_image reports per destination; this is a last guard
            reason = _reason(e)
            for rule in rules:
                image.add(
                    StepRecord(
                        step="sync",
                        name=rule.name,
                        status=Status.FAILED,
                        started=started,
                        finished=self.clock(),
                        reason=reason,
                        detail=SyncDetail(rule.to, tags=()),
                    )
                )
            return
        for r in results:
            self.say(
                plan,
                f"sync {r.name} -> {r.destination}: {r.status}"
                + (f" ({r.reason})" if r.reason else ""),
            )
            image.add(sync_step(r))

    def trigger(self, plan: BuildPlan, image: _Image) -> None:
        triggers = self.config.triggers
        if not triggers:
            return
        from acr_ci.triggers import PushedImage, fire, origin

        if image.stop or image.digest is None:
            at = self.clock()
            for t in triggers:
                image.add(
                    StepRecord.skipped(
                        "trigger",
                        image.stop or "not pushed",
                        name=t.name,
                        at=at,
                        detail=TriggerDetail(origin(t.url)),
                    )
                )
            return

        push = next(s for s in image.steps if s.step == "push")
        pushed = PushedImage(
            repository=plan.image, digest=image.digest, tags=plan.tags, pushed_at=push.finished
        )
        for r in fire(triggers, pushed, tz=self.config.timezone, sender=self.parts.sender):
            self.say(
                plan,
                f"trigger {r.name} -> {r.target}: {r.status}"
                + (f" ({r.reason})" if r.reason else ""),
            )
            image.add(trigger_step(r))


def run_chain(config: Config, ref: RefContext, parts: ChainParts) -> RunRecord:
    """Plan the builds for ``ref`` and run the chain over each; returns the run record."""
    from acr_ci import tags

    plans = tags.plan(config, ref)
    return Chain(config, ref, parts).run(plans)


__all__ = [
    "Chain",
    "ChainParts",
    "client_for_args",
    "hosts_of",
    "image_hosts",
    "open_client",
    "parts_for_args",
    "run_chain",
    "sync_step",
    "trigger_step",
]
