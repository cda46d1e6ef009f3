"""The local git checkout: the last source asked.

Git runs only when an earlier source lacked a value, always as an argv list
(never through a shell), with no value from the user or the environment in its
arguments, ``GIT_TERMINAL_PROMPT=0``, no fsmonitor hook, no stdin and a timeout.
Git's own ``safe.directory`` check is left alone: a checkout owned by another
user is an error (git's message is shown) unless the job trusts it.

- Ref: the current branch (``git symbolic-ref -q HEAD``). On a detached HEAD,
  the tag pointing at HEAD; when several do, the highest in git's version order
  with pre-release suffixes below their release
  (``-c versionsort.suffix=- for-each-ref --sort=-v:refname``): ``v1.10.0`` wins
  over ``v1.9.0`` and over ``v1.10.0-rc1``; ties follow git's ref-name order.
  A detached HEAD with no tag is an error asking for ``--ref``.
- Commit: ``git rev-parse HEAD``.
- Push time: HEAD's committer time (``git log -1 --format=%cI``), so building
  the same commit again gives the same ``${time}``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from acr_ci.errors import RefError
from acr_ci.models import RefType
from acr_ci.platforms.base import BRANCH_PREFIX, TAG_PREFIX, checked_sha, parse_full_ref, shown
from acr_ci.platforms.timeparse import parse_time

GIT_TIMEOUT = 30.0
"""Seconds one git command may take."""

_HINT = "pass --ref refs/heads/NAME or --ref refs/tags/NAME"


@dataclass(frozen=True)
class _GitResult:
    """One git command's outcome: its stdout, or why it failed."""

    out: str | None
    """Standard output when git succeeded, else ``None``."""
    problem: str | None
    """Why it failed: git's first error line (printable, truncated), or why git did not run."""
    returncode: int | None
    """Git's exit status; ``None`` when git did not run."""


class LocalGitSource:
    """Asks ``git`` about the checkout at ``cwd``."""

    label = "local"

    def __init__(self, cwd: str) -> None:
        self._cwd = cwd

    def _git(self, *args: str) -> _GitResult:
        env = dict(os.environ)
        env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C", GIT_PAGER="cat")
        try:
            done = subprocess.run(
                ["git", "-c", "core.fsmonitor=false", *args],
                cwd=self._cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=GIT_TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            return _GitResult(None, "git is not installed", None)
        except NotADirectoryError:
            return _GitResult(None, f"{shown(self._cwd)} is not a directory", None)
        except subprocess.TimeoutExpired:
            return _GitResult(None, f"git took longer than {GIT_TIMEOUT:g} s", None)
        except OSError as e:
            return _GitResult(None, f"git could not run: {e.strerror or type(e).__name__}", None)
        if done.returncode != 0:
            lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
            first = lines[0] if lines else f"git exited with {done.returncode}"
            printable = "".join(c if c.isprintable() else "?" for c in first)[:200]
            return _GitResult(None, printable, done.returncode)
        return _GitResult(done.stdout, None, 0)

    @cached_property
    def _head_sha(self) -> _GitResult:
        return self._git("rev-parse", "--verify", "--quiet", "HEAD^{commit}")

    def ref(self) -> tuple[RefType, str]:
        """The current branch, or the tag at a detached HEAD; a ``RefError`` otherwise."""
        where = f"the git checkout at {shown(self._cwd)}"
        branch = self._git("symbolic-ref", "--quiet", "HEAD")
        if branch.out is not None:
            full = branch.out.strip()
            if full.startswith(BRANCH_PREFIX):
                return parse_full_ref(full, f"the current branch of {where}")
        elif branch.returncode != 1:  # 1: detached HEAD; anything else: no usable checkout
            raise RefError(
                f"cannot tell the ref: no --ref, no CI ref in the environment, and {where} "
                f"is unusable ({branch.problem})",
                _HINT,
            )
        tags = self._git(
            "-c",
            "versionsort.suffix=-",
            "for-each-ref",
            "--points-at=HEAD",
            "--sort=-v:refname",
            "--format=%(refname)",
            TAG_PREFIX,
        )
        names = [ln for ln in (tags.out or "").splitlines() if ln.startswith(TAG_PREFIX)]
        if names:
            return parse_full_ref(names[0], f"the tag at HEAD of {where}")
        head = self._head_sha.out
        at = f" at {head.strip()[:12]}" if head else ""
        raise RefError(
            f"cannot tell the ref: HEAD of {where} is detached{at} and no tag points at it",
            _HINT,
        )

    def sha(self) -> str | None:
        out = self._head_sha.out
        if out is None or not out.strip():
            return None
        return checked_sha(out, "git rev-parse HEAD")

    def time(self) -> datetime | None:
        done = self._git("log", "-1", "--format=%cI", "HEAD", "--")
        if done.out is None or not done.out.strip():
            return None
        return parse_time(done.out, origin="git log -1 --format=%cI")

    def event(self) -> str | None:
        return None

    def repository(self) -> str | None:
        return None
