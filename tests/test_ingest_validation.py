"""One validation layer before any write (issue #12): whatever Neo4j would refuse, or the driver could not read
back, or gnnsec reserves, is a bad record naming the file and record; the graph never sees any of it."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnnsec.cli.main import cli
from gnnsec.graphdb import writeback
from gnnsec.ingest import get_adapter
from gnnsec.ingest._common import excerpt
from gnnsec.ingest.base import BadRecord, Edge, Node, NodeRef
from gnnsec.ingest.staging import Staging, clean_properties
from gnnsec.ingest.validation import (
    INT64_MAX,
    INT64_MIN,
    Limits,
    PropertyError,
    check_key,
    check_uid,
    check_value,
    reserved_reason,
    safe_excerpt,
)
from gnnsec.schema import SchemaError
from gnnsec.times import parse_time

FIXTURES = Path(__file__).parent / "fixtures"
CLOUDTRAIL = FIXTURES / "aws" / "cloudtrail" / "stratus-red-team" / "aws.execution.ec2-user-data.json"
TRIVY = FIXTURES / "vulns" / "trivy-amazon-2.json"
NATIVE = FIXTURES / "native" / "sample.jsonl"

ALICE = NodeRef("User", "okta:user:alice")
BUCKET = NodeRef("Bucket", "arn:aws:s3:::payroll")
A, B = NodeRef("IP", "ip:10.0.0.1"), NodeRef("IP", "ip:10.0.0.2")
T = datetime(2026, 3, 2, 9, tzinfo=UTC)
RESERVED = ["uid", "window", "window_seconds", "count", "batches", "batch_count", "batch_bytes", "first_seen",
            "last_seen", "anomaly_score", "anomaly_raw", "anomalous", "edge_anomaly", "edge_reasons", "score_window",
            "distmult_score", "scoring_run", "analyst_label"]
LATE_IN_UTC = "9999-12-31T23:59:59-05:00"  # year 10000 once in UTC
EARLY_IN_UTC = "0001-01-01T00:00:00+05:00"  # year 0 once in UTC


def snapshot(staging: Staging) -> Any:
    """Everything a staging holds, comparable: a refused record must leave it as it was."""
    return (
        repr(sorted((k, v.props, v.first_seen, v.last_seen) for k, v in staging.nodes.items())),
        repr(sorted((repr(k), e.props, e.count, e.sums, e.contributions) for k, e in staging.edges.items())),
        staging.records, staging.events, repr(staging.batches),
    )


# ---- the validators ------------------------------------------------------------------------------------


def test_a_uid_is_limited_in_utf8_bytes_under_neo4js_index_key_limit() -> None:
    limits = Limits()
    assert check_uid("u" * limits.max_uid_bytes, "User") == "u" * limits.max_uid_bytes
    with pytest.raises(PropertyError, match=r"over the limit of 8000 \(Neo4j cannot index"):
        check_uid("u" * (limits.max_uid_bytes + 1), "User")
    with pytest.raises(PropertyError, match="over the limit"):
        check_uid("é" * (limits.max_uid_bytes // 2 + 1), "User")  # 2 bytes a character
    for empty in ("", "   "):
        with pytest.raises(PropertyError, match="empty uid"):
            check_uid(empty, "User")
    with pytest.raises(PropertyError, match="must be a string"):
        check_uid(42, "User")


@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1, 2**64, math.nan, math.inf, -math.inf])
def test_integers_outside_int64_and_non_finite_floats_are_refused(value: float) -> None:
    with pytest.raises(PropertyError, match="'n' is"):
        check_value("n", value)
    with pytest.raises(PropertyError):
        check_value("n", [1.0, value] if isinstance(value, float) else [1, value])
    with pytest.raises(PropertyError):
        Staging("native").add(Node("User", "u", {"n": value}))


@pytest.mark.parametrize("text", [LATE_IN_UTC, EARLY_IN_UTC])
def test_datetimes_outside_years_1_to_9999_in_utc_are_refused_as_times_and_as_properties(text: str) -> None:
    moment = datetime.fromisoformat(text)
    with pytest.raises(ValueError, match="out of range"):
        parse_time(text)
    with pytest.raises(PropertyError, match=r"outside years 1\.\.9999"):
        check_value("created", moment)
    staging = Staging("native")
    with pytest.raises(PropertyError, match=r"outside years 1\.\.9999"):
        staging.add(Node("User", "u", {"created": moment}))
    with pytest.raises(PropertyError, match="between 1970 and 2200"):
        staging.add(Node("User", "u", seen=moment))
    assert staging.records == 0 and not staging.nodes
    check_value("created", datetime(9999, 12, 31, 23, 59, tzinfo=UTC))
    check_value("created", datetime(1, 1, 1, 5, tzinfo=timezone(timedelta(hours=5))))


@pytest.mark.parametrize("key", ["", " ", "\t\n", "a\x00b", 7])
def test_empty_blank_nul_and_non_string_property_names_are_refused(key: Any) -> None:
    with pytest.raises(PropertyError, match="property name"):
        check_key(key)
    with pytest.raises(PropertyError):
        Staging("native").add(Node("User", "u", {key: 1}))


def test_oversized_strings_lists_and_names_are_refused() -> None:
    limits = Limits()
    check_value("s", "x" * limits.max_string_bytes)
    with pytest.raises(PropertyError, match="bytes, over the limit"):
        check_value("s", "x" * (limits.max_string_bytes + 1))
    with pytest.raises(PropertyError, match="items, over the limit"):
        check_value("l", list(range(limits.max_list_items + 1)))
    with pytest.raises(PropertyError, match="characters, over"):
        check_key("k" * (limits.max_key_chars + 1))
    small = Limits(max_uid_bytes=10, max_string_bytes=10, max_list_items=2)
    staging = Staging("native", limits=small)
    for record in (Node("User", "u" * 11), Node("User", "u", {"s": "x" * 11}), Node("User", "u", {"l": [1, 2, 3]})):
        with pytest.raises(PropertyError):
            staging.add(record)
    assert not staging.nodes


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_names_are_refused_on_nodes_inventory_and_activity(name: str) -> None:
    for record in (
        Node("User", "u", {name: 5}),
        Edge("HAS_IP", NodeRef("VM", "vm"), A, {name: 5}),
        Edge("ACCESS", ALICE, BUCKET, {name: 5}, T, "s3:GetObject"),
    ):
        staging = Staging("native")
        with pytest.raises(PropertyError, match=f"property '{name}' is reserved by gnnsec"):
            staging.add(record)
        assert snapshot(staging) == snapshot(Staging("native"))


def test_failed_bytes_and_packets_are_the_events_own_on_activity_and_reserved_or_checked_elsewhere() -> None:
    staging = Staging("cloudtrail")
    staging.add(Edge("ACCESS", ALICE, BUCKET, {"failed": True, "error_code": "AccessDenied"}, T))
    assert next(iter(staging.edges.values())).sums == {"failed": 1}
    with pytest.raises(PropertyError, match="'failed' is reserved"):
        staging.add(Node("User", "u", {"failed": True}))
    with pytest.raises(PropertyError, match="'failed' must be true or false"):
        staging.add(Edge("ACCESS", ALICE, BUCKET, {"failed": 3}, T))
    for value in (-1, "many", True, math.nan, INT64_MAX + 1):
        with pytest.raises(PropertyError, match="'bytes'"):
            staging.add(Edge("CONNECTS_TO", A, B, {"bytes": value}, T))
    for name in ("actions", "sources"):  # the loader's on activity, free on inventory (aws_iam sets actions)
        assert reserved_reason(name, activity=True) and reserved_reason(name, activity=False) is None


def test_every_property_the_loader_or_the_scorer_sets_is_reserved() -> None:
    loader = ["uid", "first_seen", "last_seen", "window", "window_seconds", "count", "failed", "batches",
              "batch_count", "batch_failed", "batch_bytes", "batch_packets"]
    for name in (*writeback.NODE_SCORE_PROPERTIES, *writeback.EDGE_SCORE_PROPERTIES, *loader):
        assert reserved_reason(name, activity=False), name
        if name not in ("failed",):
            assert reserved_reason(name, activity=True), name


def test_per_window_sums_of_flow_volumes_cannot_overflow_int64() -> None:
    staging = Staging("flows")
    staging.add(Edge("CONNECTS_TO", A, B, {"bytes": INT64_MAX - 5, "packets": 1}, T))
    before = snapshot(staging)
    with pytest.raises(PropertyError, match="per-window sum of 'bytes'"):
        staging.add(Edge("CONNECTS_TO", A, B, {"bytes": 6, "packets": 1}, T + timedelta(hours=1)))
    assert snapshot(staging) == before  # nothing of the refused event was counted, not even its packets
    staging.add(Edge("CONNECTS_TO", A, B, {"bytes": 6}, T + timedelta(days=1)))  # another window: its own sum
    staging.add(Edge("CONNECTS_TO", B, A, {"bytes": 1.7e308}, T))
    with pytest.raises(PropertyError, match="overflows to inf"):
        staging.add(Edge("CONNECTS_TO", B, A, {"bytes": 1.7e308}, T))


def test_deep_nesting_is_dropped_or_described_without_recursion_error() -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = [deep, {"k": deep}] if isinstance(deep, int) else [deep]
    nested_map: Any = {}
    for _ in range(100_000):
        nested_map = {"k": nested_map}
    assert clean_properties({"a": deep, "b": nested_map, "c": "kept"}) == {"c": "kept"}
    assert len(safe_excerpt(deep)) <= 300 and len(safe_excerpt(nested_map)) <= 300
    assert len(excerpt(nested_map)) <= 200
    staging = Staging("native")
    staging.add(Node("User", "u", {"a": deep, "b": nested_map}))
    assert staging.nodes[("User", "u")].props == {}


def test_a_cloudtrail_field_of_the_wrong_type_is_a_bad_record_not_an_attribute_error(tmp_path: Path) -> None:
    records = json.loads(CLOUDTRAIL.read_text())
    records[1]["eventSource"] = 42
    records[2]["userIdentity"]["sessionContext"] = ["not", "an", "object"]
    path = tmp_path / "trail.json"
    path.write_text(json.dumps(records))
    bad = [r for r in get_adapter("cloudtrail").read(path) if isinstance(r, BadRecord)]
    assert bad[0].where == "[1]" and "eventSource must be a string, found int" in bad[0].reason
    if len(bad) > 1:  # only when that event is an assumed-role one
        assert bad[1].where == "[2]" and "unexpected type" in bad[1].reason


def test_a_trivy_cvss_given_as_a_string_is_a_bad_record_naming_the_vulnerability(tmp_path: Path) -> None:
    report = json.loads(TRIVY.read_text())
    report["Results"][0]["Vulnerabilities"][1]["CVSS"] = "9.8"
    path = tmp_path / "scan.json"
    path.write_text(json.dumps(report))
    bad = [r for r in get_adapter("vulns").read(path) if isinstance(r, BadRecord)]
    assert [(b.where, b.reason.split(",")[0]) for b in bad] == [
        ("Results[0].Vulnerabilities[1]", "'CVSS' must be an object of scores by source")
    ]


# ---- properties (Hypothesis) ---------------------------------------------------------------------------

SMALL = Limits(max_uid_bytes=64, max_string_bytes=64, max_list_items=4, max_key_chars=8)
values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
    st.text(max_size=40), st.datetimes(timezones=st.timezones()),
    st.lists(st.one_of(st.integers(min_value=-(2**66), max_value=2**66), st.text(max_size=20)), max_size=6),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
keys = st.one_of(st.sampled_from(["name", "window", "count", "anomaly_x", "failed", "bytes"]), st.text(max_size=10))


def storable(value: Any, limits: Limits) -> bool:
    """The model: what Neo4j stores and the driver reads back, per the rules of the validation module."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return INT64_MIN <= value <= INT64_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass")) <= limits.max_string_bytes
    if isinstance(value, datetime):
        try:
            value.astimezone(UTC)
        except OverflowError:
            return False
        return True
    if isinstance(value, list):
        return (len(value) <= limits.max_list_items and len({type(v) for v in value}) <= 1
                and all(storable(v, limits) for v in value))
    return False


