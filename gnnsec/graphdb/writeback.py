"""Scores → Neo4j properties, batched by ``uid`` (never by internal ids, which Neo4j reuses).

Nodes get ``anomaly_score`` (calibrated to [0, 1]), ``anomaly_rank`` (1 = most unusual within
its label), ``anomalous`` (score above the run's threshold), ``anomaly_reasons``, ``scored_at``,
``model_id`` and ``scoring_run`` (the ``:ScoringRun``'s ``run_id``); relationships get
``distmult_score`` and ``edge_anomaly``; one ``:ScoringRun`` node records the run.  A new run
first clears the previous run's properties, so the graph always shows one consistent scoring.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from neo4j import Driver, ManagedTransaction

from gnnsec import schema
from gnnsec.graphdb.loader import epoch_ms

BATCH_SIZE = 10_000
NODE_SCORE_PROPERTIES = (
    "anomaly_score",
    "anomaly_rank",
    "anomalous",
    "anomaly_reasons",
    "scored_at",
    "model_id",
    "scoring_run",
)
EDGE_SCORE_PROPERTIES = ("distmult_score", "edge_anomaly")


@dataclass(frozen=True, slots=True)
class NodeScore:
    label: str
    uid: str
    score: float
    rank: int
    anomalous: bool
    reasons: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class EdgeScore:
    src_label: str
    src_uid: str
    type: str
    dst_label: str
    dst_uid: str
    window: datetime | None
    distmult_score: float
    edge_anomaly: float


@dataclass(slots=True)
class ScoringRun:
    run_id: str
    model_id: str
    scored_at: datetime
    threshold: float
    window_start: datetime | None = None
    window_end: datetime | None = None
    nodes_scored: int = 0
    edges_scored: int = 0
    anomalous_nodes: int = 0
    snapshot_score: float | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _batches(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def clear_scores(driver: Driver, database: str | None = None) -> None:
    """Remove every score property so a new run starts from a clean graph."""
    node_props = ", ".join(f"n.{p}" for p in NODE_SCORE_PROPERTIES)
    edge_props = ", ".join(f"r.{p}" for p in EDGE_SCORE_PROPERTIES)
    with driver.session(database=database) as session:
        for label in schema.NODE_LABELS:
            session.run(
                f"MATCH (n:{label}) WHERE n.anomaly_score IS NOT NULL "
                f"CALL (n) {{ REMOVE {node_props} }} IN TRANSACTIONS OF 10000 ROWS"
            ).consume()
        session.run(
            f"MATCH ()-[r]->() WHERE r.distmult_score IS NOT NULL "
            f"CALL (r) {{ REMOVE {edge_props} }} IN TRANSACTIONS OF 10000 ROWS"
        ).consume()


def write_node_scores(
    driver: Driver,
    scores: Sequence[NodeScore],
    run: ScoringRun,
    *,
    database: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Set the score properties on each node, matched by label and uid. Returns rows written."""
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in scores:
        by_label[s.label].append(
            {"uid": s.uid, "score": float(s.score), "rank": int(s.rank), "anomalous": bool(s.anomalous),
             "reasons": list(s.reasons)}
        )
    written = 0
    with driver.session(database=database) as session:
        for label, rows in sorted(by_label.items()):
            schema.label_id(label)
            query = f"""
            UNWIND $rows AS row
            MATCH (n:{label} {{uid: row.uid}})
            SET n.anomaly_score = row.score, n.anomaly_rank = row.rank, n.anomalous = row.anomalous,
                n.anomaly_reasons = row.reasons, n.scored_at = $at, n.model_id = $model, n.scoring_run = $run
            """
            for chunk in _batches(rows, BATCH_SIZE):
                session.execute_write(
                    _run, query, {"rows": chunk, "at": run.scored_at, "model": run.model_id, "run": run.run_id}
                )
                written += len(chunk)
                if progress:
                    progress(len(chunk))
    return written


def write_edge_scores(
    driver: Driver,
    scores: Sequence[EdgeScore],
    *,
    database: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Set ``distmult_score``/``edge_anomaly`` on relationships, matched by endpoints, type and window."""
    groups: dict[tuple[str, str, str, bool], list[dict[str, Any]]] = defaultdict(list)
    for s in scores:
        groups[(s.src_label, s.type, s.dst_label, s.window is not None)].append(
            {"src": s.src_uid, "dst": s.dst_uid, "window": epoch_ms(s.window),
             "score": float(s.distmult_score), "anomaly": float(s.edge_anomaly)}
        )
    written = 0
    with driver.session(database=database) as session:
        for (src_label, rel_type, dst_label, windowed), rows in sorted(groups.items()):
            schema.validate_edge(src_label, rel_type, dst_label)
            window = "datetime({epochMillis: row.window})"
            rel_match = f"[r:{rel_type} {{window: {window}}}]" if windowed else f"[r:{rel_type}]"
            query = f"""
            UNWIND $rows AS row
            MATCH (a:{src_label} {{uid: row.src}})-{rel_match}->(b:{dst_label} {{uid: row.dst}})
            SET r.distmult_score = row.score, r.edge_anomaly = row.anomaly
            """
            for chunk in _batches(rows, BATCH_SIZE):
                session.execute_write(_run, query, {"rows": chunk})
                written += len(chunk)
                if progress:
                    progress(len(chunk))
    return written


def record_run(driver: Driver, run: ScoringRun, *, database: str | None = None) -> None:
    """One ``:ScoringRun`` node per run, so analysts can see which model scored what, when."""
    props = {
        "run_id": run.run_id,
        "model_id": run.model_id,
        "scored_at": run.scored_at,
        "threshold": run.threshold,
        "window_start": run.window_start,
        "window_end": run.window_end,
        "nodes_scored": run.nodes_scored,
        "edges_scored": run.edges_scored,
        "anomalous_nodes": run.anomalous_nodes,
        "snapshot_score": run.snapshot_score,
        "seconds": run.seconds,
        **{k: v for k, v in run.extra.items() if isinstance(v, str | int | float | bool)},
    }
    props = {k: v for k, v in props.items() if v is not None}
    with driver.session(database=database) as session:
        session.execute_write(_run, "MERGE (r:ScoringRun {run_id: $props.run_id}) SET r += $props", {"props": props})


def _run(tx: ManagedTransaction, query: str, params: dict[str, Any]) -> None:
    tx.run(query, params).consume()
