"""VPC flow log adapter."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from _ingest_support import FIXTURES, read

from gnnsec.ingest.flows import VpcFlowLogAdapter

V2 = FIXTURES / "flows" / "vpc-flow-v2.log"


def test_v2_records_become_connections_with_bytes_packets_and_protocol_port_actions() -> None:
    mapped = read(VpcFlowLogAdapter(), V2)
    assert mapped.edge_tuples() == [
        ("CONNECTS_TO", "ip:198.51.100.23", "ip:10.0.1.10", "flow:REJECT:tcp/22"),
        ("CONNECTS_TO", "ip:10.0.1.10", "ip:172.31.5.9", "flow:ACCEPT:tcp/5432"),
        ("CONNECTS_TO", "ip:10.0.1.10", "ip:8.8.8.8", "flow:ACCEPT:udp/53"),
    ]
    assert [dict(e.props) for e in mapped.edges] == [
        {"bytes": 840, "packets": 10},
        {"bytes": 18000, "packets": 25},
        {"bytes": 60, "packets": 1},
    ]
    assert mapped.edges[0].time == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    public = {n.uid: n.props["public"] for n in mapped.nodes}
    assert public == {"ip:198.51.100.23": True, "ip:10.0.1.10": False, "ip:172.31.5.9": False, "ip:8.8.8.8": True}


def test_nodata_is_skipped_and_malformed_lines_are_bad_with_their_line_number() -> None:
    bad = read(VpcFlowLogAdapter(), V2).bad
    assert [(b.where, b.reason) for b in bad] == [
        ("line 6", "packets is not a number: 'one'"),
        ("line 7", "expected 14 fields, found 5"),
    ]


def test_gzipped_files_without_header_use_the_default_order() -> None:
    mapped = read(VpcFlowLogAdapter(), FIXTURES / "flows" / "vpc-flow-noheader.log.gz")
    assert [e[3] for e in mapped.edge_tuples()] == ["flow:REJECT:tcp/22", "flow:ACCEPT:tcp/5432"]


def test_a_custom_format_header_sets_the_field_order_and_links_the_instance() -> None:
    mapped = read(VpcFlowLogAdapter(), FIXTURES / "flows" / "vpc-flow-custom.log")
    vm = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0123456789abcdef0"
    assert mapped.edge_tuples() == [
        ("CONNECTS_TO", "ip:10.0.1.10", "ip:203.0.113.200", "flow:ACCEPT:tcp/443"),
        ("HAS_IP", vm, "ip:10.0.1.10", None),
    ]
    assert dict(mapped.edges[0].props) == {"bytes": 5000, "packets": 12}


def test_panther_flow_record_without_start_time_is_reported_not_guessed() -> None:
    mapped = read(VpcFlowLogAdapter(), FIXTURES / "panther" / "vpc-flow.jsonl")
    assert [(b.where, b.reason) for b in mapped.bad] == [("line 1", "no flow start time")]
    assert mapped.edges == []


def test_json_lines_with_camel_case_fields_are_read(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    path.write_text(
        '{"srcAddr":"1.1.1.1","dstAddr":"10.0.0.1","srcPort":5555,"dstPort":22,"protocol":6,'
        '"packets":3,"bytes":180,"start":1714557600,"end":1714557660,"action":"ACCEPT","logStatus":"OK"}\n'
    )
    assert VpcFlowLogAdapter().sniff(path)
    mapped = read(VpcFlowLogAdapter(), path)
    assert mapped.edge_tuples() == [("CONNECTS_TO", "ip:1.1.1.1", "ip:10.0.0.1", "flow:ACCEPT:tcp/22")]
    assert dict(mapped.edges[0].props) == {"bytes": 180, "packets": 3}


def test_remembered_addresses_parse_as_fresh_ones_and_long_texts_are_not_remembered() -> None:
    """``parse_ip``/``is_public_ip`` remember short texts (a flow line names the same addresses again and again):
    the answers are those of parsing afresh, and hostile long values never enter the cache."""
    from gnnsec.ingest import _common

    texts = ["10.0.1.10", " 8.8.8.8 ", "5.5.5.5:28915", "[::1]:443", "::ffff:10.1.2.3", "2001:db8::1", "0.0.0.0",
             "gce-internal-ip", "", "300.1.1.1", "fc00::7"]
    for _ in range(2):  # the second round answers from the cache
        for text in texts:
            assert _common.parse_ip(text) == _common._canonical_ip(text), text
            address = _common.parse_ip(text)
            if address is not None:
                assert _common.is_public_ip(address) == _common._is_public(address), address
    assert _common.parse_ip(7) is None
    before = _common._remembered_ip.cache_info().currsize
    long_text = "1" * (_common.IP_CACHE_TEXT + 1)
    assert _common.parse_ip(long_text) is None
    assert _common._remembered_ip.cache_info().currsize == before
    assert [_common.is_public_ip(a) for a in ("10.0.0.1", "8.8.8.8", "::ffff:192.168.1.1", "fe80::1")] == [
        False, True, False, False]
