"""The end-to-end steps over Neo4j: train on the graph, score it, explain a score, record feedback.

Each function takes an open driver and does one job the CLI, the demo and the tests share:
export a snapshot (``graphdb.export``) → model (``gnn``) → write back (``graphdb.writeback``).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from neo4j import Driver

from gnnsec import schema
from gnnsec.graphdb.export import SnapshotFilter, export_snapshot
from gnnsec.graphdb.writeback import (
    EdgeScore,
    NodeScore,
    ScoringRun,
    clear_scores,
    record_run,
    write_edge_scores,
    write_node_scores,
)
from gnnsec.snapshot import Snapshot

if TYPE_CHECKING:
    from gnnsec.gnn.checkpoint import Checkpoint
    from gnnsec.gnn.pipeline import ScoreOutput
    from gnnsec.gnn.train import TrainConfig, TrainResult

ANALYST_VERDICTS = ("benign", "malicious")
REASONS_FOR_TOP = 200
"""Explanations (``anomaly_reasons``) are computed for the anomalous nodes, at most this many per run."""


def configure_cpu_threads() -> int:
    """Leave one core to Neo4j and the OS: intra-op threads that outnumber free cores spin at
    barriers, which made epochs 10-100x slower on a busy 2-core machine. ``GNNSEC_THREADS`` overrides."""
    import os

    import torch

    wanted = int(os.environ.get("GNNSEC_THREADS") or max(1, (os.cpu_count() or 2) - 1))
    torch.set_num_threads(wanted)
    return wanted


def analyst_labels(driver: Driver, database: str | None = None) -> dict[str, int]:
    """uid → 1 (malicious) / 0 (benign) from analyst feedback stored on the nodes."""
    records, _, _ = driver.execute_query(
        "MATCH (n) WHERE n.analyst_label IN $verdicts RETURN n.uid AS uid, n.analyst_label AS verdict",
        verdicts=list(ANALYST_VERDICTS),
        database_=database,
    )
    return {r["uid"]: int(r["verdict"] == "malicious") for r in records}


def train_from_graph(
    driver: Driver,
    flt: SnapshotFilter,
    config: TrainConfig,
    *,
    database: str | None = None,
    use_feedback_labels: bool = True,
    progress: Callable[..., None] | None = None,
) -> tuple[Checkpoint, TrainResult, Snapshot]:
    """Export the window, fit the model self-supervised (plus analyst labels when present)."""
    from gnnsec.gnn.pipeline import train_checkpoint

    configure_cpu_threads()
    snapshot = export_snapshot(driver, flt, database=database)
    if snapshot.num_nodes == 0:
        raise ValueError("the graph is empty for this window: ingest data first (`gnnsec ingest`)")
    if use_feedback_labels:
        labels = analyst_labels(driver, database)
        if labels:
            snapshot.meta["labels"] = labels
    checkpoint, result = train_checkpoint(snapshot, config, progress=progress)
    checkpoint.metrics = {
        **checkpoint.metrics,
        "nodes": snapshot.num_nodes,
        "edges": snapshot.num_edges,
        "window": [flt.since.isoformat() if flt.since else None, flt.until.isoformat() if flt.until else None],
    }
    return checkpoint, result, snapshot


def model_id_of(path: Path) -> str:
    """A model's id is its file name without suffix (stable across machines)."""
    return path.stem


@dataclass(slots=True)
class ScoreResult:
    run: ScoringRun
    snapshot: Snapshot
    output: ScoreOutput
    node_scores: list[NodeScore]


