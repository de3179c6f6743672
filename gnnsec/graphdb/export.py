"""Cypher → :class:`gnnsec.snapshot.Snapshot`: the subgraph the GNN trains on or scores.

A snapshot is a time window (activity relationships whose aggregation window starts inside
``[since, until)``; inventory relationships always belong), optionally restricted to clouds or
accounts, or to the ``hops``-neighbourhood of given uids.  Results are streamed from the
driver (``fetch_size`` records at a time) straight into growing arrays, per label and per
relationship type, so client memory holds the snapshot and not a copy of every record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from neo4j import READ_ACCESS, Driver
from neo4j.time import Date, DateTime

from gnnsec import schema
from gnnsec.snapshot import Snapshot

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

FETCH_SIZE = 10_000


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


def export_snapshot(
    driver: Driver,
    flt: SnapshotFilter | None = None,
    *,
    database: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Snapshot:
    """Stream the filtered subgraph out of Neo4j into a :class:`Snapshot`."""
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
    index: dict[tuple[str, str], int] = {}
    # Read sessions: through a neo4j:// routing driver, a cluster serves the export from a secondary.
    with driver.session(database=database, fetch_size=FETCH_SIZE, default_access_mode=READ_ACCESS) as session:
        for label in flt.labels:
            label_id = schema.label_id(label)
            where = _node_filter("n", flt)
            # first/last seen leave the server as epoch milliseconds: hydrating a driver DateTime per
            # value made the export several times slower than the rest of the record.
            query = (
                f"MATCH (n:{label}) {'WHERE ' + where if where else ''} RETURN n.uid AS uid, "
                "n {.*, first_seen: n.first_seen.epochMillis, last_seen: n.last_seen.epochMillis} AS p"
            )
            count = 0
            for record in session.run(query, params):
                uid = record["uid"]
                if uid is None or (label, uid) in index:
                    continue
                props = {k: _to_python(v) for k, v in record["p"].items()
                         if k not in EXCLUDED_NODE_PROPERTIES and v is not None}
                for key in ("first_seen", "last_seen"):
                    if key in props:
                        props[key] = props[key] / 1000.0
                index[(label, uid)] = len(node_uid)
                node_uid.append(uid)
                node_label.append(label_id)
                node_props.append(props)
                count += 1
            if progress:
                progress(count)

        sources: list[int] = []
        targets: list[int] = []
        types: list[int] = []
        counts: list[float] = []
        first_seen: list[float] = []
        last_seen: list[float] = []
        windows: list[str | None] = []
        window_names: dict[int, str] = {}
        actions: list[list[str]] = []
        for rel_type in flt.relation_types:
            rel = schema.relation(rel_type)
            rel_id = schema.relation_id(rel_type)
            conditions = []
            if rel.aggregated and flt.since is not None:
                conditions.append("r.window >= $since")
            if rel.aggregated and flt.until is not None:
                conditions.append("r.window < $until")
            for alias in ("a", "b"):
                extra = _node_filter(alias, flt)
                if extra:
                    conditions.append(extra)
            where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
            query = (
                f"MATCH (a)-[r:{rel_type}]->(b) {where} "
                "RETURN labels(a)[0] AS al, a.uid AS a, labels(b)[0] AS bl, b.uid AS b, r.count AS count, "
                "r.first_seen.epochMillis AS fs, r.last_seen.epochMillis AS ls, r.window.epochMillis AS w, "
                "r.actions AS actions"
            )
            count = 0
            for record in session.run(query, params):
                src = index.get((record["al"], record["a"]))
                dst = index.get((record["bl"], record["b"]))
                if src is None or dst is None:
                    continue
                sources.append(src)
                targets.append(dst)
                types.append(rel_id)
                counts.append(float(record["count"] or 1))
                first_seen.append(math.nan if record["fs"] is None else record["fs"] / 1000.0)
                last_seen.append(math.nan if record["ls"] is None else record["ls"] / 1000.0)
                windows.append(None if record["w"] is None else _window_iso(record["w"], window_names))
                actions.append(list(record["actions"] or []))
                count += 1
            if progress:
                progress(count)

    snapshot = Snapshot(
        node_uid=node_uid,
        node_label=np.asarray(node_label, dtype=np.int64),
        node_props=node_props,
        edge_index=np.asarray([sources, targets], dtype=np.int64).reshape(2, -1),
        edge_type=np.asarray(types, dtype=np.int64),
        edge_count=np.asarray(counts, dtype=np.float64),
        edge_first_seen=np.asarray(first_seen, dtype=np.float64),
        edge_last_seen=np.asarray(last_seen, dtype=np.float64),
        edge_window=windows,
        edge_actions=actions,
        window_start=flt.since.timestamp() if flt.since else None,
        window_end=flt.until.timestamp() if flt.until else None,
        meta={"labels_exported": list(flt.labels)},
    )
    snapshot.validate()
    return snapshot


def node_labels_of(snapshot: Snapshot) -> list[str]:
    """The label name of every node, in node order."""
    return [schema.NODE_LABELS[i] for i in snapshot.node_label.tolist()]
