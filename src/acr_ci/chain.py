"""The delivery chain: plan → build → push → scan gate → accelerate → sign → attest → sync →
triggers.

:func:`run_chain` walks every :class:`~acr_ci.models.BuildPlan` the rules give for a ref
and returns a :class:`~acr_ci.record.RunRecord`; the CLI writes it and prints
:func:`~acr_ci.record.summary_markdown`. It is the one build-and-push path: ``acr-ci
build`` is this chain stopped after the build, ``acr-ci build --push`` stopped after the
push (:class:`Stop`), failing fast (:attr:`ChainParts.fail_fast`).

The phases: every image is built; then, with ``immutable_tags: true``, every built
image's tags are checked before the first push (a conflict fails that image's push; when
failing fast it stops the run before any tag moved); every image is pushed; then each
image goes through the scan gate, its accelerated twin (with ``accelerate:``; mirrors then
carry ``TAG`` + suffix beside ``TAG``), its signatures (with ``sign:``: the index and each
platform manifest, and so its accelerated twin; one ``sign`` step each) and attestations (with ``attest:``: SLSA
provenance of the index, an SBOM per platform; one ``attest`` step each), its mirrors
(which carry the signatures along) and its triggers. Each stage is another module's
public API: :mod:`acr_ci.build` (a :class:`~acr_ci.build.Builder`, injectable),
:mod:`acr_ci.registry` (push, immutable-tag check), :mod:`acr_ci.scan.service`,
:mod:`acr_ci.sync`, :mod:`acr_ci.triggers`.

Rules:

* a step that fails (with an expected error: registry, network, builder, config) stops
  the later steps *of its image* (they are recorded ``skipped``
  with the reason); other rules' images go on;
* the scan gate blocking an image (blocking mode) records the scan step ``blocked``; a
  blocked image is never signed, attested, synced or triggered. In ``non-blocking`` mode a verdict that
  would block is recorded (``detail.would_block``) and the chain goes on;
* without a ``scan:`` section the scan step is ``skipped``;
* a signature or attestation that fails is a failed step: the image stays pushed, but it
  is not mirrored or announced unsigned (its later steps are skipped);
* sync failures and trigger failures are reported; they never undo the push, and they
  stop nothing else: a dead mirror fails alone (the other mirrors and the triggers still
  run), a dead webhook fails alone;
* the exit code is the record's: 3 if any image was blocked, else 1 if any step failed,
  else 0.

Images are addressed by digest from the push on: scan, sync and triggers all get
``repo@digest``.

:meth:`Chain.execute_merged` starts from indexes that :mod:`acr_ci.merge` built from the
platform images of ``build --push-by-digest`` runners (``acr-ci merge``, ``run --merge``):
a ``merge`` step takes the build's place; the phases after it are the same.
"""

from __future__ import annotations

import enum
import logging
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from acr_ci.config.model import Config, ScanEngine, ScanMode
from acr_ci.errors import EXPECTED_ERRORS as EXPECTED
from acr_ci.errors import AcrError
from acr_ci.errors import reason as error_reason
from acr_ci.models import BuildPlan, RefContext, Status
from acr_ci.record import (
    AccelerateDetail,
    BuildDetail,
    GateFailure,
    ImageRecord,
    MergeDetail,
    NoDetail,
    PushDetail,
    RunRecord,
    ScanDetail,
    SignDetail,
    StepDetail,
    StepRecord,
    SyncDetail,
    TriggerDetail,
)
from acr_ci.text import safe_output

