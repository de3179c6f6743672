"""A subgraph snapshot as plain arrays: what ``graphdb.export`` produces and ``gnn`` consumes.

Keeping it free of torch and of the Neo4j driver lets the export be tested without a model and
the model be tested without a database.  Node ``i`` is ``node_uid[i]``; edges point at node
indices; relation ids and label ids come from :mod:`gnnsec.schema`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np


class ElementIds(Sequence[str]):
    """Neo4j element ids stored as one shared prefix and integer suffixes.

    A 5.x element id is ``"<kind>:<database id>:<number>"``, and one export reads a single database, so the
    prefix is the same for every relationship. 5M ids as Python strings held 494 MB of a million-node
    scoring run; as ``int64`` they hold 40 MB. :meth:`of` falls back to a plain list for ids of another shape.
    """

    __slots__ = ("numbers", "prefix")

    def __init__(self, prefix: str, numbers: np.ndarray) -> None:
        self.prefix = prefix
        self.numbers = np.asarray(numbers, dtype=np.int64)

    @classmethod
    def of(cls, ids: Iterable[str]) -> Sequence[str]:
        """``ids`` compacted, or as a list when they do not share a prefix followed by a decimal number."""
        ids = ids if isinstance(ids, list) else list(ids)
        if not ids:
            return []
        prefix = ids[0][: ids[0].rfind(":") + 1]
        width = len(prefix)
        try:
            if prefix and all(i.startswith(prefix) for i in ids):
                suffixes = [i[width:] for i in ids]
                if all(s.isdigit() for s in suffixes):
                    return cls(prefix, np.array(suffixes, dtype=np.int64))
        except (OverflowError, ValueError):
            pass
        return ids

    def __len__(self) -> int:
        return int(self.numbers.shape[0])

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> ElementIds: ...

    def __getitem__(self, index: int | slice) -> str | ElementIds:
        if isinstance(index, slice):
            return ElementIds(self.prefix, self.numbers[index])
        return f"{self.prefix}{int(self.numbers[index])}"

    def take(self, rows: np.ndarray) -> ElementIds:
        """The ids at ``rows``, still compact."""
        return ElementIds(self.prefix, self.numbers[rows])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ElementIds):
            return self.prefix == other.prefix and np.array_equal(self.numbers, other.numbers)
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-array backed, like a list

    def __repr__(self) -> str:
        return f"ElementIds({self.prefix!r}, {len(self):,} ids)"


def element_ids_at(ids: Sequence[str], rows: np.ndarray) -> Sequence[str]:
    """``ids`` at ``rows`` (a subset or a new order), compact when they were."""
    if isinstance(ids, ElementIds):
        return ids.take(rows)
    return [ids[int(e)] for e in rows.tolist()] if len(ids) else []


@dataclass(slots=True)
class Snapshot:
    """Nodes and relationships of one time window.

    Timestamps are float epoch seconds (NaN when unknown). ``edge_window`` is the aggregation
    window start as stored on activity relationships (ISO string), ``None`` for inventory ones;
    together with the endpoints' uids and the type it identifies a relationship for write-back.
    """

    node_uid: list[str]
    node_label: np.ndarray  # int64 [N], schema.label_id
    node_props: list[dict[str, Any]]  # raw stored properties, score properties excluded
    edge_index: np.ndarray  # int64 [2, E]
    edge_type: np.ndarray  # int64 [E], schema.relation_id
    edge_count: np.ndarray  # float64 [E], aggregated event count (1 for inventory)
    edge_first_seen: np.ndarray  # float64 [E]
    edge_last_seen: np.ndarray  # float64 [E]
    edge_window: list[str | None]
    edge_actions: list[list[str]]
    window_start: float | None = None
    window_end: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    edge_element_id: Sequence[str] = field(default_factory=list)
    """Neo4j element ids of the relationships when exported from the database (else empty; :class:`ElementIds`
    from an export): write-back in the
    same run seeks each one directly instead of expanding from its source node and filtering by type, target
    and window. Nodes need none: given both, the planner still prefers the uid uniqueness index."""

    @property
    def num_nodes(self) -> int:
        return len(self.node_uid)

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def index_of(self) -> dict[str, int]:
        """uid → node index (uids are unique across labels by construction of the uid scheme)."""
        return {uid: i for i, uid in enumerate(self.node_uid)}

    def validate(self) -> None:
        """Raise ``ValueError`` when the arrays disagree in length or point outside the nodes."""
        n, e = self.num_nodes, self.num_edges
        if self.node_label.shape != (n,) or len(self.node_props) != n:
            raise ValueError("node arrays disagree in length")
        if self.edge_index.shape != (2, e):
            raise ValueError("edge_index must have shape [2, E]")
        for name in ("edge_type", "edge_count", "edge_first_seen", "edge_last_seen"):
            if getattr(self, name).shape != (e,):
                raise ValueError(f"{name} must have shape [E]")
        if len(self.edge_window) != e or len(self.edge_actions) != e:
            raise ValueError("edge lists disagree in length")
        if len(self.edge_element_id) not in (0, e):
            raise ValueError("edge_element_id must be empty or hold one id per relationship")
        if e and (self.edge_index.min() < 0 or self.edge_index.max() >= n):
            raise ValueError("edge_index points outside the node range")
