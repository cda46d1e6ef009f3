"""Distribution triggers: one HTTP POST per pushed tag that a trigger selects.

Selection (``Trigger.on``): ``all`` fires for every pushed tag; ``regexp`` for the tags
that ``match`` matches as a WHOLE; ``tags`` for the tags listed. Each selected tag gets
its own POST, in the order the tags were pushed.

The body keeps the hosted registry console's webhook shape, so receivers written for it
keep working. Fields:

``push_data.digest``
    The image's digest (``sha256:…``): of the index for a multi-platform image.
``push_data.pushed_at``
    When the image was pushed, ``YYYY-MM-DD HH:MM:SS`` in the config's timezone (UTC+8
    unless ``timezone:`` says otherwise), as the hosted product sends it.
``push_data.tag``
    The one tag this request is about.
``repository.name``
    The last component of the repository path (``app`` for ``reg/team/app``).
``repository.namespace``
    The path before it (``team``; ``team/sub`` for deeper paths; ``""`` for none).
``repository.repo_full_name``
    ``namespace/name`` (the repository path without the registry host).
``repository.region``
    The region of a hosted-registry host (``cn-hangzhou`` for
    ``registry.cn-hangzhou.aliyuncs.com`` or ``x-registry.cn-hangzhou.cr.aliyuncs.com``),
    else ``""``: other registries have no region.
``repository.date_created``
    Registries do not tell when a repository was created; acr-ci sends the push time
    (same format), so parsers that expect a date keep working.
``repository.repo_authentication_type`` / ``repository.repo_origin_type``
    ``"NO_CERTIFIED"``: the hosted product's value for repositories that are not
    certified images, which is what any repository acr-ci pushes to is.
``repository.repo_type``
    ``"PRIVATE"``: acr-ci cannot tell whether a repository is public; private is the safe
    reading.
``acr_ci`` (an addition; receivers that do not know it ignore it)
    ``{"registry": host, "image": "host/ns/repo", "reference": "host/ns/repo:tag@digest",
    "trigger": name}``: where to pull exactly the pushed image from, for receivers that
    serve more than one registry.

Headers: ``Content-Type: application/json``, ``User-Agent: acr-ci/VERSION`` and, when the
trigger names ``secret_env``, ``X-Acr-Ci-Signature: sha256=HEX`` — the HMAC-SHA256 of the
exact body bytes keyed with that variable's value. A trigger whose ``secret_env`` is unset
or empty fails without sending anything (an unsigned request would be refused anyway).

Delivery: ``timeout`` (default 10 s) is the deadline of each whole request — connecting,
sending and reading the answer (its status, headers and up to :data:`MAX_ANSWER` bytes of
body) — not of one socket read: a receiver that drips its answer is cut off when it
passes. Connection errors, timeouts and 5xx answers are retried up to :data:`MAX_RETRIES`
times with exponential backoff, so one delivery takes at most
``(1 + MAX_RETRIES) × timeout`` plus the backoff (7 s); 4xx answers are final; redirects are
not followed (a redirect could send the body elsewhere) and count as failures. 2xx is
success. Nothing of the answer's body is quoted: reasons name the HTTP status only.

URLs often carry tokens in their path or query: logs, results and error text show only
``scheme://host[:port]`` (:func:`origin`). Plain ``http://`` is refused unless the host is
loopback or the trigger says ``allow_http: true``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from typing import TYPE_CHECKING, Any

from acr_ci import __version__
from acr_ci.config.model import DEFAULT_TIMEZONE, Config, Trigger, TriggerOn
from acr_ci.errors import EXPECTED_ERRORS, UsageError
from acr_ci.errors import reason as error_reason
from acr_ci.hosts import UrlFault, origin, url_problem
from acr_ci.models import Status

if TYPE_CHECKING:
    import requests

    from acr_ci.registry.client import Client

log = logging.getLogger(__name__)


class _HideRequestTargets(logging.Filter):
    """Cuts request targets out of urllib3's debug lines (``"POST /path?token=… HTTP/1.1"``):
    trigger URLs carry tokens in their path or query, and urllib3 logs them verbatim."""

    _TARGET = re.compile(r'"([A-Z]+) \S+ (HTTP/[0-9.]+)"')

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # catch-all: a log filter must survive any record; drop it, never leak
            return False
        hidden = self._TARGET.sub(r'"\1 (path hidden) \2"', text)
        if hidden != text:
            record.msg, record.args = hidden, None
        return True


def _guard_urllib3_logs() -> None:
    target = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _HideRequestTargets) for f in target.filters):
        target.addFilter(_HideRequestTargets())


_guard_urllib3_logs()

MAX_RETRIES = 3
"""Retries after the first attempt, on connection errors, timeouts and 5xx."""
BACKOFF = 1.0
"""Seconds before the first retry; doubled before each next one (1, 2, 4)."""
SIGNATURE_HEADER = "X-Acr-Ci-Signature"
USER_AGENT = f"acr-ci/{__version__}"
PUSHED_AT_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_PARALLEL = 4
MAX_ANSWER = 64 * 1024
"""Bytes of an answer's body read (and thrown away) before the connection is closed."""
"""Triggers delivered at the same time (each trigger's tags go one after another)."""

