"""The loader against the real Neo4j: batched MERGE, idempotent re-loads, per-batch activity counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gnnsec.graphdb.loader import write_staging
from gnnsec.ingest.base import Edge, Node, NodeRef
from gnnsec.ingest.staging import Staging

pytestmark = pytest.mark.integration

ALICE = NodeRef("User", "arn:aws:iam::111122223333:user/alice")
ADMIN = NodeRef("Role", "arn:aws:iam::111122223333:role/admin")
BUCKET = NodeRef("Bucket", "arn:aws:s3:::payroll")


def at(hour: int, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def hourly_file(hours: list[int], *, name: str = "alice") -> Staging:
    staging = Staging("cloudtrail")
    staging.add(Node("User", ALICE.uid, {"name": name, "cloud": "aws", "account": "111122223333"}, at(8)))
    staging.add(Edge("CAN_ASSUME", ALICE, ADMIN, {"via": "trust-policy"}))
    for hour in hours:
        staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=at(hour), action="sts:AssumeRole"))
        staging.add(Edge("ACCESS", ADMIN, BUCKET, time=at(hour), action="s3:GetObject"))
    return staging


def dump(driver: Any) -> tuple[list[Any], list[Any]]:
    nodes, _, _ = driver.execute_query(
        "MATCH (n) WHERE NOT n:IngestedBatch RETURN labels(n) AS l, properties(n) AS p ORDER BY n.uid"
    )
    rels, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN a.uid AS a, type(r) AS t, b.uid AS b, properties(r) AS p ORDER BY a, t, b"
    )
    return [(r["l"], r["p"]) for r in nodes], [(r["a"], r["t"], r["b"], r["p"]) for r in rels]


def test_loading_the_same_batch_twice_changes_nothing(clean_db: Any) -> None:
    write_staging(clean_db, hourly_file([9, 10, 11]), "batch-a")
    before = dump(clean_db)
    counts = write_staging(clean_db, hourly_file([9, 10, 11]), "batch-a")
    assert dump(clean_db) == before
    assert sum(counts.nodes_created.values()) == 0
    assert sum(counts.relationships_created.values()) == 0


def test_activity_is_one_relationship_per_window_with_the_event_count(clean_db: Any) -> None:
    write_staging(clean_db, hourly_file([9, 10, 11]), "batch-a")
    records, _, _ = clean_db.execute_query(
        "MATCH (:User)-[r:ASSUMES_ROLE]->(:Role) RETURN r.count AS count, r.actions AS actions, "
        "r.first_seen AS first, r.last_seen AS last, r.window AS window"
    )
    assert len(records) == 1
    row = records[0]
    assert row["count"] == 3
    assert row["actions"] == ["sts:AssumeRole"]
    assert row["first"].to_native() == at(9) and row["last"].to_native() == at(11)
    assert row["window"].to_native() == datetime(2026, 3, 2, tzinfo=UTC)


def test_a_second_file_for_the_same_window_adds_its_events_once(clean_db: Any) -> None:
    write_staging(clean_db, hourly_file([9, 10]), "hour-09")
    write_staging(clean_db, hourly_file([14]), "hour-14")
    write_staging(clean_db, hourly_file([14]), "hour-14")  # re-delivered: no double count
    records, _, _ = clean_db.execute_query("MATCH ()-[r:ACCESS]->() RETURN r.count AS count, r.last_seen AS last")
    assert [r["count"] for r in records] == [3]
    assert records[0]["last"].to_native() == at(14)


def test_first_seen_is_kept_and_last_seen_only_moves_forward(clean_db: Any) -> None:
    write_staging(clean_db, hourly_file([12]), "noon")
    write_staging(clean_db, hourly_file([6]), "early")  # older data arriving late
    records, _, _ = clean_db.execute_query(
        "MATCH (n:Role {uid: $uid}) RETURN n.first_seen AS first, n.last_seen AS last", uid=ADMIN.uid
    )
    assert records[0]["first"].to_native() == at(6)
    assert records[0]["last"].to_native() == at(12)


def test_inventory_relationships_are_merged_once_with_properties_overwritten(clean_db: Any) -> None:
    write_staging(clean_db, hourly_file([9]), "a")
    write_staging(clean_db, hourly_file([10], name="alice.smith"), "b")
    records, _, _ = clean_db.execute_query(
        "MATCH (u:User)-[r:CAN_ASSUME]->(:Role) RETURN count(r) AS n, r.via AS via, u.name AS name"
    )
    assert (records[0]["n"], records[0]["via"], records[0]["name"]) == (1, "trust-policy", "alice.smith")


def test_every_load_is_recorded_as_an_ingested_batch(clean_db: Any) -> None:
    write_staging(clean_db, hourly_file([9, 10]), "batch-a")
    records, _, _ = clean_db.execute_query(
        "MATCH (b:IngestedBatch) RETURN b.batch_id AS id, b.events AS events, b.source AS source"
    )
    assert [(r["id"], r["events"], r["source"]) for r in records] == [("batch-a", 4, "cloudtrail")]


def test_files_staged_together_keep_their_shares_so_reloading_one_alone_changes_nothing(clean_db: Any) -> None:
    together = Staging("cloudtrail")
    for batch, hours in (("hour-09", [9, 9]), ("hour-10", [10])):
        together.begin_batch(batch, f"{batch}.json.gz")
        for hour in hours:
            together.add(Edge("ACCESS", ADMIN, BUCKET, time=at(hour), action="s3:GetObject"))
    write_staging(clean_db, together)
    alone = Staging("cloudtrail")
    alone.begin_batch("hour-10", "hour-10.json.gz")
    alone.add(Edge("ACCESS", ADMIN, BUCKET, time=at(10), action="s3:GetObject"))
    write_staging(clean_db, alone)
    records, _, _ = clean_db.execute_query(
        "MATCH ()-[r:ACCESS]->() RETURN r.count AS count, r.batches AS batches, r.batch_count AS shares"
    )
    assert [(r["count"], r["batches"], r["shares"]) for r in records] == [(3, ["hour-09", "hour-10"], [2, 1])]
    records, _, _ = clean_db.execute_query("MATCH (b:IngestedBatch) RETURN b.path AS path ORDER BY path")
    assert [r["path"] for r in records] == ["hour-09.json.gz", "hour-10.json.gz"]


def test_an_activity_relationship_another_writer_made_is_taken_over_not_a_failed_file(clean_db: Any) -> None:
    """A script's MERGE of the same type and window leaves no batches, actions or sources: the load counts its own
    events there instead of failing the file on ``range()`` of a null."""
    write_staging(clean_db, hourly_file([9]), "seed")  # the endpoints
    clean_db.execute_query("MATCH ()-[r:ACCESS]->() DELETE r")
    clean_db.execute_query(
        "MATCH (a:Role {uid: $a}), (b:Bucket {uid: $b}) "
        "MERGE (a)-[r:ACCESS {window: datetime('2026-03-02T00:00:00Z')}]->(b) SET r.count = 99",
        a=ADMIN.uid, b=BUCKET.uid,
    )
    write_staging(clean_db, hourly_file([9, 10]), "hour-09")
    records, _, _ = clean_db.execute_query(
        "MATCH ()-[r:ACCESS]->() RETURN count(r) AS n, r.count AS count, r.batches AS batches, "
        "r.actions AS actions, r.sources AS sources"
    )
    assert [(r["n"], r["count"], r["batches"], r["actions"], r["sources"]) for r in records] == [
        (1, 2, ["hour-09"], ["s3:GetObject"], ["cloudtrail"])]


def test_files_written_together_share_one_ingest_time(clean_db: Any) -> None:
    together = Staging("cloudtrail")
    for batch in ("hour-09", "hour-10"):
        together.begin_batch(batch, f"{batch}.json.gz")
        together.add(Edge("ACCESS", ADMIN, BUCKET, time=at(9), action="s3:GetObject"))
    before = datetime.now(UTC)
    write_staging(clean_db, together)
    records, _, _ = clean_db.execute_query(
        "MATCH (b:IngestedBatch) RETURN b.first_ingested AS first, b.last_ingested AS last ORDER BY b.batch_id")
    times = {value.to_native() for r in records for value in (r["first"], r["last"])}
    assert len(records) == 2 and len(times) == 1 and before <= times.pop() <= datetime.now(UTC)
