"""The native JSONL adapter, and which of the non-AWS adapters claims which file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from _ingest_support import FIXTURES, MY_ADAPTERS, fixture_files, read

from gnnsec.ingest import get_adapter
from gnnsec.ingest.native import NativeAdapter

SAMPLE = FIXTURES / "native" / "sample.jsonl"


def test_nodes_and_edges_map_one_to_one_with_their_properties_and_times() -> None:
    mapped = read(NativeAdapter(), SAMPLE)
    user = mapped.node("User", "okta:user:alice@example.com")
    assert dict(user.props) == {"name": "alice@example.com", "cloud": "okta", "mfa": True}
    assert user.seen == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert dict(mapped.node("Bucket", "arn:aws:s3:::payroll").props)["tags"] == ["pii", "finance"]
    assert mapped.edge_tuples() == [
        ("ACCESS", "okta:user:alice@example.com", "arn:aws:s3:::payroll", "s3:GetObject"),
        ("AUTHENTICATES_FROM", "okta:user:alice@example.com", "ip:198.51.100.7", "okta:user.session.start"),
    ]
    assert dict(mapped.edges[0].props) == {"bytes": 2048}
    assert mapped.edges[0].time == datetime(2024, 5, 1, 8, 5, tzinfo=UTC)


def test_an_edge_endpoint_never_declared_is_emitted_as_a_bare_node() -> None:
    mapped = read(NativeAdapter(), SAMPLE)
    ip = mapped.node("IP", "ip:198.51.100.7")
    assert dict(ip.props) == {} and ip.seen is None


def test_unknown_labels_types_and_broken_lines_are_reported_with_their_line() -> None:
    bad = read(NativeAdapter(), SAMPLE).bad
    assert [(b.where, b.reason) for b in bad[:2]] == [
        ("line 5", "unknown node label 'Printer' in 'label'"),
        ("line 6", "unknown relationship type 'PRINTS_ON'"),
    ]
    assert bad[2].where == "line 7" and bad[2].reason.startswith("not valid JSON")
    assert len(bad) == 3


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            '{"kind":"edge","type":"HAS_VULN","src":{"label":"User","uid":"u"},"dst":{"label":"CVE","uid":"c"}}',
            "the schema does not allow (User)-[:HAS_VULN]->(CVE)",
        ),
        (
            '{"kind":"edge","type":"ACCESS","src":{"label":"User","uid":"u"},"dst":{"label":"Bucket","uid":"b"}}',
            "ACCESS is an activity relationship and needs a 'time'",
        ),
        ('{"kind":"node","label":"User","uid":"u","props":{"tags":{"a":1}}}', "property 'tags' is a dict"),
        ('{"kind":"node","label":"User","uid":"u","props":{"mixed":["a",1]}}', "property 'mixed' is a list mixing"),
        ('{"kind":"node","label":"User","uid":""}', "'uid' must be a non-empty string"),
        ('{"kind":"relationship","type":"ACCESS"}', "'kind' must be 'node' or 'edge'"),
        ('{"kind":"node","label":"User","uid":"u","seen":"yesterday"}', "'seen':"),
    ],
)
def test_records_that_do_not_fit_the_schema_are_bad_records_naming_the_problem(
    tmp_path: Path, line: str, reason: str
) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text('{"kind":"node","label":"User","uid":"ok"}\n' + line + "\n")
    mapped = read(NativeAdapter(), path)
    assert len(mapped.bad) == 1
    assert mapped.bad[0].where == "line 2"
    assert reason in mapped.bad[0].reason


def test_null_properties_are_treated_as_absent(tmp_path: Path) -> None:
    path = tmp_path / "nulls.jsonl"
    path.write_text('{"kind":"node","label":"VM","uid":"vm-1","props":{"name":"a","region":null}}\n')
    assert dict(read(NativeAdapter(), path).node("VM", "vm-1").props) == {"name": "a"}


def test_sniff_wants_a_kind_of_node_or_edge_on_the_first_line(tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"kind":"Event","apiVersion":"audit.k8s.io/v1"}\n')
    assert NativeAdapter().sniff(SAMPLE)
    assert not NativeAdapter().sniff(other)


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_fixture_is_claimed_by_exactly_one_of_these_adapters(path: Path) -> None:
    expected = {
        "native": "native",
        "azure/activity": "azure-activity",
        "azure/signins": "azure-signin",
        "gcp": "gcp-audit",
        "k8s/prod-eks": "k8s",
        "k8s/audit": "k8s-audit",
        "vulns": "vulns",
        "flows": "flows",
        "panther/azure-activity": "azure-activity",
        "panther/azure-signin": "azure-signin",
        "panther/gcp-audit": "gcp-audit",
        "panther/gke-audit": "gcp-audit",
        "panther/k8s-audit": "k8s-audit",
        "panther/eks-audit": "k8s-audit",
        "panther/vpc-flow": "flows",
    }
    key = f"{path.parent.name}/{path.name}"
    owner = next(v for k, v in expected.items() if key.startswith(k))
    claims = [name for name in MY_ADAPTERS if get_adapter(name).sniff(path)]
    assert claims == [owner]


def test_none_of_these_adapters_claims_the_aws_samples() -> None:
    aws = Path("/work/shared/data/aws")
    files = [p for p in aws.rglob("*.json*") if p.is_file()] if aws.exists() else []
    files += [p for p in (FIXTURES / "aws").rglob("*.json*") if p.is_file()] if (FIXTURES / "aws").exists() else []
    if not files:
        pytest.skip("no AWS samples on this machine")
    claimed = {str(p): [n for n in MY_ADAPTERS if get_adapter(n).sniff(p)] for p in files}
    assert {p: c for p, c in claimed.items() if c} == {}
