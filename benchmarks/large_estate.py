"""A million-node estate for ``benchmarks/score.py --size large``: the medium estate, tiled inside Neo4j.

Ingesting a generated estate of 1M nodes takes about an hour on 2 cores (the medium one, 54k nodes from
3.2M events, takes 7 minutes), and the scoring benchmark measures export, encode, detect and write-back,
not ingest. So the graph is grown server-side from the medium estate that ``ingest`` wrote: ``tiles - 1``
copies of every schema node (uid suffixed ``~k``, every property kept), and of a deterministic share of
its relationships (every property kept), so that the whole holds about ``TARGET_NODES`` nodes and
``TARGET_RELATIONSHIPS`` relationships. The copies differ from each other and from the original in which
relationships they keep, so the tiles are not isomorphic; a copy is the same kind of graph as what
ingest writes (labels, properties, windows, uid constraints), which is what the I/O paths measure.

Copies carry ``bench_tile``; :func:`drop_tiles` removes them again.
"""

from __future__ import annotations

import math
import time
from typing import Any

from gnnsec import schema

TARGET_NODES = 1_000_000
TARGET_RELATIONSHIPS = 5_000_000
ROWS_PER_TRANSACTION = 20_000


def _count(driver: Any, database: str | None, query: str) -> int:
    records, _, _ = driver.execute_query(query, database_=database)
    return int(records[0]["n"])


def _run(driver: Any, database: str | None, query: str, **params: Any) -> None:
    """An auto-commit query: ``CALL {...} IN TRANSACTIONS`` cannot run in a managed transaction."""
    with driver.session(database=database) as session:
        session.run(query, **params).consume()


def tile_estate(driver: Any, database: str | None) -> dict[str, float]:
    """Grow the (untiled) graph to about ``TARGET_NODES`` / ``TARGET_RELATIONSHIPS``; returns counts and times."""
    labels = "|".join(schema.NODE_LABELS)
    nodes = _count(driver, database, f"MATCH (n:{labels}) WHERE n.bench_tile IS NULL RETURN count(n) AS n")
    edges = _count(driver, database, f"MATCH (:{labels})-[r]->(:{labels}) RETURN count(r) AS n")
    tiles = max(1, math.ceil(TARGET_NODES / max(nodes, 1)))
    copies = list(range(1, tiles))
    # share of the original's relationships each copy keeps, in thousandths
    keep = min(1000, round(1000 * (TARGET_RELATIONSHIPS - edges) / max(edges * len(copies), 1))) if copies else 0
    began = time.perf_counter()
    for label in schema.NODE_LABELS:
        _run(driver, database, f"""
            MATCH (n:{label}) WHERE n.bench_tile IS NULL
            UNWIND $copies AS k
            CALL (n, k) {{
                CREATE (m:{label}) SET m = n {{.*, uid: n.uid + '~' + k, bench_tile: k}}
            }} IN TRANSACTIONS OF {ROWS_PER_TRANSACTION} ROWS""", copies=copies)
    nodes_s = time.perf_counter() - began
    began = time.perf_counter()
    records, _, _ = driver.execute_query(f"""
        MATCH (a:{labels})-[r]->(b:{labels}) WHERE a.bench_tile IS NULL
        RETURN DISTINCT [l IN labels(a) WHERE l IN $known][0] AS source, type(r) AS rel,
                        [l IN labels(b) WHERE l IN $known][0] AS target""", known=list(schema.NODE_LABELS),
        database_=database)
    for source, rel, target in sorted((r["source"], r["rel"], r["target"]) for r in records):
        _run(driver, database, f"""
            MATCH (a:{source})-[r:{rel}]->(b:{target})
            WHERE a.bench_tile IS NULL AND b.bench_tile IS NULL
            UNWIND $copies AS k
            WITH a, r, b, k WHERE (id(r) * 7919 + k * 104729) % 1000 < $keep
            CALL (a, r, b, k) {{
                MATCH (c:{source} {{uid: a.uid + '~' + k}})
                MATCH (d:{target} {{uid: b.uid + '~' + k}})
                CREATE (c)-[s:{rel}]->(d) SET s = properties(r)
            }} IN TRANSACTIONS OF {ROWS_PER_TRANSACTION} ROWS""", copies=copies, keep=keep)
    return {
        "tiles": float(tiles),
        "relationship_share_per_copy": keep / 1000,
        "tile_nodes_s": nodes_s,
        "tile_relationships_s": time.perf_counter() - began,
    }


def drop_tiles(driver: Any, database: str | None) -> None:
    """Remove every copy :func:`tile_estate` made, leaving the ingested estate as it was."""
    labels = "|".join(schema.NODE_LABELS)
    _run(driver, database, f"""
        MATCH (n:{labels}) WHERE n.bench_tile IS NOT NULL
        CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF 5000 ROWS""")
