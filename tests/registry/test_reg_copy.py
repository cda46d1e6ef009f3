"""The registry client against real ``docker-registry`` processes, checked with skopeo and oras.

Every assertion is on what the registry serves back (read with skopeo, the oras
client, or plain HTTP) or on what the byte-counting proxy saw, never only on
what the client under test reports.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from tests.support import RegistryServer
from tests.support.faultproxy import FaultProxy
from tests.support.layout import Layout

from acr_ci.errors import AcrError, DeniedError, NotFoundError, UnauthorizedError
from acr_ci.registry import Client, LayoutReference, Platform, Reference, RetryPolicy
from acr_ci.registry.auth import DockerConfigCredentials
from acr_ci.registry.media import OCI_INDEX, OCI_MANIFEST, Manifest, referrers_tag, sha256_digest
from acr_ci.registry.remote import RegistryRepository

pytestmark = pytest.mark.registry

MiB = 1024 * 1024
FAST_RETRY = RetryPolicy(attempts=10, base_delay=0.05, max_delay=0.5, max_retry_after=1.0)

LayoutFactory = Callable[..., Layout]
ProxyFactory = Callable[..., FaultProxy]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def skopeo_raw(ref: str, *, authfile: Path | None = None) -> bytes:
    """The manifest bytes skopeo reads for ``ref`` (``host/repo:tag`` or ``…@digest``)."""
    cmd = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    if authfile is not None:
        cmd += ["--authfile", str(authfile)]
    out = subprocess.run([*cmd, f"docker://{ref}"], capture_output=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout


def skopeo_exists(ref: str) -> bool:
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True, check=False, timeout=60,
    )
    return out.returncode == 0


def client(**kw: object) -> Client:
    kw.setdefault("retry", FAST_RETRY)
    return Client(**kw)  # type: ignore[arg-type]


def ref(server: RegistryServer | FaultProxy, path: str) -> Reference:
    return Reference.parse(f"{server.host}/{path}")


# -- push ------------------------------------------------------------------------


@pytest.mark.parametrize("media", ["oci", "docker"], ids=["oci", "docker"])
def test_push_layout_then_read_back_with_skopeo_and_oras(
    registry: RegistryServer, oci_layout_factory: LayoutFactory, tmp_path: Path, media: str
) -> None:
    layout = oci_layout_factory(platforms=["linux/amd64", "linux/arm64"], layer_sizes=[300_000, 1_200_000],
                                seed=11, media=media)
    dst = ref(registry, f"push/{media}")
    with client() as c:
        result = c.push_layout(layout.path, dst, ["v1", "stable"])
    assert result.digest == layout.index_digest
    for tag in ("v1", "stable"):
        assert sha(skopeo_raw(f"{registry.host}/push/{media}:{tag}")) == layout.index_digest
    for digest in layout.manifests.values():
        assert sha(skopeo_raw(f"{registry.host}/push/{media}@{digest}")) == digest

    # skopeo pulls everything back (dir: keeps every manifest and blob as served), verifying blobs.
    out = tmp_path / "skopeo-out"
    done = subprocess.run(
        ["skopeo", "copy", "--all", "--src-tls-verify=false",
         f"docker://{registry.host}/push/{media}:v1", f"dir:{out}"],
        capture_output=True, check=False, timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert sha((out / "manifest.json").read_bytes()) == layout.index_digest
    for digest in [*layout.layers["linux/amd64"], *layout.layers["linux/arm64"]]:
        blob = out / digest.split(":")[1]
        assert sha(blob.read_bytes()) == digest

    # The oras client reads the same index and blobs.
    import oras.provider

    oras_reg = oras.provider.Registry(hostname=registry.host, insecure=True)
    container = f"{registry.host}/push/{media}:v1"
    got = oras_reg.get_manifest(container, allowed_media_type=[
        OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"])
    assert sorted(m["digest"] for m in got["manifests"]) == sorted(layout.manifests.values())
    layer = layout.layers["linux/arm64"][1]
    target = tmp_path / "oras-layer"
    oras_reg.download_blob(container, layer, str(target))
    assert sha(target.read_bytes()) == layer


def test_single_manifest_layout_and_tag_digest(registry: RegistryServer, oci_layout_factory: LayoutFactory) -> None:
    layout = oci_layout_factory(platforms=["linux/amd64"], wrap_index=False, seed=3)
    dst = ref(registry, "single/app")
    with client() as c:
        result = c.push_layout(LayoutReference(str(layout.path), "latest"), dst, ["one"])
        assert c.tag_digest(dst.with_tag("one")) == layout.index_digest
        assert c.tag_digest(dst.with_tag("absent")) is None
    assert result.media_type == OCI_MANIFEST
    assert sha(skopeo_raw(f"{registry.host}/single/app:one")) == layout.index_digest


def test_chunked_upload_and_tag_list(
    registry: RegistryServer, oci_layout_factory: LayoutFactory, fault_proxy_factory: ProxyFactory
) -> None:
    layout = oci_layout_factory(platforms=["linux/amd64"], layer_sizes=[3 * MiB + 17], seed=5)
    proxy = fault_proxy_factory(registry)
    dst = ref(proxy, "chunked/app")
    tags = ["a", "b", "c", "d", "e"]
    with client(chunk_size=MiB) as c:
        c.push_layout(layout.path, dst, tags)
        repo = c.repository(dst)
        assert sorted(repo.list_tags(page_size=2)) == tags
    patches = [r for r in proxy.log if r.method == "PATCH"]
    assert len(patches) >= 4, "a 3 MiB layer in 1 MiB chunks needs 4 PATCH requests"
    # (distribution 2.8 ignores n= on tags/list; Link pagination is covered in the unit tests)
    layer = layout.layers["linux/amd64"][0]
    blob = requests.get(f"{registry.url}/v2/chunked/app/blobs/{layer}", timeout=30)
    assert blob.status_code == 200 and sha(blob.content) == layer


# -- copy ------------------------------------------------------------------------


def test_copy_what_skopeo_pushed_is_byte_exact(
    registry_factory: Callable[..., RegistryServer], oci_layout_factory: LayoutFactory
) -> None:
    src, dst = registry_factory(), registry_factory()
    layout = oci_layout_factory(platforms=["linux/amd64", "linux/arm64", "linux/arm/v7"], seed=21)
    # skopeo converts to Docker schema 2 on the way: manifests serialized by skopeo, not by us.
    done = subprocess.run(
        ["skopeo", "copy", "--all", "--format", "v2s2", "--dest-tls-verify=false",
         f"oci:{layout.path}:{layout.tag}", f"docker://{src.host}/from/skopeo:v1"],
        capture_output=True, check=False, timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    source_bytes = skopeo_raw(f"{src.host}/from/skopeo:v1")
    with client() as c:
        result = c.copy(ref(src, "from/skopeo:v1"), ref(dst, "to/copy:v1"))
    assert skopeo_raw(f"{dst.host}/to/copy:v1") == source_bytes
    assert result.digest == sha(source_bytes)
    children = json.loads(source_bytes)["manifests"]
    assert len(children) == 3
    assert json.loads(source_bytes)["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    for child in children:
        digest = child["digest"]
        assert skopeo_raw(f"{dst.host}/to/copy@{digest}") == skopeo_raw(f"{src.host}/from/skopeo@{digest}")


def test_rerun_sends_almost_nothing(
    registry_factory: Callable[..., RegistryServer], oci_layout_factory: LayoutFactory,
    fault_proxy_factory: ProxyFactory,
) -> None:
    src, dst = registry_factory(), registry_factory()
    layout = oci_layout_factory(layer_sizes=[2 * MiB, MiB], seed=31)
    with client() as c:
        c.push_layout(layout.path, ref(src, "re/run"), ["v1"])
    proxy = fault_proxy_factory(dst)
    with client() as c:
        first = c.copy(ref(src, "re/run:v1"), ref(proxy, "re/run:v1"))
    assert proxy.bytes_up >= layout.total_bytes
    proxy.reset_counts()
    with client() as c:
        second = c.copy(ref(src, "re/run:v1"), ref(proxy, "re/run:v1"))
    assert proxy.bytes_up < 64 * 1024, f"re-run sent {proxy.bytes_up} bytes"
    assert not [r for r in proxy.log if r.method in ("PUT", "PATCH", "POST")]
    assert first.digest == second.digest == layout.index_digest
    assert second.blobs_copied == 0
    assert sha(skopeo_raw(f"{dst.host}/re/run:v1")) == layout.index_digest


def test_mount_within_one_registry(
    registry: RegistryServer, oci_layout_factory: LayoutFactory, fault_proxy_factory: ProxyFactory
) -> None:
    layout = oci_layout_factory(layer_sizes=[MiB], seed=41)
    proxy = fault_proxy_factory(registry)
    with client() as c:
        c.push_layout(layout.path, ref(proxy, "mount/a"), ["v1"])
        proxy.reset_counts()
        result = c.copy(ref(proxy, "mount/a:v1"), ref(proxy, "mount/b:v1"))
    mounts = [r for r in proxy.log if r.method == "POST" and "mount=" in r.target]
    assert len(mounts) == len(layout.blobs) - 3  # every config and layer, not the 3 manifests
    assert all(r.status == 201 for r in mounts)
    assert proxy.bytes_up < 64 * 1024
    assert result.blobs_mounted == len(mounts)
    assert sha(skopeo_raw(f"{registry.host}/mount/b:v1")) == layout.index_digest


@pytest.mark.parametrize(
    ("wanted", "expect"),
    [(["linux/arm64"], "single"), (["linux/amd64", "linux/arm/v7"], "two")],
    ids=["one-platform", "two-platforms"],
)
def test_platform_selection(
    registry: RegistryServer, oci_layout_factory: LayoutFactory, wanted: list[str], expect: str
) -> None:
    layout = oci_layout_factory(platforms=["linux/amd64", "linux/arm64", "linux/arm/v7"], seed=51)
    with client() as c:
        c.push_layout(layout.path, ref(registry, "plat/src"), ["v1"])
        result = c.copy(ref(registry, "plat/src:v1"), ref(registry, f"plat/{expect}:v1"),
                        platforms=[Platform.parse(p) for p in wanted])
    served = skopeo_raw(f"{registry.host}/plat/{expect}:v1")
    assert sha(served) == result.digest
    if expect == "single":
        assert result.digest == layout.manifests["linux/arm64"]
    else:
        doc = json.loads(served)
        assert sorted(m["digest"] for m in doc["manifests"]) == sorted(layout.manifests[p] for p in wanted)


def test_unknown_platform_is_not_found(registry: RegistryServer, oci_layout_factory: LayoutFactory) -> None:
    layout = oci_layout_factory(seed=52)
    with client() as c:
        c.push_layout(layout.path, ref(registry, "plat/none"), ["v1"])
        with pytest.raises(NotFoundError) as info:
            c.copy(ref(registry, "plat/none:v1"), ref(registry, "plat/none2:v1"),
                   platforms=[Platform.parse("windows/amd64")])
    assert "linux/amd64" in (info.value.hint or "")


def test_save_to_layout_and_push_back(
    registry: RegistryServer, oci_layout_factory: LayoutFactory, tmp_path: Path
) -> None:
    layout = oci_layout_factory(seed=61)
    saved = tmp_path / "saved"
    with client() as c:
        c.push_layout(layout.path, ref(registry, "save/src"), ["v1"])
        c.copy(ref(registry, "save/src:v1"), LayoutReference(str(saved), "kept"))
        c.push_layout(LayoutReference(str(saved), "kept"), ref(registry, "save/back"), ["v2"])
    inspected = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{saved}:kept"], capture_output=True, check=True, timeout=60
    )
    assert sha(inspected.stdout) == layout.index_digest
    assert sha(skopeo_raw(f"{registry.host}/save/back:v2")) == layout.index_digest


# -- referrers -------------------------------------------------------------------


def _push_signature(repo: RegistryRepository, subject: Manifest, payload: bytes) -> Manifest:
    """Attach an artifact (a 'signature') to ``subject`` the OCI 1.1 way, with the tag fallback."""
    from acr_ci.registry.media import Descriptor, make_index

    empty = b"{}"
    empty_desc = Descriptor("application/vnd.oci.empty.v1+json", sha(empty), len(empty))
    layer = Descriptor("application/vnd.example.signature", sha(payload), len(payload))
    repo.put_blob(empty_desc, [empty])
    repo.put_blob(layer, [payload])
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": empty_desc.to_json(),
        "layers": [layer.to_json()],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
    }
    data = json.dumps(doc).encode()
    artifact = Manifest(data=data, media_type=OCI_MANIFEST, digest=sha256_digest(data))
    repo.put_manifest(artifact, artifact.digest)
    repo.put_manifest(make_index([artifact.descriptor]), referrers_tag(subject.digest))
    return artifact


def test_copy_with_referrers(
    registry_factory: Callable[..., RegistryServer], oci_layout_factory: LayoutFactory,
    fault_proxy_factory: ProxyFactory,
) -> None:
    src, dst = registry_factory(), registry_factory()
    layout = oci_layout_factory(seed=71)
    with client() as c:
        c.push_layout(layout.path, ref(src, "sig/app"), ["v1"])
        repo = c.repository(ref(src, "sig/app"))
        subject = repo.get_manifest("v1")
        sig = _push_signature(repo, subject, b"signature-bytes")
        child = repo.get_manifest(layout.manifests["linux/arm64"])
        sbom = _push_signature(repo, child, b"sbom-for-arm64")
        assert [d.digest for d in repo.referrers(subject.digest)] == [sig.digest]
        result = c.copy(ref(src, "sig/app:v1"), ref(dst, "sig/app:v1"), referrers=True)
    assert set(result.referrers) == {sig.digest, sbom.digest}
    for subj, art in ((subject, sig), (child, sbom)):
        assert skopeo_raw(f"{dst.host}/sig/app@{art.digest}") == art.data
        fallback = json.loads(skopeo_raw(f"{dst.host}/sig/app:{referrers_tag(subj.digest)}"))
        assert [m["digest"] for m in fallback["manifests"]] == [art.digest]
        assert fallback["manifests"][0]["artifactType"] == "application/vnd.example.signature"
    # Without --referrers nothing else travels; a re-run with it writes nothing.
    proxy = fault_proxy_factory(dst)
    with client() as c:
        c.copy(ref(src, "sig/app:v1"), ref(proxy, "sig/app:v1"), referrers=True)
    assert not [r for r in proxy.log if r.method in ("PUT", "PATCH", "POST")]


# -- delete ----------------------------------------------------------------------


def test_delete_by_digest_then_404(registry: RegistryServer, oci_layout_factory: LayoutFactory) -> None:
    layout = oci_layout_factory(seed=81)
    dst = ref(registry, "del/app")
    with client() as c:
        c.push_layout(layout.path, dst, ["v1"])
        assert c.get_manifest(dst.with_digest(layout.index_digest)).digest == layout.index_digest
        c.delete(dst.with_digest(layout.index_digest))  # also forgets what the read kept
        with pytest.raises(NotFoundError):
            c.get_manifest(dst.with_digest(layout.index_digest))
    head = requests.head(f"{registry.url}/v2/del/app/manifests/{layout.index_digest}", timeout=30)
    assert head.status_code == 404
    assert not skopeo_exists(f"{registry.host}/del/app:v1")


def test_a_manifest_read_by_digest_is_fetched_once_and_a_tag_every_time(
    registry: RegistryServer,
    fault_proxy_factory: Callable[..., FaultProxy],
    oci_layout_factory: LayoutFactory,
) -> None:
    layout = oci_layout_factory(seed=82)
    with client() as c:
        c.push_layout(layout.path, ref(registry, "cache/app"), ["v1"])
    proxy = fault_proxy_factory(registry)
    at = Reference.parse(f"{proxy.host}/cache/app")
    with client() as c:
        by_tag = [c.get_manifest(at.with_tag("v1")) for _ in range(2)]
        by_digest = [c.get_manifest(at.with_digest(layout.index_digest)) for _ in range(2)]
    assert {m.digest for m in by_tag + by_digest} == {layout.index_digest}
    gets = [r.target for r in proxy.log if r.method == "GET"]
    assert gets.count("/v2/cache/app/manifests/v1") == 2  # a tag may move: asked each time
    assert f"/v2/cache/app/manifests/{layout.index_digest}" not in gets  # known from the tag


def test_delete_disabled_is_denied(
    registry_factory: Callable[..., RegistryServer], oci_layout_factory: LayoutFactory
) -> None:
    server = registry_factory(delete=False)
    layout = oci_layout_factory(seed=82)
    dst = ref(server, "del/off")
    with client() as c:
        c.push_layout(layout.path, dst, ["v1"])
        with pytest.raises(DeniedError) as info:
            c.delete(dst.with_digest(layout.index_digest))
    assert "refuses to delete" in info.value.message
    assert "delete" in (info.value.hint or "")
    assert sha(skopeo_raw(f"{server.host}/del/off:v1")) == layout.index_digest


# -- auth ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_auth_registry_with_docker_config(
    registry_factory: Callable[..., RegistryServer], oci_layout_factory: LayoutFactory,
    docker_config: Callable[..., Path], kind: str, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = registry_factory(kind=kind)
    assert server.credentials is not None
    user, password = server.credentials
    config_dir = docker_config(server)
    layout = oci_layout_factory(seed=91, layer_sizes=[MiB, 100_000, 5000])
    caplog.set_level("DEBUG")
    with client() as c:
        result = c.push_layout(layout.path, ref(server, "auth/app"), ["v1"])
        copied = c.copy(ref(server, "auth/app:v1"), ref(server, "auth/other:v1"))
    assert result.digest == copied.digest == layout.index_digest
    assert copied.blobs_mounted > 0
    assert sha(skopeo_raw(f"{server.host}/auth/other:v1", authfile=config_dir / "config.json")) == result.digest
    if server.token_server is not None:
        # tokens are cached per scope: one per distinct scope set, not one per request
        assert server.token_server.requests <= 6, [r.scopes for r in server.token_server.log]

    # Wrong password: a typed error, and neither secret appears anywhere.
    wrong = "Wr0ng-" + password
    from acr_ci.registry import StaticCredentials
    from acr_ci.registry.auth import Credentials

    bad = StaticCredentials(Credentials(user, wrong), frozenset({server.host}))
    with client(credentials=bad) as c, pytest.raises(UnauthorizedError) as info:
        c.get_manifest(ref(server, "auth/app:v1"))
    # Anonymous: also refused.
    with client(credentials=DockerConfigCredentials(paths=[])) as c, pytest.raises(UnauthorizedError):
        c.get_manifest(ref(server, "auth/app:v1"))
    captured = capsys.readouterr()
    texts = [info.value.diagnostics(), repr(info.value), str(info.value), caplog.text, captured.out, captured.err]
    for text in texts:
        assert password not in text and wrong not in text


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_faults_injected_copy_still_correct(
    registry_factory: Callable[..., RegistryServer], oci_layout_factory: LayoutFactory,
    fault_proxy_factory: ProxyFactory, seed: int,
) -> None:
    src, dst = registry_factory(), registry_factory()
    layout = oci_layout_factory(layer_sizes=[2 * MiB, 300_000], seed=101)
    up = fault_proxy_factory(src, fault_rate=0.25, seed=seed, retry_after=0,
                             faults=["500", "429", "drop_request", "drop_response"])
    with client() as c:
        c.push_layout(layout.path, ref(up, "fault/app"), ["v1"])
    down = fault_proxy_factory(src, fault_rate=0.25, seed=seed + 100, retry_after=0,
                               faults=["500", "429", "drop_response"])
    with client() as c:
        result = c.copy(ref(down, "fault/app:v1"), ref(dst, "fault/app:v1"))
    assert up.faults_injected > 0 and down.faults_injected > 0
    assert result.digest == layout.index_digest
    assert sha(skopeo_raw(f"{src.host}/fault/app:v1")) == layout.index_digest
    assert sha(skopeo_raw(f"{dst.host}/fault/app:v1")) == layout.index_digest
    for digest in [*layout.layers["linux/amd64"], *layout.layers["linux/arm64"]]:
        blob = requests.get(f"{dst.url}/v2/fault/app/blobs/{digest}", timeout=30)
        assert sha(blob.content) == digest


def test_missing_things_are_typed_errors(registry: RegistryServer, tmp_path: Path) -> None:
    with client() as c:
        with pytest.raises(NotFoundError) as info:
            c.get_manifest(ref(registry, "nothing/here:v1"))
        assert "nothing/here" in info.value.message
        with pytest.raises(AcrError) as info2:
            c.push_layout(tmp_path / "not-a-layout", ref(registry, "x/y"), ["v1"])
        assert "not an OCI image layout" in info2.value.message


@pytest.mark.parametrize(("content", "chunk_size"), [(b"", MiB), (b"x" * 10, 4), (b"{}", MiB)],
                         ids=["empty", "chunked-small", "tiny"])
def test_blob_edge_sizes(registry: RegistryServer, content: bytes, chunk_size: int) -> None:
    from acr_ci.registry.media import Descriptor

    desc = Descriptor("application/octet-stream", sha(content), len(content))
    with client(chunk_size=chunk_size) as c:
        repo = c.repository(ref(registry, "edge/blobs"))
        repo.put_blob(desc, [content] if content else [])
        assert repo.has_blob(desc)
    got = requests.get(f"{registry.url}/v2/edge/blobs/blobs/{desc.digest}", timeout=30)
    assert got.status_code == 200 and got.content == content



def test_rejected_token_is_refreshed_once(
    registry_factory: Callable[..., RegistryServer], oci_layout_factory: LayoutFactory,
    docker_config: Callable[..., Path],
) -> None:
    server = registry_factory(kind="token")
    docker_config(server)
    layout = oci_layout_factory(seed=111)
    assert server.token_server is not None
    with client() as c:
        c.push_layout(layout.path, ref(server, "exp/app"), ["v1"])
        transport = c.transport(server.host)
        issued = server.token_server.issued
        for token in transport._tokens.values():  # the registry will now refuse every cached token
            token.value = "revoked." + token.value
        assert c.tag_digest(ref(server, "exp/app:v1")) == layout.index_digest
        assert server.token_server.issued == issued + 1
        result = c.copy(ref(server, "exp/app:v1"), ref(server, "exp/other:v1"))
    assert result.digest == layout.index_digest


def test_netrc_is_never_used(
    registry_factory: Callable[..., RegistryServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = registry_factory(kind="basic")
    assert server.credentials is not None
    user, password = server.credentials
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {user} password {password}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    with client(credentials=DockerConfigCredentials(paths=[])) as c, pytest.raises(UnauthorizedError):
        c.list_tags(ref(server, "netrc/app"))


def test_failed_blob_leaves_no_manifest_or_tag(
    registry: RegistryServer, oci_layout_factory: LayoutFactory, fault_proxy_factory: ProxyFactory
) -> None:
    layout = oci_layout_factory(seed=121, layer_sizes=[MiB, 1000])
    big = layout.layers["linux/arm64"][0]
    # Every upload of one layer fails; everything else goes through.
    proxy = fault_proxy_factory(registry, fault_rate=1.0, faults=["500"], match=rf"^PUT .*digest=sha256(%3A|:){big.split(':')[1]}")
    with client(retry=RetryPolicy(attempts=2, base_delay=0.01)) as c, pytest.raises(AcrError):
        c.push_layout(layout.path, ref(proxy, "half/app"), ["v1"])
    assert proxy.faults_injected >= 2
    for what in ("v1", layout.index_digest, *layout.manifests.values()):
        head = requests.head(f"{registry.url}/v2/half/app/manifests/{what}", timeout=30)
        assert head.status_code == 404, what
    # the same push without faults then completes
    with client() as c:
        c.push_layout(layout.path, ref(registry, "half/app"), ["v1"])
    assert sha(skopeo_raw(f"{registry.host}/half/app:v1")) == layout.index_digest
