"""Scores → Neo4j in batches: nodes by ``uid``, relationships by the element id this run's export read.

Neo4j reuses element ids after a delete, so an id is trusted only within the run that exported it, and
only after the relationship it finds proves to have the same type, endpoints and window; a batch with a
stale id is written by matching uids instead.

Scoring works per time window ``[window_start, window_end)``; :func:`write_window_scores` keeps
every window's scoring in the graph:

* one ``:ScoringRun`` node per (window, clouds, accounts) scope: re-scoring a scope replaces its
  earlier run, other windows and scopes stay as they are;
* ``(:ScoringRun)-[:SCORED {score, raw, rank, anomalous, reasons, calibration, window_start}]->(n)``
  for the nodes worth a history (score at or above a floor, or anomalous), so an entity's
  findings can be followed window by window;
* the *latest* score as properties on every scored node (:data:`NODE_SCORE_PROPERTIES`), which
  the hunts read: ``anomaly_score`` (calibrated to [0, 1]), ``anomaly_raw`` (uncalibrated, breaks
  ties), ``anomaly_rank`` (1 = most unusual within its label), ``anomalous``, ``anomaly_reasons``,
  ``anomaly_calibration``, ``scored_at``, ``model_id``, ``scoring_run`` (the run's ``run_id``) and
  ``score_window`` (the window's start). A node keeps the score of its newest window;
* ``distmult_score``, ``edge_anomaly`` and ``edge_reasons`` on the window's relationships.

The older :func:`clear_scores` + :func:`write_node_scores` + :func:`write_edge_scores` +
:func:`record_run` sequence (one scoring for the whole graph) stays until its callers move over.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from neo4j import Driver, ManagedTransaction, Session

from gnnsec import schema
from gnnsec.graphdb.loader import epoch_ms

log = logging.getLogger(__name__)

BATCH_SIZE = 10_000
WRITERS = 2
"""Batches of the whole-graph node and relationship writes in flight at once, each in its own transaction and
session (no two touch the same node or relationship): one is packed and sent while Neo4j writes another, and
Neo4j uses both cores. Medium estate after clearing, 1 against 2 alternated (load under 1): relationships
50.6k -> 80.6-84.0k rows/s. A window's ``SCORED`` batches stay sequential (they all lock its one run node); its
latest-score batches run WRITERS at once: the million-node estate's day (231k nodes, 619k relationships), old and
new alternated, wrote back in 19.7-24.6 s against 26.4-28.5 s."""
NODE_SCORE_PROPERTIES = (
    "anomaly_score",
    "anomaly_raw",
    "anomaly_rank",
    "anomalous",
    "anomaly_reasons",
    "anomaly_calibration",
    "scored_at",
    "model_id",
    "scoring_run",
    "score_window",
)
EDGE_SCORE_PROPERTIES = ("distmult_score", "edge_anomaly", "edge_reasons")
CALIBRATIONS = ("label", "pooled", "low")
"""How a node's score was calibrated: against benign nodes of its label, against all labels pooled
(too few of its own), or on too little reference data to trust (``low``)."""

PENDING_LABEL = "PendingScoringRun"
"""A run being written carries this label instead of ``:ScoringRun`` until its last transaction."""

_ProgressFn = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class NodeScore:
    label: str
    uid: str
    score: float
    rank: int
    anomalous: bool
    reasons: Sequence[str] = ()
    raw: float = 0.0
    calibration: str = "label"

    def __post_init__(self) -> None:
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}, not {self.calibration!r}")


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
    reasons: Sequence[str] = ()
    element_id: str | None = None
    """The relationship's Neo4j element id from this run's export (``Snapshot.edge_element_id``): written by
    a direct seek, checked against type, endpoints and window; ``None`` matches by endpoints' uids."""


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
    clouds: Sequence[str] = ()
    accounts: Sequence[str] = ()


