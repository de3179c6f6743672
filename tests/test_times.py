"""Timestamps: every format the sources write, and clean errors for the ones no log can hold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gnnsec.times import parse_time


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-03-05T08:00:00Z", datetime(2026, 3, 5, 8, tzinfo=UTC)),
    ("2026-03-05T09:00:00+01:00", datetime(2026, 3, 5, 8, tzinfo=UTC)),
    ("2026-03-05 08:00:00.1234567Z", datetime(2026, 3, 5, 8, 0, 0, 123456, tzinfo=UTC)),
    (1772697600, datetime(2026, 3, 5, 8, tzinfo=UTC)),
    (1772697600000, datetime(2026, 3, 5, 8, tzinfo=UTC)),
    ("1772697600", datetime(2026, 3, 5, 8, tzinfo=UTC)),
])
def test_formats(value: object, expected: datetime) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize("value", [
    "9999-12-31T23:59:59+01:00",  # overflowed to UTC before: OverflowError
    "9999-12-31T23:59:59Z",
    99999999999999999999,  # a 20-digit epoch: OSError (errno 75) before
    "99999999999999999999",
    -1e20,
    "1969-12-31T23:59:59Z",
    "",
    "yesterday",
    None,
])
def test_out_of_range_or_garbage_is_a_value_error(value: object) -> None:
    with pytest.raises(ValueError):
        parse_time(value)
