"""The CI front ends' one shared step: inputs → one ``acr-ci`` command line → outputs.

Each platform module reads its platform's inputs into :class:`Inputs` — GitHub's
``INPUT_*`` (:mod:`.github`), the GitLab component's ``ACR_CI_*`` job variables
(:mod:`.gitlab`), a Tekton step's ``PARAM_*`` env (:mod:`.tekton`) — and calls
:func:`execute`, which

1. turns :class:`Inputs` into the typed options of one ``acr-ci`` command, the ones its
   flags would give (:func:`invocation`; secrets stay in the registry login, never in
   argv),
2. runs it in this process (:func:`acr_ci.cli.main`),
3. reads back what the command wrote (the run record, ``--output-json``, the JSON plan)
   into :class:`~acr_ci.platforms.outputs.Results`, adding one annotation per config
   problem when the config was refused,
4. hands the results to the platform's sink, and returns the command's exit code.

There is no tag or policy logic here: every decision is the command's.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from acr_ci import record as record_mod
from acr_ci.errors import EXIT_USAGE, AcrError, ConfigError, UsageError
from acr_ci.jsonload import loads_bounded
from acr_ci.platforms import outputs
from acr_ci.platforms.outputs import Annotation, Level, OutputSink, Results
from acr_ci.record import DEFAULT_PATH as DEFAULT_RECORD
from acr_ci.registry.access import Login, RegistryAccess
from acr_ci.registry.auth import ENV_PASSWORD, ENV_USERNAME

COMMANDS = (
    "run", "plan", "build", "merge", "scan", "sync", "trigger",
    "sign", "attest", "verify", "accelerate",
)  # fmt: skip
NO_IMAGE = ("run", "plan", "build", "merge")
"""The commands that take no ``image`` input (every other one needs it)."""

MAX_MERGE_FILES = 256
"""At most this many digests files in the ``merge`` input, its patterns expanded."""
GLOB_CHARS = frozenset("*?[")

TRUE = frozenset({"true", "yes", "1", "on"})
FALSE = frozenset({"false", "no", "0", "off", ""})


def parse_bool(value: str | None, name: str) -> bool:
    """A boolean input (``true``/``false`` and friends); ``UsageError`` naming it otherwise."""
    text = (value or "").strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise UsageError(f"input {name} {value!r} is not a boolean", "use true or false")


def parse_optional_bool(value: str | None, name: str) -> bool | None:
    """A boolean input that may be left empty: None (the config decides)."""
    if not (value or "").strip():
        return None
    return parse_bool(value, name)


def parse_list(value: str | None) -> tuple[str, ...]:
    """A list input: one item per line (or comma-separated on one line); blanks dropped."""
    items: list[str] = []
    for line in (value or "").splitlines():
        items.extend(part.strip() for part in line.split(","))
    return tuple(i for i in items if i)


def expanded(value: str | None) -> str:
    """``value``, or ``""`` when empty or still an unexpanded ``$VARIABLE`` reference.

    GitLab leaves ``$CI_REGISTRY_USER`` as written when the project has no registry;
    that must read as "no credentials", not as a user called ``$CI_REGISTRY_USER``.
    """
    text = (value or "").strip()
    if text.startswith("$") and text[1:].lstrip("{").rstrip("}").replace("_", "").isalnum():
        return ""
    return text


@dataclass(frozen=True)
class Inputs:
    """What every front end can ask of ``acr-ci``; names follow the CLI's flags."""

    command: str = "run"
    config: str = ""
    ref: str = ""
    sha: str = ""
    time: str = ""
    push: bool = False
    rule: str = ""
    image: str = ""
    """``scan``/``sync``/``trigger``/``sign``/``attest``/``verify``/``accelerate``: the image
    (``repo:tag``, ``repo@digest``)."""
    reports: tuple[str, ...] = ()
    """``scan``: scanner report files (``--report``)."""
    severity: str = ""
    non_blocking: bool = False
    backfill: bool = False
    record: str = DEFAULT_RECORD
    sarif: str = ""
    gitlab_report: str = ""
    insecure: tuple[str, ...] = ()
    layout_dir: str = ""
    platforms: tuple[str, ...] = ()
    """``build``: only these of each rule's platforms (``--platform``, repeatable)."""
    push_by_digest: bool = False
    """``build``: push each platform image by digest only, no tag (``--push-by-digest``)."""
    digests_file: str = ""
    """``build`` with :attr:`push_by_digest`: the JSON-lines file for ``merge``."""
    merge: tuple[str, ...] = ()
    """``merge`` (its files) and ``run`` (``--merge``): digests files or glob patterns."""
    accelerate: bool | None = None
    """``run``: True (``--accelerate``) makes the eStargz twin of every passed image with the
    config's ``accelerate:`` settings or their defaults; False (``--no-accelerate``) makes
    none; None: as the config says."""
    public_key: str = ""
    """``verify``: the PEM public key file (``--key``); a file path, never a private key."""
    attestations: bool = False
    """``verify``: also require a verified attestation (``--attestations``)."""
    username: str = ""
    password: str = ""
    login_only: tuple[str, ...] | None = None
    """The registries the login was issued for (a CI job token's own registry: the
    platform's front end says so); None: any registry the command targets."""
    summary: bool = True
    verbose: bool = False

    def __repr__(self) -> str:  # the password never shows
        return f"Inputs(command={self.command!r}, config={self.config!r}, ref={self.ref!r})"


