"""The one writer of ingested data: batched ``UNWIND $chunk.rows … MERGE`` through the official driver.

Rows are grouped by label (nodes) and by ``(source label, type, target label)`` (relationships); each group is
written in batches of ``batch_size`` rows per transaction function (``execute_write`` retries transient errors
such as deadlocks).  Nodes are written before relationships, so relationship writes only ``MATCH`` their
endpoints.

Few query texts.  Neo4j plans each distinct text once per size bucket of a list parameter (1, 2–10, 11–100, …
rows: part of its plan cache key), and planning is most of a small first ingest.  Labels stay static: Neo4j 5.26
plans a dynamic label (``(a:$(row.label) {uid: …})``) as a scan of all nodes and a dynamic relationship type as
a scan of all relationships.  The rows travel inside a map (``$chunk``), which has no size bucket, and a
relationship type with at most ``SHARED_TEXT_ROWS`` rows in a staging has one text for all its label pairs: its
endpoints match through a label alternation (``(a:Role|User {uid: row.src})``, a union of the labels'
uniqueness-index seeks) narrowed to the unit's pair by a parameter.  Above that each pair keeps a text of its own:
the alternation costs every row 5–20 µs (10k rows, 3 to 5 labels: +7 to +34 %), more than one plan (0.13 s on a
warm server) beyond a few thousand rows.  A 3k-event CloudTrail export (168 hourly files, one staging) went from
34 plans to 16: with the query caches cleared on a warm server its ingest took 2.0 s instead of 4.5 s (load 2),
on a server just started 8.2 s instead of 13.1 s (load 2–3.5) and 12.3 s instead of 17.9 s (load 3–6): medians of
3–4 runs interleaved with the per-pair loader, 2 cores shared with other work.

Idempotency.  Node properties are overwritten with the same values and ``first_seen`` /
``last_seen`` only move outwards, so re-ingesting a file changes nothing.  Aggregated activity
would double its ``count`` if it were simply added, so each relationship keeps its count *per
ingested batch* (``batches`` / ``batch_count``: the batch id is the file's content digest) and
``count`` is their sum: ingesting the same file again replaces that batch's contribution.

That bookkeeping is linear in B + C (B batches on the relationship, C in the row): CloudTrail's 5-minute files
per region give a service role's daily relationship C ≈ 2,400 in one staging.  The earlier text scanned
``row.contrib`` for each batch (B × C) and re-read ``r.batch_count[i]`` from the property for each element
(O(B) each in a write transaction).  One day of that layout (4,499 files, 73.7k activity events,
both texts alternated in one session on one server, load 3.6–4.5 on 2 shared cores): first ingest 8.3–9.7 s
instead of 33–38 s, re-ingest 9.2–11.3 s instead of 73–80 s, half the files then all of them 8.2–9.7 s instead
of 30–42 s; the same relationships, property for property.  Hourly files (168, 403k activity events, C ≤ 24)
are not slower: first ingest 28–29 s instead of 31–33 s, re-ingest 22 s instead of 23–27 s.

All or nothing per file (or per group of files staged together).  A staging of at most ``batch_size`` rows is one
transaction.  A larger one is several; before each but the last, the loader reads the *before image* of what that
transaction will write (:mod:`gnnsec.graphdb.undo`), and if Neo4j fails a later transaction (after the driver's
retries) it undoes those already committed, compare-and-restore, and raises :class:`WriteFailed`: the file leaves
nothing behind.  The ``:IngestedBatch`` record is in the last transaction, so it exists only for a complete write.
Only a process killed mid-write (kill -9, Ctrl-C) leaves part of a file, as before; re-running the ingest replaces
its contributions.  The before image costs little where the write creates (a 50k-row staging into an empty graph,
10k rows per transaction: 4.2 s with it, 4.0 s without) and most where everything exists (the same staging again:
4.3 s with it, 1.9 s without: it reads back what the MERGEs touch); one-transaction writes read none.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from neo4j import Driver, ManagedTransaction
from neo4j.exceptions import DriverError, Neo4jError

from gnnsec import schema
from gnnsec.graphdb.errors import GraphDBError
from gnnsec.graphdb.undo import Before, Shape, read_before, undo
from gnnsec.ingest.staging import SUMMED_PROPERTIES, StagedEdge, Staging

DEFAULT_BATCH_SIZE = 10_000
SHARED_TEXT_ROWS = 5_000
"""Up to this many rows of a relationship type in a staging share one text across label pairs (module doc)."""
FLOW_RELATIONS = frozenset({"CONNECTS_TO"})

ProgressCallback = Callable[[int], None]
"""Called with the number of rows just written (for a progress bar)."""


@dataclass(slots=True)
class WriteCounts:
    """What a load created and what it found already there (per label / relationship type)."""

    nodes_created: Counter[str] = field(default_factory=Counter)
    nodes_matched: Counter[str] = field(default_factory=Counter)
    relationships_created: Counter[str] = field(default_factory=Counter)
    relationships_matched: Counter[str] = field(default_factory=Counter)

    def merge(self, other: WriteCounts) -> None:
        self.nodes_created.update(other.nodes_created)
        self.nodes_matched.update(other.nodes_matched)
        self.relationships_created.update(other.relationships_created)
        self.relationships_matched.update(other.relationships_matched)


def epoch_ms(moment: datetime | None) -> int | None:
    """Datetimes travel as epoch milliseconds: the driver's Python-side datetime packing cost 15x the
    whole transfer of a batch (7 s vs 0.5 s for 45k rows); Cypher rebuilds them with ``datetime()``."""
    return None if moment is None else int(moment.timestamp() * 1000)


def _unwind_rows(*time_fields: str) -> str:
    """``UNWIND $rows AS row`` plus one variable per epoch-millisecond field, as a Cypher DateTime."""
    rebuilt = ", ".join(
        f"CASE WHEN row.{name} IS NULL THEN NULL ELSE datetime({{epochMillis: row.{name}}}) END AS {name}"
        for name in time_fields
    )
    return f"UNWIND $chunk.rows AS row\nWITH row, {rebuilt}"


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _widen_seen(alias: str) -> str:
    """SET ``first_seen``/``last_seen`` of ``alias`` so they only move outwards (idempotent re-loads)."""
    return (
        f"SET {alias}.first_seen = CASE WHEN first_seen IS NULL THEN {alias}.first_seen\n"
        f"    WHEN {alias}.first_seen IS NULL OR first_seen < {alias}.first_seen THEN first_seen\n"
        f"    ELSE {alias}.first_seen END,\n"
        f"  {alias}.last_seen = CASE WHEN last_seen IS NULL THEN {alias}.last_seen\n"
        f"    WHEN {alias}.last_seen IS NULL OR last_seen > {alias}.last_seen THEN last_seen\n"
        f"    ELSE {alias}.last_seen END"
    )


def node_query(label: str) -> str:
    """MERGE nodes of one label; ``first_seen``/``last_seen`` only widen."""
    schema.label_id(label)
    return f"""
{_unwind_rows("first_seen", "last_seen")}
MERGE (n:{label} {{uid: row.uid}})
SET n += row.props
{_widen_seen("n")}
"""


def _endpoints(source_labels: Sequence[str], target_labels: Sequence[str]) -> str:
    """MATCH both endpoints by ``uid`` in one text for all the label pairs of a relationship type (module doc).

    Several labels at an end: an alternation, which keeps the uniqueness-index seeks (a union of one per label),
    narrowed to the unit's exact label by ``$chunk.source_label`` / ``$chunk.target_label``."""
    def end(var: str, labels: Sequence[str], key: str, param: str) -> str:
        for label in labels:
            schema.label_id(label)
        if len(labels) == 1:
            return f"MATCH ({var}:{labels[0]} {{uid: row.{key}}})"
        return f"MATCH ({var}:{'|'.join(labels)} {{uid: row.{key}}}) WHERE $chunk.{param} IN labels({var})"

    return f"{end('a', source_labels, 'src', 'source_label')}\n{end('b', target_labels, 'dst', 'target_label')}"


