"""The registry build cache as the builders use it: what their logs say happened to it.

A cache that cannot be read or written never fails a build. Each builder hands its log
lines to a watcher here, and turns what the watcher saw into a
:class:`~acr_ci.models.CacheOutcome` for the run record:

* buildah 1.28 (``--layers --cache-from REPO --cache-to REPO``) prints
  ``--> Cache pulled from remote REPO:KEY`` for each step it took from the cache and
  ``--> Pushing cache REPO:KEY`` for each step it writes. A cache it cannot read is only
  warned about (``level=warning msg="Failed, retrying … initializing source
  docker://REPO:KEY: …"``, three tries two seconds apart per step; a registry that refuses
  the credentials is not even warned about: the step is just built), but a cache it cannot
  write fails the build (``Error: failed pushing cache to …``, exit 125; with several
  platforms one ``* failed pushing cache to …`` line each).
* BuildKit (buildx, ``ignore-error=true`` on ``--cache-to``) shows the import and the
  export as steps of their own in ``--progress plain``: ``#N importing cache manifest
  from REF`` and ``#N exporting cache to registry`` (``#N exporting cache`` before
  BuildKit 0.11), each ending with ``#N DONE`` or ``#N ERROR: …``; a step taken from a
  cache shows ``#N CACHED``. BuildKit does not say which cache a ``CACHED`` step came
  from, so for buildx ``read`` means "the cache manifest was read and steps were cached"
  (the builder's own cache may have served them). Written here from BuildKit's documented
  plain progress and tested against a stand-in: no Docker engine runs on the machines
  this was made on.
"""

from __future__ import annotations

import re

from acr_ci.models import BuildCache, CacheOutcome
from acr_ci.text import clean_remote

ERROR_LIMIT = 500
"""Characters kept of a cache error (one line in the log and the record)."""

BUILDAH_PULLED = "--> Cache pulled from remote "
BUILDAH_PUSHING = "--> Pushing cache "
BUILDAH_PUSH_FAILED = "failed pushing cache to "
_MSG = re.compile(r'msg="(.*)"\s*$')
_GO_REF = re.compile(r'\{\{\{"([^"{}]{1,300})" "([^"{}]{1,300})"\} "([^"{}]{1,200})"\}\}')
"""How buildah 1.28 prints a reference in its cache errors (a Go struct):
``{{{"HOST" "REPO"} "TAG"}}``, shown as ``HOST/REPO:TAG``."""


def error_text(line: str) -> str:
    """The message of a builder's log line about the cache, as one bounded line: the
    ``msg="…"`` of a logrus line, from its last ``Error:`` on when it has one."""
    m = _MSG.search(line)
    text = m.group(1).replace('\\"', '"') if m else line
    _, sep, rest = text.rpartition("Error: ")
    # several platforms fail as one multi-error: "\t* failed pushing cache to …"
    text = _GO_REF.sub(r"\1/\2:\3", (rest if sep else text).strip().removeprefix("* "))
    return clean_remote(text, ERROR_LIMIT)


class BuildahCacheLog:
    """What buildah's log says about the registry cache (see the module doc)."""

    def __init__(self, cache: BuildCache) -> None:
        self.cache = cache
        self.pulled = 0
        """Steps taken from the registry cache."""
        self.pushed = 0
        """Steps written to it."""
        self.read_error: str | None = None
        """The first warning about reading it."""
        self.write_error: str | None = None
        """buildah's error when writing it failed (and with it the build)."""
        self._source = f"docker://{cache.repository}:"

    def feed(self, line: str) -> None:
        if BUILDAH_PULLED in line:
            self.pulled += 1
        elif BUILDAH_PUSHING in line:
            self.pushed += 1
        elif BUILDAH_PUSH_FAILED in line:
            if self.write_error is None:
                self.write_error = error_text(line)
        elif "level=warning" in line and self._source in line and self.read_error is None:
            self.read_error = error_text(line)


_VERTEX = re.compile(r"#(\d{1,9}) (.*)\Z")
_IMPORT = re.compile(r"importing cache manifest from ")
_EXPORT = re.compile(r"exporting cache(?: to registry)?\s*\Z")


class BuildxCacheLog:
    """What BuildKit's plain progress says about the registry cache (see the module doc)."""

    def __init__(self, cache: BuildCache) -> None:
        self.cache = cache
        self.imported = False
        """The cache manifest was read."""
        self.exported = False
        """The cache was written."""
        self.cached_steps = 0
        """Steps shown ``CACHED`` (from the registry cache or the builder's own)."""
        self.error: str | None = None
        """The first error of the import or the export step."""
        self._imports: set[str] = set()
        self._exports: set[str] = set()

    def feed(self, line: str) -> None:
        m = _VERTEX.search(line)
        if m is None:
            return
        vertex, text = m.groups()
        if _IMPORT.match(text):
            self._imports.add(vertex)
        elif _EXPORT.match(text):
            self._exports.add(vertex)
        elif text == "CACHED":
            self.cached_steps += 1
        elif vertex in self._imports or vertex in self._exports:
            if text.startswith("DONE"):
                if vertex in self._imports:
                    self.imported = True
                else:
                    self.exported = True
            elif text.startswith("ERROR") and self.error is None:
                self.error = clean_remote(text.removeprefix("ERROR").lstrip(": "), ERROR_LIMIT)

    def outcome(self, *, read: bool) -> CacheOutcome:
        """``read``: whether ``--cache-from`` was given (not with ``no_cache``)."""
        return CacheOutcome(
            ref=self.cache.ref,
            read=read and self.imported and self.cached_steps > 0,
            written=self.exported,
            error=self.error,
        )