Getter = Callable[[str, str], str]
"""Reads one input by its action/component/param name, with a default."""


def read_inputs(get: Getter, *, password: str, **platform: Any) -> Inputs:
    """The inputs every front end shares, read with the platform's naming (``get``), plus
    the platform's own fields (``platform``, which also override shared ones)."""
    fields: dict[str, Any] = {
        "command": get("command", "run"),
        "config": get("config", ""),
        "ref": get("ref", ""),
        "sha": get("sha", ""),
        "time": get("time", ""),
        "push": parse_bool(get("push", "false"), "push"),
        "rule": get("rule", ""),
        "image": get("image", ""),
        "reports": parse_list(get("report", "")),
        "severity": get("severity", ""),
        "non_blocking": parse_bool(get("non-blocking", "false"), "non-blocking"),
        "backfill": parse_bool(get("backfill", "false"), "backfill"),
        "record": get("record", DEFAULT_RECORD),
        "insecure": parse_list(get("insecure-registries", "")),
        "platforms": parse_list(get("platforms", "")),
        "push_by_digest": parse_bool(get("push-by-digest", "false"), "push-by-digest"),
        "digests_file": get("digests-file", ""),
        "merge": parse_list(get("merge", "")),
        "accelerate": parse_optional_bool(get("accelerate", ""), "accelerate"),
        "public_key": get("public-key", ""),
        "attestations": parse_bool(get("attestations", "false"), "attestations"),
        "username": get("registry-username", ""),
        "password": password,
        "verbose": parse_bool(get("verbose", "false"), "verbose"),
    }
    fields.update(platform)
    return Inputs(**fields)


@dataclass(frozen=True)
class Invocation:
    """One command with its typed options, and the files its results are read from."""

    command: str
    """The command's name (one of :data:`COMMANDS`)."""
    options: object
    """The command's typed options (``RunOptions``, ``PlanOptions``, …)."""
    action: Callable[[], int]
    """The command's ``execute`` over :attr:`options`."""
    output_json: str = ""
    """``build``/``merge``/``scan``: where the command writes its JSON result."""
    image: str = ""
    """The target image (commands that take one)."""


def _login(inputs: Inputs, env: Mapping[str, str]) -> Login | None:
    """The inputs' registry login when given (both or neither; for
    :attr:`Inputs.login_only` only), else the environment's."""
    if inputs.username or inputs.password:
        login = Login.from_env({ENV_USERNAME: inputs.username, ENV_PASSWORD: inputs.password})
        if login is not None and inputs.login_only is not None:
            return login.issued_for(*inputs.login_only)
        return login
    return Login.from_env(env)