@given(st.text(max_size=30), st.one_of(st.integers(), st.floats(), st.text(max_size=80),
                                       st.datetimes(timezones=st.timezones())))
def test_check_value_accepts_exactly_what_the_model_says_is_storable(key: str, value: Any) -> None:
    try:
        check_value(key, value, SMALL)
    except PropertyError:
        assert not storable(value, SMALL)
    else:
        assert storable(value, SMALL)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, values, max_size=5), st.sampled_from(["node", "inventory", "activity"]))
def test_staging_either_takes_a_record_whole_and_storable_or_leaves_no_trace(props: dict[Any, Any], kind: str) -> None:
    staging = Staging("native", limits=SMALL)
    staging.add(Node("VM", "vm", {"name": "kept"}))
    before = snapshot(staging)
    record = (Node("User", "u", props) if kind == "node"
              else Edge("HAS_IP", NodeRef("VM", "vm"), A, props) if kind == "inventory"
              else Edge("CONNECTS_TO", A, B, props, T, "flow:ACCEPT:tcp/443"))
    try:
        staging.add(record)
    except SchemaError:
        assert snapshot(staging) == before
        return
    staged = [n.props for n in staging.nodes.values()] + [e.props for e in staging.edges.values()]
    for stored in staged:
        for key, value in stored.items():
            check_key(key, SMALL)
            assert reserved_reason(key, activity=kind == "activity") is None
            assert storable(value, SMALL), (key, value)
    for edge in staging.edges.values():
        assert all(storable(v, SMALL) for v in edge.sums.values())


