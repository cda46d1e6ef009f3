"""``accelerate:`` in the chain: after the scan gate, before the mirrors.

A passed image gets its eStargz twin as every tag + suffix (recorded with the twin's digest
and tags); a blocked image gets none; a rule with ``accelerate: false`` gets none; a mirror
whose ``tags`` regex selects ``T`` receives ``T`` + suffix too. Real registries, the
chain's own stand-ins for the builder and the scanner (see test_chain.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.e2e.sync_support import digest_at
from tests.e2e.test_chain import (
    PrebuiltBuilder,
    ReportEngine,
    assert_round_trip,
    rules,
    run,
    steps,
    trivy_report,
    validate_file,
    write_config,
)
from tests.support import RegistryServer
from tests.support.layout import Layout

from acr_ci import record as record_mod
from acr_ci.accelerate.estargz import TOC_DIGEST_ANNOTATION
from acr_ci.accelerate.service import SOURCE_ANNOTATION
from acr_ci.record import AccelerateDetail, Status

pytestmark = [pytest.mark.registry, pytest.mark.e2e]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    return root


def _manifest(server: RegistryServer, repo: str, ref: str) -> dict[str, object]:
    from acr_ci.registry import Client, Reference

    with Client() as c:
        sep = "@" if ref.startswith("sha256:") else ":"
        return c.get_manifest(Reference.parse(f"{server.host}/{repo}{sep}{ref}")).json


def test_passed_images_get_a_twin_blocked_and_opted_out_ones_do_not(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    project: Path,
    tmp_path: Path,
) -> None:
    mirror = registry_factory("plain")
    bad, good, off = (oci_layout_factory(seed=s) for s in (211, 212, 213))
    cfg = write_config(
        project,
        f"""version: 1
image: {registry.host}/team/lazy
accelerate:
  suffix: _accelerated
{rules(("bad", "[bad-1]"), ("good", "[good-1, latest]"), ("off", "[off-1]"))}      accelerate: false
scan:
  engine: trivy
  block: {{severity: high}}
sync:
  - name: m
    to: {mirror.host}/m
    tags: "good-.*|off-.*"
""",
    )
    engine = ReportEngine(
        trivy_report(tmp_path / "clean.json", []),
        {
            bad.manifests["linux/amd64"]: trivy_report(
                tmp_path / "bad.json", [("CVE-2024-3094", "CRITICAL")]
            )
        },
    )
    record = run(cfg, PrebuiltBuilder({"bad": bad, "good": good, "off": off}), engine)

    assert record.exit_code == 3  # the blocked image
    assert steps(record, "good") == {
        "build": [Status.SUCCEEDED],
        "push": [Status.SUCCEEDED],
        "scan": [Status.SUCCEEDED],
        "accelerate": [Status.SUCCEEDED],
        "sync": [Status.SUCCEEDED],
    }
    assert steps(record, "bad")["accelerate"] == [Status.SKIPPED]
    assert steps(record, "off")["accelerate"] == [Status.SKIPPED]

    [image] = [i for i in record.images if i.rule == "good"]
    [step] = [s for s in image.steps if s.step == "accelerate"]
    detail = step.detail
    assert isinstance(detail, AccelerateDetail)
    assert detail.tags == ("good-1_accelerated", "latest_accelerated")
    assert detail.source == good.index_digest
    for tag in detail.tags:
        assert digest_at(registry, "team/lazy", tag) == detail.digest
    twin = _manifest(registry, "team/lazy", "good-1_accelerated")
    assert twin["annotations"][SOURCE_ANNOTATION] == good.index_digest  # type: ignore[index]
    child = _manifest(registry, "team/lazy", twin["manifests"][0]["digest"])  # type: ignore[index]
    assert all(TOC_DIGEST_ANNOTATION in lay["annotations"] for lay in child["layers"])  # type: ignore[attr-defined]

    # no twin for the blocked image, nor for the rule that opted out
    assert digest_at(registry, "team/lazy", "bad-1_accelerated") is None
    assert digest_at(registry, "team/lazy", "off-1_accelerated") is None
    # the mirror: T selected by the regex carries T + suffix; latest is not selected, so
    # neither is latest_accelerated (even though "latest_accelerated" is not its own match)
    assert digest_at(mirror, "m/lazy", "good-1") == good.index_digest
    assert digest_at(mirror, "m/lazy", "good-1_accelerated") == detail.digest
    assert digest_at(mirror, "m/lazy", "latest_accelerated") is None
    assert digest_at(mirror, "m/lazy", "off-1") == off.index_digest
    assert digest_at(mirror, "m/lazy", "off-1_accelerated") is None

    written = tmp_path / "r.json"
    doc = validate_file(record_mod.write(record, written))
    assert_round_trip(written)
    assert "accelerate" in json.dumps(doc)
    header = next(
        line
        for line in record_mod.summary_markdown(record).splitlines()
        if line.startswith("| rule | image")
    )
    assert "| accelerate |" in header


def test_a_failed_conversion_fails_alone(
    registry: RegistryServer,
    oci_layout_factory: Callable[..., Layout],
    project: Path,
    tmp_path: Path,
) -> None:
    """A twin that cannot be pushed (its tag would move under immutable tags) fails the
    accelerate step (exit 1); the image itself stays pushed, its tags untouched."""
    layout = oci_layout_factory(seed=214)
    other = oci_layout_factory(seed=215)
    from acr_ci.registry import Client, Reference

    with Client() as c:  # someone else's image already holds the twin's tag
        c.push_layout(other.path, Reference.parse(f"{registry.host}/team/frozen"), ["v1_fast"])
    cfg = write_config(
        project,
        f"""version: 1
