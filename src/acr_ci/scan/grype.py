"""``engine: grype`` — ``grype registry:REF@DIGEST -o json`` on one manifest, by digest.

argv (fixed, secret-free)::

    grype registry:REF@DIGEST -o json --quiet

Credentials go in ``GRYPE_REGISTRY_AUTH_AUTHORITY`` (the registry host),
``GRYPE_REGISTRY_AUTH_USERNAME`` and ``GRYPE_REGISTRY_AUTH_PASSWORD`` (or
``GRYPE_REGISTRY_AUTH_TOKEN`` for an identity token). For loopback/insecure
registries ``GRYPE_REGISTRY_INSECURE_SKIP_TLS_VERIFY=true``, and
``GRYPE_REGISTRY_INSECURE_USE_HTTP=true`` when the registry speaks plain HTTP.
``GRYPE_CHECK_FOR_APP_UPDATE=false`` keeps it from calling home.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from acr_ci.scan.engine import DEFAULT_TIMEOUT, Invocation, ScanError, ScanTarget, run_json
from acr_ci.scan.findings import ReportError
from acr_ci.scan.reports import Report, ReportFormat, parse_report


@dataclass(frozen=True)
class GrypeEngine:
    """Runs the ``grype`` CLI."""

    name: str = "grype"
    program: str = "grype"
    """The executable (looked up on PATH)."""
    timeout: float = DEFAULT_TIMEOUT
    base_env: Mapping[str, str] | None = None
    """The environment to start from (None: this process's)."""

    def invocation(self, target: ScanTarget) -> Invocation:
        argv = (self.program, f"registry:{target.reference}", "-o", "json", "--quiet")
        env = {"GRYPE_CHECK_FOR_APP_UPDATE": "false"}
        if target.insecure:
            env["GRYPE_REGISTRY_INSECURE_SKIP_TLS_VERIFY"] = "true"
            if target.plain_http:
                env["GRYPE_REGISTRY_INSECURE_USE_HTTP"] = "true"
        secrets: tuple[str, ...] = ()
        creds = target.credentials
        if creds is not None:
            env["GRYPE_REGISTRY_AUTH_AUTHORITY"] = target.host
            if creds.is_identity_token:
                env["GRYPE_REGISTRY_AUTH_TOKEN"] = creds.secret
            else:
                env["GRYPE_REGISTRY_AUTH_USERNAME"] = creds.username
                env["GRYPE_REGISTRY_AUTH_PASSWORD"] = creds.secret
            secrets = (creds.secret,)
        return Invocation(argv, env, secrets)

    def scan(self, target: ScanTarget) -> Report:
        what = f"grype scan of {target.reference}"
        doc = run_json(
            self.invocation(target), what=what, timeout=self.timeout, base_env=self.base_env
        )
        try:
            return parse_report(doc, source=what, fmt=ReportFormat.GRYPE, platform=target.platform)
        except ReportError as e:
            raise ScanError(f"grype wrote a report acr-ci cannot read: {e.message}") from None
