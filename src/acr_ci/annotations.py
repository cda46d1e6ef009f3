"""The OCI annotations (and labels) every built image carries, computed from the plan and ref.

Pure: nothing here reads the environment or the clock; the CI environment's repository
URL is resolved by :func:`source_url` from a mapping the caller passes in.

Keys (``org.opencontainers.image.*``, the OCI image-spec's pre-defined annotations):

``source``
    The source repository's URL, when known (omitted otherwise — a bare ``owner/name``
    without a server is not a URL).
``revision``
    The full commit ID (omitted when unknown).
``created``
    The push time (``RefContext.time``), RFC 3339 in UTC. The push time, not the build
    time: every job of one pipeline and every rebuild of one push agree on it.
``version``
    The plan's first tag.
``ref.name``
    Also the plan's first tag. The OCI image-spec defines ``ref.name`` as the *image's*
    reference name (in an image layout's ``index.json``, the tag); it is not the git ref.
    docker/metadata-action uses the same meaning (it writes the version there and never
    the branch), and buildx's OCI exporter writes the tag there. The git ref is in the tags
    the rule rendered from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC

from acr_ci.models import BuildPlan, RefContext

PREFIX = "org.opencontainers.image."
SOURCE = PREFIX + "source"
REVISION = PREFIX + "revision"
CREATED = PREFIX + "created"
VERSION = PREFIX + "version"
REF_NAME = PREFIX + "ref.name"

_URL_RE = re.compile(r"(?i)^(https?|ssh|git)://")
_USERINFO_RE = re.compile(r"(?i)^([a-z][a-z0-9+.-]*://)[^/@]*@")
_SCP_RE = re.compile(r"^[A-Za-z0-9._-]+@([A-Za-z0-9.-]+):(.+)$")


def _clean_url(url: str) -> str:
    """Drop any ``user:token@`` (CI checkouts carry tokens there) and a trailing slash."""
    return _USERINFO_RE.sub(r"\1", url.strip()).rstrip("/")


def source_url(ref: RefContext, env: Mapping[str, str]) -> str | None:
    """The repository's URL: ``ref.repository`` if it is a URL, else built from the CI env.

    GitHub (the ref came from GitHub, or ``$GITHUB_ACTIONS`` is ``true``):
    ``$GITHUB_SERVER_URL/owner/name`` (``https://github.com`` by default); GitLab (likewise
    ``$GITLAB_CI``): ``$CI_PROJECT_URL``, else ``$CI_SERVER_URL/group/project``. An ``scp``-style
    ``git@host:path`` becomes ``https://host/path``. Anything else: ``None``.
    """
    repo = (ref.repository or "").strip()
    if not repo:
        return None
    if _URL_RE.match(repo):
        url = _clean_url(repo)
        return url if url.lower().startswith("http") else None
    scp = _SCP_RE.match(repo)
    if scp:
        return f"https://{scp.group(1)}/{scp.group(2).rstrip('/')}"
    repo = repo.strip("/")
    if ref.source == "github" or env.get("GITHUB_ACTIONS") == "true":
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{_clean_url(server)}/{repo}"
    if ref.source == "gitlab" or env.get("GITLAB_CI") == "true":
        if env.get("CI_PROJECT_URL"):
            return _clean_url(env["CI_PROJECT_URL"])
        if env.get("CI_SERVER_URL"):
            return f"{_clean_url(env['CI_SERVER_URL'])}/{repo}"
    return None


def rfc3339(ref: RefContext) -> str:
    """The push time in UTC, ``2026-11-23T13:26:35Z`` (fractions of a second dropped)."""
    return ref.time.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_annotations(
    plan: BuildPlan, ref: RefContext, *, source: str | None = None
) -> dict[str, str]:
    """The annotations for the index and every manifest of ``plan``'s image (see module doc).

    ``source`` is the repository URL (from :func:`source_url`), or ``None`` to omit it.
    Keys come out in a fixed order so builder argv is stable.
    """
    out: dict[str, str] = {}
    if source:
        out[SOURCE] = source
    if ref.sha:
        out[REVISION] = ref.sha.lower()
    out[CREATED] = rfc3339(ref)
    if plan.tags:
        out[VERSION] = plan.tags[0]
        out[REF_NAME] = plan.tags[0]
    return out
