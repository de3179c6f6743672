"""The master schema is the contract between ingest, Neo4j and the GNN: these pin it down (no database needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnnsec import schema
from gnnsec.graphdb.session import schema_statements

REPO = Path(__file__).resolve().parents[1]


def test_cypher_schema_file_is_exactly_what_schema_cypher_generates() -> None:
    assert (REPO / "cypher" / "schema.cypher").read_text(encoding="utf-8") == schema.schema_cypher()


def test_the_statements_applied_to_neo4j_are_those_of_the_file_without_comments() -> None:
    statements = schema_statements()
    assert all(not s.startswith("//") and not s.endswith(";") for s in statements)
    assert "CREATE CONSTRAINT user_uid IF NOT EXISTS FOR (n:User) REQUIRE n.uid IS UNIQUE" in statements
    assert all(f"FOR (n:{label}) REQUIRE n.uid IS UNIQUE" in "\n".join(statements) for label in schema.NODE_LABELS)


def test_there_are_15_labels_and_20_relationship_types() -> None:
    assert len(schema.NODE_LABELS) == schema.NUM_LABELS == 15
    assert len(set(schema.NODE_LABELS)) == 15
    assert len(schema.RELATION_NAMES) == schema.NUM_RELATIONS == 20
    assert len(set(schema.RELATION_NAMES)) == 20


def test_relation_ids_are_stable() -> None:
    assert schema.RELATION_NAMES == (
        "CONTAINS",
        "RUNS_ON",
        "DEPLOYED_ON",
        "HAS_VULN",
        "GRANTS_ACCESS",
        "CAN_ASSUME",
        "HAS_IP",
        "ROUTES_TO",
        "TRIGGERS",
        "ASSUMES_ROLE",
        "ACCESS",
        "START_VM",
        "STOP_VM",
        "RESTART_VM",
        "MODIFIES",
        "AUTHENTICATES_FROM",
        "CONNECTS_TO",
        "CROSS_CLOUD_ACCESS",
        "LATERAL_MOVEMENT",
        "EXPLOITS",
    )
    assert [schema.relation_id(name) for name in schema.RELATION_NAMES] == list(range(20))
    assert schema.relation_id("CONTAINS") == 0
    assert schema.relation_id("EXPLOITS") == 19


def test_label_ids_follow_the_label_order() -> None:
    assert [schema.label_id(label) for label in schema.NODE_LABELS] == list(range(15))
    assert schema.label_id("User") == 0
    assert schema.label_id("Gateway") == 14


@pytest.mark.parametrize(
    ("source", "rel_type", "target"),
    [
        ("CloudAccount", "CONTAINS", "Bucket"),
        ("Container", "RUNS_ON", "VM"),
        ("VM", "HAS_VULN", "CVE"),
        ("User", "ASSUMES_ROLE", "Role"),
        ("IP", "CONNECTS_TO", "Database"),
        ("Role", "ACCESS", "Bucket"),
        ("IP", "EXPLOITS", "VM"),
    ],
)
def test_allowed_pairs_validate(source: str, rel_type: str, target: str) -> None:
    schema.validate_edge(source, rel_type, target)


@pytest.mark.parametrize(
    ("source", "rel_type", "target", "message"),
    [
        ("CVE", "HAS_VULN", "VM", r"does not allow \(CVE\)-\[:HAS_VULN\]->\(VM\)"),
        ("Bucket", "ASSUMES_ROLE", "Role", r"does not allow \(Bucket\)-\[:ASSUMES_ROLE\]->\(Role\)"),
        ("User", "START_VM", "Bucket", r"does not allow \(User\)-\[:START_VM\]->\(Bucket\)"),
        ("User", "OWNS", "Bucket", r"unknown relationship type 'OWNS'"),
        ("Person", "ACCESS", "Bucket", r"unknown node label 'Person'"),
    ],
)
def test_disallowed_edges_raise_schema_error(source: str, rel_type: str, target: str, message: str) -> None:
    with pytest.raises(schema.SchemaError, match=message):
        schema.validate_edge(source, rel_type, target)


def test_every_relationship_type_has_at_least_one_pair_of_known_labels() -> None:
    for rel in schema.RELATION_TYPES:
        assert rel.pairs, rel.name
        assert all(schema.is_label(s) and schema.is_label(t) for s, t in rel.pairs), rel.name


def test_every_label_appears_in_some_pair() -> None:
    used = {label for rel in schema.RELATION_TYPES for pair in rel.pairs for label in pair}
    assert used == set(schema.NODE_LABELS)