if TYPE_CHECKING:
    from acr_ci.build import Builder, BuildResult
    from acr_ci.merge import MergedIndex
    from acr_ci.registry.client import Client
    from acr_ci.registry.reference import Reference
    from acr_ci.scan.engine import ScanEngine as Engine
    from acr_ci.scan.service import ScanOutcome
    from acr_ci.signing.sign import SignResult
    from acr_ci.signing.stage import Signer
    from acr_ci.sync import SyncResult
    from acr_ci.triggers import Sender, TriggerResult

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class Stop(enum.StrEnum):
    """Where a run of the chain ends."""

    BUILD = "build"
    """After the build (``acr-ci build``)."""
    PUSH = "push"
    """After the push (``acr-ci build --push``)."""
    END = "end"
    """After the triggers (``acr-ci run``)."""


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
    stop: Stop = Stop.END
    """Where the run ends."""
    gitlab_report: str | None = None
    """Where the scans' GitLab ``container_scanning`` report goes (one file for every
    image scanned, rewritten after each scan); None: none."""
    fail_fast: bool = False
    """Raise the first failure (build, immutable tags, push) instead of recording it and
    going on with the other images (``acr-ci build``)."""


_FAILS_ALONE = frozenset({"accelerate", "sync", "trigger"})
"""Steps whose failure is reported but skips nothing after it (a failed accelerated twin
leaves the image itself to be mirrored and announced)."""


class _Image:
    """The steps of one image as they happen."""

    def __init__(self, number: int, plan: BuildPlan, merged: MergedIndex | None = None) -> None:
        self.number = number
        """1-based, in plan order (names the image's layout folder)."""
        self.plan = plan
        self.steps: list[StepRecord] = []
        self.built: BuildResult | None = None
        self.merged = merged
        """The index a merge built (``run --merge``): pushed instead of a build's layout."""
        self.digest: str | None = None
        self.twin: tuple[str, str] | None = None
        """The accelerated twin pushed beside it: (digest, tag suffix)."""
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

    def step_ran(self, name: str) -> bool:
        return any(s.step == name for s in self.steps)

    @property
    def ready(self) -> str | None:
        """The digest the push will give the tags (built or merged), None if there is none."""
        if self.merged is not None:
            return self.merged.digest
        return self.built.index_digest if self.built is not None else None

    def record(self) -> ImageRecord:
        return ImageRecord(
            rule=self.plan.rule,
            image=self.plan.image,
            tags=self.plan.tags,
            digest=self.digest,
            steps=tuple(self.steps),
        )


