"""The export's flat relationship columns: a missing timestamp or window travels as ``ABSENT`` and comes back
as NaN or ``None``, and window names match what the driver's ``DateTime`` prints (the in-memory builder and
the history features key on that text)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from neo4j.time import DateTime

from gnnsec.graphdb.export import ABSENT, _seconds, _window_names


def test_absent_timestamps_become_nan_and_the_rest_seconds() -> None:
    ms = np.array([1_772_928_000_123, ABSENT, 0, -86_400_000], dtype=np.int64)
    seconds = _seconds(ms)
    assert seconds[0] == 1_772_928_000.123 and np.isnan(seconds[1])
    assert seconds[2] == 0.0 and seconds[3] == -86_400.0


def test_window_names_are_the_driver_s_iso_text_in_row_order() -> None:
    days = [datetime(2026, 3, d, tzinfo=UTC) for d in (8, 1, 8, 31)]
    ms = np.array([int(d.timestamp() * 1000) for d in days] + [ABSENT], dtype=np.int64)
    expected = [DateTime.from_native(d).iso_format() for d in days] + [None]
    assert _window_names(ms) == expected
    assert _window_names(np.zeros(0, dtype=np.int64)) == []
