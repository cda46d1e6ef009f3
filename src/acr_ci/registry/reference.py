"""Image references: ``[registry/]namespace/repo[:tag][@digest]``.

Parsed once into a :class:`Reference`; everything else works on that value.
The grammar follows the distribution project's reference grammar: the first
path component is a registry host when it contains ``.`` or ``:``, is
``localhost``, or is a bracketed IPv6 address; otherwise the Docker Hub
defaults apply (``docker.io`` and, for one-component names, ``library/``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from acr_ci.errors import UsageError
from acr_ci.hosts import names_registry

DEFAULT_REGISTRY = "docker.io"
"""The registry of a reference that names none (Docker Hub)."""
DEFAULT_REGISTRY_API = "registry-1.docker.io"
"""Where Docker Hub's distribution API answers."""

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*", re.ASCII)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9]+)?\])"
    r"(?::[0-9]+)?",
    re.ASCII,
)
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", re.ASCII)
"""The OCI distribution tag grammar."""
DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", re.ASCII)
"""The OCI image-spec digest grammar (algorithm:encoded)."""
_SHA256_RE = re.compile(r"sha256:[a-f0-9]{64}", re.ASCII)
_SHA512_RE = re.compile(r"sha512:[a-f0-9]{128}", re.ASCII)
MAX_NAME = 255


def valid_digest(digest: str) -> bool:
    """True for a well-formed digest of a registered algorithm (sha256, sha512)."""
    return bool(_SHA256_RE.fullmatch(digest) or _SHA512_RE.fullmatch(digest))


@dataclass(frozen=True)
class Reference:
    """A parsed image reference."""

    registry: str
    """Registry host and optional port as written (``docker.io`` by default)."""
    repository: str
    """The repository path (``team/app``; ``library/x`` on Docker Hub)."""
    tag: str | None = None
    """The tag, if any."""
    digest: str | None = None
    """The digest, if any (``sha256:…``)."""

    @classmethod
    def parse(cls, text: str, *, what: str = "image reference") -> Reference:
        """Parse ``text``; raise :class:`UsageError` naming ``what`` when it is not valid."""
        original = text
        hint = "write registry/namespace/repository[:tag][@sha256:digest], e.g. registry.example.com/team/app:v1"
        if not text or text != text.strip() or any(c.isspace() for c in text):
            raise UsageError(f"{what} {original!r} is not a valid image reference", hint)
        digest: str | None = None
        if "@" in text:
            text, digest = text.split("@", 1)
            if not valid_digest(digest):
                raise UsageError(
                    f"{what} {original!r} has an invalid digest {digest!r}",
                    "a digest is sha256: followed by 64 lowercase hex digits",
                )
        tag: str | None = None
        # A tag follows the last ':' after the last '/'; a ':' before it is a port.
        last_slash = text.rfind("/")
        colon = text.rfind(":")
        if colon > last_slash:
            text, tag = text[:colon], text[colon + 1 :]
            if not TAG_RE.fullmatch(tag):
                raise UsageError(
                    f"{what} {original!r} has an invalid tag {tag!r}",
                    "a tag is [A-Za-z0-9_][A-Za-z0-9._-]{0,127}",
                )
        first, sep, rest = text.partition("/")
        if sep and names_registry(first):
            registry, path = first, rest
            if not _HOST_RE.fullmatch(registry):
                raise UsageError(
                    f"{what} {original!r} has an invalid registry host {registry!r}", hint
                )
        else:
            registry, path = DEFAULT_REGISTRY, text
        if registry in (DEFAULT_REGISTRY, "index.docker.io", DEFAULT_REGISTRY_API):
            registry = DEFAULT_REGISTRY
            if "/" not in path:
                path = f"library/{path}"
        if not _PATH_RE.fullmatch(path):
            raise UsageError(
                f"{what} {original!r} has an invalid repository path {path!r}",
                "repository path components are lowercase letters and digits, "
                "separated by '.', '_', '__' or '-', joined with '/'",
            )
        if len(f"{registry}/{path}") > MAX_NAME:
            raise UsageError(f"{what} {original!r} is longer than {MAX_NAME} characters")
        return cls(registry=registry, repository=path, tag=tag, digest=digest)

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host[:port] the distribution API answers on."""
        return DEFAULT_REGISTRY_API if self.registry == DEFAULT_REGISTRY else self.registry

    def with_tag(self, tag: str | None) -> Reference:
        """The same repository with another tag (and no digest)."""
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str | None) -> Reference:
        """The same repository pinned to a digest (the tag is kept for display)."""
        return replace(self, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


LAYOUT_PREFIX = "oci-layout:"
"""The prefix that marks a local OCI image layout side (``oci-layout:DIR[:tag]``)."""


@dataclass(frozen=True)
class LayoutReference:
    """An image in a local OCI image layout directory: ``oci-layout:DIR[:tag]``."""

    path: str
    """The layout directory, as the user wrote it."""
    tag: str | None = None
    """The ``org.opencontainers.image.ref.name`` to read or write, if any."""

    @classmethod
    def parse(cls, text: str, *, what: str = "layout reference") -> LayoutReference:
        """Parse ``oci-layout:DIR[:tag]``; raise :class:`UsageError` naming ``what`` if invalid.

        The tag is what follows the last ``:`` when that text is a valid tag and
        contains no ``/``; anything else is part of the directory.
        """
        hint = "write oci-layout:DIR or oci-layout:DIR:TAG, e.g. oci-layout:./out:v1"
        if not text.startswith(LAYOUT_PREFIX):
            raise UsageError(f"{what} {text!r} does not start with {LAYOUT_PREFIX!r}", hint)
        rest = text[len(LAYOUT_PREFIX) :]
        tag: str | None = None
        head, sep, tail = rest.rpartition(":")
        if sep and head and "/" not in tail:
            if not TAG_RE.fullmatch(tail):
                raise UsageError(
                    f"{what} {text!r} has an invalid tag {tail!r}",
                    "a tag is [A-Za-z0-9_][A-Za-z0-9._-]{0,127}",
                )
            rest, tag = head, tail
        if not rest or "\x00" in rest:
            raise UsageError(f"{what} {text!r} names no directory", hint)
        return cls(path=rest, tag=tag)

    def with_tag(self, tag: str | None) -> LayoutReference:
        """The same layout with another tag."""
        return replace(self, tag=tag)

    def __str__(self) -> str:
        return f"{LAYOUT_PREFIX}{self.path}" + (f":{self.tag}" if self.tag else "")


Location = Reference | LayoutReference
"""Either side of a copy: a registry repository or a local OCI layout."""


def parse_location(text: str, *, what: str = "image reference") -> Location:
    """Parse a registry reference or an ``oci-layout:DIR[:tag]`` reference."""
    if text.startswith(LAYOUT_PREFIX):
        return LayoutReference.parse(text, what=what)
    return Reference.parse(text, what=what)
