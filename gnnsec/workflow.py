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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from neo4j import Driver

from gnnsec import schema
from gnnsec.errors import InputError, StateError
from gnnsec.gc_pause import paused_gc
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
    from gnnsec.gnn.detect import Explanation
    from gnnsec.gnn.features import FeatureSpec
    from gnnsec.gnn.pipeline import ScoreOutput
    from gnnsec.gnn.train import TrainConfig, TrainResult

ANALYST_VERDICTS = ("benign", "malicious")
REASONS_FOR_TOP = 200
"""Explanations (``anomaly_reasons``) are computed for the anomalous nodes, at most this many per run."""


def configure_cpu_threads(database_idle: bool = False) -> int:
    """Leave one core to Neo4j and the OS: intra-op threads that outnumber free cores spin at
    barriers, which made epochs 10-100x slower on a busy 2-core machine. With ``database_idle`` (scoring
    between its export and its write-back, training after its export, evaluation after reading its data) every
    core is ours.
    ``GNNSEC_THREADS`` overrides both."""
    import os

    import torch

    from gnnsec.config import EnvSettings

    wanted = EnvSettings.from_env().threads or max(1, (os.cpu_count() or 2) - (0 if database_idle else 1))
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
    stage: Callable[[str], None] | None = None,
) -> tuple[Checkpoint, TrainResult, Snapshot]:
    """Export the window, fit the model self-supervised (plus analyst labels when present); ``progress`` is told
    of each epoch, ``stage`` of the steps after them."""
    from gnnsec.gnn.pipeline import train_checkpoint

    configure_cpu_threads()
    snapshot = export_snapshot(driver, flt, database=database)
    if snapshot.num_nodes == 0:
        raise StateError("the graph is empty for this window: ingest data first (`gnnsec ingest`)")
    if use_feedback_labels:
        labels = analyst_labels(driver, database)
        if labels:
            snapshot.meta["labels"] = labels
    # Neo4j has nothing more to do for this run, so training takes every core, as scoring does between its
    # export and write-back: medium estate on 2 cores, 1 and 2 threads alternated, 28.1 / 23.2 -> 19.4 / 19.6 s
    # an epoch with identical losses
    configure_cpu_threads(database_idle=True)
    checkpoint, result = train_checkpoint(snapshot, config, progress=progress, stage=stage)
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
    nproc: int = 1,
) -> ScoreResult:
    """Score the window and write the scores onto the graph (replacing any previous run's).

    ``threshold`` (on the calibrated score) overrides the checkpoint's validation-derived one.
    Nodes an analyst confirmed benign join the detector's reference before scoring (feedback).
    """
    from gnnsec.gnn.detect import add_benign_reference, edge_anomaly
    from gnnsec.gnn.distributed_embed import embed_partitioned

    configure_cpu_threads()
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    say("exporting the snapshot")
    snapshot = export_snapshot(driver, flt, database=database)
    if snapshot.num_nodes == 0:
        raise StateError("the graph is empty for this window: ingest data first (`gnnsec ingest`)")
    say(f"encoding {snapshot.num_nodes:,} nodes and {snapshot.num_edges:,} relationships")
    detector = checkpoint.detector
    if detector is None:
        raise StateError("this checkpoint has no detector reference; retrain it with `gnnsec train`")
    configure_cpu_threads(database_idle=True)
    emb = embed_partitioned(checkpoint.model, snapshot, checkpoint.spec, nproc, device=device)  # 1: embed()
    benign = [uid for uid, verdict in analyst_labels(driver, database).items() if verdict == 0]
    if benign:
        # Feedback extends the reference for this run only: the caller's checkpoint stays as loaded,
        # so scoring twice never adds the same nodes twice.
        checkpoint = copy.copy(checkpoint)
        detector = checkpoint.detector = copy.deepcopy(detector)
        index = snapshot.index_of()
        rows = np.array([index[uid] for uid in benign if uid in index], dtype=np.int64)
        if rows.size:
            add_benign_reference(checkpoint, emb.subset(rows))
    nodes = detector.score(emb)
    anomalous = nodes.anomalous if threshold is None else nodes.score > threshold
    from gnnsec.gnn.pipeline import ScoreOutput

    output = ScoreOutput(emb, nodes, edge_anomaly(emb.edge_logit), detector.snapshot_score(nodes))

    say("explaining the anomalous nodes")
    reasons: dict[int, list[str]] = {}
    flagged = np.nonzero(anomalous)[0]
    for i in flagged[np.argsort(-nodes.score[flagged], kind="stable")][:REASONS_FOR_TOP]:
        explanation = detector.explain(emb, nodes, checkpoint.spec, snapshot.node_uid[int(i)])
        reasons[int(i)] = features_in_words(explanation, snapshot, checkpoint.spec).reasons()
    node_scores, edge_scores = score_rows(snapshot, nodes.score, nodes.rank, anomalous, reasons, emb.edge_logit,
                                          output.edge_anomaly, edges=write)
    run = ScoringRun(
        run_id=uuid.uuid4().hex[:16],
        model_id=model_id,
        scored_at=datetime.now(UTC),
        threshold=float(threshold if threshold is not None else detector.config.threshold),
        window_start=flt.since,
        window_end=flt.until,
        nodes_scored=snapshot.num_nodes,
        edges_scored=snapshot.num_edges,
        anomalous_nodes=int(anomalous.sum()),
        snapshot_score=float(output.snapshot.score),
    )
    if write:
        say("writing scores back to Neo4j")
        configure_cpu_threads()
        clear_scores(driver, database)
        write_node_scores(driver, node_scores, run, database=database)
        write_edge_scores(driver, edge_scores, database=database)
        run.seconds = time.perf_counter() - started
        record_run(driver, run, database=database)
    run.seconds = time.perf_counter() - started
    return ScoreResult(run, snapshot, output, node_scores)