def _batches(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _write_in_batches(session: Session, query: str, rows: list[dict[str, Any]], params: dict[str, Any],
                      progress: _ProgressFn | None) -> int:
    """Run ``query`` (``UNWIND $chunk.rows``, ending in ``RETURN … AS matched``) one transaction per batch of rows;
    returns the rows it matched."""
    matched = 0
    for chunk in _batches(rows, BATCH_SIZE):
        matched += session.execute_write(_count, query, {"chunk": {"rows": chunk}, **params}, "matched")
        if progress:
            progress(len(chunk))
    return matched


def _concurrently(
    driver: Driver, database: str | None, jobs: Sequence[tuple[str, Callable[[], dict[str, Any]]]]
) -> Iterator[dict[str, int]]:
    """Run each ``(query, params)`` job (``params`` built in the worker) in its own write transaction and
    session, :data:`WRITERS` at a time, and yield each one's single record of counts in job order. Only for jobs
    that touch disjoint nodes and relationships; after a failure no further job starts."""

    def run(job: tuple[str, Callable[[], dict[str, Any]]]) -> dict[str, int]:
        with driver.session(database=database) as session:
            return session.execute_write(_counts, job[0], job[1]())

    pool = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="gnnsec-writeback")
    try:
        yield from pool.map(run, jobs)
    finally:
        pool.shutdown(cancel_futures=True)


def _utc(moment: datetime | None) -> datetime | None:
    """Window bounds compared and matched in Cypher must all be UTC DateTimes (a naive datetime is
    local time, as for :func:`gnnsec.graphdb.loader.epoch_ms`)."""
    return None if moment is None else moment.astimezone(UTC)


def _scope_list(values: Iterable[str]) -> list[str]:
    """Clouds/accounts as stored on the run: sorted and unique, so equal filters compare equal."""
    return sorted({str(v) for v in values})


def _run_properties(run: ScoringRun) -> dict[str, Any]:
    props: dict[str, Any] = {k: v for k, v in run.extra.items() if isinstance(v, str | int | float | bool)}
    props.update(
        {
            "run_id": run.run_id,
            "model_id": run.model_id,
            "scored_at": run.scored_at,
            "threshold": run.threshold,
            "window_start": _utc(run.window_start),
            "window_end": _utc(run.window_end),
            "clouds": _scope_list(run.clouds),
            "accounts": _scope_list(run.accounts),
            "nodes_scored": run.nodes_scored,
            "edges_scored": run.edges_scored,
            "anomalous_nodes": run.anomalous_nodes,
            "snapshot_score": run.snapshot_score,
            "seconds": run.seconds,
        }
    )
    return {k: v for k, v in props.items() if v is not None}


def _remove_node_scores(alias: str) -> str:
    return "REMOVE " + ", ".join(f"{alias}.{p}" for p in NODE_SCORE_PROPERTIES)


def clear_scores(driver: Driver, database: str | None = None) -> None:
    """Remove every score property, every ``:ScoringRun`` and its ``SCORED`` history: an explicit reset."""
    edge_props = ", ".join(f"r.{p}" for p in EDGE_SCORE_PROPERTIES)
    with driver.session(database=database) as session:
        for label in schema.NODE_LABELS:
            session.run(
                f"MATCH (n:{label}) WHERE n.anomaly_score IS NOT NULL OR n.scoring_run IS NOT NULL "
                f"CALL (n) {{ {_remove_node_scores('n')} }} IN TRANSACTIONS OF 10000 ROWS"
            ).consume()
        session.run(
            f"MATCH ()-[r]->() WHERE r.distmult_score IS NOT NULL OR r.edge_reasons IS NOT NULL "
            f"CALL (r) {{ REMOVE {edge_props} }} IN TRANSACTIONS OF 10000 ROWS"
        ).consume()
        session.run(
            f"MATCH (:ScoringRun|{PENDING_LABEL})-[s:SCORED]->() "
            "CALL (s) { DELETE s } IN TRANSACTIONS OF 10000 ROWS"
        ).consume()
        session.run(f"MATCH (r:ScoringRun|{PENDING_LABEL}) DETACH DELETE r").consume()


