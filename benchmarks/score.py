"""Scoring cost on a generated estate: export, encode + detect, and write-back, with peak memory.

    python benchmarks/score.py [--size medium|large] [--train-epochs 5] [--path graph|day [--with-gnn]]

Trains a quick RGCN on the estate (not timed: ``benchmarks/train.py`` measures training), then
times ``gnnsec score``'s phases separately on the same graph, and write-back rows/s (nodes by uid,
relationships by the element ids the export read, as ``gnnsec score`` writes them). ``--size large`` is
about 1M nodes and 5M relationships, the medium estate tiled inside Neo4j (``benchmarks/large_estate.py``);
its model is trained on the medium estate before tiling (cached in ``--cache``), since training is not
what this measures. Threads as in ``gnnsec score``: every core while the database is idle (encode and
detect), all but one around export and write-back.
Prints JSON; runs on CUDA when present (named in the JSON), else the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.estate_for_bench import ensure_estate
from benchmarks.neo4j_for_bench import neo4j_driver
from benchmarks.train import device_name
from gnnsec.gnn.checkpoint import load_checkpoint, save_checkpoint
from gnnsec.gnn.detect import edge_anomaly
from gnnsec.gnn.embed import embed
from gnnsec.gnn.model import ModelConfig
from gnnsec.gnn.pipeline import train_checkpoint
from gnnsec.gnn.train import TrainConfig
from gnnsec.graphdb.export import export_snapshot
from gnnsec.graphdb.writeback import (
    ScoringRun,
    clear_scores,
    write_edge_scores,
    write_node_scores,
)
from gnnsec.workflow import activity_days, configure_cpu_threads, score_rows, score_windows


def peak_rss_mb(reset: bool = True) -> float | None:
    """This process's peak RSS since the last reset (``VmHWM``), then reset it, so each phase reports its
    own high-water mark (Linux: writing 5 to ``/proc/self/clear_refs``). ``None`` elsewhere."""
    try:
        with open("/proc/self/status") as status:
            kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
        if reset:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
    except (OSError, StopIteration):
        return None
    return round(kb / 1024, 1)


DAY_PHASES = (("exporting", "export"), ("encoding", "encode"), ("history features", "history_features"),
              ("active entities", "detect"), ("writing scores", "write_back"))
"""``score_windows``'s progress messages, in order, and the phase each one opens."""