image: {registry.host}/team/frozen
immutable_tags: true
accelerate:
  suffix: _fast
{rules(("main", "[v1]"))}""",
    )
    record = run(cfg, PrebuiltBuilder({"main": layout}))
    assert record.exit_code == 1
    assert steps(record, "main")["accelerate"] == [Status.FAILED]
    [image] = record.images
    [step] = [s for s in image.steps if s.step == "accelerate"]
    assert step.reason is not None and "immutable" in step.reason
    assert digest_at(registry, "team/frozen", "v1") == layout.index_digest
    assert digest_at(registry, "team/frozen", "v1_fast") == other.index_digest


@pytest.mark.parametrize("backfill", [False, True], ids=["image", "backfill"])
def test_acr_ci_sync_carries_the_twin_where_the_tag_goes(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    tmp_path: Path,
    backfill: bool,
) -> None:
    from acr_ci.cli import main
    from acr_ci.registry import Client, Reference

    mirror = registry_factory("plain")
    layout = oci_layout_factory(seed=216 + backfill)
    repo = f"team/carry-{int(backfill)}"
    with Client() as c:
        c.push_layout(layout.path, Reference.parse(f"{registry.host}/{repo}"), ["v1", "v2"])
    assert main(["accelerate", f"{registry.host}/{repo}:v1", "--tag", "v2", "--quiet"]) == 0
    cfg = tmp_path / "acr.yml"
    cfg.write_text(
        f"version: 1\nimage: {registry.host}/{repo}\naccelerate: {{}}\n"
        f"sync:\n  - name: m\n    to: {mirror.host}/m\n    tags: v1\n"
    )
    argv = ["sync", "--config", str(cfg), "--quiet"]
    argv += (
        ["--backfill", f"{registry.host}/{repo}"] if backfill else [f"{registry.host}/{repo}:v1"]
    )
    assert main(argv) == 0
    name = repo.rsplit("/", 1)[1]
    twin = digest_at(registry, repo, "v1_accelerated")
    assert twin is not None and twin != layout.index_digest
    assert digest_at(mirror, f"m/{name}", "v1") == layout.index_digest
    assert digest_at(mirror, f"m/{name}", "v1_accelerated") == twin
    assert digest_at(mirror, f"m/{name}", "v2_accelerated") is None  # v2 is not selected


def test_a_zstd_chunked_twin_is_pushed_recorded_and_mirrored(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    project: Path,
    tmp_path: Path,
) -> None:
    from acr_ci.accelerate.zstdchunked import MANIFEST_CHECKSUM_ANNOTATION, MEDIA_TYPE

    mirror = registry_factory("plain")
    good = oci_layout_factory(seed=214)
    cfg = write_config(
        project,
        f"""version: 1
image: {registry.host}/team/zlazy
accelerate:
  format: zstd-chunked
{rules(("good", "[z-1]"))}scan:
  engine: trivy
  block: {{severity: high}}
sync:
  - name: m
    to: {mirror.host}/m
    tags: "z-.*"
""",
    )
    engine = ReportEngine(trivy_report(tmp_path / "clean.json", []), {})
    record = run(cfg, PrebuiltBuilder({"good": good}), engine)

    assert record.exit_code == 0
    assert steps(record, "good")["accelerate"] == [Status.SUCCEEDED]
    [image] = record.images
    [step] = [s for s in image.steps if s.step == "accelerate"]
    detail = step.detail
    assert isinstance(detail, AccelerateDetail)
    assert (detail.format, detail.tags) == ("zstd-chunked", ("z-1_accelerated",))
    assert digest_at(registry, "team/zlazy", "z-1_accelerated") == detail.digest
    twin = _manifest(registry, "team/zlazy", "z-1_accelerated")
    child = _manifest(registry, "team/zlazy", twin["manifests"][0]["digest"])  # type: ignore[index]
    layers = child["layers"]
    assert layers and all(
        lay["mediaType"] == MEDIA_TYPE and MANIFEST_CHECKSUM_ANNOTATION in lay["annotations"]
        for lay in layers  # type: ignore[attr-defined]
    )
    assert digest_at(mirror, "m/zlazy", "z-1_accelerated") == detail.digest
    written = tmp_path / "r.json"
    validate_file(record_mod.write(record, written))
    assert_round_trip(written)
