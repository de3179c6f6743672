"""Specification of ``gnnsec synth``: deterministic, real-format output whose labels match its events."""

from __future__ import annotations

import csv
import gzip
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gnnsec.cli.main import cli
from gnnsec.ingest import uids
from gnnsec.ingest.base import BadRecord, Edge, Node
from gnnsec.ingest.pipeline import discover
from gnnsec.schema import is_label, is_relation
from gnnsec.synth import CAMPAIGNS, SynthError, generate

SEED = 7


@pytest.fixture(scope="module")
def estate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "estate"
    generate(out, seed=SEED, size="small")
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def cloudtrail_records(root: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(root.glob("aws/*/cloudtrail/**/*.json.gz")):
        with gzip.open(path, "rb") as handle:
            yield from json.loads(handle.read())["Records"]


def principal_of(record: dict[str, Any]) -> str:
    """The acting node's uid, by the rules the issue states (user ARN, role ARN, or instance for ``i-`` sessions)."""
    identity = record["userIdentity"]
    if identity["type"] == "IAMUser":
        return identity["arn"]
    if identity["type"] == "AssumedRole":
        session = identity["arn"].split("/")[-1]
        issuer = identity["sessionContext"]["sessionIssuer"]
        if session.startswith("i-"):
            return uids.aws_ec2_instance(record["awsRegion"], issuer["accountId"], session)
        return issuer["arn"]
    return uids.aws_account(identity["accountId"])


def flow_lines(root: Path) -> Iterator[list[str]]:
    for path in sorted(root.glob("flows/*/*/*.log.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            header = handle.readline().split()
            assert header[:5] == ["version", "account-id", "interface-id", "srcaddr", "dstaddr"]
            for line in handle:
                yield line.split()


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_in_every_file(estate_dir: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", seed=SEED, size="small")
    first, second = all_files(estate_dir), all_files(tmp_path / "again")
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []


def test_a_different_seed_gives_different_files(estate_dir: Path, tmp_path: Path) -> None:
    generate(tmp_path / "other", seed=SEED + 1, size="small")
    first, other = all_files(estate_dir), all_files(tmp_path / "other")
    shared = set(first) & set(other)
    assert first["labels/entities.csv"] != other["labels/entities.csv"]
    assert sorted(n for n in shared if n.endswith(".json.gz")) != sorted(n for n in first if n.endswith(".json.gz"))


def test_gzip_headers_carry_no_timestamp_and_no_file_name(estate_dir: Path) -> None:
    path = next(estate_dir.glob("aws/*/cloudtrail/**/*.json.gz"))
    header = path.read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] & 0x08 == 0  # FNAME flag unset
    assert header[4:8] == b"\x00\x00\x00\x00"  # MTIME zero


def test_small_generation_takes_under_ten_seconds(tmp_path: Path) -> None:
    began = time.perf_counter()
    summary = generate(tmp_path / "timed", seed=3, size="small")
    assert time.perf_counter() - began < 10
    assert 700 <= summary.nodes <= 1500
    assert summary.days == 1


# --- layout and formats --------------------------------------------------------------------------


def test_output_uses_the_real_delivery_layout(estate_dir: Path) -> None:
    names = all_files(estate_dir)
    trail = [n for n in names if "/cloudtrail/" in n]
    pattern = re.compile(
        r"^aws/(\d{12})/cloudtrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/\1_CloudTrail_\2_\3\4\5T\d{4}Z_[A-Z0-9]{16}\.json\.gz$"
    )
    assert trail and all(pattern.match(n) for n in trail), [n for n in trail if not pattern.match(n)][:3]
    accounts = {n.split("/")[1] for n in names if n.startswith("aws/")}
    assert len(accounts) == 3
    for account in accounts:
        assert f"aws/{account}/iam/authorization-details.json" in names
        for call in ("ec2-describe-instances", "ec2-describe-subnets", "ec2-describe-vpcs",
                     "ec2-describe-network-interfaces", "ec2-describe-security-groups", "s3-list-buckets",
                     "lambda-list-functions", "rds-describe-db-instances", "elbv2-describe-load-balancers",
                     "apigateway-get-rest-apis", "eks-list-clusters"):
            assert f"aws/{account}/inventory/us-east-1/{call}.json" in names
    for prefix in ("azure/activity/", "azure/signin/", "gcp/audit/", "flows/", "vulns/trivy-"):
        assert any(n.startswith(prefix) for n in names), prefix
    assert "k8s/prod-eks/objects.json" in names and "k8s/prod-eks/audit.jsonl" in names
    assert {"labels/entities.csv", "labels/activity.csv", "README.md", "manifest.json"} <= set(names)


def test_cloudtrail_records_carry_the_fields_real_ones_have(estate_dir: Path) -> None:
    required = {"eventVersion", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent",
                "userIdentity", "requestParameters", "responseElements", "requestID", "eventID", "readOnly",
                "eventType", "managementEvent", "recipientAccountId"}
    kinds = set()
    for record in cloudtrail_records(estate_dir):
        assert required <= set(record), required - set(record)
        identity = record["userIdentity"]
        kinds.add(identity["type"])
        assert {"type", "principalId", "accountId"} <= set(identity)
        if identity["type"] in ("IAMUser", "AssumedRole"):
            assert {"arn", "accessKeyId"} <= set(identity)
        if identity["type"] == "AssumedRole":
            assert identity["sessionContext"]["sessionIssuer"]["type"] == "Role"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["eventTime"])
        assert record["eventSource"].endswith(".amazonaws.com")
    assert kinds == {"IAMUser", "AssumedRole", "AWSAccount"}


def test_manifest_counts_match_the_files(estate_dir: Path) -> None:
    manifest = json.loads((estate_dir / "manifest.json").read_text())
    assert manifest["seed"] == SEED and manifest["size"] == "small"
    assert manifest["files"]["cloudtrail"] == len(list(estate_dir.glob("aws/*/cloudtrail/**/*.json.gz")))
    assert manifest["events"]["cloudtrail"] == sum(1 for _ in cloudtrail_records(estate_dir))
    assert manifest["events"]["flows"] == sum(1 for _ in flow_lines(estate_dir))
    assert manifest["events_total"] == sum(manifest["events"].values())
    assert sorted(manifest["campaigns"]) == sorted(CAMPAIGNS)


# --- labels ----------------------------------------------------------------------------------------


def test_every_campaign_appears_in_both_label_files(estate_dir: Path) -> None:
    entities = read_csv(estate_dir / "labels" / "entities.csv")
    activity = read_csv(estate_dir / "labels" / "activity.csv")
    assert {e["campaign"] for e in entities} == set(CAMPAIGNS)
    assert {a["campaign"] for a in activity} == set(CAMPAIGNS)
    assert all(is_label(e["label"]) for e in entities)
    assert all(is_relation(a["type"]) for a in activity)
    assert all(re.fullmatch(r"T\d{4}(\.\d{3})?(;T\d{4}(\.\d{3})?)*", e["technique"]) for e in entities)
    assert all(e["first_malicious"] <= e["last_malicious"] for e in entities)


def test_each_activity_label_is_an_event_in_the_generated_files(estate_dir: Path) -> None:
    trail: set[tuple[str, str]] = set()
    sources: set[tuple[str, str, str]] = set()
    for record in cloudtrail_records(estate_dir):
        principal = principal_of(record)
        trail.add((principal, record["eventTime"]))
        sources.add((principal, uids.ip(record["sourceIPAddress"]), record["eventTime"]))
    flows = set()
    for fields in flow_lines(estate_dir):
        start = datetime.fromtimestamp(int(fields[10]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        flows.add((uids.ip(fields[3]), uids.ip(fields[4]), start))
    gcp = set()
    for path in estate_dir.glob("gcp/audit/*.jsonl"):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            email = entry["protoPayload"]["authenticationInfo"].get("principalEmail", "")
            gcp.add((uids.gcp_service_account(email) if email else "", entry["timestamp"][:19] + "Z"))
            gcp.add(("", entry["timestamp"][:19] + "Z"))
    unmatched = []
    for row in read_csv(estate_dir / "labels" / "activity.csv"):
        src, kind, when = row["src_uid"], row["type"], row["time"]
        if kind == "CONNECTS_TO":
            found = (src, row["dst_uid"], when) in flows
        elif kind == "AUTHENTICATES_FROM":
            found = (src, row["dst_uid"], when) in sources
        elif src.startswith("gcp:"):
            found = (src, when) in gcp
        elif row["dst_uid"].startswith("gcp:"):
            found = ("", when) in gcp
        else:
            found = (src, when) in trail
        if not found:
            unmatched.append(row)
    assert unmatched == []


def test_labelled_uids_name_entities_present_in_the_generated_files(estate_dir: Path) -> None:
    text = "\n".join(
        gzip.decompress(data).decode() if name.endswith(".gz") else data.decode()
        for name, data in all_files(estate_dir).items()
        if not name.startswith("labels/") and name not in ("README.md", "manifest.json")
    )
    missing = []
    for row in read_csv(estate_dir / "labels" / "entities.csv"):
        uid = row["uid"]
        key = uid.split("/")[-1].split(":")[-1] if row["label"] not in ("User", "Role") else uid.split(":", 2)[-1]
        key = uid if uid.startswith("arn:aws:iam::") else key
        if key not in text:
            missing.append(uid)
    assert missing == []


def test_at_most_a_few_percent_of_entities_are_malicious(estate_dir: Path) -> None:
    manifest = json.loads((estate_dir / "manifest.json").read_text())
    assert manifest["labels"]["entities"] <= 0.05 * manifest["nodes_estimate"]


def test_campaigns_option_limits_the_labels(tmp_path: Path) -> None:
    generate(tmp_path / "one", seed=SEED, size="small", campaigns=["insider"])
    assert {e["campaign"] for e in read_csv(tmp_path / "one" / "labels" / "entities.csv")} == {"insider"}


def test_unknown_campaign_or_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="unknown campaign"):
        generate(tmp_path / "x", campaigns=["ransomware"])
    with pytest.raises(SynthError, match="unknown size"):
        generate(tmp_path / "x", size="huge")


# --- benign texture ---------------------------------------------------------------------------------


def test_benign_data_trips_naive_rules(estate_dir: Path) -> None:
    """Night-time calls, cross-account role use and new functions behind gateways all occur without attacks."""
    malicious = {(a["src_uid"], a["time"]) for a in read_csv(estate_dir / "labels" / "activity.csv")}
    night, cross, created, sessions = set(), 0, 0, 0
    for record in cloudtrail_records(estate_dir):
        principal = principal_of(record)
        if (principal, record["eventTime"]) in malicious:
            continue
        hour = int(record["eventTime"][11:13])
        if (hour >= 22 or hour < 6) and record["userIdentity"]["type"] == "IAMUser":
            night.add(principal)
        if record["eventName"] == "AssumeRole" and record["userIdentity"]["type"] == "AWSAccount":
            cross += 1
        created += record["eventName"].startswith("CreateFunction")
        sessions += record["eventName"] == "StartSession"
    assert len(night) >= 2
    assert cross > 10
    assert created >= 1
    assert sessions >= 1


# --- the adapters read it ---------------------------------------------------------------------------

KNOWN_ADAPTER_GAPS: set[tuple[str, str]] = set()
"""Label edges no adapter produces yet: the GCP adapter ignores workload-identity-federation subjects
(``principal://…/subject/arn:aws:sts::…``), so AWS role → GCP service account is not an edge."""


def test_ingest_adapters_read_everything_and_find_every_labelled_uid(estate_dir: Path) -> None:
    items, unrecognised = discover([estate_dir])
    assert [u for u in unrecognised if "/labels/" not in u and not u.endswith((".md", "manifest.json"))] == []
    nodes: dict[str, str] = {}
    edges: set[tuple[str, str, str]] = set()
    bad: list[tuple[str, BadRecord]] = []
    for item in items:
        for record in item.adapter.read(item.path):
            if isinstance(record, Node):
                nodes[record.uid] = record.label
            elif isinstance(record, Edge):
                edges.add((record.src.uid, record.type, record.dst.uid))
                nodes.setdefault(record.src.uid, record.src.label)
                nodes.setdefault(record.dst.uid, record.dst.label)
            else:
                bad.append((str(item.path), record))
    assert bad == []
    entities = read_csv(estate_dir / "labels" / "entities.csv")
    assert [(e["uid"], e["label"]) for e in entities if nodes.get(e["uid"]) != e["label"]] == []
    missing = [
        (a["src_uid"], a["type"], a["dst_uid"])
        for a in read_csv(estate_dir / "labels" / "activity.csv")
        if (a["src_uid"], a["type"], a["dst_uid"]) not in edges
        and not any(a["type"] == kind and a["dst_uid"].startswith(prefix) for kind, prefix in KNOWN_ADAPTER_GAPS)
    ]
    assert missing == []


# --- CLI --------------------------------------------------------------------------------------------


def test_cli_writes_the_estate_and_reports_counts(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "cli"), "--seed", "5",
                                      "--campaigns", "privesc,cryptomining"])
    assert result.exit_code == 0, result.output
    assert "labelled entities in 2 campaigns" in result.output
    campaigns = {e["campaign"] for e in read_csv(tmp_path / "cli" / "labels" / "entities.csv")}
    assert campaigns == {"privesc", "cryptomining"}
    readme = (tmp_path / "cli" / "README.md").read_text()
    assert "--seed 5 --size small --days 1 --campaigns cryptomining,privesc" in readme


def test_cli_rejects_an_unknown_campaign(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "bad"), "--campaigns", "nope"])
    assert result.exit_code == 2
    assert "unknown campaign" in result.output


def test_summary_counts_and_names_match_what_eval_and_ingest_use(tmp_path: Path) -> None:
    """Entities as distinct uids (eval's count), file kinds named after the adapters that read them."""
    import csv

    from gnnsec.ingest import ADAPTERS
    from gnnsec.synth import generate

    summary = generate(tmp_path, seed=8, size="small", days=2)
    with (tmp_path / "labels" / "entities.csv").open(encoding="utf-8") as handle:
        uids = {row["uid"] for row in csv.DictReader(handle)}
    assert summary.malicious_entities == len(uids)
    assert set(summary.files) <= set(ADAPTERS), set(summary.files) - set(ADAPTERS)
