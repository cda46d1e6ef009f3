"""Sigstore keyless signing: a CI's OIDC identity → a Fulcio certificate → a Sigstore bundle.

The bundle (v0.3 JSON) carries the short-lived certificate, the signature, the Rekor entry
and any RFC 3161 timestamps; verifying it needs the trust root of the Sigstore instance
that issued it and the identity (certificate SAN) and OIDC issuer expected.

* :func:`sign_keyless` signs raw bytes (a message signature, e.g. cosign's simple-signing
  JSON); :func:`sign_statement_keyless` signs an in-toto statement in a DSSE envelope.
* :func:`verify_keyless` checks a bundle against the payload, identity and issuer.
* :func:`ci_identity_token` finds the CI's OIDC token (GitHub Actions' token endpoint, or
  ``SIGSTORE_ID_TOKEN`` for GitLab ``id_tokens:`` and anything else).

``trust_config`` is a Sigstore client trust config file (trusted root + signing config:
which Fulcio, Rekor and timestamp authority to use and which keys to trust); ``None``
means the public Sigstore instance (its trust root fetched through TUF). The ``sigstore``
package is imported only inside these functions. Tokens never reach a message.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from acr_ci.errors import AcrError
from acr_ci.fileio import read_bounded
from acr_ci.jsonload import loads_bounded
from acr_ci.text import clean_remote

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
"""The artifact type of a Sigstore bundle stored as an OCI referrer."""
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""The DSSE payload type of an in-toto statement."""
AUDIENCE = "sigstore"
"""The OIDC audience Fulcio accepts."""
MAX_TRUST_CONFIG = 1024 * 1024
MAX_BUNDLE = 4 * 1024 * 1024
MAX_TOKEN_ANSWER = 64 * 1024
TOKEN_TIMEOUT = 30.0
OIDC_SETUP_HINT = (
    "GitHub: give the workflow `permissions: id-token: write`; GitLab: add an `id_tokens:` "
    "entry SIGSTORE_ID_TOKEN with `aud: sigstore`; elsewhere set SIGSTORE_ID_TOKEN"
)


class KeylessError(AcrError):
    """Keyless signing or verification failed (no token, a refused token, a Sigstore service
    that failed, a bundle that does not verify). Exit 1."""


