"""The undo log of a write that needs more than one transaction, so that a file Neo4j fails part-way leaves nothing.

A file of at most ``batch_size`` rows is one transaction and atomic in Neo4j; none of this runs for it.  A larger
one commits transaction by transaction.  Before each transaction but the last, :func:`read_before` reads what it
will change (the *before image*): which of its nodes and relationships exist, with their properties.  Every node
and relationship of a staging is in exactly one row of one transaction, so this is its state before the whole write
touched it, read as late as possible (the less another ingest can change meanwhile).  If a later transaction
fails, :func:`undo` deletes what the write created and puts back what it changed, in bounded transactions, newest
first (relationships before the nodes they hang on).

Compare-and-restore, because another ingest may have written the same entities meanwhile.  A property is put back
only while it still holds the value this write set (computed from the before image and the row, as the loader's
Cypher computes it); one that changed again is left as it is and counted.  Activity shares are keyed by batch id,
so this write's shares come out exactly whatever else was added, and the totals are summed again (``actions`` have
no per-batch record: ones another batch shares stay).  A node or inventory relationship this write created is
deleted only while it holds exactly what this write set, a node only while nothing is attached to it (never
``DETACH``), an activity relationship only while no other batch has a share in it: others' data is never removed.

Nothing here writes to the graph before a failure, so a kill -9 mid-write is what it always was: the part written
stays, and re-running the ingest replaces the file's contributions (batch id = content digest).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, Literal

import neo4j.time
from neo4j import ManagedTransaction, Session

from gnnsec import schema
from gnnsec.ingest.validation import INT64_MAX

Kind = Literal["node", "inventory", "activity"]
Row = Mapping[str, Any]
"""A row as the loader sends it (``uid``/``props``/``first_seen``… for nodes; ``src``/``dst``/``contrib``… for
relationships; times as epoch milliseconds)."""
Found = tuple[str, dict[str, Any]]
"""An entity as it was before the write: element id and properties (``window`` aside, see :func:`_properties`)."""
Before = dict[int, list[Found]]
"""A unit's before image: row index → the entities that row's MERGE would match (a row absent here matched nothing:
the write creates it).  More than one only where the graph already held duplicate relationships."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LOCK = "_gnnsec_undo_lock"
"""Set and removed in one statement, which takes the entity's write lock and leaves no property (only the key's
token): compare-and-restore must not race another writer between its read and its write."""


@dataclass(frozen=True, slots=True)
class Shape:
    """What one unit of the loader writes, as far as undoing it goes: the MERGE pattern and the summed shares."""

    kind: Kind
    label: str  # the node label, or the relationship's source label
    rel_type: str = ""
    target_label: str = ""
    summed: tuple[str, ...] = ()  # activity: the per-batch properties (count, failed, bytes, packets)


@dataclass(slots=True)
class UndoTally:
    """What :func:`undo` did: entities deleted and restored, and properties (or entities) left as another write
    left them."""

    deleted: int = 0
    restored: int = 0
    left: int = 0

    def add(self, other: UndoTally) -> None:
        self.deleted += other.deleted
        self.restored += other.restored
        self.left += other.left


@dataclass(slots=True)
class _Plan:
    deletes: list[str] = field(default_factory=list)
    sets: list[dict[str, Any]] = field(default_factory=list)
    left: int = 0


# --- reading ------------------------------------------------------------------------------------------------------


def _match(shape: Shape) -> str:
    """The MATCH of the loader's MERGE for ``$chunk.rows`` (``row.i`` numbers them), binding ``x``; index-backed (uid).

    Rows inside a map, as the loader sends them: a list parameter's size bucket is part of Neo4j's plan cache key."""
    if shape.kind == "node":
        schema.label_id(shape.label)
        return f"UNWIND $chunk.rows AS row\nMATCH (x:{shape.label} {{uid: row.uid}})"
    schema.validate_edge(shape.label, shape.rel_type, shape.target_label)
    window = "\nWHERE x.window = datetime({epochMillis: row.window})" if shape.kind == "activity" else ""
    return (f"UNWIND $chunk.rows AS row\nMATCH (a:{shape.label} {{uid: row.src}})\nMATCH (b:{shape.target_label} "
            f"{{uid: row.dst}})\nMATCH (a)-[x:{shape.rel_type}]->(b){window}")


