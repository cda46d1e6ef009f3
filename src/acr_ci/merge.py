"""Native multi-runner builds: each runner pushes its platforms by digest, one job merges.

Runner side (``acr-ci build --platform P --push-by-digest --digests-file F``):
:func:`push_platform_images` pushes each built platform's image manifest to the rule's
repository by digest only (no tag is created or moved) and :func:`append_digests` writes
one :class:`DigestLine` per platform image to the digests file.

Merge side (``acr-ci merge F…``, ``acr-ci run --merge F…``): :func:`read_digests` reads
the files of every runner (any order; a line seen twice counts once), :func:`agreed_ref`
checks they agree on ref, sha and time (the tags come from them), :func:`prepare` checks
every rule's platforms are all there with exactly one digest each, fetches each platform
manifest by digest, checks the platform its config names, and builds the rule's OCI image
index with the annotations a single-machine build writes. Nothing is pushed until every
rule is ready; the chain then checks immutable tags for all of them and pushes each index
under every tag of its rule (:func:`push_index`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from acr_ci import fileio
from acr_ci.annotations import image_annotations, source_url
from acr_ci.errors import AcrError, MergeError, OutputError, RegistryError, UsageError
from acr_ci.jsonload import loads_bounded
from acr_ci.models import BuildPlan, RefContext, RefType
from acr_ci.platforms.base import checked_sha, full_ref, parse_full_ref, shown
from acr_ci.platforms.timeparse import parse_time
from acr_ci.registry.media import OCI_INDEX, Manifest, Platform, sha256_digest
from acr_ci.registry.reference import LayoutReference, Reference, valid_digest
from acr_ci.registry.store import image_config

if TYPE_CHECKING:
    from acr_ci.build import BuildResult
    from acr_ci.config.model import Config
    from acr_ci.registry.client import Client

MAX_FILE_BYTES = 1024 * 1024
"""The largest digests file read (a line is ~300 bytes)."""
MAX_LINE_BYTES = 8192
"""The longest line of a digests file."""
MAX_LINES = 4096
"""The most lines all digests files of one merge may hold together."""
MAX_FIELD = 512
"""The longest value of one field."""
FIELDS = ("rule", "image", "platform", "digest", "ref", "sha", "time")
"""The fields of one line, in the order they are written."""
DIGESTS_HINT = "give the files that `acr-ci build --push-by-digest --digests-file F` wrote"


@dataclass(frozen=True)
class DigestLine:
    """One platform image a runner pushed by digest (one line of a digests file)."""

    rule: str
    image: str
    """The rule's repository, ``REGISTRY/REPO``."""
    platform: str
    """``os/arch[/variant]``."""
    digest: str
    """The platform image manifest's digest."""
    ref: str
    """``refs/heads/NAME`` or ``refs/tags/NAME``."""
    sha: str
    time: str
    """The push time, ISO 8601 with its offset."""
    where: str = field(default="", compare=False)
    """``FILE:LINE`` it was read from (empty for a line not read from a file)."""

    def to_json(self) -> dict[str, str]:
        return {name: str(getattr(self, name)) for name in FIELDS}

    @cached_property
    def instant(self) -> datetime:
        """The push time, parsed once (lines are compared on it)."""
        return parse_time(self.time, origin=f"{self.where}: time")


def ref_text(ref: RefContext) -> str:
    """``ref`` as a full ref name (what ``--ref`` takes back)."""
    return full_ref(ref.type, ref.name)


# -- runner side ----------------------------------------------------------------------


def push_platform_images(client: Client, plan: BuildPlan, result: BuildResult) -> dict[str, str]:
    """Push each platform image of ``result``'s layout to ``plan.image`` by digest only;
    returns ``platform → digest`` (the digests the build wrote)."""
    target = Reference.parse(plan.image, what="image")
    layout = LayoutReference(str(result.layout))
    pushed: dict[str, str] = {}
    for platform, digest in result.platforms.items():
        copied = client.copy(layout, target, [], platforms=[Platform.parse(platform)])
        if copied.digest != digest:
            raise RegistryError(
                f"{plan.image}: pushed {copied.digest} for {platform}, but the build wrote {digest}"
            )
        pushed[platform] = copied.digest
    return pushed


def digest_lines(plan: BuildPlan, pushed: Mapping[str, str], ref: RefContext) -> list[DigestLine]:
    """The digests-file lines for the platform images of ``plan`` pushed by digest."""
    return [
        DigestLine(
            rule=plan.rule,
            image=plan.image,
            platform=platform,
            digest=digest,
            ref=ref_text(ref),
            sha=ref.sha,
            time=ref.time.isoformat(),
        )
        for platform, digest in pushed.items()
    ]


