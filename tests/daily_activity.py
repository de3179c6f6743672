"""Hand-written daily activity for the scoring tests: rows become aggregated relationships, as ingest stores them."""

from __future__ import annotations

from typing import Any

import neo4j


def write_activity(driver: neo4j.Driver, rows: list[dict[str, Any]]) -> None:
    """MERGE one relationship per row ``{src, type, dst, w (window start), h (hour of first event)}``: 3 events,
    first and last seen 5 minutes apart within that hour of the window, action GetObject. Endpoints must exist."""
    for rel in sorted({row["type"] for row in rows}):
        driver.execute_query(
            f"""
            UNWIND $rows AS row
            MATCH (a {{uid: row.src}}) MATCH (b {{uid: row.dst}})
            MERGE (a)-[r:{rel} {{window: row.w}}]->(b)
            SET r.count = 3, r.first_seen = row.w + duration({{hours: row.h}}),
                r.last_seen = row.w + duration({{hours: row.h, minutes: 5}}), r.actions = ['GetObject']
            """, rows=[row for row in rows if row["type"] == rel])
