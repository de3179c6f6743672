"""Cypher → :class:`gnnsec.snapshot.Snapshot`: the subgraph the GNN trains on or scores.

A snapshot is a time window (activity relationships whose aggregation window starts inside
``[since, until)``; inventory relationships always belong), optionally restricted to clouds or
accounts, or to the ``hops``-neighbourhood of given uids.  Each query returns one record of columns for
a batch of nodes (:data:`BATCH_ROWS`): the nodes themselves, then the relationships leaving them, decoded
straight into growing arrays, so client memory holds the snapshot and not a copy of every record.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from neo4j import READ_ACCESS, Driver, Record
from neo4j.time import Date, DateTime

from gnnsec import schema
from gnnsec.gc_pause import paused_gc
from gnnsec.snapshot import ElementIds, Snapshot, element_ids_at

EXCLUDED_NODE_PROPERTIES = frozenset(
    {
        "anomaly_score",
        "anomaly_rank",
        "anomalous",
        "scored_at",
        "scoring_run",
        "model_id",
        "anomaly_reasons",
        "anomaly_raw",
        "anomaly_calibration",
        "score_window",
        "reconstruction_error",
        "knn_distance",
        "analyst_label",
        "analyst",
        "analyst_at",
        "analyst_note",
    }
)
"""Properties written by scoring or analysts: never fed back into features."""



@dataclass(frozen=True, slots=True)
class SnapshotFilter:
    """Which part of the graph to export (every field optional)."""

    since: datetime | None = None
    until: datetime | None = None
    clouds: Sequence[str] = ()
    accounts: Sequence[str] = ()
    around: Sequence[str] = ()
    hops: int = 2
    labels: Sequence[str] = schema.NODE_LABELS
    relation_types: Sequence[str] = schema.RELATION_NAMES


_PLAIN = frozenset({str, int, float, bool})


def _to_python(value: Any) -> Any:
    if isinstance(value, DateTime | Date):
        native = value.to_native()
        return native.timestamp() if isinstance(native, datetime) else float(
            datetime(native.year, native.month, native.day).timestamp()
        )
    if isinstance(value, list):
        return [_to_python(v) for v in value]
    return value


def _window_iso(epoch_ms: int, names: dict[int, str]) -> str:
    """A window start as ISO text, in the form ``neo4j.time.DateTime.iso_format()`` gives for UTC
    (few distinct windows: memoised)."""
    name = names.get(epoch_ms)
    if name is None:
        moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
        name = names[epoch_ms] = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 1000:09d}+00:00"
    return name


def _node_filter(alias: str, flt: SnapshotFilter) -> str:
    clauses = []
    if flt.clouds:
        clauses.append(f"({alias}.cloud IS NULL OR {alias}.cloud IN $clouds)")
    if flt.accounts:
        clauses.append(f"({alias}.account IS NULL OR {alias}.account IN $accounts)")
    if flt.around:
        clauses.append(f"{alias}.uid IN $scope")
    return " AND ".join(clauses)


def has_nodes(driver: Driver, flt: SnapshotFilter | None = None, *, database: str | None = None) -> bool:
    """Whether :func:`export_snapshot` with ``flt`` would find any node: one cheap query, so a command can say
    "nothing there" before it loads torch or exports anything."""
    flt = flt or SnapshotFilter()
    where = " AND ".join(c for c in ("n.uid IS NOT NULL", _node_filter("n", flt)) if c)
    params: dict[str, Any] = {"clouds": list(flt.clouds), "accounts": list(flt.accounts)}
    if flt.around:
        params["scope"] = _scope(driver, database, flt)
    with driver.session(database=database, default_access_mode=READ_ACCESS) as session:
        labels = "|".join(flt.labels)
        return session.run(f"MATCH (n:{labels}) WHERE {where} RETURN 1 LIMIT 1", params).single() is not None


def _scope(driver: Driver, database: str | None, flt: SnapshotFilter) -> list[str]:
    """uids within ``hops`` of the ``around`` uids (undirected, schema relationships only: a walk
    through ``(:ScoringRun)-[:SCORED]->`` would join every node one run scored)."""
    hops = max(0, int(flt.hops))
    types = "|".join(schema.RELATION_NAMES)
    query = (
        f"MATCH (s) WHERE s.uid IN $uids "
        f"MATCH (s)-[:{types}*0..{hops}]-(n) RETURN DISTINCT n.uid AS uid"
    )
    with driver.session(database=database, default_access_mode=READ_ACCESS) as session:
        return [record["uid"] for record in session.run(query, uids=list(flt.around))]


@paused_gc()
def export_snapshot(
    driver: Driver,
    flt: SnapshotFilter | None = None,
    *,
    database: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Snapshot:
    """Stream the filtered subgraph out of Neo4j into a :class:`Snapshot` (the cyclic collector paused: see
    :mod:`gnnsec.gc_pause`)."""
    flt = flt or SnapshotFilter()
    params: dict[str, Any] = {
        "clouds": list(flt.clouds),
        "accounts": list(flt.accounts),
        "since": flt.since,
        "until": flt.until,
    }
    if flt.around:
        params["scope"] = _scope(driver, database, flt)

    node_uid: list[str] = []
    node_label: list[int] = []
    node_props: list[dict[str, Any]] = []
    node_element_ids: list[str] = []
    index: dict[tuple[str, str], int] = {}
    # Read sessions: through a neo4j:// routing driver, a cluster serves the export from a secondary.
    batches: list[tuple[str, list[str]]] = []
    with driver.session(database=database, default_access_mode=READ_ACCESS) as session:
        for label in flt.labels:
            schema.label_id(label)
            where = " AND ".join(c for c in ("n.uid IS NOT NULL", _node_filter("n", flt)) if c)
            ids = session.run(f"MATCH (n:{label}) WHERE {where} RETURN collect(elementId(n)) AS ids", params).single(
                strict=True)["ids"]
            batches += [(label, ids[i : i + BATCH_ROWS]) for i in range(0, len(ids), BATCH_ROWS)]
    # first/last seen leave the server as epoch seconds: hydrating a driver DateTime per value made the
    # export several times slower than the rest of the record. Scoring's own properties travel as nulls.
    dropped = "".join(f", {name}: null" for name in sorted(EXCLUDED_NODE_PROPERTIES))
    query = (
        "UNWIND $ids AS id MATCH (n) WHERE elementId(n) = id "
        "RETURN collect(n.uid) AS uid, collect(id) AS id, "
        f"collect(n {{.*, first_seen: n.first_seen.epochMillis / 1000.0, last_seen: n.last_seen.epochMillis / 1000.0"
        f"{dropped}}}) AS p"
    )
    for (label, _), record in zip(batches, _prefetched(driver, database, query, [{"ids": b} for _, b in batches]),
                                  strict=True):
        if record is None:
            continue
        label_id = schema.label_id(label)
        count = 0
        for uid, element_id, stored in zip(*record.values(), strict=True):
            if (label, uid) in index:
                continue
            # Keys interned: the driver decodes each record's keys anew (about 0.4 GB at a million nodes). The
            # excluded properties arrive as nulls; plain values skip the conversion (a fifth of the client's time).
            props = {sys.intern(k): v if type(v) in _PLAIN else _to_python(v) for k, v in stored.items()
                     if v is not None}
            index[(label, uid)] = len(node_uid)
            node_uid.append(uid)
            node_label.append(label_id)
            node_props.append(props)
            node_element_ids.append(element_id)
            count += 1
        if progress:
            progress(count)
    edges = _export_relationships(driver, database, node_element_ids, flt, params, progress)

    sources, targets, types = (edges.column(name, np.int64) for name in ("sources", "targets", "types"))
    counts = edges.column("counts", np.float64)
    counts[counts == 0] = 1.0  # no count, or 0: one event, as inventory
    # Relationships in a fixed order (type, source, target) whatever order the store returned them in, so the
    # examples a finding quotes ("e.g. ...") and every tie broken by position do not move with the store.
    order = np.lexsort((targets, sources, types))
    positions = order.tolist()
    windows = _window_names(edges.column("windows", np.int64)[order])
    snapshot = Snapshot(
        node_uid=node_uid,
        node_label=np.asarray(node_label, dtype=np.int64),
        node_props=node_props,
        edge_index=np.stack([sources[order], targets[order]]).reshape(2, -1),
        edge_type=types[order],
        edge_count=counts[order],
        edge_first_seen=_seconds(edges.column("first_seen", np.int64)[order]),
        edge_last_seen=_seconds(edges.column("last_seen", np.int64)[order]),
        edge_window=windows,
        edge_actions=[edges.actions[e] for e in positions],
        window_start=flt.since.timestamp() if flt.since else None,
        window_end=flt.until.timestamp() if flt.until else None,
        meta={"labels_exported": list(flt.labels)},
        edge_element_id=element_ids_at(edges.element_ids(), order),
    )
    snapshot.validate()
    return snapshot


BATCH_ROWS = 2_000
"""Nodes, or source nodes of relationships, that one query returns as columns in a single record.

