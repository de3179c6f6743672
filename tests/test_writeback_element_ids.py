"""Relationship scores are written by the element id this run's export read, and only where that id still
names the same relationship: a stale or foreign id is never trusted, the uid path writes those rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gnnsec import schema
from gnnsec.graphdb.export import SnapshotFilter, export_snapshot
from gnnsec.graphdb.writeback import EdgeScore, write_edge_scores, write_window_scores
from gnnsec.snapshot import ElementIds
from tests.test_writeback_windows import ADMIN, ALICE, BOB, BUCKET, DAY_A, DAY_B, load_graph, make_run

pytestmark = pytest.mark.integration


def element_ids(driver: Any, rel_type: str) -> dict[tuple[str, str, Any], str]:
    """(source uid, target uid, window) → element id of every ``rel_type`` relationship."""
    records, _, _ = driver.execute_query(
        f"MATCH (a)-[r:{rel_type}]->(b) RETURN a.uid AS a, b.uid AS b, r.window AS w, elementId(r) AS id"
    )
    return {(r["a"], r["b"], None if r["w"] is None else r["w"].to_native()): r["id"] for r in records}


def anomalies(driver: Any, rel_type: str) -> dict[tuple[str, str, Any], float | None]:
    records, _, _ = driver.execute_query(
        f"MATCH (a)-[r:{rel_type}]->(b) RETURN a.uid AS a, b.uid AS b, r.window AS w, r.edge_anomaly AS e"
    )
    return {(r["a"], r["b"], None if r["w"] is None else r["w"].to_native()): r["e"] for r in records}


def test_export_reads_one_element_id_per_relationship(clean_db: Any) -> None:
    load_graph(clean_db)
    snapshot = export_snapshot(clean_db, SnapshotFilter())
    assert isinstance(snapshot.edge_element_id, ElementIds)  # one database: one prefix, numbers stored
    assert len(snapshot.edge_element_id) == snapshot.num_edges == 7
    src, dst = snapshot.edge_index
    for e, element_id in enumerate(snapshot.edge_element_id):
        rel_type = schema.RELATION_NAMES[int(snapshot.edge_type[e])]
        records, _, _ = clean_db.execute_query(
            "MATCH (a)-[r]->(b) WHERE elementId(r) = $id RETURN type(r) AS t, a.uid AS a, b.uid AS b", id=element_id
        )
        assert [(r["t"], r["a"], r["b"]) for r in records] == [
            (rel_type, snapshot.node_uid[int(src[e])], snapshot.node_uid[int(dst[e])])
        ]


def test_scores_land_by_element_id_as_by_uid(clean_db: Any) -> None:
    load_graph(clean_db)
    ids = element_ids(clean_db, "ASSUMES_ROLE")
    scores = [
        EdgeScore("User", user.uid, "ASSUMES_ROLE", "Role", ADMIN.uid, day, 1.0, value, ["why"] if value > 0.5 else [],
                  element_id=ids[(user.uid, ADMIN.uid, day)])
        for user, day, value in ((ALICE, DAY_A, 0.9), (BOB, DAY_A, 0.2), (ALICE, DAY_B, 0.3), (BOB, DAY_B, 0.4))
    ]
    counts = write_window_scores(clean_db, [], scores, make_run("a", DAY_A))
    assert counts["edges"] == 4
    assert anomalies(clean_db, "ASSUMES_ROLE") == {
        (ALICE.uid, ADMIN.uid, DAY_A): 0.9, (BOB.uid, ADMIN.uid, DAY_A): 0.2,
        (ALICE.uid, ADMIN.uid, DAY_B): 0.3, (BOB.uid, ADMIN.uid, DAY_B): 0.4,
    }


def test_an_id_that_names_another_relationship_is_not_trusted(clean_db: Any) -> None:
    """Neo4j reuses the ids of deleted relationships: a row carrying another relationship's id (same type,
    other window or other endpoints) must write its own relationship, never the one the id names."""
    load_graph(clean_db)
    ids = element_ids(clean_db, "ACCESS")
    assumes = element_ids(clean_db, "ASSUMES_ROLE")
    swapped = [
        # Day A's row carries day B's id (same type and endpoints, other window), and the reverse.
        EdgeScore("Role", ADMIN.uid, "ACCESS", "Bucket", BUCKET.uid, DAY_A, 0.0, 0.7,
                  element_id=ids[(ADMIN.uid, BUCKET.uid, DAY_B)]),
        EdgeScore("Role", ADMIN.uid, "ACCESS", "Bucket", BUCKET.uid, DAY_B, 0.0, 0.1,
                  element_id=ids[(ADMIN.uid, BUCKET.uid, DAY_A)]),
        # Alice's row carries Bob's id.
        EdgeScore("User", ALICE.uid, "ASSUMES_ROLE", "Role", ADMIN.uid, DAY_A, 0.0, 0.6,
                  element_id=assumes[(BOB.uid, ADMIN.uid, DAY_A)]),
    ]
    assert write_edge_scores(clean_db, swapped) == 3
    assert anomalies(clean_db, "ACCESS") == {(ADMIN.uid, BUCKET.uid, DAY_A): 0.7, (ADMIN.uid, BUCKET.uid, DAY_B): 0.1}
    assert anomalies(clean_db, "ASSUMES_ROLE")[(ALICE.uid, ADMIN.uid, DAY_A)] == 0.6
    assert anomalies(clean_db, "ASSUMES_ROLE")[(BOB.uid, ADMIN.uid, DAY_A)] is None


def test_a_deleted_relationship_s_row_matches_nothing_and_the_rest_is_written(clean_db: Any) -> None:
    load_graph(clean_db)
    ids = element_ids(clean_db, "ACCESS")
    clean_db.execute_query("MATCH ()-[r:ACCESS]->() WHERE elementId(r) = $id DELETE r",
                           id=ids[(ADMIN.uid, BUCKET.uid, DAY_B)])
    rows = [EdgeScore("Role", ADMIN.uid, "ACCESS", "Bucket", BUCKET.uid, day, 0.0, 0.5, element_id=ids[
        (ADMIN.uid, BUCKET.uid, day)]) for day in (DAY_A, DAY_B)]
    counts = write_window_scores(clean_db, [], rows, make_run("a", DAY_A))
    assert counts["edges"] == 1
    assert anomalies(clean_db, "ACCESS") == {(ADMIN.uid, BUCKET.uid, DAY_A): 0.5}


def test_scoring_a_window_from_the_database_writes_every_exported_relationship(clean_db: Any) -> None:
    """End to end through the export: every relationship of the window gets its score by id."""
    load_graph(clean_db)
    snapshot = export_snapshot(clean_db, SnapshotFilter(since=DAY_A, until=DAY_A + timedelta(days=1)))
    src, dst = snapshot.edge_index
    labels = [schema.NODE_LABELS[i] for i in snapshot.node_label.tolist()]
    windows = [None if w is None else DAY_A for w in snapshot.edge_window]
    scores = [
        EdgeScore(labels[int(src[e])], snapshot.node_uid[int(src[e])], schema.RELATION_NAMES[int(t)],
                  labels[int(dst[e])], snapshot.node_uid[int(dst[e])], windows[e], 0.0, 0.25 + e / 100,
                  element_id=snapshot.edge_element_id[e])
        for e, t in enumerate(snapshot.edge_type.tolist())
    ]
    counts = write_window_scores(clean_db, [], scores, make_run("a", DAY_A))
    assert counts["edges"] == snapshot.num_edges == 4  # three of day A and the inventory CAN_ASSUME
    records, _, _ = clean_db.execute_query("MATCH ()-[r]->() WHERE r.edge_anomaly IS NOT NULL RETURN count(r) AS n")
    assert records[0]["n"] == 4
