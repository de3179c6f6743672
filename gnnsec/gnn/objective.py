r"""The training objective on one (sub)graph, shared by full-batch steps, mini-batch steps and validation.

.. math::
    \mathcal{L} = \mathrm{SCE} + w_s\,\mathcal{L}_{struct} + w_y\,\mathcal{L}_{sup}

* masked feature reconstruction, scored by the scaled cosine error
  :math:`\mathrm{SCE} = \frac{1}{|M|}\sum_{i\in M}(1-\cos(x_i,\hat x_i))^{\gamma}` over the masked nodes
  :math:`M` (γ > 1 down-weights the easy nodes);
* structure: binary cross-entropy of DistMult scores, positives against as many negatives made by
  replacing the head or the tail with a random node of the same label (:class:`NegativeSampler`);
* supervised (only when the model has a classifier): BCE of the linear head on the labelled nodes.

Everything one evaluation needs travels in a :class:`StepBatch`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gnnsec.gnn.layers import RelationPlan, TrimmedPlans
from gnnsec.gnn.model import GraphAutoencoder
from gnnsec.schema import NUM_LABELS, NUM_RELATIONS


def scaled_cosine_error(reconstructed: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    r""":math:`\frac{1}{n}\sum_i (1-\cos(x_i,\hat x_i))^{\gamma}` over the rows given."""
    if target.shape[0] == 0:
        return reconstructed.sum() * 0.0
    cos = F.cosine_similarity(reconstructed, target, dim=-1, eps=1e-8)
    return (1.0 - cos).clamp_min(0.0).pow(gamma).mean()


def edge_auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    r"""ROC AUC without sklearn: :math:`P(s^+ > s^-)`, ties counting half (Mann-Whitney U over average ranks)."""
    if pos.numel() == 0 or neg.numel() == 0:
        return float("nan")
    scores = torch.cat([pos, neg]).double()
    ranks = torch.empty_like(scores)
    order = torch.argsort(scores)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=torch.float64)
    # average ranks over ties
    uniq, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    sums = torch.zeros(uniq.numel(), dtype=torch.float64).index_add_(0, inverse, ranks)
    ranks = (sums / counts)[inverse]
    n_pos, n_neg = pos.numel(), neg.numel()
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class NegativeSampler:
    """Replaces the head or the tail of each positive with a random node of the same label, so
    negatives are type-plausible and the decoder cannot win by learning which labels connect."""

    def __init__(self, node_label: torch.Tensor) -> None:
        order = torch.argsort(node_label, stable=True)
        counts = torch.bincount(node_label, minlength=NUM_LABELS)
        self.order, self.counts = order, counts
        self.offsets = torch.cumsum(counts, 0) - counts
        self.node_label = node_label

    def corrupt(
        self, src: torch.Tensor, dst: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = src.numel()
        head = torch.rand(n, generator=generator) < 0.5
        victim = torch.where(head, src, dst)
        label = self.node_label[victim]
        pick = self.offsets[label] + (torch.rand(n, generator=generator) * self.counts[label]).long()
        replacement = self.order[pick]
        return torch.where(head, replacement, src), torch.where(head, dst, replacement)


def sample_positives(
    edge_type: torch.Tensor, per_relation: int, generator: torch.Generator, fraction: float = 1.0
) -> torch.Tensor:
    r"""Indices of :math:`\min(k, \max(1, \lfloor f\,|E_r| \rfloor))` random edges of each relation r
    (``per_relation`` = k, ``fraction`` = f), so no step holds out a whole small relation."""
    if edge_type.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    shuffled = torch.randperm(edge_type.numel(), generator=generator)
    types = edge_type[shuffled]
    order = torch.argsort(types, stable=True)
    sorted_types = types[order]
    counts = torch.bincount(sorted_types, minlength=NUM_RELATIONS)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(sorted_types.numel()) - starts[sorted_types]
    limit = torch.clamp((counts.double() * fraction).floor().long(), min=1, max=per_relation)
    return shuffled[order[rank < limit[sorted_types]]]


@dataclass(slots=True)
class StepBatch:
    """One evaluation of the objective: the graph messages pass on, and what is reconstructed on it.

    Node ids index the rows of ``x`` (global ids on the whole graph, local ones on a sampled subgraph).
    ``neg_src``/``neg_dst`` pair up with the positives (and share ``pos_type``), ``sup_targets`` (0/1)
    with ``sup_nodes``. ``plan`` groups ``edge_index`` by relation; it is device-bound, so :meth:`to`
    keeps it as it is and :meth:`planned` builds it once the tensors are where they run.

    ``layer_rows``, when given, says that the losses read only the first ``layer_rows[-1]`` rows of the
    embeddings, and that encoder layer l needs to write only its first ``layer_rows[l]`` rows (a
    neighbour-sampled subgraph in hop order): :meth:`planned` then builds :class:`TrimmedPlans` instead.
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_type: torch.Tensor
    masked: torch.Tensor
    pos_src: torch.Tensor
    pos_type: torch.Tensor
    pos_dst: torch.Tensor
    neg_src: torch.Tensor
    neg_dst: torch.Tensor
    sup_nodes: torch.Tensor
    sup_targets: torch.Tensor
    layer_rows: tuple[int, ...] = ()
    plan: RelationPlan | None = None
    trim: TrimmedPlans | None = None

    def to(self, device: torch.device) -> StepBatch:
        """This batch with every tensor on ``device`` (no copy for those already there)."""
        moved = {f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self) if f.name not in _KEPT}
        return StepBatch(**moved, layer_rows=self.layer_rows, plan=self.plan, trim=self.trim)

    def planned(self, relational: bool = True) -> StepBatch:
        """This batch with its relation plans, built from its own edges over the rows of ``x``; as it is for
        ``relational=False``, an encoder that reads ``edge_index`` alone (GCN, GAT, SAGE, MLP): building the
        plans it never read was most of SAGE's batch preparation, 0.85-1.12 -> 0.28-0.31 s of a medium-estate
        epoch (same validation loss)."""
        if not relational:
            return self
        if self.layer_rows:
            return dataclasses.replace(self, trim=TrimmedPlans.build(self.edge_index, self.edge_type, self.layer_rows))
        return dataclasses.replace(self, plan=RelationPlan.build(self.edge_index, self.edge_type, self.x.shape[0]))


