"""Reading an estate's files into the snapshot ``gnnsec eval --data DIR`` evaluates, in one process and with
worker processes, in the same run (no cache, no database).

    python benchmarks/eval_read.py --estate DIR [--workers 1,2]
    python benchmarks/eval_read.py --size medium --seed 11        # generates the estate first

Each worker count reads the whole estate (``gnnsec.evaluate.data.snapshot_from_files``); the JSON gives its
seconds, files and events per second, its speedup over the first count, and whether its snapshot equals the
first one's, node by node and relationship by relationship. ``--rounds 2`` reads each count twice, alternating
the order, and keeps every time (this machine may be shared). Peak RSS is this process's (workers are apart).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gnnsec.evaluate.data import snapshot_from_files
from gnnsec.ingest.pipeline import discover
from gnnsec.snapshot import Snapshot
from gnnsec.synth import generate


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def same_snapshot(one: Snapshot, other: Snapshot) -> bool:
    """Equal nodes (uid, label, every property) and relationships (endpoints, type, count, times, window,
    actions); NaN, a missing time, equals NaN."""
    import numpy as np

    if one.node_uid != other.node_uid or one.edge_window != other.edge_window or one.edge_actions != other.edge_actions:
        return False
    for a, b in zip(one.node_props, other.node_props, strict=True):
        if a.keys() != b.keys() or not all(_same(a[k], b[k]) for k in a):
            return False
    arrays = ("node_label", "edge_index", "edge_type", "edge_count", "edge_first_seen", "edge_last_seen")
    return all(np.array_equal(getattr(one, name), getattr(other, name), equal_nan=name.endswith("seen"))
               for name in arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--estate", type=Path, default=None, help="An existing estate directory (skips generating).")
    parser.add_argument("--size", default="medium", choices=["small", "medium"])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", default="1,2", help="Worker counts to compare; the first is the baseline.")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    estate = args.estate or Path(tempfile.gettempdir()) / "gnnsec-bench" / f"estate-{args.size}-{args.seed}"
    if not (estate / "labels" / "entities.csv").exists():
        print(f"generating {estate}", file=sys.stderr)
        generate(estate, seed=args.seed, size=args.size)
    items, _ = discover([estate])
    files = sum(1 for item in items if "labels" not in item.path.relative_to(estate).parts[:1])  # as eval reads
    seconds: dict[int, list[float]] = {c: [] for c in counts}
    first: Snapshot | None = None
    same: dict[int, bool] = {}
    for round_ in range(args.rounds):
        for count in counts if round_ % 2 == 0 else counts[::-1]:
            began = time.perf_counter()
            snapshot = snapshot_from_files(estate, workers=count)
            seconds[count].append(round(time.perf_counter() - began, 1))
            print(f"workers {count}: {seconds[count][-1]} s", file=sys.stderr, flush=True)
            if count == counts[0] and first is None:
                first = snapshot
            elif first is not None:
                same[count] = same.get(count, True) and same_snapshot(snapshot, first)
            del snapshot
    assert first is not None
    events = float(first.edge_count[[w is not None for w in first.edge_window]].sum())
    base = min(seconds[counts[0]])
    print(json.dumps({
        "benchmark": "eval-read",
        "estate": str(estate),
        "files": files,
        "nodes": first.num_nodes,
        "relationships": first.num_edges,
        "activity_events": int(events),
        "runs": {str(c): {"seconds": seconds[c], "files_per_s": round(files / min(seconds[c]), 1),
                          "events_per_s": round(events / min(seconds[c])),
                          "speedup": round(base / min(seconds[c]), 2),
                          "same_snapshot": True if c == counts[0] else same.get(c)} for c in counts},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }, indent=2))


if __name__ == "__main__":
    main()
