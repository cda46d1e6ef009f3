"""Push-time parsing: ISO 8601 with and without offsets, epoch seconds, garbage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from acr_ci.errors import UsageError
from acr_ci.platforms.timeparse import from_epoch, parse_time

PLUS8 = timezone(timedelta(hours=8))
MINUS0530 = timezone(-timedelta(hours=5, minutes=30))

GOOD = [
    ("iso-z", "2024-05-01T12:34:56Z", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
    ("iso-utc-offset", "2024-05-01T12:34:56+00:00", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
    ("iso-plus8", "2024-05-01T20:34:56+08:00", datetime(2024, 5, 1, 20, 34, 56, tzinfo=PLUS8)),
    (
        "iso-minus0530",
        "2024-05-01T07:04:56-05:30",
        datetime(2024, 5, 1, 7, 4, 56, tzinfo=MINUS0530),
    ),
    ("iso-naive-is-utc", "2024-05-01T12:34:56", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
    ("iso-space", "2024-05-01 12:34:56Z", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
    (
        "iso-fraction",
        "2024-05-01T12:34:56.250Z",
        datetime(2024, 5, 1, 12, 34, 56, 250000, tzinfo=UTC),
    ),
    ("iso-date-only", "2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
    ("iso-git-cI", "2024-05-01T20:34:56+08:00\n", datetime(2024, 5, 1, 20, 34, 56, tzinfo=PLUS8)),
    ("epoch-int", "1714566896", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
    ("epoch-float", "1714566896.5", datetime(2024, 5, 1, 12, 34, 56, 500000, tzinfo=UTC)),
    ("epoch-zero", "0", datetime(1970, 1, 1, tzinfo=UTC)),
    (
        "epoch-digits-not-basic-iso",
        "20240501",
        datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=20240501),
    ),
    ("padded", "  1714566896  ", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
]


@pytest.mark.parametrize(("value", "expected"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_parse_time_accepts(value: str, expected: datetime) -> None:
    got = parse_time(value, origin="--time")
    assert got.tzinfo is not None
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()


BAD = [
    ("garbage", "yesterday"),
    ("empty", ""),
    ("blank", "   "),
    ("negative-epoch", "-5"),
    ("epoch-exponent", "1e9"),
    ("epoch-nan", "nan"),
    ("epoch-huge", "9" * 400),
    ("iso-month-13", "2024-13-01T00:00:00Z"),
    ("iso-bad-offset", "2024-05-01T12:34:56+25:00"),
    ("non-ascii-digits", "٢٠٢٤-05-01"),
    ("human-date", "May 1 2024"),
    ("iso-end-of-time", "9999-12-31T23:59:59Z"),  # cannot be shown in UTC+8 (OverflowError)
    ("epoch-end-of-time", "253402300799"),
    ("iso-before-epoch", "0001-01-01T00:00:00+01:00"),
]


@pytest.mark.parametrize("value", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_parse_time_refuses_naming_origin_and_both_forms(value: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_time(value, origin="--time")
    message = info.value.message
    assert message.startswith("--time ")
    assert "ISO 8601" in message
    assert "epoch seconds" in message
    assert "\n" not in message
    assert info.value.exit_code == 2


EPOCHS = [
    ("int", 1714566896, datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
    ("float", 1714566896.75, datetime(2024, 5, 1, 12, 34, 56, 750000, tzinfo=UTC)),
]


@pytest.mark.parametrize(("value", "expected"), [e[1:] for e in EPOCHS], ids=[e[0] for e in EPOCHS])
def test_from_epoch(value: float, expected: datetime) -> None:
    assert from_epoch(value, origin="x") == expected


@pytest.mark.parametrize(
    "value", [-1, 10**20, float("inf"), 253402300799], ids=["negative", "huge", "inf", "end"]
)
def test_from_epoch_refuses(value: float) -> None:
    with pytest.raises(UsageError, match=r"repository\.pushed_at"):
        from_epoch(value, origin="repository.pushed_at")
