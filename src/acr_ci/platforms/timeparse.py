"""Push times as the user, the CI system or git writes them.

Two forms are accepted, wherever the value comes from:

- ISO 8601: ``2024-05-01T12:34:56Z``, ``2024-05-01T20:34:56+08:00``,
  ``2024-05-01 12:34:56.5``; a value without an offset is UTC.
- Epoch seconds: ``1714566896`` or ``1714566896.25`` (digits only, optional
  fraction). A value made of digits alone is always epoch seconds, never an
  ISO "basic" date such as ``20240501``.

Every result is timezone-aware. The offset the source wrote is kept (``tags.py``
converts to the config's timezone); epoch seconds and naive values are UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from acr_ci.errors import UsageError
from acr_ci.platforms.base import shown

FORMS = (
    "ISO 8601 (2024-05-01T12:34:56Z, 2024-05-01T20:34:56+08:00; no offset = UTC) "
    "or epoch seconds (1714566896 or 1714566896.5)"
)
"""The accepted forms, as error messages name them."""

_EPOCH_RE = re.compile(r"[0-9]+(?:\.[0-9]*)?", re.ASCII)


def parse_time(value: str, *, origin: str) -> datetime:
    """Parse ``value`` (ISO 8601 or epoch seconds) into a tz-aware datetime.

    ``origin`` names where the value came from (``--time``, an env var, a field
    of the event file); a bad value raises :class:`UsageError` naming it.
    """
    text = value.strip()
    try:
        if _EPOCH_RE.fullmatch(text):
            return datetime.fromtimestamp(float(text), tz=UTC)
        if text and text.isascii():
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed
    except (ValueError, OverflowError, OSError):
        pass
    raise UsageError(f"{origin} {shown(value)} is not a time: give {FORMS}")


def from_epoch(value: int | float, *, origin: str) -> datetime:
    """A UTC datetime from epoch seconds given as a JSON number."""
    try:
        if value < 0:
            raise ValueError("negative")
        return datetime.fromtimestamp(value, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise UsageError(f"{origin} {value!r} is not a time: give {FORMS}") from None
