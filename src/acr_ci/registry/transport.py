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
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
import requests.adapters

from acr_ci import __version__
from acr_ci.errors import (
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
from acr_ci.registry.auth import Challenge, Credentials, CredentialSource, parse_challenges
from acr_ci.text import clean_remote

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = f"acr-ci/{__version__}"
TOKEN_MIN_LIFETIME = 60
"""Token lifetime assumed when a token server gives none (the distribution spec's default)."""


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
        doc = json.loads(response.content[:65536] or b"{}")
    except ValueError:
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
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.host = host
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
        adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=max(4, pool_size))
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
        # netloc, not hostname: user info in front of a loopback name is not loopback
        if scheme not in ("https", "http") or (
            scheme == "http" and not (self.insecure or is_loopback(netloc))
        ):
            raise UnauthorizedError(
                f"registry {self.host} names a token service that is not HTTPS ({origin(realm)})",
                f"only for a registry you trust: pass --insecure {self.host}",
            )
        service = challenge.params.get("service")
        all_scopes = list(dict.fromkeys([*scopes]))
        creds = self.credentials
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
            doc = response.json()
            value = doc.get("token") or doc.get("access_token")
            lifetime = int(doc.get("expires_in") or TOKEN_MIN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            value, lifetime = None, 0
        if not isinstance(value, str) or not value:
            raise RegistryError(f"token service for {self.host} gave no token")
        return _Token(value, time.monotonic() + max(lifetime, TOKEN_MIN_LIFETIME))

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
    ) -> requests.Response:
        """Send one API request with auth and retries; raise a typed error unless the status is
        in ``ok`` or ``allow``. ``what`` names the operation and object for error messages."""
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
            )
            if response.status_code == 401 and not refreshed and self._handle_401(response, scopes):
                refreshed = True
                response.close()
                if not replayable:
                    raise TransientError(f"{what}: the registry asked to authenticate again")
                continue
            if response.status_code in ok or response.status_code in allow:
                return response
            raise _status_error(response, what, self.host)

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
    ) -> requests.Response:
        attempts = attempts or self.retry.attempts
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._session.request(
                    method,
                    url,
                    headers=dict(headers),
                    params=params,
                    data=data,
                    auth=_keep_headers,
                    verify=verify,
                    stream=stream,
                    timeout=timeout or (10.0, self.timeout),
                    allow_redirects=True,
                )
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
                if attempt >= attempts:
                    raise err from None
                self._sleep(self.retry.delay(attempt))
                continue
            if response.status_code in RETRYABLE_STATUS:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if attempt >= attempts:
                    return response
                response.close()
                self._sleep(self.retry.delay(attempt, retry_after))
                continue
            return response


_ENV_HINT = "ACR_CI_REGISTRY_USERNAME/ACR_CI_REGISTRY_PASSWORD"
_RETRYABLE_EXCEPTIONS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


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


def json_body(response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UnsupportedError(
            f"{what}: the registry answered something that is not JSON"
        ) from None
