"""Inference: node embeddings, masked reconstruction errors and DistMult edge logits of a snapshot."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gnnsec.gnn.data import GraphTensors, to_tensors
from gnnsec.gnn.device import resolve_device
from gnnsec.gnn.features import FeatureSpec, build_features
from gnnsec.gnn.layers import RelationPlan
from gnnsec.gnn.model import GraphAutoencoder
from gnnsec.snapshot import Snapshot


@dataclass(slots=True)
class Embeddings:
    """What detection needs from one snapshot, as numpy arrays aligned with ``node_uid``.

    ``recon_error`` is 1 − cos(x_i, x̂_i) with node i *masked*: how badly its neighbourhood predicts it.
    ``features`` keeps the spec's real columns (no padding) for explanations.
    """

    node_uid: list[str]
    node_label: np.ndarray  # int64 [N]
    z: np.ndarray  # float32 [N, d]
    recon_error: np.ndarray  # float32 [N]
    features: np.ndarray  # float32 [N, spec.width]
    edge_index: np.ndarray  # int64 [2, E], schema direction
    edge_type: np.ndarray  # int64 [E]
    edge_logit: np.ndarray  # float32 [E], DistMult f(s, r, o)

    def subset(self, rows: np.ndarray) -> Embeddings:
        """The nodes in ``rows`` (edges dropped): used to build reference sets."""
        return Embeddings(
            node_uid=[self.node_uid[i] for i in rows],
            node_label=self.node_label[rows],
            z=self.z[rows],
            recon_error=self.recon_error[rows],
            features=self.features[rows],
            edge_index=np.zeros((2, 0), dtype=np.int64),
            edge_type=np.zeros(0, dtype=np.int64),
            edge_logit=np.zeros(0, dtype=np.float32),
        )


@torch.no_grad()
def reconstruction_errors(
    model: GraphAutoencoder, graph: GraphTensors, plan: RelationPlan, passes: int, seed: int
) -> torch.Tensor:
    """Masked reconstruction error of every node: nodes are split at random into ``passes`` groups and
    each group is masked once, so every node is judged from its context at the cost of ``passes`` encodes."""
    n = graph.num_nodes
    errors = torch.zeros(n, device=graph.x.device)
    groups = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) % max(passes, 1)
    for g in range(max(passes, 1)):
        masked = torch.nonzero(groups == g).flatten().to(graph.x.device)
        if masked.numel() == 0:
            continue
        z = model.encode_masked(graph.x, masked, graph.mp_edge_index, graph.mp_edge_type, plan)
        recon = model.feature_decoder(z[masked])
        errors[masked] = 1.0 - F.cosine_similarity(recon, graph.x[masked], dim=-1, eps=1e-8)
    return errors


@torch.no_grad()
def embed(
    model: GraphAutoencoder,
    snapshot: Snapshot,
    spec: FeatureSpec,
    device: str = "auto",
    recon_passes: int = 4,
    seed: int = 0,
) -> Embeddings:
    """Encode the whole snapshot (all edges, with inverses) and compute the per-node and per-edge signals."""
    target = resolve_device(device)
    model = model.to(target).eval()
    graph = to_tensors(snapshot, build_features(snapshot, spec)).to(target)
    plan = RelationPlan.build(graph.mp_edge_index, graph.mp_edge_type, graph.num_nodes)
    z = model.encode(graph.x, graph.mp_edge_index, graph.mp_edge_type, plan)
    errors = reconstruction_errors(model, graph, plan, recon_passes, seed)
    logits = edge_logits(model, z, graph.edge_index, graph.edge_type)
    return Embeddings(
        node_uid=list(snapshot.node_uid),
        node_label=graph.node_label.cpu().numpy(),
        z=z.cpu().numpy().astype(np.float32),
        recon_error=errors.cpu().numpy().astype(np.float32),
        features=graph.x[:, : spec.width].cpu().numpy(),
        edge_index=graph.edge_index.cpu().numpy(),
        edge_type=graph.edge_type.cpu().numpy(),
        edge_logit=logits.cpu().numpy().astype(np.float32),
    )


@torch.no_grad()
def edge_logits(
    model: GraphAutoencoder, z: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor, chunk: int = 1 << 20
) -> torch.Tensor:
    """DistMult f(s, r, o) for each schema edge, in chunks to bound memory."""
    out = [
        model.distmult(z, edge_index[0, i : i + chunk], edge_type[i : i + chunk], edge_index[1, i : i + chunk])
        for i in range(0, edge_type.numel(), chunk)
    ]
    return torch.cat(out) if out else torch.zeros(0, device=z.device)