def inventory_relationship_query(rel_type: str, source_labels: Sequence[str], target_labels: Sequence[str]) -> str:
    """MERGE configuration relationships: one per (source, type, target), properties overwritten.

    One text for every pair of ``source_labels`` × ``target_labels`` (:func:`_endpoints`)."""
    schema.relation(rel_type)
    return f"""
{_unwind_rows("first_seen", "last_seen")}
{_endpoints(source_labels, target_labels)}
MERGE (a)-[r:{rel_type}]->(b)
SET r += row.props
{_widen_seen("r")}
"""


INT64_MAX = 2**63 - 1


def summed_properties(rel_type: str) -> tuple[str, ...]:
    """Per-window sums kept on an activity relationship: ``count`` and ``failed`` (events that were
    denied or errored), plus flow volumes on flows."""
    return ("count", "failed", *SUMMED_PROPERTIES) if rel_type in FLOW_RELATIONS else ("count", "failed")


def activity_relationship_query(rel_type: str, source_labels: Sequence[str], target_labels: Sequence[str]) -> str:
    """MERGE one aggregated relationship per window, with per-batch contributions (see module doc); one text for
    every pair of ``source_labels`` × ``target_labels`` (:func:`_endpoints`).

    ``row.contrib`` lists ``{batch, count, failed, …}`` for each file that contributed to this
    relationship in this load (batch ids distinct), ``row.at`` maps each batch id to its index there; a
    batch already on the relationship has its share replaced, a new one is appended, and every total is
    the sum of the shares.

    Linear in B + C (B batches on the relationship, C in the row): the stored lists are read once into
    variables (in a write transaction Neo4j 5.26 re-reads ``r.batch_count[i]`` from the property each time:
    O(B) per element, 6.8 s for one 4,000-batch list), known batches find their share through ``row.at``
    (a map lookup, not a scan of ``row.contrib``), and ``NOT c.batch IN known`` is linear (Neo4j caches an
    ``IN`` list as a hash set: 4,000 × 4,000 in 0.04 s, where the scan per element took 0.9 s).

    A relationship of the same type and window that another writer made (a script's ``MERGE``, another tool) has
    no batches: it is taken as having none, so this load's shares become its totals, where the unguarded text failed
    the whole file with ``range()`` of a null.
    """
    schema.relation(rel_type)
    summed = summed_properties(rel_type)
    known = ", ".join(f"r.batch_{p} AS known_{p}" for p in summed)
    carried = ", ".join(f"known_{p}" for p in summed)
    shares = ",\n     ".join(
        f"[i IN range(0, size(known) - 1) | CASE WHEN row.at[known[i]] IS NULL THEN coalesce(known_{p}[i], 0) "
        f"ELSE coalesce(row.contrib[row.at[known[i]]].{p}, 0) END] + [c IN fresh | coalesce(c.{p}, 0)] AS share_{p}"
        for p in summed
    )
    # Shares are non-negative and each within int64 (staging checks), but files add up across ingests:
    # saturate at the int64 maximum rather than let Neo4j raise an overflow mid-load.
    totals = ",\n    ".join(
        f"r.batch_{p} = share_{p}, r.{p} = reduce(total = 0, c IN share_{p} | "
        f"CASE WHEN total > {INT64_MAX} - c THEN {INT64_MAX} ELSE total + c END)"
        for p in summed
    )
    return f"""
{_unwind_rows("first_seen", "last_seen", "window")}
{_endpoints(source_labels, target_labels)}
MERGE (a)-[r:{rel_type} {{window: window}}]->(b)
ON CREATE SET r.batches = [], r.actions = [], r.sources = [], r.window_seconds = row.window_seconds
WITH r, row, first_seen, last_seen, coalesce(r.batches, []) AS known, coalesce(r.actions, []) AS actions, {known}
WITH r, row, first_seen, last_seen, known, actions, {carried},
     [c IN row.contrib WHERE NOT c.batch IN known] AS fresh
WITH r, row, first_seen, last_seen, known, actions, fresh,
     {shares}
SET r.batches = known + [c IN fresh | c.batch],
    {totals},
    r.actions = actions + [x IN row.actions WHERE NOT x IN actions],
    r.sources = CASE WHEN row.source IN r.sources THEN r.sources ELSE coalesce(r.sources, []) + row.source END,
    r.first_seen = CASE WHEN r.first_seen IS NULL OR first_seen < r.first_seen THEN first_seen
                        ELSE r.first_seen END,
    r.last_seen = CASE WHEN r.last_seen IS NULL OR last_seen > r.last_seen THEN last_seen
                       ELSE r.last_seen END
SET r += row.props
"""


