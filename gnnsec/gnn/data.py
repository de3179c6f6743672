"""Snapshot → torch tensors for message passing.

Messages must flow both ways along a relationship (a role learns who assumes it, a user learns which
roles it assumes), so every schema relation ``r`` (0..19) gets an inverse ``r + NUM_RELATIONS``
(20..39) with source and target swapped: 40 relations in the encoder, 20 in the DistMult decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gnnsec.schema import NUM_RELATIONS
from gnnsec.snapshot import Snapshot

NUM_ENCODER_RELATIONS = 2 * NUM_RELATIONS
"""Schema relations plus their inverses."""


def inverse_relation(relation_ids: torch.Tensor) -> torch.Tensor:
    """Id of the inverse of each schema relation id (``id + NUM_RELATIONS``)."""
    return relation_ids + NUM_RELATIONS


def with_inverse_edges(edge_index: torch.Tensor, edge_type: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[2, E]``/``[E]`` schema edges → ``[2, 2E]``/``[2E]``: the edges followed by their reversals."""
    reversed_index = edge_index.flip(0)
    return torch.cat([edge_index, reversed_index], dim=1), torch.cat([edge_type, inverse_relation(edge_type)])


@dataclass(slots=True)
class GraphTensors:
    """One graph ready for the encoder: features, schema edges, and message-passing edges."""

    x: torch.Tensor  # float32 [N, F]
    node_label: torch.Tensor  # int64 [N]
    edge_index: torch.Tensor  # int64 [2, E], schema direction
    edge_type: torch.Tensor  # int64 [E], 0..19
    mp_edge_index: torch.Tensor  # int64 [2, 2E], with inverses
    mp_edge_type: torch.Tensor  # int64 [2E], 0..39

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device | str) -> GraphTensors:
        return GraphTensors(*(t.to(device) for t in (
            self.x, self.node_label, self.edge_index, self.edge_type, self.mp_edge_index, self.mp_edge_type
        )))


def to_pyg_data(graph: GraphTensors) -> Any:
    """A ``torch_geometric.data.Data`` with the message-passing edges and ``edge_type`` (PyG loaders)."""
    from torch_geometric.data import Data  # lazy: torch-geometric costs seconds to import

    return Data(
        x=graph.x, edge_index=graph.mp_edge_index, edge_type=graph.mp_edge_type, node_label=graph.node_label,
        num_nodes=graph.num_nodes,
    )


def to_tensors(snapshot: Snapshot, features: np.ndarray | torch.Tensor) -> GraphTensors:
    """Tensors of ``snapshot`` with the given feature matrix (from :func:`features.build_features`)."""
    snapshot.validate()
    x = torch.as_tensor(features, dtype=torch.float32)
    if x.shape[0] != snapshot.num_nodes:
        raise ValueError(f"features have {x.shape[0]} rows but the snapshot has {snapshot.num_nodes} nodes")
    edge_index = torch.as_tensor(np.asarray(snapshot.edge_index, dtype=np.int64)).reshape(2, -1)
    edge_type = torch.as_tensor(np.asarray(snapshot.edge_type, dtype=np.int64))
    if edge_type.numel() and (edge_type.min() < 0 or edge_type.max() >= NUM_RELATIONS):
        raise ValueError(f"edge_type must be schema relation ids 0..{NUM_RELATIONS - 1}")
    mp_index, mp_type = with_inverse_edges(edge_index, edge_type)
    return GraphTensors(
        x=x,
        node_label=torch.as_tensor(np.asarray(snapshot.node_label, dtype=np.int64)),
        edge_index=edge_index,
        edge_type=edge_type,
        mp_edge_index=mp_index,
        mp_edge_type=mp_type,
    )
