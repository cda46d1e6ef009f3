"""The per-host limit against a real registry: a backfill to three mirrors from one source
never has more requests open against the source than the limit allows (counted by a
loopback proxy in front of the source), and every mirror ends up digest-exact."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.e2e.sync_support import digest_at
from tests.support import RegistryServer
from tests.support.faultproxy import FaultProxy
from tests.support.layout import Layout

from acr_ci.config.model import SyncLevel, SyncRule
from acr_ci.models import Status
from acr_ci.registry import Client, Reference
from acr_ci.registry.limits import Limit
from acr_ci.sync import backfill

pytestmark = [pytest.mark.registry]

KiB = 1024
IMAGES = 10


def _source(registry: RegistryServer, make: Callable[..., Layout], repo: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    with Client() as c:
        for i in range(IMAGES):
            layout = make(seed=700 + i, layer_sizes=(96 * KiB, 64 * KiB, 32 * KiB))
            tag = f"v{i}"
            tags[tag] = c.push_layout(
                layout.path, Reference.parse(registry.ref(repo)), [tag]
            ).digest
    return tags


def _mirror_all(proxy: FaultProxy, mirrors: list[RegistryServer], repo: str, limit: Limit) -> None:
    rules = [
        SyncRule(
            name=f"m{i}", to=f"{m.host}/copy", level=SyncLevel.NAMESPACE, tags=re.compile(r"v\d+")
        )
        for i, m in enumerate(mirrors)
    ]
    proxy.reset_counts()
    with Client(limits={proxy.host: limit}) as client:
        results = backfill(client, rules, f"{proxy.host}/{repo}")
    assert [r.status for r in results] == [Status.SUCCEEDED] * len(mirrors), [
        r.reason for r in results
    ]


def test_a_sync_to_three_mirrors_shares_the_sources_limit(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    fault_proxy_factory: Callable[..., FaultProxy],
    oci_layout_factory: Callable[..., Layout],
) -> None:
    tags = _source(registry, oci_layout_factory, "team/limited")
    proxy = fault_proxy_factory(registry)

    # without a tight limit the same work opens more than 3 requests at once
    wide = [registry_factory("plain") for _ in range(3)]
    _mirror_all(proxy, wide, "team/limited", Limit(max_concurrent=64))
    unlimited_peak = proxy.max_in_flight
    assert unlimited_peak > 3

    tight = [registry_factory("plain") for _ in range(3)]
    _mirror_all(proxy, tight, "team/limited", Limit(max_concurrent=3))
    assert 1 <= proxy.max_in_flight <= 3, (proxy.max_in_flight, unlimited_peak)
    assert proxy.requests > IMAGES * 3  # the work did go through the proxy
    for mirror in (*wide, *tight):
        for tag, digest in tags.items():
            assert digest_at(mirror, "copy/limited", tag) == digest


def test_backfill_sends_a_shared_base_layer_once_and_asks_a_new_mirror_for_no_tag(
    tmp_path: Path,
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    fault_proxy_factory: Callable[..., FaultProxy],
) -> None:
    from bench.backfill import BASE_BYTES, push_all, write_layout

    tags = write_layout(tmp_path / "layout", 12, seed=5)
    push_all(tmp_path / "layout", registry, tags)  # to bench/app
    mirror = registry_factory("plain")
    proxy = fault_proxy_factory(mirror)
    rule = SyncRule(name="m", to=f"{proxy.host}/copy", level=SyncLevel.NAMESPACE, tags=None)
    with Client() as client:
        [result] = backfill(client, [rule], registry.ref("bench/app"))
    assert result.status is Status.SUCCEEDED, result.reason
    uploads = [r for r in proxy.log if r.method == "PUT" and "/blobs/uploads/" in r.target]
    digests = [re.search(r"digest=([^&]+)", r.target) for r in uploads]
    named = [m.group(1) for m in digests if m]
    assert len(named) == len(uploads) and len(set(named)) == len(named)  # each blob once
    assert len(named) == 1 + 2 * 12  # the base, and each image's layer and config
    assert proxy.bytes_up < BASE_BYTES * 1.5
    tag_heads = [
        r for r in proxy.log if r.method == "HEAD" and re.search(r"/manifests/t\d+$", r.target)
    ]
    # an image new to the mirror is put under its tag straight away: no tag is asked for
    assert tag_heads == []
    tag_puts = [
        r for r in proxy.log if r.method == "PUT" and re.search(r"/manifests/t\d+$", r.target)
    ]
    digest_puts = [
        r for r in proxy.log if r.method == "PUT" and re.search(r"/manifests/sha256:", r.target)
    ]
    assert len(tag_puts) == 12 and digest_puts == []  # a PUT by tag stores the manifest too
    for tag, digest in tags.items():
        assert digest_at(mirror, "copy/app", tag) == digest