_KEPT = ("layer_rows", "plan", "trim")
""":class:`StepBatch` fields that are not tensors to move."""


@dataclass(slots=True)
class Losses:
    """``total`` keeps the graph for backward; the parts are detached floats for the record."""

    total: torch.Tensor
    feature: float
    structure: float
    supervised: float
    edge_auc: float = float("nan")


class Objective:
    r"""The three losses on one :class:`StepBatch`; ``gamma`` is the SCE exponent, ``structure_weight`` and
    ``supervised_weight`` are :math:`w_s` and :math:`w_y`."""

    def __init__(
        self, model: GraphAutoencoder, *, gamma: float, structure_weight: float, supervised_weight: float
    ) -> None:
        self.model = model
        self.gamma, self.structure_weight, self.supervised_weight = gamma, structure_weight, supervised_weight

    def __call__(self, batch: StepBatch) -> Losses:
        model, b = self.model, batch
        # encode_masked: the token replaces the masked rows after the RGCN's input projection, so backward
        # computes no gradient for the whole input (medium estate: 2.9 of a mini-batch step's 25 GFLOP; the
        # epoch, alternated with the old code, 28.3 / 29.2 s against 29.8 / 28.1 s: within this machine's noise)
        z = model.encode_masked(b.x, b.masked, b.edge_index, b.edge_type, b.plan, trim=b.trim)
        feature = scaled_cosine_error(model.feature_decoder(z[b.masked]), b.x[b.masked], self.gamma)
        total = feature
        structure_value, auc = 0.0, float("nan")
        if b.pos_src.numel():
            pos = model.distmult(z, b.pos_src, b.pos_type, b.pos_dst)
            negs = model.distmult(z, b.neg_src, b.pos_type, b.neg_dst)
            structure = F.binary_cross_entropy_with_logits(
                torch.cat([pos, negs]), torch.cat([torch.ones_like(pos), torch.zeros_like(negs)])
            )
            total = total + self.structure_weight * structure
            structure_value = float(structure.detach())
            auc = edge_auc(pos.detach().cpu(), negs.detach().cpu())
        supervised_value = 0.0
        if model.classifier is not None and b.sup_nodes.numel():
            logits = model.classifier(z[b.sup_nodes]).squeeze(-1)
            supervised = F.binary_cross_entropy_with_logits(logits, b.sup_targets)
            total = total + self.supervised_weight * supervised
            supervised_value = float(supervised.detach())
        return Losses(total, float(feature.detach()), structure_value, supervised_value, auc)
