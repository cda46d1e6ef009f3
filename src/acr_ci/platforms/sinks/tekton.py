"""Tekton: one results file per declared result.

A Task tells acr-ci where each of its results goes through env vars whose values Tekton
substitutes, ``ACR_CI_RESULT_<NAME>: $(results.<NAME>.path)``; only the results a Task
declares are written, each without a trailing newline (Tekton keeps the bytes as they are).

Results (strings; Tekton Chains reads ``IMAGE_URL``/``IMAGE_DIGEST`` and ``IMAGES``):

``IMAGE_DIGEST``  the first image's digest          ``IMAGE_URL``  its first ``repo:tag``
``IMAGES``        ``repo@digest`` per image, comma-separated
``TAGS``          every ``repo:tag``, comma-separated
``BLOCKED``       ``true``/``false``                ``STATUS``     the run's status
``RECORD``        the run record's path             ``EXIT_CODE``  the command's exit code
``ACCELERATED_DIGEST``  the first accelerated (eStargz) twin's digest

A build that did not push (``push: "false"``) writes no ``IMAGE_URL``, ``IMAGE_DIGEST`` or
``IMAGES``: Chains would sign an image that is not in the registry (:attr:`TektonSink.pushed`).

Messages go to the step's log (``stream``); Tekton has no annotations and no masks.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from acr_ci.platforms.outputs import Results, one_line
from acr_ci.platforms.sinks.gitlab import location

RESULT_ENV_PREFIX = "ACR_CI_RESULT_"
CHAINS_RESULTS = frozenset({"IMAGE_URL", "IMAGE_DIGEST", "IMAGES"})
"""The results Tekton Chains signs: only for images that are in the registry."""


def result_values(results: Results) -> dict[str, str]:
    """Every result acr-ci can give, by Tekton result name."""
    return {
        "IMAGE_DIGEST": results.digest,
        "IMAGE_URL": results.image_url,
        "IMAGES": one_line(results.images),
        "TAGS": one_line(results.tags),
        "BLOCKED": "true" if results.blocked else "false",
        "STATUS": results.status,
        "RECORD": results.record,
        "EXIT_CODE": str(results.exit_code),
        "ACCELERATED_DIGEST": results.accelerated_digest,
    }


@dataclass
class TektonSink:
    """Writes ``paths[NAME]`` for each result the Task declared."""

    paths: Mapping[str, Path] = field(default_factory=dict)
    stream: TextIO = sys.stderr
    pushed: bool = True
    """False for a build without push: the Chains results (:data:`CHAINS_RESULTS`) are left
    unwritten."""

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], stream: TextIO | None = None, *, pushed: bool = True
    ) -> TektonSink:
        paths = {
            k[len(RESULT_ENV_PREFIX) :]: Path(v)
            for k, v in env.items()
            if k.startswith(RESULT_ENV_PREFIX) and v
        }
        return cls(paths=paths, stream=stream or sys.stderr, pushed=pushed)

    def mask(self, secret: str) -> None:
        """Tekton has no log masking; acr-ci never prints secrets anyway."""

    def publish(self, results: Results) -> None:
        for a in results.annotations:
            self.stream.write(location(a) + "\n")
        values = result_values(results)
        for name, path in self.paths.items():
            if name in values and (self.pushed or name not in CHAINS_RESULTS):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(values[name], encoding="utf-8")
        self.stream.flush()
