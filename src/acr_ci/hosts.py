"""Hosts and URLs: one parser for each, one loopback rule, one URL policy.

A *host* here is what registries and image references write: ``name``,
``name:port``, ``[v6]``, ``[v6]:port``, or a bare IPv6 address (as
``urlsplit(...).hostname`` gives it). Everything that asks "which host is
this", "is it loopback" or "may this URL be called" asks this module.

The loopback rule (:func:`is_loopback`) is deliberately narrow, because a
loopback host is trusted with plain HTTP and unverified TLS:

- ``localhost`` (any case), nothing else by name: not ``*.localhost`` and not
  ``localhost.``, whose resolution depends on the resolver (and DNS);
- an IPv4 address in ``127.0.0.0/8`` written as a dotted quad (``ipaddress``'s
  strict grammar: no ``127.1``, ``0x7f.1`` or leading zeros);
- ``::1``, bracketed when a port follows; IPv4-mapped addresses are not
  loopback (Python versions disagree on them);
- an optional ``:port`` of 1-5 digits up to 65535; anything else in the string
  (user info, a path, spaces) makes it not loopback.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_PORT = 65535


def split_host(host: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of ``host``; ``None`` when it is not a well-formed host[:port].

    IPv6 names come back without brackets. Only the shape is checked, not the name.
    """
    if host.startswith("["):
        end = host.find("]")
        name, rest = (host[1:end], host[end + 1 :]) if end > 0 else ("", "")
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
        rest = f":{port}"
    else:
        name, rest = host, ""
    if not name:
        return None
    if not rest:
        return name, None
    digits = rest[1:]
    if not (
        rest.startswith(":")
        and digits.isascii()
        and digits.isdigit()
        and len(digits) <= 5
        and int(digits) <= MAX_PORT
    ):
        return None
    return name, int(digits)


def host_without_port(host: str) -> str:
    """The name part of ``host`` (IPv6 without brackets or zone); ``host`` if malformed."""
    parts = split_host(host)
    if parts is None:
        return host
    name = parts[0]
    return name.split("%", 1)[0] if host.startswith("[") else name


def is_loopback(host: str) -> bool:
    """True when ``host`` (see the module doc for the rule) is this machine's loopback."""
    parts = split_host(host)
    if parts is None:
        return False
    name, _ = parts
    if name.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if host.startswith("[") and address.version != 6:  # ``[127.0.0.1]`` is no host
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return False
    return address.is_loopback


def names_registry(component: str) -> bool:
    """True when the first path component of an image reference is a registry host.

    The distribution reference rule: it contains ``.`` or ``:``, is ``localhost``, or is
    a bracketed IPv6 address; otherwise the reference is a Docker Hub name.
    """
    return (
        "." in component
        or ":" in component
        or component == "localhost"
        or component.startswith("[")
    )


def registry_host(image: str) -> str | None:
    """The registry part (lowercased) of an image reference, ``None`` for Docker Hub names."""
    first, slash, _ = image.partition("/")
    if slash and names_registry(first):
        return first.lower()
    return None


# -- URLs ----------------------------------------------------------------------------


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: the path, query, fragment and user info are
    dropped, so the result is safe to show and log."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(invalid URL)"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    scheme = parts.scheme.lower() or "?"
    return f"{scheme}://{host}" + (f":{port}" if port else "")


class UrlFault(enum.Enum):
    """What is wrong with a URL that may not be called."""

    MALFORMED = "malformed"
    """Spaces or control characters, or not parseable (bad port, unclosed ``[``)."""
    SCHEME = "scheme"
    """Not ``http://`` or ``https://``."""
    NO_HOST = "no-host"
    """No host after the scheme."""
    CLEARTEXT = "cleartext"
    """Plain http to a host that is not loopback, without ``allow_http``."""


@dataclass(frozen=True)
class UrlProblem:
    """Why a URL may not be called; ``message`` never quotes its path, query or user info."""

    fault: UrlFault
    message: str
    """What is wrong and what would be right, said of "the URL" (``must be …``)."""


def url_problem(url: str, *, allow_http: bool) -> UrlProblem | None:
    """What is wrong with an http(s) URL acr-ci is to call (a trigger), or ``None``.

    https is always fine; plain http only for a loopback host or with ``allow_http``.
    """
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return UrlProblem(
            UrlFault.MALFORMED,
            "must not contain spaces or control characters (percent-encode them)",
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        return UrlProblem(UrlFault.MALFORMED, "is not a valid URL")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return UrlProblem(UrlFault.SCHEME, "must be an http:// or https:// URL")
    if not parts.hostname:
        return UrlProblem(UrlFault.NO_HOST, f"has no host after {scheme}://")
    if scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        return UrlProblem(
            UrlFault.CLEARTEXT,
            f"plain http to {origin(url)} would send the request (and any token in the "
            "URL) unencrypted: use https, or set allow_http: true for a trusted network",
        )
    return None
