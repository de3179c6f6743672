"""CloudTrail events → ASSUMES_ROLE, START/STOP_VM, LATERAL_MOVEMENT, ACCESS, MODIFIES, AUTHENTICATES_FROM."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

from gnnsec.ingest.base import BadRecord, Edge, Node
from gnnsec.ingest.cloudtrail import CloudTrailAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "aws" / "cloudtrail"
STRATUS = FIXTURES / "stratus-red-team"
OTRF = FIXTURES / "otrf" / "ec2_proxy_s3_exfiltration.jsonl"
PANTHER = FIXTURES / "panther" / "aws_cloudtrail_sample.jsonl"
ALL_FILES = [*sorted(STRATUS.glob("*.json")), OTRF, PANTHER]


def records(path: Path) -> list[object]:
    return list(CloudTrailAdapter().read(path))


def typed(recs: list[object], rel: str) -> list[Edge]:
    return [r for r in recs if isinstance(r, Edge) and r.type == rel]


def stratus(name: str) -> list[object]:
    return records(STRATUS / f"aws.{name}.json")


def test_stratus_samples_have_no_bad_records_and_one_primary_edge_per_event() -> None:
    primary = {"ASSUMES_ROLE", "START_VM", "STOP_VM", "RESTART_VM", "LATERAL_MOVEMENT", "ACCESS", "MODIFIES"}
    for path in sorted(STRATUS.glob("*.json")):
        events = json.loads(path.read_text())
        recs = records(path)
        assert not [r for r in recs if isinstance(r, BadRecord)], path.name
        # every event yields at least one primary edge; only multi-instance calls yield more
        assert len({(e.time, e.action) for e in recs if isinstance(e, Edge) and e.type in primary}) <= len(events)
        assert sum(isinstance(e, Edge) and e.type in primary for e in recs) >= len(events), path.name


def test_assumes_role_edges_match_the_assume_role_events_in_the_stratus_logs() -> None:
    expected = 0
    for path in sorted(STRATUS.glob("*.json")):
        for event in json.loads(path.read_text()):
            parameters = event.get("requestParameters") or {}
            if event["eventName"].startswith("AssumeRole") and parameters.get("roleArn"):
                expected += 1
            if event["eventName"] == "GetFederationToken":
                expected += 1
    found = sum(len(typed(records(path), "ASSUMES_ROLE")) for path in sorted(STRATUS.glob("*.json")))
    assert found == expected == 9


def test_failed_assume_role_without_a_role_arn_is_an_account_access() -> None:
    recs = stratus("credential-access.ec2-get-password-data")
    assert len(typed(recs, "ASSUMES_ROLE")) == 2
    failed = [e for e in typed(recs, "ACCESS") if e.action == "sts:AssumeRole"]
    assert len(failed) == 2
    assert {(e.dst.uid, e.props["error_code"], e.props["failed"]) for e in failed} == {
        ("aws:account:457448411975", "AccessDenied", True)
    }


def test_get_federation_token_assumes_the_federated_user_which_then_acts() -> None:
    recs = stratus("persistence.sts-federation-token")
    federated = "arn:aws:sts::742491224508:federated-user/stratus_red_team"
    assert [(e.src.uid, e.dst.uid) for e in typed(recs, "ASSUMES_ROLE")] == [
        ("arn:aws:iam::742491224508:user/stratus-red-team-user-federation-user", federated)
    ]
    assert [(e.src.uid, e.action) for e in typed(recs, "ACCESS")] == [(federated, "sts:GetCallerIdentity")]


def test_failed_run_instances_names_no_instance_so_it_modifies_the_requested_subnet() -> None:
    recs = stratus("execution.ec2-launch-unusual-instances")
    assert typed(recs, "START_VM") == []
    run = [e for e in recs if isinstance(e, Edge) and e.action == "ec2:RunInstances" and e.type != "AUTHENTICATES_FROM"]
    region = json.loads((STRATUS / "aws.execution.ec2-launch-unusual-instances.json").read_text())[0]["awsRegion"]
    assert [(e.type, e.dst.uid, e.props["error_code"]) for e in run] == [
        (
            "MODIFIES",
            f"arn:aws:ec2:{region}:900138736586:subnet/subnet-0e540f0c7ffb48ae9",
            "Client.UnauthorizedOperation",
        )
    ]
    assert len(typed(recs, "ASSUMES_ROLE")) == 2
    assert run[0].src.uid == "arn:aws:iam::900138736586:role/stratus-red-team-ec2lui-role-idtzskbvtd"


def test_start_and_stop_instances_target_the_vm() -> None:
    recs = stratus("execution.ec2-user-data")
    region = json.loads((STRATUS / "aws.execution.ec2-user-data.json").read_text())[0]["awsRegion"]
    vm = f"arn:aws:ec2:{region}:309303190113:instance/i-DDd6c7B0e18F0E35f"
    assert [(e.dst.uid, e.action) for e in typed(recs, "START_VM")] == [(vm, "ec2:StartInstances")]
    assert [(e.dst.uid, e.action) for e in typed(recs, "STOP_VM")] == [(vm, "ec2:StopInstances")]
    assert [e.action for e in typed(recs, "MODIFIES")] == ["ec2:ModifyInstanceAttribute"]


def test_remote_access_apis_are_lateral_movement_into_each_instance() -> None:
    counts = {
        name: Counter(e.action for e in typed(stratus(name), "LATERAL_MOVEMENT"))
        for name in (
            "lateral-movement.ec2-instance-connect",
            "lateral-movement.ec2-serial-console-send-ssh-public-key",
            "execution.ssm-start-session",
            "execution.ssm-send-command",
        )
    }
    assert counts == {
        "lateral-movement.ec2-instance-connect": {"ec2-instance-connect:SendSSHPublicKey": 3},
        "lateral-movement.ec2-serial-console-send-ssh-public-key": {
            "ec2-instance-connect:SendSerialConsoleSSHPublicKey": 3
        },
        "execution.ssm-start-session": {"ssm:StartSession": 3},
        "execution.ssm-send-command": {"ssm:SendCommand": 3},  # one command, three instances
    }


def test_instance_role_sessions_are_attributed_to_the_vm() -> None:
    recs = records(OTRF)
    vm = "arn:aws:ec2:us-east-1:123456789123:instance/i-0317f6c6b66ae9c40"
    events = [json.loads(line) for line in OTRF.read_text().splitlines() if line.strip()]
    by_vm = [e for e in events if e["userIdentity"].get("arn", "").endswith("/i-0317f6c6b66ae9c40")]
    from_vm = [e for e in recs if isinstance(e, Edge) and e.src.uid == vm and e.type in ("ACCESS", "MODIFIES")]
    assert len(from_vm) == len(by_vm) == 11
    assert {e.dst.uid for e in from_vm} == {
        "arn:aws:s3:::mordors3stack-s3bucket-llp2yingx64a",
        "aws:account:123456789123",
    }
    assert Counter(e.action for e in from_vm) == Counter(f"s3:{e['eventName']}" for e in by_vm)
    # EC2 fetching role credentials for an instance (AWSService, session name i-…) is the VM assuming its role
    service_assumes = [e for e in events if e["userIdentity"]["type"] == "AWSService"]
    assumes = typed(recs, "ASSUMES_ROLE")
    assert len(assumes) == len(service_assumes) == 5
    assert {e.src.label for e in assumes} == {"VM"}
    assert not any(e.src.uid == vm for e in typed(recs, "AUTHENTICATES_FROM") if e.dst.uid == "ip:ec2.amazonaws.com")


def test_otrf_timestamps_fall_back_to_at_timestamp_and_users_authenticate_from_their_ip() -> None:
    recs = records(OTRF)
    assert not [r for r in recs if isinstance(r, BadRecord)]
    user = "arn:aws:iam::123456789123:user/pedro"
    authenticated = [e for e in typed(recs, "AUTHENTICATES_FROM") if e.src.uid == user]
    assert len(authenticated) == 87 and {e.dst.uid for e in authenticated} == {"ip:1.2.3.4"}
    first, last = (min(e.time for e in authenticated), max(e.time for e in authenticated))
    seen = [n.seen for n in recs if isinstance(n, Node) and n.uid == user]
    # emitted at first sighting, again for any earlier sighting (the file is not sorted), and the latest at the end
    assert (min(seen), max(seen), seen[-1]) == (first, last, last)
    assert len(seen) < 10


def test_root_and_cross_account_principals_are_cloud_accounts_and_panther_wrapping_is_unwrapped() -> None:
    recs = records(PANTHER)
    sources = {(e.src.label, e.src.uid) for e in recs if isinstance(e, Edge) and e.type in ("ACCESS", "MODIFIES")}
    events = [json.loads(line)["log"] for line in PANTHER.read_text().splitlines()]
    roots = {
        e["userIdentity"]["accountId"]
        for e in events
        if (e.get("userIdentity") or {}).get("type") == "Root" and e.get("eventTime")
    }
    assert roots and {("CloudAccount", f"aws:account:{a}") for a in roots} <= sources
    bad = [r for r in recs if isinstance(r, BadRecord)]
    missing = [
        i
        for i, e in enumerate(events, 1)
        if not str(e.get("eventTime", ""))[:1].isdigit()
        or not isinstance(e.get("userIdentity"), dict)
        or not e.get("eventName")
    ]
    assert sorted(int(b.where.split()[1]) for b in bad) == missing


def test_cross_account_assume_role_adds_cross_cloud_access(tmp_path: Path) -> None:
    event = {
        "eventTime": "2024-05-01T10:00:00Z",
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRole",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.9",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333"},
        "requestParameters": {"roleArn": "arn:aws:iam::444455556666:role/partner/audit", "roleSessionName": "s"},
    }
    path = tmp_path / "trail.json"
    path.write_text(json.dumps({"Records": [event]}))
    recs = records(path)
    assert [(e.src.uid, e.dst.uid) for e in typed(recs, "ASSUMES_ROLE")] == [
        ("arn:aws:iam::111122223333:user/alice", "arn:aws:iam::444455556666:role/partner/audit")
    ]
    assert [(e.dst.uid, e.action) for e in typed(recs, "CROSS_CLOUD_ACCESS")] == [
        ("aws:account:444455556666", "sts:AssumeRole")
    ]
    assert [e.dst.uid for e in typed(recs, "AUTHENTICATES_FROM")] == ["ip:203.0.113.9"]


def test_gzip_and_json_lines_give_the_same_records_as_the_array(tmp_path: Path) -> None:
    source = STRATUS / "aws.execution.ssm-send-command.json"
    events = json.loads(source.read_text())
    gz = tmp_path / "trail.json.gz"
    gz.write_bytes(gzip.compress(json.dumps({"Records": events}).encode()))
    lines = tmp_path / "trail.jsonl"
    lines.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    gz_lines = tmp_path / "trail.jsonl.gz"
    gz_lines.write_bytes(gzip.compress(lines.read_bytes()))
    expected = records(source)
    assert len(expected) > len(events)
    for path in (gz, lines, gz_lines):
        assert CloudTrailAdapter().sniff(path)
        assert records(path) == expected


def test_malformed_records_are_bad_records_naming_their_place(tmp_path: Path) -> None:
    events = json.loads((STRATUS / "aws.execution.ec2-user-data.json").read_text())[:5]
    del events[3]["eventTime"]
    path = tmp_path / "trail.json"
    path.write_text(json.dumps({"Records": events}))
    bad = [r for r in records(path) if isinstance(r, BadRecord)]
    assert [(b.where, b.reason) for b in bad] == [("Records[3]", "CloudTrail record without eventTime")]
    lines = [json.dumps(e) for e in json.loads((STRATUS / "aws.execution.ec2-user-data.json").read_text())[:8]]
    lines[6] = '{"eventName": "GetObject", '
    path = tmp_path / "trail.jsonl"
    path.write_text("\n".join(lines) + "\n")
    bad = [r for r in records(path) if isinstance(r, BadRecord)]
    assert [b.where for b in bad] == ["line 7"]
    # the 7 good lines: 5 DescribeInstances (ACCESS), StartInstances, ModifyInstanceAttribute
    assert sum(isinstance(r, Edge) and r.type == "ACCESS" for r in records(path)) == 5


def test_sniff_accepts_cloudtrail_and_rejects_other_aws_exports() -> None:
    adapter = CloudTrailAdapter()
    assert all(adapter.sniff(p) for p in ALL_FILES)
    other = Path(__file__).parent / "fixtures" / "aws"
    assert not adapter.sniff(other / "iam" / "cloudsplaining-example-authz-details.json")
    assert not adapter.sniff(other / "inventory" / "cloudmapper-demo" / "us-east-1" / "ec2-describe-instances.json")
    assert not adapter.sniff(STRATUS)
