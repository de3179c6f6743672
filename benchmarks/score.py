"""Scoring cost on a generated estate: export, encode + detect, and write-back, with peak memory.

    python benchmarks/score.py [--size medium|large] [--train-epochs 5]

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
from gnnsec.workflow import configure_cpu_threads, score_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--train-epochs", type=int, default=5)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gnnsec-bench")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="gnnsec-bench-") as tmp, neo4j_driver(Path(tmp), heap="4g",
                                                                                 pagecache="2g") as (driver, database):
        trained_on = "medium" if args.size == "large" else args.size
        saved = args.cache / f"checkpoint-{trained_on}-{args.seed}-{args.train_epochs}.pt"
        if args.size == "large" and saved.exists():
            checkpoint = load_checkpoint(saved)
            prepared: dict[str, float] = {}
        else:
            prepared = ensure_estate(driver, database, trained_on, args.seed, args.cache)
            snapshot = export_snapshot(driver, database=database)
            checkpoint, _ = train_checkpoint(snapshot, TrainConfig(model=ModelConfig(kind="rgcn"),
                                                                   epochs=args.train_epochs, device=args.device))
            del snapshot
            if args.size == "large":
                save_checkpoint(saved, checkpoint)
        if args.size == "large":
            prepared.update(ensure_estate(driver, database, "large", args.seed, args.cache))
        if checkpoint.detector is None:
            raise SystemExit("the checkpoint has no detector")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        threads = configure_cpu_threads()
        began = time.perf_counter()
        snapshot = export_snapshot(driver, database=database)
        export_s = time.perf_counter() - began

        encode_threads = configure_cpu_threads(database_idle=True)
        began = time.perf_counter()
        emb = embed(checkpoint.model, snapshot, checkpoint.spec, device=args.device)
        embed_s = time.perf_counter() - began
        nodes = checkpoint.detector.score(emb)
        anomaly = edge_anomaly(emb.edge_logit)
        encode_s = time.perf_counter() - began
        rss_encoded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        configure_cpu_threads()

        began = time.perf_counter()
        node_scores, edge_scores = score_rows(snapshot, nodes.score, nodes.rank, nodes.anomalous, {},
                                              emb.edge_logit, anomaly)
        rows_s = time.perf_counter() - began
        run = ScoringRun("bench", "bench", datetime.now(UTC), 0.99)
        began = time.perf_counter()
        clear_scores(driver, database)
        clear_s = time.perf_counter() - began
        began = time.perf_counter()
        written = write_node_scores(driver, node_scores, run, database=database)
        nodes_s = time.perf_counter() - began
        written += write_edge_scores(driver, edge_scores, database=database)
        write_s = time.perf_counter() - began
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
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_after_encode_mb": round(rss_encoded, 1),
        "rss_after_training_mb": round(rss_before, 1),
        "cpu_count": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
