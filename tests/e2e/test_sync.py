"""Mirror sync against real registries: a source, a plain mirror, a basic-auth mirror and a
mirror that is down. Every assertion reads the mirror registries themselves."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.e2e.sync_support import (
    assert_complete,
    dead_host,
    digest_at,
    manifest,
    push_referrer,
    tags_at,
)
from tests.support import RegistryServer
from tests.support.faultproxy import FaultProxy
from tests.support.layout import Layout

from acr_ci.chain import sync_step
from acr_ci.config.model import SyncLevel, SyncRule
from acr_ci.errors import UsageError
from acr_ci.models import Status
from acr_ci.registry import Client, Reference, RetryPolicy
from acr_ci.sync import backfill, destination, resolve_source, sync_image

pytestmark = [pytest.mark.registry, pytest.mark.e2e]

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.1)


def rule(name: str, to: str, level: SyncLevel = SyncLevel.NAMESPACE, tags: str | None = None) -> SyncRule:
    return SyncRule(name=name, to=to, level=level, tags=re.compile(tags) if tags else None)


def push(registry: RegistryServer, layout: Layout, repo: str, *tags: str) -> str:
    with Client() as c:
        result = c.push_layout(layout.path, Reference.parse(registry.ref(repo)), list(tags))
    return result.digest


@pytest.fixture
def mirrors(
    registry_factory: Callable[..., RegistryServer], docker_config: Callable[..., Path]
) -> tuple[RegistryServer, RegistryServer]:
    plain = registry_factory("plain")
    basic = registry_factory("basic")
    docker_config(basic)
    return plain, basic


def test_two_mirrors_and_a_down_one(
    registry: RegistryServer,
    mirrors: tuple[RegistryServer, RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain, basic = mirrors
    layout = oci_layout_factory(seed=11, layer_sizes=(2 * 1024 * 1024, 512 * 1024))
    digest = push(registry, layout, "team/app", "v1.0", "latest")
    signature = push_referrer(registry, "team/app", digest)
    rules = [
        rule("plain-ns", f"{plain.host}/mirror", tags=r"v\d+(\.\d+)*"),
        rule("basic-repo", f"{basic.host}/other/copy", SyncLevel.REPOSITORY),
        rule("down", f"{dead_host()}/team"),
    ]
    with Client(retry=FAST_RETRY) as client:
        start = time.monotonic()
        results = sync_image(client, rules, Reference.parse(registry.ref("team/app")), digest, ["v1.0", "latest"])
        elapsed = time.monotonic() - start
    with capsys.disabled():
        print(f"\n[figure] sync of a 2-platform image ({layout.total_bytes} bytes) to two live "
              f"mirrors + one down: {elapsed:.2f}s")

    # what the mirrors hold, read from them
    assert digest_at(plain, "mirror/app", "v1.0") == digest
    assert digest_at(plain, "mirror/app", "latest") is None  # filtered out
    assert tags_at(plain, "mirror/app") == ["sha256-" + digest[7:], "v1.0"]
    assert digest_at(basic, "other/copy", "v1.0") == digest
    assert digest_at(basic, "other/copy", "latest") == digest
    for server, repo in ((plain, "mirror/app"), (basic, "other/copy")):
        children = assert_complete(server, repo, digest)
        assert sorted(children) == sorted(layout.manifests.values())  # every platform
        src = manifest(registry, "team/app", signature)
        got = manifest(server, repo, signature)
        assert got is not None and src is not None and got[0] == src[0]  # referrer, byte-exact

    by_name = {r.name: r for r in results}
    assert [r.name for r in results] == ["plain-ns", "basic-repo", "down"]
    assert by_name["plain-ns"].status is Status.SUCCEEDED
    assert by_name["basic-repo"].status is Status.SUCCEEDED
    assert by_name["down"].status is Status.FAILED
    assert by_name["down"].reason
    assert basic.password not in repr(results) + str([sync_step(r).to_json() for r in results])


def test_no_matching_tag_is_skipped_and_nothing_is_written(
    registry: RegistryServer, registry_factory: Callable[..., RegistryServer], oci_layout_factory: Callable[..., Layout]
) -> None:
    mirror = registry_factory("plain")
    digest = push(registry, oci_layout_factory(seed=12), "team/skip", "latest")
    with Client() as client:
        [result] = sync_image(
            client, [rule("only-v", f"{mirror.host}/m", tags="v.*")],
            Reference.parse(registry.ref("team/skip")), digest, ["latest"],
        )
    assert result.status is Status.SKIPPED
    assert "no tag matches" in (result.reason or "")
    assert tags_at(mirror, "m/skip") == []


def test_tag_regex_matches_the_whole_tag(
    registry: RegistryServer, registry_factory: Callable[..., RegistryServer], oci_layout_factory: Callable[..., Layout]
) -> None:
    mirror = registry_factory("plain")
    digest = push(registry, oci_layout_factory(seed=13), "team/whole", "v1", "xv1", "v1-rc")
    with Client() as client:
        sync_image(client, [rule("v", f"{mirror.host}/m", tags=r"v\d+")],
                   Reference.parse(registry.ref("team/whole")), digest, ["v1", "xv1", "v1-rc"])
    assert [t for t in tags_at(mirror, "m/whole") if not t.startswith("sha256-")] == ["v1"]


def test_second_sync_sends_no_blobs(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    fault_proxy_factory: Callable[..., FaultProxy],
    oci_layout_factory: Callable[..., Layout],
) -> None:
    mirror = registry_factory("plain")
    proxy = fault_proxy_factory(mirror)
    layout = oci_layout_factory(seed=14, layer_sizes=(1024 * 1024,))
    digest = push(registry, layout, "team/again", "v1")
    src = Reference.parse(registry.ref("team/again"))
    with Client() as client:
        sync_image(client, [rule("m", f"{proxy.host}/m")], src, digest, ["v1"])
    first = proxy.bytes_up
    assert first > layout.total_bytes - layout.index_size
    proxy.reset_counts()
    with Client() as client:
        [again] = sync_image(client, [rule("m", f"{proxy.host}/m")], src, digest, ["v1"])
    assert again.status is Status.SUCCEEDED
    assert proxy.bytes_up < 64 * 1024  # HEADs and at most a manifest, no layer
    assert digest_at(mirror, "m/again", "v1") == digest


def test_backfill_skips_tags_already_present(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    fault_proxy_factory: Callable[..., FaultProxy],
    oci_layout_factory: Callable[..., Layout],
) -> None:
    mirror = registry_factory("plain")
    proxy = fault_proxy_factory(mirror)
    d1 = push(registry, oci_layout_factory(seed=21), "team/bf", "v1")
    d2 = push(registry, oci_layout_factory(seed=22), "team/bf", "v2", "latest")
    d3 = push(registry, oci_layout_factory(seed=23), "team/bf", "dev")
    rules = [rule("rel", f"{proxy.host}/m", tags=r"v\d+")]
    with Client() as client:
        sync_image(client, rules, Reference.parse(registry.ref("team/bf")), d1, ["v1"])
    proxy.reset_counts()
    with Client() as client:
        [result] = backfill(client, rules, registry.ref("team/bf"))
    assert digest_at(mirror, "m/bf", "v1") == d1
    assert digest_at(mirror, "m/bf", "v2") == d2
    assert digest_at(mirror, "m/bf", "latest") is None
    assert digest_at(mirror, "m/bf", "dev") is None
    assert d3 not in str(proxy.log)
    puts = [r.target for r in proxy.log if r.method == "PUT"]
    assert not any(t.endswith("/manifests/v1") for t in puts), puts
    assert any(t.endswith("/manifests/v2") for t in puts), puts
    assert {t.tag: t.status for t in result.tags} == {"v1": Status.SKIPPED, "v2": Status.SUCCEEDED}


def test_backfill_asks_each_thing_once(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    fault_proxy_factory: Callable[..., FaultProxy],
    oci_layout_factory: Callable[..., Layout],
) -> None:
    """A backfill reads each manifest once, asks the destination nothing about an image
    none of its tags names, and asks the source for no referrers tag its tag list lacks."""
    source = fault_proxy_factory(registry)
    mirror = registry_factory("plain")
    dest = fault_proxy_factory(mirror)
    digests = [push(registry, oci_layout_factory(seed=60 + i), "team/once", f"v{i}") for i in range(3)]
    source.reset_counts()
    with Client() as client:
        [result] = backfill(client, [rule("rel", f"{dest.host}/m")], f"{source.host}/team/once")
    assert {t.tag: t.status for t in result.tags} == {f"v{i}": Status.SUCCEEDED for i in range(3)}
    for i, d in enumerate(digests):
        assert digest_at(mirror, "m/once", f"v{i}") == d
        assert_complete(mirror, "m/once", d)
    gets = [r.target for r in source.log if r.method == "GET" and "/manifests/" in r.target]
    assert len(gets) == len(set(gets)), sorted(gets)
    assert not [t for t in gets if "/manifests/sha256-" in t], gets
    heads = [r.target for r in dest.log if r.method == "HEAD" and "/manifests/" in r.target]
    assert not [t for t in heads if any(t.endswith(d) for d in digests)], heads


def test_unauthorized_mirror_fails_alone(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    oci_layout_factory: Callable[..., Layout],
    docker_config: Callable[..., Path],
) -> None:
    plain = registry_factory("plain")
    locked = registry_factory("basic")
    docker_config(creds={locked.host: ("acr-user", "wrong-password")})
    digest = push(registry, oci_layout_factory(seed=31), "team/auth", "v1")
    with Client(retry=FAST_RETRY) as client:
        results = sync_image(
            client,
            [rule("locked", f"{locked.host}/m"), rule("open", f"{plain.host}/m")],
            Reference.parse(registry.ref("team/auth")), digest, ["v1"],
        )
    assert [r.status for r in results] == [Status.FAILED, Status.SUCCEEDED]
    assert digest_at(plain, "m/auth", "v1") == digest
    assert digest_at(locked, "m/auth", "v1") is None
    assert "wrong-password" not in str(results)


DESTINATIONS = [
    ("namespace", "m.example.com/team", SyncLevel.NAMESPACE, "reg.example.com/ns/app", "m.example.com/team/app"),
    ("namespace-deep-source", "m.example.com/team", SyncLevel.NAMESPACE, "reg.example.com/a/b/app", "m.example.com/team/app"),
    ("namespace-host-only", "m.example.com:5000", SyncLevel.NAMESPACE, "reg.example.com/ns/app", "m.example.com:5000/app"),
    ("repository", "m.example.com/x/y", SyncLevel.REPOSITORY, "reg.example.com/ns/app", "m.example.com/x/y"),
    ("trailing-slash", "m.example.com/team/", SyncLevel.NAMESPACE, "reg.example.com/ns/app", "m.example.com/team/app"),
]


@pytest.mark.parametrize(("case", "to", "level", "src", "want"), DESTINATIONS, ids=[d[0] for d in DESTINATIONS])
def test_destination(case: str, to: str, level: SyncLevel, src: str, want: str) -> None:
    assert str(destination(rule("r", to, level), Reference.parse(src))) == want


def test_destination_with_a_tag_is_refused() -> None:
    with pytest.raises(UsageError):
        destination(rule("r", "m.example.com/x/y:v1", SyncLevel.REPOSITORY), Reference.parse("r.example.com/a/b"))


def test_resolve_source_forms(registry: RegistryServer, oci_layout_factory: Callable[..., Layout]) -> None:
    digest = push(registry, oci_layout_factory(seed=41), "team/res", "v1", "stable")
    push(registry, oci_layout_factory(seed=42), "team/res", "other")
    with Client() as client:
        repo, tags = resolve_source(client, registry.ref("team/res:v1"))
        assert str(repo) == registry.ref("team/res") and tags == {"v1": digest}
        _, tags = resolve_source(client, registry.ref(f"team/res@{digest}"))
        assert tags == {"v1": digest, "stable": digest}
        _, tags = resolve_source(client, registry.ref(f"team/res:given@{digest}"))
        assert tags == {"given": digest}
        with pytest.raises(UsageError):
            resolve_source(client, registry.ref("team/res"))


def test_mirrors_are_synced_at_the_same_time(
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    fault_proxy_factory: Callable[..., FaultProxy],
    oci_layout_factory: Callable[..., Layout],
) -> None:
    """Each mirror's first request waits until the other mirror has been reached too: with
    destinations synced one after the other, the first wait would time out."""
    import threading

    layout = oci_layout_factory(seed=17)
    digest = push(registry, layout, "team/together", "v1")
    reached = {"a": threading.Event(), "b": threading.Event()}
    met: dict[str, bool] = {}

    def meet(me: str, other: str) -> Callable[[object], None]:
        def hook(_record: object) -> None:
            reached[me].set()
            if me not in met:
                met[me] = reached[other].wait(timeout=10)

        return hook

    proxy_a = fault_proxy_factory(registry_factory("plain"), on_request=meet("a", "b"))
    proxy_b = fault_proxy_factory(registry_factory("plain"), on_request=meet("b", "a"))
    rules = [rule("a", f"{proxy_a.host}/m"), rule("b", f"{proxy_b.host}/m")]
    with Client(retry=FAST_RETRY) as client:
        results = sync_image(client, rules, Reference.parse(registry.ref("team/together")), digest, ["v1"])
    assert [r.status for r in results] == [Status.SUCCEEDED, Status.SUCCEEDED]
    assert met == {"a": True, "b": True}, "both mirrors were being synced at once"