def append_digests(path: str | os.PathLike[str], lines: Sequence[DigestLine]) -> None:
    """Append ``lines`` to the digests file ``path`` (created if missing), one JSON object
    per line; :class:`OutputError` naming ``--digests-file`` if it cannot be written."""
    text = "".join(json.dumps(line.to_json(), sort_keys=False) + "\n" for line in lines)
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as e:
        raise OutputError(
            f"--digests-file {path}: cannot write: {e.strerror or type(e).__name__}"
        ) from None


# -- reading the digests files ---------------------------------------------------------


def read_digests(paths: Sequence[str]) -> list[DigestLine]:
    """Every distinct line of the digests files ``paths``, in file and line order.

    A file that is missing, too big, not UTF-8, or has a line that is not one JSON object
    with the seven fields is a :class:`UsageError` naming file, line and field."""
    if not paths:
        raise UsageError("no digests file given", DIGESTS_HINT)
    lines: list[DigestLine] = []
    seen: set[DigestLine] = set()
    count = 0
    for path in paths:
        try:
            data = fileio.read_bounded(
                path, limit=MAX_FILE_BYTES, what="digests file", error=UsageError
            )
        except FileNotFoundError:
            raise UsageError(f"digests file {path}: no such file", DIGESTS_HINT) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"digests file {path}: not UTF-8 text", DIGESTS_HINT) from None
        for number, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            count += 1
            if count > MAX_LINES:
                raise UsageError(f"the digests files hold more than {MAX_LINES} lines")
            line = _parse_line(raw, f"{path}:{number}")
            if line not in seen:
                seen.add(line)
                lines.append(line)
    if not lines:
        raise UsageError(f"the digests files ({', '.join(paths)}) hold no line", DIGESTS_HINT)
    return lines


def _parse_line(raw: str, where: str) -> DigestLine:
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
        raise UsageError(f"{where}: the line is longer than {MAX_LINE_BYTES} bytes", DIGESTS_HINT)
    doc = loads_bounded(raw, what=where, error=UsageError, hint=DIGESTS_HINT, max_depth=4)
    if not isinstance(doc, dict):
        raise UsageError(f"{where}: not a JSON object", DIGESTS_HINT)
    values: dict[str, str] = {}
    for name in FIELDS:
        value = doc.get(name)
        if not isinstance(value, str) or (not value and name != "sha"):
            got = "missing" if value is None else f"{type(value).__name__} {shown(str(value))}"
            raise UsageError(f"{where}: field {name!r} must be a non-empty string ({got})")
        if len(value) > MAX_FIELD:
            raise UsageError(f"{where}: field {name!r} is longer than {MAX_FIELD} characters")
        values[name] = value
    line = DigestLine(**values, where=where)
    _check_line(line)
    return line


def _check_line(line: DigestLine) -> None:
    where = line.where
    if not (valid_digest(line.digest) and line.digest.startswith("sha256:")):
        raise UsageError(f"{where}: field 'digest' {shown(line.digest)} is not sha256:<64 hex>")
    try:
        Platform.parse(line.platform)
    except ValueError:
        raise UsageError(
            f"{where}: field 'platform' {shown(line.platform)} is not os/arch[/variant]"
        ) from None
    image = Reference.parse(line.image, what=f"{where}: field 'image'")
    if image.tag or image.digest:
        raise UsageError(f"{where}: field 'image' {shown(line.image)} must be REGISTRY/REPO")
    parse_full_ref(line.ref, f"{where}: field 'ref'")
    if line.sha:
        checked_sha(line.sha, f"{where}: field 'sha'")
    line.instant  # noqa: B018 - parses the time, naming the line when it is bad


# -- agreeing on the ref ---------------------------------------------------------------


@dataclass(frozen=True)
class JobRef:
    """What the merge job knows of its ref by itself (its flags, its CI environment); each
    value it has, the digests files must agree with."""

    ref: tuple[RefType, str] | None = None
    sha: str | None = None
    time: datetime | None = None
    event: str | None = None
    repository: str | None = None
    source: str = "flags"
    """Where these came from (the record's ``ref.source``)."""


