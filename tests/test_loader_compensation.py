"""All or nothing per file when Neo4j itself fails part-way through a multi-transaction write (issue #12).

The stagings here bypass staging's validation: one row carries a property value Neo4j refuses (a nested map, a
mixed list), so a *later* transaction of the write fails in the server after earlier ones committed.  The graph
must be what it was before (the ``graph_state`` checksum: every node and relationship, every property), on an
empty database and over data that other files, or an earlier version of the same batch, wrote first.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from neo4j.exceptions import ServiceUnavailable
from test_ingest_validation import graph_state

from gnnsec.graphdb import loader
from gnnsec.graphdb.loader import WriteFailed, write_staging
from gnnsec.ingest.base import Edge, Node, NodeRef
from gnnsec.ingest.staging import Staging

pytestmark = pytest.mark.integration

ACCOUNT = "111122223333"
BUCKET = NodeRef("Bucket", "arn:aws:s3:::payroll")
SMALL = 7  # rows per transaction: the stagings below take 15 to 30 transactions


def user(n: int) -> NodeRef:
    return NodeRef("User", f"arn:aws:iam::{ACCOUNT}:user/u{n:02d}")


def role(n: int) -> NodeRef:
    return NodeRef("Role", f"arn:aws:iam::{ACCOUNT}:role/r{n % 3}")


def ip(n: int) -> NodeRef:
    return NodeRef("IP", f"10.0.0.{n}")


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def estate(batch: str, times: list[tuple[int, int]], *, users: int = 12, version: str = "v1") -> Staging:
    """One file: users with properties, inventory (CAN_ASSUME), and activity with per-batch shares of count,
    failed, bytes and packets, at ``times`` ((day, hour) pairs: days are windows)."""
    staging = Staging("cloudtrail")
    staging.begin_batch(batch, f"/logs/{batch}.json")
    for n in range(users):
        props = {"name": f"u{n}-{version}", "tags": [version, "iam"], "mfa": version == "v2",
                 "rotated": datetime(2025, 1, 1 + n, int(version[1:]), tzinfo=UTC), "since": date(2024, 1, 1 + n)}
        staging.add(Node("User", user(n).uid, props, at(*times[0])))
        staging.add(Edge("CAN_ASSUME", user(n), role(n), {"via": f"trust-{version}"}))
        for day, hour in times:
            staging.add(Edge("ASSUMES_ROLE", user(n), role(n), time=at(day, hour), action=f"sts:AssumeRole-{version}"))
            staging.add(Edge("ACCESS", role(n), BUCKET, {"failed": hour % 2 == 0}, time=at(day, hour),
                             action=f"s3:GetObject-{version}"))
            staging.add(Edge("CONNECTS_TO", ip(n), ip(n + 1), {"bytes": 100 * hour, "packets": hour},
                             time=at(day, hour), action="flow"))
    return staging


def poisoned(staging: Staging, where: str) -> Staging:
    """``staging`` with one value Neo4j refuses, in a row written late: the last User node, or the last
    ASSUMES_ROLE (activity) or CAN_ASSUME (inventory, the very last transaction) relationship."""
    if where == "node":
        node = [n for n in staging.nodes.values() if n.label == "User"][-1]
        node.props["profile"] = {"nested": "map"}
    else:
        edge = [e for e in staging.edges.values() if e.type == where][-1]
        edge.props["labels"] = [1, "mixed"]
    return staging


FIRST = [(2, 9), (2, 10)]
SECOND = [(2, 6), (2, 14), (3, 8)]  # earlier and later in day 2's window (first/last seen widen), and a new window

BEFORE = {
    "empty database": [],
    "another file first": [("file-a", FIRST, 10, "v1")],
    "an earlier version of this batch": [("file-a", FIRST, 10, "v1"), ("file-b", [(2, 11)], 11, "v0")],
}


def load_before(driver: Any, case: str) -> None:
    for batch, times, users, version in BEFORE[case]:
        write_staging(driver, estate(batch, times, users=users, version=version))


def batch_ids(driver: Any) -> list[str]:
    records, _, _ = driver.execute_query("MATCH (b:IngestedBatch) RETURN b.batch_id AS id ORDER BY id")
    return [r["id"] for r in records]


@pytest.mark.parametrize("where", ["node", "ASSUMES_ROLE", "CAN_ASSUME"])
@pytest.mark.parametrize("case", list(BEFORE))
def test_a_write_neo4j_fails_part_way_leaves_the_graph_as_it_was(clean_db: Any, case: str, where: str) -> None:
    load_before(clean_db, case)
    before, batches = graph_state(clean_db), batch_ids(clean_db)
    with pytest.raises(WriteFailed) as failure:
        write_staging(clean_db, poisoned(estate("file-b", SECOND, version="v2"), where), batch_size=SMALL)
    assert failure.value.undone and failure.value.written >= 1 and failure.value.left == 0
    assert graph_state(clean_db) == before
    assert batch_ids(clean_db) == batches  # no :IngestedBatch for the failed file (unless it was there before)
    assert not_as_loaded(clean_db) == 0


def not_as_loaded(driver: Any) -> int:
    """Times that are not what ``datetime({epochMillis})`` stores.  The checksum compares what the driver reads,
    which cannot tell offset ``Z`` from the zone ``UTC``; Cypher's ``=`` (and so the loader's MERGE on ``window``)
    can: a restored time must be stored as the loader stores it."""
    exact = " OR ".join(f"(x.{k} IS NOT NULL AND x.{k} <> datetime({{epochMillis: x.{k}.epochMillis}}))"
                        for k in ("first_seen", "last_seen", "window", "rotated"))
    nodes, _, _ = driver.execute_query(f"MATCH (x) WHERE {exact} RETURN count(x) AS n")
    rels, _, _ = driver.execute_query(f"MATCH ()-[x]->() WHERE {exact} RETURN count(x) AS n")
    return int(nodes[0]["n"] + rels[0]["n"])


def test_the_error_names_the_file_and_says_its_writes_were_undone(clean_db: Any) -> None:
    load_before(clean_db, "another file first")
    with pytest.raises(WriteFailed) as failure:
        write_staging(clean_db, poisoned(estate("file-b", SECOND, version="v2"), "CAN_ASSUME"), batch_size=SMALL)
    error = failure.value
    message = str(error)
    assert "/logs/file-b.json (batch file-b)" in message
    assert f"in transaction {error.transactions} of {error.transactions}" in message  # the last one failed
    assert f"the {error.written} transaction(s) already committed were undone, nothing of it is in the graph" in message
    assert "Neo.ClientError" in message  # what Neo4j said
    assert error.batches == ["file-b"] and error.written == error.transactions - 1 > 1
    assert type(error.__cause__).__module__.startswith("neo4j")  # chained from the server's error


def test_a_multi_transaction_write_gives_the_graph_of_a_one_transaction_write(clean_db: Any) -> None:
    ignore = ("first_ingested", "last_ingested")
    load_before(clean_db, "an earlier version of this batch")
    write_staging(clean_db, estate("file-b", SECOND, version="v2"))  # one transaction
    one = graph_state(clean_db, ignore)
    clean_db.execute_query("MATCH (n) DETACH DELETE n")
    load_before(clean_db, "an earlier version of this batch")
    write_staging(clean_db, estate("file-b", SECOND, version="v2"), batch_size=SMALL)
    assert graph_state(clean_db, ignore) == one


def test_a_change_another_write_made_meanwhile_is_left_and_counted(clean_db: Any) -> None:
    """Compare-and-restore: a property another ingest set after this write did is not put back."""
    load_before(clean_db, "another file first")
    uid = user(0).uid

    def meanwhile(rows: int) -> None:  # runs after each committed transaction: another writer's change
        clean_db.execute_query("MATCH (u:User {uid: $uid}) SET u.name = 'renamed meanwhile'", uid=uid)

    with pytest.raises(WriteFailed) as failure:
        write_staging(clean_db, poisoned(estate("file-b", SECOND, version="v2"), "CAN_ASSUME"), batch_size=SMALL,
                      progress=meanwhile)
    assert failure.value.undone and failure.value.left == 1
    assert "except 1 change(s) that another write made" in str(failure.value)
    records, _, _ = clean_db.execute_query("MATCH (u:User {uid: $uid}) RETURN u.name AS name, u.tags AS tags",
                                           uid=uid)
    assert (records[0]["name"], records[0]["tags"]) == ("renamed meanwhile", ["v1", "iam"])  # tags: put back


def test_if_the_undo_fails_too_the_error_says_so_and_re_running_the_ingest_repairs_the_graph(
        clean_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ignore = ("first_ingested", "last_ingested")
    load_before(clean_db, "another file first")
    write_staging(clean_db, estate("file-b", SECOND, version="v2"))
    whole = graph_state(clean_db, ignore)
    clean_db.execute_query("MATCH (n) DETACH DELETE n")
    load_before(clean_db, "another file first")

    def server_gone(*args: Any, **kwargs: Any) -> Any:
        raise ServiceUnavailable("Couldn't connect to localhost:7687")

    monkeypatch.setattr(loader, "undo", server_gone)  # Python side only: the write and its failure are real
    with pytest.raises(WriteFailed) as failure:
        write_staging(clean_db, poisoned(estate("file-b", SECOND, version="v2"), "ASSUMES_ROLE"), batch_size=SMALL)
    assert not failure.value.undone
    message = str(failure.value)
    assert "undoing the" in message and "failed too (Couldn't connect" in message
    assert "the graph holds part of it. Re-run the same ingest" in message
    assert graph_state(clean_db, ignore) != whole  # half-written
    monkeypatch.undo()
    write_staging(clean_db, estate("file-b", SECOND, version="v2"), batch_size=SMALL)  # the same file, re-run
    assert graph_state(clean_db, ignore) == whole



def meanwhile_writes(driver: Any, times: list[tuple[int, int]]) -> Any:
    """A progress callback: once the watched write has committed user 0's ASSUMES_ROLE relationships, another file
    (file-c, user 0 only) is ingested after every committed transaction: a concurrent ingest touching the same nodes
    and relationships after this write did (repeating it changes nothing: it replaces its own shares)."""
    def meanwhile(rows: int) -> None:
        records, _, _ = driver.execute_query(
            "MATCH (:User {uid: $uid})-[r:ASSUMES_ROLE]->() WHERE 'file-b' IN r.batches RETURN count(r) AS n",
            uid=user(0).uid)
        if records[0]["n"]:
            write_staging(driver, estate("file-c", times, users=1, version="v3"))
    return meanwhile


def test_shares_another_ingest_added_meanwhile_stay_and_the_totals_are_summed_again(clean_db: Any) -> None:
    """The undo takes out exactly this write's shares and leaves the other file's; what the other file changed
    again (name, tags, via) stays.  Only ``actions`` cannot be told apart (they have no per-batch record)."""
    ignore = ("first_ingested", "last_ingested", "actions")
    other = [(2, 10)]  # inside file-a's span: first/last seen as file-a left them
    load_before(clean_db, "another file first")
    write_staging(clean_db, estate("file-c", other, users=1, version="v3"))
    reference = graph_state(clean_db, ignore)  # file-a and file-c, without the failed write
    clean_db.execute_query("MATCH (n) DETACH DELETE n")
    load_before(clean_db, "another file first")
    with pytest.raises(WriteFailed) as failure:
        write_staging(clean_db, poisoned(estate("file-b", SECOND, version="v2"), "CAN_ASSUME"), batch_size=SMALL,
                      progress=meanwhile_writes(clean_db, other))
    assert failure.value.undone and failure.value.left > 0
    assert graph_state(clean_db, ignore) == reference
    records, _, _ = clean_db.execute_query(
        "MATCH (:User {uid: $uid})-[r:ASSUMES_ROLE]->() RETURN r.batches AS b, r.batch_count AS s, r.count AS n",
        uid=user(0).uid)
    assert [(r["b"], r["s"], r["n"]) for r in records] == [(["file-a", "file-c"], [2, 1], 3)]


def test_a_relationship_the_write_created_that_another_file_shares_meanwhile_keeps_that_share(clean_db: Any) -> None:
    with pytest.raises(WriteFailed) as failure:
        write_staging(clean_db, poisoned(estate("file-b", SECOND, version="v2"), "CAN_ASSUME"), batch_size=SMALL,
                      progress=meanwhile_writes(clean_db, [(3, 9)]))
    assert failure.value.undone and failure.value.left > 0
    records, _, _ = clean_db.execute_query(
        "MATCH (:User {uid: $uid})-[r:ASSUMES_ROLE]->() RETURN r.batches AS b, r.batch_count AS s, r.count AS n",
        uid=user(0).uid)
    assert [(r["b"], r["s"], r["n"]) for r in records] == [(["file-c"], [1], 1)]  # day 2 (only ours) is gone
    assert batch_ids(clean_db) == ["file-c"]


def test_times_not_written_by_gnnsec_are_put_back_exactly(clean_db: Any) -> None:
    """Before-image times that are not whole milliseconds at offset Z (another tool's) come back as they were."""
    first, last = "datetime('2026-03-02T10:00:00.123456789+01:00')", "datetime('2026-03-02T12:00[Europe/Paris]')"
    clean_db.execute_query(f"CREATE (:User {{uid: $uid, name: 'imported', first_seen: {first}, last_seen: {last}, "
                           "born: date('1990-01-01')})", uid=user(0).uid)
    before = graph_state(clean_db)
    with pytest.raises(WriteFailed):
        write_staging(clean_db, poisoned(estate("file-b", SECOND, version="v2"), "CAN_ASSUME"), batch_size=SMALL)
    assert graph_state(clean_db) == before
    same, _, _ = clean_db.execute_query(f"MATCH (u:User) RETURN u.first_seen = {first} AND u.last_seen = {last} AS ok")
    assert [r["ok"] for r in same] == [True]


def test_a_write_of_one_transaction_reads_no_before_image(clean_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def unexpected(*args: Any) -> Any:
        raise AssertionError("a one-transaction write needs no undo log")

    monkeypatch.setattr(loader, "read_before", unexpected)
    write_staging(clean_db, estate("file-b", SECOND, version="v2"))
    assert batch_ids(clean_db) == ["file-b"]


def test_files_staged_together_are_undone_together_and_named(clean_db: Any) -> None:
    load_before(clean_db, "another file first")
    before = graph_state(clean_db)
    together = estate("hour-14", [(2, 14)], version="v2")
    later = estate("hour-15", [(2, 15), (3, 8)], version="v2")
    together.merge(later)  # what a parallel ingest does with consecutive files of one source
    with pytest.raises(WriteFailed) as failure:
        write_staging(clean_db, poisoned(together, "CAN_ASSUME"), batch_size=SMALL)
    assert "writing 2 files staged together (/logs/hour-14.json … /logs/hour-15.json) failed" in str(failure.value)
    assert failure.value.batches == ["hour-14", "hour-15"] and failure.value.undone
    assert graph_state(clean_db) == before


def test_before_images_and_undo_send_their_rows_inside_a_map(clean_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A list parameter's size bucket is part of Neo4j's plan cache key (``gnnsec.graphdb.loader``'s module doc): the
    before-image reads and the undo, like the loader's writes, pass no list at the top, so each text is one plan."""
    from neo4j import ManagedTransaction

    sent: list[dict[str, Any]] = []
    run = ManagedTransaction.run

    def recording(self: ManagedTransaction, query: Any, parameters: Any = None, **kwargs: Any) -> Any:
        sent.append({**(parameters or {}), **kwargs})
        return run(self, query, parameters, **kwargs)

    load_before(clean_db, "an earlier version of this batch")
    monkeypatch.setattr(ManagedTransaction, "run", recording)
    with pytest.raises(WriteFailed) as failure:
        write_staging(clean_db, poisoned(estate("file-b", SECOND, version="v2"), "CAN_ASSUME"), batch_size=SMALL)
    assert failure.value.undone and len(sent) > 30  # writes, before images and the undo's reads and restores
    assert all(not isinstance(value, list) for parameters in sent for value in parameters.values())
