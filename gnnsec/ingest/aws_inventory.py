"""A directory of AWS CLI JSON outputs (``<region>/<service>-<call>.json``) → the estate's inventory.

This is the layout CloudMapper's ``collect`` writes and what ``aws <service> <call> --output
json > <region>/<service>-<call>.json`` loops produce. Per-resource calls sit in a folder named
after the call with one file per resource (``s3-get-bucket-policy/<bucket>``,
``lambda-get-policy/<function>``, ``elbv2-describe-target-health/<url-encoded target group ARN>``,
``eks-describe-cluster/<name>``).

The whole directory is read before anything is yielded (inventories are small) so that
security groups can be folded into the VMs that use them, and so that every edge endpoint is
emitted as a node first. An ``iam-get-account-authorization-details.json`` in the tree is
mapped by :class:`~gnnsec.ingest.aws_iam.AwsIamAdapter` with this inventory's assets as known
resources (so wildcard policy ARNs resolve) and gives the instance-profile → role join used for
VM CAN_ASSUME Role; without it the role is taken to be the one named like the profile (path
``/``), which is what the console and most IaC create.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import orjson

from gnnsec.ingest import uids
from gnnsec.ingest.aws_common import (
    CLOUD,
    account_node,
    account_ref,
    as_list,
    clean_props,
    eks_cluster_uid,
    elbv2_name,
    gateway_uid,
    ip_node,
    is_account_id,
    parse_arn,
    policy_statements,
    resolve_arn,
    stub_node,
    tag_value,
)
from gnnsec.ingest.aws_iam import AwsIamAdapter, role_by_instance_profile
from gnnsec.ingest.base import AdapterError, Edge, Node, NodeRef, Record
from gnnsec.ingest.jsonio import load_json, parse_time

REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
AUTHZ_FILE = "iam-get-account-authorization-details.json"
# The files read are the keys of FILE_HANDLERS (HANDLED_FILES), defined after the _Context methods it names.
PUBLIC_ACL_GROUPS = ("http://acs.amazonaws.com/groups/global/AllUsers",
                     "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
TOP_LEVEL_LABELS = frozenset({"VM", "Bucket", "Function", "Database", "LoadBalancer", "Cluster", "Gateway", "User"})
"""Labels the account CONTAINS directly (subnets hang off their VPC, IPs off their subnet)."""


class _Graph:
    """Nodes merged by (label, uid) and edges deduplicated, so each is yielded once."""

    def __init__(self) -> None:
        self.nodes: dict[NodeRef, dict[str, Any]] = {}
        self.edges: dict[tuple[str, NodeRef, NodeRef], dict[str, Any]] = {}

    def node(self, label: str, uid: str, props: dict[str, Any]) -> NodeRef:
        ref = NodeRef(label, uid)
        self.nodes.setdefault(ref, {}).update(clean_props(props))
        return ref

    def ensure(self, label: str, uid: str, props: dict[str, Any]) -> NodeRef:
        """A node for ``(label, uid)`` with ``props`` only when it is new: what is known already is kept."""
        ref = NodeRef(label, uid)
        if ref not in self.nodes:
            self.node(label, uid, props)
        return ref

    def stub(self, ref: NodeRef) -> NodeRef:
        """Make sure a node exists for ``ref`` without overwriting what is known about it."""
        if ref not in self.nodes:
            self.nodes[ref] = dict(stub_node(ref).props)
        return ref

    def edge(self, rel: str, src: NodeRef, dst: NodeRef, props: dict[str, Any] | None = None) -> None:
        self.stub(src)
        self.stub(dst)
        self.edges.setdefault((rel, src, dst), {}).update(clean_props(props or {}))

    def records(self) -> Iterator[Record]:
        for ref, props in self.nodes.items():
            yield Node(ref.label, ref.uid, props)
        for (rel, src, dst), props in self.edges.items():
            yield Edge(rel, src, dst, props)


class AwsInventoryAdapter:
    """Maps a CloudMapper-style AWS CLI export directory onto VMs, networks, storage and services."""

    name: ClassVar[str] = "aws-inventory"
    description: ClassVar[str] = "directory of AWS CLI JSON outputs laid out <region>/<service>-<call>.json"

    def sniff(self, path: Path) -> bool:
        if path.is_file():
            return path.name in HANDLED_FILES and path.name != AUTHZ_FILE
        if not path.is_dir():
            return False
        return any(p.name in HANDLED_FILES for p in _walk_json(path, max_depth=2))

    def read(self, path: Path) -> Iterator[Record]:
        files = self._files(path)
        if not files:
            raise AdapterError(path, f"no AWS CLI inventory files ({', '.join(sorted(HANDLED_FILES))[:120]}…)")
        docs: dict[Path, Any] = {file: load_json(file, plain=True) for file in files}
        account = _account(path, docs)
        ctx = _Context(account, docs)
        graph = _Graph()
        graph.node("CloudAccount", uids.aws_account(account), dict(account_node(account).props))
        region_of = {f: _region_of(f, docs) for f in files}
        for region in sorted(set(region_of.values())):
            ctx.map_region(graph, region, {f.name: f for f in files if region_of[f] == region})
        for ref in list(graph.nodes):
            top_level = ref.label in TOP_LEVEL_LABELS or graph.nodes[ref].get("kind") == "vpc"
            if top_level and graph.nodes[ref].get("account") == account:
                graph.edge("CONTAINS", account_ref(account), ref)
        yield from graph.records()
        known = {ref.uid: ref.label for ref in graph.nodes}
        for file, doc in docs.items():
            if file.name == AUTHZ_FILE and isinstance(doc, dict):
                yield from AwsIamAdapter(known).map_document(doc)

    def _files(self, path: Path) -> list[Path]:
        if path.is_file():
            return [path] if path.name in HANDLED_FILES else []
        return sorted(p for p in _walk_json(path, max_depth=8) if p.name in HANDLED_FILES)


# ---- reading ------------------------------------------------------------------------------


def _walk_json(root: Path, max_depth: int) -> Iterator[Path]:
    """``*.json`` files under ``root`` at most ``max_depth`` folders deep, without following links."""
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if depth < max_depth:
                    stack.append((Path(entry.path), depth + 1))
            elif entry.name.endswith(".json"):
                yield Path(entry.path)


def _region_of(file: Path, docs: dict[Path, Any]) -> str:
    """The region folder a file sits in, else the region its content names (AZs, ARNs)."""
    if REGION_RE.match(file.parent.name):
        return file.parent.name
    text = orjson.dumps(docs.get(file)).decode()
    match = re.search(r'"(?:AvailabilityZone|ZoneName)":"([a-z]{2}(?:-[a-z]+)+-\d+)[a-z]"', text)
    if match:
        return match.group(1)
    match = re.search(r"arn:aws:[a-z0-9-]+:([a-z]{2}(?:-[a-z]+)+-\d+):", text)
    return match.group(1) if match else "global"


def _account(path: Path, docs: dict[Path, Any]) -> str:
    """The account: ARNs and owner ids in the data, else STS/IAM exports, else a 12-digit folder name."""
    votes: Counter[str] = Counter()
    for file, doc in docs.items():
        name = file.name
        if name == "ec2-describe-instances.json":
            for reservation in as_list(_get(doc, "Reservations")):
                votes[str(_get(reservation, "OwnerId"))] += 1
        elif name in ("lambda-list-functions.json", "rds-describe-db-instances.json",
                      "elbv2-describe-load-balancers.json", "ecs-list-clusters.json"):
            for match in re.finditer(r"arn:aws:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):", orjson.dumps(doc).decode()):
                votes[match.group(1)] += 1
    votes = Counter({k: v for k, v in votes.items() if is_account_id(k)})
    if votes:
        return votes.most_common(1)[0][0]
    for file, doc in docs.items():
        if file.name == "sts-get-caller-identity.json" and is_account_id(_get(doc, "Account")):
            return str(doc["Account"])
    sibling = (path if path.is_dir() else path.parent) / "sts-get-caller-identity.json"
    if sibling.is_file() and is_account_id(_get(load_json(sibling, plain=True), "Account")):
        return str(load_json(sibling, plain=True)["Account"])
    for file, doc in docs.items():
        if file.name == AUTHZ_FILE:
            for match in re.finditer(r"arn:aws:iam::(\d{12}):", orjson.dumps(doc).decode()):
                return match.group(1)
    for part in reversed(path.resolve().parts):
        if is_account_id(part):
            return part
    raise AdapterError(
        path,
        "cannot tell the AWS account: no ARNs in the data, no sts-get-caller-identity.json, "
        "no authorization details and no 12-digit folder name",
    )


def _get(doc: Any, key: str) -> Any:
    return doc.get(key) if isinstance(doc, dict) else None


def _with_id(doc: Any, key: str, id_key: str) -> Iterator[tuple[str, Any]]:
    """``(id, entry)`` for each entry of the list ``doc[key]`` whose ``id_key`` is a string (one without an id
    names nothing the graph could hold)."""
    for entry in as_list(_get(doc, key)):
        entry_id = _get(entry, id_key)
        if isinstance(entry_id, str):
            yield entry_id, entry


def _time(value: Any) -> Any:
    try:
        return parse_time(value) if value not in (None, "") else None
    except (ValueError, OverflowError):
        return None


def _allows_anyone(statement: dict[str, Any]) -> bool:
    """An unconditional Allow to ``*`` (or ``{"AWS": "*"}``): the resource is public."""
    if statement.get("Effect") != "Allow" or statement.get("Condition"):
        return False
    principal = statement.get("Principal")
    return principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS")))


# ---- mapping ------------------------------------------------------------------------------


class _Context:
    def __init__(self, account: str, docs: dict[Path, Any]) -> None:
        self.account = account
        self.docs = docs
        self.profile_roles: dict[str, str] = {}
        for file, doc in docs.items():
            if file.name == AUTHZ_FILE and isinstance(doc, dict):
                self.profile_roles.update(role_by_instance_profile(doc))
        self.open_ports: dict[str, tuple[list[int], list[str]]] = {}

    def base(self, region: str, name: str, **props: Any) -> dict[str, Any]:
        return {"name": name, "cloud": CLOUD, "account": self.account, "region": region, **props}

    def map_region(self, graph: _Graph, region: str, files: dict[str, Path]) -> None:
        """Every handler of :data:`FILE_HANDLERS` in its order, with its file's document or None when the region
        has no such file (a handler may still read the per-resource files of the folder)."""
        folder = next(iter(files.values())).parent
        for name, handler in FILE_HANDLERS.items():
            if handler is not None:
                handler(self, graph, region, folder, self.docs.get(files[name]) if name in files else None)

    # -- helpers

    def _sub(self, folder: Path, call: str, resource: str) -> Any:
        """A per-resource file ``<folder>/<call>/<resource>`` if it exists (names may be URL-encoded)."""
        for name in (resource, resource.replace(":", "%3A").replace("/", "%2F")):
            candidate = folder / call / name
            if candidate.is_file():
                return load_json(candidate, plain=True)
        return None

    def _ensure_vm(self, graph: _Graph, region: str, instance_id: str) -> NodeRef:
        uid = uids.aws_ec2_instance(region, self.account, instance_id)
        return graph.ensure("VM", uid, self.base(region, instance_id, instance_id=instance_id))

    def _ensure_subnet(self, graph: _Graph, region: str, subnet_id: str) -> NodeRef:
        uid = uids.aws_subnet(region, self.account, subnet_id)
        return graph.ensure("Subnet", uid, self.base(region, subnet_id, subnet_id=subnet_id, kind="subnet"))

    def _ip(self, graph: _Graph, owner: NodeRef, address: Any, subnet: NodeRef | None = None) -> None:
        if not isinstance(address, str) or not address:
            return
        node = ip_node(address)
        ref = graph.node("IP", node.uid, dict(node.props))
        graph.edge("HAS_IP", owner, ref)
        if subnet is not None and not node.props["public"]:
            graph.edge("CONTAINS", subnet, ref)

    def _exposure(self, group_ids: list[str]) -> dict[str, Any]:
        """Internet exposure of a resource from the security groups it uses."""
        ports: set[int] = set()
        ranges: set[str] = set()
        for group_id in group_ids:
            found = self.open_ports.get(group_id)
            if found:
                ports.update(found[0])
                ranges.update(found[1])
        if not any(g in self.open_ports for g in group_ids):
            return {}
        return {
            "security_groups": sorted(group_ids),
            "open_to_internet": bool(ranges),
            "open_to_internet_ports": sorted(ports),
            "open_to_internet_ranges": sorted(ranges),
        }

    # -- EC2 networking

    def _security_groups(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for group_id, group in _with_id(doc, "SecurityGroups", "GroupId"):
            ports: list[int] = []
            ranges: list[str] = []
            for rule in as_list(_get(group, "IpPermissions")):
                cidrs = [_get(r, "CidrIp") for r in as_list(_get(rule, "IpRanges"))]
                cidrs += [_get(r, "CidrIpv6") for r in as_list(_get(rule, "Ipv6Ranges"))]
                if "0.0.0.0/0" not in cidrs and "::/0" not in cidrs:
                    continue
                protocol = str(_get(rule, "IpProtocol"))
                low, high = _get(rule, "FromPort"), _get(rule, "ToPort")
                if protocol == "-1" or low is None:
                    ranges.append("all")
                elif low == high:
                    ports.append(int(low))
                    ranges.append(f"{protocol}:{low}")
                else:
                    ranges.append(f"{protocol}:{low}-{high}")
            self.open_ports[group_id] = (ports, ranges)

    def _vpcs(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for vpc_id, vpc in _with_id(doc, "Vpcs", "VpcId"):
            name = tag_value(_get(vpc, "Tags")) or vpc_id
            graph.node("Subnet", uids.aws_vpc(region, self.account, vpc_id), self.base(
                region, name, kind="vpc", vpc_id=vpc_id, cidr=_get(vpc, "CidrBlock"),
                is_default=_get(vpc, "IsDefault"), state=_get(vpc, "State")))

    def _subnets(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for subnet_id, subnet in _with_id(doc, "Subnets", "SubnetId"):
            vpc_id = _get(subnet, "VpcId")
            ref = graph.node("Subnet", uids.aws_subnet(region, self.account, subnet_id), self.base(
                region, tag_value(_get(subnet, "Tags")) or subnet_id, kind="subnet", subnet_id=subnet_id,
                vpc_id=vpc_id, cidr=_get(subnet, "CidrBlock"), availability_zone=_get(subnet, "AvailabilityZone"),
                map_public_ip_on_launch=_get(subnet, "MapPublicIpOnLaunch"), state=_get(subnet, "State")))
            if isinstance(vpc_id, str):
                vpc = graph.ensure("Subnet", uids.aws_vpc(region, self.account, vpc_id),
                                   self.base(region, vpc_id, kind="vpc", vpc_id=vpc_id))
                graph.edge("CONTAINS", vpc, ref)

    def _instances(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for reservation in as_list(_get(doc, "Reservations")):
            for instance in as_list(_get(reservation, "Instances")):
                self._instance(graph, region, instance)

    def _instance(self, graph: _Graph, region: str, instance: Any) -> None:
        instance_id = _get(instance, "InstanceId")
        if not isinstance(instance_id, str):
            return
        groups = [g.get("GroupId") for g in as_list(_get(instance, "SecurityGroups")) if isinstance(g, dict)]
        profile = _get(_get(instance, "IamInstanceProfile"), "Arn")
        metadata = _get(instance, "MetadataOptions")
        props = self.base(
            region,
            tag_value(_get(instance, "Tags")) or instance_id,
            instance_id=instance_id,
            instance_type=_get(instance, "InstanceType"),
            state=_get(_get(instance, "State"), "Name"),
            public=bool(_get(instance, "PublicIpAddress")),
            public_ip=_get(instance, "PublicIpAddress"),
            private_ip=_get(instance, "PrivateIpAddress"),
            image_id=_get(instance, "ImageId"),
            launch_time=_time(_get(instance, "LaunchTime")),
            availability_zone=_get(_get(instance, "Placement"), "AvailabilityZone"),
            key_name=_get(instance, "KeyName"),
            platform=_get(instance, "PlatformDetails") or _get(instance, "Platform"),
            instance_profile=profile,
            imdsv2_required=(_get(metadata, "HttpTokens") == "required") if isinstance(metadata, dict) else None,
            **self._exposure([g for g in groups if isinstance(g, str)]),
        )
        vm = graph.node("VM", uids.aws_ec2_instance(region, self.account, instance_id), props)
        subnet_id = _get(instance, "SubnetId")
        subnet = self._ensure_subnet(graph, region, subnet_id) if isinstance(subnet_id, str) else None
        if subnet is not None:
            graph.edge("CONTAINS", subnet, vm)
        self._ip(graph, vm, _get(instance, "PrivateIpAddress"), subnet)
        self._ip(graph, vm, _get(instance, "PublicIpAddress"))
        for interface in as_list(_get(instance, "NetworkInterfaces")):
            for address in as_list(_get(interface, "PrivateIpAddresses")):
                self._ip(graph, vm, _get(address, "PrivateIpAddress"), subnet)
                self._ip(graph, vm, _get(_get(address, "Association"), "PublicIp"))
            for address in as_list(_get(interface, "Ipv6Addresses")):
                self._ip(graph, vm, _get(address, "Ipv6Address"))
        if isinstance(profile, str):
            role_uid = self.profile_roles.get(profile) or _role_from_profile(profile)
            if role_uid:
                graph.edge("CAN_ASSUME", vm, NodeRef("Role", role_uid), {"instance_profile": profile})

    def _interfaces(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for interface in as_list(_get(doc, "NetworkInterfaces")):
            owner = self._interface_owner(graph, region, interface)
            subnet_id = _get(interface, "SubnetId")
            subnet = self._ensure_subnet(graph, region, subnet_id) if isinstance(subnet_id, str) else None
            for address in as_list(_get(interface, "PrivateIpAddresses")):
                private = _get(address, "PrivateIpAddress")
                public = _get(_get(address, "Association"), "PublicIp")
                for value, in_subnet in ((private, subnet), (public, None)):
                    if not isinstance(value, str):
                        continue
                    node = ip_node(value, interface_id=_get(interface, "NetworkInterfaceId"))
                    ref = graph.node("IP", node.uid, dict(node.props))
                    if owner is not None:
                        graph.edge("HAS_IP", owner, ref)
                    if in_subnet is not None:
                        graph.edge("CONTAINS", in_subnet, ref)

    def _interface_owner(self, graph: _Graph, region: str, interface: Any) -> NodeRef | None:
        """The instance, load balancer or function an ENI belongs to, from its attachment or description."""
        instance_id = _get(_get(interface, "Attachment"), "InstanceId")
        if isinstance(instance_id, str):
            return self._ensure_vm(graph, region, instance_id)
        description = str(_get(interface, "Description") or "")
        if description.startswith("ELB "):
            rest = description[4:]
            if rest.startswith(("app/", "net/", "gwy/")):
                uid = f"arn:aws:elasticloadbalancing:{region}:{self.account}:loadbalancer/{rest}"
            else:
                uid = uids.aws_classic_elb(region, self.account, rest)
            return graph.stub(NodeRef("LoadBalancer", uid))
        if description.startswith("AWS Lambda VPC ENI-") and len(description) > 19 + 37:
            name = description[19:-37]
            return graph.stub(NodeRef("Function", uids.aws_lambda(region, self.account, name)))
        return None

    # -- storage, compute, data

    def _buckets(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for name, bucket in _with_id(doc, "Buckets", "Name"):
            location = self._sub(folder, "s3-get-bucket-location", name)
            bucket_region = None
            if isinstance(location, dict):
                constraint = location.get("LocationConstraint")
                bucket_region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint, constraint)
            props = self.base(bucket_region or "", name, created=_time(_get(bucket, "CreationDate")))
            if not bucket_region:
                props.pop("region")
            props.update(self._bucket_exposure(folder, name))
            graph.node("Bucket", uids.aws_bucket(name), props)

    def _bucket_exposure(self, folder: Path, name: str) -> dict[str, Any]:
        """``public`` from the bucket policy, ACL and public access block, when any of them was exported."""
        policy = self._sub(folder, "s3-get-bucket-policy", name)
        acl = self._sub(folder, "s3-get-bucket-acl", name)
        block = self._sub(folder, "s3-get-public-access-block", name)
        if policy is None and acl is None and block is None:
            return {}
        reasons = []
        if any(_allows_anyone(s) for s in policy_statements(_get(policy, "Policy"))):
            reasons.append("policy")
        for grant in as_list(_get(acl, "Grants")):
            if _get(_get(grant, "Grantee"), "URI") in PUBLIC_ACL_GROUPS:
                reasons.append("acl")
                break
        config = _get(block, "PublicAccessBlockConfiguration")
        if isinstance(config, dict) and config.get("RestrictPublicBuckets") and config.get("IgnorePublicAcls"):
            reasons = []
        return {"public": bool(reasons), "public_via": reasons}

    def _functions(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for name, function in _with_id(doc, "Functions", "FunctionName"):
            uid = uids.aws_lambda(region, self.account, name)
            policy = self._sub(folder, "lambda-get-policy", name)
            statements = policy_statements(_get(policy, "Policy"))
            vpc = _get(function, "VpcConfig")
            props = self.base(
                region, name, runtime=_get(function, "Runtime"), handler=_get(function, "Handler"),
                memory_size=_get(function, "MemorySize"), timeout=_get(function, "Timeout"),
                last_modified=_time(_get(function, "LastModified")), code_size=_get(function, "CodeSize"),
                execution_role=_get(function, "Role"),
                vpc_id=_get(vpc, "VpcId") or None,
            )
            if policy is not None:
                props["public"] = any(_allows_anyone(s) for s in statements)
            props.update(self._exposure([g for g in as_list(_get(vpc, "SecurityGroupIds")) if isinstance(g, str)]))
            ref = graph.node("Function", uid, props)
            role = _get(function, "Role")
            role_uid = resolve_arn(role) if isinstance(role, str) else None
            if role_uid is not None and role_uid.label == "Role":
                graph.edge("CAN_ASSUME", ref, role_uid)
            for subnet_id in as_list(_get(vpc, "SubnetIds")):
                if isinstance(subnet_id, str):
                    graph.edge("CONTAINS", self._ensure_subnet(graph, region, subnet_id), ref)
            for statement in statements:
                self._trigger(graph, region, ref, statement)

    def _trigger(self, graph: _Graph, region: str, function: NodeRef, statement: dict[str, Any]) -> None:
        """API Gateway and S3 permissions in a function's resource policy become TRIGGERS edges."""
        if statement.get("Effect") != "Allow":
            return
        services = as_list(_get(statement.get("Principal"), "Service"))
        condition = statement.get("Condition") or {}
        source_arns: list[str] = []
        for operator in ("ArnLike", "ArnEquals", "StringLike", "StringEquals"):
            block = _get(condition, operator) or {}
            for key, value in block.items() if isinstance(block, dict) else ():
                if key.lower() == "aws:sourcearn":
                    source_arns += [v for v in as_list(value) if isinstance(v, str)]
        for source in source_arns:
            parsed = parse_arn(source)
            if parsed is None:
                continue
            if "apigateway.amazonaws.com" in services and parsed.service == "execute-api":
                api_id = parsed.resource.split("/", 1)[0]
                gateway = graph.ensure("Gateway", gateway_uid(parsed.region or region, api_id),
                                       self.base(parsed.region or region, api_id, api_id=api_id))
                graph.edge("TRIGGERS", gateway, function)
            elif "s3.amazonaws.com" in services and parsed.service == "s3":
                bucket = parsed.resource.split("/", 1)[0]
                graph.edge("TRIGGERS", graph.stub(NodeRef("Bucket", uids.aws_bucket(bucket))), function)

    def _rds(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for identifier, db in _with_id(doc, "DBInstances", "DBInstanceIdentifier"):
            endpoint = _get(db, "Endpoint")
            groups = [_get(g, "VpcSecurityGroupId") for g in as_list(_get(db, "VpcSecurityGroups"))]
            ref = graph.node("Database", uids.aws_rds(region, self.account, identifier), self.base(
                region, identifier, kind="rds", engine=_get(db, "Engine"), engine_version=_get(db, "EngineVersion"),
                instance_class=_get(db, "DBInstanceClass"), publicly_accessible=_get(db, "PubliclyAccessible"),
                encrypted=_get(db, "StorageEncrypted"), endpoint=_get(endpoint, "Address"),
                port=_get(endpoint, "Port"), multi_az=_get(db, "MultiAZ"), status=_get(db, "DBInstanceStatus"),
                iam_auth=_get(db, "IAMDatabaseAuthenticationEnabled"), created=_time(_get(db, "InstanceCreateTime")),
                **self._exposure([g for g in groups if isinstance(g, str)])))
            for subnet in as_list(_get(_get(db, "DBSubnetGroup"), "Subnets")):
                subnet_id = _get(subnet, "SubnetIdentifier")
                if isinstance(subnet_id, str):
                    graph.edge("CONTAINS", self._ensure_subnet(graph, region, subnet_id), ref)

    def _redshift(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        groups_file = folder / "redshift-describe-cluster-subnet-groups.json"
        subnet_groups: dict[str, list[str]] = {}
        if groups_file.is_file():
            for group in as_list(_get(load_json(groups_file, plain=True), "ClusterSubnetGroups")):
                subnet_groups[str(_get(group, "ClusterSubnetGroupName"))] = [
                    str(_get(s, "SubnetIdentifier")) for s in as_list(_get(group, "Subnets"))
                ]
        for identifier, cluster in _with_id(doc, "Clusters", "ClusterIdentifier"):
            endpoint = _get(cluster, "Endpoint")
            groups = [_get(g, "VpcSecurityGroupId") for g in as_list(_get(cluster, "VpcSecurityGroups"))]
            ref = graph.node("Database", f"arn:aws:redshift:{region}:{self.account}:cluster:{identifier}", self.base(
                region, identifier, kind="redshift", engine="redshift", publicly_accessible=_get(
                    cluster, "PubliclyAccessible"), encrypted=_get(cluster, "Encrypted"),
                endpoint=_get(endpoint, "Address"), port=_get(endpoint, "Port"), node_type=_get(cluster, "NodeType"),
                number_of_nodes=_get(cluster, "NumberOfNodes"), status=_get(cluster, "ClusterStatus"),
                **self._exposure([g for g in groups if isinstance(g, str)])))
            for node in as_list(_get(cluster, "ClusterNodes")):
                self._ip(graph, ref, _get(node, "PrivateIPAddress"))
                self._ip(graph, ref, _get(node, "PublicIPAddress"))
            for subnet_id in subnet_groups.get(str(_get(cluster, "ClusterSubnetGroupName")), []):
                graph.edge("CONTAINS", self._ensure_subnet(graph, region, subnet_id), ref)

    # -- load balancers, clusters, gateways

    def _classic_elbs(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for name, lb in _with_id(doc, "LoadBalancerDescriptions", "LoadBalancerName"):
            descriptions = as_list(_get(lb, "ListenerDescriptions"))
            listeners = [_get(_get(d, "Listener"), "LoadBalancerPort") for d in descriptions]
            ref = graph.node("LoadBalancer", uids.aws_classic_elb(region, self.account, name), self.base(
                region, name, kind="classic", scheme=_get(lb, "Scheme"),
                internet_facing=_get(lb, "Scheme") == "internet-facing", dns_name=_get(lb, "DNSName"),
                listener_ports=[p for p in listeners if isinstance(p, int)], created=_time(_get(lb, "CreatedTime")),
                **self._exposure([g for g in as_list(_get(lb, "SecurityGroups")) if isinstance(g, str)])))
            for subnet_id in as_list(_get(lb, "Subnets")):
                if isinstance(subnet_id, str):
                    graph.edge("CONTAINS", self._ensure_subnet(graph, region, subnet_id), ref)
            for instance in as_list(_get(lb, "Instances")):
                instance_id = _get(instance, "InstanceId")
                if isinstance(instance_id, str):
                    graph.edge("ROUTES_TO", ref, self._ensure_vm(graph, region, instance_id))

    def _elbv2(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for arn, lb in _with_id(doc, "LoadBalancers", "LoadBalancerArn"):
            ref = graph.node("LoadBalancer", arn, self.base(
                region, _get(lb, "LoadBalancerName") or elbv2_name(arn), kind=_get(lb, "Type"),
                scheme=_get(lb, "Scheme"), internet_facing=_get(lb, "Scheme") == "internet-facing",
                dns_name=_get(lb, "DNSName"), state=_get(_get(lb, "State"), "Code"),
                created=_time(_get(lb, "CreatedTime")),
                **self._exposure([g for g in as_list(_get(lb, "SecurityGroups")) if isinstance(g, str)])))
            for zone in as_list(_get(lb, "AvailabilityZones")):
                subnet_id = _get(zone, "SubnetId")
                if isinstance(subnet_id, str):
                    graph.edge("CONTAINS", self._ensure_subnet(graph, region, subnet_id), ref)

    def _target_groups(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        """Target groups join ALBs/NLBs to instances, IPs, functions or other ALBs (ROUTES_TO)."""
        for arn, group in _with_id(doc, "TargetGroups", "TargetGroupArn"):
            health = self._sub(folder, "elbv2-describe-target-health", arn)
            target_type = _get(group, "TargetType") or "instance"
            targets: list[NodeRef] = []
            for description in as_list(_get(health, "TargetHealthDescriptions")):
                target_id = _get(_get(description, "Target"), "Id")
                if not isinstance(target_id, str):
                    continue
                if target_type == "instance":
                    targets.append(self._ensure_vm(graph, region, target_id))
                elif target_type == "ip":
                    node = ip_node(target_id)
                    targets.append(graph.node("IP", node.uid, dict(node.props)))
                else:
                    ref = resolve_arn(target_id)
                    if ref is not None and ref.label in ("Function", "LoadBalancer"):
                        targets.append(graph.stub(ref))
            props = {"target_group": _get(group, "TargetGroupName"), "port": _get(group, "Port"),
                     "protocol": _get(group, "Protocol")}
            for lb_arn in as_list(_get(group, "LoadBalancerArns")):
                if isinstance(lb_arn, str):
                    lb = graph.stub(NodeRef("LoadBalancer", lb_arn))
                    for target in targets:
                        graph.edge("ROUTES_TO", lb, target, props)

    def _ecs_listed(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for arn in as_list(_get(doc, "clusterArns")):
            if isinstance(arn, str):
                graph.node("Cluster", arn, self.base(region, arn.rsplit("/", 1)[-1], kind="ecs"))

    def _ecs_described(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for arn, cluster in _with_id(doc, "clusters", "clusterArn"):
            graph.node("Cluster", arn, self.base(
                region, _get(cluster, "clusterName") or arn.rsplit("/", 1)[-1], kind="ecs",
                status=_get(cluster, "status"), running_tasks=_get(cluster, "runningTasksCount"),
                active_services=_get(cluster, "activeServicesCount")))

    def _eks(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for name in as_list(_get(doc, "clusters")):
            if not isinstance(name, str):
                continue
            detail = _get(self._sub(folder, "eks-describe-cluster", name), "cluster")
            vpc_config = _get(detail, "resourcesVpcConfig")
            uid = eks_cluster_uid(region, self.account, name)
            ref = graph.node("Cluster", uid, self.base(
                region, name, kind="eks", arn=_get(detail, "arn"), version=_get(detail, "version"),
                status=_get(detail, "status"),
                endpoint=_get(detail, "endpoint"), endpoint_public=_get(vpc_config, "endpointPublicAccess"),
                public_access_cidrs=_get(vpc_config, "publicAccessCidrs"), service_role=_get(detail, "roleArn"),
                created=_time(_get(detail, "createdAt"))))
            for subnet_id in as_list(_get(vpc_config, "subnetIds")):
                if isinstance(subnet_id, str):
                    graph.edge("CONTAINS", self._ensure_subnet(graph, region, subnet_id), ref)

    def _rest_apis(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        for api_id, api in _with_id(doc, "items", "id"):
            types = as_list(_get(_get(api, "endpointConfiguration"), "types"))
            graph.node("Gateway", gateway_uid(region, api_id), self.base(
                region, _get(api, "name") or api_id, api_id=api_id, kind="rest-api",
                endpoint_types=[t for t in types if isinstance(t, str)],
                public="PRIVATE" not in types, created=_time(_get(api, "createdDate"))))

    def _credential_report(self, graph: _Graph, region: str, folder: Path, doc: Any) -> None:
        """MFA, console password and access keys per user (and for the root account)."""
        content = _get(doc, "Content")
        if not isinstance(content, str):
            return
        if not content.startswith("user,"):
            try:
                content = base64.b64decode(content).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return
        for row in csv.DictReader(io.StringIO(content)):
            keys = sum(row.get(f"access_key_{i}_active") == "true" for i in (1, 2))
            facts = {
                "mfa_enabled": row.get("mfa_active") == "true",
                "access_key_count": keys,
                "password_last_used": _time(row.get("password_last_used")),
            }
            ref = resolve_arn(row.get("arn") or "")
            if ref is None:
                continue
            if ref.label == "CloudAccount":
                graph.node("CloudAccount", ref.uid, {"root_mfa_enabled": facts["mfa_enabled"],
                                                     "root_access_key_count": keys})
            elif ref.label == "User":
                account = ref.uid.split(":")[4]
                graph.node("User", ref.uid, {"name": row.get("user"), "cloud": CLOUD, "account": account,
                                             "has_console_password": row.get("password_enabled") == "true",
                                             "created": _time(row.get("user_creation_time")), **facts})


_Handler = Callable[[_Context, _Graph, str, Path, Any], None]

FILE_HANDLERS: dict[str, _Handler | None] = {
    "ec2-describe-security-groups.json": _Context._security_groups,  # first: VMs, databases … read their exposure
    "ec2-describe-vpcs.json": _Context._vpcs,
    "ec2-describe-subnets.json": _Context._subnets,
    "ec2-describe-instances.json": _Context._instances,
    "ec2-describe-network-interfaces.json": _Context._interfaces,
    "s3-list-buckets.json": _Context._buckets,
    "lambda-list-functions.json": _Context._functions,
    "rds-describe-db-instances.json": _Context._rds,
    "redshift-describe-clusters.json": _Context._redshift,
    "elb-describe-load-balancers.json": _Context._classic_elbs,
    "elbv2-describe-load-balancers.json": _Context._elbv2,
    "elbv2-describe-target-groups.json": _Context._target_groups,
    "ecs-list-clusters.json": _Context._ecs_listed,
    "ecs-describe-clusters.json": _Context._ecs_described,
    "eks-list-clusters.json": _Context._eks,
    "apigateway-get-rest-apis.json": _Context._rest_apis,
    "iam-get-credential-report.json": _Context._credential_report,
    "sts-get-caller-identity.json": None,  # read for the account (_account)
    AUTHZ_FILE: None,  # mapped by AwsIamAdapter, after the inventory (AwsInventoryAdapter.read)
}
"""``<service>-<call>.json`` → the :class:`_Context` method that maps it in each region, in the order they run."""

HANDLED_FILES: frozenset[str] = frozenset(FILE_HANDLERS)
"""The ``<service>-<call>.json`` files this adapter maps; anything else in the tree is ignored."""


def _role_from_profile(profile_arn: str) -> str | None:
    """The role an instance profile is assumed to hold when no IAM export says: the one named like it."""
    parsed = parse_arn(profile_arn)
    if parsed is None or not parsed.resource.startswith("instance-profile/") or not is_account_id(parsed.account):
        return None
    name = parsed.resource.rsplit("/", 1)[-1]
    return uids.aws_iam_role(parsed.account, name)

