"""Training cost per model on a generated estate: export rows/s, seconds per epoch, peak memory.

    python benchmarks/train.py [--size medium] [--epochs 3] [--models rgcn,gcn,gat,sage]
                               [--loss-hops 1,all] [--keep-snapshot PATH | --snapshot PATH]

The estate is generated and ingested into Neo4j (``NEO4J_URI`` or a throw-away local server),
exported once through ``graphdb.export`` (timed: rows/s), then each model trains for
``--epochs`` epochs in its own process so its peak resident memory is its own.  Prints JSON.
Runs on CUDA when present (the JSON names the device), else on the CPU.

``seconds_per_epoch`` is the mean over the epochs after the first (which pays for warm-up), each epoch's
training steps plus its validation; ``phase_seconds_per_epoch`` splits the training part into sampling,
batch preparation, forward, backward and optimiser (``gnnsec.gnn.train.PHASES``) and ``validation_s``
is the rest. Torch gets every core, as ``gnnsec train`` gives it once its export is done; ``GNNSEC_THREADS=1``
measures one. ``cpu_seconds_per_epoch`` is the process's CPU time over the same epochs: with one torch thread
it is what an epoch takes on an idle core, whatever else shares the machine. ``load_average`` is
``/proc/loadavg`` before and after: on a shared machine compare variants run alternately in one session,
not against old figures. ``--keep-snapshot`` pickles the export,
``--snapshot`` trains on such a pickle without Neo4j (no export figures then).

``--loss-hops`` trains each model once per value of ``TrainConfig.loss_hops`` (``all``: any node of a sampled
subgraph, the code before trimming), in the order given; ``loss_hops_ratio`` divides each run's seconds per
epoch by the first value's. The validation batch is the same for every value, so ``val_loss_last`` compares.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.estate_for_bench import ensure_estate
from benchmarks.neo4j_for_bench import neo4j_driver
from gnnsec.graphdb.export import export_snapshot


def _train_one(snapshot_path: str, kind: str, loss_hops: int | None, epochs: int, device: str, queue: Any) -> None:
    from gnnsec.gnn.model import ModelConfig, count_parameters
    from gnnsec.gnn.train import PHASES, TrainConfig, fit
    from gnnsec.workflow import configure_cpu_threads

    threads = configure_cpu_threads(database_idle=True)  # as `gnnsec train` does once its export is done
    with open(snapshot_path, "rb") as handle:
        snapshot = pickle.load(handle)
    config = TrainConfig(model=ModelConfig(kind=kind), epochs=epochs, patience=epochs + 1, device=device,
                         loss_hops=loss_hops)
    cpu_after_epoch: list[float] = []  # process CPU time: what the epoch cost whatever else shares the machine
    began = time.perf_counter()
    model, result, _ = fit(snapshot, config, lambda stats, total: cpu_after_epoch.append(time.process_time()))
    total = time.perf_counter() - began
    seconds = [e.seconds for e in result.epochs]
    steady_epochs = result.epochs[1:] or result.epochs
    steady = [e.seconds for e in steady_epochs]
    phases = {p: sum(e.phase_seconds.get(p, 0.0) for e in steady_epochs) / len(steady_epochs) for p in PHASES}
    steps = sum(e.steps for e in steady_epochs) / len(steady_epochs)
    queue.put({
        "model": kind,
        "loss_hops": "all" if loss_hops is None else loss_hops,
        "parameters": count_parameters(model),
        "epochs": len(seconds),
        "seconds_per_epoch": round(sum(steady) / len(steady), 3),
        "first_epoch_s": round(seconds[0], 3),
        "cpu_seconds_per_epoch": round((cpu_after_epoch[-1] - cpu_after_epoch[0]) / (len(cpu_after_epoch) - 1), 3)
        if len(cpu_after_epoch) > 1 else None,
        "steps_per_epoch": round(steps, 1),
        "seconds_per_step": round(sum(phases.values()) / steps, 3) if steps else None,
        "phase_seconds_per_epoch": {p: round(v, 3) for p, v in phases.items()},
        "validation_s": round(sum(steady) / len(steady) - sum(phases.values()), 3),
        "batch_size": config.batch_size,
        "fanouts": list(config.fanouts),
        "fit_total_s": round(total, 2),
        "val_loss_last": round(result.epochs[-1].val_loss, 4),
        "val_edge_auc_last": round(result.epochs[-1].val_edge_auc, 4),
        "mode": result.mode,
        "device": result.device,
        "torch_threads": threads,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    })


def _load_average() -> str | None:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return None


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
    parser.add_argument("--loss-hops", default="1", type=_loss_hops,
                        help="comma-separated TrainConfig.loss_hops values to compare, 'all' for none (default 1)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gnnsec-bench")
    parser.add_argument("--snapshot", type=Path, help="train on this pickled snapshot; no Neo4j, no export")
    parser.add_argument("--keep-snapshot", type=Path, help="also pickle the exported snapshot here")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    load_before = _load_average()

    export: dict[str, Any] = {}
    prepared: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gnnsec-bench-") as tmp:
        if args.snapshot:
            snapshot_path = args.snapshot
            with snapshot_path.open("rb") as handle:
                snapshot = pickle.load(handle)
        else:
            snapshot_path = Path(tmp) / "snapshot.pkl"
            with neo4j_driver(Path(tmp)) as (driver, database):
                prepared = ensure_estate(driver, database, args.size, args.seed, args.cache)
                began = time.perf_counter()
                snapshot = export_snapshot(driver, database=database)
                export_s = time.perf_counter() - began
            rows = snapshot.num_nodes + snapshot.num_edges
            export = {"seconds": round(export_s, 2), "rows_per_s": round(rows / export_s)}
            with snapshot_path.open("wb") as handle:
                pickle.dump(snapshot, handle)
            if args.keep_snapshot:
                shutil.copyfile(snapshot_path, args.keep_snapshot)
        results = []
        context = mp.get_context("spawn")
        for kind in args.models.split(","):
            for loss_hops in args.loss_hops:
                queue = context.Queue()
                process = context.Process(target=_train_one, args=(str(snapshot_path), kind, loss_hops, args.epochs,
                                                                   args.device, queue))
                process.start()
                results.append(queue.get())
                process.join()
    print(json.dumps({
        "benchmark": "train",
        "estate": {"size": args.size, "seed": args.seed, "nodes": snapshot.num_nodes, "edges": snapshot.num_edges,
                   "snapshot": str(args.snapshot) if args.snapshot else None,
                   **{k: round(v, 1) for k, v in prepared.items()}},
        "export": export,
        "device": device_name(args.device),
        "cpu_count": os.cpu_count(),
        "load_average": {"before": load_before, "after": _load_average()},
        "models": results,
        "rgcn_vs_others_seconds_per_epoch": {
            r["model"]: round(r["seconds_per_epoch"] / results[0]["seconds_per_epoch"], 2)
            for r in results if r["loss_hops"] == results[0]["loss_hops"]
        },
        "loss_hops_ratio": _loss_hops_ratios(results),
    }, indent=2))


def _loss_hops(text: str) -> list[int | None]:
    try:
        values = [None if part.strip() == "all" else int(part) for part in text.split(",")]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--loss-hops wants integers from 0 or 'all', got {text!r}") from error
    if any(value is not None and value < 0 for value in values):
        raise argparse.ArgumentTypeError(f"--loss-hops wants integers from 0 or 'all', got {text!r}")
    return values


def _loss_hops_ratios(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per model, each loss_hops value's seconds per epoch over the first value's (same run)."""
    ratios: dict[str, dict[str, float]] = {}
    for record in results:
        first = next(r for r in results if r["model"] == record["model"])
        ratios.setdefault(record["model"], {})[str(record["loss_hops"])] = round(
            record["seconds_per_epoch"] / first["seconds_per_epoch"], 3)
    return ratios


if __name__ == "__main__":
    main()