def agreed_ref(lines: Sequence[DigestLine], job: JobRef | None = None) -> RefContext:
    """The ref, sha and time every line names (the tags are computed from them).

    Lines that disagree are a :class:`MergeError`, and so is a ref, sha or time the merge
    ``job`` knows that the files contradict; the job's event, repository and source go
    into the result (they are not in the files)."""
    job = job or JobRef()
    first = lines[0]
    for name in ("ref", "sha", "time"):
        other = next((ln for ln in lines if _value(ln, name) != _value(first, name)), None)
        if other is not None:
            raise MergeError(
                f"the digests files disagree on {name}: {shown(str(getattr(first, name)))} "
                f"({first.where}) but {shown(str(getattr(other, name)))} ({other.where})",
                "every build job of one merge must build the same ref and commit with the "
                "same push time (pass the pipeline's --time to every job): nothing was tagged",
            )
    ref_type, ref_name = parse_full_ref(first.ref, f"{first.where}: field 'ref'")
    ref = RefContext(
        type=ref_type,
        name=ref_name,
        sha=first.sha.lower(),
        time=first.instant,
        event=job.event,
        repository=job.repository,
        source=job.source,
    )
    _check_job(ref, job, first.where)
    return ref


def _value(line: DigestLine, name: str) -> object:
    """What two lines must agree on: the ref as written, the sha in any case, the instant."""
    if name == "time":
        return line.instant
    if name == "sha":
        return line.sha.lower()
    return line.ref


def _check_job(ref: RefContext, job: JobRef, where: str) -> None:
    hint = "merge the digests files of this pipeline's build jobs: nothing was tagged"
    if job.ref is not None and job.ref != (ref.type, ref.name):
        own = full_ref(*job.ref)
        raise MergeError(
            f"the merge job runs for {own} ({job.source}), but the digests files say "
            f"{ref_text(ref)} ({where})",
            hint,
        )
    sha = (job.sha or "").lower()
    if sha and ref.sha and not (sha.startswith(ref.sha) or ref.sha.startswith(sha)):
        raise MergeError(
            f"the merge job runs for commit {sha} ({job.source}), but the digests files "
            f"say sha {ref.sha} ({where})",
            hint,
        )
    if job.time is not None and job.time != ref.time:
        raise MergeError(
            f"the merge job's push time is {job.time.isoformat()} ({job.source}), but the "
            f"digests files say {ref.time.isoformat()} ({where})",
            "give every job of the pipeline the same --time: nothing was tagged",
        )


# -- building the indexes --------------------------------------------------------------