def _trust(trust_config: Path | None, *, signing: bool) -> ClientTrustConfig:
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig

    if trust_config is None:
        try:
            return ClientTrustConfig.production()
        except SigstoreError as e:
            raise KeylessError(
                f"cannot load the public Sigstore trust root: {clean_remote(str(e))}",
                "pass a client trust config file for a private Sigstore instance",
            ) from None
    what = "Sigstore trust config"
    try:
        raw = read_bounded(trust_config, limit=MAX_TRUST_CONFIG, what=what, error=KeylessError)
    except FileNotFoundError:
        raise KeylessError(f"{what} {trust_config} does not exist") from None
    loads_bounded(raw, what=f"{what} {trust_config}", error=KeylessError)
    try:
        config = ClientTrustConfig.from_json(raw.decode("utf-8"))
        config.trusted_root  # noqa: B018 (validates it)
        if signing:  # a verifier needs no services
            config.signing_config  # noqa: B018 (validates the services it names)
    except (SigstoreError, ValueError, TypeError, KeyError) as e:  # pydantic's are ValueErrors
        raise KeylessError(
            f"{what} {trust_config} is not a usable client trust config: "
            f"{clean_remote(str(e) or type(e).__name__)}",
            "expected media type application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        ) from None
    return config


def _failure(doing: str, e: Exception) -> KeylessError:
    """One line for an exception sigstore (or requests below it) raised."""
    import requests

    if isinstance(e, requests.RequestException) and e.request is not None and e.request.url:
        kind = "did not answer in time" if isinstance(e, requests.Timeout) else "failed"
        if isinstance(e, requests.ConnectionError) and not isinstance(e, requests.Timeout):
            kind = "cannot connect"
        url = urlsplit(e.request.url)
        return KeylessError(
            f"{doing}: {kind}: {clean_remote(f'{url.scheme}://{url.netloc}{url.path}')}",
            "check the Sigstore service URLs of the trust config's signing config",
        )
    text = str(e) or type(e).__name__
    return KeylessError(f"{doing}: {clean_remote(text)}")


def _sign(payload: bytes, token: str, trust_config: Path | None, *, dsse: bool) -> bytes:
    import requests
    from sigstore._internal.fulcio.client import ExpiredCertificate, FulcioClientError
    from sigstore._internal.rekor import RekorClientError
    from sigstore.dsse import Statement
    from sigstore.errors import Error as SigstoreError
    from sigstore.oidc import IdentityError, IdentityToken
    from sigstore.sign import SigningContext

    config = _trust(trust_config, signing=True)
    try:
        identity = IdentityToken(token.strip())
    except IdentityError as e:
        raise KeylessError(f"the OIDC identity token is unusable: {e}", OIDC_SETUP_HINT) from None
    statement = None
    if dsse:
        try:
            statement = Statement(payload)
        except SigstoreError:
            raise KeylessError(
                "the payload to sign is not an in-toto statement (in-toto v1 JSON)"
            ) from None
    try:
        context = SigningContext.from_trust_config(config)
        # cache=True (the default) is not an optimisation: with cache=False, sigstore 4.5.1
        # makes a new ephemeral key on each use, so the signature is not by the certified key.
        with context.signer(identity) as signer:
            bundle = (
                signer.sign_dsse(statement)
                if statement is not None
                else signer.sign_artifact(payload)
            )
    except (
        SigstoreError,
        FulcioClientError,  # sigstore 4.5's own service errors are not sigstore Errors
        RekorClientError,
        ExpiredCertificate,
        requests.RequestException,
        ValueError,
    ) as e:
        raise _failure("keyless signing failed", e) from None
    return bundle.to_json().encode("utf-8")


def sign_keyless(payload: bytes, token: str, trust_config: Path | None = None) -> bytes:
    """Sign ``payload`` (raw bytes) with a Fulcio certificate for ``token``'s identity.

    Returns the Sigstore bundle (v0.3 JSON, a message signature over ``payload``'s SHA-256),
    logged in Rekor and timestamped by every authority the trust config's signing config
    selects. Raises :class:`KeylessError`.
    """
    return _sign(payload, token, trust_config, dsse=False)


def sign_statement_keyless(statement: bytes, token: str, trust_config: Path | None = None) -> bytes:
    """Sign an in-toto statement (JSON bytes, kept as they are) in a DSSE envelope.

    Returns the Sigstore bundle (v0.3 JSON) whose content is the envelope. Raises
    :class:`KeylessError`, also when ``statement`` is not an in-toto v1 statement.
    """
    return _sign(statement, token, trust_config, dsse=True)


def verify_keyless(
    bundle: bytes,
    payload: bytes,
    identity: str,
    issuer: str,
    trust_config: Path | None = None,
) -> None:
    """Check that ``bundle`` signs ``payload`` for ``identity`` issued by ``issuer``.

    ``identity`` is the certificate's SAN exactly (a URI or an e-mail), ``issuer`` the
    OIDC issuer URL in its Fulcio extension. For a DSSE bundle, ``payload`` is the
    statement, which must equal the envelope's (and its type be in-toto). Checks the chain
    to the trusted Fulcio root, the SCT, the Rekor entry and the timestamps against the
    trust config. Returns nothing; raises :class:`KeylessError` with the reason.
    """
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    config = _trust(trust_config, signing=False)
    if len(bundle) > MAX_BUNDLE:
        raise KeylessError(f"the Sigstore bundle is larger than {MAX_BUNDLE} bytes")
    doc = loads_bounded(bundle, what="the Sigstore bundle", error=KeylessError)
    if not isinstance(doc, dict):
        raise KeylessError("the Sigstore bundle is not a JSON object")
    try:
        parsed = Bundle.from_json(bundle)
    except (SigstoreError, ValueError, TypeError, KeyError) as e:  # InvalidBundle, pydantic
        raise _failure("the Sigstore bundle is invalid", e) from None
    verifier = Verifier(trusted_root=config.trusted_root)
    policy = Identity(identity=identity, issuer=issuer)
    try:
        if "dsseEnvelope" in doc:
            payload_type, signed = verifier.verify_dsse(parsed, policy)
            if payload_type != IN_TOTO_PAYLOAD_TYPE:
                raise KeylessError(
                    f"the DSSE envelope's payload type is {clean_remote(payload_type)!r}, "
                    f"not {IN_TOTO_PAYLOAD_TYPE}"
                )
            if signed != payload:
                raise KeylessError("the DSSE envelope signs a different statement")
        else:
            verifier.verify_artifact(payload, parsed, policy)
    except SigstoreError as e:
        raise _failure("the Sigstore bundle does not verify", e) from None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _github_token(url: str, bearer: str) -> str:
    import requests

    from acr_ci.httpdeadline import Deadline, DeadlinePassed, new_session

    parts = urlsplit(url)
    host = parts.hostname or ""
    if not (parts.scheme == "https" or (parts.scheme == "http" and _loopback(host))):
        raise KeylessError(
            "ACTIONS_ID_TOKEN_REQUEST_URL is not an https URL",
            "it is set by the GitHub runner; do not override it",
        )
    where = f"GitHub's OIDC token endpoint ({clean_remote(host)})"
    query = f"{parts.query}&audience={AUDIENCE}" if parts.query else f"audience={AUDIENCE}"
    request_url = parts._replace(query=query, fragment="").geturl()
    headers = {"Authorization": f"bearer {bearer}", "Accept": "application/json"}
    session = new_session()
    body = b""
    with Deadline(TOKEN_TIMEOUT) as deadline:
        try:
            response = session.get(
                request_url,
                headers=headers,
                timeout=(TOKEN_TIMEOUT, TOKEN_TIMEOUT),
                allow_redirects=False,
                stream=True,
            )
            try:
                status = response.status_code
                for chunk in response.iter_content(8192):
                    body += chunk
                    if len(body) > MAX_TOKEN_ANSWER:
                        raise KeylessError(f"{where} answered more than {MAX_TOKEN_ANSWER} bytes")
            finally:
                response.close()
        except (requests.RequestException, OSError, DeadlinePassed) as e:
            if deadline.expired:
                raise KeylessError(f"{where} did not answer within {TOKEN_TIMEOUT:g}s") from None
            raise KeylessError(f"cannot reach {where}: {type(e).__name__}") from None
        finally:
            session.close()
    if deadline.expired:
        raise KeylessError(f"{where} did not answer within {TOKEN_TIMEOUT:g}s")
    if status != 200:
        raise KeylessError(f"{where} answered HTTP {status}", OIDC_SETUP_HINT)
    doc = loads_bounded(body, what=f"the answer of {where}", error=KeylessError)
    value = doc.get("value") if isinstance(doc, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise KeylessError(f"the answer of {where} has no token in `value`")
    return value.strip()


def ci_identity_token(env: Mapping[str, str]) -> str | None:
    """The CI's OIDC identity token for Sigstore, or ``None`` when the CI offers none.

    ``SIGSTORE_ID_TOKEN`` wins when set (GitLab's ``id_tokens:``, or any CI); otherwise, on
    GitHub Actions with ``id-token: write``, the token is requested from
    ``ACTIONS_ID_TOKEN_REQUEST_URL`` with audience ``sigstore`` and the bearer
    ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``. Raises :class:`KeylessError` when that request
    fails. See :data:`OIDC_SETUP_HINT` for what a pipeline must set up.
    """
    explicit = env.get("SIGSTORE_ID_TOKEN", "").strip()
    if explicit:
        return explicit
    url = env.get("ACTIONS_ID_TOKEN_REQUEST_URL", "").strip()
    bearer = env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "").strip()
    if url and bearer:
        return _github_token(url, bearer)
    return None


__all__ = [
    "AUDIENCE",
    "BUNDLE_MEDIA_TYPE",
    "IN_TOTO_PAYLOAD_TYPE",
    "OIDC_SETUP_HINT",
    "KeylessError",
    "ci_identity_token",
    "sign_keyless",
    "sign_statement_keyless",
    "verify_keyless",
]
