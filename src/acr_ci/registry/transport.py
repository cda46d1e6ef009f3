"""One HTTP transport per registry host: scheme, connections, auth, retries.

- The scheme is HTTPS with verification, unless the host is loopback or marked
  insecure: then HTTPS without verification is tried first and plain HTTP after.
- Auth: the first request to a host pings ``/v2/`` and learns its challenge.
  Basic credentials are sent on every request; bearer tokens are fetched for the
  scopes a request needs *before* it is sent (so a streamed body is never wasted
  on a 401), cached per scope set, and refreshed on a 401 or near expiry.
- Retries: connection errors, 408, 429 and 500/502/503/504, with exponential
  backoff and full jitter, honouring ``Retry-After``; never 401/403/404. A
  request whose body is a one-shot stream is not retried here: it raises a
  :class:`TransientError` that the copy engine answers by re-opening the source.
  Retries are bounded in count (:attr:`RetryPolicy.attempts`) and in time
  (:attr:`RetryPolicy.budget`: no retry starts after it).
- Deadlines: besides the per-read ``timeout``, every request has a total deadline
  (connect, headers and body): ``deadline`` seconds, plus, for a request that moves
  a blob of known size, the time that size takes at :data:`MIN_THROUGHPUT` (a slow
  link still finishes a big layer; a server dripping a byte at a time does not hold a
  command for longer). A watchdog shuts the connection down when the deadline passes.
- Reads: a body that is not streamed to the caller is read with a cap
  (:data:`MAX_DOCUMENT_BYTES`); JSON goes through :func:`acr_ci.jsonload.loads_bounded`.
- Credentials come only from acr-ci's own sources: sessions do not trust the
  environment (no ``~/.netrc``); proxies (``HTTPS_PROXY``/``NO_PROXY``) and
  ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` are still read from it explicitly.
  Basic credentials go over plain HTTP only to loopback or to hosts listed insecure,
  whatever host asks (the registry or the token realm it names).
"""

from __future__ import annotations

