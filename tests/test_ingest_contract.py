"""The record contract of the AWS adapters, on every fixture of theirs: one test, parametrised by adapter and file.

:func:`_ingest_support.read` checks it (the non-AWS adapters' tests read through it too): every edge is a pair
the schema allows, every endpoint is emitted as a node by the same adapter, every property is one Neo4j can
store (no None, no nested object), every activity edge carries its time and action.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _ingest_support import FIXTURES, read

AWS = FIXTURES / "aws"
CLOUDTRAIL = AWS / "cloudtrail"
PANTHER_CLOUDTRAIL = CLOUDTRAIL / "panther" / "aws_cloudtrail_sample.jsonl"
"""Holds events without a time or an identity on purpose: its bad records are checked in test_ingest_cloudtrail."""

CASES: list[tuple[str, Path]] = [
    ("aws-iam", AWS / "iam" / "cloudsplaining-example-authz-details.json"),
    ("aws-iam", AWS / "inventory" / "cloudmapper-demo" / "us-east-1" / "iam-get-account-authorization-details.json"),
    ("aws-iam", AWS / "iam-extra" / "authz-trust-and-grants.json"),
    ("aws-inventory", AWS / "inventory" / "cloudmapper-demo"),
    ("aws-inventory", AWS / "inventory-extra"),
    *(("cloudtrail", path) for path in sorted((CLOUDTRAIL / "stratus-red-team").glob("*.json"))),
    ("cloudtrail", CLOUDTRAIL / "otrf" / "ec2_proxy_s3_exfiltration.jsonl"),
    ("cloudtrail", PANTHER_CLOUDTRAIL),
]


@pytest.mark.parametrize(("adapter", "path"), CASES, ids=lambda value: getattr(value, "name", value))
def test_every_edge_fits_the_schema_and_every_endpoint_is_emitted(adapter: str, path: Path) -> None:
    mapped = read(adapter, path)
    assert mapped.nodes
    assert all(":" in edge.action for edge in mapped.edges if edge.action is not None)  # service:Api
    assert path == PANTHER_CLOUDTRAIL or not mapped.bad, mapped.bad[:3]