@dataclass(frozen=True)
class ChainResult:
    """A run of the chain: the record, and each image's build (None where it failed)."""

    record: RunRecord
    builds: tuple[BuildResult | None, ...] = field(default=())


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
        self._gitlab_scans: list[ScanOutcome] = []
        self._signer: Signer | str | None = None
        """Made at the first image to sign: the signer, or why there is none."""

    # -- small helpers ------------------------------------------------------------------

    def say(self, plan: BuildPlan, text: str) -> None:
        """One progress line of acr-ci's own (reasons in it may quote a remote: cleaned)."""
        self.line(safe_output(f"[{plan.rule}] {text}"))

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
        label: str | None = None,
    ) -> StepRecord:
        return StepRecord(
            step=name,
            name=label,
            status=status,
            started=started,
            finished=self.clock(),
            reason=reason,
            detail=detail if detail is not None else NoDetail(),
        )

    def _failed(self, image: _Image, step: str, started: datetime, e: Exception) -> None:
        """Record ``step`` of ``image`` as failed with ``e`` (or raise it, failing fast)."""
        if self.parts.fail_fast:
            raise e
        log.debug("%s of %s failed", step, image.plan.rule, exc_info=True)
        reason = error_reason(e)
        self.say(image.plan, f"{step} failed: {reason}")
        image.add(self._step(step, started, Status.FAILED, reason=reason))

    # -- the whole run ---------------------------------------------------------------------

    def run(self, plans: Sequence[BuildPlan]) -> RunRecord:
        return self.execute(plans).record

    def execute(self, plans: Sequence[BuildPlan]) -> ChainResult:
        started = self.clock()
        images = [_Image(number, plan) for number, plan in enumerate(plans, 1)]
        builder: Builder | None = self.parts.builder
        builder_error: str | None = None
        if plans and builder is None:
            try:
                from acr_ci.build import select_builder

                builder = select_builder(self.config.build.builder, log=self.line)
            except AcrError as e:
                if self.parts.fail_fast:
                    raise
                builder_error = error_reason(e)
        for image in images:
            self.build(image, builder, builder_error)
        return self._deliver(started, images)

    def execute_merged(self, indexes: Sequence[MergedIndex]) -> ChainResult:
        """The chain from merged indexes (``acr-ci merge``, ``run --merge``): a merge step
        instead of the build, then the same phases (immutable tags for every image before
        the first push, push, scan gate, sync, triggers)."""
        started = self.clock()
        images = [_Image(n, m.plan, merged=m) for n, m in enumerate(indexes, 1)]
        for image in images:
            image.add(self._merge_step(image, started))
        return self._deliver(started, images)

    def _merge_step(self, image: _Image, started: datetime) -> StepRecord:
        merged = image.merged
        assert merged is not None
        self.say(
            image.plan,
            f"merged {merged.digest} from "
            + ", ".join(f"{p} {d}" for p, d in merged.platforms.items()),
        )
        detail = MergeDetail(digest=merged.digest, platforms=merged.platforms, sources=merged.files)
        return self._step("merge", started, Status.SUCCEEDED, detail=detail)

    def _deliver(self, started: datetime, images: list[_Image]) -> ChainResult:
        """Every phase after the build (or merge), as far as :attr:`ChainParts.stop` says."""
        if self.parts.stop is not Stop.BUILD:
            self.check_tags(images)
            for image in images:
                self.push(image)
        if self.parts.stop is Stop.END:
            for image in images:
                self.scan(image.plan, image)
                self.accelerate(image.plan, image)
                self.sign(image.plan, image)
                self.attest(image.plan, image)
                self.sync(image.plan, image)
                self.trigger(image.plan, image)
        record = RunRecord(
            ref=self.ref,
            plans=tuple(i.plan for i in images),
            images=tuple(i.record() for i in images),
            started=started,
            finished=self.clock(),
            config=self.config.path,
        )
        return ChainResult(record=record, builds=tuple(i.built for i in images))

    # -- steps ------------------------------------------------------------------------------

    def build(self, image: _Image, builder: Builder | None, builder_error: str | None) -> None:
        plan = image.plan
        started = self.clock()
        if builder is None:
            image.add(
                self._step(
                    "build", started, Status.FAILED, reason=builder_error or "no builder available"
                )
            )
            return
        from acr_ci.build.service import AUTH_FILE_NAME, cache_problem, layout_folder, prepare_job
        from acr_ci.registry.access import hosts_of

        work = self.workdir()
        secrets_dir = work / "secrets" / str(image.number)
        self.say(plan, f"build with {builder.name}: {', '.join(plan.platforms)}")
        cache_error = None if plan.cache is None else cache_problem(self.client, plan.cache)
        if plan.cache is not None and cache_error is not None:
            self.say(
                plan,
                f"warning: registry cache {plan.cache.ref}: {cache_error}; building without it",
            )
        try:
            job = prepare_job(
                plan,
                self.ref,
                config_dir=Path(self.config.path).resolve().parent,
                layout=layout_folder(work, image.number, plan.rule),
                secrets_dir=secrets_dir,
                credentials=self.client.credentials,
                insecure_registries=[
                    *self.config.insecure_registries,
                    *sorted(self.client.insecure),
                ],
                extra_hosts=hosts_of(self.config.image),
                log=self.line,
                cache_error=cache_error,
            )
            result = builder.build(job)
        except EXPECTED as e:
            self._failed(image, "build", started, e)
            return
        finally:
            (secrets_dir / AUTH_FILE_NAME).unlink(missing_ok=True)
        image.built = result
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
                    cache=result.cache,
                ),
            )
        )
        self.say(plan, f"built {result.index_digest}")

    def check_tags(self, images: Sequence[_Image]) -> None:
        """With ``immutable_tags: true``: every built image's tags, before the first push.

        A conflict fails that image's push (failing fast: raises, so no tag moves at all)."""
        if not self.config.immutable_tags:
            return
        from acr_ci.registry.reference import Reference

        for image in images:
            digest = image.ready
            if digest is None:
                continue
            started = self.clock()
            try:
                target = Reference.parse(image.plan.image, what="image")
                self.client.check_immutable(target, image.plan.tags, digest)
            except EXPECTED as e:
                self._failed(image, "push", started, e)

    def push(self, image: _Image) -> None:
        plan = image.plan
        if image.step_ran("push"):  # the immutable-tag check refused it
            return
        if image.ready is None or image.stop:
            image.add(StepRecord.skipped("push", image.stop or "not built", at=self.clock()))
            return
        started = self.clock()
        try:
            detail = self._push(image)
        except EXPECTED as e:
            self._failed(image, "push", started, e)
            return
        image.digest = detail.digest
        image.add(self._step("push", started, Status.SUCCEEDED, detail=detail))
        self.say(plan, f"pushed {plan.image}@{detail.digest} as {', '.join(plan.tags)}")

    def _push(self, image: _Image) -> PushDetail:
        """Push ``image``'s layout (or merged index) under every tag of its plan."""
        from acr_ci.registry.reference import Reference

        plan = image.plan
        images = tuple(f"{plan.image}:{t}" for t in plan.tags)
        if image.merged is not None:
            from acr_ci.merge import push_index

            sent = push_index(self.client, image.merged)
            return PushDetail(image.merged.digest, plan.tags, images, sent, 0, 0)
        assert image.built is not None
        target = Reference.parse(plan.image, what="image")
        # byte-exact: the pushed digest is the built one; immutable tags were checked
        result = self.client.push_layout(image.built.layout, target, list(plan.tags))
        return PushDetail(
            digest=result.digest,
            tags=plan.tags,
            images=images,
            bytes_sent=result.bytes_sent,
            blobs_copied=result.blobs_copied,
            blobs_skipped=result.blobs_skipped,
        )

    def scan(self, plan: BuildPlan, image: _Image) -> None:
        started = self.clock()
        if image.stop:
            image.add(StepRecord.skipped("scan", image.stop, at=started))
            return
        cfg = self.config.scan
        if cfg is None:
            image.add(StepRecord.skipped("scan", "no scan: section in the config", at=started))
            return
        from acr_ci.registry.reference import Reference
        from acr_ci.scan.gate import GateError
        from acr_ci.scan.service import ScanRequest, run_scan
        from acr_ci.scan.settings import resolve_report_specs

        specs: tuple[str, ...] = ()
        if cfg.engine is ScanEngine.REPORT:
            specs = resolve_report_specs(cfg.report, Path(self.config.path).parent)
        pushed = Reference.parse(plan.image, what="image").with_digest(image.digest)
        request = ScanRequest(image=pushed, config=cfg, reports=specs)
        try:
            outcome = run_scan(
                request, client=self.client, log=self.out, engine=self.parts.scan_engine
            )
            self._gitlab_report(outcome)
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
        except EXPECTED as e:
            log.debug("scan of %s failed", plan.rule, exc_info=True)
            reason = error_reason(e)
            self.say(plan, f"scan failed: {reason}")
            image.add(self._step("scan", started, Status.FAILED, reason=reason))
            return
        verdict = outcome.verdict
        detail = ScanDetail(
            image=str(pushed),
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

    def _gitlab_report(self, outcome: ScanOutcome) -> None:
        """Add ``outcome`` to the GitLab report, when one was asked for."""
        if not self.parts.gitlab_report:
            return
        from acr_ci import fileio
        from acr_ci.scan.formats.gitlab import GitlabFormat

        self._gitlab_scans.append(outcome)
        scans = [(o.context, o.findings, o.verdict) for o in self._gitlab_scans]
        doc = GitlabFormat().render_scans(scans)
        fileio.write_json(self.parts.gitlab_report, doc, what="the GitLab report")

    def accelerate(self, plan: BuildPlan, image: _Image) -> None:
        """With ``accelerate:``: the image's eStargz twin, as each tag plus the suffix, after
        the scan gate passed it (a blocked image gets none) and before its mirrors."""
        settings = self.config.accelerate
        if settings is None:
            return
        at = self.clock()
        rule = next((r for r in self.config.build.rules if r.name == plan.rule), None)
        if rule is not None and not rule.accelerate:
            image.add(StepRecord.skipped("accelerate", "accelerate: false for this rule", at=at))
            return
        if image.stop or image.digest is None:
            image.add(StepRecord.skipped("accelerate", image.stop or "not pushed", at=at))
            return
        from acr_ci.accelerate.service import Format, accelerate, suffixed_tags
        from acr_ci.registry.reference import Reference

        try:
            tags = suffixed_tags(plan.tags, settings.suffix)
            pushed = Reference.parse(plan.image, what="image").with_digest(image.digest)
            result = accelerate(
                self.client,
                pushed,
                tags,
                fmt=Format(settings.format),
                immutable=self.config.immutable_tags,
            )
        except EXPECTED as e:
            self._failed(image, "accelerate", at, e)
            return
        image.twin = (result.digest, settings.suffix)
        detail = AccelerateDetail(
            digest=result.digest,
            source=result.source,
            format=settings.format,
            tags=result.tags,
            images=tuple(f"{plan.image}:{t}" for t in result.tags),
            layers_converted=result.layers_converted,
            layers_kept=result.layers_kept,
            bytes_sent=result.bytes_uploaded,
        )
        image.add(self._step("accelerate", at, Status.SUCCEEDED, detail=detail))
        self.say(plan, f"accelerated {plan.image}@{result.digest} as {', '.join(result.tags)}")

    def signer(self) -> Signer | str:
        """The run's signer (made once, from ``sign:``), or why there is none."""
        if self._signer is None:
            from acr_ci.signing.stage import signer_for

            assert self.config.sign is not None
            try:
                self._signer = signer_for(self.config.sign, Path(self.config.path).parent)
            except EXPECTED as e:
                self._signer = error_reason(e)
        return self._signer

    def _platforms(self, image: _Image) -> dict[str, str]:
        if image.merged is not None:
            return dict(image.merged.platforms)
        return dict(image.built.platforms) if image.built is not None else {}

    def _signed(self, image: _Image, step: str, label: str, at: datetime, r: SignResult) -> None:
        detail = SignDetail(
            subject=r.digest,
            kind=r.kind,
            where=r.tag,
            manifest=r.manifest_digest or r.layer_digest,
            layer=r.layer_digest,
            key=r.key or None,
            identity=r.identity,
            predicate_type=r.predicate_type,
            added=r.added,
        )
        image.add(self._step(step, at, Status.SUCCEEDED, detail=detail, label=label))
        by = r.identity or r.key
        self.say(image.plan, f"{step} {label}: {r.kind} in {r.tag}" + (f" ({by})" if by else ""))

    def _unsigned(self, image: _Image, step: str, label: str, at: datetime, reason: str) -> None:
        self.say(image.plan, f"{step} {label} failed: {reason}")
        image.add(self._step(step, at, Status.FAILED, reason=reason, label=label))

    def sign(self, plan: BuildPlan, image: _Image) -> None:
        """With ``sign:``: sign the pushed index and each platform manifest by digest (a
        blocked or failed image is not signed: skipped)."""
        if self.config.sign is None:
            return
        at = self.clock()
        if image.stop or image.digest is None:
            reason = image.stop or "not pushed"
            image.add(StepRecord.skipped("sign", reason, name="index", at=at))
            return
        from acr_ci.registry.reference import Reference
        from acr_ci.signing.stage import sign_targets

        signer = self.signer()
        if isinstance(signer, str):
            self._unsigned(image, "sign", "index", at, signer)
            return
        pushed = Reference.parse(plan.image, what="image").with_digest(image.digest)
        targets = sign_targets(pushed, self._platforms(image))
        if image.twin is not None:  # the accelerated twin is pushed under tags too: signed
            targets += [
                (f"accelerated {label}", ref)
                for label, ref in self._twin_targets(pushed.with_digest(image.twin[0]))
            ]
        for label, target in targets:
            started = self.clock()
            try:
                result = signer.sign(self.client, target)
            except EXPECTED as e:
                log.debug("signing %s failed", target, exc_info=True)
                self._unsigned(image, "sign", label, started, error_reason(e))
                return
            self._signed(image, "sign", label, started, result)

    def _twin_targets(self, twin: Reference) -> list[tuple[str, Reference]]:
        """The twin's index and platform manifests (its index is read; unreadable: the
        index alone, and signing it will say why)."""
        from acr_ci.signing.stage import sign_targets

        try:
            children = self.client.get_manifest(twin).children()
        except EXPECTED:
            children = []
        platforms = {str(c.platform): c.digest for c in children if c.platform is not None}
        return sign_targets(twin, platforms)

    def attest(self, plan: BuildPlan, image: _Image) -> None:
        """With ``attest:``: SLSA provenance of the index, a CycloneDX SBOM per platform
        manifest (attested, and as a plain referrer), each one ``attest`` step."""
        wanted = self.config.attest
        if wanted is None or self.config.sign is None or not (wanted.provenance or wanted.sbom):
            return
        at = self.clock()
        if image.stop or image.digest is None:
            image.add(StepRecord.skipped("attest", image.stop or "not pushed", at=at))
            return
        from acr_ci.registry.reference import Reference
        from acr_ci.signing import stage

        signer = self.signer()
        if isinstance(signer, str):
            self._unsigned(image, "attest", "provenance", at, signer)
            return
        pushed = Reference.parse(plan.image, what="image").with_digest(image.digest)
        platforms = self._platforms(image)
        if wanted.provenance:
            started = self.clock()
            try:
                from acr_ci.signing.provenance import PREDICATE_TYPE

                config_dir = Path(self.config.path).resolve().parent
                names = stage.dockerfile_base_images(plan, config_dir)
                predicate = stage.provenance_for(
                    self.config,
                    self.ref,
                    plan,
                    tuple(platforms),
                    stage.resolved_base_images(self.client, names),
                )
                result = signer.attest(self.client, pushed, PREDICATE_TYPE, predicate)
            except EXPECTED as e:
                log.debug("provenance of %s failed", plan.rule, exc_info=True)
                self._unsigned(image, "attest", "provenance", started, error_reason(e))
                return
            self._signed(image, "attest", "provenance", started, result)
        if wanted.sbom:
            from acr_ci.signing.sbom import attest_sboms

            def attest_with(ref: Reference, ptype: str, doc: Mapping[str, Any]) -> SignResult:
                assert not isinstance(signer, str)
                return signer.attest(self.client, ref, ptype, doc)

            for label, target in stage.sign_targets(pushed, platforms)[1:] or [("index", pushed)]:
                started = self.clock()
                try:
                    results = attest_sboms(self.client, target, None, attest=attest_with)
                except EXPECTED as e:
                    log.debug("SBOM of %s failed", target, exc_info=True)
                    self._unsigned(image, "attest", f"sbom {label}", started, error_reason(e))
                    return
                for r in results:
                    name = "sbom referrer" if r.kind == "sbom referrer" else "sbom"
                    self._signed(image, "attest", f"{name} {label}", started, r)

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
                self.client,
                rules,
                Reference.parse(plan.image),
                image.digest,
                plan.tags,
                twin=image.twin,
            )
        except EXPECTED as e:  # sync_image reports per destination; this is a last guard
            reason = error_reason(e)
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
    "ChainResult",
    "Stop",
    "run_chain",
    "sync_step",
    "trigger_step",
]