import email.utils
import math
import os
import random
import re
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
import requests.adapters
import requests.utils
import urllib3
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from acr_ci import __version__, alarms
from acr_ci.errors import (
    AcrError,
    DeniedError,
    NotFoundError,
    RateLimitedError,
    RegistryError,
    UnauthorizedError,
    UnsupportedError,
)
from acr_ci.errors import (
    TransientError as TransientError,  # lives in errors.py; importable here too
)
from acr_ci.hosts import is_loopback, origin
from acr_ci.jsonload import loads_bounded
from acr_ci.registry.auth import Challenge, Credentials, CredentialSource, parse_challenges
from acr_ci.text import clean_remote

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = f"acr-ci/{__version__}"
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
"""The largest JSON answer read whole (tag-list and referrers pages, token answers)."""
TOKEN_MIN_LIFETIME = 60
"""Token lifetime assumed when a token server gives none (the distribution spec's default)."""
TOKEN_MAX_LIFETIME = 24 * 3600
"""The longest a token is kept, whatever ``expires_in`` says (1e999, NaN: this or the minimum)."""
DEFAULT_DEADLINE = 120.0
"""Seconds a request may take in all (connect, headers, body) when it moves no blob."""
MAX_DEADLINE = 7 * 24 * 3600.0
"""The longest deadline any request gets, whatever size a descriptor claims."""
MIN_THROUGHPUT = 256 * 1024
"""Bytes per second a blob transfer must average: its deadline grows by size / this."""
MAX_PAGES = 1000
"""The most pages a paginated walk (tag list, referrers) follows before it gives up."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry what is retryable."""

    attempts: int = 5
    """Tries in all (1 = no retry)."""
    base_delay: float = 0.5
    """The first backoff, doubled on each retry."""
    max_delay: float = 20.0
    """The longest backoff between two tries."""
    max_retry_after: float = 60.0
    """The longest ``Retry-After`` honoured; a longer one is cut to this."""
    budget: float = 300.0
    """Seconds from the first try after which no retry starts (the waits included)."""

    def allows(self, attempt: int, started: float, wait: float) -> bool:
        """Whether try ``attempt + 1`` may start after waiting ``wait`` seconds, for an
        operation whose first try started at ``started`` (:func:`time.monotonic`)."""
        if attempt >= self.attempts:
            return False
        return time.monotonic() - started + wait <= self.budget

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return float(ceiling / 2 + rand() * ceiling / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


_LINK_RE = re.compile(r'<([^>]*)>\s*((?:;\s*[A-Za-z0-9_*-]+\s*=\s*(?:"[^"]*"|[^;,]*)\s*)*)')


def parse_link_next(header: str | None, base_url: str) -> str | None:
    """The absolute URL of the ``rel="next"`` link in a ``Link`` header, if any."""
    if not header:
        return None
    for m in _LINK_RE.finditer(header):
        params = m.group(2)
        for pm in re.finditer(r';\s*([A-Za-z0-9_*-]+)\s*=\s*("([^"]*)"|[^;,]*)', params):
            key = pm.group(1).lower()
            value = pm.group(3) if pm.group(3) is not None else pm.group(2).strip()
            if key == "rel" and "next" in value.split():
                return str(urljoin(base_url, m.group(1)))
    return None


def registry_error_text(response: requests.Response) -> str:
    """The registry's own error codes and messages (``errors[].code: message``), short."""
    try:
        head = (
            response.content[:65536]
            if getattr(response, "_content_consumed", False)
            else response.raw.read(65536, decode_content=True)
        )
        doc = loads_bounded(head or b"{}", what="error body")
    except (AcrError, requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        return ""
    if not isinstance(doc, dict):
        return ""
    errors = doc.get("errors")
    if not isinstance(errors, list):
        return ""
    parts = []
    for e in errors[:3]:
        if isinstance(e, dict):
            code = clean_remote(str(e.get("code", "?")), 40)
            parts.append(f"{code}: {clean_remote(str(e.get('message', '')), 200)}")
    return "; ".join(parts)


@dataclass
class _Token:
    value: str
    expires: float


def token_lifetime(value: object) -> float:
    """Seconds to keep a token from its ``expires_in``: clamped to
    [:data:`TOKEN_MIN_LIFETIME`, :data:`TOKEN_MAX_LIFETIME`]; anything that is not a
    finite number (absent, a string, NaN, infinity, a bool) gives the minimum."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float(TOKEN_MIN_LIFETIME)
    if isinstance(value, float) and not math.isfinite(value):
        return float(TOKEN_MIN_LIFETIME)
    return float(min(max(value, TOKEN_MIN_LIFETIME), TOKEN_MAX_LIFETIME))


class DeadlineExceeded(TransientError):
    """A request did not finish (connect, headers and body) within its deadline."""


_CURRENT_WATCH = threading.local()


class _Watch:
    """Shuts down the connections of one request when its deadline passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._lock = threading.Lock()
        self._conns: list[Any] = []
        self._response: urllib3.BaseHTTPResponse | None = None
        self._alarm = alarms.after(seconds, self._fire)

    def attach(self, conn: Any) -> None:
        with self._lock:
            self._conns.append(conn)
            if self.fired:
                _shutdown(conn)

    def watch_response(self, response: urllib3.BaseHTTPResponse | None) -> None:
        with self._lock:
            self._response = response

    def _fire(self) -> None:
        with self._lock:
            raw = self._response
            if raw is not None and raw.closed:
                return  # read to its end: the connection may be serving another request
            self.fired = True
            for conn in self._conns:
                _shutdown(conn)

    def cancel(self) -> None:
        self._alarm.cancel()
        with self._lock:
            self._conns.clear()


def _shutdown(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _WatchedHTTPPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        watch = getattr(_CURRENT_WATCH, "watch", None)
        if watch is not None:
            watch.attach(conn)
        return conn


class _WatchedHTTPSPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        watch = getattr(_CURRENT_WATCH, "watch", None)
        if watch is not None:
            watch.attach(conn)
        return conn


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections a request's :class:`_Watch` can shut down."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS has pools of its own
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


def _ca_bundle() -> str | None:
    """The CA bundle requests would take from the environment (sessions do not trust it)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


class Transport:
    """Talks to one registry host. Thread-safe; share one per host."""

    def __init__(
        self,
        host: str,
        *,
        credentials: CredentialSource | None = None,
        insecure: bool = False,
        pool_size: int = 8,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        deadline: float = DEFAULT_DEADLINE,
        is_insecure: Callable[[str], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.host = host
        self.deadline = deadline
        """Seconds a request may take in all (see the module docs; blobs get more)."""
        self._is_insecure = is_insecure
        self.insecure = insecure or is_loopback(host)
        if self.insecure:
            # The user chose unverified TLS for this host: say it once in the docs, not per request.
            import urllib3

            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._sleep = sleep
        self._credential_source = credentials
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._session = requests.Session()
        # No ~/.netrc, no credentials from anywhere but acr-ci's own sources; the proxies
        # and CA bundle the environment names are passed per request instead.
        self._session.trust_env = False
        adapter = _Adapter(pool_connections=2, pool_maxsize=max(4, pool_size))
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers["User-Agent"] = USER_AGENT
        self._lock = threading.Lock()
        self._base: str | None = None
        self._challenge: Challenge | None = None
        self._tokens: dict[frozenset[str], _Token] = {}
        self._fetch_locks: dict[frozenset[str], threading.Lock] = {}

    # -- setup -----------------------------------------------------------------

    def close(self) -> None:
        self._session.close()

    def sleep(self, seconds: float) -> None:
        """Wait between retries (the clock tests can replace)."""
        self._sleep(seconds)

    @property
    def credentials(self) -> Credentials | None:
        if not self._credentials_loaded:
            with self._lock:
                if not self._credentials_loaded:
                    source = self._credential_source
                    self._credentials = source.get(self.host) if source else None
                    self._credentials_loaded = True
        return self._credentials

    @property
    def base_url(self) -> str:
        """``https://host`` or ``http://host`` once the host has been pinged."""
        self._ensure_pinged()
        assert self._base is not None
        return self._base

    def _ensure_pinged(self) -> None:
        if self._base is not None:
            return
        with self._lock:
            if self._base is not None:
                return
            schemes = ["https", "http"] if self.insecure else ["https"]
            last: TransientError | None = None
            for scheme in schemes:
                url = f"{scheme}://{self.host}/v2/"
                try:
                    response = self._send_with_retries(
                        "GET",
                        url,
                        headers={},
                        verify=not self.insecure,
                        what="ping",
                        stream=False,
                        attempts=1 if scheme != schemes[-1] else None,
                        # a plain-HTTP server may never answer a TLS hello: probe briefly
                        timeout=(3.0, 5.0) if scheme != schemes[-1] else None,
                    )
                except TransientError as e:
                    last = e
                    continue
                if response.status_code == 401:
                    self._challenge = _pick_challenge(response.headers.get("WWW-Authenticate", ""))
                elif response.status_code >= 400 and response.status_code not in (404,):
                    raise _status_error(response, f"registry {self.host}", "ping /v2/")
                self._base = f"{scheme}://{self.host}"
                return
            hint = (
                "check the host name and that the registry is up"
                if self.insecure
                else f"check the host name; for a plain-HTTP registry pass --insecure {self.host}"
            )
            msg = f"cannot reach registry {self.host}"
            if last is not None:
                msg += f": {last.message}"
                hint = last.hint or hint
            raise RegistryError(msg, hint)

    # -- auth ------------------------------------------------------------------

    def _auth_header(self, scopes: Sequence[str]) -> str | None:
        challenge = self._challenge
        if challenge is None:
            return None
        creds = self.credentials
        if challenge.scheme == "basic":
            return creds.basic_header() if creds else None
        if challenge.scheme == "bearer":
            key = frozenset(scopes)
            with self._lock:
                fetch_lock = self._fetch_locks.setdefault(key, threading.Lock())
            with fetch_lock:  # one token request per scope set, however many threads wait
                with self._lock:
                    token = self._tokens.get(key)
                if token is None or token.expires - 10 < time.monotonic():
                    token = self._fetch_token(challenge, scopes)
                    with self._lock:
                        self._tokens[key] = token
            return f"Bearer {token.value}"
        return None

    def _fetch_token(self, challenge: Challenge, scopes: Sequence[str]) -> _Token:
        realm = challenge.params.get("realm")
        if not realm:
            raise UnsupportedError(
                f"registry {self.host} asks for a bearer token but names no realm"
            )
        try:
            scheme, netloc = urlsplit(realm)[:2]
        except ValueError:  # e.g. an unclosed "[": refused below like any non-https realm
            scheme, netloc = "", ""
        creds = self.credentials
        # netloc, not hostname: user info in front of a loopback name is not loopback.
        # Credentials go over plain HTTP only to loopback or to a host listed insecure:
        # the realm's own scheme and host decide, not whether the registry is insecure.
        clear_ok = is_loopback(netloc) or self._listed_insecure(netloc)
        if scheme not in ("https", "http") or (
            scheme == "http" and not (clear_ok or (creds is None and self.insecure))
        ):
            if scheme == "http" and creds is not None and self.insecure:
                hint = (
                    f"acr-ci sends credentials over plain HTTP only to loopback or to hosts "
                    f"listed insecure: only if you trust it, pass --insecure {netloc}"
                )
            else:
                hint = f"only for a registry you trust: pass --insecure {self.host}"
            raise UnauthorizedError(
                f"registry {self.host} names a token service that is not HTTPS ({origin(realm)})",
                hint,
            )
        service = challenge.params.get("service")
        all_scopes = list(dict.fromkeys([*scopes]))
        params: list[tuple[str, str]] = []
        if service:
            params.append(("service", service))
        params += [("scope", s) for s in all_scopes]
        headers: dict[str, str] = {}
        verify = scheme == "https" and not self.insecure
        if creds is not None and creds.is_identity_token:
            form = dict(params)
            form.update(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.secret,
                    "client_id": "acr-ci",
                }
            )
            body = "&".join(
                f"{k}={quote(v, safe='')}"
                for k, v in [*form.items(), *[("scope", s) for s in all_scopes[1:]]]
            )
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            response = self._send_with_retries(
                "POST", realm, headers=headers, data=body.encode(), verify=verify, what="token"
            )
        else:
            if creds is not None:
                headers["Authorization"] = creds.basic_header()
            response = self._send_with_retries(
                "GET", realm, headers=headers, params=params, verify=verify, what="token"
            )
        if response.status_code in (401, 403):
            who = (
                f"user {creds.username!r}"
                if creds and not creds.is_identity_token
                else "anonymous access"
            )
            raise UnauthorizedError(
                f"token service for {self.host} refused {who} (HTTP {response.status_code})",
                f"check the credentials for {self.host} (docker config, {_ENV_HINT})",
            )
        if response.status_code != 200:
            raise RegistryError(
                f"token service for {self.host} answered HTTP {response.status_code}",
                "check that the registry's token service is healthy",
            )
        try:
            doc = loads_bounded(response.content, what=f"token service for {self.host}: answer")
        except AcrError:
            doc = None
        value = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value:
            raise RegistryError(f"token service for {self.host} gave no token")
        lifetime = token_lifetime(doc.get("expires_in") if isinstance(doc, dict) else None)
        return _Token(value, time.monotonic() + lifetime)

    def _listed_insecure(self, netloc: str) -> bool:
        """Whether the user listed ``netloc`` (``host[:port]``) as insecure."""
        if netloc == self.host:
            return self.insecure
        return self._is_insecure(netloc) if self._is_insecure is not None else False

    def _invalidate(self, scopes: Sequence[str]) -> None:
        with self._lock:
            self._tokens.pop(frozenset(scopes), None)

    # -- requests --------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        """An absolute URL for an API path (``/v2/…``) or a ``Location`` (relative or absolute)."""
        return urljoin(self.base_url + "/", path_or_url)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        scopes: Sequence[str],
        what: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        data: bytes | Iterable[bytes] | None = None,
        replayable: bool = True,
        stream: bool = False,
        ok: Sequence[int] = (200,),
        allow: Sequence[int] = (),
        size: int = 0,
    ) -> requests.Response:
        """Send one API request with auth and retries; raise a typed error unless the status is
        in ``ok`` or ``allow``. ``what`` names the operation and object for error messages.
        ``size``: the bytes the request moves (a blob), which lengthens its deadline. A body
        that is not streamed is read whole, up to :data:`MAX_DOCUMENT_BYTES`; a streamed
        response must be closed by the caller (that also ends its deadline's watchdog)."""
        url = self.url(path_or_url)
        attempts = self.retry.attempts if replayable else 1
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            hdrs = dict(headers or {})
            # Never send our credentials to another host (absolute Location, redirects).
            auth = self._auth_header(scopes) if urlsplit(url).netloc == self.host else None
            if auth:
                hdrs["Authorization"] = auth
            response = self._send_with_retries(
                method,
                url,
                headers=hdrs,
                params=params,
                data=data,
                verify=not self.insecure,
                what=what,
                stream=stream,
                attempts=attempts,
                size=size,
            )
            if response.status_code == 401 and not refreshed and self._handle_401(response, scopes):
                refreshed = True
                response.close()
                if not replayable:
                    raise TransientError(f"{what}: the registry asked to authenticate again")
                continue
            if response.status_code in ok or response.status_code in allow:
                return response
            error = _status_error(response, what, self.host)
            response.close()
            raise error

    def _handle_401(self, response: requests.Response, scopes: Sequence[str]) -> bool:
        """Learn from a 401; True when trying again may help (new challenge or stale token)."""
        challenge = _pick_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            return False
        with self._lock:
            old = self._challenge
            self._challenge = challenge
        if old is None or old.scheme != challenge.scheme:
            return True
        if challenge.scheme == "bearer":
            self._invalidate(scopes)
            return True
        return False

    def _send_with_retries(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        what: str,
        verify: bool,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        data: bytes | Iterable[bytes] | None = None,
        stream: bool = False,
        attempts: int | None = None,
        timeout: tuple[float, float] | None = None,
        size: int = 0,
    ) -> requests.Response:
        policy = RetryPolicy(
            attempts=attempts or self.retry.attempts,
            base_delay=self.retry.base_delay,
            max_delay=self.retry.max_delay,
            max_retry_after=self.retry.max_retry_after,
            budget=self.retry.budget,
        )
        started = time.monotonic()
        deadline = min(self.deadline + max(0, size) / MIN_THROUGHPUT, MAX_DEADLINE)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send_once(
                    method,
                    url,
                    headers=headers,
                    params=params,
                    data=data,
                    verify=verify,
                    stream=stream,
                    timeout=timeout or (10.0, self.timeout),
                    deadline=deadline,
                    what=what,
                )
            except DeadlineExceeded as e:
                if not policy.allows(attempt, started, policy.delay(attempt)):
                    raise e from None
                self._sleep(policy.delay(attempt))
                continue
            except requests.RequestException as e:
                err = TransientError(f"{what}: {_describe_exception(e, self.host)}")
                if isinstance(e, requests.exceptions.SSLError):
                    # a certificate problem does not fix itself
                    raise TransientError(
                        err.message,
                        f"the registry's certificate is not trusted here: add its CA to the "
                        f"system store (or REQUESTS_CA_BUNDLE); only for a registry you trust, "
                        f"pass --insecure {self.host}",
                    ) from None
                if not isinstance(e, _RETRYABLE_EXCEPTIONS):
                    raise RegistryError(f"{what}: {_describe_exception(e, self.host)}") from None
                wait = policy.delay(attempt)
                if not policy.allows(attempt, started, wait):
                    raise err from None
                self._sleep(wait)
                continue
            if response.status_code in RETRYABLE_STATUS:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                wait = policy.delay(attempt, retry_after)
                if not policy.allows(attempt, started, wait):
                    return response
                response.close()
                self._sleep(wait)
                continue
            return response

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None,
        data: bytes | Iterable[bytes] | None,
        verify: bool,
        stream: bool,
        timeout: tuple[float, float],
        deadline: float,
        what: str,
    ) -> requests.Response:
        """One HTTP exchange under a watchdog: the whole of it (and, when ``stream``, the
        caller's reading of the body until it closes the response) within ``deadline``."""
        watch = _Watch(deadline)
        _CURRENT_WATCH.watch = watch
        keep = False
        try:
            try:
                response = self._session.request(
                    method,
                    url,
                    headers=dict(headers),
                    params=params,
                    data=data,
                    auth=_keep_headers,
                    verify=(_ca_bundle() or True) if verify else False,
                    proxies=requests.utils.get_environ_proxies(url),
                    stream=True,
                    timeout=timeout,
                    allow_redirects=True,
                )
            except requests.RequestException:
                if watch.fired:
                    raise self._deadline_error(what, deadline) from None
                raise
            watch.watch_response(response.raw)
            if stream:
                _close_with(response, watch)
                keep = True
                return response
            try:
                body = _read_body(response, MAX_DOCUMENT_BYTES, what)
            except requests.RequestException:  # retried like a failed request
                if watch.fired:
                    raise self._deadline_error(what, deadline) from None
                raise
            finally:
                response.close()
            if watch.fired:  # the shutdown may look like a normal end of the body
                raise self._deadline_error(what, deadline)
            response._content = body
            return response
        finally:
            _CURRENT_WATCH.watch = None
            if not keep:
                watch.cancel()

    def _deadline_error(self, what: str, deadline: float) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{what}: {self.host} did not finish the request within its {deadline:g} s deadline",
            "the registry or the network is too slow; try again later",
        )

    def deadline_passed(self, response: requests.Response) -> bool:
        """Whether the watchdog of a streamed ``response`` has cut it off."""
        watch = getattr(response, "_acr_watch", None)
        return isinstance(watch, _Watch) and watch.fired