The driver decodes every record as its own Bolt message: one record per relationship spent about 20 µs
each in the driver (a profile of the medium estate's 486k relationships: 28 of 43 s in ``fetch_message``).
Columns for 2,000 sources per record cut the relationships' export from ~10 s to ~6 s."""


QUERIES_IN_FLIGHT = 2
"""Batch queries running at once (each in its own thread and session): Neo4j runs a query on one core, and the
driver decodes a record in the thread that fetched it. Medium estate, fresh process each, load 1.5-2: 1 in flight
5.3-5.8 s (93-102k rows/s), 2 in flight 3.8-4.0 s (136-142k), 3 in flight 3.7-3.8 s (144-147k)."""


def _prefetched(
    driver: Driver, database: str | None, query: str, batches: list[dict[str, Any]]
) -> Iterator[Record | None]:
    """The single record ``query`` returns for each parameter set, in order, with the next ones already running
    (:data:`QUERIES_IN_FLIGHT`) while the caller decodes this one: without the overlap the server sat idle for
    ~4.7 of the relationships' 9 s while the client decoded."""

    def fetch(params: dict[str, Any]) -> Record | None:
        with driver.session(database=database, default_access_mode=READ_ACCESS) as session:
            return session.run(query, params).single()

    with ThreadPoolExecutor(max_workers=QUERIES_IN_FLIGHT, thread_name_prefix="gnnsec-export") as pool:
        pending = deque(pool.submit(fetch, params) for params in batches[:QUERIES_IN_FLIGHT])
        for k in range(len(batches)):
            record = pending.popleft().result()
            if k + QUERIES_IN_FLIGHT < len(batches):
                pending.append(pool.submit(fetch, batches[k + QUERIES_IN_FLIGHT]))
            yield record


ABSENT = -(2**62)
"""What a missing count, timestamp or window travels as, so every column is flat numbers (``collect`` drops nulls,
and a list per row was another object for the driver to build)."""


@dataclass(slots=True)
class _Edges:
    """The exported relationships, one array per batch and column (timestamps and windows epoch milliseconds,
    :data:`ABSENT` where missing)."""

    sources: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    types: list[np.ndarray] = field(default_factory=list)
    counts: list[np.ndarray] = field(default_factory=list)
    first_seen: list[np.ndarray] = field(default_factory=list)
    last_seen: list[np.ndarray] = field(default_factory=list)
    windows: list[np.ndarray] = field(default_factory=list)
    actions: list[list[str]] = field(default_factory=list)
    element_id_parts: list[Sequence[str]] = field(default_factory=list)  # per batch, compacted as they arrive

    def column(self, name: str, dtype: type) -> np.ndarray:
        parts: list[np.ndarray] = getattr(self, name)
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)

    def element_ids(self) -> Sequence[str]:
        parts = [p for p in self.element_id_parts if len(p)]  # a batch whose targets were all filtered out is []
        compact = [p for p in parts if isinstance(p, ElementIds)]
        if compact and len(compact) == len(parts) and len({p.prefix for p in compact}) == 1:
            return ElementIds(compact[0].prefix, np.concatenate([p.numbers for p in compact]))
        return [i for part in parts for i in part]


