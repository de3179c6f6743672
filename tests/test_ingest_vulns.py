"""Trivy and Grype report adapter."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _ingest_support import FIXTURES, read

from gnnsec.ingest.base import AdapterError
from gnnsec.ingest.vulns import VulnerabilityReportAdapter

TRIVY = FIXTURES / "vulns" / "trivy-amazon-2.json"
GRYPE = FIXTURES / "vulns" / "grype-api.json"


def test_trivy_sample_has_two_vulnerabilities_on_two_distinct_cves_of_the_image() -> None:
    mapped = read(VulnerabilityReportAdapter(), TRIVY)
    image = "image:testdata/fixtures/images/amazon-2.tar.gz"
    assert [(e.type, e.src.label, e.src.uid, e.dst.uid) for e in mapped.edges] == [
        ("HAS_VULN", "Container", image, "cve:CVE-2019-5481"),
        ("HAS_VULN", "Container", image, "cve:CVE-2019-5436"),
    ]
    assert [dict(e.props) for e in mapped.edges] == [
        {"packages": ["curl@7.61.1-9.amzn2.0.1"], "fixed_version": "7.61.1-12.amzn2.0.1"},
        {"packages": ["curl@7.61.1-9.amzn2.0.1"], "fixed_version": "7.61.1-11.amzn2.0.2"},
    ]
    cves = {n.uid: dict(n.props) for n in mapped.nodes if n.label == "CVE"}
    assert cves == {
        "cve:CVE-2019-5481": {
            "name": "CVE-2019-5481",
            "severity": "MEDIUM",
            "cvss": 9.8,
            "fixed_available": True,
            "title": "curl: double free due to subsequent call of realloc()",
        },
        "cve:CVE-2019-5436": {
            "name": "CVE-2019-5436",
            "severity": "LOW",
            "cvss": 7.8,
            "fixed_available": True,
            "title": "curl: TFTP receive heap buffer overflow in tftp_receive_packet() function",
        },
    }
    assert mapped.node("Container", image).props["kind"] == "image"
    assert mapped.bad == []


def test_grype_merges_packages_of_one_vulnerability_and_takes_the_highest_v3_score() -> None:
    mapped = read(VulnerabilityReportAdapter(), GRYPE)
    image = "image:registry.example.com/shop/api:1.4.2"
    assert [(e.src.uid, e.dst.uid, dict(e.props)) for e in mapped.edges] == [
        (
            image,
            "cve:CVE-2023-5363",
            {"packages": ["libcrypto3@3.1.2-r0", "libssl3@3.1.2-r0"], "fixed_version": "3.1.4-r0"},
        ),
        (image, "cve:GHSA-XPW8-RCWV-8F8P", {"packages": ["requests@2.30.0"]}),
    ]
    ghsa = mapped.node("CVE", "cve:GHSA-XPW8-RCWV-8F8P").props
    assert (ghsa["severity"], ghsa["cvss"], ghsa["fixed_available"]) == ("MEDIUM", 6.1, False)
    assert mapped.node("Container", image).seen == datetime(2024, 1, 15, 10, 0, tzinfo=UTC)


def test_a_host_scan_becomes_a_vm_named_by_the_scanned_target(tmp_path: Path) -> None:
    report = json.loads(TRIVY.read_text())
    report["ArtifactType"], report["ArtifactName"] = "vm", "web-01"
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(report))
    assert {(e.src.label, e.src.uid) for e in read(VulnerabilityReportAdapter(), path).edges} == {("VM", "host:web-01")}


def test_a_vulnerability_without_id_is_bad_at_its_path(tmp_path: Path) -> None:
    report = json.loads(TRIVY.read_text())
    del report["Results"][0]["Vulnerabilities"][1]["VulnerabilityID"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(report))
    mapped = read(VulnerabilityReportAdapter(), path)
    assert [b.where for b in mapped.bad] == ["Results[0].Vulnerabilities[1]"]
    assert len(mapped.edges) == 1


def test_a_file_that_is_not_json_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "trivy.json"
    path.write_text('{"SchemaVersion": 2, "ArtifactName": ')
    with pytest.raises(AdapterError, match=r"trivy\.json"):
        list(VulnerabilityReportAdapter().read(path))