def _edge_window(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def score_graph(
    driver: Driver,
    checkpoint: Checkpoint,
    model_id: str,
    flt: SnapshotFilter,
    *,
    database: str | None = None,
    threshold: float | None = None,
    device: str = "auto",
    write: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ScoreResult:
    """Score the window and write the scores onto the graph (replacing any previous run's).

    ``threshold`` (on the calibrated score) overrides the checkpoint's validation-derived one.
    Nodes an analyst confirmed benign join the detector's reference before scoring (feedback).
    """
    from gnnsec.gnn.detect import add_benign_reference, edge_anomaly
    from gnnsec.gnn.embed import embed

    configure_cpu_threads()
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    say("exporting the snapshot")
    snapshot = export_snapshot(driver, flt, database=database)
    if snapshot.num_nodes == 0:
        raise ValueError("the graph is empty for this window: ingest data first (`gnnsec ingest`)")
    say(f"encoding {snapshot.num_nodes:,} nodes and {snapshot.num_edges:,} relationships")
    if checkpoint.detector is None:
        raise ValueError("this checkpoint has no detector reference; retrain it with `gnnsec train`")
    emb = embed(checkpoint.model, snapshot, checkpoint.spec, device=device)
    benign = [uid for uid, verdict in analyst_labels(driver, database).items() if verdict == 0]
    if benign:
        # Feedback extends the reference for this run only: the caller's checkpoint stays as loaded,
        # so scoring twice never adds the same nodes twice.
        checkpoint = copy.copy(checkpoint)
        checkpoint.detector = copy.deepcopy(checkpoint.detector)
        index = snapshot.index_of()
        rows = np.array([index[uid] for uid in benign if uid in index], dtype=np.int64)
        if rows.size:
            add_benign_reference(checkpoint, emb.subset(rows))
    nodes = checkpoint.detector.score(emb)
    anomalous = nodes.anomalous if threshold is None else nodes.score > threshold
    from gnnsec.gnn.pipeline import ScoreOutput

    output = ScoreOutput(emb, nodes, edge_anomaly(emb.edge_logit), checkpoint.detector.snapshot_score(nodes))

    say("explaining the anomalous nodes")
    labels = [schema.NODE_LABELS[i] for i in snapshot.node_label.tolist()]
    reasons: dict[int, list[str]] = {}
    flagged = np.nonzero(anomalous)[0]
    for i in flagged[np.argsort(-nodes.score[flagged], kind="stable")][:REASONS_FOR_TOP]:
        explanation = checkpoint.detector.explain(emb, nodes, checkpoint.spec, snapshot.node_uid[int(i)])
        reasons[int(i)] = explanation.reasons()
    node_scores = [
        NodeScore(labels[i], snapshot.node_uid[i], float(nodes.score[i]), int(nodes.rank[i]), bool(anomalous[i]),
                  reasons.get(i, []))
        for i in range(snapshot.num_nodes)
    ]
    run = ScoringRun(
        run_id=uuid.uuid4().hex[:16],
        model_id=model_id,
        scored_at=datetime.now(UTC),
        threshold=float(threshold if threshold is not None else checkpoint.detector.config.threshold),
        window_start=flt.since,
        window_end=flt.until,
        nodes_scored=snapshot.num_nodes,
        edges_scored=snapshot.num_edges,
        anomalous_nodes=int(anomalous.sum()),
        snapshot_score=float(output.snapshot.score),
    )
    if write:
        src, dst = snapshot.edge_index
        edge_scores = [
            EdgeScore(labels[int(src[e])], snapshot.node_uid[int(src[e])], schema.RELATION_NAMES[int(t)],
                      labels[int(dst[e])], snapshot.node_uid[int(dst[e])], _edge_window(snapshot.edge_window[e]),
                      float(emb.edge_logit[e]), float(output.edge_anomaly[e]))
            for e, t in enumerate(snapshot.edge_type.tolist())
        ]
        say("writing scores back to Neo4j")
        clear_scores(driver, database)
        write_node_scores(driver, node_scores, run, database=database)
        write_edge_scores(driver, edge_scores, database=database)
        run.seconds = time.perf_counter() - started
        record_run(driver, run, database=database)
    run.seconds = time.perf_counter() - started
    return ScoreResult(run, snapshot, output, node_scores)


def find_node_query() -> str:
    """A subquery finding ``n`` by ``uid`` through each label's uniqueness index (no label scan)."""
    branches = " UNION ".join(f"MATCH (n:{label} {{uid: uid}}) RETURN n" for label in schema.NODE_LABELS)
    return f"CALL (uid) {{ {branches} }}"


def explain_uid(
    driver: Driver,
    checkpoint: Checkpoint,
    uid: str,
    *,
    database: str | None = None,
    hops: int = 2,
    device: str = "auto",
) -> Any:
    """Why ``uid`` scores as it does, computed on its ``hops``-neighbourhood with the run's model."""
    from gnnsec.gnn.embed import embed

    snapshot = export_snapshot(driver, SnapshotFilter(around=[uid], hops=hops), database=database)
    if uid not in snapshot.node_uid:
        raise KeyError(f"no node with uid {uid!r} in the graph")
    if checkpoint.detector is None:
        raise ValueError("this checkpoint has no detector reference; retrain it with `gnnsec train`")
    emb = embed(checkpoint.model, snapshot, checkpoint.spec, device=device)
    nodes = checkpoint.detector.score(emb)
    return checkpoint.detector.explain(emb, nodes, checkpoint.spec, uid)


def record_feedback(
    driver: Driver,
    uids: Sequence[str],
    verdict: str,
    analyst: str,
    *,
    note: str | None = None,
    database: str | None = None,
) -> list[str]:
    """Store an analyst's verdict on nodes; returns the uids that were not found."""
    if verdict not in ANALYST_VERDICTS:
        raise ValueError(f"verdict must be one of {ANALYST_VERDICTS}")
    records, _, _ = driver.execute_query(
        """
        UNWIND $uids AS uid
        OPTIONAL CALL (uid) { """ + find_node_query().removeprefix("CALL (uid) { ") + """
        SET n.analyst_label = $verdict, n.analyst = $analyst, n.analyst_at = $at, n.analyst_note = $note
        RETURN uid, n IS NOT NULL AS found
        """,
        uids=list(uids),
        verdict=verdict,
        analyst=analyst,
        at=datetime.now(UTC),
        note=note,
        database_=database,
    )
    return [r["uid"] for r in records if not r["found"]]