def invocation(inputs: Inputs, workdir: Path, env: Mapping[str, str] | None = None) -> Invocation:
    """The command ``inputs`` ask for, with its typed options; ``workdir`` holds scratch
    files. Values stay values: an image called ``--backfill`` is an image."""
    from acr_ci.cli import (
        accelerate,
        attest,
        build,
        merge,
        plan,
        run,
        scan,
        sign,
        sync,
        trigger,
        verify,
    )
    from acr_ci.cli.common import RefOptions
    from acr_ci.scan.settings import ScanOverrides

    env = os.environ if env is None else env
    cmd = inputs.command.strip().lower()
    if cmd not in COMMANDS:
        raise UsageError(
            f"input command {inputs.command!r} is not supported",
            f"use one of {', '.join(COMMANDS)}",
        )
    check_multi_runner(inputs, cmd)
    check_command_inputs(inputs, cmd)
    if cmd not in NO_IMAGE and not inputs.image:
        if not (cmd == "scan" and inputs.reports):
            raise UsageError(f"acr-ci {cmd} needs the image input", "e.g. registry/ns/repo:tag")
    config = inputs.config or None
    ref = RefOptions(
        config=config, ref=inputs.ref or None, sha=inputs.sha or None, time=inputs.time or None
    )
    login = _login(inputs, env)
    access = RegistryAccess(insecure=inputs.insecure, login=login)
    layout_dir = inputs.layout_dir or None
    if cmd == "run":
        o_run = run.RunOptions(
            merge=merge_files(inputs.merge),
            ref=ref,
            record=inputs.record or DEFAULT_RECORD,
            layout_dir=layout_dir,
            access=access,
            gitlab_report=inputs.gitlab_report or None,
            accelerate=inputs.accelerate,
        )
        return Invocation(cmd, o_run, lambda: run.execute(o_run))
    if cmd == "plan":
        o_plan = plan.PlanOptions(ref=ref, format="json")
        return Invocation(cmd, o_plan, lambda: plan.execute(o_plan))
    if cmd == "build":
        output = str(workdir / "build.json")
        o_build = build.BuildOptions(
            ref=ref,
            push=inputs.push,
            rule=inputs.rule or None,
            output_json=output,
            layout_dir=layout_dir,
            access=access,
            platforms=inputs.platforms,
            push_by_digest=inputs.push_by_digest,
            digests_file=inputs.digests_file or None,
        )
        return Invocation(cmd, o_build, lambda: build.execute(o_build), output)
    if cmd == "merge":
        output = str(workdir / "merge.json")
        o_merge = merge.MergeOptions(
            files=merge_files(inputs.merge), ref=ref, output_json=output, access=access
        )
        return Invocation(cmd, o_merge, lambda: merge.execute(o_merge), output)
    if cmd == "scan":
        output = str(workdir / "scan.json")
        o_scan = scan.ScanOptions(
            image=inputs.image or None,
            config=config,
            overrides=ScanOverrides(
                reports=inputs.reports,
                severity=inputs.severity or None,
                non_blocking=inputs.non_blocking,
            ),
            output_json=output,
            gitlab_report=inputs.gitlab_report or None,
            sarif=inputs.sarif or None,
            access=access,
        )
        return Invocation(cmd, o_scan, lambda: scan.execute(o_scan), output)
    if cmd == "sync":
        o_sync = sync.SyncOptions(
            image=inputs.image, config=config, backfill=inputs.backfill, access=access
        )
        return Invocation(cmd, o_sync, lambda: sync.execute(o_sync))
    if cmd == "sign":
        # the key is read from the variable the config's sign.key_env names
        # (ACR_CI_SIGNING_KEY by default), set by the job: never an input, never argv
        o_sign = sign.SignOptions(image=inputs.image, config=config, access=access)
        return Invocation(cmd, o_sign, lambda: sign.execute(o_sign))
    if cmd == "attest":
        o_attest = attest.AttestOptions(image=inputs.image, ref=ref, access=access)
        return Invocation(cmd, o_attest, lambda: attest.execute(o_attest))
    if cmd == "verify":
        o_verify = verify.VerifyOptions(
            image=inputs.image,
            key=inputs.public_key,
            attestations=inputs.attestations,
            access=access,
        )
        return Invocation(cmd, o_verify, lambda: verify.execute(o_verify))
    if cmd == "accelerate":
        o_acc = accelerate.AccelerateOptions(image=inputs.image, config=config, access=access)
        return Invocation(cmd, o_acc, lambda: accelerate.execute(o_acc), image=inputs.image)
    o_trigger = trigger.TriggerOptions(image=inputs.image, config=config, access=access)
    return Invocation(cmd, o_trigger, lambda: trigger.execute(o_trigger))


