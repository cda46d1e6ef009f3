"""``engine: trivy`` — ``trivy image --format json`` on one manifest, by digest.

The argv is fixed and secret-free::

    trivy image --format json --scanners vuln --image-src remote --quiet [--insecure] REF@DIGEST

``--image-src remote`` reads straight from the registry (never a local Docker
daemon's image of the same name). ``--insecure`` only for loopback or
``--insecure`` registries. Credentials go in ``TRIVY_USERNAME`` /
``TRIVY_PASSWORD`` (``TRIVY_REGISTRY_TOKEN`` for an identity token); without
credentials Trivy falls back to the docker config file on its own.
``TRIVY_SKIP_VERSION_CHECK`` and ``TRIVY_DISABLE_TELEMETRY`` are set (env, so
older Trivy versions that lack the flags ignore them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from acr_ci.scan.engine import DEFAULT_TIMEOUT, Invocation, ScanError, ScanTarget, run_json
from acr_ci.scan.findings import ReportError
from acr_ci.scan.reports import Report, ReportFormat, parse_report


@dataclass(frozen=True)
class TrivyEngine:
    """Runs the ``trivy`` CLI."""

    name: str = "trivy"
    program: str = "trivy"
    """The executable (looked up on PATH)."""
    scanners: tuple[str, ...] = ("vuln",)
    """Trivy's ``--scanners`` (``secret`` runs offline: used by tests)."""
    timeout: float = DEFAULT_TIMEOUT
    base_env: Mapping[str, str] | None = None
    """The environment to start from (None: this process's)."""

    def invocation(self, target: ScanTarget) -> Invocation:
        argv = [
            self.program,
            "image",
            "--format",
            "json",
            "--scanners",
            ",".join(self.scanners),
            "--image-src",
            "remote",
            "--quiet",
        ]
        if target.insecure:
            argv.append("--insecure")
        argv.append(target.reference)
        env = {"TRIVY_SKIP_VERSION_CHECK": "true", "TRIVY_DISABLE_TELEMETRY": "true"}
        secrets: tuple[str, ...] = ()
        creds = target.credentials
        if creds is not None:
            if creds.is_identity_token:
                env["TRIVY_REGISTRY_TOKEN"] = creds.secret
            else:
                env["TRIVY_USERNAME"] = creds.username
                env["TRIVY_PASSWORD"] = creds.secret
            secrets = (creds.secret,)
        return Invocation(tuple(argv), env, secrets)

    def scan(self, target: ScanTarget) -> Report:
        what = f"trivy scan of {target.reference}"
        doc = run_json(
            self.invocation(target), what=what, timeout=self.timeout, base_env=self.base_env
        )
        try:
            return parse_report(doc, source=what, fmt=ReportFormat.TRIVY, platform=target.platform)
        except ReportError as e:
            raise ScanError(f"trivy wrote a report acr-ci cannot read: {e.message}") from None
