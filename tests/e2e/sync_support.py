"""Helpers for the sync and chain end-to-end tests: read what a registry really holds
(plain HTTP, independent of acr-ci's client), and put referrers into a source registry.

No tests here (hence not ``test_*``: every ``test_*.py`` must hold tests, see
scripts/check_collected.py); it sits beside the tests that use it.
"""

from __future__ import annotations

import hashlib
import json
import socket
from typing import Any

import requests
from tests.support import RegistryServer

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
EMPTY = b"{}"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(EMPTY).hexdigest()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dead_host() -> str:
    """``127.0.0.1:PORT`` where nothing listens (a mirror that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def manifest(server: RegistryServer, repo: str, ref: str) -> tuple[bytes, str] | None:
    """The manifest bytes and media type ``server`` serves for ``repo:ref`` (None: 404)."""
    r = requests.get(
        f"{server.url}/v2/{repo}/manifests/{ref}",
        headers={"Accept": ACCEPT},
        auth=server.credentials,
        timeout=30,
    )
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.content, r.headers["Content-Type"].split(";")[0]


def digest_at(server: RegistryServer, repo: str, ref: str) -> str | None:
    """The digest of what ``repo:ref`` serves, hashed here from the bytes (None: absent)."""
    got = manifest(server, repo, ref)
    return sha(got[0]) if got else None


def has_blob(server: RegistryServer, repo: str, digest: str) -> bool:
    r = requests.head(f"{server.url}/v2/{repo}/blobs/{digest}", auth=server.credentials, timeout=30)
    return r.status_code == 200


def tags_at(server: RegistryServer, repo: str) -> list[str]:
    r = requests.get(f"{server.url}/v2/{repo}/tags/list", auth=server.credentials, timeout=30)
    if r.status_code == 404:
        return []
    r.raise_for_status()
    return sorted(r.json().get("tags") or [])


def assert_complete(server: RegistryServer, repo: str, digest: str) -> list[str]:
    """Every manifest and blob under ``digest`` is at ``server``; returns the child digests."""
    got = manifest(server, repo, digest)
    assert got is not None, f"{repo}@{digest} missing"
    assert sha(got[0]) == digest
    doc = json.loads(got[0])
    children = [m["digest"] for m in doc.get("manifests", [])]
    for child in children:
        sub = manifest(server, repo, child)
        assert sub is not None and sha(sub[0]) == child, f"child {child} missing"
        subdoc = json.loads(sub[0])
        for blob in [subdoc["config"], *subdoc["layers"]]:
            assert has_blob(server, repo, blob["digest"]), f"blob {blob['digest']} missing"
    return children


def _upload(server: RegistryServer, repo: str, data: bytes) -> str:
    digest = sha(data)
    r = requests.post(f"{server.url}/v2/{repo}/blobs/uploads/", auth=server.credentials, timeout=30)
    r.raise_for_status()
    location = r.headers["Location"]
    if location.startswith("/"):
        location = server.url + location
    sep = "&" if "?" in location else "?"
    r = requests.put(
        f"{location}{sep}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        auth=server.credentials,
        timeout=30,
    )
    r.raise_for_status()
    return digest


def _put_manifest(server: RegistryServer, repo: str, ref: str, doc: dict[str, Any], media: str) -> str:
    data = json.dumps(doc, separators=(",", ":")).encode()
    r = requests.put(
        f"{server.url}/v2/{repo}/manifests/{ref}",
        data=data,
        headers={"Content-Type": media},
        auth=server.credentials,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return sha(data)


def push_referrer(server: RegistryServer, repo: str, subject: str, *, note: str = "sbom") -> str:
    """Put an artifact manifest whose ``subject`` is ``repo@subject`` into ``server``, plus the
    ``sha256-<hex>`` fallback tag index listing it (registries without the referrers API).
    Returns the artifact manifest's digest."""
    got = manifest(server, repo, subject)
    assert got is not None
    subject_bytes, subject_media = got
    _upload(server, repo, EMPTY)
    layer = json.dumps({"note": note}).encode()
    layer_digest = _upload(server, repo, layer)
    artifact_type = "application/vnd.example.sbom.v1+json"
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
        "layers": [{"mediaType": "application/json", "digest": layer_digest, "size": len(layer)}],
        "subject": {"mediaType": subject_media, "digest": subject, "size": len(subject_bytes)},
    }
    media = "application/vnd.oci.image.manifest.v1+json"
    data = json.dumps(doc, separators=(",", ":")).encode()
    digest = _put_manifest(server, repo, sha(data), doc, media)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": media, "digest": digest, "size": len(data), "artifactType": artifact_type}
        ],
    }
    _put_manifest(server, repo, "sha256-" + subject.split(":", 1)[1], index,
                  "application/vnd.oci.image.index.v1+json")
    return digest