def _seconds(epoch_ms: np.ndarray) -> np.ndarray:
    """Epoch milliseconds as float seconds, NaN where :data:`ABSENT`."""
    return np.where(epoch_ms == ABSENT, np.nan, epoch_ms / 1000.0)


def _window_names(epoch_ms: np.ndarray) -> list[str | None]:
    """Each window start as ISO text, in the form ``neo4j.time.DateTime.iso_format()`` gives for UTC (a few
    distinct windows: each named once)."""
    distinct, inverse = np.unique(epoch_ms, return_inverse=True)
    names: dict[int, str] = {}
    named = [None if w == ABSENT else _window_iso(w, names) for w in distinct.tolist()]
    return [named[k] for k in inverse.tolist()]


def _relationship_query(flt: SnapshotFilter) -> str:
    """Outgoing schema relationships of a batch of source nodes (``$ids``, element ids) as one record of
    columns; ``src`` is the source's position in the batch. Activity keeps to ``[since, until)``."""
    window = [c for c, bound in (("r.window >= $since", flt.since), ("r.window < $until", flt.until)) if bound]
    kept = "type(r) IN $inventory OR (type(r) IN $activity" + "".join(f" AND {c}" for c in window) + ")"
    target = _node_filter("b", flt)
    return f"""
    UNWIND range(0, size($ids) - 1) AS i
    MATCH (a) WHERE elementId(a) = $ids[i]
    MATCH (a)-[r]->(b) WHERE ({kept}){' AND ' + target if target else ''}
    RETURN collect(i) AS src, collect(elementId(b)) AS dst, collect(type(r)) AS type,
           collect(coalesce(r.count, 0)) AS count,
           collect(coalesce(r.first_seen.epochMillis, $absent)) AS first,
           collect(coalesce(r.last_seen.epochMillis, $absent)) AS last,
           collect(coalesce(r.window.epochMillis, $absent)) AS window,
           collect(coalesce(r.actions, [])) AS actions, collect(elementId(r)) AS id
    """


