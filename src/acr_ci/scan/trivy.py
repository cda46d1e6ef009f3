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

Everything else Trivy reads from the inherited environment itself: its DB mirrors
(``TRIVY_DB_REPOSITORY``, ``TRIVY_JAVA_DB_REPOSITORY``), its cache (``TRIVY_CACHE_DIR``)
and offline runs on a pre-seeded cache (``TRIVY_SKIP_DB_UPDATE``,
``TRIVY_SKIP_JAVA_DB_UPDATE``). Its two DB failures (no DB while updates are skipped, the DB
download failing) become one-line errors that name those variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from acr_ci.scan.engine import DEFAULT_TIMEOUT, Invocation, ScanError, ScanTarget, run_json
from acr_ci.scan.findings import ReportError
from acr_ci.scan.reports import Report, ReportFormat, parse_report


def trivy_image_invocation(program: str, args: list[str], target: ScanTarget) -> Invocation:
    """``trivy image ARGS`` on one platform manifest in its registry: insecure when the
    target is, no version check or telemetry, credentials in the environment only."""
    argv = [program, "image", *args, "--image-src", "remote", "--quiet"]
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
        args = ["--format", "json", "--scanners", ",".join(self.scanners)]
        return trivy_image_invocation(self.program, args, target)

    def scan(self, target: ScanTarget) -> Report:
        what = f"trivy scan of {target.reference}"
        try:
            doc = run_json(
                self.invocation(target), what=what, timeout=self.timeout, base_env=self.base_env
            )
        except ScanError as e:
            raise _explain_db_error(e, what) from None
        try:
            return parse_report(doc, source=what, fmt=ReportFormat.TRIVY, platform=target.platform)
        except ReportError as e:
            raise ScanError(f"trivy wrote a report acr-ci cannot read: {e.message}") from None


_DB_HINT = (
    "seed the cache (trivy image --download-db-only with the same TRIVY_CACHE_DIR, or a CI "
    "cache of that directory) or let trivy download it; TRIVY_DB_REPOSITORY / "
    "TRIVY_JAVA_DB_REPOSITORY name a mirror"
)


def _explain_db_error(e: ScanError, what: str) -> ScanError:
    """Trivy's missing-DB and DB-download failures as one clear line; other errors unchanged."""
    said = e.message.removeprefix(what)  # trivy's own words (the image name could match)
    if "cannot be specified on the first run" in said or "first run cannot skip" in said:
        if "java-db" in said or "Java DB" in said:
            db, skip = "Java DB", "--skip-java-db-update / TRIVY_SKIP_JAVA_DB_UPDATE"
        else:
            db, skip = "vulnerability DB", "--skip-db-update / TRIVY_SKIP_DB_UPDATE"
        return ScanError(
            f"{what}: trivy has no {db} in its cache (TRIVY_CACHE_DIR) and its updates "
            f"are skipped ({skip})",
            hint=_DB_HINT,
        )
    if "failed to download vulnerability DB" in said or "failed to download Java DB" in said:
        return ScanError(e.message, hint=f"trivy downloads its DB at run time: {_DB_HINT}")
    return e
