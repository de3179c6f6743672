"""Staging: validate and aggregate a file's records before anything is written.

A file is read to the end into a :class:`Staging` first; only a file that read cleanly is handed
to the loader, so a corrupt file writes nothing.  Memory is bounded by the number of distinct
entities and ``(source, type, target, window)`` keys, not by the number of events: a million
CloudTrail events by a few hundred principals stage into a few thousand relationships.

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
from gnnsec.ingest.base import Edge, Node, NodeRef

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


def clean_properties(props: dict[str, Any] | Any) -> dict[str, Any]:
    """Drop what Neo4j cannot store: ``None``, nested maps, mixed or nested lists."""
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


@dataclass(slots=True)
class StagedNode:
    label: str
    uid: str
    props: dict[str, Any] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    def observe(self, seen: datetime | None) -> None:
        if seen is None:
            return
        if self.first_seen is None or seen < self.first_seen:
            self.first_seen = seen
        if self.last_seen is None or seen > self.last_seen:
            self.last_seen = seen


@dataclass(slots=True)
class StagedEdge:
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

    def __init__(self, source: str, window: timedelta = timedelta(days=1)) -> None:
        if window.total_seconds() < 1:
            raise ValueError("the aggregation window must be at least one second")
        self.source = source
        self.window = window
        self.nodes: dict[tuple[str, str], StagedNode] = {}
        self.edges: dict[tuple[str, NodeRef, NodeRef, datetime | None], StagedEdge] = {}
        self.events = 0
        self.records = 0
        self.label_conflicts: Counter[str] = Counter()
        self.batch: str | None = None
        self.batches: dict[str, dict[str, Any]] = {}  # batch id → {"path", "records", "events"}

    def begin_batch(self, batch_id: str, path: str | None = None) -> None:
        """Records staged from now on belong to the batch (file) ``batch_id``."""
        self.batch = batch_id
        self.batches.setdefault(batch_id, {"path": path or "", "records": 0, "events": 0})

    def add(self, record: Node | Edge) -> None:
        """Stage one record; raises :class:`gnnsec.schema.SchemaError` if it breaks the schema."""
        self.records += 1
        if self.batch is not None:
            self.batches[self.batch]["records"] += 1
        if isinstance(record, Node):
            self._add_node(record.label, record.uid, record.props, record.seen)
        else:
            self._add_edge(record)

    def _add_node(self, label: str, uid: str, props: Any, seen: datetime | None) -> StagedNode:
        key = (label, uid)
        node = self.nodes.get(key)
        if node is None:
            schema.label_id(label)
            if not uid:
                raise schema.SchemaError(f"a {label} node has an empty uid")
            node = self.nodes[key] = StagedNode(label, uid)
        if props:
            node.props.update(clean_properties(props))
        node.observe(seen)
        return node

    def _add_edge(self, edge: Edge) -> None:
        schema.validate_edge(edge.src.label, edge.type, edge.dst.label)
        self._add_node(edge.src.label, edge.src.uid, None, edge.time)
        self._add_node(edge.dst.label, edge.dst.uid, None, edge.time)
        aggregated = schema.relation(edge.type).aggregated
        if aggregated and edge.time is None:
            raise schema.SchemaError(
                f"{edge.type} is activity and needs an event time ({edge.src.uid} -> {edge.dst.uid})"
            )
        window = window_start(edge.time, self.window) if aggregated and edge.time else None
        key = (edge.type, edge.src, edge.dst, window)
        staged = self.edges.get(key)
        if staged is None:
            staged = self.edges[key] = StagedEdge(edge.type, edge.src, edge.dst, window)
        if aggregated:
            self.events += 1
            if self.batch is not None:
                self.batches[self.batch]["events"] += 1
            staged.count += 1
            share = staged.contributions.get(self.batch)
            if share is None:
                share = staged.contributions[self.batch] = {"count": 0}
            share["count"] += 1
            if staged.first_seen is None or edge.time < staged.first_seen:  # type: ignore[operator]
                staged.first_seen = edge.time
            if staged.last_seen is None or edge.time > staged.last_seen:  # type: ignore[operator]
                staged.last_seen = edge.time
            if edge.action and len(staged.actions) < MAX_ACTIONS_PER_EDGE:
                staged.actions[edge.action] = None
            props = dict(edge.props) if edge.props else {}
            if props.pop("failed", False) is True:
                staged.sums["failed"] = staged.sums.get("failed", 0) + 1
                share["failed"] = share.get("failed", 0) + 1
            for name in SUMMED_PROPERTIES:
                value = props.pop(name, None)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    staged.sums[name] = staged.sums.get(name, 0) + value
                    share[name] = share.get(name, 0) + value
            if props:
                staged.props.update(clean_properties(props))
        else:
            staged.count = 1
            if edge.props:
                staged.props.update(clean_properties(edge.props))
            if edge.time is not None:
                if staged.first_seen is None or edge.time < staged.first_seen:
                    staged.first_seen = edge.time
                if staged.last_seen is None or edge.time > staged.last_seen:
                    staged.last_seen = edge.time

    @property
    def is_empty(self) -> bool:
        return not self.nodes and not self.edges
