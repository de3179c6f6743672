"""Cost of ``gnnsec eval --split history`` on a generated estate, phase by phase, with peak memory.

    python benchmarks/history.py [--size medium] [--seed 11] [--models history,rules,iforest,nbr-iforest]

Phases: generating the files, reading them into a snapshot (the adapters and staging of ``gnnsec ingest``,
no database), history features for every (entity, day), and each model's fit + score of the test days. The
baselines run in the same process on the same features, so their time is the reference: the JSON gives each
model's seconds (each including its own features pass, as ``gnnsec eval`` runs it) and its ratio to ours.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gnnsec.evaluate.data import (
    EvalData,
    default_read_workers,
    load_snapshot_cached,
    read_activity_labels,
    read_entity_labels,
)
from gnnsec.evaluate.history_eval import HistoryEvalConfig, run_history_evaluation
from gnnsec.gnn.history import history_features
from gnnsec.synth import generate


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="medium", choices=["small", "medium"])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--models", default="history,rules,iforest,mlp-ae,nbr-iforest")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gnnsec-bench-history")
    parser.add_argument("--estate", type=Path, default=None, help="An existing estate directory (skips generating).")
    parser.add_argument("--workers", type=int, default=None, help="Processes reading files (default: one per core).")
    args = parser.parse_args()
    estate = args.estate or args.cache / f"estate-{args.size}-{args.seed}-{args.days}"
    out: dict[str, object] = {"estate": str(estate)} if args.estate else {"size": args.size, "seed": args.seed}
    began = time.perf_counter()
    if not (estate / "labels" / "entities.csv").exists():
        generate(estate, seed=args.seed, size=args.size, days=args.days)
        out["generate_s"] = round(time.perf_counter() - began, 2)
    began = time.perf_counter()
    out["read_workers"] = workers = args.workers or default_read_workers()
    snapshot = load_snapshot_cached(estate, args.cache / "snapshots", workers=workers)
    out["read_s"] = round(time.perf_counter() - began, 2)
    out["nodes"], out["relationships"] = snapshot.num_nodes, snapshot.num_edges
    began = time.perf_counter()
    features = history_features(snapshot)
    out["features_s"] = round(time.perf_counter() - began, 2)
    out["pairs"] = features.num_pairs
    out["pairs_per_s"] = round(features.num_pairs / max(float(out["features_s"]), 1e-9))  # type: ignore[arg-type]
    labels = estate / "labels"
    entities = {u: e for u, e in read_entity_labels(labels / "entities.csv").items() if u in set(snapshot.node_uid)}
    data = EvalData(snapshot, entities, read_activity_labels(labels / "activity.csv"), source=str(estate))
    seconds: dict[str, float] = {}
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        began = time.perf_counter()
        result = run_history_evaluation(data, HistoryEvalConfig(models=(model,)))
        seconds[model] = round(time.perf_counter() - began, 2)
        out.setdefault("test_pairs", result.pairs["test"])
    out["model_s"] = seconds
    if "history" in seconds:
        ours = max(seconds["history"], 1e-9)
        out["ratio_to_ours"] = {m: round(s / ours, 2) for m, s in seconds.items()}
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
