"""Timestamps as every source writes them → aware UTC datetimes.

Its own module because every stage reads times (adapters, features, evaluation, the CLI's ``--since``),
and none of them should import a file-format module to do it. It imports nothing of ours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""Timestamps outside [EARLIEST, LATEST) are refused: no log is from then, and year 9999 with an offset or
a 20-digit epoch would overflow datetime arithmetic further down (a traceback an attacker could trigger)."""


def parse_time(value: Any) -> datetime:
    """Parse an event timestamp into an aware UTC datetime.

    Accepts ISO 8601 strings (``Z`` or offsets, fractional seconds of any length, as Azure and
    GCP emit) and epoch seconds or milliseconds. Raises ``ValueError`` otherwise, also for times out of
    range (see :data:`LATEST`).
    """
    try:
        parsed = _parse(value)
        utc = parsed.astimezone(UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"timestamp out of range: {str(value)[:64]!r}") from exc
    if not EARLIEST <= utc < LATEST:
        raise ValueError(f"timestamp out of range: {str(value)[:64]!r} (must be between 1970 and 2200)")
    return parsed


def _parse(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    if text.isdigit():
        return _parse(int(text))
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:
        # Python accepts at most 6 fractional digits; Azure/GCP send 7 or 9.
        main, _, rest = text.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{main}.{(digits + '000000')[:6]}{rest}"
    if " " in text and "T" not in text:
        text = text.replace(" ", "T", 1)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
