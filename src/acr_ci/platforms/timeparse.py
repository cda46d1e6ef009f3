"""Push times as the user, the CI system or git writes them.

Two forms are accepted, wherever the value comes from:

- ISO 8601: ``2024-05-01T12:34:56Z``, ``2024-05-01T20:34:56+08:00``,
  ``2024-05-01 12:34:56.5``; a value without an offset is UTC.
- Epoch seconds: ``1714566896`` or ``1714566896.25`` (digits only, optional
  fraction). A value made of digits alone is always epoch seconds, never an
  ISO "basic" date such as ``20240501``.

Every result is timezone-aware. The offset the source wrote is kept (``tags.py``
converts to the config's timezone); epoch seconds and naive values are UTC. A time
outside 1970-01-01 … 9999-12-30 (UTC) is refused: a push time is never before the epoch,
and one within a day of ``datetime.max`` cannot be shown in every timezone.
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
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
"""The range of push times accepted (any timezone can render them)."""


def _in_range(when: datetime) -> datetime:
    """``when`` if it lies within :data:`EARLIEST` … :data:`LATEST`; else ``ValueError``."""
    if not EARLIEST <= when <= LATEST:
        raise ValueError("out of range")
    return when


def parse_time(value: str, *, origin: str) -> datetime:
    """Parse ``value`` (ISO 8601 or epoch seconds) into a tz-aware datetime.

    ``origin`` names where the value came from (``--time``, an env var, a field
    of the event file); a bad value raises :class:`UsageError` naming it.
    """
    text = value.strip()
    try:
        if _EPOCH_RE.fullmatch(text):
            return _in_range(datetime.fromtimestamp(float(text), tz=UTC))
        if text and text.isascii():
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return _in_range(parsed)
    except (ValueError, OverflowError, OSError):
        pass
    raise UsageError(f"{origin} {shown(value)} is not a time between 1970 and 9999: give {FORMS}")


def from_epoch(value: int | float, *, origin: str) -> datetime:
    """A UTC datetime from epoch seconds given as a JSON number."""
    try:
        if value < 0:
            raise ValueError("negative")
        return _in_range(datetime.fromtimestamp(value, tz=UTC))
    except (ValueError, OverflowError, OSError):
        raise UsageError(
            f"{origin} {value!r} is not a time between 1970 and 9999: give {FORMS}"
        ) from None
