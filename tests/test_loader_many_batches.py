"""Aggregated relationships fed by hundreds of files in one staging (CloudTrail's 5-minute files per region): the
per-batch bookkeeping of ``gnnsec.graphdb.loader.activity_relationship_query`` gives what the files give one by one,
replaces exactly the shares of re-ingested files (also mixed with new files in one staging), and saturates."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gnnsec.graphdb.loader import INT64_MAX, WriteFailed, write_staging
from gnnsec.ingest.base import Edge, Node, NodeRef
from gnnsec.ingest.staging import Staging

pytestmark = pytest.mark.integration

ROLE = NodeRef("Role", "arn:aws:iam::111122223333:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig")
BUCKET = NodeRef("Bucket", "arn:aws:s3:::config-bucket-111122223333")
SRC = NodeRef("IP", "10.0.0.1")
DST = NodeRef("IP", "10.0.0.2")
ALICE = NodeRef("User", "arn:aws:iam::111122223333:user/alice")
DAY = datetime(2026, 3, 2, tzinfo=UTC)


def batch(n: int) -> str:
    return f"file-{n:04d}"


def events(n: int, version: int = 0) -> int:
    return 1 + (n * 7 + version * 3) % 5


def failed(n: int, version: int = 0) -> int:
    return 1 if (n + version) % 3 == 0 else 0


def volume(n: int, version: int = 0) -> int:
    return 1000 * n + 17 * version


def stage(files: Iterable[int], versions: dict[int, int] | None = None, *, bytes_of: int | None = None,
          poison: bool = False) -> Staging:
    """One staging of the files ``files`` (in that order), each its own batch: ``events(n)`` calls by a service role
    on a bucket (``failed(n)`` of them denied) and one flow of ``volume(n)`` bytes, all in day 2's window.
    ``versions`` gives a file other content under the same batch id; ``poison`` adds an inventory relationship
    Neo4j refuses, written last."""
    versions = versions or {}
    staging = Staging("cloudtrail")
    for n in files:
        v = versions.get(n, 0)
        when = DAY + timedelta(minutes=n)
        staging.begin_batch(batch(n), f"/logs/{n:04d}.json.gz")
        for ref in (ROLE, BUCKET, SRC, DST):
            staging.add(Node(ref.label, ref.uid, {"name": ref.uid[-12:]}, when))
        for k in range(events(n, v)):
            staging.add(Edge("ACCESS", ROLE, BUCKET, {"failed": k < failed(n, v)}, time=when + timedelta(seconds=k),
                             action=f"s3:GetBucketAcl{n % 4}"))
        staging.add(Edge("CONNECTS_TO", SRC, DST, {"bytes": volume(n, v) if bytes_of is None else bytes_of,
                                                   "packets": n + v}, time=when, action="flow"))
    if poison:
        staging.add(Node(ALICE.label, ALICE.uid, {"name": "alice"}, DAY))
        staging.add(Edge("CAN_ASSUME", ALICE, ROLE, {"via": "trust-policy"}))
        next(e for e in staging.edges.values() if e.type == "CAN_ASSUME").props["labels"] = [1, "mixed"]  # unchecked
    return staging


def relationships(driver: Any) -> list[tuple[str, str, str, dict[str, Any]]]:
    records, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN a.uid AS a, type(r) AS t, b.uid AS b, properties(r) AS p ORDER BY a, t, b")
    return [(r["a"], r["t"], r["b"], r["p"]) for r in records]


def activity(driver: Any, rel_type: str) -> dict[str, Any]:
    records, _, _ = driver.execute_query(f"MATCH ()-[r:{rel_type}]->() RETURN properties(r) AS p")
    assert len(records) == 1
    return dict(records[0]["p"])


def test_hundreds_of_files_in_one_staging_write_what_they_write_one_by_one(clean_db: Any) -> None:
    files = range(240)
    for n in files:
        write_staging(clean_db, stage([n]))
    one_by_one = relationships(clean_db)
    clean_db.execute_query("MATCH (n) DETACH DELETE n")
    write_staging(clean_db, stage(files))
    assert relationships(clean_db) == one_by_one
    access = activity(clean_db, "ACCESS")
    assert access["batches"] == [batch(n) for n in files]
    assert access["batch_count"] == [events(n) for n in files]
    assert access["count"] == sum(events(n) for n in files)
    assert access["failed"] == sum(failed(n) for n in files)


def test_re_ingesting_known_files_with_new_ones_in_one_staging_adds_only_the_new(clean_db: Any) -> None:
    write_staging(clean_db, stage(range(240)))
    everything = relationships(clean_db)
    clean_db.execute_query("MATCH (n) DETACH DELETE n")
    write_staging(clean_db, stage(range(160)))
    write_staging(clean_db, stage(range(100, 240)))  # 60 known files and 80 new ones
    assert relationships(clean_db) == everything
    write_staging(clean_db, stage([*range(30, 60), *range(200, 220), 5]))  # a subset again, out of order
    assert relationships(clean_db) == everything


def test_mixed_known_and_new_batches_get_their_exact_shares(clean_db: Any) -> None:
    write_staging(clean_db, stage(range(200)))
    # new files first and interleaved with known ones whose content changed (same batch id, other shares)
    again = [205, 150, 200, 151, 3, 209, 199]
    versions = {150: 1, 151: 2, 3: 1, 199: 4}
    write_staging(clean_db, stage(again, versions))
    order = [*range(200), 205, 200, 209]
    v = {n: versions.get(n, 0) for n in order}
    access, flow = activity(clean_db, "ACCESS"), activity(clean_db, "CONNECTS_TO")
    assert access["batches"] == flow["batches"] == [batch(n) for n in order]
    assert access["batch_count"] == [events(n, v[n]) for n in order]
    assert access["batch_failed"] == [failed(n, v[n]) for n in order]
    assert flow["batch_bytes"] == [volume(n, v[n]) for n in order]
    assert flow["batch_packets"] == [n + v[n] for n in order]
    assert access["count"] == sum(events(n, v[n]) for n in order)
    assert access["failed"] == sum(failed(n, v[n]) for n in order)
    assert flow["bytes"] == sum(volume(n, v[n]) for n in order)
    assert flow["count"] == len(order)


def test_totals_saturate_and_come_back_when_shares_are_replaced(clean_db: Any) -> None:
    write_staging(clean_db, stage(range(3), bytes_of=2**61))
    write_staging(clean_db, stage(range(3, 250), bytes_of=2**55))  # each staging's sum is within int64 (checked)
    flow = activity(clean_db, "CONNECTS_TO")
    assert flow["batch_bytes"] == [2**61] * 3 + [2**55] * 247
    assert flow["bytes"] == INT64_MAX  # (3 × 8 + 247) × 2**55 is past it
    write_staging(clean_db, stage(range(3, 250), bytes_of=1))  # the same files again, now small
    flow = activity(clean_db, "CONNECTS_TO")
    assert flow["batch_bytes"] == [2**61] * 3 + [1] * 247
    assert flow["bytes"] == 3 * 2**61 + 247


def test_a_failed_many_batch_write_is_undone_exactly(clean_db: Any) -> None:
    write_staging(clean_db, stage(range(200)))
    before = relationships(clean_db)
    with pytest.raises(WriteFailed) as failure:  # one row per transaction: the activity commits, then is undone
        write_staging(clean_db, stage([*range(150, 300)], {n: 1 for n in range(150, 200)}, poison=True),
                      batch_size=1)
    assert failure.value.undone and failure.value.left == 0
    assert relationships(clean_db) == before
