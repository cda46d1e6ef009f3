"""The scan gate: findings from scanners or reports, a policy verdict, outputs, and backup-then-delete.

Modules: :mod:`~acr_ci.scan.findings` (the model, alias merging),
:mod:`~acr_ci.scan.reports` (Trivy, Grype, GitLab, SARIF parsers),
:mod:`~acr_ci.scan.trivy` / :mod:`~acr_ci.scan.grype` (engines),
:mod:`~acr_ci.scan.policy` (``evaluate``), :mod:`~acr_ci.scan.formats`
(summary, JSON, GitLab, SARIF), :mod:`~acr_ci.scan.gate` (on block),
:mod:`~acr_ci.scan.service` (the whole scan), :mod:`~acr_ci.scan.command` (CLI).
Kept import-light: ``acr-ci --help`` imports this package.
"""
