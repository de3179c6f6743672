"""Forward time of our RelationalConv vs PyG RGCNConv (and FastRGCNConv on a tiny graph), same graph, same run.

Usage: ``python -m benchmarks.layers [--nodes 50000 --edges 250000 --relations 40 --dim 256 --repeats 3 --threads 1]``.
Prints one JSON object: seconds per forward (best of ``repeats``, no grad, after a warm-up), edges/s,
and the RGCNConv/RelationalConv ratio. FastRGCNConv materialises an E·d_in·d_out weight tensor, so it
only runs on a tiny graph (``--fast-edges``) to show the per-edge cost.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import torch
from torch_geometric.nn import FastRGCNConv, RGCNConv

from gnnsec.gnn.layers import RelationalConv, RelationPlan


def _best_of(fn: Callable[[], torch.Tensor], repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _graph(nodes: int, edges: int, relations: int, dim: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(nodes, dim, generator=g)
    edge_index = torch.randint(0, nodes, (2, edges), generator=g)
    edge_type = torch.randint(0, relations, (edges,), generator=g)
    order = torch.argsort(edge_type)  # RGCNConv(is_sorted=True) wants edges sorted by type
    return x, edge_index[:, order], edge_type[order]


def run(nodes: int, edges: int, relations: int, dim: int, repeats: int, fast_edges: int, seed: int) -> dict:
    torch.manual_seed(seed)
    x, ei, et = _graph(nodes, edges, relations, dim, seed)
    ours = RelationalConv(dim, dim, relations)
    pyg = RGCNConv(dim, dim, relations, aggr="mean", is_sorted=True)
    with torch.no_grad():  # identical weights, so the outputs can be compared too
        pyg.weight.copy_(ours.weight)
        pyg.root.copy_(ours.root.weight.T)
        pyg.bias.copy_(ours.root.bias)
    result: dict = {
        "graph": {"nodes": nodes, "edges": edges, "relations": relations, "in_dim": dim, "out_dim": dim},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "device": "cpu",
    }
    with torch.no_grad():
        start = time.perf_counter()
        plan = RelationPlan.build(ei, et, nodes)
        plan_s = time.perf_counter() - start
        ours_s = _best_of(lambda: ours(x, ei, et, plan), repeats)
        pyg_s = _best_of(lambda: pyg(x, ei, et), repeats)
        max_diff = float((ours(x, ei, et, plan) - pyg(x, ei, et)).abs().max())
    result["relational_conv"] = {"seconds": ours_s, "plan_seconds": plan_s, "edges_per_s": edges / ours_s}
    result["rgcn_conv"] = {"seconds": pyg_s, "edges_per_s": edges / pyg_s}
    result["ratio_rgcn_over_ours"] = pyg_s / ours_s
    result["max_abs_difference"] = max_diff

    tiny_nodes = max(fast_edges // 5, 10)
    tx, tei, tet = _graph(tiny_nodes, fast_edges, relations, dim, seed + 1)
    fast = FastRGCNConv(dim, dim, relations, aggr="mean")
    tiny_ours = RelationalConv(dim, dim, relations)
    with torch.no_grad():
        fast_s = _best_of(lambda: fast(tx, tei, tet), repeats)
        tiny_s = _best_of(lambda: tiny_ours(tx, tei, tet), repeats)
    result["tiny_graph"] = {
        "nodes": tiny_nodes,
        "edges": fast_edges,
        "fast_rgcn_conv": {"seconds": fast_s, "edges_per_s": fast_edges / fast_s,
                           "per_edge_weight_bytes": dim * dim * 4},
        "relational_conv": {"seconds": tiny_s, "edges_per_s": fast_edges / tiny_s},
        "ratio_fast_over_ours": fast_s / tiny_s,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50_000)
    parser.add_argument("--edges", type=int, default=250_000)
    parser.add_argument("--relations", type=int, default=40)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fast-edges", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(run(args.nodes, args.edges, args.relations, args.dim, args.repeats, args.fast_edges, args.seed),
                     indent=2))


if __name__ == "__main__":
    main()