# ---- through the CLI, against the real Neo4j -----------------------------------------------------------


def run(settings_: Any, *args: str) -> Any:
    env = {"NEO4J_URI": settings_.uri, "NEO4J_USER": settings_.user, "NEO4J_PASSWORD": settings_.password,
           "NEO4J_DATABASE": settings_.database}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def graph_state(driver: Any, ignore: tuple[str, ...] = ()) -> list[str]:
    """Every node and relationship with every property (ingest batches included), but ``ignore``: a checksum."""
    nodes, _, _ = driver.execute_query("MATCH (n) RETURN labels(n) AS l, properties(n) AS p")
    rels, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN a.uid AS a, type(r) AS t, b.uid AS b, properties(r) AS p")

    def props(record: Any) -> list[Any]:
        return sorted((k, v) for k, v in record["p"].items() if k not in ignore)

    return sorted(repr((r["l"], props(r))) for r in nodes) + sorted(
        repr((r["a"], r["t"], r["b"], props(r))) for r in rels)


def native(tmp_path: Path, *bad_lines: dict[str, Any] | str, name: str = "hostile.jsonl") -> Path:
    """The native sample's good lines, then the hostile ones (JSON text as it is, or objects to encode)."""
    good = [line for line in NATIVE.read_text().splitlines() if '"Printer"' not in line and "PRINTS_ON" not in line
            and line.startswith("{") and line.endswith("}")]
    path = tmp_path / name
    hostile = [line if isinstance(line, str) else json.dumps(line) for line in bad_lines]
    path.write_text("\n".join(good + hostile) + "\n")
    return path


