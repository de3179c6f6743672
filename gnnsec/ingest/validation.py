"""The one check of what a record carries, run by staging before anything is written.

Everything Neo4j would reject, or the driver could not read back, is refused here as a
:class:`PropertyError` (a :class:`gnnsec.schema.SchemaError`, so the pipeline turns it into a bad record
naming the file and record): found later, the write would fail after earlier transactions of the same
run committed, or raise a traceback.  The checks, with the defaults of :class:`Limits`:

* ``uid``: a non-empty string of at most 8,000 UTF-8 bytes.  ``uid`` carries a uniqueness constraint, and
  Neo4j's range index refuses keys over about 8 KB ("Property value is too large to index").
* property names: non-empty strings, not only whitespace, no NUL (Neo4j's ``TokenNameError``), at most
  256 characters (each distinct name is a token Neo4j keeps forever).
* values: strings up to 1 MiB, lists up to 100,000 items, integers within int64, floats finite (no NaN or
  infinity), datetimes within years 1..9999 once normalised to UTC (``9999-12-31T23:59:59-05:00`` is year
  10000 in UTC), no maps, no nesting (staging's ``clean_properties`` drops maps and nested lists
  without recursing, so no depth raises ``RecursionError``).
* activity volumes: ``bytes``/``packets`` are non-negative numbers whose per-window sums stay within int64;
  ``failed`` is ``true``/``false``.

Reserved property names, which records from outside must not set (gnnsec writes them, and a forged one
breaks idempotency or the scores; e.g. ``window`` on an activity relationship made every re-ingest add a
duplicate relationship):

* everywhere: ``uid``, ``first_seen``, ``last_seen``, ``window``, ``window_seconds``, ``count``,
  ``batches``, ``batch_*``; the scores (``anomaly_*``, ``anomalous``, ``scored_at``, ``model_id``,
  ``scoring_run``, ``score_window``, ``distmult_score``, ``edge_anomaly``, ``edge_reasons``, as in
  ``graphdb.writeback``) and analyst verdicts (``analyst_*``, set by ``gnnsec feedback``);
* on nodes and inventory relationships also ``failed``;
* on activity relationships also ``actions`` and ``sources`` (the loader's), while ``failed``, ``bytes``
  and ``packets`` there are the event's flags and volumes that staging counts and sums.

Each is a bad record ("property 'window' is reserved by gnnsec"), never a silent drop: a file that tries
to set one is either broken or hostile, and either way the user should hear of it.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from gnnsec import schema
from gnnsec.times import EARLIEST, LATEST

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

MANAGED_PROPERTIES = frozenset({
    "uid", "first_seen", "last_seen", "window", "window_seconds", "count", "batches",
})
"""Set by the loader (``graphdb.loader``) on nodes and relationships."""
SCORE_PROPERTIES = frozenset({
    "anomalous", "scored_at", "model_id", "scoring_run", "score_window",  # node scores (graphdb.writeback)
    "distmult_score", "edge_anomaly", "edge_reasons",  # relationship scores (graphdb.writeback)
})
RESERVED_PREFIXES = ("batch_", "anomaly_", "analyst_")
"""Per-batch shares (loader), node scores (writeback) and analyst verdicts (``gnnsec feedback``)."""
ACTIVITY_MANAGED = frozenset({"actions", "sources"})
"""Set by the loader on aggregated (activity and threat) relationships only."""
COUNTED_PROPERTIES = ("failed", "bytes", "packets")
"""On activity relationships: the event's flag and volumes, which staging counts and sums per window."""


class PropertyError(schema.SchemaError):
    """A value or name Neo4j would refuse, the driver could not read back, or gnnsec reserves."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits of staged values; pass another to :class:`gnnsec.ingest.staging.Staging` to change them.

    ``max_uid_bytes`` must stay under Neo4j's index key limit (8,167 bytes with 8 KiB pages)."""

    max_uid_bytes: int = 8_000
    max_string_bytes: int = 1 << 20
    max_list_items: int = 100_000
    max_key_chars: int = 256


DEFAULT_LIMITS = Limits()

_EXCERPT = reprlib.Repr()
_EXCERPT.maxlevel = 4
_EXCERPT.maxstring = 120
_EXCERPT.maxother = 120


def safe_excerpt(value: Any, size: int = 300) -> str:
    """A short rendering of anything, however deep or large: ``reprlib`` stops at a fixed depth, so a
    hostile record cannot raise ``RecursionError`` while we describe it."""
    return _EXCERPT.repr(value)[:size]


def reserved_reason(key: str, *, activity: bool) -> str | None:
    """Why ``key`` cannot be set by a record (on an activity relationship if ``activity``), or None."""
    if key in MANAGED_PROPERTIES or key in SCORE_PROPERTIES or key.startswith(RESERVED_PREFIXES):
        return f"property {key!r} is reserved by gnnsec (it is set by the loader or the scorer); rename it"
    if activity and key in ACTIVITY_MANAGED:
        return f"property {key!r} is reserved by gnnsec on activity relationships; rename it"
    if not activity and key == "failed":
        return ("property 'failed' is reserved by gnnsec (the per-window count of failed events); "
                "rename it, or set it on an activity relationship's event")
    return None


def _utf8_size(text: str) -> int:
    """UTF-8 length, without encoding the common short string (at most 4 bytes a character)."""
    return len(text) * 4 if len(text) * 4 <= 64 else len(text.encode("utf-8", "surrogatepass"))