def _contributions(edge: StagedEdge, batch_id: str | None) -> list[dict[str, Any]]:
    """``row.contrib``: one share per batch id, in staging order (the order new batches are appended in).

    A share staged before any batch (key ``None``) is ``batch_id``'s; should that id also be a key, the two are
    one file's share and are summed (the query, like :mod:`gnnsec.graphdb.undo`, takes batch ids as distinct)."""
    if not edge.contributions:
        return [{"batch": batch_id, "count": edge.count, **edge.sums}]
    merged: dict[str | None, dict[str, Any]] = {}
    for batch, share in edge.contributions.items():
        key = batch or batch_id
        if key in merged:
            merged[key] = {p: merged[key].get(p, 0) + share.get(p, 0) for p in {*merged[key], *share}}
        else:
            merged[key] = dict(share)
    return [{"batch": batch, **share} for batch, share in merged.items()]


def _edge_row(edge: StagedEdge, batch_id: str | None, source: str, window_seconds: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "src": edge.src.uid,
        "dst": edge.dst.uid,
        "props": edge.props,
        "first_seen": epoch_ms(edge.first_seen),
        "last_seen": epoch_ms(edge.last_seen),
    }
    if edge.window is not None:
        contrib = _contributions(edge, batch_id)
        row.update(
            window=epoch_ms(edge.window),
            window_seconds=window_seconds,
            contrib=contrib,
            at={c["batch"]: index for index, c in enumerate(contrib) if c["batch"] is not None},
            actions=list(edge.actions),
            source=source,
        )
    return row


