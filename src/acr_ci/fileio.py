"""Writing acr-ci's own output files: one atomic JSON writer for every document.

Every JSON file acr-ci writes (the run record, ``--output-json``, scan reports) goes
through :func:`write_json`: a temporary file in the target's folder, then a rename, so a
reader never sees half a document, and a failed write leaves no temporary file behind.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acr_ci.errors import AcrError, OutputError


def write_text(
    path: str | os.PathLike[str],
    text: str,
    *,
    what: str,
    hint: str | None = None,
    parents: bool = False,
    message: str | None = None,
) -> Path:
    """Write ``text`` to ``path`` atomically; :class:`OutputError` naming ``what`` if it fails
    (``message``, when given, replaces ``"WHAT PATH: cannot write"`` before the OS's reason).
    ``parents``: create missing folders first (otherwise a missing folder fails)."""
    target = Path(path)
    tmp: str | None = None
    try:
        data = text.encode("utf-8")  # before any file exists: a lone surrogate fails here
    except UnicodeEncodeError:
        first = message or f"{what} {target}: cannot write"
        raise OutputError(f"{first}: it would hold text that is not valid Unicode", hint) from None
    try:
        if parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
        tmp = None
    except OSError as e:
        first = message or f"{what} {target}: cannot write"
        raise OutputError(f"{first}: {e.strerror or type(e).__name__}", hint) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return target


def write_json(
    path: str | os.PathLike[str],
    doc: Mapping[str, Any],
    *,
    what: str,
    hint: str | None = None,
    parents: bool = False,
    message: str | None = None,
) -> Path:
    """Write ``doc`` as indented JSON (UTF-8, a final newline) to ``path`` atomically."""
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return write_text(path, text, what=what, hint=hint, parents=parents, message=message)


def read_bounded(
    path: str | os.PathLike[str],
    *,
    limit: int,
    what: str,
    error: type[AcrError],
    hint: str | None = None,
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (symlinks to one are fine).

    Anything else raises ``error`` naming ``what`` and the path: a device (a symlink to
    ``/dev/zero``), a FIFO (opened without blocking), a folder, a bigger file, an OS error.
    A missing file raises :class:`FileNotFoundError` unchanged, for callers to whom
    "absent" means something.
    """
    target = Path(path)
    try:
        fd = os.open(
            target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        )
    except FileNotFoundError:
        raise
    except OSError as e:
        raise error(
            f"cannot read {what} {target}: {e.strerror or type(e).__name__}", hint
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"{what} {target} is not a regular file", hint)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except OSError as e:
        raise error(
            f"cannot read {what} {target}: {e.strerror or type(e).__name__}", hint
        ) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise error(f"{what} {target} is larger than {limit} bytes", hint)
    return data
