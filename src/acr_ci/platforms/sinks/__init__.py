"""Output sinks: :class:`~acr_ci.platforms.outputs.Results` written the way each CI reads them.

* :mod:`.github` — ``$GITHUB_OUTPUT`` (``name<<DELIMITER`` for multi-line values),
  ``$GITHUB_STEP_SUMMARY``, ``::error``/``::warning`` workflow commands, ``::add-mask::``;
* :mod:`.gitlab` — a dotenv report (``ACR_CI_DIGEST``…) and log lines;
* :mod:`.tekton` — one file per declared result (``IMAGE_DIGEST``, ``IMAGE_URL``, ``IMAGES``…).

:func:`sink_for` picks one by platform name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

from acr_ci.errors import UsageError
from acr_ci.platforms.outputs import OutputSink

__all__ = ["sink_for"]


def sink_for(
    platform: str, env: Mapping[str, str] | None = None, stream: TextIO | None = None
) -> OutputSink:
    """The sink for ``github``, ``gitlab`` or ``tekton``, configured from ``env``."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if platform == "github":
        from acr_ci.platforms.sinks.github import GitHubSink

        return GitHubSink.from_env(environ, stream)
    if platform == "gitlab":
        from acr_ci.platforms.sinks.gitlab import GitLabSink

        return GitLabSink.from_env(environ, stream)
    if platform == "tekton":
        from acr_ci.platforms.sinks.tekton import TektonSink

        return TektonSink.from_env(environ, stream)
    raise UsageError(f"no output sink for platform {platform!r}", "use github, gitlab or tekton")