_ENV_HINT = "ACR_CI_REGISTRY_USERNAME/ACR_CI_REGISTRY_PASSWORD"
_RETRYABLE_EXCEPTIONS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _close_with(response: requests.Response, watch: _Watch) -> None:
    """Make closing a streamed ``response`` also end its deadline's watchdog."""
    original = response.close

    def close() -> None:
        watch.cancel()
        original()

    response._acr_watch = watch  # type: ignore[attr-defined]
    response.close = close  # type: ignore[method-assign]


def read_capped(response: requests.Response, limit: int, what: str) -> bytes:
    """A response body, refusing more than ``limit`` bytes (:class:`UnsupportedError`);
    a broken read is a :class:`TransientError`."""
    try:
        return _read_body(response, limit, what)
    except requests.RequestException as e:
        raise TransientError(f"{what}: reading the answer failed ({type(e).__name__})") from None


def _read_body(response: requests.Response, limit: int, what: str) -> bytes:
    """:func:`read_capped`, letting a broken read's ``RequestException`` through."""
    length = response.headers.get("Content-Length", "")
    if length.isascii() and length.isdigit() and int(length) > limit:
        raise UnsupportedError(f"{what}: the answer is larger than {limit} bytes")
    parts: list[bytes] = []
    total = 0
    for chunk in response.iter_content(64 * 1024):
        total += len(chunk)
        if total > limit:
            raise UnsupportedError(f"{what}: the answer is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _keep_headers(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """An explicit no-op auth: stops requests from adding ``~/.netrc`` credentials on its own."""
    return request


def _pick_challenge(header: str) -> Challenge | None:
    challenges = parse_challenges(header)
    for scheme in ("bearer", "basic"):
        for c in challenges:
            if c.scheme == scheme:
                return c
    return None


def _describe_exception(e: requests.RequestException, host: str) -> str:
    """A one-line description without URLs' query strings (they may carry upload state)."""
    kind = type(e).__name__
    if isinstance(e, requests.exceptions.SSLError):
        return f"TLS error talking to {host} ({kind})"
    if isinstance(e, requests.exceptions.Timeout):
        return f"timed out talking to {host}"
    if isinstance(e, requests.exceptions.ConnectionError):
        return f"connection to {host} failed ({kind})"
    return f"request to {host} failed ({kind})"


def _status_error(response: requests.Response, what: str, host: str) -> RegistryError:
    status = response.status_code
    detail = registry_error_text(response)
    suffix = f" ({detail})" if detail else ""
    message = f"{what}: HTTP {status}{suffix}"
    if status == 401:
        return UnauthorizedError(
            message,
            f"check the credentials for {host} (docker config, {_ENV_HINT}, --password-stdin)",
        )
    if status == 403:
        return DeniedError(message, f"the credentials for {host} are not allowed to do this")
    if status == 404:
        return NotFoundError(message, "check the repository, tag or digest")
    if status == 405:
        return DeniedError(message, f"the registry {host} does not allow this operation")
    if status == 429:
        return RateLimitedError(
            message,
            "the registry kept rate-limiting; try again later or lower --jobs",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status in RETRYABLE_STATUS:
        return TransientError(
            message,
            "the registry kept failing; try again later",
            status=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status == 400 and "DIGEST_INVALID" in detail:
        from acr_ci.errors import DigestMismatchError

        return DigestMismatchError(message, "the content does not match its digest")
    return RegistryError(message)


def json_body(
    response: requests.Response, what: str, *, max_bytes: int = MAX_DOCUMENT_BYTES
) -> Any:
    """The response's JSON document, refused (:class:`UnsupportedError`) when it is not
    JSON, over ``max_bytes`` or nested too deeply (see :mod:`acr_ci.jsonload`)."""
    data = (
        response.content
        if getattr(response, "_content_consumed", False)
        else read_capped(response, max_bytes, what)
    )
    return loads_bounded(data, what=f"{what}: the registry's answer", max_bytes=max_bytes)
