"""The aws-inventory adapter: a directory of AWS CLI outputs → VMs, networks, storage, services."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _ingest_support import edge_pairs, nodes_by_uid

from gnnsec.ingest.aws_inventory import AwsInventoryAdapter
from gnnsec.ingest.base import AdapterError

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
DEMO = FIXTURES / "inventory" / "cloudmapper-demo"
EXTRA = FIXTURES / "inventory-extra"
A, R = "111122223333", "us-west-2"
DEMO_VM = "arn:aws:ec2:us-east-1:123456789012:instance/"


def records(path: Path) -> list[object]:
    return list(AwsInventoryAdapter().read(path))


nodes = nodes_by_uid
edges = edge_pairs


def test_demo_instances_become_vms_with_network_placement() -> None:
    recs = records(DEMO)
    document = json.loads((DEMO / "us-east-1" / "ec2-describe-instances.json").read_text())
    ids = {i["InstanceId"] for r in document["Reservations"] for i in r["Instances"]}
    vms = nodes(recs, "VM")
    assert {uid for uid, n in vms.items() if "instance_type" in n.props} == {DEMO_VM + i for i in ids}
    bastion = vms[DEMO_VM + "i-00000000000000000"].props
    assert (bastion["name"], bastion["public"], bastion["instance_type"], bastion["state"]) == (
        "Bastion",
        True,
        "t2.micro",
        "running",
    )
    assert bastion["image_id"] == "ami-00000000" and bastion["launch_time"].year == 2017
    assert (DEMO_VM + "i-00000000000000000", "ip:1.2.3.4") in edges(recs, "HAS_IP")
    assert ("arn:aws:ec2:us-east-1:123456789012:subnet/subnet-00000001", DEMO_VM + "i-00000000000000000") in edges(
        recs, "CONTAINS"
    )
    assert vms[DEMO_VM + "i-00000000000000001"].props["public"] is False


def test_demo_vpc_subnets_buckets_functions_databases_balancers_clusters() -> None:
    recs = records(DEMO)
    subnets = nodes(recs, "Subnet")
    vpc = "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-12345678"
    assert subnets[vpc].props["kind"] == "vpc"
    assert {dst for src, dst in edges(recs, "CONTAINS") if src == vpc} == {
        f"arn:aws:ec2:us-east-1:123456789012:subnet/subnet-0000000{i}" for i in range(1, 5)
    }
    assert nodes(recs, "Bucket")["arn:aws:s3:::cloudmapper_demo"].props["public"] is True  # policy allows "*"
    function = "arn:aws:lambda:us-east-1:123456789012:function:invpclambda"
    assert (function, "arn:aws:iam::123456789012:role/service-role/invpclambda") in edges(recs, "CAN_ASSUME")
    assert ("arn:aws:apigateway:us-east-1::/restapis/2rfismmoo8", function) in edges(recs, "TRIGGERS")
    database = nodes(recs, "Database")["arn:aws:rds:us-east-1:123456789012:db:database"].props
    assert (database["publicly_accessible"], database["encrypted"], database["engine"]) == (False, True, "postgres")
    elb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/weblb"
    assert {dst for src, dst in edges(recs, "ROUTES_TO") if src == elb} == {
        DEMO_VM + "i-00000000000000002",
        DEMO_VM + "i-00000000000000003",
    }
    assert nodes(recs, "LoadBalancer")[elb].props["open_to_internet_ports"] == [443]
    assert set(nodes(recs, "Cluster")) == {"arn:aws:ecs:us-east-1:123456789012:cluster/myecs"}


def test_demo_account_contains_top_level_resources_and_carries_root_facts() -> None:
    recs = records(DEMO)
    account = nodes(recs, "CloudAccount")["aws:account:123456789012"]
    assert account.props["root_mfa_enabled"] is True
    contained = {dst for src, dst in edges(recs, "CONTAINS") if src == "aws:account:123456789012"}
    assert {
        "arn:aws:s3:::cloudmapper_demo",
        DEMO_VM + "i-00000000000000000",
        "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-12345678",
    } <= contained
    assert not any(":subnet/" in uid for uid in contained)
    user = nodes(recs, "User")["arn:aws:iam::123456789012:user/user"].props  # from the credential report
    assert (user["mfa_enabled"], user["has_console_password"], user["access_key_count"]) == (False, True, 2)


def test_security_groups_open_to_the_internet_show_on_the_vm() -> None:
    vm = nodes(records(EXTRA), "VM")[f"arn:aws:ec2:{R}:{A}:instance/i-0abc12345def67890"].props
    assert vm["open_to_internet"] is True
    assert vm["open_to_internet_ports"] == [22]
    assert vm["open_to_internet_ranges"] == ["tcp:22", "tcp:8000-8100"]  # the 10/8 rule is not internet
    assert vm["imdsv2_required"] is True
    other = nodes(records(EXTRA), "VM")[f"arn:aws:ec2:{R}:{A}:instance/i-0fedcba9876543210"].props
    assert other["open_to_internet"] is False


def test_instance_profiles_join_vms_to_roles_via_iam_export_or_profile_name() -> None:
    assert {e for e in edges(records(EXTRA), "CAN_ASSUME") if ":instance/" in e[0]} == {
        (f"arn:aws:ec2:{R}:{A}:instance/i-0abc12345def67890", f"arn:aws:iam::{A}:role/ops/ci-runner"),  # IAM export
        (f"arn:aws:ec2:{R}:{A}:instance/i-0fedcba9876543210", f"arn:aws:iam::{A}:role/batch"),  # same-name convention
    }


def test_extra_services_map_to_their_labels() -> None:
    recs = records(EXTRA)
    buckets = nodes(recs, "Bucket")
    assert buckets["arn:aws:s3:::data"].props["public"] is True and buckets["arn:aws:s3:::data"].props[
        "public_via"
    ] == ["acl"]
    assert buckets["arn:aws:s3:::logs-archive"].props["public"] is False  # public access block
    assert buckets["arn:aws:s3:::logs-archive"].props["region"] == R
    function = f"arn:aws:lambda:{R}:{A}:function:billing"
    assert edges(recs, "TRIGGERS") == {
        ("arn:aws:s3:::logs-archive", function),
        (f"arn:aws:apigateway:{R}::/restapis/a1b2c3d4e5", function),
    }
    assert (f"arn:aws:ec2:{R}:{A}:subnet/subnet-0aaa1111", function) in edges(recs, "CONTAINS")
    db = nodes(recs, "Database")[f"arn:aws:rds:{R}:{A}:db:orders"].props
    assert (db["publicly_accessible"], db["encrypted"], db["open_to_internet_ports"]) == (True, False, [22])
    lb = f"arn:aws:elasticloadbalancing:{R}:{A}:loadbalancer/app/web-alb/50dc6c495c0c9188"
    assert edges(recs, "ROUTES_TO") == {(lb, f"arn:aws:ec2:{R}:{A}:instance/i-0fedcba9876543210")}
    cluster = nodes(recs, "Cluster")["k8s:cluster:prod"].props
    assert (cluster["kind"], cluster["endpoint_public"], cluster["version"]) == ("eks", True, "1.29")
    gateway = nodes(recs, "Gateway")[f"arn:aws:apigateway:{R}::/restapis/a1b2c3d4e5"].props
    assert (gateway["name"], gateway["public"]) == ("billing-api", True)


def test_iam_export_in_the_tree_is_mapped_with_inventory_buckets_as_known_resources() -> None:
    grants = edges(records(EXTRA), "GRANTS_ACCESS")
    assert (f"arn:aws:iam::{A}:user/alice", "arn:aws:s3:::logs-archive") in grants  # arn:aws:s3:::logs-* matched


def test_a_single_file_is_read_with_region_from_its_folder() -> None:
    recs = records(DEMO / "us-east-1" / "ec2-describe-instances.json")
    assert len([uid for uid in nodes(recs, "VM") if uid.startswith(DEMO_VM)]) == 3


def test_account_falls_back_to_a_twelve_digit_folder_and_fails_loudly_without_one(tmp_path: Path) -> None:
    folder = tmp_path / "999988887777" / "eu-west-1"
    folder.mkdir(parents=True)
    shutil.copy(EXTRA / R / "ec2-describe-subnets.json", folder)
    assert "aws:account:999988887777" in nodes(records(tmp_path / "999988887777"), "CloudAccount")
    anonymous = tmp_path / "export" / "eu-west-1"
    anonymous.mkdir(parents=True)
    shutil.copy(EXTRA / R / "ec2-describe-subnets.json", anonymous)
    with pytest.raises(AdapterError, match="cannot tell the AWS account"):
        records(tmp_path / "export")


def test_a_corrupt_file_is_an_error_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "123456789012" / "us-east-1"
    folder.mkdir(parents=True)
    (folder / "ec2-describe-vpcs.json").write_text('{"Vpcs": [')
    with pytest.raises(AdapterError, match=r"ec2-describe-vpcs\.json"):
        records(tmp_path)


def test_sniff_accepts_inventory_directories_and_files_only() -> None:
    adapter = AwsInventoryAdapter()
    assert (
        adapter.sniff(DEMO)
        and adapter.sniff(EXTRA)
        and adapter.sniff(DEMO / "us-east-1" / "ec2-describe-instances.json")
    )
    assert not adapter.sniff(FIXTURES / "cloudtrail" / "stratus-red-team")
    assert not adapter.sniff(FIXTURES / "iam" / "cloudsplaining-example-authz-details.json")
