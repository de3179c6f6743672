"""Relation-agnostic baselines with the encoder interface, for the ablation.

Each maps ``(x, edge_index, edge_type) → [N, out_dim]`` like :class:`~gnnsec.gnn.model.HeteroRGCNEncoder`,
with the same input projection and depth, so a difference in the ablation is the layer, not the plumbing.
``edge_type`` is ignored: that is the point of the comparison.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv

from gnnsec.gnn.layers import InputProjection, RelationPlan


def _dims(hidden_dim: int, out_dim: int, num_layers: int) -> list[tuple[int, int]]:
    sizes = [hidden_dim] * num_layers + [out_dim]
    return list(pairwise(sizes))


class _HomogeneousEncoder(nn.Module):
    """Input projection, then PyG layers with ReLU/dropout between them."""

    def __init__(
        self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, dropout: float, active_dim: int | None = None
    ) -> None:
        super().__init__()
        self.input_proj = InputProjection(in_dim, hidden_dim, active_dim)
        self.convs = nn.ModuleList(self.make_conv(i, o) for i, o in _dims(hidden_dim, out_dim, num_layers))
        self.dropout = nn.Dropout(dropout)
        self.out_dim = out_dim

    def make_conv(self, in_dim: int, out_dim: int) -> nn.Module:
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor, plan: RelationPlan | None = None
    ) -> torch.Tensor:
        h = torch.relu(self.input_proj(x))
        for i, conv in enumerate(self.convs):
            h = conv(h, edge_index)
            if i < len(self.convs) - 1:
                h = self.dropout(torch.relu(h))
        return h


class GCNEncoder(_HomogeneousEncoder):
    """Kipf & Welling GCN: symmetric-normalised neighbour sum, one weight for every relation."""

    def make_conv(self, in_dim: int, out_dim: int) -> nn.Module:
        return GCNConv(in_dim, out_dim, add_self_loops=True)


class GATEncoder(_HomogeneousEncoder):
    """GAT with 4 heads averaged: attention decides which neighbours matter, not the relation type."""

    def make_conv(self, in_dim: int, out_dim: int) -> nn.Module:
        return GATConv(in_dim, out_dim, heads=4, concat=False)


class SAGEEncoder(_HomogeneousEncoder):
    """GraphSAGE (mean aggregator): own transform plus transform of the neighbour mean."""

    def make_conv(self, in_dim: int, out_dim: int) -> nn.Module:
        return SAGEConv(in_dim, out_dim, aggr="mean")


class MLPEncoder(nn.Module):
    """Feature-only: no message passing at all. A graph model has to beat this to justify itself."""

    def __init__(
        self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, dropout: float, active_dim: int | None = None
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [InputProjection(in_dim, hidden_dim, active_dim), nn.ReLU()]
        for i, o in _dims(hidden_dim, out_dim, num_layers):
            layers += [nn.Dropout(dropout), nn.Linear(i, o), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])
        self.out_dim = out_dim

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor, plan: RelationPlan | None = None
    ) -> torch.Tensor:
        return self.net(x)
