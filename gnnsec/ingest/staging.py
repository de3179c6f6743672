"""Staging: validate and aggregate a file's records before anything is written.

A file is read to the end into a :class:`Staging` first; only a file that read cleanly is handed
to the loader, so a corrupt file writes nothing.  Every record is checked whole before it is staged
(:mod:`gnnsec.ingest.validation`: sizes, int64, finite floats, datetimes, property names, and the
names gnnsec reserves, such as ``window``, ``count`` or ``anomaly_*``), so whatever Neo4j would refuse
is a bad record here rather than a failed write. A write Neo4j still fails part-way (a crash, a full disk) is
undone by the loader (:mod:`gnnsec.graphdb.undo`).

Memory is bounded by the number of distinct entities and ``(source, type, target, window)`` keys, not
by the number of events: a million CloudTrail events by a few hundred principals stage into a few
thousand relationships.

Activity aggregation follows MAGIC's noise reduction: one relationship per
``(source, type, target, window)`` (one UTC day by default) with ``count``, ``first_seen``,
``last_seen`` and the distinct ``actions``; the raw event count is never lost.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gnnsec import schema
from gnnsec.ingest import validation
from gnnsec.ingest.base import Edge, Node, NodeRef
from gnnsec.ingest.validation import safe_excerpt

SUMMED_PROPERTIES: tuple[str, ...] = ("bytes", "packets")
"""Numeric event properties that are summed per window (flow volumes) instead of overwritten.
Events marked ``failed=True`` are counted the same way into ``failed``."""

MAX_ACTIONS_PER_EDGE = 64
"""Distinct actions kept per aggregated relationship; beyond that only the count grows."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_start(moment: datetime, window: timedelta) -> datetime:
    """The start of the aggregation window holding ``moment`` (windows are aligned on the epoch)."""
    seconds = int(window.total_seconds())
    offset = int((moment - _EPOCH).total_seconds()) // seconds * seconds
    return _EPOCH + timedelta(seconds=offset)


def _name(uid: str) -> str:
    """A uid as an error message quotes it: short, whatever its length."""
    return repr(uid) if len(uid) <= 80 else repr(uid[:80]) + "…"


def clean_properties(props: dict[str, Any] | Any) -> dict[str, Any]:
    """Drop what Neo4j cannot store: ``None``, nested maps, mixed or nested lists.

    Flat on purpose: nested values are dropped without being walked, so no depth of nesting can raise
    ``RecursionError``; what remains is checked by :func:`gnnsec.ingest.validation.check_properties`."""
    cleaned: dict[str, Any] = {}
    for key, value in dict(props).items():
        if value is None or isinstance(value, dict):
            continue
        if isinstance(value, list | tuple | set | frozenset):
            items = [v for v in value if v is not None and not isinstance(v, dict | list)]
            if not items:
                continue
            kinds = {type(v) for v in items}
            if len(kinds) > 1:
                items = [str(v) for v in items]
            cleaned[key] = sorted(items) if isinstance(value, set | frozenset) else list(items)
            continue
        cleaned[key] = value
    return cleaned


class SeenSpan:
    """The one merge rule for times, shared by staging, parallel merging and the evaluation builder: first and
    last seen only ever widen (the loader's Cypher does the same, ``graphdb.loader._widen_seen``)."""

    first_seen: datetime | None
    last_seen: datetime | None

    def observe(self, seen: datetime | None) -> None:
        if seen is None:
            return
        if self.first_seen is None or seen < self.first_seen:
            self.first_seen = seen
        if self.last_seen is None or seen > self.last_seen:
            self.last_seen = seen

    def widen(self, other: SeenSpan) -> None:
        """Take in ``other``'s span."""
        self.observe(other.first_seen)
        self.observe(other.last_seen)


@dataclass(slots=True)
class StagedNode(SeenSpan):
    label: str
    uid: str
    props: dict[str, Any] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None


@dataclass(slots=True)
class StagedEdge(SeenSpan):
    """An inventory relationship, or one window of aggregated activity."""

    type: str
    src: NodeRef
    dst: NodeRef
    window: datetime | None
    props: dict[str, Any] = field(default_factory=dict)
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    actions: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    sums: dict[str, float] = field(default_factory=dict)
    contributions: dict[str | None, dict[str, float]] = field(default_factory=dict)
    """Per ingested batch (file digest): its ``count`` and summed properties, so that re-loading one
    file of a group replaces exactly that file's share (see ``graphdb.loader``)."""