def _export_relationships(
    driver: Driver, database: str | None, node_element_ids: list[str], flt: SnapshotFilter, params: dict[str, Any],
    progress: Callable[[int], None] | None,
) -> _Edges:
    """Every relationship of ``flt.relation_types`` between two exported nodes, by batches of sources."""
    types = [schema.relation(t) for t in flt.relation_types]
    params = {**params, "inventory": [t.name for t in types if not t.aggregated],
              "activity": [t.name for t in types if t.aggregated], "absent": ABSENT}
    position: dict[str, int] = {}
    for i, element_id in enumerate(node_element_ids):  # a node exported under two labels counts as its first
        position.setdefault(element_id, i)
    sources = list(position)
    source_rows = np.fromiter(position.values(), dtype=np.int64, count=len(position))
    starts = range(0, len(sources), BATCH_ROWS)
    batches = [sources[start : start + BATCH_ROWS] for start in starts]
    rel_ids = {t.name: schema.relation_id(t.name) for t in types}
    query = _relationship_query(flt)
    shared_actions: dict[tuple[str, ...], list[str]] = {}
    out = _Edges()
    for start, record in zip(starts, _prefetched(driver, database, query, [{**params, "ids": b} for b in batches]),
                             strict=True):
        if record is None:
            continue
        src, dst, rel, count, first, last, window, actions, rel_element_ids = record.values()
        targets = np.fromiter((position.get(b, -1) for b in dst), dtype=np.int64, count=len(dst))
        columns = [np.asarray(src, dtype=np.int64), np.fromiter((rel_ids[t] for t in rel), np.int64, len(rel)),
                   np.asarray(count, dtype=np.float64), np.asarray(first, dtype=np.int64),
                   np.asarray(last, dtype=np.int64), np.asarray(window, dtype=np.int64)]
        if (targets < 0).any():  # a target outside the exported nodes: not ours
            keep = np.flatnonzero(targets >= 0)
            targets, columns = targets[keep], [column[keep] for column in columns]
            actions, rel_element_ids = ([column[j] for j in keep.tolist()] for column in (actions, rel_element_ids))
        out.sources.append(source_rows[start + columns[0]])
        out.targets.append(targets)
        for name, column in zip(("types", "counts", "first_seen", "last_seen", "windows"), columns[1:], strict=True):
            getattr(out, name).append(column)
        # one list object per distinct action list: a million-node estate's 5M lists held 674 MB, of which
        # about 2,400 were distinct (the snapshot never mutates them)
        out.actions.extend(shared_actions.setdefault(tuple(a), a) for a in actions)
        out.element_id_parts.append(ElementIds.of(rel_element_ids))
        if progress:
            progress(len(targets))
    return out


def node_labels_of(snapshot: Snapshot) -> list[str]:
    """The label name of every node, in node order."""
    return [schema.NODE_LABELS[i] for i in snapshot.node_label.tolist()]
