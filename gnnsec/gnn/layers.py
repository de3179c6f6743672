"""Relational message passing and the PEFT adapter.

:class:`RelationalConv` is our own rather than PyG's ``RGCNConv`` on purpose: ``RGCNConv`` multiplies
the whole node matrix by every relation's weight (R·N·d_in·d_out), while only the nodes that take part
in a relation need it; ``FastRGCNConv`` materialises E·d_in·d_out. ``benchmarks/layers.py`` measures
the difference on the same graph in the same run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

EDGE_CHUNK = 1 << 20
"""Edges per gather/scatter step: at d = 256 a chunk's message buffer is 1 GiB at most."""


@dataclass(slots=True)
class RelationGroup:
    """The edges of one relation, with what both evaluation orders need precomputed.

    ``unique_src``/``src_inverse`` let us transform each participating source once;
    ``unique_dst``/``dst_inverse`` let us aggregate first and transform each destination once.
    ``norm`` is 1/|N_r(i)| per edge, the mean over i's neighbours under relation r.
    """

    relation: int
    src: torch.Tensor
    dst: torch.Tensor
    norm: torch.Tensor  # float [E_r]
    unique_src: torch.Tensor
    src_inverse: torch.Tensor
    unique_dst: torch.Tensor
    dst_inverse: torch.Tensor
    dst_count: torch.Tensor  # float [len(unique_dst)]

    @property
    def transform_sources_first(self) -> bool:
        """Transform whichever side has fewer distinct nodes: that is the fewer matrix products."""
        return self.unique_src.numel() <= self.unique_dst.numel()


@dataclass(slots=True)
class RelationPlan:
    """Edges grouped by relation; built once per graph and shared by every layer and epoch."""

    num_nodes: int
    groups: list[RelationGroup]

    @classmethod
    def build(cls, edge_index: torch.Tensor, edge_type: torch.Tensor, num_nodes: int) -> RelationPlan:
        groups: list[RelationGroup] = []
        if edge_type.numel() == 0:
            return cls(num_nodes, groups)
        order = torch.argsort(edge_type, stable=True)
        sorted_type = edge_type[order]
        relations, counts = torch.unique_consecutive(sorted_type, return_counts=True)
        start = 0
        for rel, count in zip(relations.tolist(), counts.tolist(), strict=True):
            idx = order[start : start + count]
            start += count
            src, dst = edge_index[0, idx], edge_index[1, idx]
            unique_src, src_inverse = torch.unique(src, return_inverse=True)
            unique_dst, dst_inverse, dst_count = torch.unique(dst, return_inverse=True, return_counts=True)
            dst_count = dst_count.to(torch.float32)
            groups.append(
                RelationGroup(
                    relation=int(rel),
                    src=src,
                    dst=dst,
                    norm=(1.0 / dst_count)[dst_inverse],
                    unique_src=unique_src,
                    src_inverse=src_inverse,
                    unique_dst=unique_dst,
                    dst_inverse=dst_inverse,
                    dst_count=dst_count,
                )
            )
        return cls(num_nodes, groups)