def check_uid(uid: object, label: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """``uid`` if a :class:`~gnnsec.ingest.base.Node` of ``label`` may have it; else :class:`PropertyError`."""
    if not isinstance(uid, str):
        raise PropertyError(f"a {label} node's uid must be a string, found {type(uid).__name__}")
    if not uid.strip():
        raise PropertyError(f"a {label} node has an empty uid")
    size = _utf8_size(uid) if len(uid) * 4 > limits.max_uid_bytes else 0
    if size > limits.max_uid_bytes:
        raise PropertyError(
            f"a {label} node's uid is {size} bytes, over the limit of {limits.max_uid_bytes} "
            f"(Neo4j cannot index larger values): {uid[:80]!r}…"
        )
    return uid


def check_time(moment: object, what: str) -> datetime | None:
    """An event or sighting time must be an aware datetime that the driver and ``datetime`` arithmetic can
    handle: within 1970..2200 UTC, the range :func:`gnnsec.times.parse_time` accepts."""
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        raise PropertyError(f"{what} must be a datetime, found {type(moment).__name__}")
    if moment.tzinfo is UTC:  # the common case (parse_time's): no conversion needed
        utc: datetime | None = moment
    else:
        try:
            utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        except OverflowError:
            utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise PropertyError(f"{what} {moment.isoformat()} is out of range (must be between 1970 and 2200 UTC)")
    return moment


def check_value(key: str, value: Any, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise :class:`PropertyError` unless Neo4j stores ``value`` and the driver reads it back unchanged."""
    if isinstance(value, str):
        if len(value) * 4 > limits.max_string_bytes and _utf8_size(value) > limits.max_string_bytes:
            raise PropertyError(
                f"property {key!r} is a string of {_utf8_size(value)} bytes, over the limit of "
                f"{limits.max_string_bytes}; shorten it before ingesting"
            )
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise PropertyError(f"property {key!r} is {value}, outside the 64-bit integers Neo4j stores")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise PropertyError(f"property {key!r} is {value}; Neo4j properties must be finite numbers")
    elif isinstance(value, datetime):
        try:
            (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
        except OverflowError as exc:
            raise PropertyError(
                f"property {key!r} is {value.isoformat()}, outside years 1..9999 in UTC (the driver cannot read "
                "it back)"
            ) from exc
    elif isinstance(value, date):
        return
    elif isinstance(value, list | tuple):
        if len(value) > limits.max_list_items:
            raise PropertyError(
                f"property {key!r} is a list of {len(value)} items, over the limit of {limits.max_list_items}"
            )
        kinds = {type(item) for item in value}
        if len(kinds) > 1:
            raise PropertyError(f"property {key!r} is a list mixing {sorted(k.__name__ for k in kinds)}")
        for item in value:
            if isinstance(item, list | tuple | Mapping):
                raise PropertyError(f"property {key!r} is a nested list or a list of maps, which Neo4j cannot store")
            check_value(key, item, limits)
    else:
        raise PropertyError(f"property {key!r} is a {type(value).__name__}, which Neo4j cannot store")


def check_key(key: object, limits: Limits = DEFAULT_LIMITS) -> str:
    """A property name Neo4j accepts as a token (and that does not flood its token store)."""
    if not isinstance(key, str):
        raise PropertyError(f"property names must be strings, found {type(key).__name__} {safe_excerpt(key, 60)}")
    if not key.strip() or "\x00" in key:
        raise PropertyError(f"property name {key!r} is empty, blank or holds a NUL byte; Neo4j refuses it")
    if len(key) > limits.max_key_chars:
        raise PropertyError(f"property name {key[:60]!r}… is {len(key)} characters, over {limits.max_key_chars}")
    return key


def check_properties(props: Mapping[str, Any], *, activity: bool = False, limits: Limits = DEFAULT_LIMITS) -> None:
    """Check names (valid, not reserved) and values of properties already cleaned for Neo4j.

    ``activity``: the properties of an activity or threat event, where ``failed``/``bytes``/``packets``
    have been taken out by staging already (see :func:`check_counted`)."""
    for key, value in props.items():
        known = (key, activity, limits.max_key_chars)
        if known not in _GOOD_NAMES:
            check_key(key, limits)
            reason = reserved_reason(key, activity=activity)
            if reason is not None:
                raise PropertyError(reason)
            if len(_GOOD_NAMES) >= 10_000:
                _GOOD_NAMES.clear()
            _GOOD_NAMES.add(known)
        check_value(key, value, limits)


_GOOD_NAMES: set[tuple[str, bool, int]] = set()
"""Names already accepted: sources repeat a handful of names millions of times (bounded, so a file of
random names cannot grow it without limit)."""


def check_counted(name: str, value: Any) -> None:
    """``failed`` must be a boolean; ``bytes``/``packets`` non-negative finite numbers within int64."""
    if name == "failed":
        if not isinstance(value, bool):
            raise PropertyError(f"property 'failed' must be true or false, found {safe_excerpt(value, 60)}")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PropertyError(f"property {name!r} must be a number, found {safe_excerpt(value, 60)}")
    check_value(name, value)
    if value < 0:
        raise PropertyError(f"property {name!r} is {value}; volumes cannot be negative")


def check_sum(name: str, total: float) -> None:
    """A per-window sum must still be storable: within int64, or finite for floats."""
    if isinstance(total, int) and total > INT64_MAX:
        raise PropertyError(
            f"the per-window sum of {name!r} would be {total}, over the 64-bit integers Neo4j stores; "
            "check the file's volumes"
        )
    if isinstance(total, float) and not math.isfinite(total):
        raise PropertyError(f"the per-window sum of {name!r} overflows to {total}; check the file's volumes")