def check_command_inputs(inputs: Inputs, command: str) -> None:
    """The inputs of one command (``accelerate``, ``public-key``, ``attestations``) given
    to another, or a command without the input it needs: a :class:`UsageError` naming it."""
    if inputs.accelerate is not None and command != "run":
        raise UsageError(
            f"input accelerate is for command run, not {command}",
            "command accelerate makes the twin of an existing image (the image input)",
        )
    for value, name in ((inputs.public_key, "public-key"), (inputs.attestations, "attestations")):
        if value and command != "verify":
            raise UsageError(f"input {name} is for command verify, not {command}")
    if command == "verify" and not inputs.public_key:
        raise UsageError(
            "command verify needs the public-key input",
            "the PEM public key file (cosign.pub) in the workspace",
        )


BUILD_ONLY = (
    ("platforms", "platforms"),
    ("push_by_digest", "push-by-digest"),
    ("digests_file", "digests-file"),
)
"""The inputs of one runner of a multi-runner build: (field, input name)."""


def check_multi_runner(inputs: Inputs, command: str) -> None:
    """The multi-runner inputs (``platforms``, ``push-by-digest``, ``digests-file``,
    ``merge``) that cannot work with ``command`` or with each other: a :class:`UsageError`
    naming the inputs. (The command checks the values themselves: each platform against
    the rule's, the digests files' contents.)"""
    for field_name, name in BUILD_ONLY:
        if getattr(inputs, field_name) and command != "build":
            raise UsageError(
                f"input {name} is for command build, not {command}",
                "one build job per platform: command build with platforms, push-by-digest "
                "and digests-file; then one job with command merge (or run) and merge",
            )
    if inputs.merge and command not in ("merge", "run"):
        raise UsageError(
            f"input merge is for commands merge and run, not {command}",
            "give the digests files of every build --push-by-digest job to merge or run",
        )
    if command == "merge" and not inputs.merge:
        raise UsageError(
            "command merge needs the merge input",
            "the digests files of every push-by-digest build job, e.g. digests/*.jsonl",
        )
    if command != "build":
        return
    if inputs.push and inputs.push_by_digest:
        raise UsageError(
            "inputs push and push-by-digest exclude each other",
            "push tags the image; push-by-digest pushes platform images for a merge job",
        )
    if inputs.digests_file and not inputs.push_by_digest:
        raise UsageError(
            "input digests-file needs push-by-digest: true",
            "set push-by-digest, or leave digests-file empty",
        )
    if inputs.platforms and inputs.push:
        raise UsageError(
            "input platforms with push: true would tag an image without the rule's other platforms",
            "on one runner per platform use push-by-digest and digests-file, then merge",
        )


def merge_files(patterns: Sequence[str]) -> tuple[str, ...]:
    """The ``merge`` input's items as files: a glob pattern (``*``, ``?``, ``[``) becomes
    the files it matches (sorted; none is an error naming it), any other item stays as
    given (the command reports a missing file). Relative to the working directory (the
    job's workspace); at most :data:`MAX_MERGE_FILES`, each once."""
    import glob
    import itertools

    files: list[str] = []
    for item in patterns:
        if GLOB_CHARS.isdisjoint(item):
            found = [item]
        else:
            found = sorted(itertools.islice(glob.iglob(item), MAX_MERGE_FILES + 1))
            if not found:
                raise UsageError(
                    f"input merge: {item!r} matches no file",
                    "download the build jobs' digests files (artifacts) before the merge job "
                    "runs, and check the pattern",
                )
        files.extend(f for f in found if f not in files)
        if len(files) > MAX_MERGE_FILES:
            raise UsageError(
                f"input merge names more than {MAX_MERGE_FILES} digests files",
                "one file per build job is enough",
            )
    return tuple(files)


def _read_json(path: str) -> dict[str, Any] | None:
    """acr-ci's own JSON output at ``path``; None when it is missing or not an object."""
    try:
        doc = loads_bounded(Path(path).read_bytes(), what=path)
    except (OSError, AcrError):
        return None
    return doc if isinstance(doc, dict) else None


def _read_record(path: str) -> record_mod.RunRecord | None:
    """The run record at ``path``; None when there is none or it is not a valid record."""
    try:
        return record_mod.read(path)
    except record_mod.RecordError:
        return None


