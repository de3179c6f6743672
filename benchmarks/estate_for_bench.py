"""A generated estate, ingested once into the benchmark's Neo4j (shared by train and score benchmarks)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.large_estate import drop_tiles, tile_estate
from gnnsec.graphdb.ingest import ingest
from gnnsec.graphdb.loader import delete_everything
from gnnsec.ingest.pipeline import discover
from gnnsec.synth import generate

MARKER = "GnnsecBenchEstate"


def ensure_estate(driver: Any, database: str | None, size: str, seed: int, cache: Path) -> dict[str, float]:
    """Generate ``size``/``seed`` under ``cache`` (once) and ingest it unless the graph already holds it.

    ``large`` is the medium estate of the same seed tiled inside Neo4j (:mod:`benchmarks.large_estate`);
    asking for medium again drops the tiles rather than ingesting anew."""
    if _holds(driver, database, size, seed):
        return {}
    if size == "large":
        grown = ensure_estate(driver, database, "medium", seed, cache)
        grown.update(tile_estate(driver, database))
        driver.execute_query(f"MATCH (m:{MARKER}) SET m.size = 'large'", database_=database)
        return grown
    if size == "medium" and _holds(driver, database, "large", seed):
        drop_tiles(driver, database)
        driver.execute_query(f"MATCH (m:{MARKER}) SET m.size = 'medium'", database_=database)
        return {}
    timings: dict[str, float] = {}
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


def _holds(driver: Any, database: str | None, size: str, seed: int) -> bool:
    records, _, _ = driver.execute_query(
        f"MATCH (m:{MARKER} {{size: $size, seed: $seed}}) RETURN count(m) AS n", size=size, seed=seed,
        database_=database,
    )
    return bool(records[0]["n"])