def _element_ids(snapshot: Snapshot) -> Callable[[int], str | None]:
    """Relationship ``e``'s element id from this run's export, for write-back (``None`` when the snapshot
    did not come from the database)."""
    ids = snapshot.edge_element_id
    return ids.__getitem__ if ids else (lambda _e: None)


@paused_gc()
def score_rows(
    snapshot: Snapshot,
    score: np.ndarray,
    rank: np.ndarray,
    anomalous: np.ndarray,
    reasons: dict[int, list[str]],
    edge_logit: np.ndarray,
    edge_anomaly: np.ndarray,
    edges: bool = True,
) -> tuple[list[NodeScore], list[EdgeScore]]:
    """The write-back rows of a whole-graph run: one per node, and one per relationship when ``edges``.

    Columns go through ``tolist`` and windows are parsed once per distinct value: reading numpy scalars
    one at a time was most of the time spent here on millions of relationships. Built with the cyclic
    collector paused (:mod:`gnnsec.gc_pause`)."""
    label_names = [schema.NODE_LABELS[i] for i in snapshot.node_label.tolist()]
    uids = snapshot.node_uid
    node_scores = [
        NodeScore(label, uid, s, r, a, reasons.get(i, []))
        for i, (label, uid, s, r, a) in enumerate(zip(label_names, uids, score.astype(float).tolist(),
                                                      rank.astype(int).tolist(), anomalous.astype(bool).tolist(),
                                                      strict=True))
    ]
    if not edges:
        return node_scores, []
    windows = {w: _edge_window(w) for w in set(snapshot.edge_window)}
    element_ids: Sequence[str | None] = snapshot.edge_element_id or [None] * snapshot.num_edges
    src, dst = snapshot.edge_index
    edge_scores = [
        EdgeScore(label_names[s], uids[s], schema.RELATION_NAMES[t], label_names[d], uids[d], windows[w], logit, a,
                  element_id=element)
        for s, d, t, w, logit, a, element in zip(src.tolist(), dst.tolist(), snapshot.edge_type.tolist(),
                                                snapshot.edge_window, edge_logit.astype(float).tolist(),
                                                np.asarray(edge_anomaly, dtype=float).tolist(), element_ids,
                                                strict=True)
    ]
    return node_scores, edge_scores


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
) -> Explanation:
    """Why ``uid`` scores as it does, computed on its ``hops``-neighbourhood with the run's model."""
    from gnnsec.gnn.embed import embed

    snapshot = export_snapshot(driver, SnapshotFilter(around=[uid], hops=hops), database=database)
    if uid not in snapshot.node_uid:
        raise InputError(f"no node with uid {uid!r} in the graph")
    if checkpoint.detector is None:
        raise StateError("this checkpoint has no detector reference; retrain it with `gnnsec train`")
    emb = embed(checkpoint.model, snapshot, checkpoint.spec, device=device)
    nodes = checkpoint.detector.score(emb)
    return features_in_words(checkpoint.detector.explain(emb, nodes, checkpoint.spec, uid), snapshot, checkpoint.spec)