def edge(rel: str, src: NodeRef, dst: NodeRef, props: dict[str, Any], time: str = "2024-05-01T08:05:00Z") -> Any:
    return {"kind": "edge", "type": rel, "src": {"label": src.label, "uid": src.uid},
            "dst": {"label": dst.label, "uid": dst.uid}, "props": props, "time": time, "action": "x:y"}


def deep_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def cloudtrail(tmp_path: Path, change: Any) -> Path:
    records = json.loads(CLOUDTRAIL.read_text())
    change(records)
    path = tmp_path / "hostile-trail.json"
    path.write_text(json.dumps(records))
    return path


def _long_user(records: list[dict[str, Any]]) -> None:
    name = "x" * 9000
    records[1]["userIdentity"] = {"type": "IAMUser", "accountId": "309303190113", "userName": name,
                                  "arn": f"arn:aws:iam::309303190113:user/{name}"}


def _deep_excerpt(records: list[dict[str, Any]]) -> None:
    del records[1]["eventName"]
    records[1]["requestParameters"] = deep_list(600)  # past orjson.dumps' depth limit: the excerpt must cope


def _source_as_number(records: list[dict[str, Any]]) -> None:
    records[1]["eventSource"] = 42


def trivy_cvss_as_string(tmp_path: Path) -> Path:
    report = json.loads(TRIVY.read_text())
    report["Results"][0]["Vulnerabilities"][1]["CVSS"] = "9.8"
    path = tmp_path / "hostile-scan.json"
    path.write_text(json.dumps(report))
    return path


