"""The per-host limit against a real registry: a backfill to three mirrors from one source
never has more requests open against the source than the limit allows (counted by a
loopback proxy in front of the source), and every mirror ends up digest-exact."""

from __future__ import annotations

import re
from collections.abc import Callable

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