def features_in_words(explanation: Explanation, snapshot: Snapshot, spec: FeatureSpec) -> Explanation:
    """The explanation with its feature columns named in words (``cat:endpoint#2`` → ``endpoint = '…'``)."""
    from gnnsec.gnn.features import describe_feature

    node = snapshot.node_uid.index(explanation.uid)
    explanation.unusual_features = [(describe_feature(name, snapshot, node, spec, z), z)
                                    for name, z in explanation.unusual_features]
    return explanation


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
        raise InputError(f"verdict must be one of {ANALYST_VERDICTS}")
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


# ---- scoring against history ------------------------------------------------------------------------

DAY = timedelta(days=1)
HISTORY_DAYS = 30
"""Days of history each scored window is compared with (its own and its label's)."""


@dataclass(slots=True)
class WindowResult:
    """One scored window: the run, and its pairs ranked (best first)."""

    run: ScoringRun
    node_scores: list[NodeScore]
    edge_scores: list[EdgeScore]
    reference_pairs: int


def _day_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def activity_days(driver: Driver, database: str | None = None) -> list[datetime]:
    """Start of every aggregation window that holds activity, oldest first."""
    days: set[int] = set()
    for rel in schema.RELATION_TYPES:
        if not rel.aggregated:
            continue
        records, _, _ = driver.execute_query(
            f"MATCH ()-[r:{rel.name}]->() WHERE r.window IS NOT NULL RETURN DISTINCT r.window.epochMillis AS w",
            database_=database,
        )
        days.update(int(r["w"]) for r in records)
    return [datetime.fromtimestamp(ms / 1000, tz=UTC) for ms in sorted(days)]


def scored_windows(driver: Driver, clouds: Sequence[str], accounts: Sequence[str],
                   database: str | None = None) -> set[datetime]:
    """Window starts already scored with exactly this scope."""
    records, _, _ = driver.execute_query(
        "MATCH (r:ScoringRun) WHERE r.window_start IS NOT NULL "
        "RETURN r.window_start AS w, coalesce(r.clouds, []) AS c, coalesce(r.accounts, []) AS a",
        database_=database,
    )
    return {r["w"].to_native().astimezone(UTC) for r in records
            if sorted(r["c"]) == sorted(clouds) and sorted(r["a"]) == sorted(accounts)}


def check_scope(driver: Driver, clouds: Sequence[str], accounts: Sequence[str], database: str | None = None) -> None:
    """Unknown ``--cloud``/``--account`` values are errors (a typo must not score an empty estate)."""
    for prop, wanted, flag in (("cloud", clouds, "--cloud"), ("account", accounts, "--account")):
        if not wanted:
            continue
        known: set[str] = set()
        for label in schema.NODE_LABELS:
            records, _, _ = driver.execute_query(
                f"MATCH (n:{label}) WHERE n.{prop} IS NOT NULL RETURN DISTINCT n.{prop} AS v", database_=database)
            known.update(str(r["v"]) for r in records)
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise InputError(f"{flag} {', '.join(unknown)}: no node has that {prop}; known: "
                             f"{', '.join(sorted(known)[:20]) or 'none (ingest data first)'}")


