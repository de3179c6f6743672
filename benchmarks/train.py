"""Training cost per model on a generated estate: export rows/s, seconds per epoch, peak memory.

    python benchmarks/train.py [--size medium] [--epochs 3] [--models rgcn,gcn,gat,sage]

The estate is generated and ingested into Neo4j (``NEO4J_URI`` or a throw-away local server),
exported once through ``graphdb.export`` (timed: rows/s), then each model trains for
``--epochs`` epochs in its own process so its peak resident memory is its own.  Prints JSON.
Runs on CUDA when present (the JSON names the device), else on the CPU.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.estate_for_bench import ensure_estate
from benchmarks.neo4j_for_bench import neo4j_driver
from gnnsec.graphdb.export import export_snapshot


def _train_one(snapshot_path: str, kind: str, epochs: int, device: str, queue: Any) -> None:
    from gnnsec.gnn.model import ModelConfig, count_parameters
    from gnnsec.gnn.train import TrainConfig, fit
    from gnnsec.workflow import configure_cpu_threads

    threads = configure_cpu_threads()
    with open(snapshot_path, "rb") as handle:
        snapshot = pickle.load(handle)
    config = TrainConfig(model=ModelConfig(kind=kind), epochs=epochs, patience=epochs + 1, device=device)
    began = time.perf_counter()
    model, result, _ = fit(snapshot, config)
    total = time.perf_counter() - began
    seconds = [e.seconds for e in result.epochs]
    steady = seconds[1:] or seconds
    queue.put({
        "model": kind,
        "parameters": count_parameters(model),
        "epochs": len(seconds),
        "seconds_per_epoch": round(sum(steady) / len(steady), 3),
        "first_epoch_s": round(seconds[0], 3),
        "fit_total_s": round(total, 2),
        "val_edge_auc_last": round(result.epochs[-1].val_edge_auc, 4),
        "mode": result.mode,
        "device": result.device,
        "torch_threads": threads,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    })


def device_name(device: str) -> str:
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="medium", choices=["small", "medium"])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", default="rgcn,gcn,gat,sage")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gnnsec-bench")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="gnnsec-bench-") as tmp, neo4j_driver(Path(tmp)) as (driver, database):
        prepared = ensure_estate(driver, database, args.size, args.seed, args.cache)
        began = time.perf_counter()
        snapshot = export_snapshot(driver, database=database)
        export_s = time.perf_counter() - began
        rows = snapshot.num_nodes + snapshot.num_edges
        snapshot_path = Path(tmp) / "snapshot.pkl"
        with snapshot_path.open("wb") as handle:
            pickle.dump(snapshot, handle)
        results = []
        context = mp.get_context("spawn")
        for kind in args.models.split(","):
            queue = context.Queue()
            process = context.Process(target=_train_one, args=(str(snapshot_path), kind, args.epochs, args.device,
                                                               queue))
            process.start()
            results.append(queue.get())
            process.join()
    print(json.dumps({
        "benchmark": "train",
        "estate": {"size": args.size, "seed": args.seed, "nodes": snapshot.num_nodes, "edges": snapshot.num_edges,
                   **{k: round(v, 1) for k, v in prepared.items()}},
        "export": {"seconds": round(export_s, 2), "rows_per_s": round(rows / export_s)},
        "device": device_name(args.device),
        "cpu_count": os.cpu_count(),
        "models": results,
        "rgcn_vs_others_seconds_per_epoch": {
            r["model"]: round(r["seconds_per_epoch"] / results[0]["seconds_per_epoch"], 2) for r in results
        },
    }, indent=2))


if __name__ == "__main__":
    main()