def write_staging(
    driver: Driver,
    staging: Staging,
    batch_id: str | None = None,
    *,
    database: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressCallback | None = None,
) -> WriteCounts:
    """Write a validated :class:`Staging` and record its batches; returns created/matched counts.

    ``batch_id`` names the batch of a staging whose records were not staged under
    :meth:`Staging.begin_batch` (one file, one batch)."""
    if not staging.batches and batch_id is None:
        raise ValueError("a staging without batches needs a batch_id")
    counts = WriteCounts()
    node_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for node in staging.nodes.values():
        node_rows[node.label].append(
            {"uid": node.uid, "props": node.props, "first_seen": epoch_ms(node.first_seen),
             "last_seen": epoch_ms(node.last_seen)}
        )
    edge_rows: dict[tuple[str, str, str, bool], list[dict[str, Any]]] = defaultdict(list)
    window_seconds = int(staging.window.total_seconds())
    for edge in staging.edges.values():
        key = (edge.src.label, edge.type, edge.dst.label, edge.window is not None)
        edge_rows[key].append(_edge_row(edge, batch_id, staging.source, window_seconds))

    # Units of work in dependency order (nodes before the relationships that MATCH them), packed
    # into transactions of about ``batch_size`` rows: a small file is one atomic transaction, a
    # large one a sequence of bounded ones, undone if one fails (module doc).
    units: list[_Unit] = []
    for label in sorted(node_rows):
        query = node_query(label)
        shape = Shape("node", label)
        units.extend(_Unit("node", label, query, chunk, shape) for chunk in _chunks(node_rows[label], batch_size))
    # One text per relationship type while the type has few rows here, naming every label this staging has at each
    # end for it; one per label pair above that (module doc).  The units stay per label pair (counts, undo shapes),
    # the pair a parameter of the text.
    ends: dict[tuple[str, bool], tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    rows_of_type: Counter[tuple[str, bool]] = Counter()
    for (source_label, rel_type, target_label, aggregated), rows in edge_rows.items():
        schema.validate_edge(source_label, rel_type, target_label)
        ends[rel_type, aggregated][0].add(source_label)
        ends[rel_type, aggregated][1].add(target_label)
        rows_of_type[rel_type, aggregated] += len(rows)
    for key in sorted(edge_rows):
        source_label, rel_type, target_label, aggregated = key
        shared = rows_of_type[rel_type, aggregated] <= SHARED_TEXT_ROWS
        sources, targets = ends[rel_type, aggregated] if shared else ({source_label}, {target_label})
        build = activity_relationship_query if aggregated else inventory_relationship_query
        query = build(rel_type, sorted(sources), sorted(targets))
        pair = {"source_label": source_label, "target_label": target_label}
        shape = (Shape("activity", source_label, rel_type, target_label, summed_properties(rel_type)) if aggregated
                 else Shape("inventory", source_label, rel_type, target_label))
        units.extend(_Unit("relationship", rel_type, query, chunk, shape, pair)
                     for chunk in _chunks(edge_rows[key], batch_size))
    now = datetime.now(UTC)
    batch_rows = [
        {"batch_id": bid, "source": staging.source, "path": info["path"], "records": info["records"],
         "events": info["events"]}
        for bid, info in staging.batches.items()
    ] or [{"batch_id": batch_id, "source": staging.source, "path": "", "records": staging.records,
           "events": staging.events}]
    transactions: list[list[_Unit]] = [[]]
    rows_in_last = 0
    for unit in units:
        if transactions[-1] and rows_in_last + len(unit.rows) > batch_size:
            transactions.append([])
            rows_in_last = 0
        transactions[-1].append(unit)
        rows_in_last += len(unit.rows)
    befores: list[Before] = []  # the undo log of the transactions written so far (gnnsec.graphdb.undo)
    with driver.session(database=database) as session:
        for index, group in enumerate(transactions):
            last = index == len(transactions) - 1
            try:
                if not last:  # the last transaction is never undone: it commits whole or not at all
                    befores.extend(session.execute_read(read_before, [(unit.shape, unit.rows) for unit in group]))
                created = session.execute_write(_run_units, group, (batch_rows, now) if last else None)
            except (Neo4jError, DriverError) as exc:
                if index == 0:
                    raise  # nothing committed yet: Neo4j rolled back all this write did
                _undo_and_raise(driver, database, staging, batch_id, transactions, index, befores, batch_size, exc)
            for unit, made in zip(group, created, strict=True):
                if unit.kind == "node":
                    counts.nodes_created[unit.key] += made
                    counts.nodes_matched[unit.key] += len(unit.rows) - made
                else:
                    counts.relationships_created[unit.key] += made
                    counts.relationships_matched[unit.key] += len(unit.rows) - made
            if progress:
                progress(sum(len(unit.rows) for unit in group))
    return counts


@dataclass(frozen=True, slots=True)
class _Unit:
    kind: str  # "node" | "relationship"
    key: str  # label or relationship type, for the counts
    query: str
    rows: Sequence[dict[str, Any]]
    shape: Shape  # what undo needs to know of the query
    params: dict[str, str] = field(default_factory=dict)  # ``$chunk``'s entries besides ``rows`` (the label pair)


class WriteFailed(GraphDBError):
    """Neo4j failed a file's write after some of its transactions had committed; ``undone`` says whether those
    were undone (the graph is as before) or the undo failed too (the graph holds part of the file)."""

    def __init__(self, message: str, *, batches: list[str], written: int, transactions: int, undone: bool,
                 left: int = 0) -> None:
        super().__init__(message)
        self.batches = batches
        self.written = written
        self.transactions = transactions
        self.undone = undone
        self.left = left


def _describe_files(staging: Staging, batch_id: str | None) -> tuple[str, list[str]]:
    """How an error names what was written (the file, or the files staged together) and the batch ids."""
    batches = list(staging.batches) or [batch_id or ""]
    paths = [info["path"] or f"batch {bid}" for bid, info in staging.batches.items()] or [f"batch {batch_id}"]
    if len(paths) == 1:
        named = paths[0] if paths[0].startswith("batch ") else f"{paths[0]} (batch {batches[0][:16]})"
        return named, batches
    return f"{len(paths)} files staged together ({paths[0]} … {paths[-1]})", batches


def _cause(exc: BaseException) -> str:
    text = f"{exc.code}: {exc.message}" if isinstance(exc, Neo4jError) else str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "…"


def _undo_and_raise(driver: Driver, database: str | None, staging: Staging, batch_id: str | None,
                    transactions: list[list[_Unit]], failed: int, befores: list[Before], batch_size: int,
                    exc: Neo4jError | DriverError) -> None:
    """Undo the ``failed`` transactions that committed before transaction ``failed`` did not, then raise
    :class:`WriteFailed` from ``exc``: all or nothing per file, not only when Python fails but when Neo4j does."""
    named, batches = _describe_files(staging, batch_id)
    committed = [unit for group in transactions[:failed] for unit in group]
    steps = [(unit.shape, unit.rows, before) for unit, before in zip(committed, befores, strict=False)]
    total = len(transactions)
    what = f"writing {named} failed in Neo4j in transaction {failed + 1} of {total} ({_cause(exc)})"
    try:
        with driver.session(database=database) as session:
            tally = undo(session, steps, batch_size)
    except Exception as undo_exc:  # the server gone, or a bug: either way the user must know the graph is partial
        raise WriteFailed(
            f"{what}, and undoing the {failed} transaction(s) already committed failed too ({_cause(undo_exc)}): "
            "the graph holds part of it. Re-run the same ingest once Neo4j answers (`gnnsec db status`): "
            "re-ingesting a file replaces its contributions, so the graph ends as if it was loaded once",
            batches=batches, written=failed, transactions=total, undone=False,
        ) from exc
    kept = (f", except {tally.left} change(s) that another write made to the same nodes or relationships since, "
            "left as they are" if tally.left else "")
    raise WriteFailed(
        f"{what}; the {failed} transaction(s) already committed were undone, nothing of it is in the graph{kept}",
        batches=batches, written=failed, transactions=total, undone=True, left=tally.left,
    ) from exc


def _run_units(tx: ManagedTransaction, units: list[_Unit], batches: tuple[list[dict[str, Any]], datetime] | None
               ) -> list[int]:
    """Run a group of units in one transaction; returns how many nodes/relationships each created."""
    created = []
    for unit in units:
        # Rows inside a map: a list parameter's size bucket would make each bucket a plan of its own (module doc).
        summary = tx.run(unit.query, chunk={"rows": list(unit.rows), **unit.params}).consume()
        counter = "nodes_created" if unit.kind == "node" else "relationships_created"
        created.append(int(getattr(summary.counters, counter)))
    if batches is not None:
        _record_batches(tx, *batches)
    return created


def _record_batches(tx: ManagedTransaction, batches: list[dict[str, Any]], at: datetime) -> None:
    """One ``:IngestedBatch`` per file, in the same transaction as the data's last write.

    The time travels once, not in every row: the driver packs a datetime in Python (about 100 µs), and AWS's
    5-minute layout has a batch per file, 4,500 a day (5.7 % of a week's one-process ingest, profiled)."""
    tx.run(
        """
        UNWIND $chunk.batches AS batch
        MERGE (b:IngestedBatch {batch_id: batch.batch_id})
        ON CREATE SET b.first_ingested = $chunk.at
        SET b.source = batch.source, b.path = batch.path, b.records = batch.records, b.events = batch.events,
            b.last_ingested = $chunk.at
        """,
        chunk={"batches": batches, "at": at},
    ).consume()


def delete_everything(driver: Driver, database: str | None = None) -> None:
    """Remove every node and relationship (constraints and indexes stay), in bounded transactions.

    ``CALL {…} IN TRANSACTIONS`` only runs in an auto-commit transaction, hence ``session.run``.
    """
    with driver.session(database=database) as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