_REGION_RE = re.compile(
    r"(?:[a-z0-9-]*-)?registry(?:-vpc|-intl|-intl-vpc|-internal)?\."
    r"(?P<region>[a-z]{2}-[a-z0-9-]+)\.(?:cr\.)?aliyuncs\.com(?::\d+)?",
    re.ASCII,
)


# -- values ------------------------------------------------------------------------


@dataclass(frozen=True)
class PushedImage:
    """What a trigger announces: an image in a repository, by digest, under some tags."""

    repository: str
    """``registry/namespace/repo``, no tag."""
    digest: str
    """The pushed digest (``sha256:…``)."""
    tags: tuple[str, ...]
    """The tags that now point at ``digest``, in push order."""
    pushed_at: datetime
    """When the push finished (timezone-aware)."""


@dataclass(frozen=True)
class Delivery:
    """One POST (with its retries) for one tag."""

    tag: str
    """The tag the request announced."""
    status: Status
    """``succeeded`` (2xx) or ``failed``."""
    http_status: int | None
    """The last HTTP status received; ``None`` when no answer came (or nothing was sent)."""
    attempts: int
    """Requests sent (1 plus retries; 0 when the request was refused before sending)."""
    signed: bool
    """Whether the request carried an HMAC signature."""
    reason: str | None = None
    """Why it failed, never quoting the URL beyond scheme and host."""
    duration: float = 0.0
    """Seconds spent, retries and backoff included."""

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "status": str(self.status),
            "http_status": self.http_status,
            "attempts": self.attempts,
            "signed": self.signed,
            "reason": self.reason,
            "duration": round(self.duration, 3),
        }


@dataclass(frozen=True)
class TriggerResult:
    """What happened for one trigger: one delivery per selected tag."""

    name: str
    """The trigger's name from the config."""
    target: str
    """``scheme://host[:port]`` of its URL: never the path or query (they may hold tokens)."""
    status: Status
    """``succeeded`` when every delivery did, ``failed`` when one did not, ``skipped`` when
    no pushed tag was selected."""
    started: datetime
    """When the first request was prepared (UTC)."""
    finished: datetime
    """When the last one ended (UTC)."""
    deliveries: tuple[Delivery, ...] = ()
    """One per selected tag, in tag order."""
    reason: str | None = None
    """Why it failed or was skipped, in one line."""

    @property
    def http_status(self) -> int | None:
        """The HTTP status of the last delivery, if any answer came."""
        return self.deliveries[-1].http_status if self.deliveries else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "status": str(self.status),
            "http_status": self.http_status,
            "reason": self.reason,
            "deliveries": [d.to_json() for d in self.deliveries],
        }


# -- pure helpers --------------------------------------------------------------------


def check_url(trigger: Trigger) -> None:
    """Raise :class:`UsageError` unless ``trigger.url`` may be called.

    The policy is :func:`acr_ci.hosts.url_problem`, the one the config check applies:
    https is always fine; http only for a loopback host or with ``allow_http``. The
    message names the trigger and the URL's origin, never its path or query.
    """
    problem = url_problem(trigger.url, allow_http=trigger.allow_http)
    if problem is None:
        return
    where = origin(trigger.url)
    if problem.fault is UrlFault.CLEARTEXT:
        raise UsageError(
            f"trigger {trigger.name!r}: plain http to {where} is not allowed",
            "use https, or set allow_http: true for a trusted network",
        )
    raise UsageError(
        f"trigger {trigger.name!r}: the URL is not an http(s) URL ({where})",
        f"the URL {problem.message}; write https://host/path",
    )


