"""Partitioned GNN encoding (``gnnsec score --with-gnn --nproc N``) against one process, on the same snapshot.

    python benchmarks/score_partitioned.py [--size small|medium] [--nproc 2] [--estate DIR] [--model CKPT]

Reads a generated estate into a snapshot (no database: ``benchmarks/score.py`` times export and write-back),
then times :func:`gnnsec.gnn.embed.embed` (one process, all torch threads) and
:func:`gnnsec.gnn.distributed_embed.embed_partitioned` (N ranks sharing those threads) in the same run, and checks
that both give the same z, reconstruction errors and edge logits. Without ``--model`` the model is an untrained
default RGCN (hidden 256, 3 layers): the weights do not change the cost. Prints JSON: seconds and nodes/s of both,
each rank's own seconds (from joining the process group to its results) and the ratio, with and without the
start of the processes. One process gets ``--threads`` (default every core), each of N ranks 1/N of them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from benchmarks.train import device_name
from gnnsec.evaluate.data import load_snapshot_cached
from gnnsec.gnn.checkpoint import load_checkpoint
from gnnsec.gnn.distributed_embed import embed_shards
from gnnsec.gnn.embed import embed
from gnnsec.gnn.features import fit_feature_spec
from gnnsec.gnn.model import GraphAutoencoder, ModelConfig
from gnnsec.synth import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", choices=["small", "medium"])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--model", type=Path, default=None, help="A checkpoint (default: an untrained RGCN).")
    parser.add_argument("--estate", type=Path, default=None, help="An existing estate directory (skips generating).")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="Torch threads of the one process, shared out among the ranks (default: every core).")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gnnsec-bench-history")
    args = parser.parse_args()
    torch.set_num_threads(max(1, args.threads))
    threads = torch.get_num_threads()
    estate = args.estate or args.cache / f"estate-{args.size}-{args.seed}-None"  # shared with benchmarks/history.py
    if not (estate / "labels" / "entities.csv").exists():
        generate(estate, seed=args.seed, size=args.size)
    snapshot = load_snapshot_cached(estate, args.cache / "snapshots")
    if args.model is not None:
        checkpoint = load_checkpoint(args.model, device="cpu")
        model, spec = checkpoint.model, checkpoint.spec
    else:
        spec = fit_feature_spec(snapshot)
        torch.manual_seed(args.seed)
        model = GraphAutoencoder(ModelConfig(active_dim=spec.width)).eval()

    began = time.perf_counter()
    one = embed(model, snapshot, spec, device=args.device)
    one_s = time.perf_counter() - began
    began = time.perf_counter()
    split, records = embed_shards(model, snapshot, spec, args.nproc, device=args.device)
    split_s = time.perf_counter() - began
    ranks_s = max(r.seconds for r in records)
    n = snapshot.num_nodes
    print(json.dumps({
        "benchmark": "score_partitioned",
        "estate": str(estate) if args.estate else {"size": args.size, "seed": args.seed},
        "nodes": n, "relationships": snapshot.num_edges,
        "model": str(args.model) if args.model else "untrained rgcn, hidden 256, 3 layers, 4 masked passes",
        "device": device_name(args.device), "torch_threads": threads, "cpu_count": os.cpu_count(),
        "one_process": {"seconds": round(one_s, 2), "nodes_per_s": round(n / one_s)},
        "partitioned": {
            "nproc": args.nproc, "seconds": round(split_s, 2), "nodes_per_s": round(n / split_s),
            "rank_seconds": [round(r.seconds, 2) for r in records],
            "rank_nodes": [int(r.nodes.size) for r in records],
            "rank_message_edges": [r.message_edges for r in records],
            "start_and_transfer_s": round(split_s - ranks_s, 2),
        },
        "ratio_one_over_partitioned": round(one_s / split_s, 3),
        "ratio_one_over_slowest_rank": round(one_s / ranks_s, 3),
        "z_max_abs": float(np.abs(one.z).max(initial=0.0)),
        "max_abs_diff": {name: float(np.abs(getattr(one, name) - getattr(split, name)).max(initial=0.0))
                         for name in ("z", "recon_error", "edge_logit")},
    }, indent=2))


if __name__ == "__main__":
    main()