def _config_problems(inputs: Inputs) -> tuple[Annotation, ...]:
    """After an exit 2: the config's problems, each at its file, line and column."""
    from acr_ci import config as config_mod

    path = inputs.config or None
    if path is None and not Path(config_mod.resolve_path(None)).exists():
        return ()
    try:
        config_mod.load(path)
    except ConfigError as e:
        return outputs.config_annotations(e)
    except AcrError:  # not a config problem: the command already reported it
        return ()
    return ()


def collect(inputs: Inputs, inv: Invocation, exit_code: int, stdout: str) -> Results:
    """What the command wrote, as :class:`Results`."""
    cmd = inv.command
    results: Results
    if cmd == "run":
        run = _read_record(inputs.record or DEFAULT_RECORD)
        if run is not None and exit_code != EXIT_USAGE:
            # `acr-ci run` prints the record's Markdown summary, and only that, on stdout
            summary = stdout if inputs.summary else ""
            results = outputs.from_record(run, path=inputs.record, summary=summary)
            if inputs.gitlab_report and Path(inputs.gitlab_report).exists():
                results = replace(results, reports={"container_scanning": inputs.gitlab_report})
        else:
            results = outputs.from_exit(cmd, exit_code)
    elif cmd in ("build", "merge"):
        doc = _read_json(inv.output_json)
        results = outputs.from_build(doc or {}, exit_code=exit_code, command=cmd)
    elif cmd == "plan":
        try:
            plan = loads_bounded(stdout, what="the plan") if exit_code == 0 else {}
        except AcrError:
            plan = {}
        results = outputs.from_plan(plan, exit_code=exit_code)
    elif cmd == "scan":
        reports = {
            k: v
            for k, v in (("container_scanning", inputs.gitlab_report), ("sarif", inputs.sarif))
            if v and Path(v).exists()
        }
        results = outputs.from_scan(
            _read_json(inv.output_json), exit_code=exit_code, reports=reports
        )
    elif cmd == "accelerate":
        results = outputs.from_accelerate(stdout, inv.image, exit_code=exit_code)
    else:
        results = outputs.from_exit(cmd, exit_code)
    extra: tuple[Annotation, ...] = ()
    if exit_code == EXIT_USAGE:
        extra = _config_problems(inputs)
    if exit_code != 0 and not results.annotations and not extra:
        extra = (
            Annotation(
                Level.ERROR,
                f"acr-ci {cmd} exited with code {exit_code}; the job log says why",
                title=f"acr-ci {cmd}",
            ),
        )
    results = outputs.with_annotations(results, extra)
    if inputs.summary and not results.summary:
        results = replace(results, summary=outputs.command_summary(results))
    return results


def execute(
    inputs: Inputs,
    sink: OutputSink,
    *,
    environ: Mapping[str, str] | None = None,
    guard: Any = None,
) -> int:
    """Run ``inputs`` as one ``acr-ci`` command, publish its results, return its exit code.

    ``guard`` is a context manager factory wrapping the command's own output (GitHub's
    stop-commands), or None. Bad inputs raise :class:`~acr_ci.errors.AcrError` before
    anything runs.
    """
    from acr_ci.cli import invoke

    env: Mapping[str, str] = os.environ if environ is None else environ
    if inputs.password:
        sink.mask(inputs.password)
    with tempfile.TemporaryDirectory(prefix="acr-ci-frontend-") as tmp:
        inv = invocation(inputs, Path(tmp), env)
        captured = io.StringIO()
        with guard() if guard else _nothing():
            sys.stderr.write(f"acr-ci {inv.command}\n")
            if inv.command in STDOUT_RESULTS:  # their stdout is a result: keep a copy
                with redirect_stdout(captured):
                    code = invoke(inv.action, verbose=inputs.verbose)
                sys.stdout.write(captured.getvalue())
            else:
                code = invoke(inv.action, verbose=inputs.verbose)
            sys.stdout.flush()
            sys.stderr.flush()
        results = collect(inputs, inv, code, captured.getvalue())
    sink.publish(results)
    return code


STDOUT_RESULTS = ("plan", "run", "accelerate")
"""Commands whose stdout is read back: the plan, the run's summary, the twin's digest."""


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def env_get(env: Mapping[str, str], name: str, default: str = "") -> str:
    """``env[name]`` stripped, ``default`` when unset or empty."""
    value = (env.get(name) or "").strip()
    return value or default