def flows_overflow(tmp_path: Path) -> Path:
    header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end " \
             "action log-status"
    line = "2 123456789012 eni-0a1 10.0.1.10 172.31.5.9 35000 5432 6 1 {bytes} 1714557600 1714557660 ACCEPT OK"
    path = tmp_path / "hostile-flows.log"
    path.write_text("\n".join([header, line.format(bytes=INT64_MAX), line.format(bytes=1)]) + "\n")
    return path


UID = "okta:user:alice@example.com"
REPRODUCTIONS: dict[str, tuple[str, Any, str]] = {
    # name: (source, file builder, what the message says)
    "uid too long (native)": ("native", lambda p: native(p, {"kind": "node", "label": "User", "uid": "u" * 9000}),
                              "over the limit of 8000"),
    "uid too long (cloudtrail, in staging)": ("cloudtrail", lambda p: cloudtrail(p, _long_user),
                                              "over the limit of 8000"),
    "string too long": ("native", lambda p: native(p, {"kind": "node", "label": "User", "uid": UID,
                                                       "props": {"bio": "x" * (1 << 20 | 1)}}), "over the limit"),
    "int beyond int64": ("native", lambda p: native(p, {"kind": "node", "label": "User", "uid": UID,
                                                        "props": {"n": 2**63}}), "64-bit"),
    "bytes beyond int64": ("native", lambda p: native(p, edge("CONNECTS_TO", A, B, {"bytes": 2**63})), "64-bit"),
    "per-window sum beyond int64 (native)": (
        "native", lambda p: native(p, edge("CONNECTS_TO", A, B, {"bytes": INT64_MAX}),
                                   edge("CONNECTS_TO", A, B, {"bytes": 1})), "per-window sum of 'bytes'"),
    "per-window sum beyond int64 (flows)": ("flows", flows_overflow, "per-window sum of 'bytes'"),
    "empty property name": ("native", lambda p: native(p, {"kind": "node", "label": "User", "uid": UID,
                                                           "props": {"": 1}}), "empty, blank"),
    "blank property name": ("native", lambda p: native(p, {"kind": "node", "label": "User", "uid": UID,
                                                           "props": {"  ": 1}}), "empty, blank"),
    "deeply nested property": ("native", lambda p: native(
        p, f'{{"kind": "node", "label": "User", "uid": "{UID}", "props": {{"x": {"[" * 1000}1{"]" * 1000}}}}}'),
        "property 'x'"),
    "deeply nested record, excerpted": ("cloudtrail", lambda p: cloudtrail(p, _deep_excerpt), "without eventName"),
    "seen in year 10000 UTC": ("native", lambda p: native(p, {"kind": "node", "label": "User", "uid": UID,
                                                              "seen": LATE_IN_UTC}), "out of range"),
    "time in year 0 UTC": ("native", lambda p: native(p, edge("ACCESS", ALICE, BUCKET, {}, EARLY_IN_UTC)),
                           "out of range"),
    "window on an activity edge": ("native", lambda p: native(p, edge("ACCESS", ALICE, BUCKET, {"window": 5})),
                                   "property 'window' is reserved by gnnsec"),
    "anomaly score on a node": ("native", lambda p: native(p, {"kind": "node", "label": "User", "uid": UID,
                                                               "props": {"anomaly_score": 0.0}}), "reserved"),
    "analyst verdict on a node": ("native", lambda p: native(p, {"kind": "node", "label": "User", "uid": UID,
                                                                 "props": {"analyst_label": "benign"}}), "reserved"),
    "eventSource as a number": ("cloudtrail", lambda p: cloudtrail(p, _source_as_number),
                                "eventSource must be a string"),
    "CVSS as a string": ("vulns", trivy_cvss_as_string, "'CVSS' must be an object"),
}


