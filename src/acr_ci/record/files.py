"""Writing a record to a file and reading it back."""

from __future__ import annotations

import os
from pathlib import Path

from acr_ci import fileio
from acr_ci.errors import RecordError
from acr_ci.jsonload import loads_bounded
from acr_ci.models import DEFAULT_RECORD_PATH
from acr_ci.record.model import RunRecord
from acr_ci.record.validation import validate

DEFAULT_PATH = DEFAULT_RECORD_PATH
MAX_RECORD_BYTES = 32 * 1024 * 1024
""":func:`read` refuses bigger files (a record of a few hundred images is far smaller)."""


def write(record: RunRecord, path: str | os.PathLike[str]) -> Path:
    """Validate and write ``record`` to ``path`` atomically (temp file + rename).

    :class:`~acr_ci.errors.OutputError` (exit 1) when it cannot be written; no temporary
    file is left behind."""
    doc = record.to_json()
    validate(doc)
    target = Path(path)
    return fileio.write_json(
        target,
        doc,
        what="the run record",
        message=f"cannot write the run record to {str(target)!r}",
        parents=True,
        hint="pass --record with a writable path",
    )


def read(path: str | os.PathLike[str]) -> RunRecord:
    """The run record at ``path`` (:meth:`RunRecord.from_json`); :class:`RecordError` when
    there is none, or it is not a valid record."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RECORD_BYTES + 1)
    except OSError as e:
        raise RecordError(
            f"no run record at {str(path)!r}: {e.strerror or type(e).__name__}"
        ) from None
    if len(data) > MAX_RECORD_BYTES:
        raise RecordError(f"{str(path)!r} is not a run record: over {MAX_RECORD_BYTES} bytes")
    doc = loads_bounded(
        data,
        what=f"{str(path)!r}",
        max_bytes=MAX_RECORD_BYTES,
        error=RecordError,
        invalid="is not a run record: not JSON",
    )
    if not isinstance(doc, dict):
        raise RecordError(f"{str(path)!r} is not a run record: not a JSON object")
    return RunRecord.from_json(doc)