def write_node_scores(
    driver: Driver,
    scores: Sequence[NodeScore],
    run: ScoringRun,
    *,
    database: str | None = None,
    progress: _ProgressFn | None = None,
) -> int:
    """Set the score properties on each node, matched by label and uid (no window, no history:
    the whole-graph scoring that :func:`write_window_scores` replaces). Returns rows written."""
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in scores:
        by_label[s.label].append(
            {"uid": s.uid, "score": float(s.score), "rank": int(s.rank), "anomalous": bool(s.anomalous),
             "reasons": list(s.reasons)}
        )
    params = {"at": run.scored_at, "model": run.model_id, "run": run.run_id}
    jobs: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    sizes: list[int] = []
    for label, rows in sorted(by_label.items()):
        schema.label_id(label)
        # A map per row: columns, which made relationships 3x faster, measured no faster here (55k nodes,
        # 18-21k against 22-23k rows/s, load 4), where the uid index seek and the new properties dominate.
        query = f"""
        UNWIND $chunk.rows AS row
        MATCH (n:{label} {{uid: row.uid}})
        SET n.anomaly_score = row.score, n.anomaly_rank = row.rank, n.anomalous = row.anomalous,
            n.anomaly_reasons = row.reasons, n.scored_at = $at, n.model_id = $model, n.scoring_run = $run
        RETURN count(n) AS matched
        """
        for chunk in _batches(rows, BATCH_SIZE):
            jobs.append((query, partial(dict, params, chunk={"rows": chunk})))
            sizes.append(len(chunk))
    for size, _ in zip(sizes, _concurrently(driver, database, jobs), strict=True):
        if progress:
            progress(size)
    return sum(sizes)


_SET_EDGE = """
    SET r.distmult_score = row.score, r.edge_anomaly = row.anomaly,
        r.edge_reasons = CASE WHEN size(row.reasons) = 0 THEN null ELSE row.reasons END
    RETURN count(r) AS matched
"""
# empty reasons remove the property rather than store [] on every relationship

_EDGE_BY_ID = """
    UNWIND range(0, size($chunk.id) - 1) AS i
    MATCH (a)-[r]->(b)
    WHERE elementId(r) = $chunk.id[i] AND type(r) = $chunk.type AND a.uid = $chunk.src[i] AND b.uid = $chunk.dst[i]
      AND $chunk.src_label IN labels(a) AND $chunk.dst_label IN labels(b)
      AND ($chunk.window[i] IS NULL OR r.window = datetime({epochMillis: $chunk.window[i]}))
    SET r.distmult_score = $chunk.score[i], r.edge_anomaly = $chunk.anomaly[i], r.edge_reasons = $chunk.reasons[i]
    RETURN count(r) AS matched
"""
"""One text for every relationship type: a seek by element id (``DirectedRelationshipByElementIdSeek``), then
the same identity the uid path matches on. Element ids are only valid within a run (Neo4j reuses them after
a delete), so a row whose relationship changed in between matches nothing here and goes the uid way.

The chunk is columnar (one list per field, the label pair and type once): the medium estate's 486k relationships,
their properties already there, took 4.1 s instead of 12 s as maps of ten keys per row (load 3); batches of 25k
or 50k rows were no faster than 10k."""


def _edge_row(s: EdgeScore) -> dict[str, Any]:
    return {"src": s.src_uid, "dst": s.dst_uid, "window": epoch_ms(s.window),
            # NaN (no graph model in this run) removes the property instead of storing NaN
            "score": None if math.isnan(s.distmult_score) else float(s.distmult_score),
            "anomaly": float(s.edge_anomaly), "reasons": list(s.reasons)}


def _edge_columns(part: Sequence[EdgeScore]) -> dict[str, Any]:
    """One chunk of relationships of a single (source label, type, target label), as columns for
    :data:`_EDGE_BY_ID`."""
    first = part[0]
    windows: dict[datetime | None, int | None] = {}  # few distinct windows: convert each once
    window_ms = []
    for s in part:
        if s.window not in windows:
            windows[s.window] = epoch_ms(s.window)
        window_ms.append(windows[s.window])
    return {
        "type": first.type, "src_label": first.src_label, "dst_label": first.dst_label,
        "id": [s.element_id for s in part], "src": [s.src_uid for s in part], "dst": [s.dst_uid for s in part],
        "window": window_ms,
        "score": [None if math.isnan(s.distmult_score) else float(s.distmult_score) for s in part],
        "anomaly": [float(s.edge_anomaly) for s in part],
        "reasons": [list(s.reasons) if s.reasons else None for s in part],
    }


