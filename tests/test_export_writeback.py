"""Export builds the snapshot the GNN sees; write-back puts scores on the same nodes, by uid."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gnnsec import schema
from gnnsec.graphdb.export import EXCLUDED_NODE_PROPERTIES, SnapshotFilter, export_snapshot
from gnnsec.graphdb.loader import write_staging
from gnnsec.graphdb.writeback import (
    NODE_SCORE_PROPERTIES,
    EdgeScore,
    NodeScore,
    ScoringRun,
    clear_scores,
    record_run,
    write_edge_scores,
    write_node_scores,
    write_window_scores,
)
from gnnsec.ingest.base import Edge, Node, NodeRef
from gnnsec.ingest.staging import Staging

pytestmark = pytest.mark.integration

ALICE = NodeRef("User", "arn:aws:iam::111122223333:user/alice")
ADMIN = NodeRef("Role", "arn:aws:iam::111122223333:role/admin")
BUCKET = NodeRef("Bucket", "arn:aws:s3:::payroll")


def load_small_graph(driver: Any) -> None:
    staging = Staging("test")
    staging.add(Node("User", ALICE.uid, {"name": "alice", "mfa_enabled": True}, datetime(2026, 3, 1, tzinfo=UTC)))
    staging.add(Edge("CAN_ASSUME", ALICE, ADMIN))
    staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=datetime(2026, 3, 1, 9, tzinfo=UTC), action="sts:AssumeRole"))
    staging.add(Edge("ACCESS", ADMIN, BUCKET, time=datetime(2026, 3, 2, 9, tzinfo=UTC), action="s3:GetObject"))
    staging.add(Edge("ACCESS", ADMIN, BUCKET, time=datetime(2026, 3, 2, 10, tzinfo=UTC), action="s3:GetObject"))
    write_staging(driver, staging, "small")


def test_the_snapshot_holds_every_node_and_relationship_with_schema_ids(clean_db: Any) -> None:
    load_small_graph(clean_db)
    snap = export_snapshot(clean_db)
    assert sorted(snap.node_uid) == sorted([ALICE.uid, ADMIN.uid, BUCKET.uid])
    labels = {uid: schema.NODE_LABELS[i] for uid, i in zip(snap.node_uid, snap.node_label.tolist(), strict=True)}
    assert labels[ALICE.uid] == "User"
    types = sorted(schema.RELATION_NAMES[t] for t in snap.edge_type.tolist())
    assert types == ["ACCESS", "ASSUMES_ROLE", "CAN_ASSUME"]
    access = snap.edge_type.tolist().index(schema.relation_id("ACCESS"))
    assert snap.edge_count[access] == 2
    assert snap.edge_actions[access] == ["s3:GetObject"]
    assert snap.edge_window[snap.edge_type.tolist().index(schema.relation_id("CAN_ASSUME"))] is None
    alice = snap.node_props[snap.node_uid.index(ALICE.uid)]
    assert alice["mfa_enabled"] is True


def test_a_time_window_keeps_inventory_and_only_that_window_s_activity(clean_db: Any) -> None:
    load_small_graph(clean_db)
    snap = export_snapshot(clean_db, SnapshotFilter(since=datetime(2026, 3, 2, tzinfo=UTC)))
    assert sorted(schema.RELATION_NAMES[t] for t in snap.edge_type.tolist()) == ["ACCESS", "CAN_ASSUME"]


def test_the_neighbourhood_filter_keeps_only_nodes_within_the_hops(clean_db: Any) -> None:
    load_small_graph(clean_db)
    snap = export_snapshot(clean_db, SnapshotFilter(around=[ALICE.uid], hops=1))
    assert sorted(snap.node_uid) == sorted([ALICE.uid, ADMIN.uid])


def test_the_neighbourhood_never_walks_through_a_scoring_run(clean_db: Any) -> None:
    """Carol shares nothing with Alice but a scoring run: (alice)<-[:SCORED]-(run)-[:SCORED]->(carol) is two hops."""
    load_small_graph(clean_db)
    carol = "arn:aws:iam::111122223333:user/carol"
    clean_db.execute_query("MERGE (:User {uid: $uid})", uid=carol)
    run = ScoringRun("run-1", "model-1", datetime(2026, 3, 3, tzinfo=UTC), 0.99, datetime(2026, 3, 2, tzinfo=UTC))
    written = write_window_scores(clean_db, [NodeScore("User", ALICE.uid, 0.999, 1, True),
                                             NodeScore("User", carol, 0.999, 2, True)], [], run)
    assert written["scored_rels"] == 2
    snap = export_snapshot(clean_db, SnapshotFilter(around=[ALICE.uid], hops=2))
    assert sorted(snap.node_uid) == sorted([ALICE.uid, ADMIN.uid, BUCKET.uid])


def test_score_properties_never_reach_the_snapshot_features(clean_db: Any) -> None:
    assert set(NODE_SCORE_PROPERTIES) <= EXCLUDED_NODE_PROPERTIES
    load_small_graph(clean_db)
    run = ScoringRun("run-1", "model-1", datetime(2026, 3, 3, tzinfo=UTC), 0.99, datetime(2026, 3, 2, tzinfo=UTC))
    write_window_scores(clean_db, [NodeScore("User", ALICE.uid, 0.999, 1, True, ["x"], 4.2, "pooled")], [], run)
    snap = export_snapshot(clean_db)
    alice = snap.node_props[snap.node_uid.index(ALICE.uid)]
    assert alice["name"] == "alice"
    assert not set(alice) & set(NODE_SCORE_PROPERTIES)


def test_scores_are_written_by_uid_and_a_new_run_clears_the_old_one(clean_db: Any) -> None:
    load_small_graph(clean_db)
    snap = export_snapshot(clean_db)
    window = snap.edge_window[snap.edge_type.tolist().index(schema.relation_id("ACCESS"))]
    run = ScoringRun("run-1", "model-1", datetime(2026, 3, 3, tzinfo=UTC), threshold=0.99, nodes_scored=1)
    write_node_scores(clean_db, [NodeScore("User", ALICE.uid, 0.995, 1, True, ["new role"])], run)
    write_edge_scores(
        clean_db,
        [EdgeScore("Role", ADMIN.uid, "ACCESS", "Bucket", BUCKET.uid, datetime.fromisoformat(window), 1.5, 0.25)],
    )
    record_run(clean_db, run)
    records, _, _ = clean_db.execute_query(
        "MATCH (u:User {uid: $uid}) RETURN u.anomaly_score AS s, u.anomalous AS a, u.anomaly_reasons AS why, "
        "u.model_id AS m", uid=ALICE.uid
    )
    assert (records[0]["s"], records[0]["a"], records[0]["why"], records[0]["m"]) == (0.995, True, ["new role"],
                                                                                        "model-1")
    records, _, _ = clean_db.execute_query("MATCH ()-[r:ACCESS]->() RETURN r.edge_anomaly AS e")
    assert [r["e"] for r in records] == [0.25]
    records, _, _ = clean_db.execute_query("MATCH (r:ScoringRun) RETURN r.run_id AS id, r.threshold AS t")
    assert [(r["id"], r["t"]) for r in records] == [("run-1", 0.99)]

    clear_scores(clean_db)
    records, _, _ = clean_db.execute_query(
        "MATCH (n) WHERE n.anomaly_score IS NOT NULL RETURN count(n) AS n UNION ALL "
        "MATCH ()-[r]->() WHERE r.edge_anomaly IS NOT NULL RETURN count(r) AS n"
    )
    assert [r["n"] for r in records] == [0, 0]
