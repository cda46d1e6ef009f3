"""Immutable tags: the one check every push path uses (``Client.check_immutable`` before
``Client.push_layout``; the chain checks every image before its first push), against a real
registry; what tags point at is read back with skopeo."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable

import pytest
from tests.support import RegistryServer
from tests.support.layout import Layout

from acr_ci.errors import ImmutableTagError
from acr_ci.registry import Client, LayoutReference, Reference
from acr_ci.registry.copy import CopyResult

pytestmark = pytest.mark.registry


def push_immutable(client: Client, layout: Layout, repo: Reference, tags: list[str]) -> CopyResult:
    """What the chain does with ``immutable_tags: true``: check every tag, then push."""
    src = LayoutReference(str(layout.path))
    client.check_immutable(repo, tags, client.layout_digest(src))
    return client.push_layout(src, repo, tags)


def served_digest(ref: str) -> str | None:
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True, check=False, timeout=60,
    )
    if out.returncode != 0:
        return None
    return "sha256:" + hashlib.sha256(out.stdout).hexdigest()


def test_immutable_tags_refuse_to_move_and_allow_latest(
    registry: RegistryServer, oci_layout_factory: Callable[..., Layout]
) -> None:
    first = oci_layout_factory(seed=501)
    second = oci_layout_factory(seed=502)
    assert first.index_digest != second.index_digest
    repo = Reference.parse(f"{registry.host}/immutable/app")
    with Client() as client:
        push_immutable(client, first, repo, ["latest", "v1"])
        # the same image again: a no-op success
        again = push_immutable(client, first, repo, ["latest", "v1"])
        assert again.digest == first.index_digest
        # another image under the same version tag: refused, and no tag moved
        with pytest.raises(ImmutableTagError) as info:
            push_immutable(client, second, repo, ["latest", "v1"])
    message = info.value.message
    assert "'v1'" in message
    assert first.index_digest in message and second.index_digest in message
    assert "'latest'" not in message
    assert served_digest(f"{registry.host}/immutable/app:v1") == first.index_digest
    assert served_digest(f"{registry.host}/immutable/app:latest") == first.index_digest

    # a new version tag is fine, and `latest` may move with it
    with Client() as client:
        push_immutable(client, second, repo, ["latest", "v2"])
    assert served_digest(f"{registry.host}/immutable/app:v2") == second.index_digest
    assert served_digest(f"{registry.host}/immutable/app:latest") == second.index_digest
    assert served_digest(f"{registry.host}/immutable/app:v1") == first.index_digest


def test_without_immutable_tags_a_tag_moves(
    registry: RegistryServer, oci_layout_factory: Callable[..., Layout]
) -> None:
    first = oci_layout_factory(seed=511)
    second = oci_layout_factory(seed=512)
    repo = Reference.parse(f"{registry.host}/mutable/app")
    with Client() as client:
        client.push_layout(LayoutReference(str(first.path)), repo, ["v1"])
        client.push_layout(LayoutReference(str(second.path)), repo, ["v1"])
    assert served_digest(f"{registry.host}/mutable/app:v1") == second.index_digest