@dataclass(frozen=True)
class MergedIndex:
    """One rule's image index, built from its platform images and not pushed yet."""

    plan: BuildPlan
    manifest: Manifest
    """The index, byte-exact as it will be pushed."""
    platforms: Mapping[str, str]
    """``os/arch[/variant]`` → platform image digest, in the rule's platform order."""
    files: tuple[str, ...]
    """The lines it came from (``FILE:LINE``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "platforms", MappingProxyType(dict(self.platforms)))

    @property
    def digest(self) -> str:
        return self.manifest.digest


def prepare(
    client: Client,
    config: Config,
    ref: RefContext,
    lines: Sequence[DigestLine],
    *,
    env: Mapping[str, str] | None = None,
) -> list[MergedIndex]:
    """One :class:`MergedIndex` per rule the lines name, in the config's rule order.

    Every rule is checked (it matches the ref, its repository, every platform present
    with exactly one digest, nothing else) before any manifest is fetched; then every
    platform manifest is fetched by digest and its config's platform checked. Any problem
    is a :class:`MergeError` (registry errors pass through): nothing is pushed here."""
    from acr_ci import tags

    plans = {p.rule: p for p in tags.plan(config, ref)}
    groups: dict[str, list[DigestLine]] = {}
    for line in lines:
        groups.setdefault(line.rule, []).append(line)
    chosen = {rule: _choose(config, plans, ref, rule, group) for rule, group in groups.items()}
    environ = os.environ if env is None else env
    annotations = {
        rule: image_annotations(plans[rule], ref, source=source_url(ref, environ))
        for rule in chosen
    }
    order = [p.rule for p in plans.values() if p.rule in chosen]
    return [
        _index(client, plans[rule], chosen[rule], annotations[rule], groups[rule]) for rule in order
    ]


def _choose(
    config: Config,
    plans: Mapping[str, BuildPlan],
    ref: RefContext,
    rule: str,
    group: Sequence[DigestLine],
) -> dict[str, DigestLine]:
    """The line for each platform of ``rule`` (in its order), checked."""
    first = group[0]
    plan = plans.get(rule)
    if plan is None:
        known = [r.name for r in config.build.rules]
        why = "does not match" if rule in known else "is not a rule of"
        raise MergeError(
            f"{first.where}: rule {shown(rule)} {why} {config.path} for {ref_text(ref)}",
            f"rules matching this ref: {', '.join(plans) or '(none)'}; merge with the config "
            "the build jobs used: nothing was tagged",
        )
    chosen: dict[str, DigestLine] = {}
    wanted = [(p, Platform.parse(p)) for p in plan.platforms]
    for line in group:
        if line.image != plan.image:
            raise MergeError(
                f"{line.where}: rule {shown(rule)} pushes to {plan.image}, not {shown(line.image)}",
                "merge with the config the build jobs used: nothing was tagged",
            )
        got = Platform.parse(line.platform)
        match = next((p for p, w in wanted if got.matches(w) or w.matches(got)), None)
        if match is None:
            raise MergeError(
                f"{line.where}: platform {shown(line.platform)} is not one of rule "
                f"{shown(rule)}'s platforms ({', '.join(plan.platforms)})",
                "merge with the config the build jobs used: nothing was tagged",
            )
        before = chosen.get(match)
        if before is not None and before.digest != line.digest:
            raise MergeError(
                f"rule {shown(rule)} has two digests for {match}: {before.digest} "
                f"({before.where}) and {line.digest} ({line.where})",
                "build each platform in exactly one job of the pipeline: nothing was tagged",
            )
        chosen.setdefault(match, line)
    missing = [p for p in plan.platforms if p not in chosen]
    if missing:
        raise MergeError(
            f"rule {shown(rule)}: no digest for platform(s) {', '.join(missing)} "
            f"(have: {', '.join(chosen) or 'none'})",
            "merge after every build job has pushed and written its digests file: "
            "nothing was tagged",
        )
    return {p: chosen[p] for p in plan.platforms}


def _index(
    client: Client,
    plan: BuildPlan,
    chosen: Mapping[str, DigestLine],
    annotations: Mapping[str, str],
    group: Sequence[DigestLine],
) -> MergedIndex:
    repo_ref = Reference.parse(plan.image, what="image")
    store = client.repository(repo_ref)
    entries: list[dict[str, Any]] = []
    for platform, line in chosen.items():
        manifest = client.get_manifest(repo_ref.with_digest(line.digest))
        if manifest.is_index:
            raise MergeError(
                f"{line.where}: {plan.image}@{line.digest} is an index, not a platform image",
                "give the digests `build --push-by-digest` wrote: nothing was tagged",
            )
        try:
            config = image_config(store, manifest)
        except AcrError as e:
            raise MergeError(
                f"{line.where}: the config of {plan.image}@{line.digest} cannot be read: "
                f"{e.message}"
            ) from None
        found = Platform.from_json(config) if config else None
        if found is None or not found.os or not found.architecture:
            raise MergeError(
                f"{line.where}: {plan.image}@{line.digest} is not a container image "
                "(its config names no platform)",
                "give the digests `build --push-by-digest` wrote: nothing was tagged",
            )
        if not found.matches(Platform.parse(platform)):
            raise MergeError(
                f"{line.where}: {plan.image}@{line.digest} is a {found} image, "
                f"the digests file says {line.platform}",
                "give each platform's own digest: nothing was tagged",
            )
        assert config is not None
        entries.append(
            {
                "mediaType": manifest.media_type,
                "digest": manifest.digest,
                "size": manifest.size,
                "platform": _platform_json(config),
            }
        )
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    if annotations:
        doc["annotations"] = dict(annotations)
    data = json.dumps(doc, separators=(",", ":")).encode()
    index = Manifest(data=data, media_type=OCI_INDEX, digest=sha256_digest(data))
    return MergedIndex(
        plan=plan,
        manifest=index,
        platforms={p: line.digest for p, line in chosen.items()},
        files=tuple(ln.where for ln in group),
    )


def _platform_json(config: Mapping[str, Any]) -> dict[str, Any]:
    """The index descriptor's ``platform`` from an image config (what buildx and buildah
    write: architecture, os, and variant / os.version when the config has them)."""
    out: dict[str, Any] = {"architecture": str(config["architecture"]), "os": str(config["os"])}
    for key in ("os.version", "variant"):
        if config.get(key):
            out[key] = str(config[key])
    features = config.get("os.features")
    if isinstance(features, list) and features:
        out["os.features"] = [str(f) for f in features]
    return out


# -- pushing --------------------------------------------------------------------------


def push_index(client: Client, merged: MergedIndex) -> int:
    """Push ``merged``'s index under every tag of its rule (its platform images are already
    in the repository); returns the bytes sent. Immutable tags are the caller's check
    (the chain checks every rule's before the first push)."""
    target = Reference.parse(merged.plan.image, what="image")
    return client.put_manifest(target, merged.manifest, merged.plan.tags)


__all__ = [
    "DigestLine",
    "JobRef",
    "MergedIndex",
    "agreed_ref",
    "append_digests",
    "digest_lines",
    "prepare",
    "push_index",
    "push_platform_images",
    "read_digests",
    "ref_text",
]
