"""Relational message passing and the PEFT adapter.

:class:`RelationalConv` is our own rather than PyG's ``RGCNConv`` on purpose: ``RGCNConv`` multiplies
the whole node matrix by every relation's weight (R·N·d_in·d_out), while only the nodes that take part
in a relation need it; ``FastRGCNConv`` materialises E·d_in·d_out. ``benchmarks/layers.py`` measures
the difference on the same graph in the same run.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import torch
from torch import nn

ROW_CHUNK = 1 << 18
"""Rows per block of stacked relation inputs or outputs: at d = 256 a block's gathered rows and their
products are 256 MiB each at most. Blocks of 2^20 rows put 2 GiB of them on a million-node encode's peak;
since the sums go into the output in place (:func:`sparse_accumulate`), more blocks cost no [N, d] pass each."""


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


class SparseOperator:
    """A constant sparse matrix ``A`` (CSR) for :func:`sparse_product`, with ``Aᵀ`` built on first use
    (inference never needs it)."""

    def __init__(self, rows: torch.Tensor, columns: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> None:
        self.matrix = _csr(rows, columns, values, shape)
        self._transposed: torch.Tensor | None = None

    def transposed(self) -> torch.Tensor:
        if self._transposed is None:
            coo = self.matrix.to_sparse_coo()
            rows, columns = coo.indices()
            self._transposed = _csr(columns, rows, coo.values(), (self.matrix.shape[1], self.matrix.shape[0]))
        return self._transposed


def _csr(rows: torch.Tensor, columns: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        coo = torch.sparse_coo_tensor(torch.stack([rows, columns]), values, shape, check_invariants=False)
        return coo.coalesce().to_sparse_csr()  # coalesce sums repeated edges, as a scatter-add would


def _spmm(matrix: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``matrix @ dense`` written by ``addmm_`` into an uninitialised output (``beta=0`` ignores it): 0.75 s
    against 1.4 s for ``@`` at 1M × 250k with 1M entries, d = 256, one thread, identical bits."""
    return dense.new_empty((matrix.shape[0], dense.shape[1])).addmm_(matrix, dense, beta=0)


class _SparseProduct(torch.autograd.Function):
    """``A @ X`` with ``∂/∂X = Aᵀ @ G``; ``A`` is a constant of the graph."""

    @staticmethod
    def forward(ctx: Any, operator: SparseOperator, dense: torch.Tensor) -> torch.Tensor:
        ctx.operator = operator
        with torch.autocast(dense.device.type, enabled=False):  # no bfloat16 sparse kernels on the CPU
            return _spmm(operator.matrix, dense)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        with torch.autocast(grad.device.type, enabled=False):
            return None, _spmm(ctx.operator.transposed(), grad.to(ctx.operator.matrix.dtype))


class _SparseAccumulate(torch.autograd.Function):
    """``out += A @ X`` in place, with ``∂/∂out = G`` and ``∂/∂X = Aᵀ @ G``.

    One ``addmm_`` into the layer's output instead of a fresh [N, d] product and an ``add_``: at 1M
    destinations, d = 256, 0.4-0.5 s against 1.7-2.3 s per block, identical bits, and no 1 GiB temporary."""

    @staticmethod
    def forward(ctx: Any, operator: SparseOperator, out: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        ctx.operator = operator
        ctx.mark_dirty(out)
        with torch.autocast(dense.device.type, enabled=False):
            return out.addmm_(operator.matrix, dense)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor, torch.Tensor]:
        with torch.autocast(grad.device.type, enabled=False):
            return None, grad, _spmm(ctx.operator.transposed(), grad.to(ctx.operator.matrix.dtype))


def sparse_product(operator: SparseOperator, dense: torch.Tensor) -> torch.Tensor:
    """``A @ dense`` (CSR × dense, differentiable in ``dense``), in ``A``'s precision: under bfloat16 autocast
    the matrix products run in bfloat16 and the sums over edges in float32."""
    values = operator.matrix.values().dtype
    out: torch.Tensor = _SparseProduct.apply(operator, dense if dense.dtype == values else dense.to(values))
    return out