def _edge_params(part: Sequence[EdgeScore]) -> dict[str, Any]:
    return {"chunk": _edge_columns(part)}


def _write_edges(
    driver: Driver,
    scores: Sequence[EdgeScore],
    database: str | None,
    progress: _ProgressFn | None,
) -> int:
    """Set the edge score properties on relationships, by element id where the export gave one, else matched
    by endpoints, type and window (an activity relationship of another window is a different relationship,
    so it is never touched). Returns the relationships matched."""
    for triple in {(s.src_label, s.type, s.dst_label) for s in scores}:
        schema.validate_edge(*triple)  # before anything is written
    matched = 0
    by_uid: list[EdgeScore] = []
    by_id: dict[tuple[str, str, str], list[EdgeScore]] = defaultdict(list)
    for s in scores:
        if s.element_id is None:
            by_uid.append(s)
        else:
            by_id[(s.src_label, s.type, s.dst_label)].append(s)
    parts = [group[at : at + BATCH_SIZE] for group in by_id.values() for at in range(0, len(group), BATCH_SIZE)]
    jobs = [(_EDGE_BY_ID, partial(_edge_params, part)) for part in parts]
    for part, record in zip(parts, _concurrently(driver, database, jobs), strict=True):
        found = record["matched"]
        if found < len(part):  # an id went stale: the uid path finds what still exists (SET is idempotent)
            by_uid.extend(part)
            continue
        matched += found
        if progress:
            progress(len(part))
    with driver.session(database=database) as session:
        groups: dict[tuple[str, str, str, bool], list[dict[str, Any]]] = defaultdict(list)
        for s in by_uid:
            groups[(s.src_label, s.type, s.dst_label, s.window is not None)].append(_edge_row(s))
        for (src_label, rel_type, dst_label, windowed), rows in sorted(groups.items()):
            window = "datetime({epochMillis: row.window})"
            rel_match = f"[r:{rel_type} {{window: {window}}}]" if windowed else f"[r:{rel_type}]"
            query = f"""
            UNWIND $chunk.rows AS row
            MATCH (a:{src_label} {{uid: row.src}})-{rel_match}->(b:{dst_label} {{uid: row.dst}})
            {_SET_EDGE}
            """
            matched += _write_in_batches(session, query, rows, {}, progress)
    return matched


def write_edge_scores(
    driver: Driver,
    scores: Sequence[EdgeScore],
    *,
    database: str | None = None,
    progress: _ProgressFn | None = None,
) -> int:
    """Set ``distmult_score``/``edge_anomaly``/``edge_reasons`` on relationships, matched by endpoints,
    type and window. Returns rows written."""
    _write_edges(driver, scores, database, progress)
    return len(scores)


def record_run(driver: Driver, run: ScoringRun, *, database: str | None = None) -> None:
    """One ``:ScoringRun`` node per run, so analysts can see which model scored what, when."""
    with driver.session(database=database) as session:
        session.execute_write(
            _run, "MERGE (r:ScoringRun {run_id: $props.run_id}) SET r += $props", {"props": _run_properties(run)}
        )


_SAME_SCOPE = """
    (old.window_start = $ws OR (old.window_start IS NULL AND $ws IS NULL))
    AND (old.window_end = $we OR (old.window_end IS NULL AND $we IS NULL))
    AND coalesce(old.clouds, []) = $clouds AND coalesce(old.accounts, []) = $accounts
"""
"""An earlier run (finished, or a pending one left by a crash) of the same window and filter."""