def score_latest_day(driver: Any, database: str | None, checkpoint: Any, device: str) -> dict[str, Any]:
    """Time ``gnnsec score``'s own path on the latest complete day: phases cut at its progress messages,
    each phase's peak RSS, and the rows it wrote."""
    days = activity_days(driver, database)
    if not days:
        raise SystemExit("the estate holds no activity")
    marks: list[tuple[str, float, float | None]] = []

    def mark(message: str) -> None:
        phase = next((name for key, name in DAY_PHASES if key in message), None)
        if phase is not None:
            marks.append((phase, time.perf_counter(), peak_rss_mb()))

    peak_rss_mb()
    began = time.perf_counter()
    [result] = score_windows(driver, days[-1:], checkpoint=checkpoint, model_id="bench", database=database,
                             device=device, progress=mark)
    ended = time.perf_counter()
    final_peak = peak_rss_mb()
    phases: dict[str, dict[str, float | None]] = {}
    for (phase, at, _), (_, until, peak) in zip(marks, [*marks[1:], ("end", ended, final_peak)], strict=True):
        phases[phase] = {"seconds": round(until - at, 2), "peak_rss_mb": peak}
    run = result.run
    written = run.nodes_scored + run.edges_scored
    write_s = phases.get("write_back", {}).get("seconds") or float("nan")
    return {
        "day": run.window_start.isoformat() if run.window_start else None,
        "history_days": run.extra.get("history_days"),
        "scored": {"entities": run.nodes_scored, "relationships": run.edges_scored,
                   "reference_pairs": result.reference_pairs},
        "phases": phases,
        "write_back_rows_per_s": round(written / write_s) if write_s == write_s else None,
        "total_s": round(ended - began, 2),
        "peak_rss_mb": max([p["peak_rss_mb"] for p in phases.values() if p["peak_rss_mb"] is not None], default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--train-epochs", type=int, default=5)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gnnsec-bench")
    parser.add_argument("--path", default="graph", choices=["graph", "day"],
                        help="graph: the graph model over the whole graph (score_graph's phases); day: what "
                             "`gnnsec score` runs, the latest complete day against its history (score_windows)")
    parser.add_argument("--with-gnn", action="store_true", help="--path day: add the graph model's DistMult term, "
                                                                 "as `gnnsec score --with-gnn` does")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="gnnsec-bench-") as tmp, neo4j_driver(Path(tmp), heap="4g",
                                                                                 pagecache="2g") as (driver, database):
        prepared: dict[str, float] = {}
        checkpoint = None
        if args.path == "graph" or args.with_gnn:  # `gnnsec score` without --with-gnn loads no model
            trained_on = "medium" if args.size == "large" else args.size
            saved = args.cache / f"checkpoint-{trained_on}-{args.seed}-{args.train_epochs}.pt"
            if args.size == "large" and saved.exists():
                checkpoint = load_checkpoint(saved)
            else:
                prepared = ensure_estate(driver, database, trained_on, args.seed, args.cache)
                snapshot = export_snapshot(driver, database=database)
                checkpoint, _ = train_checkpoint(snapshot, TrainConfig(model=ModelConfig(kind="rgcn"),
                                                                       epochs=args.train_epochs, device=args.device))
                del snapshot
                if args.size == "large":
                    save_checkpoint(saved, checkpoint)
            if checkpoint.detector is None:
                raise SystemExit("the checkpoint has no detector")
        prepared.update(ensure_estate(driver, database, args.size, args.seed, args.cache))
        if args.path == "day":
            print(json.dumps({"benchmark": "score", "path": "day", "with_gnn": args.with_gnn,
                              "estate": {"size": args.size, "seed": args.seed,
                                         **{k: round(v, 1) for k, v in prepared.items()}},
                              "device": device_name(args.device),
                              **score_latest_day(driver, database, checkpoint, args.device),
                              "cpu_count": os.cpu_count()}, indent=2))
            return
        assert checkpoint is not None and checkpoint.detector is not None
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        threads = configure_cpu_threads()
        phase_peaks: dict[str, float | None] = {"before": peak_rss_mb()}
        began = time.perf_counter()
        snapshot = export_snapshot(driver, database=database)
        export_s = time.perf_counter() - began
        phase_peaks["export"] = peak_rss_mb()

        encode_threads = configure_cpu_threads(database_idle=True)
        began = time.perf_counter()
        emb = embed(checkpoint.model, snapshot, checkpoint.spec, device=args.device)
        embed_s = time.perf_counter() - began
        phase_peaks["encode"] = peak_rss_mb()
        nodes = checkpoint.detector.score(emb)
        anomaly = edge_anomaly(emb.edge_logit)
        encode_s = time.perf_counter() - began
        phase_peaks["detect"] = peak_rss_mb()
        configure_cpu_threads()

        began = time.perf_counter()
        node_scores, edge_scores = score_rows(snapshot, nodes.score, nodes.rank, nodes.anomalous, {},
                                              emb.edge_logit, anomaly)
        rows_s = time.perf_counter() - began
        phase_peaks["score_rows"] = peak_rss_mb()
        run = ScoringRun("bench", "bench", datetime.now(UTC), 0.99)
        began = time.perf_counter()
        clear_scores(driver, database)
        clear_s = time.perf_counter() - began
        began = time.perf_counter()
        written = write_node_scores(driver, node_scores, run, database=database)
        nodes_s = time.perf_counter() - began
        written += write_edge_scores(driver, edge_scores, database=database)
        write_s = time.perf_counter() - began
        phase_peaks["write_back"] = peak_rss_mb()
    rows = snapshot.num_nodes + snapshot.num_edges
    print(json.dumps({
        "benchmark": "score",
        "estate": {"size": args.size, "seed": args.seed, "nodes": snapshot.num_nodes, "edges": snapshot.num_edges,
                   **{k: round(v, 1) for k, v in prepared.items()}},
        "device": device_name(args.device),
        "torch_threads": {"export_and_write_back": threads, "encode_and_detect": encode_threads},
        "export": {"seconds": round(export_s, 2), "rows_per_s": round(rows / export_s)},
        "encode_and_detect": {"seconds": round(encode_s, 2), "nodes_per_s": round(snapshot.num_nodes / encode_s),
                              "encode_s": round(embed_s, 2), "detect_s": round(encode_s - embed_s, 2)},
        "score_rows_s": round(rows_s, 2),
        "clear_previous_scores_s": round(clear_s, 2),
        "write_back": {"seconds": round(write_s, 2), "rows": written, "rows_per_s": round(written / write_s),
                       "nodes_per_s": round(snapshot.num_nodes / nodes_s),
                       "relationships_per_s": round(snapshot.num_edges / (write_s - nodes_s)),
                       "relationships_by": "element id" if snapshot.edge_element_id else "uid"},
        "total_s": round(export_s + encode_s + rows_s + clear_s + write_s, 2),
        # resetting VmHWM resets ru_maxrss too, so the whole run's peak is the largest phase's
        "peak_rss_mb": max(v for v in phase_peaks.values() if v is not None) if any(phase_peaks.values())
        else round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_by_phase_mb": phase_peaks,
        "rss_after_training_mb": round(rss_before, 1),
        "cpu_count": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