def sparse_accumulate(operator: SparseOperator, out: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``out += A @ dense`` in place (differentiable in both); ``out`` in another precision than ``A``
    (bfloat16 autocast) takes a separate product and an ``add_``."""
    values = operator.matrix.values().dtype
    if out.dtype != values:
        return out.add_(sparse_product(operator, dense))
    result: torch.Tensor = _SparseAccumulate.apply(operator, out, dense if dense.dtype == values else dense.to(values))
    return result


def stacked_products(parts: Sequence[torch.Tensor], weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """``cat([p @ w for p, w in zip(parts, weights)])``. Without autograd or autocast each product is written
    straight into its rows: the list and the copy were a second block-sized temporary (1 GiB at 1M nodes)."""
    if not parts or torch.is_grad_enabled() or torch.is_autocast_enabled(parts[0].device.type):
        return torch.cat([part @ weight for part, weight in zip(parts, weights, strict=True)])
    out = parts[0].new_empty((sum(part.shape[0] for part in parts), weights[0].shape[1]))
    start = 0
    for part, weight in zip(parts, weights, strict=True):
        torch.mm(part, weight, out=out[start : start + part.shape[0]])
        start += part.shape[0]
    return out


@dataclass(slots=True)
class RelationBlock:
    """Consecutive relations evaluated in the same order, with their gathers and scatters as one sparse matrix.

    Sources first: ``index`` stacks each relation's distinct sources (``sizes`` rows each); their transformed
    rows are summed into the destinations by ``operator`` = [destination rows × stacked rows], entries 1/|N_r(i)|.
    Aggregate first: ``operator`` = [stacked (relation, destination) rows × source rows], entries 1/|N_r(i)|,
    gives each relation's neighbour means, and ``index`` names the destination row of each stacked row.
    """

    groups: list[RelationGroup]
    sources_first: bool
    index: torch.Tensor
    sizes: list[int]
    operator: SparseOperator


@dataclass(slots=True)
class RelationPlan:
    """Edges grouped by relation; built once per graph and shared by every layer and epoch.

    ``num_nodes`` is the number of destination rows (the whole graph, or one shard's rows)."""

    num_nodes: int
    groups: list[RelationGroup]
    _blocks: dict[int, list[RelationBlock]] = field(default_factory=dict, repr=False)

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

    def blocks(self, num_sources: int) -> list[RelationBlock]:
        """The relations in blocks of at most ``ROW_CHUNK`` stacked rows (a relation larger than that is a
        block of its own), sources-first ones first; built on first use and cached per source count."""
        if num_sources not in self._blocks:
            self._blocks[num_sources] = list(self._build_blocks(num_sources))
        return self._blocks[num_sources]

    def _build_blocks(self, num_sources: int) -> Any:
        ordered = sorted(self.groups, key=lambda g: not g.transform_sources_first)  # stable: relation order within
        chunk: list[RelationGroup] = []
        for i, group in enumerate(ordered):
            chunk.append(group)
            following = ordered[i + 1] if i + 1 < len(ordered) else None
            if (
                following is None
                or following.transform_sources_first != group.transform_sources_first
                or sum(_stacked_rows(g) for g in chunk) + _stacked_rows(following) > ROW_CHUNK
            ):
                yield self._block(chunk, num_sources)
                chunk = []

    def _block(self, groups: list[RelationGroup], num_sources: int) -> RelationBlock:
        sizes = [_stacked_rows(g) for g in groups]
        offsets = [sum(sizes[:i]) for i in range(len(groups))]
        norm = torch.cat([g.norm for g in groups])
        if groups[0].transform_sources_first:
            rows = torch.cat([g.dst for g in groups])
            columns = torch.cat([g.src_inverse + offset for g, offset in zip(groups, offsets, strict=True)])
            operator = SparseOperator(rows, columns, norm, (self.num_nodes, sum(sizes)))
            return RelationBlock(groups, True, torch.cat([g.unique_src for g in groups]), sizes, operator)
        rows = torch.cat([g.dst_inverse + offset for g, offset in zip(groups, offsets, strict=True)])
        columns = torch.cat([g.src for g in groups])
        operator = SparseOperator(rows, columns, norm, (sum(sizes), num_sources))
        return RelationBlock(groups, False, torch.cat([g.unique_dst for g in groups]), sizes, operator)


@dataclass(slots=True)
class TrimmedPlans:
    """What each layer of a trimmed pass computes (PyG's ``trim_to_layer``): layer l writes only the first
    ``rows[l]`` rows, from the edges into them (``plans[l]``).

    On a neighbour-sampled subgraph, nodes are in hop order, no edge points into the last hop, and an edge's
    source is at most one hop further out than its destination. If the loss reads rows within k hops, layer
    l of L needs only the rows within k + L - 1 - l hops. On the medium estate's 1,024-seed batches (hops of
    1,024 / 1,327 / 4,866 / 2,142 nodes, 46k edges) and k = 1, the last layer writes 2,351 rows instead of
    9,359 and reads 14k edges instead of 46k; the second one would write 7,217 rows, but takes in the same
    edges as the first and so shares its plan and its 9,359 rows (:meth:`build`). The rows computed are the
    untrimmed pass's rows."""

    rows: tuple[int, ...]
    plans: tuple[RelationPlan, ...]

    @classmethod
    def build(cls, edge_index: torch.Tensor, edge_type: torch.Tensor, rows: Sequence[int]) -> TrimmedPlans:
        """Plans over the edges into each layer's rows (``rows`` must not grow from layer to layer).

        A layer whose rows take in the same edges as the layer before it writes that layer's rows and shares
        its plan: the last hop's nodes have no in-edges, so with ``loss_hops`` = 1 the first two layers'
        plans were the same edges twice (a plan is about 15 ms a batch), against a few thousand extra rows of
        row-wise work."""
        if any(later > earlier for earlier, later in pairwise(rows)):
            raise ValueError(f"a trimmed pass's rows must not grow from layer to layer: {tuple(rows)}")
        counts: list[int] = []
        plans: list[RelationPlan] = []
        kept_before = -1
        for count in rows:
            keep = edge_index[1] < count
            kept = int(keep.sum())
            if kept == kept_before:
                counts.append(counts[-1])
                plans.append(plans[-1])
                continue
            counts.append(count)
            plans.append(RelationPlan.build(edge_index[:, keep], edge_type[keep], count))
            kept_before = kept
        return cls(tuple(counts), tuple(plans))


def _stacked_rows(group: RelationGroup) -> int:
    """Rows a relation adds to its block: its distinct sources, or its distinct destinations."""
    return int(group.unique_src.numel() if group.transform_sources_first else group.unique_dst.numel())


class RelationalConv(nn.Module):
    r"""Relational graph convolution (Schlichtkrull et al.), evaluated per relation.

    .. math::
        h_i' = W_0 h_i + b + \sum_{r} \frac{1}{|N_r(i)|} \sum_{j \in N_r(i)} W_r h_j

    With ``num_bases = B`` the relation weights share a basis, :math:`W_r = \sum_b a_{rb} V_b`, so the
    parameter count is B·d_in·d_out + R·B instead of R·d_in·d_out.

    Evaluation per relation r, whichever is cheaper: transform the distinct sources once
    (:math:`x_{S_r} W_r`) and sum them into the destinations scaled by 1/|N_r(i)|; or average the raw
    features per distinct destination first and transform the means (:math:`\bar{x}_{D_r} W_r`). Both are
    exact; the cost is min(|S_r|, |D_r|)·d_in·d_out plus E_r·d.

    The sums over edges are sparse × dense products (:class:`RelationBlock`), never per-edge message
    rows: gathering E × d messages and scatter-adding them was 73 % of a medium-estate encode (54k nodes,
    972k message edges, 1 thread; index_select, index, mul and scatter_add in a profile).
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
        rows: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """``[N, d_out]``; with ``rows``, only those destination rows ``[len(rows), d_out]``, and the plan's
        destinations are then positions in ``rows`` (partitioned scoring, :mod:`gnnsec.gnn.distributed_embed`);
        an int ``rows`` is the first that many rows (a trimmed pass, :class:`TrimmedPlans`)."""
        if plan is None:
            if isinstance(rows, int):  # only the edges into those rows
                plan = TrimmedPlans.build(edge_index, edge_type, (rows,)).plans[0]
            else:
                plan = RelationPlan.build(edge_index, edge_type, x.shape[0] if rows is None else rows.numel())
        out = self.root(select_rows(x, rows))
        # unbind, not weights[r] per relation: each indexing op's backward writes a dense [R, d_in, d_out]
        # gradient, and 40 of them per layer were a tenth of a profiled mini-batch step. For the same reason
        # a block reads x in one gather (or one sparse product), not one per relation.
        weights = self.relation_weights().unbind(0)
        for block in plan.blocks(x.shape[0]):
            if block.sources_first:
                parts = x.index_select(0, block.index).split(block.sizes)
            else:
                parts = sparse_product(block.operator, x).split(block.sizes)
            transformed = stacked_products(parts, [weights[g.relation] for g in block.groups])
            if block.sources_first:
                out = sparse_accumulate(block.operator, out, transformed)
            else:
                out.index_add_(0, block.index, transformed.to(out.dtype))
        return out


def select_rows(x: torch.Tensor, rows: torch.Tensor | int | None) -> torch.Tensor:
    """``x``, its first ``rows`` rows (a view), or the rows indexed by ``rows``."""
    if rows is None:
        return x
    if isinstance(rows, int):
        return x[:rows]
    return x[rows]


class InputProjection(nn.Linear):
    """``Linear(MAX_FDIM → d)`` that skips the zero padding: features beyond the spec's real width are
    always 0, so ``x[:, :a] @ W[:, :a]ᵀ + b`` is exactly the full product at a fraction of the cost (the
    full product was most of an epoch's time on a 6k-node graph). ``x`` may be padded or hold only the
    ``a`` real columns, as :func:`gnnsec.gnn.features.build_features` returns it."""

    def __init__(self, in_dim: int, out_dim: int, active_dim: int | None = None) -> None:
        super().__init__(in_dim, out_dim)
        self.active_dim = min(active_dim or in_dim, in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.active_dim
        return nn.functional.linear(x[:, :a], self.weight[:, :a], self.bias)


class FastDropout(nn.Module):
    r"""``nn.Dropout(p)`` whose keep mask comes from 16 random bits an element: each element is zeroed with
    probability :math:`k/65536,\ k = \mathrm{round}(65536\,p)` and the rest are scaled by :math:`65536/(65536-k)`,
    so the expectation is unchanged.

    torch's CPU dropout draws one Bernoulli an element (``bernoulli_``): 23-30 ms for a [9.3k, 256] mini-batch
    activation, 11 % of a medium-estate epoch with 2 threads in a profile. Here a 63-bit ``random_`` word gives
    three uniform 16-bit lanes (its top lane has a zero sign bit and is not used). On other devices, torch's own.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.dropped = round(p * 65536)
        self.threshold = self.dropped - 32768  # a lane is uniform on [-32768, 32767]: keep it when >= threshold
        self.scale = 65536 / (65536 - self.dropped)
        self.lanes = slice(0, 3) if sys.byteorder == "little" else slice(1, 4)  # the three low 16-bit lanes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.dropped == 0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, training=True)
        n = x.numel()
        words = torch.empty((n + 2) // 3, dtype=torch.int64).random_()  # [0, 2^63): bits 0-62 uniform
        bits = words.view(torch.int16).view(-1, 4)[:, self.lanes].reshape(-1)[:n].view(x.shape)
        return x * (bits >= self.threshold).to(x.dtype).mul_(self.scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"


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