def write_window_scores(
    driver: Driver,
    node_scores: Sequence[NodeScore],
    edge_scores: Sequence[EdgeScore],
    run: ScoringRun,
    *,
    floor: float = 0.9,
    database: str | None = None,
    progress: _ProgressFn | None = None,
) -> dict[str, int]:
    """Write one window's scoring, replacing the earlier runs of the same scope (window start and
    end, clouds, accounts) and nothing else.

    Nodes scored at or above ``floor``, or anomalous, get a ``SCORED`` relationship from the run;
    every scored node gets the latest-score properties unless it already holds a score of a newer
    window (a run without ``window_start`` counts as older than any window). Nodes whose latest
    score came from a replaced run and that this run does not score lose those properties.

    Order, so that a failure never leaves a half-written run that looks finished: the run node is
    created as ``:PendingScoringRun``; scores are written in batches of :data:`BATCH_SIZE` (one
    transaction each, so memory stays bounded on large graphs); then one transaction swaps it in:
    it deletes the replaced runs with their ``SCORED`` relationships, strips their stale latest
    properties and relabels the new run ``:ScoringRun``. Until that commit the earlier run is
    intact. If a step fails, the pending run, its ``SCORED`` relationships and the latest
    properties that point to it are removed and the error is raised again (those nodes then show
    no latest score until the window is scored again); if even that cleanup fails, the next run of
    the scope replaces the pending one like any earlier run.

    Returns counts: ``nodes`` (scored nodes found in the graph), ``latest`` (of those, the ones
    whose latest-score properties were set), ``scored_rels``, ``edges`` (relationships found),
    ``replaced_runs`` and ``cleared`` (nodes whose stale latest score was removed).
    """
    ws, we = _utc(run.window_start), _utc(run.window_end)
    for src_label, rel_type, dst_label in {(s.src_label, s.type, s.dst_label) for s in edge_scores}:
        schema.validate_edge(src_label, rel_type, dst_label)  # before anything is written
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in node_scores:
        schema.label_id(s.label)
        by_label[s.label].append(
            {"uid": s.uid, "score": float(s.score), "raw": float(s.raw), "rank": int(s.rank),
             "anomalous": bool(s.anomalous), "reasons": [str(r) for r in s.reasons], "calibration": s.calibration,
             "history": bool(s.anomalous) or float(s.score) >= floor}
        )
    params = {"run": run.run_id, "at": run.scored_at, "model": run.model_id, "ws": ws, "we": we,
              "clouds": _scope_list(run.clouds), "accounts": _scope_list(run.accounts)}
    counts = dict.fromkeys(("nodes", "latest", "scored_rels", "edges", "replaced_runs", "cleared"), 0)

    with driver.session(database=database) as session:
        session.execute_write(_run, f"CREATE (r:{PENDING_LABEL}) SET r = $props", {"props": _run_properties(run)})
    try:
        # The history first, one batch at a time: every SCORED relationship locks the one run node.
        with driver.session(database=database) as session:
            for label, rows in sorted(by_label.items()):
                for chunk in _batches([row for row in rows if row["history"]], BATCH_SIZE):
                    counts["scored_rels"] += session.execute_write(
                        _count, _scored_query(label), {**params, "chunk": {"rows": chunk}}, "created")
        # Then the latest-score properties, each batch's nodes its own, so WRITERS batches run at once.
        chunks = [(label, chunk) for label, rows in sorted(by_label.items()) for chunk in _batches(rows, BATCH_SIZE)]
        jobs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            (_latest_query(label), partial(dict, params, chunk={"rows": chunk})) for label, chunk in chunks]
        for (_, chunk), record in zip(chunks, _concurrently(driver, database, jobs), strict=True):
            counts["nodes"] += record["found"]
            counts["latest"] += record["latest"]
            if progress:
                progress(len(chunk))
        counts["edges"] = _write_edges(driver, edge_scores, database, progress)
        with driver.session(database=database) as session:
            counts["replaced_runs"], counts["cleared"] = session.execute_write(_swap_in, params)
    except Exception as exc:
        try:
            _discard_pending(driver, run.run_id, database)
        except Exception as cleanup_exc:  # the original error matters more; the next run cleans up
            log.warning("could not remove the unfinished scoring run %s: %s", run.run_id, cleanup_exc)
            exc.add_note(f"the unfinished :{PENDING_LABEL} {run.run_id} is still in the graph: {cleanup_exc}")
        raise
    return counts