def selected_tags(trigger: Trigger, tags: Iterable[str]) -> tuple[str, ...]:
    """The tags (in the given order, without repeats) that ``trigger`` fires for."""
    out: list[str] = []
    for tag in tags:
        if tag in out:
            continue
        if trigger.on is TriggerOn.ALL:
            hit = True
        elif trigger.on is TriggerOn.REGEXP:
            hit = trigger.match is not None and trigger.match.fullmatch(tag) is not None
        elif trigger.on is TriggerOn.TAGS:
            hit = tag in trigger.tags
        else:  # pragma: no cover - exhaustive
            hit = False
        if hit:
            out.append(tag)
    return tuple(out)


def region_of(registry: str) -> str:
    """The hosted registry's region named in ``registry`` (host[:port]), else ``""``."""
    m = _REGION_RE.fullmatch(registry.lower())
    return m.group("region") if m else ""


def payload(
    repository: str,
    *,
    tag: str,
    digest: str,
    pushed_at: datetime,
    tz: timezone = DEFAULT_TIMEZONE,
    trigger: str | None = None,
) -> dict[str, Any]:
    """The webhook body for one tag (see the module docstring for each field)."""
    from acr_ci.registry.reference import Reference

    ref = Reference.parse(repository, what="image")
    namespace, _, name = ref.repository.rpartition("/")
    when = pushed_at.astimezone(tz).strftime(PUSHED_AT_FORMAT)
    return {
        "push_data": {"digest": digest, "pushed_at": when, "tag": tag},
        "repository": {
            "date_created": when,
            "name": name,
            "namespace": namespace,
            "region": region_of(ref.registry),
            "repo_authentication_type": "NO_CERTIFIED",
            "repo_full_name": ref.repository,
            "repo_origin_type": "NO_CERTIFIED",
            "repo_type": "PRIVATE",
        },
        "acr_ci": {
            "registry": ref.registry,
            "image": ref.name,
            "reference": f"{ref.name}:{tag}@{digest}",
            "trigger": trigger,
        },
    }


