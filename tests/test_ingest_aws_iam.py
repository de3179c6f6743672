"""The aws-iam adapter: authorization details → users, roles, trust (CAN_ASSUME) and grants (GRANTS_ACCESS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ingest_support import edge_pairs, nodes_by_uid

from gnnsec.ingest.aws_iam import AwsIamAdapter
from gnnsec.ingest.base import AdapterError, Edge, Node

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
CLOUDSPLAINING = FIXTURES / "iam" / "cloudsplaining-example-authz-details.json"
CLOUDMAPPER = FIXTURES / "inventory" / "cloudmapper-demo" / "us-east-1" / "iam-get-account-authorization-details.json"
EXTRA = FIXTURES / "iam-extra" / "authz-trust-and-grants.json"
A = "111122223333"


def records(path: Path, **kwargs: object) -> list[object]:
    return list(AwsIamAdapter(**kwargs).read(path))  # type: ignore[arg-type]


nodes = nodes_by_uid
edges = edge_pairs


def test_cloudsplaining_counts_match_the_json() -> None:
    document = json.loads(CLOUDSPLAINING.read_text())
    recs = records(CLOUDSPLAINING)
    assert set(nodes(recs, "User")) == {u["Arn"] for u in document["UserDetailList"]}
    assert set(nodes(recs, "Role")) == {r["Arn"] for r in document["RoleDetailList"]}
    assert len(nodes(recs, "User")) == 3 and len(nodes(recs, "Role")) == 3
    aws_principals = [
        s
        for r in document["RoleDetailList"]
        for s in r["AssumeRolePolicyDocument"]["Statement"]
        if "AWS" in s.get("Principal", {})
    ]
    assert aws_principals == []  # every role trusts a service only …
    assert edges(recs, "CAN_ASSUME") == set()  # … so no CAN_ASSUME edge, the services are recorded instead
    assert nodes(recs, "Role")["arn:aws:iam::012345678901:role/MyRole"].props["trusted_services"] == [
        "ssm.amazonaws.com"
    ]
    assert nodes(recs, "CloudAccount").keys() == {"aws:account:012345678901"}
    assert len(edges(recs, "CONTAINS")) == 6


def test_admin_comes_from_attached_policy_or_group_membership() -> None:
    users = nodes(records(CLOUDSPLAINING), "User")
    assert users["arn:aws:iam::012345678901:user/obama"].props["is_admin"] is True
    assert users["arn:aws:iam::012345678901:user/userwithlotsofpermissions"].props["is_admin"] is True  # via group
    biden = users["arn:aws:iam::012345678901:user/biden"].props
    assert biden["is_admin"] is False
    assert "lambda" in biden["full_access_services"] and "rds" in biden["full_access_services"]  # group policy
    assert biden["groups"] == ["biden"]


def test_instance_profiles_are_recorded_on_the_role() -> None:
    role = nodes(records(CLOUDSPLAINING), "Role")["arn:aws:iam::012345678901:role/OverprivilegedEC2"]
    assert role.props["instance_profiles"] == ["arn:aws:iam::012345678901:instance-profile/OverprivilegedEC2"]
    assert role.props["is_service_role"] is True


def test_trust_policies_become_can_assume_from_users_roles_and_accounts() -> None:
    recs = records(EXTRA)
    assert edges(recs, "CAN_ASSUME") == {
        (f"arn:aws:iam::{A}:user/alice", f"arn:aws:iam::{A}:role/deploy-prod"),
        ("aws:account:444455556666", f"arn:aws:iam::{A}:role/deploy-prod"),
        (f"aws:account:{A}", f"arn:aws:iam::{A}:role/deploy-staging"),
        (f"arn:aws:iam::{A}:role/ops/ci-runner", f"arn:aws:iam::{A}:role/deploy-staging"),
    }  # the Deny statement for bob adds nothing
    conditional = {(e.src.uid, e.props["conditional"]) for e in recs if isinstance(e, Edge) and e.type == "CAN_ASSUME"}
    assert ("aws:account:444455556666", True) in conditional
    roles = nodes(recs, "Role")
    assert roles[f"arn:aws:iam::{A}:role/deploy-prod"].props["trusts_external_account"] is True
    assert roles[f"arn:aws:iam::{A}:role/deploy-staging"].props["trusts_external_account"] is False
    assert roles[f"arn:aws:iam::{A}:role/open-role"].props["trusts_any_principal"] is True
    assert roles[f"arn:aws:iam::{A}:role/okta-admin"].props["trusted_federated"] == [
        f"arn:aws:iam::{A}:saml-provider/Okta"
    ]
    assert roles[f"arn:aws:iam::{A}:role/okta-admin"].props["is_admin"] is True
    assert "aws:account:444455556666" in nodes(recs, "CloudAccount")


def test_grants_resolve_concrete_arns_and_role_wildcards_but_not_unknown_bucket_wildcards() -> None:
    recs = records(EXTRA)
    alice = f"arn:aws:iam::{A}:user/alice"
    assert {dst for src, dst in edges(recs, "GRANTS_ACCESS") if src == alice} == {
        "arn:aws:s3:::reports-bucket",
        f"arn:aws:lambda:us-west-2:{A}:function:billing",
        f"arn:aws:rds:us-west-2:{A}:db:orders",
        f"arn:aws:ec2:us-west-2:{A}:instance/i-0abc12345def67890",
        "k8s:cluster:prod",  # EKS clusters are keyed by name, like kubectl exports
        f"arn:aws:iam::{A}:role/deploy-prod",
        f"arn:aws:iam::{A}:role/deploy-staging",
    }
    grant = next(
        e for e in recs if isinstance(e, Edge) and e.type == "GRANTS_ACCESS" and e.dst.uid.endswith("reports-bucket")
    )
    assert grant.props["actions"] == ["s3:GetObject", "s3:ListBucket"]  # inline + group's default policy version
    assert grant.props["policies"] == ["ReadReports", "alice-inline"]
    assert not any(dst.endswith("old-bucket") for _, dst in edges(recs, "GRANTS_ACCESS"))  # non-default version
    ci = nodes(recs, "Role")[f"arn:aws:iam::{A}:role/ops/ci-runner"].props
    assert ci["full_access_services"] == ["s3"] and ci["is_admin"] is False
    assert nodes(recs, "User")[f"arn:aws:iam::{A}:user/ops/bob"].props["is_admin"] is True


def test_bucket_wildcards_match_the_buckets_the_caller_knows() -> None:
    known = {"arn:aws:s3:::logs-archive": "Bucket", "arn:aws:s3:::data": "Bucket"}
    recs = records(EXTRA, known_resources=known)
    assert (f"arn:aws:iam::{A}:user/alice", "arn:aws:s3:::logs-archive") in edges(recs, "GRANTS_ACCESS")
    assert (f"arn:aws:iam::{A}:user/alice", "arn:aws:s3:::data") not in edges(recs, "GRANTS_ACCESS")


def test_users_without_an_account_in_their_arn_take_the_files_account() -> None:
    users = nodes(records(CLOUDMAPPER), "User")
    assert set(users) == {
        "arn:aws:iam::123456789012:user/USER_WITH_BAD_INLINE_POLICY",
        "arn:aws:iam::123456789012:user/USER",
    }


def test_properties_are_neo4j_storable() -> None:
    for record in records(EXTRA) + records(CLOUDSPLAINING):
        if isinstance(record, Node | Edge):
            for value in record.props.values():
                assert value is not None and not isinstance(value, dict)
                if isinstance(value, list):
                    assert len({type(v) for v in value}) <= 1


def test_sniff_accepts_authorization_details_only(tmp_path: Path) -> None:
    adapter = AwsIamAdapter()
    assert adapter.sniff(CLOUDSPLAINING) and adapter.sniff(EXTRA)
    assert not adapter.sniff(FIXTURES / "cloudtrail" / "otrf" / "ec2_proxy_s3_exfiltration.jsonl")
    assert not adapter.sniff(FIXTURES / "inventory" / "cloudmapper-demo")


def test_a_file_that_is_not_authorization_details_is_an_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "authz.json"
    bad.write_text('{"Something": []}')
    with pytest.raises(AdapterError, match=r"authz\.json"):
        records(bad)
    broken = tmp_path / "broken.json"
    broken.write_text('{"UserDetailList": [')
    with pytest.raises(AdapterError, match=r"broken\.json"):
        records(broken)
