"""A subgraph snapshot as plain arrays: what ``graphdb.export`` produces and ``gnn`` consumes.

Keeping it free of torch and of the Neo4j driver lets the export be tested without a model and
the model be tested without a database.  Node ``i`` is ``node_uid[i]``; edges point at node
indices; relation ids and label ids come from :mod:`gnnsec.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


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
    edge_element_id: list[str] = field(default_factory=list)
    """Neo4j element ids of the relationships when exported from the database (else empty): write-back in the
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
