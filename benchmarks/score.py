"""Scoring cost on a generated estate: export, encode + detect, and write-back, with peak memory.

    python benchmarks/score.py [--size medium] [--train-epochs 5]

Trains a quick RGCN on the estate (not timed: ``benchmarks/train.py`` measures training), then
times ``gnnsec score``'s three phases separately on the same graph, and write-back rows/s (nodes by uid,
relationships by the element ids the export read, as ``gnnsec score`` writes them).
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
from gnnsec import schema
from gnnsec.gnn.detect import edge_anomaly
from gnnsec.gnn.embed import embed
from gnnsec.gnn.model import ModelConfig
from gnnsec.gnn.pipeline import train_checkpoint
from gnnsec.gnn.train import TrainConfig
from gnnsec.graphdb.export import export_snapshot
from gnnsec.graphdb.writeback import (
    EdgeScore,
    NodeScore,
    ScoringRun,
    clear_scores,
    write_edge_scores,
    write_node_scores,
)
from gnnsec.workflow import configure_cpu_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="medium", choices=["small", "medium"])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--train-epochs", type=int, default=5)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gnnsec-bench")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    threads = configure_cpu_threads()

    with tempfile.TemporaryDirectory(prefix="gnnsec-bench-") as tmp, neo4j_driver(Path(tmp)) as (driver, database):
        prepared = ensure_estate(driver, database, args.size, args.seed, args.cache)
        snapshot = export_snapshot(driver, database=database)
        checkpoint, _ = train_checkpoint(snapshot, TrainConfig(model=ModelConfig(kind="rgcn"),
                                                               epochs=args.train_epochs, device=args.device))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        began = time.perf_counter()
        snapshot = export_snapshot(driver, database=database)
        export_s = time.perf_counter() - began

        began = time.perf_counter()
        emb = embed(checkpoint.model, snapshot, checkpoint.spec, device=args.device)
        nodes = checkpoint.detector.score(emb)
        anomaly = edge_anomaly(emb.edge_logit)
        encode_s = time.perf_counter() - began

        labels = [schema.NODE_LABELS[i] for i in snapshot.node_label.tolist()]
        node_scores = [NodeScore(labels[i], snapshot.node_uid[i], float(nodes.score[i]), int(nodes.rank[i]),
                                 bool(nodes.anomalous[i])) for i in range(snapshot.num_nodes)]
        src, dst = snapshot.edge_index
        edge_scores = [
            EdgeScore(labels[int(src[e])], snapshot.node_uid[int(src[e])], schema.RELATION_NAMES[int(t)],
                      labels[int(dst[e])], snapshot.node_uid[int(dst[e])],
                      datetime.fromisoformat(snapshot.edge_window[e]) if snapshot.edge_window[e] else None,
                      float(emb.edge_logit[e]), float(anomaly[e]), element_id=snapshot.edge_element_id[e])
            for e, t in enumerate(snapshot.edge_type.tolist())
        ]
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
        "torch_threads": threads,
        "export": {"seconds": round(export_s, 2), "rows_per_s": round(rows / export_s)},
        "encode_and_detect": {"seconds": round(encode_s, 2), "nodes_per_s": round(snapshot.num_nodes / encode_s)},
        "clear_previous_scores_s": round(clear_s, 2),
        "write_back": {"seconds": round(write_s, 2), "rows": written, "rows_per_s": round(written / write_s),
                       "nodes_per_s": round(snapshot.num_nodes / nodes_s),
                       "relationships_per_s": round(snapshot.num_edges / (write_s - nodes_s)),
                       "relationships_by": "element id" if snapshot.edge_element_id else "uid"},
        "total_s": round(export_s + encode_s + clear_s + write_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_training_mb": round(rss_before, 1),
        "cpu_count": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