class Staging:
    """Everything one file (or a group of files of one source) says, validated and aggregated.

    Files staged together keep their contributions apart (:meth:`begin_batch`), so hourly
    CloudTrail files of one day write each daily relationship once, not once per hour.
    """

    def __init__(
        self, source: str, window: timedelta = timedelta(days=1), limits: validation.Limits = validation.DEFAULT_LIMITS
    ) -> None:
        if window.total_seconds() < 1:
            raise ValueError("the aggregation window must be at least one second")
        self.source = source
        self.window = window
        self.limits = limits
        self.nodes: dict[tuple[str, str], StagedNode] = {}
        self.edges: dict[tuple[str, NodeRef, NodeRef, datetime | None], StagedEdge] = {}
        self.events = 0
        self.records = 0
        self.label_conflicts: Counter[str] = Counter()
        self.batch: str | None = None
        self.batches: dict[str, dict[str, Any]] = {}  # batch id → {"path", "records", "events"}
        # Caches of pure work, for the per-event path (AWS's 5-minute CloudTrail repeats each node in every file):
        self._applied: dict[tuple[str, str], dict[str, Any]] = {}  # node → the raw properties applied last
        self._span: tuple[datetime, datetime] = (_EPOCH, _EPOCH)  # the window found last: [start, end)

    def begin_batch(self, batch_id: str, path: str | None = None) -> None:
        """Records staged from now on belong to the batch (file) ``batch_id``."""
        self.batch = batch_id
        self.batches.setdefault(batch_id, {"path": path or "", "records": 0, "events": 0})

    def add(self, record: Node | Edge) -> None:
        """Stage one record; raises :class:`gnnsec.schema.SchemaError` if it breaks the schema or
        :class:`~gnnsec.ingest.validation.PropertyError` if Neo4j could not store it.

        The whole record is checked before anything is staged, so a refused record leaves no trace
        (``--skip-bad`` quarantines it and the rest of the file loads as if it were not there)."""
        if isinstance(record, Node):
            props = self._checked_node(record)
            self._count_record()
            self._add_node(record.label, record.uid, props, record.seen)
            if props:
                self._applied[(record.label, record.uid)] = dict(record.props)
        elif isinstance(record, Edge):
            checked = self._checked_edge(record)
            self._count_record()
            self._add_edge(record, *checked)
        else:
            raise schema.SchemaError(f"not a node or relationship record: {safe_excerpt(record, 80)}")

    def _count_record(self) -> None:
        self.records += 1
        if self.batch is not None:
            self.batches[self.batch]["records"] += 1

    def _checked_node(self, node: Node) -> dict[str, Any]:
        """The node's storable properties; raises if anything about it would fail on write. Empty when they are
        the raw properties this node was given last (records are immutable): applying them again changes
        nothing, and CloudTrail's mapper re-sends a node's properties with every file that sees it."""
        try:
            key = (node.label, node.uid)
            if key not in self.nodes:  # a staged node's label and uid were checked already
                schema.label_id(node.label)
                validation.check_uid(node.uid, node.label, self.limits)
            validation.check_time(node.seen, "'seen'")
            if not node.props or self._applied.get(key) == node.props:
                return {}
            props = clean_properties(node.props)
            if props:
                validation.check_properties(props, limits=self.limits)
        except validation.PropertyError as exc:
            raise validation.PropertyError(f"{exc} (in the {node.label} node {_name(node.uid)})") from exc
        return props

    def _checked_edge(self, edge: Edge) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(props, counted)`` of an edge that can be staged: its storable properties and, for activity,
        its ``failed``/``bytes``/``packets`` (checked, and their window sums checked for overflow)."""
        schema.validate_edge(edge.src.label, edge.type, edge.dst.label)
        aggregated = schema.relation(edge.type).aggregated
        if aggregated and edge.time is None:
            raise schema.SchemaError(
                f"{edge.type} is activity and needs an event time ({_name(edge.src.uid)} -> {_name(edge.dst.uid)})"
            )
        try:
            for ref in (edge.src, edge.dst):
                if (ref.label, ref.uid) not in self.nodes:  # a staged node's uid was checked already
                    validation.check_uid(ref.uid, ref.label, self.limits)
            validation.check_time(edge.time, "the event time")
            if edge.action is not None:
                if not isinstance(edge.action, str):
                    raise validation.PropertyError(f"'action' must be a string, found {type(edge.action).__name__}")
                validation.check_value("action", edge.action, self.limits)
            raw = dict(edge.props) if edge.props else {}
            counted: dict[str, Any] = {}
            if aggregated:
                for name in validation.COUNTED_PROPERTIES:
                    value = raw.pop(name, None)
                    if value is not None:
                        validation.check_counted(name, value)
                        counted[name] = value
            props = clean_properties(raw) if raw else {}
            if props:
                validation.check_properties(props, activity=aggregated, limits=self.limits)
            if aggregated and counted and edge.time is not None:  # activity has a time: checked above
                window = self._window(edge.time)
                staged = self.edges.get((edge.type, edge.src, edge.dst, window))
                for name in SUMMED_PROPERTIES:
                    if name in counted:
                        validation.check_sum(name, (staged.sums.get(name, 0) if staged else 0) + counted[name])
        except validation.PropertyError as exc:
            raise validation.PropertyError(
                f"{exc} (in the {edge.type} relationship {_name(edge.src.uid)} -> {_name(edge.dst.uid)})"
            ) from exc
        return props, counted

    def _window(self, moment: datetime) -> datetime:
        """:func:`window_start` of ``moment``: two comparisons when it falls in the window found last, as a
        file's events mostly do (1.8 µs to compute one)."""
        start, end = self._span
        if start <= moment < end:
            return start
        start = window_start(moment, self.window)
        self._span = (start, start + self.window)
        return start

    def _add_node(self, label: str, uid: str, props: dict[str, Any] | None, seen: datetime | None) -> StagedNode:
        key = (label, uid)
        node = self.nodes.get(key)
        if node is None:
            node = self.nodes[key] = StagedNode(label, uid)
        if props:
            node.props.update(props)
        node.observe(seen)
        return node

    def _add_edge(self, edge: Edge, props: dict[str, Any], counted: dict[str, Any]) -> None:
        """Stage an edge already checked by :meth:`_checked_edge` (``props`` cleaned, ``counted`` apart)."""
        self._add_node(edge.src.label, edge.src.uid, None, edge.time)
        self._add_node(edge.dst.label, edge.dst.uid, None, edge.time)
        aggregated = schema.relation(edge.type).aggregated
        window = self._window(edge.time) if aggregated and edge.time else None
        key = (edge.type, edge.src, edge.dst, window)
        staged = self.edges.get(key)
        if staged is None:
            staged = self.edges[key] = StagedEdge(edge.type, edge.src, edge.dst, window)
        if aggregated:
            if edge.time is None:  # never: _checked_edge refuses activity without an event time
                raise schema.SchemaError(f"{edge.type} is activity and needs an event time")
            self.events += 1
            if self.batch is not None:
                self.batches[self.batch]["events"] += 1
            staged.count += 1
            share = staged.contributions.get(self.batch)
            if share is None:
                share = staged.contributions[self.batch] = {"count": 0}
            share["count"] += 1
            staged.observe(edge.time)
            if edge.action and len(staged.actions) < MAX_ACTIONS_PER_EDGE:
                staged.actions[edge.action] = None
            if counted.get("failed") is True:
                staged.sums["failed"] = staged.sums.get("failed", 0) + 1
                share["failed"] = share.get("failed", 0) + 1
            for name in SUMMED_PROPERTIES:
                value = counted.get(name)
                if value is not None:
                    staged.sums[name] = staged.sums.get(name, 0) + value
                    share[name] = share.get(name, 0) + value
            if props:
                staged.props.update(props)
        else:
            staged.count = 1
            if props:
                staged.props.update(props)
            staged.observe(edge.time)

    def merge(self, other: Staging) -> None:
        """Add ``other``'s batches as if they had been staged here after this staging's own.

        ``other`` must be of the same source and window and share no batch with this staging; it is
        consumed (its nodes and relationships may now belong to this staging).  The result equals
        staging the records of both in order: node and relationship order, properties (later
        wins), first/last seen, counts, the first :data:`MAX_ACTIONS_PER_EDGE` distinct actions, and
        the per-batch contributions, which stay exact.  Parallel ingest stages files in worker
        processes and merges the partial stagings in file order with this.

        Raises :class:`~gnnsec.ingest.validation.PropertyError`, changing nothing, if a per-window sum
        of both would no longer be storable: staging the records in one staging would have refused
        the record that overflowed, so the caller re-stages them in one (``graphdb.ingest`` does)."""
        if other.source != self.source or other.window != self.window:
            raise ValueError(f"cannot merge a {other.source} staging ({other.window}) into a "
                             f"{self.source} one ({self.window})")
        shared = self.batches.keys() & other.batches.keys()
        if shared:
            raise ValueError(f"batch {sorted(shared)[0]} is staged in both stagings")
        for key, edge in other.edges.items():  # check first: a refused merge changes nothing
            mine = self.edges.get(key)
            if mine is not None and edge.sums:
                for name in SUMMED_PROPERTIES:
                    if name in edge.sums:
                        validation.check_sum(name, mine.sums.get(name, 0) + edge.sums[name])
        self._applied.clear()  # a merged node's properties may no longer be the ones applied here last
        for node_key, node in other.nodes.items():
            known = self.nodes.get(node_key)
            if known is None:
                self.nodes[node_key] = node
                continue
            if node.props:
                known.props.update(node.props)
            known.widen(node)
        for key, edge in other.edges.items():
            mine = self.edges.get(key)
            if mine is None:
                self.edges[key] = edge
                continue
            if edge.window is not None:  # activity: windows add up
                mine.count += edge.count
                for action in edge.actions:
                    if len(mine.actions) >= MAX_ACTIONS_PER_EDGE:
                        break
                    mine.actions[action] = None
                for name, value in edge.sums.items():
                    mine.sums[name] = mine.sums.get(name, 0) + value
                for batch, share in edge.contributions.items():
                    ours = mine.contributions.get(batch)
                    if ours is None:
                        mine.contributions[batch] = share
                    else:
                        for name, value in share.items():
                            ours[name] = ours.get(name, 0) + value
            else:
                mine.count = edge.count
            if edge.props:
                mine.props.update(edge.props)
            mine.widen(edge)
        self.events += other.events
        self.records += other.records
        self.label_conflicts.update(other.label_conflicts)
        self.batches.update(other.batches)
        if other.batch is not None:
            self.batch = other.batch

    @property
    def is_empty(self) -> bool:
        return not self.nodes and not self.edges
