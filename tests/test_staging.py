"""Staging validates records against the schema and aggregates activity per window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gnnsec.ingest.base import Edge, Node, NodeRef
from gnnsec.ingest.staging import Staging, clean_properties, window_start
from gnnsec.schema import SchemaError

ALICE = NodeRef("User", "arn:aws:iam::111122223333:user/alice")
ADMIN = NodeRef("Role", "arn:aws:iam::111122223333:role/admin")


def at(hour: int, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def test_events_in_one_day_fold_into_one_relationship_with_their_count_and_span() -> None:
    staging = Staging("cloudtrail")
    for hour in (9, 11, 17):
        staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=at(hour), action="sts:AssumeRole"))
    staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=at(18), action="sts:AssumeRoleWithSAML"))

    assert len(staging.edges) == 1
    edge = next(iter(staging.edges.values()))
    assert edge.count == 4
    assert (edge.first_seen, edge.last_seen) == (at(9), at(18))
    assert list(edge.actions) == ["sts:AssumeRole", "sts:AssumeRoleWithSAML"]
    assert edge.window == datetime(2026, 3, 2, tzinfo=UTC)
    assert staging.events == 4


def test_events_on_different_days_are_different_relationships() -> None:
    staging = Staging("cloudtrail")
    staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=at(23, day=2)))
    staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=at(0, day=3)))
    assert sorted(e.count for e in staging.edges.values()) == [1, 1]


def test_the_window_is_configurable() -> None:
    staging = Staging("cloudtrail", window=timedelta(hours=1))
    staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=at(9)))
    staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=at(10)))
    assert len(staging.edges) == 2
    assert window_start(datetime(2026, 3, 2, 10, 59, tzinfo=UTC), timedelta(hours=1)) == at(10)


def test_edge_endpoints_become_nodes_whose_seen_span_follows_the_events() -> None:
    staging = Staging("cloudtrail")
    staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=at(9)))
    staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=at(15)))
    node = staging.nodes[("User", ALICE.uid)]
    assert (node.first_seen, node.last_seen) == (at(9), at(15))


def test_flow_volumes_are_summed_not_overwritten() -> None:
    staging = Staging("flows")
    a, b = NodeRef("IP", "ip:10.0.0.1"), NodeRef("IP", "ip:10.0.0.2")
    staging.add(Edge("CONNECTS_TO", a, b, {"bytes": 100, "packets": 2}, time=at(1)))
    staging.add(Edge("CONNECTS_TO", a, b, {"bytes": 50, "packets": 1}, time=at(2)))
    edge = next(iter(staging.edges.values()))
    assert edge.sums == {"bytes": 150, "packets": 3}
    assert "bytes" not in edge.props


def test_a_pair_the_schema_does_not_allow_is_an_error() -> None:
    staging = Staging("native")
    with pytest.raises(SchemaError, match="does not allow"):
        staging.add(Edge("HAS_VULN", ALICE, ADMIN))


def test_activity_without_an_event_time_is_an_error() -> None:
    with pytest.raises(SchemaError, match="needs an event time"):
        Staging("native").add(Edge("ACCESS", ALICE, ADMIN))


def test_unknown_labels_and_empty_uids_are_errors() -> None:
    with pytest.raises(SchemaError, match="unknown node label"):
        Staging("native").add(Node("Printer", "p1"))
    with pytest.raises(SchemaError, match="empty uid"):
        Staging("native").add(Node("User", ""))


def test_properties_are_cleaned_to_what_neo4j_can_store() -> None:
    cleaned = clean_properties(
        {"name": "alice", "none": None, "nested": {"a": 1}, "tags": {"b", "a"}, "mixed": [1, "x"], "empty": []}
    )
    assert cleaned == {"name": "alice", "tags": ["a", "b"], "mixed": ["1", "x"]}


def test_failed_events_are_counted_per_window_instead_of_overwriting_a_flag() -> None:
    staging = Staging("cloudtrail")
    staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, {"failed": True, "error_code": "AccessDenied"}, time=at(9)))
    staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=at(10)))
    edge = next(iter(staging.edges.values()))
    assert (edge.count, edge.sums) == (2, {"failed": 1})