def _keys(shape: Shape, rows: Iterator[tuple[int, Row]]) -> list[dict[str, Any]]:
    if shape.kind == "node":
        return [{"i": i, "uid": row["uid"]} for i, row in rows]
    return [{"i": i, "src": row["src"], "dst": row["dst"], "window": row.get("window")} for i, row in rows]


_TIMES = ("first_seen", "last_seen")


def _exact_ms(key: str) -> str:
    """True where ``x.key`` is exactly what ``datetime({epochMillis: …})`` stores (offset Z, whole milliseconds)."""
    return (f"CASE WHEN x.{key} IS :: ZONED DATETIME NOT NULL "  # CASE: Cypher's AND may evaluate both sides
            f"THEN x.{key} = datetime({{epochMillis: x.{key}.epochMillis}}) ELSE false END")


def _properties(shape: Shape, extra: str = "") -> str:
    """``WITH … RETURN`` of ``x``'s properties as the undo log reads them (numbered by ``row.i``, with ``extra``).

    ``first_seen``/``last_seen`` come as epoch milliseconds wherever that is exact (everything gnnsec writes):
    the driver decodes a DateTime slowly: the before image of a 50k-row re-ingest (10k nodes, 40k activity
    relationships, all there already) took 9.7 s to read with ``properties(x)``, 3.0 s like this, 1.75 s for the
    element ids alone.  ``window`` is left out: the MERGE matches on it, so no write changes it."""
    millis = ", ".join(f"CASE WHEN {_exact_ms(key)} THEN x.{key}.epochMillis END AS {key}" for key in _TIMES)
    times = ", ".join(f"{key}: CASE WHEN {key} IS NULL THEN x.{key} END" for key in _TIMES)
    window = ", window: null" if shape.kind == "activity" else ""
    return (f"WITH row, x, {millis}\nRETURN row.i AS i, elementId(x) AS id, x {{.*, {times}{window}}} AS p, "
            f"{', '.join(_TIMES)}{extra}")


def _read_properties(record: Any) -> dict[str, Any]:
    props = {key: value for key, value in record["p"].items() if value is not None}
    for key in _TIMES:
        if record[key] is not None:
            props[key] = Millis(record[key])
    return props


@dataclass(frozen=True, slots=True)
class Millis:
    """A ``datetime({epochMillis: ms})`` value of the graph, read as its milliseconds (see :func:`_properties`)."""

    ms: int


def read_before(tx: ManagedTransaction, units: Sequence[tuple[Shape, Sequence[Row]]]) -> list[Before]:
    """The before image of ``units`` (a transaction function: run it with ``execute_read``)."""
    images = []
    for shape, rows in units:
        image: Before = defaultdict(list)
        result = tx.run(f"{_match(shape)}\n{_properties(shape)}",
                        chunk={"rows": _keys(shape, enumerate(rows))})
        for record in result:
            image[record["i"]].append((record["id"], _read_properties(record)))
        images.append(dict(image))
    return images


# --- undoing ------------------------------------------------------------------------------------------------------


def undo(session: Session, steps: Sequence[tuple[Shape, Sequence[Row], Before]], chunk: int) -> UndoTally:
    """Undo the committed ``steps`` (in the order they were written) in transactions of ``chunk`` rows, newest first."""
    tally = UndoTally()
    for shape, rows, before in reversed(steps):
        for start in range(0, len(rows), chunk):
            part = [(i, rows[i]) for i in range(start, min(start + chunk, len(rows)))]
            tally.add(session.execute_write(_undo_part, shape, part, before))
    return tally