@pytest.mark.integration
@pytest.mark.parametrize("case", list(REPRODUCTIONS))
def test_a_hostile_record_fails_its_file_naming_it_and_leaves_the_graph_unchanged(
    clean_db: Any, neo4j_settings: Any, tmp_path: Path, case: str
) -> None:
    source, build, message = REPRODUCTIONS[case]
    assert run(neo4j_settings, "ingest", "native", str(NATIVE), "--skip-bad",
               "--quarantine", str(tmp_path / "baseline-quarantine.jsonl")).exit_code == 0
    before = graph_state(clean_db)
    path = build(tmp_path)
    result = run(neo4j_settings, "ingest", source, str(path))
    assert result.exit_code == 1, result.output
    assert path.name in result.output and message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert graph_state(clean_db) == before


SKIPPABLE = {"uid too long (cloudtrail, in staging)": 4,  # the User, and the CONTAINS, ACCESS, AUTHENTICATES_FROM
             "per-window sum beyond int64 (flows)": 1,  # of that event, each refused whole
             "window on an activity edge": 1, "eventSource as a number": 1, "CVSS as a string": 1,
             "int beyond int64": 1}


@pytest.mark.integration
@pytest.mark.parametrize("case", SKIPPABLE)
def test_with_skip_bad_the_hostile_record_is_quarantined_counted_and_never_written(
    clean_db: Any, neo4j_settings: Any, tmp_path: Path, case: str
) -> None:
    source, build, message = REPRODUCTIONS[case]
    path = build(tmp_path)
    quarantine = tmp_path / "quarantine.jsonl"
    result = run(neo4j_settings, "ingest", source, "--skip-bad", "--quarantine", str(quarantine), str(path))
    assert result.exit_code == 0, result.output
    assert f"skipped {SKIPPABLE[case]} bad record" in result.output, result.output
    lines = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert len(lines) == SKIPPABLE[case]
    assert all(line["file"] == str(path) and message in line["reason"] for line in lines), lines
    state = "\n".join(graph_state(clean_db))
    assert state  # the rest of the file loaded
    assert "x" * 100 not in state and "'window', 5" not in state and str(2**63) not in state
    loaded = graph_state(clean_db, ignore=("last_ingested",))
    again = run(neo4j_settings, "ingest", source, "--skip-bad", "--quarantine", str(quarantine), str(path))
    assert again.exit_code == 0
    assert graph_state(clean_db, ignore=("last_ingested",)) == loaded  # re-ingesting adds no duplicate


@pytest.mark.integration
def test_flow_volumes_summed_across_separate_ingests_saturate_instead_of_overflowing(
    clean_db: Any, neo4j_settings: Any, tmp_path: Path
) -> None:
    """Each file's share is within int64, so staging accepts both; the loader adds them up in Cypher, where
    an overflow would fail the second load after its first transaction. It saturates at the int64 maximum."""
    header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end " \
             "action log-status"
    line = "2 123456789012 eni-0a1 10.0.1.10 172.31.5.9 35000 5432 6 1 {bytes} 1714557600 1714557660 ACCEPT OK"
    for name, volume in (("first.log", INT64_MAX - 10), ("second.log", INT64_MAX - 11)):  # two batches
        (tmp_path / name).write_text(f"{header}\n{line.format(bytes=volume)}\n")
        result = run(neo4j_settings, "ingest", "flows", str(tmp_path / name))
        assert result.exit_code == 0, result.output
    rows, _, _ = clean_db.execute_query("MATCH ()-[r]->() WHERE r.bytes IS NOT NULL RETURN r.bytes AS b, "
                                        "r.batch_bytes AS shares")
    assert [r["b"] for r in rows] == [INT64_MAX]
    assert rows[0]["shares"] == [INT64_MAX - 10, INT64_MAX - 11]