class RelationalConv(nn.Module):
    r"""Relational graph convolution (Schlichtkrull et al.), evaluated per relation.

    .. math::
        h_i' = W_0 h_i + b + \sum_{r} \frac{1}{|N_r(i)|} \sum_{j \in N_r(i)} W_r h_j

    With ``num_bases = B`` the relation weights share a basis, :math:`W_r = \sum_b a_{rb} V_b`, so the
    parameter count is B·d_in·d_out + R·B instead of R·d_in·d_out.

    Evaluation per relation r, whichever is cheaper: transform the distinct sources once
    (:math:`x_{S_r} W_r`), gather the messages per edge and scatter-add them scaled by 1/|N_r(i)|; or
    scatter-mean the raw features per distinct destination first and transform the means
    (:math:`\bar{x}_{D_r} W_r`). Both are exact; the cost is min(|S_r|, |D_r|)·d_in·d_out plus E_r·d.
    """

    def __init__(self, in_dim: int, out_dim: int, num_relations: int, num_bases: int | None = None) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.num_relations = in_dim, out_dim, num_relations
        self.num_bases = num_bases if num_bases and num_bases < num_relations else None
        if self.num_bases:
            self.bases = nn.Parameter(torch.empty(self.num_bases, in_dim, out_dim))
            self.coefficients = nn.Parameter(torch.empty(num_relations, self.num_bases))
        else:
            self.weight = nn.Parameter(torch.empty(num_relations, in_dim, out_dim))
        self.root = nn.Linear(in_dim, out_dim, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_dim)
        if self.num_bases:
            nn.init.uniform_(self.bases, -bound, bound)
            nn.init.uniform_(self.coefficients, -1.0 / math.sqrt(self.num_bases), 1.0 / math.sqrt(self.num_bases))
        else:
            nn.init.uniform_(self.weight, -bound, bound)
        self.root.reset_parameters()

    def relation_weights(self) -> torch.Tensor:
        """``[R, d_in, d_out]``; with bases, :math:`W_r = \\sum_b a_{rb} V_b`."""
        if self.num_bases:
            return torch.einsum("rb,bio->rio", self.coefficients, self.bases)
        return self.weight

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_type: torch.Tensor,
        plan: RelationPlan | None = None,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[N, d_out]``; with ``rows``, only those destination rows ``[len(rows), d_out]``, and the plan's
        destinations are then positions in ``rows`` (partitioned scoring, :mod:`gnnsec.gnn.distributed_embed`)."""
        if plan is None:
            plan = RelationPlan.build(edge_index, edge_type, x.shape[0])
        out = self.root(x if rows is None else x[rows])
        # unbind, not weights[r] per relation: each indexing op's backward writes a dense [R, d_in, d_out]
        # gradient, and 40 of them per layer were a tenth of a profiled mini-batch step (see _source_blocks).
        weights = self.relation_weights().unbind(0)
        summed: torch.Tensor | None = None
        for group, part, block in _source_blocks(x, plan.groups):
            w = weights[group.relation]
            if group.transform_sources_first:
                transformed = block @ w
                for start in range(0, group.dst.numel(), EDGE_CHUNK):  # bounds the E_r × d message buffer
                    chunk = slice(start, start + EDGE_CHUNK)
                    messages = transformed[group.src_inverse[chunk]] * group.norm[chunk].unsqueeze(1)
                    out.index_add_(0, group.dst[chunk], messages)
                continue
            if part.start == 0:
                summed = x.new_zeros(group.unique_dst.numel(), self.in_dim)
            assert summed is not None  # a group's slices arrive in order, the first one starts at 0
            summed.index_add_(0, group.dst_inverse[part], block)
            if part.stop >= group.src.numel():
                out.index_add_(0, group.unique_dst, (summed / group.dst_count.unsqueeze(1)) @ w)
        return out


def _source_blocks(
    x: torch.Tensor, groups: list[RelationGroup]
) -> Iterator[tuple[RelationGroup, slice, torch.Tensor]]:
    """``(group, part, rows of x)`` for every relation: its distinct sources when it transforms sources
    first (``part`` covers them all), else its edges' sources in slices of ``EDGE_CHUNK`` edges.

    The rows are gathered in blocks of up to ``EDGE_CHUNK`` rows, one ``index_select`` each, not one per
    relation: the backward of every gather is a dense ``[N, d_in]`` gradient that autograd zero-fills and
    adds up, so per-relation gathers cost 40 · N · d_in per layer whatever the relation's size. On sampled
    medium-estate subgraphs (9k nodes, 45k edges, 40 relations; 1 thread, alternate runs in one session,
    load average 3.3-3.7) this and the ``unbind`` above took a step from 1.81 / 1.53 s to 1.04 / 0.75 s,
    its backward from 1.04 / 0.91 s to 0.51 / 0.37 s, and a whole epoch (43 steps and validation) from
    34-37 to 24 CPU seconds, with the same losses to the fourth decimal. Sources-first blocks come
    before aggregate-first ones so that a block the matmul's backward keeps alive holds no per-edge rows.
    """
    pieces: list[tuple[RelationGroup, slice, torch.Tensor]] = []
    for group in sorted(groups, key=lambda g: not g.transform_sources_first):  # stable: relation order within
        if group.transform_sources_first:
            pieces.append((group, slice(0, group.unique_src.numel()), group.unique_src))
            continue
        for start in range(0, group.src.numel(), EDGE_CHUNK):
            part = slice(start, min(start + EDGE_CHUNK, group.src.numel()))
            pieces.append((group, part, group.src[part]))
    block: list[tuple[RelationGroup, slice, torch.Tensor]] = []
    size = 0
    for i, piece in enumerate(pieces):
        block.append(piece)
        size += piece[2].numel()
        following = pieces[i + 1] if i + 1 < len(pieces) else None
        if (
            following is None
            or size + following[2].numel() > EDGE_CHUNK
            or following[0].transform_sources_first != piece[0].transform_sources_first
        ):
            rows = x.index_select(0, torch.cat([index for _, _, index in block]))
            yield from (
                (group, part, part_rows)
                for (group, part, _), part_rows in zip(block, rows.split([p[2].numel() for p in block]), strict=True)
            )
            block, size = [], 0


class InputProjection(nn.Linear):
    """``Linear(MAX_FDIM → d)`` that skips the zero padding: features beyond the spec's real width are
    always 0, so ``x[:, :a] @ W[:, :a]ᵀ + b`` is exactly the full product at a fraction of the cost (the
    full product was most of an epoch's time on a 6k-node graph)."""

    def __init__(self, in_dim: int, out_dim: int, active_dim: int | None = None) -> None:
        super().__init__(in_dim, out_dim)
        self.active_dim = min(active_dim or in_dim, in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.active_dim
        return nn.functional.linear(x[:, :a], self.weight[:, :a], self.bias)


class Adapter(nn.Module):
    r"""Rank-r bottleneck adapter (Houlsby et al.), the only part trained by ``gnnsec train --adapt``.

    .. math:: h' = h + U\,\sigma(D h + c) + d

    with :math:`D \in R^{r×d}`, :math:`U \in R^{d×r}`. ``U`` and ``d`` start at zero, so a fresh adapter is
    the identity and fine-tuning starts from the pretrained model's behaviour.
    """

    def __init__(self, dim: int, rank: int = 16) -> None:
        super().__init__()
        self.down = nn.Linear(dim, rank)
        self.up = nn.Linear(rank, dim)
        self.activation = nn.GELU()
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(self.activation(self.down(h)))