def _scored_query(label: str) -> str:
    """A batch of one label's history rows: a ``SCORED`` relationship from the pending run to each node."""
    return f"""
        MATCH (run:{PENDING_LABEL} {{run_id: $run}})
        UNWIND $chunk.rows AS row
        MATCH (n:{label} {{uid: row.uid}})
        CREATE (run)-[:SCORED {{score: row.score, raw: row.raw, rank: row.rank, anomalous: row.anomalous,
                                reasons: row.reasons, calibration: row.calibration, window_start: $ws}}]->(n)
        RETURN count(*) AS created
        """


def _latest_query(label: str) -> str:
    """A batch of one label: the latest-score properties, unless the node already holds a newer window's
    score. Returns ``found`` and ``latest`` (set)."""
    return f"""
        UNWIND $chunk.rows AS row
        MATCH (n:{label} {{uid: row.uid}})
        WITH n, row, (n.score_window IS NULL OR n.score_window <= $ws) AS newest
        CALL (n, row, newest) {{
            WITH n, row WHERE newest
            SET n.anomaly_score = row.score, n.anomaly_raw = row.raw, n.anomaly_rank = row.rank,
                n.anomalous = row.anomalous, n.anomaly_reasons = row.reasons,
                n.anomaly_calibration = row.calibration, n.scored_at = $at, n.model_id = $model,
                n.scoring_run = $run, n.score_window = $ws
        }}
        RETURN count(n) AS found, count(CASE WHEN newest THEN 1 END) AS latest
        """


def _swap_in(tx: ManagedTransaction, params: dict[str, Any]) -> tuple[int, int]:
    """Replace the scope's earlier runs by the pending one, in one transaction. Returns (replaced, cleared)."""
    replaced = [
        r["id"]
        for r in tx.run(
            f"MATCH (old:ScoringRun|{PENDING_LABEL}) WHERE old.run_id <> $run AND {_SAME_SCOPE} "
            "RETURN old.run_id AS id",
            params,
        )
    ]
    cleared = 0
    if replaced:
        for label in schema.NODE_LABELS:
            cleared += tx.run(
                f"MATCH (n:{label}) WHERE n.scoring_run IN $ids {_remove_node_scores('n')} RETURN count(n) AS c",
                ids=replaced,
            ).single(strict=True)["c"]
        tx.run(f"MATCH (old:ScoringRun|{PENDING_LABEL}) WHERE old.run_id IN $ids DETACH DELETE old",
               ids=replaced).consume()
    promoted = tx.run(
        f"MATCH (r:{PENDING_LABEL} {{run_id: $run}}) REMOVE r:{PENDING_LABEL} SET r:ScoringRun RETURN count(r) AS c",
        params,
    ).single(strict=True)["c"]
    if promoted != 1:
        raise RuntimeError(f"the pending scoring run {params['run']} disappeared before it was recorded")
    return len(replaced), int(cleared)


def _discard_pending(driver: Driver, run_id: str, database: str | None) -> None:
    """Undo an unfinished run: its node, its ``SCORED`` relationships and the latest scores naming it."""

    def work(tx: ManagedTransaction) -> None:
        for label in schema.NODE_LABELS:
            tx.run(f"MATCH (n:{label}) WHERE n.scoring_run = $run {_remove_node_scores('n')}", run=run_id).consume()
        tx.run(f"MATCH (r:{PENDING_LABEL} {{run_id: $run}}) DETACH DELETE r", run=run_id).consume()

    with driver.session(database=database) as session:
        session.execute_write(work)


def _run(tx: ManagedTransaction, query: str, params: dict[str, Any]) -> None:
    tx.run(query, params).consume()


def _count(tx: ManagedTransaction, query: str, params: dict[str, Any], key: str) -> int:
    return _counts(tx, query, params)[key]


def _counts(tx: ManagedTransaction, query: str, params: dict[str, Any]) -> dict[str, int]:
    return {key: int(value) for key, value in tx.run(query, params).single(strict=True).items()}