def _undo_part(tx: ManagedTransaction, shape: Shape, part: list[tuple[int, Row]], before: Before) -> UndoTally:
    """One bounded undo transaction: lock and read the entities, decide in Python, delete and restore.

    A transaction function (``execute_write`` may run it again): it changes nothing outside the transaction."""
    degree = ", COUNT { (x)--() } AS degree" if shape.kind == "node" else ", 0 AS degree"
    result = tx.run(f"{_match(shape)}\nSET x.{_LOCK} = true REMOVE x.{_LOCK}\n{_properties(shape, degree)}",
                    chunk={"rows": _keys(shape, iter(part))})
    now: dict[int, list[tuple[str, dict[str, Any], int]]] = defaultdict(list)
    for record in result:
        now[record["i"]].append((record["id"], _read_properties(record), record["degree"]))
    plan = _Plan()
    for i, row in part:
        was = dict(before.get(i, []))
        for element_id, current, attached in now.get(i, []):
            _plan_entity(plan, shape, row, element_id, was.pop(element_id, None), current, attached)
        plan.left += len(was)  # existed before, gone now: deleted by someone else since, not ours to bring back
    tally = UndoTally(left=plan.left)
    entity = "(x)" if shape.kind == "node" else "()-[x]->()"
    if plan.deletes:
        guard = " AND NOT (x)--()" if shape.kind == "node" else ""
        deleted = tx.run(f"UNWIND $chunk.ids AS id MATCH {entity} WHERE elementId(x) = id{guard} DELETE x "
                         "RETURN count(*) AS n", chunk={"ids": plan.deletes}).single(strict=True)["n"]
        tally.deleted = int(deleted)
        tally.left += len(plan.deletes) - tally.deleted
    if plan.sets:
        tx.run(f"UNWIND $chunk.rows AS row MATCH {entity} WHERE elementId(x) = row.id SET x += row.props",
               chunk={"rows": plan.sets}).consume()
        tally.restored = len(plan.sets)
    return tally


def _plan_entity(plan: _Plan, shape: Shape, row: Row, element_id: str, was: dict[str, Any] | None,
                 current: dict[str, Any], attached: int) -> None:
    """Decide one entity: delete it (this write created it and it holds only what this write set), restore the
    properties that still hold what this write set, and count what another write changed since."""
    if shape.kind == "activity":
        changes, left, delete = _plan_activity(shape, row, was, current)
    else:
        expected = _expected_plain(row, was)
        if was is None:
            mine = {key: value for key, value in expected.items() if value is not None}
            if shape.kind == "node":
                mine["uid"] = _canon(row["uid"])
            delete = attached == 0 and {key: _canon(value) for key, value in current.items()} == mine
            changes, left = {}, 0 if delete else 1
        else:
            changes, left = _compare_and_restore(expected, was, current)
            delete = False
    plan.left += left
    if delete:
        plan.deletes.append(element_id)
    elif changes:
        plan.sets.append({"id": element_id, "props": changes})