def encode(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, key-sorted UTF-8 JSON."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(body: bytes, secret: str) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of ``body``."""
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


# -- delivery ------------------------------------------------------------------------


def _describe(e: Exception, timeout: float) -> str:
    """A one-line reason for a requests exception, never quoting its text (it holds the URL)."""
    import requests

    text = str(e).lower()
    if isinstance(e, requests.exceptions.ConnectTimeout):
        return f"could not connect within {timeout:g}s"
    if isinstance(e, requests.exceptions.Timeout):
        return f"no answer within {timeout:g}s"
    if isinstance(e, requests.exceptions.SSLError):
        return "TLS handshake or certificate verification failed"
    if isinstance(e, requests.exceptions.ConnectionError):
        if "refused" in text:
            return "connection refused"
        if (
            "name or service not known" in text
            or "nodename nor servname" in text
            or ("failed to resolve" in text)
        ):
            return "host name not found"
        if "reset" in text or "aborted" in text or "remotedisconnected" in text:
            return "connection closed by the server"
        return "connection failed"
    return f"request failed ({type(e).__name__})"


def _post(session: requests.Session, trigger: Trigger, body: bytes, headers: dict[str, str]) -> int:
    """One POST under the trigger's deadline; its HTTP status once the whole answer came.

    Raises requests' exceptions, or :class:`~acr_ci.httpdeadline.DeadlinePassed` when the
    deadline cut the request off (whatever error the cut caused, or an answer that ended
    only because of it)."""
    import requests

    from acr_ci.httpdeadline import Deadline, DeadlinePassed

    timeout = trigger.timeout
    with Deadline(timeout) as deadline:
        try:
            response = session.post(
                trigger.url,
                data=body,
                headers=headers,
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
            )
            try:
                read = 0
                for chunk in response.iter_content(8192):
                    read += len(chunk)
                    if read >= MAX_ANSWER:
                        break
            finally:
                response.close()
        except (requests.RequestException, OSError):  # requests' own are OSErrors too
            if deadline.expired:
                raise DeadlinePassed from None
            raise
    if deadline.expired:
        raise DeadlinePassed
    return int(response.status_code)


class Sender:
    """Delivers trigger requests: headers, signature, timeout, retries with backoff.

    ``sleep`` and ``backoff`` are parameters so tests can count retries without waiting.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        backoff: float = BACKOFF,
        max_retries: int = MAX_RETRIES,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.env = os.environ if env is None else env
        self.backoff = backoff
        self.max_retries = max_retries
        self.sleep = sleep
        self._session = session

    def deliver(
        self, trigger: Trigger, body: bytes, tag: str, session: requests.Session | None = None
    ) -> Delivery:
        """POST ``body`` for ``tag`` to ``trigger.url``; never raises for network failures."""
        import requests

        from acr_ci.httpdeadline import DeadlinePassed, new_session

        start = time.monotonic()
        where = origin(trigger.url)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        signed = False
        if trigger.secret_env:
            secret = self.env.get(trigger.secret_env, "")
            if not secret:
                return Delivery(
                    tag=tag,
                    status=Status.FAILED,
                    http_status=None,
                    attempts=0,
                    signed=False,
                    reason=f"environment variable {trigger.secret_env} (secret_env) is not set: "
                    "nothing was sent",
                )
            headers[SIGNATURE_HEADER] = sign(body, secret)
            signed = True
        session = session or self._session or new_session()
        attempts = 0
        http_status: int | None = None
        reason: str | None = None
        while True:
            attempts += 1
            retryable = False
            try:
                http_status = _post(session, trigger, body, headers)
            except DeadlinePassed:
                http_status = None
                reason = (
                    f"no answer within {trigger.timeout:g}s: the deadline for the whole "
                    "request (connect, send, answer) passed"
                )
                retryable = True
            except requests.RequestException as e:
                http_status = None
                reason = _describe(e, trigger.timeout)
                retryable = not isinstance(
                    e, requests.exceptions.SSLError | requests.exceptions.InvalidURL
                )
            else:
                if 200 <= http_status < 300:
                    log.info(
                        "trigger %s: POST %s tag %s -> HTTP %d",
                        trigger.name,
                        where,
                        tag,
                        http_status,
                    )
                    return Delivery(
                        tag=tag,
                        status=Status.SUCCEEDED,
                        http_status=http_status,
                        attempts=attempts,
                        signed=signed,
                        duration=time.monotonic() - start,
                    )
                if 300 <= http_status < 400:
                    reason = f"HTTP {http_status}: redirects are not followed"
                elif http_status >= 500:
                    reason = f"HTTP {http_status} from the receiver"
                    retryable = True
                else:
                    reason = f"HTTP {http_status} from the receiver (not retried)"
            if not retryable or attempts > self.max_retries:
                break
            delay = self.backoff * (2 ** (attempts - 1))
            log.info(
                "trigger %s: POST %s tag %s failed (%s); retry %d/%d in %.1fs",
                trigger.name,
                where,
                tag,
                reason,
                attempts,
                self.max_retries,
                delay,
            )
            self.sleep(delay)
        if attempts > 1:
            reason = f"{reason} (after {attempts} attempts)"
        log.info("trigger %s: POST %s tag %s failed: %s", trigger.name, where, tag, reason)
        return Delivery(
            tag=tag,
            status=Status.FAILED,
            http_status=http_status,
            attempts=attempts,
            signed=signed,
            reason=reason,
            duration=time.monotonic() - start,
        )

    def run(
        self, trigger: Trigger, image: PushedImage, *, tz: timezone = DEFAULT_TIMEZONE
    ) -> TriggerResult:
        """All deliveries of one trigger for ``image``; never raises (a failure is a result)."""
        started = datetime.now(UTC)
        try:
            return self._run(trigger, image, tz, started)
        except EXPECTED_ERRORS as e:
            log.debug("trigger %s failed: %s", trigger.name, type(e).__name__)
            reason = error_reason(e)
            return TriggerResult(
                name=trigger.name,
                target=origin(trigger.url),
                status=Status.FAILED,
                started=started,
                finished=datetime.now(UTC),
                reason=reason,
            )

    def _run(
        self, trigger: Trigger, image: PushedImage, tz: timezone, started: datetime
    ) -> TriggerResult:
        where = origin(trigger.url)
        tags = selected_tags(trigger, image.tags)
        if not tags:
            return TriggerResult(
                name=trigger.name,
                target=where,
                status=Status.SKIPPED,
                started=started,
                finished=datetime.now(UTC),
                reason=f"no pushed tag selected (on: {trigger.on})",
            )
        try:
            check_url(trigger)
        except UsageError as e:
            return TriggerResult(
                name=trigger.name,
                target=where,
                status=Status.FAILED,
                started=started,
                finished=datetime.now(UTC),
                reason=e.message,
            )
        from acr_ci.httpdeadline import new_session

        deliveries = []
        session = self._session or new_session()  # one per trigger: sessions are not shared
        for tag in tags:
            body = encode(
                payload(
                    image.repository,
                    tag=tag,
                    digest=image.digest,
                    pushed_at=image.pushed_at,
                    tz=tz,
                    trigger=trigger.name,
                )
            )
            deliveries.append(self.deliver(trigger, body, tag, session))
        if session is not self._session:
            session.close()
        failed = [d for d in deliveries if d.status is not Status.SUCCEEDED]
        return TriggerResult(
            name=trigger.name,
            target=where,
            status=Status.FAILED if failed else Status.SUCCEEDED,
            started=started,
            finished=datetime.now(UTC),
            deliveries=tuple(deliveries),
            reason=(
                f"{len(failed)} of {len(deliveries)} deliveries failed: {failed[0].reason}"
                if failed
                else None
            ),
        )


def fire(
    triggers: Sequence[Trigger],
    image: PushedImage,
    *,
    tz: timezone = DEFAULT_TIMEZONE,
    sender: Sender | None = None,
) -> tuple[TriggerResult, ...]:
    """Run every trigger for ``image`` (up to :data:`MAX_PARALLEL` at once); one result each,
    in config order. A failing trigger never stops the others."""
    if not triggers:
        return ()
    sender = sender or Sender()
    if len(triggers) == 1:
        return (sender.run(triggers[0], image, tz=tz),)
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(triggers))) as pool:
        futures = [pool.submit(sender.run, t, image, tz=tz) for t in triggers]
        return tuple(f.result() for f in futures)


def announce(
    triggers: Sequence[Trigger],
    image: str,
    *,
    lookup: Callable[[str], str],
    tz: timezone = DEFAULT_TIMEZONE,
    now: datetime | None = None,
    sender: Sender | None = None,
) -> tuple[TriggerResult, ...]:
    """``acr-ci trigger IMAGE:TAG[@DIGEST]``: fire the triggers for one tag.

    ``lookup(IMAGE:TAG)`` returns the tag's digest (the registry is asked only when the
    reference carries no digest). The push time announced is ``now`` (default: now).
    """
    from acr_ci.registry.reference import Reference

    ref = Reference.parse(image, what="image to announce")
    if not ref.tag:
        raise UsageError(
            f"{image!r} names no tag",
            "write IMAGE:TAG (or IMAGE:TAG@sha256:… to skip the registry lookup)",
        )
    digest = ref.digest or lookup(str(ref.with_digest(None)))
    pushed = PushedImage(
        repository=ref.name, digest=digest, tags=(ref.tag,), pushed_at=now or datetime.now(UTC)
    )
    return fire(triggers, pushed, tz=tz, sender=sender)


def announce_tag(
    config: Config, image: str, *, client: Client, sender: Sender | None = None
) -> tuple[TriggerResult, ...]:
    """``acr-ci trigger IMAGE:TAG[@DIGEST]`` over the config's triggers."""
    from acr_ci.errors import NotFoundError
    from acr_ci.registry.reference import Reference

    if not config.triggers:
        raise UsageError(
            f"{config.path} has no triggers: nothing to call",
            "add a triggers: section (name, url, on) to the config",
        )

    def lookup(text: str) -> str:
        ref = Reference.parse(text, what="image")
        digest = client.tag_digest(ref)
        if digest is None:
            raise NotFoundError(f"{ref} does not exist", "push it first, or check the tag")
        return digest

    return announce(config.triggers, image, lookup=lookup, tz=config.timezone, sender=sender)


__all__ = [
    "BACKOFF",
    "MAX_RETRIES",
    "SIGNATURE_HEADER",
    "USER_AGENT",
    "Delivery",
    "PushedImage",
    "Sender",
    "TriggerResult",
    "announce",
    "announce_tag",
    "check_url",
    "encode",
    "fire",
    "origin",
    "payload",
    "region_of",
    "selected_tags",
    "sign",
]
