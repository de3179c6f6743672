"""The loader sends few distinct Cypher texts: one per node label and one per relationship type (plus the batch
record), each planned with index seeks, and rows inside a map: planning them was most of a small first ingest
(``gnnsec.graphdb.loader``'s module doc has the figures)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from neo4j import ManagedTransaction

from gnnsec.graphdb import loader
from gnnsec.graphdb.loader import write_staging
from gnnsec.ingest.base import Edge, Node, NodeRef
from gnnsec.ingest.staging import Staging

pytestmark = pytest.mark.integration

ACCOUNT = NodeRef("CloudAccount", "111122223333")
ALICE = NodeRef("User", "arn:aws:iam::111122223333:user/alice")
ADMIN = NodeRef("Role", "arn:aws:iam::111122223333:role/admin")
BUCKET = NodeRef("Bucket", "arn:aws:s3:::payroll")
FUNCTION = NodeRef("Function", "arn:aws:lambda:us-east-1:111122223333:function:etl")
VM = NodeRef("VM", "i-0123456789abcdef0")
SCANS = ("AllNodesScan", "NodeByLabelScan", "AllRelationshipsScan", "DirectedAllRelationshipsScan",
         "UndirectedAllRelationshipsScan", "RelationshipTypeScan")


def at(hour: int) -> datetime:
    return datetime(2026, 3, 2, hour, tzinfo=UTC)


def estate() -> Staging:
    """Like a CloudTrail export: two principals acting on several resource labels, an account holding them."""
    staging = Staging("cloudtrail")
    for ref in (ACCOUNT, ALICE, ADMIN, BUCKET, FUNCTION, VM):
        staging.add(Node(ref.label, ref.uid, {"name": ref.uid[-8:]}, at(8)))
    for member in (ALICE, ADMIN, BUCKET, FUNCTION, VM):
        staging.add(Edge("CONTAINS", ACCOUNT, member))
    for hour in (9, 10):
        staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=at(hour), action="sts:AssumeRole"))
        for principal in (ALICE, ADMIN):
            staging.add(Edge("ACCESS", principal, BUCKET, time=at(hour), action="s3:GetObject"))
            staging.add(Edge("ACCESS", principal, FUNCTION, time=at(hour), action="lambda:GetFunction"))
            staging.add(Edge("MODIFIES", principal, BUCKET, time=at(hour), action="s3:PutObject"))
            staging.add(Edge("START_VM", principal, VM, time=at(hour), action="ec2:StartInstances"))
    return staging


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every (text, parameters) the loader's transactions run."""
    calls: list[tuple[str, dict[str, Any]]] = []
    run = ManagedTransaction.run

    def recording(self: ManagedTransaction, query: Any, parameters: Any = None, **kwargs: Any) -> Any:
        calls.append((str(query), {**(parameters or {}), **kwargs}))
        return run(self, query, parameters, **kwargs)

    monkeypatch.setattr(ManagedTransaction, "run", recording)
    yield calls


def test_one_text_per_label_and_per_relationship_type(clean_db: Any, sent: list[tuple[str, dict[str, Any]]]) -> None:
    staging = estate()
    write_staging(clean_db, staging, "batch-a")
    labels = {node.label for node in staging.nodes.values()}
    types = {edge.type for edge in staging.edges.values()}
    pairs = {(edge.src.label, edge.type, edge.dst.label) for edge in staging.edges.values()}
    assert (len(labels), len(types), len(pairs)) == (6, 5, 14)  # CONTAINS 5 pairs, ACCESS 4, …
    texts = {query for query, _ in sent}
    assert len(sent) == len(labels) + len(pairs) + 1  # a run per label and per pair, and the batch record
    assert len(texts) == len(labels) + len(types) + 1  # … but only a text per label and per type
    # No list parameter at the top: a list's size bucket is part of Neo4j's plan cache key.
    assert all(not isinstance(value, list) for _, parameters in sent for value in parameters.values())


def test_every_text_is_planned_with_index_seeks(clean_db: Any, sent: list[tuple[str, dict[str, Any]]]) -> None:
    write_staging(clean_db, estate(), "batch-a")
    for query, parameters in {query: parameters for query, parameters in sent}.items():
        with clean_db.session() as session:
            plan = session.run("EXPLAIN " + query, parameters).consume().plan
        operators = []
        stack = [plan]
        while stack:
            operator = stack.pop()
            operators.append(operator["operatorType"].split("@")[0])
            stack.extend(operator.get("children", []))
        assert not set(operators) & set(SCANS), (query, operators)
        assert any("IndexSeek" in operator for operator in operators), (query, operators)


def test_a_relationship_joins_only_nodes_of_its_own_labels(clean_db: Any) -> None:
    """One text matches several labels at an end; a node of another label with the same uid is not an endpoint."""
    twin_user, twin_bucket = NodeRef("User", ADMIN.uid), NodeRef("Bucket", FUNCTION.uid)
    staging = estate()
    staging.add(Node("User", twin_user.uid, {"name": "twin"}, at(8)))
    staging.add(Node("Bucket", twin_bucket.uid, {"name": "twin"}, at(8)))
    write_staging(clean_db, staging, "batch-a")
    records, _, _ = clean_db.execute_query(
        "MATCH (a)-[r]->(b) RETURN labels(a)[0] AS a, type(r) AS t, labels(b)[0] AS b, sum(r.count) AS n, "
        "count(r) AS rels ORDER BY a, t, b")
    assert [tuple(record.values()) for record in records] == [
        ("CloudAccount", "CONTAINS", "Bucket", 0, 1),
        ("CloudAccount", "CONTAINS", "Function", 0, 1),
        ("CloudAccount", "CONTAINS", "Role", 0, 1),
        ("CloudAccount", "CONTAINS", "User", 0, 1),
        ("CloudAccount", "CONTAINS", "VM", 0, 1),
        ("Role", "ACCESS", "Bucket", 2, 1),
        ("Role", "ACCESS", "Function", 2, 1),
        ("Role", "MODIFIES", "Bucket", 2, 1),
        ("Role", "START_VM", "VM", 2, 1),
        ("User", "ACCESS", "Bucket", 2, 1),
        ("User", "ACCESS", "Function", 2, 1),
        ("User", "ASSUMES_ROLE", "Role", 2, 1),
        ("User", "MODIFIES", "Bucket", 2, 1),
        ("User", "START_VM", "VM", 2, 1),
    ]


def test_a_relationship_type_with_many_rows_keeps_a_text_per_label_pair(
        clean_db: Any, sent: list[tuple[str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Above ``SHARED_TEXT_ROWS`` the label alternation's cost per row outweighs a plan: exact texts again."""
    monkeypatch.setattr(loader, "SHARED_TEXT_ROWS", 3)  # CONTAINS has 5 rows, ACCESS 4, the others at most 2
    staging = estate()
    write_staging(clean_db, staging, "batch-a")
    texts = {query for query, _ in sent}
    access = {query for query in texts if ":ACCESS" in query}
    assert len(access) == 4 and all("IN labels(" not in query for query in access)
    assert len({query for query in texts if ":START_VM" in query}) == 1
    assert len(texts) == 6 + 5 + 4 + 3 + 1  # labels, CONTAINS pairs (5 rows), ACCESS pairs, 3 small types, batch