def _compare_and_restore(expected: Mapping[str, object], was: Mapping[str, Any],
                         current: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The properties to put back (``None`` removes one) and how many another write has changed since this one."""
    changes: dict[str, Any] = {}
    left = 0
    for key, after in expected.items():
        if _canon(was.get(key)) == after:
            continue  # this write did not change it
        if _canon(current.get(key)) == after:
            changes[key] = _sendable(was.get(key))
        else:
            left += 1
    return changes, left


def _expected_plain(row: Row, was: Mapping[str, Any] | None) -> dict[str, object]:
    """A node or inventory relationship as the loader's MERGE leaves it: ``props`` overwritten, seen widened."""
    expected: dict[str, object] = {key: _canon(value) for key, value in row["props"].items()}
    expected.update(_expected_seen(row, was))
    return expected


def _expected_seen(row: Row, was: Mapping[str, Any] | None) -> dict[str, object]:
    """``first_seen``/``last_seen`` as ``loader._widen_seen`` leaves them (canonical)."""
    out: dict[str, object] = {}
    for key, earlier in (("first_seen", True), ("last_seen", False)):
        old = _canon(None if was is None else was.get(key))
        ms = row.get(key)
        if ms is None or (old is not None and not _is_instant(old)):
            out[key] = old  # Cypher: a null or an incomparable value never replaces the one there
        elif old is None:
            out[key] = ("dt", ms * 1_000_000)
        else:
            nanos = old[1]  # type: ignore[index]  # _is_instant: ("dt", nanoseconds)
            out[key] = ("dt", min(nanos, ms * 1_000_000) if earlier else max(nanos, ms * 1_000_000))
    return out


def _is_instant(canonical: object) -> bool:
    return isinstance(canonical, tuple) and canonical[0] == "dt"


def _plan_activity(shape: Shape, row: Row, was: dict[str, Any] | None,
                   current: dict[str, Any]) -> tuple[dict[str, Any], int, bool]:
    """Undo of ``loader.activity_relationship_query``: take this write's batch shares out, then compare-and-restore
    the rest.  Returns ``(changes, left, delete)``."""
    ours = {c["batch"]: c for c in row["contrib"]}
    old_batches = list((was or {}).get("batches") or [])
    added = [batch for batch in ours if batch not in old_batches]
    now_batches = list(current.get("batches") or [])

    def old_share(p: str, batch: str) -> Any:
        shares = (was or {}).get(f"batch_{p}")
        index = old_batches.index(batch)
        return shares[index] if isinstance(shares, list) and index < len(shares) and shares[index] is not None else 0

    if was is None and not [batch for batch in now_batches if batch not in ours]:
        return {}, 0, True  # created by this write and no other batch has a share in it: delete it
    after_batches = old_batches + added
    after = {p: [_share(ours[b], p) if b in ours else old_share(p, b) for b in after_batches] for p in shape.summed}
    changes: dict[str, Any] = {}
    untouched = _canon(now_batches) == _canon(after_batches) and all(
        _canon(current.get(f"batch_{p}")) == _canon(after[p]) for p in shape.summed)
    if was is not None and untouched:  # the shares are as this write left them: the exact before image
        for key in ("batches", *(f"batch_{p}" for p in shape.summed), *shape.summed):
            if _canon(current.get(key)) != _canon(was.get(key)):
                changes[key] = _sendable(was.get(key))
    else:  # another batch was added or replaced since: take out ours, keep theirs, sum again
        keep = [index for index, batch in enumerate(now_batches) if batch not in added]
        changes["batches"] = [now_batches[index] for index in keep]
        for p in shape.summed:
            now_shares = current.get(f"batch_{p}") or []
            shares = [old_share(p, now_batches[index]) if now_batches[index] in ours
                      else (now_shares[index] if index < len(now_shares) else 0) for index in keep]
            changes[f"batch_{p}"] = shares
            changes[p] = _saturating_sum(shares)
    if was is None:
        return changes, 1, False  # another batch's share keeps it; its actions, sources and times may hold ours
    expected: dict[str, object] = {}
    actions, sources = was.get("actions"), was.get("sources")
    expected["actions"] = _canon(None if actions is None else
                                 [*actions, *(a for a in row["actions"] if a not in actions)])
    expected["sources"] = _canon(None if sources is None else
                                 sources if row["source"] in sources else [*sources, row["source"]])
    expected.update(_expected_seen(row, was))
    expected.update({key: _canon(value) for key, value in row["props"].items()})
    restored, left = _compare_and_restore(expected, was, current)
    changes.update(restored)
    return changes, left, False


def _share(contribution: Mapping[str, Any], p: str) -> Any:
    value = contribution.get(p)
    return 0 if value is None else value


def _saturating_sum(shares: Sequence[Any]) -> Any:
    """The loader's total: the sum of the shares, saturating at the int64 maximum."""
    total: Any = 0
    for share in shares:
        total = INT64_MAX if total > INT64_MAX - share else total + share
    return total


# --- values -------------------------------------------------------------------------------------------------------


def _canon(value: Any) -> object:
    """A value as compare-and-restore compares it: numbers by value (the same share may come back int or float),
    booleans apart from numbers, datetimes by instant (the driver reads offset ``Z`` and zone ``UTC`` alike)."""
    if value is None:
        return None
    if isinstance(value, Millis):
        return ("dt", value.ms * 1_000_000)
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, list | tuple):
        return ("l", tuple(_canon(item) for item in value))
    if isinstance(value, datetime):
        value = neo4j.time.DateTime.from_native(value)
    elif isinstance(value, date):
        value = neo4j.time.Date.from_native(value)
    elif isinstance(value, clock_time):
        value = neo4j.time.Time.from_native(value)
    if isinstance(value, neo4j.time.DateTime):
        if value.tzinfo is None:
            return ("ldt", value.iso_format())
        delta = value.to_native() - _EPOCH
        nanos = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
        return ("dt", nanos + value.nanosecond % 1000)
    return ("o", type(value).__name__, repr(value))


def _sendable(value: Any) -> Any:
    """A before-image value as the driver must send it to store what was there.

    The driver reads offset ``Z`` (what ``datetime({epochMillis})`` stores, i.e. every time gnnsec writes) as the
    zone ``UTC`` and would send it back as ``…Z[UTC]``, a different value to Cypher's ``=``; sent with a fixed
    offset it is ``Z`` again.  (A value stored with the zone id ``UTC`` comes back as ``Z``: same instant.)"""
    if isinstance(value, list):
        return [_sendable(item) for item in value]
    if isinstance(value, Millis):
        return _EPOCH + timedelta(milliseconds=value.ms)
    if isinstance(value, neo4j.time.DateTime) and getattr(value.tzinfo, "zone", None) == "UTC":
        return value.replace(tzinfo=UTC)
    return value
