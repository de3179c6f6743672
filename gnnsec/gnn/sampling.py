"""Neighbour-sampled subgraphs for graphs too large for full-batch training.

PyG's ``NeighborLoader`` needs the compiled ``pyg-lib`` or ``torch-sparse`` extensions, which have no
wheels for every torch build; when neither is importable we fall back to :class:`NeighbourSampler`,
a vectorised uniform sampler in plain torch with the same output (seed nodes first, local edges).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(slots=True)
class SampledSubgraph:
    """Nodes ``n_id`` (global ids; the first ``num_seeds`` are the seeds) and edges in local ids.

    ``hop_sizes`` counts the nodes first reached at each hop (hop 0 = the seeds), in ``n_id`` order, so the
    nodes within k hops are the first ``sum(hop_sizes[:k + 1])``; every edge points into a node of a hop
    below the last. Empty when the sampler cannot say (PyG's loader on torch-sparse alone)."""

    n_id: torch.Tensor
    edge_index: torch.Tensor
    edge_type: torch.Tensor
    num_seeds: int
    hop_sizes: tuple[int, ...] = ()

    def within(self, hops: int) -> int:
        """How many nodes (a prefix of ``n_id``) lie within ``hops`` hops of the seeds."""
        if hops < 0:
            raise ValueError(f"hops cannot be negative, got {hops}")
        if not self.hop_sizes:
            raise ValueError("this subgraph does not record its hop sizes")
        return sum(self.hop_sizes[: hops + 1])


def pyg_sampler_available() -> bool:
    import torch_geometric.typing  # imported lazily: seconds of import time that full-batch runs never need

    return bool(torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE)


class NeighbourSampler:
    """Uniform k-hop in-neighbour sampling: messages flow source → target, so a node's inputs are the
    sources of its incoming edges. Per hop, nodes with at most ``fanout`` in-edges keep all of them;
    others draw ``fanout`` in-edges with replacement (duplicates removed)."""

    def __init__(self, edge_index: torch.Tensor, edge_type: torch.Tensor, num_nodes: int, fanouts: list[int]) -> None:
        order = torch.argsort(edge_index[1], stable=True)
        self.src = edge_index[0, order]
        self.dst = edge_index[1, order]
        self.edge_type = edge_type[order]
        self.rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
        self.rowptr[1:] = torch.cumsum(torch.bincount(self.dst, minlength=num_nodes), 0)
        self.num_nodes = num_nodes
        self.fanouts = fanouts

    def sample(self, seeds: torch.Tensor, generator: torch.Generator | None = None) -> SampledSubgraph:
        seeds = torch.unique(seeds)
        local = torch.full((self.num_nodes,), -1, dtype=torch.long)
        local[seeds] = torch.arange(seeds.numel())
        nodes = [seeds]
        count = seeds.numel()
        frontier = seeds
        picked: list[torch.Tensor] = []
        for fanout in self.fanouts:
            if frontier.numel() == 0:
                break
            start, degree = self.rowptr[frontier], self.rowptr[frontier + 1] - self.rowptr[frontier]
            small = degree <= fanout
            s_start, s_deg = start[small], degree[small]
            offsets = torch.arange(int(s_deg.sum())) - torch.repeat_interleave(torch.cumsum(s_deg, 0) - s_deg, s_deg)
            take_all = torch.repeat_interleave(s_start, s_deg) + offsets
            b_start, b_deg = start[~small], degree[~small]
            draws = torch.rand(b_start.numel(), fanout, generator=generator)
            take_some = (b_start.unsqueeze(1) + (draws * b_deg.unsqueeze(1)).long()).flatten().unique()
            edges = torch.cat([take_all, take_some])
            picked.append(edges)
            sources = self.src[edges]
            new = torch.unique(sources[local[sources] < 0])
            local[new] = torch.arange(count, count + new.numel())
            count += new.numel()
            nodes.append(new)
            frontier = new
        edges = torch.unique(torch.cat(picked)) if picked else torch.zeros(0, dtype=torch.long)
        edge_index = torch.stack([local[self.src[edges]], local[self.dst[edges]]])
        return SampledSubgraph(torch.cat(nodes), edge_index, self.edge_type[edges], int(seeds.numel()),
                               tuple(int(part.numel()) for part in nodes))


def iterate_subgraphs(
    edge_index: torch.Tensor,
    edge_type: torch.Tensor,
    num_nodes: int,
    seeds: torch.Tensor,
    fanouts: list[int],
    batch_size: int,
    generator: torch.Generator,
    use_pyg: bool | None = None,
    sampler: NeighbourSampler | None = None,
) -> Iterator[SampledSubgraph]:
    """Shuffled batches of ``seeds`` with their sampled neighbourhoods.

    Uses PyG ``NeighborLoader`` (on a ``Data`` carrying ``edge_type``) when its sampler backend is
    installed, else :class:`NeighbourSampler`. ``use_pyg`` forces one or the other. ``generator`` draws the
    batch order on both paths, so which seeds share a batch follows the run's seed; on the PyG path the
    neighbour draws are the compiled sampler's own, not ``generator``'s. ``sampler``, a
    :class:`NeighbourSampler` already built over these edges and fanouts, saves re-indexing them on each call.
    """
    if use_pyg is None:
        use_pyg = pyg_sampler_available()
    if use_pyg:
        from torch_geometric.data import Data
        from torch_geometric.loader import NeighborLoader

        data = Data(edge_index=edge_index, edge_type=edge_type, num_nodes=num_nodes)
        data.n_id = torch.arange(num_nodes)
        loader = NeighborLoader(
            data, num_neighbors=list(fanouts), input_nodes=seeds, batch_size=batch_size, shuffle=True,
            generator=generator,  # to torch's DataLoader: the shuffle follows the seed
        )
        for batch in loader:
            hop_sizes = getattr(batch, "num_sampled_nodes", None)  # None from torch-sparse and old pyg-lib
            yield SampledSubgraph(batch.n_id, batch.edge_index, batch.edge_type, int(batch.batch_size),
                                  tuple(int(size) for size in hop_sizes) if hop_sizes is not None else ())
        return
    if sampler is None:
        sampler = NeighbourSampler(edge_index, edge_type, num_nodes, list(fanouts))
    order = seeds[torch.randperm(seeds.numel(), generator=generator)]
    for chunk in order.split(batch_size):
        yield sampler.sample(chunk, generator)
