"""A generated estate, ingested once into the benchmark's Neo4j (shared by train and score benchmarks)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gnnsec.graphdb.ingest import ingest
from gnnsec.graphdb.loader import delete_everything
from gnnsec.ingest.pipeline import discover
from gnnsec.synth import generate

MARKER = "GnnsecBenchEstate"


def ensure_estate(driver: Any, database: str | None, size: str, seed: int, cache: Path) -> dict[str, float]:
    """Generate ``size``/``seed`` under ``cache`` (once) and ingest it unless the graph already holds it."""
    timings: dict[str, float] = {}
    records, _, _ = driver.execute_query(
        f"MATCH (m:{MARKER} {{size: $size, seed: $seed}}) RETURN count(m) AS n", size=size, seed=seed,
        database_=database,
    )
    if records[0]["n"]:
        return timings
    out = cache / f"estate-{size}-{seed}"
    if not (out / "manifest.json").exists():
        began = time.perf_counter()
        generate(out, seed=seed, size=size)
        timings["generate_s"] = time.perf_counter() - began
    delete_everything(driver, database)
    began = time.perf_counter()
    items, _ = discover([out])
    report = ingest(driver, items, database=database)
    timings["ingest_s"] = time.perf_counter() - began
    timings["ingest_events"] = float(sum(f.events for f in report.files))
    driver.execute_query(f"MERGE (:{MARKER} {{size: $size, seed: $seed}})", size=size, seed=seed,
                         database_=database)
    return timings
