"""Reading a record's JSON back, one error for every shape problem; the record's times;
:func:`redact`.

No secret reaches the record: steps carry names, digests and redacted targets only, and
:func:`redact` strips every URL in the detail down to ``scheme://host`` as a last guard.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from acr_ci.errors import RecordError
from acr_ci.models import Status

_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*)://(?:[^/\s?#@'\"]*@)?([^/\s?#'\"]*)[^\s'\"]*")


def redact(value: Any) -> Any:
    """``value`` with every URL in every string cut to ``scheme://host`` (recursively)."""
    if isinstance(value, str):
        return _URL.sub(lambda m: f"{m.group(1)}://{m.group(2)}", value)
    if isinstance(value, Mapping):
        return {str(k): redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _ms(t: datetime) -> datetime:
    """``t`` in UTC, cut to the millisecond: the precision the record's times are written in."""
    t = t.astimezone(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def iso_time(t: datetime) -> str:
    return _ms(t).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seconds_between(started: datetime, finished: datetime) -> float:
    """The duration between two times as the record writes them (so a record read back
    gives the same ``duration``)."""
    return round(max(0.0, (_ms(finished) - _ms(started)).total_seconds()), 3)


# -- reading JSON back, with one error for every shape problem ---------------------------


class Doc:
    """One JSON object of a record being read, with typed getters that name the place."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, Mapping):
            raise unreadable(where, "not an object")
        self.doc: Mapping[str, Any] = value
        self.where = where

    def _at(self, key: str) -> str:
        return f"{self.where}/{key}"

    def only(self, *keys: str) -> None:
        """Refuse keys outside ``keys`` (a typed record could not write them back)."""
        extra = sorted(set(self.doc) - set(keys))
        if extra:
            raise unreadable(self.where, f"unexpected key {extra[0]!r}")

    def has(self, key: str) -> bool:
        return key in self.doc

    def get(self, key: str) -> Any:
        if key not in self.doc:
            raise unreadable(self.where, f"{key!r} is missing")
        return self.doc[key]

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str):
            raise unreadable(self._at(key), "not a string")
        return value

    def opt_text(self, key: str) -> str | None:
        return None if self.doc.get(key) is None else self.text(key)

    def integer(self, key: str) -> int:
        value = self.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise unreadable(self._at(key), "not an integer")
        return value

    def opt_integer(self, key: str) -> int | None:
        return None if self.doc.get(key) is None else self.integer(key)

    def number(self, key: str) -> float:
        value = self.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise unreadable(self._at(key), "not a number")
        return float(value)

    def flag(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise unreadable(self._at(key), "not true or false")
        return value

    def time(self, key: str) -> datetime:
        try:
            t = datetime.fromisoformat(self.text(key))
        except ValueError:
            raise unreadable(self._at(key), "not an ISO 8601 time") from None
        if t.tzinfo is None:
            raise unreadable(self._at(key), "a time without a timezone")
        return t

    def array(self, key: str) -> list[Any]:
        value = self.get(key)
        if not isinstance(value, list):
            raise unreadable(self._at(key), "not a list")
        return value

    def objects(self, key: str) -> list[Doc]:
        return [Doc(v, f"{self._at(key)}/{i}") for i, v in enumerate(self.array(key))]

    def texts(self, key: str) -> tuple[str, ...]:
        values = self.array(key)
        if not all(isinstance(v, str) for v in values):
            raise unreadable(self._at(key), "not a list of strings")
        return tuple(values)

    def mapping(self, key: str, kind: type) -> Mapping[str, Any]:
        """An object whose values are all of type ``kind`` (``str`` or ``int``)."""
        value = Doc(self.get(key), self._at(key)).doc
        if not all(isinstance(v, kind) and not isinstance(v, bool) for v in value.values()):
            raise unreadable(self._at(key), f"not an object of {kind.__name__} values")
        return MappingProxyType(dict(value))

    def status(self, key: str = "status") -> Status:
        try:
            return Status(self.text(key))
        except ValueError:
            raise unreadable(self._at(key), "not a step status") from None


def unreadable(where: str, what: str) -> RecordError:
    return RecordError(
        f"the run record cannot be read at {where or '(top)'}: {what}",
        "the file was not written by this version of acr-ci's `run`, or was changed since",
    )