def windows_to_score(driver: Driver, since: datetime | None, until: datetime | None, all_unscored: bool,
                     clouds: Sequence[str] = (), accounts: Sequence[str] = (), database: str | None = None,
                     now: datetime | None = None) -> list[datetime]:
    """Day windows to score: those in [since, until); else every unscored complete day (``all_unscored``);
    else the most recent complete day not yet scored. A day is complete once it has ended."""
    if since is not None and until is not None and since >= until:
        raise InputError(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    days = activity_days(driver, database)
    if not days:
        raise StateError("the graph holds no activity to score: ingest logs first (`gnnsec ingest`)")
    if since is not None:
        start = _day_start(since)
        end = until or (days[-1] + DAY)
        return [d for d in days if start <= d < end]
    now = now or datetime.now(UTC)
    complete = [d for d in days if d + DAY <= now and (until is None or d < until)]
    done = scored_windows(driver, clouds, accounts, database)
    # The first days lack the history a calibration needs (warm-up plus the minimum reference windows).
    from gnnsec.gnn.window_detect import TailConfig

    needed = TailConfig().warmup_windows + TailConfig().min_reference_windows
    unscored = [d for d in complete if d not in done and d >= days[0] + needed * DAY]
    return unscored if all_unscored else unscored[-1:]


@paused_gc()
def score_windows(
    driver: Driver,
    windows: Sequence[datetime],
    *,
    clouds: Sequence[str] = (),
    accounts: Sequence[str] = (),
    checkpoint: Checkpoint | None = None,
    model_id: str = "history",
    history_days: int = HISTORY_DAYS,
    threshold: float | None = None,
    floor: float = 0.9,
    database: str | None = None,
    write: bool = True,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
    nproc: int = 1,
) -> list[WindowResult]:
    """Score each day window against the ``history_days`` before it, and write each as its own run.

    One export covers every window (features are causal, so one pass scores them all); each window's
    reference is the historical (entity, window) pairs before it. With ``checkpoint``, the trained
    graph model's DistMult improbability joins the columns. Runs with the cyclic collector paused: what it
    builds is acyclic (:mod:`gnnsec.gc_pause`).
    """
    from gnnsec.gnn.history import WINDOW_SECONDS, history_features
    from gnnsec.gnn.window_detect import (
        PairDetector,
        PairExplainer,
        TailConfig,
        edge_reasons,
        fit_edges,
        rank_within,
        score_edges,
    )
    from gnnsec.graphdb.writeback import write_window_scores

    say = progress or (lambda _message: None)
    if not windows:
        return []
    check_scope(driver, clouds, accounts, database)
    windows = sorted(_day_start(w) for w in windows)
    flt = SnapshotFilter(since=windows[0] - history_days * DAY, until=windows[-1] + DAY, clouds=clouds,
                         accounts=accounts)
    say(f"exporting {history_days} days of history and {len(windows)} window(s)")
    snapshot = export_snapshot(driver, flt, database=database)
    implausible = None
    if checkpoint is not None:
        from gnnsec.gnn.detect import edge_anomaly
        from gnnsec.gnn.distributed_embed import embed_partitioned

        configure_cpu_threads(database_idle=True)
        say(f"encoding {snapshot.num_nodes:,} nodes with the graph model")
        emb = embed_partitioned(checkpoint.model, snapshot, checkpoint.spec, nproc, device=device)  # 1: embed()
        implausible = edge_anomaly(emb.edge_logit)
        configure_cpu_threads()  # the windows are written back in the loop below
    say("history features for every (entity, day)")
    features = history_features(snapshot, edge_implausibility=implausible)
    config = TailConfig() if threshold is None else TailConfig(threshold=threshold)
    labels = [schema.NODE_LABELS[i] for i in snapshot.node_label.tolist()]
    results: list[WindowResult] = []
    for window in windows:
        started = time.perf_counter()
        start = window.timestamp()
        past = np.flatnonzero((features.window < start) & (features.window >= start - history_days * WINDOW_SECONDS))
        now_rows = np.flatnonzero(features.window == start)
        reference = features.select(past)
        warm = np.unique(reference.window[reference.warmed_up(config.warmup_windows)])
        if warm.size < config.min_reference_windows:
            raise StateError(
                f"too little history before {window.date()}: {warm.size} usable day(s) of reference, "
                f"{config.min_reference_windows} needed (the first {config.warmup_windows} observed day(s) only "
                "open the history); score a later day, or ingest earlier logs"
            )
        current = features.select(now_rows)
        say(f"{window.date()}: {current.num_pairs:,} active entities against {reference.num_pairs:,} past pairs")
        pairs, scored_on, neighbour = PairDetector(snapshot, config).fit(reference).score(current)
        ranks = rank_within(current.label, pairs.score, pairs.raw)
        explainer = PairExplainer(snapshot, scored_on, neighbour)
        reasons: dict[int, list[str]] = {}
        # Words for the flagged pairs and the top of each day, whichever is more (at most REASONS_FOR_TOP).
        for row in np.lexsort((-pairs.raw, -pairs.score))[:REASONS_FOR_TOP].tolist():
            reasons[row] = explainer.reasons(row, pairs.surprise[row])
        node_scores = [
            NodeScore(labels[int(n)], snapshot.node_uid[int(n)], float(pairs.score[i]), int(ranks[i]),
                      bool(pairs.anomalous[i]), reasons.get(i, []), float(pairs.raw[i]), pairs.calibration[i])
            for i, n in enumerate(current.node.tolist())
        ]
        node_scores.sort(key=lambda s: (-s.score, -s.raw))
        edges = score_edges(fit_edges(snapshot, reference, config), snapshot, current)
        src, dst = snapshot.edge_index
        element_id = _element_ids(snapshot)
        edge_scores = []
        for j, e in enumerate(current.edge.tolist()):
            logit = float("nan") if implausible is None else float(np.log(1.0 / max(implausible[e], 1e-12) - 1.0))
            edge_scores.append(EdgeScore(
                labels[int(src[e])], snapshot.node_uid[int(src[e])], schema.RELATION_NAMES[int(snapshot.edge_type[e])],
                labels[int(dst[e])], snapshot.node_uid[int(dst[e])], window, logit, float(edges.score[j]),
                edge_reasons(snapshot, current, j) if edges.score[j] >= config.threshold else [],
                element_id=element_id(e),
            ))
        run = ScoringRun(
            run_id=uuid.uuid4().hex[:16], model_id=model_id, scored_at=datetime.now(UTC),
            threshold=config.threshold, window_start=window, window_end=window + DAY,
            nodes_scored=current.num_pairs, edges_scored=len(edge_scores),
            anomalous_nodes=int(pairs.anomalous.sum()), clouds=list(clouds), accounts=list(accounts),
            extra={"reference_pairs": reference.num_pairs, "history_days": history_days,
                   "reference_days": int(warm.size)},
        )
        if write:
            say(f"{window.date()}: writing scores")
            write_window_scores(driver, node_scores, edge_scores, run, floor=floor, database=database)
        run.seconds = time.perf_counter() - started
        results.append(WindowResult(run, node_scores, edge_scores, reference.num_pairs))
    return results


# ---- findings: what scoring flagged, for people and SIEMs ----------------------------------------------

EVIDENCE_PER_FINDING = 5


def _iso_second(value: Any) -> str | None:
    """A driver or Python datetime as ISO-8601 UTC to the second (``2026-03-05T00:00:00Z``)."""
    if value is None:
        return None
    native = value.to_native() if hasattr(value, "to_native") else value
    return native.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_findings(
    driver: Driver,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    min_score: float | None = None,
    labels: Sequence[str] = (),
    limit: int = 100,
    database: str | None = None,
) -> list[dict[str, Any]]:
    """Scored (entity, day) pairs, most unusual first, each with its reasons and the day's most unusual
    relationships as evidence. Without ``min_score`` only pairs flagged ``anomalous`` are listed.

    The dictionaries are the stable ``gnnsec findings --format json`` schema (``docs/findings.md``).
    """
    if since is not None and until is not None and since >= until:
        raise InputError(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    for label in labels:
        schema.label_id(label)
    records, _, _ = driver.execute_query(
        """
        MATCH (r:ScoringRun)-[s:SCORED]->(n)
        WHERE ($since IS NULL OR r.window_start >= $since) AND ($until IS NULL OR r.window_start < $until)
          AND (CASE WHEN $min_score IS NULL THEN s.anomalous ELSE s.score >= $min_score END)
          AND (size($labels) = 0 OR labels(n)[0] IN $labels)
        WITH r, s, n ORDER BY s.score DESC, s.raw DESC, r.window_start DESC LIMIT $limit
        CALL (r, n) {
          MATCH (n)-[e]-(peer) WHERE e.window = r.window_start AND e.edge_anomaly IS NOT NULL
          WITH e, peer ORDER BY e.edge_anomaly DESC LIMIT $evidence
          RETURN collect({type: type(e), direction: CASE WHEN startNode(e) = n THEN 'out' ELSE 'in' END,
                          peer: peer.uid, peer_label: labels(peer)[0], edge_anomaly: e.edge_anomaly,
                          events: e.count, reasons: coalesce(e.edge_reasons, [])}) AS evidence
        }
        RETURN labels(n)[0] AS label, n.uid AS uid, n.name AS name, n.cloud AS cloud, n.account AS account,
               n.region AS region, r.window_start AS window_start, r.window_end AS window_end, r.run_id AS run_id,
               r.model_id AS model_id, r.scored_at AS scored_at, r.threshold AS threshold, s.score AS score,
               s.raw AS raw, s.rank AS rank, s.anomalous AS anomalous, s.calibration AS calibration,
               s.reasons AS reasons, evidence
        ORDER BY score DESC, raw DESC
        """,
        since=since, until=until, min_score=min_score, labels=list(labels), limit=int(limit),
        evidence=EVIDENCE_PER_FINDING, database_=database,
    )
    out = []
    for r in records:
        out.append({
            "uid": r["uid"], "label": r["label"], "name": r["name"], "cloud": r["cloud"], "account": r["account"],
            "region": r["region"], "window_start": _iso_second(r["window_start"]),
            "window_end": _iso_second(r["window_end"]), "score": float(r["score"]), "raw": float(r["raw"] or 0.0),
            "rank": int(r["rank"]), "anomalous": bool(r["anomalous"]), "threshold": r["threshold"],
            "calibration": r["calibration"], "reasons": list(r["reasons"] or []),
            "evidence": [dict(e) for e in r["evidence"]], "run_id": r["run_id"], "model_id": r["model_id"],
            "scored_at": _iso_second(r["scored_at"]),
        })
    return out
