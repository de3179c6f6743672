"""CloudTrail records → who did what to which resource, from where.

Every event yields exactly one *primary* activity edge from the acting principal, so edge counts
are event counts: ASSUMES_ROLE (AssumeRole*, GetFederationToken), START_VM / STOP_VM /
RESTART_VM (instance state calls, one edge per instance), LATERAL_MOVEMENT (SSM StartSession /
SendCommand, EC2 Instance Connect and serial-console keys; instead of MODIFIES, the more
specific type wins), otherwise MODIFIES or ACCESS by the API verb. Besides the primary edge an
event may add AUTHENTICATES_FROM (its source IP) and CROSS_CLOUD_ACCESS (a role assumed in
another account).

Nodes are emitted the first time a file mentions them (with ``seen`` = that event's time) and
once more at the end of the file when a later event saw them again, so the loader gets the right
``first_seen``/``last_seen`` without one node record per event. The per-record path is kept
light for throughput: verb classification and action strings are cached per API, ARNs are split
with ``str`` methods, timestamps are parsed once per distinct string.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from gnnsec.ingest import uids
from gnnsec.ingest._common import excerpt
from gnnsec.ingest.aws_common import (
    CLOUD,
    account_ref,
    ecs_cluster_uid,
    eks_cluster_uid,
    gateway_uid,
    ip_address_or_none,
    ip_is_public,
    is_account_id,
    is_instance_id,
    ref_name,
    resolve_arn,
    role_uid_from_arn,
)
from gnnsec.ingest.base import BadRecord, Edge, Node, NodeRef, Record, head
from gnnsec.ingest.jsonio import iter_json_records, map_json_records, parse_time
from gnnsec.ingest.validation import safe_excerpt

ASSUME_EVENTS = frozenset({"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "GetFederationToken"})
VM_EVENTS: dict[str, str] = {
    "StartInstances": "START_VM",
    "RunInstances": "START_VM",
    "StopInstances": "STOP_VM",
    "TerminateInstances": "STOP_VM",
    "RebootInstances": "RESTART_VM",
}
LATERAL_EVENTS = frozenset({
    ("ssm", "StartSession"),
    ("ssm", "SendCommand"),
    ("ec2-instance-connect", "SendSSHPublicKey"),
    ("ec2-instance-connect", "SendSerialConsoleSSHPublicKey"),
})
READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "Select", "Invoke", "BatchGet", "Download", "Decrypt",
                 "Search", "Query", "Scan", "Check", "Filter", "Preview", "Read", "Retrieve", "Simulate", "Validate",
                 "Verify", "Estimate", "ConsoleLogin", "View")
WRITE_PREFIXES = ("Create", "Delete", "Put", "Update", "Attach", "Detach", "Modify", "Set", "Add", "Remove",
                  "Authorize", "Revoke", "Tag", "Untag", "Enable", "Disable", "Stop", "Start", "Leave", "Reset",
                  "Change", "Associate", "Disassociate", "Replace", "Register", "Deregister", "Send", "Share", "Copy",
                  "Import", "Restore", "Terminate", "Cancel", "Run", "Upload", "Rotate", "Accept", "Reject",
                  "Allocate", "Release", "Assign", "Unassign", "Apply", "Purge", "Deactivate", "Activate", "Upgrade",
                  "Revert", "Reboot", "Schedule", "Publish", "Execute", "Restart", "Resume", "Suspend")
SNIFF_MARKERS = ('"eventName"', '"eventSource"', ".amazonaws.com")


class CloudTrailAdapter:
    """Maps CloudTrail events (any delivery shape, gzipped or not) onto activity edges."""

    name: ClassVar[str] = "cloudtrail"
    description: ClassVar[str] = "AWS CloudTrail events: {Records: [...]}, JSON arrays, JSON lines, .gz"

    def sniff(self, path: Path) -> bool:
        if path.is_dir():
            return False
        text = head(path, 16384)
        return all(marker in text for marker in SNIFF_MARKERS) and ('"eventTime"' in text or '"@timestamp"' in text)

    def read(self, path: Path) -> Iterator[Record]:
        mapper = _EventMapper()
        yield from map_json_records(iter_json_records(path), mapper.map_safely)
        yield from mapper.flush()


class _EventMapper:
    """Per-file state: node sightings and the caches that keep the per-event path short."""

    def __init__(self) -> None:
        self.nodes: dict[NodeRef, list[Any]] = {}  # ref → [props, first emitted seen, latest seen]
        self.contained: set[NodeRef] = set()
        self.times: dict[str, datetime] = {}

    # ---- bookkeeping ----------------------------------------------------------------------

    def _node(self, out: list[Record], ref: NodeRef, props: dict[str, Any], seen: datetime) -> None:
        known = self.nodes.get(ref)
        if known is None:
            self.nodes[ref] = [props, seen, seen]
            out.append(Node(ref.label, ref.uid, props, seen))
            account = props.get("account")
            if ref.label != "CloudAccount" and ref.label != "IP" and account:
                parent = account_ref(account)
                self._node(out, parent, {"name": account, "cloud": CLOUD, "account": account}, seen)
                out.append(Edge("CONTAINS", parent, ref))
        elif seen > known[2]:
            known[2] = seen
        elif seen < known[1]:
            # An earlier sighting than the one already emitted: emit it now so first_seen is right.
            known[1] = seen
            out.append(Node(ref.label, ref.uid, known[0], seen))

    def flush(self) -> Iterator[Record]:
        """Re-emit nodes whose latest sighting is later than the one emitted first."""
        for ref, (props, first, last) in self.nodes.items():
            if last > first:
                yield Node(ref.label, ref.uid, props, last)

    def _time(self, value: Any) -> datetime:
        if isinstance(value, str):
            cached = self.times.get(value)
            if cached is None:
                if len(self.times) > 200_000:
                    self.times.clear()
                cached = self.times[value] = parse_time(value)
            return cached
        return parse_time(value)

    # ---- one event ------------------------------------------------------------------------

    def map_safely(self, where: str, record: dict[str, Any]) -> list[Record]:
        """:meth:`map`, with a field of an unexpected type (a number where CloudTrail writes a string, a
        list where it writes an object) a bad record naming the event instead of a traceback. The nodes a
        failed event had registered are forgotten, so a later event emits them again."""
        known = len(self.nodes)
        try:
            return self.map(where, record)
        except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
            for ref in list(self.nodes)[known:]:
                del self.nodes[ref]
            return [BadRecord(where, f"a CloudTrail field has an unexpected type ({exc})", _excerpt(record))]

    def map(self, where: str, record: dict[str, Any]) -> list[Record]:
        if "eventName" not in record and isinstance(record.get("log"), dict):
            # Panther's labelled samples wrap the event: {"log_types": [...], "log": {...}}.
            log_types = record.get("log_types")
            if isinstance(log_types, list) and "AWS.CloudTrail" not in log_types:
                return []
            record = record["log"]
        name = record.get("eventName")
        raw_time = record.get("eventTime") or record.get("@timestamp")
        identity = record.get("userIdentity")
        if not isinstance(name, str) or not name:
            return [BadRecord(where, "CloudTrail record without eventName", _excerpt(record))]
        if raw_time is None:
            return [BadRecord(where, "CloudTrail record without eventTime", _excerpt(record))]
        if not isinstance(identity, dict):
            return [BadRecord(where, "CloudTrail record without userIdentity", _excerpt(record))]
        try:
            time = self._time(raw_time)
        except (ValueError, TypeError, OverflowError):
            return [BadRecord(where, f"unreadable eventTime {raw_time!r}", _excerpt(record))]
        source = record.get("eventSource") or ""
        region = record.get("awsRegion") or ""
        recipient = record.get("recipientAccountId") or identity.get("accountId") or ""
        for field, value in (("eventSource", source), ("awsRegion", region), ("recipientAccountId", recipient)):
            if not isinstance(value, str):
                return [BadRecord(where, f"CloudTrail {field} must be a string, found {type(value).__name__} "
                                  f"{safe_excerpt(value, 40)}", _excerpt(record))]
        short, action, kind = _verb(source, name)
        params = record.get("requestParameters")
        if not isinstance(params, dict):
            params = {}
        out: list[Record] = []
        principal = self._principal(out, identity, region, recipient, time, name, params)
        if principal is None:
            return out
        props: dict[str, Any] = {}
        error = record.get("errorCode")
        if error:
            props = {"error_code": str(error), "failed": True}

        if kind == "assume":
            target = _assumed_role(name, params, record, recipient, principal)
            if target is not None:
                self._node(out, target, _resource_props(target, region), time)
                out.append(Edge("ASSUMES_ROLE", principal, target, props, time, action))
                target_account = target.uid.split(":", 5)[4] if target.uid.startswith("arn:") else ""
                principal_account = self.nodes[principal][0].get("account")
                if is_account_id(target_account) and principal_account and target_account != principal_account:
                    other = account_ref(target_account)
                    self._node(out, other, {"name": target_account, "cloud": CLOUD, "account": target_account}, time)
                    out.append(Edge("CROSS_CLOUD_ACCESS", principal, other, props, time, action))
                self._source_ip(out, principal, record, time, props, action)
                return out
            kind = "read"
        elif kind in ("START_VM", "STOP_VM", "RESTART_VM", "LATERAL_MOVEMENT"):
            instances = _instance_ids(params, record.get("responseElements"))
            if instances:
                account = recipient or self.nodes[principal][0].get("account") or ""
                for instance_id in instances:
                    vm = NodeRef("VM", uids.aws_ec2_instance(region, account, instance_id))
                    self._node(out, vm, _resource_props(vm, region, instance_id=instance_id), time)
                    out.append(Edge(kind, principal, vm, props, time, action))
                self._source_ip(out, principal, record, time, props, action)
                return out
            kind = "write"

        rel = "ACCESS" if kind == "read" else "MODIFIES"
        targets = _resources(record.get("resources"), region, recipient)
        if not targets:
            targets = _from_parameters(short, params, region, recipient)
        if not targets:
            account = recipient or self.nodes[principal][0].get("account")
            if not account:
                return out
            targets = [account_ref(account)]
        for target in targets:
            self._node(out, target, _resource_props(target, region), time)
            out.append(Edge(rel, principal, target, props, time, action))
        self._source_ip(out, principal, record, time, props, action)
        return out

    def _source_ip(
        self, out: list[Record], principal: NodeRef, record: dict[str, Any], time: datetime,
        props: dict[str, Any], action: str,
    ) -> None:
        source_ip = record.get("sourceIPAddress")
        seen = _ip(source_ip) if isinstance(source_ip, str) else None
        if seen is None:
            return
        ref, address, public = seen
        known = self.nodes.get(ref)
        self._node(out, ref, {"name": address, "address": address, "public": public} if known is None else known[0],
                   time)
        out.append(Edge("AUTHENTICATES_FROM", principal, ref, props, time, action))

    def _principal(
        self, out: list[Record], identity: dict[str, Any], region: str, recipient: str, time: datetime,
        name: str, params: dict[str, Any],
    ) -> NodeRef | None:
        """The acting node: User, Role, VM (instance-role session) or CloudAccount."""
        kind = identity.get("type")
        arn = identity.get("arn")
        account = identity.get("accountId") or ""
        if kind == "IAMUser":
            ref = resolve_arn(arn) if isinstance(arn, str) else None
            if ref is None or ref.label != "User":
                user = identity.get("userName")
                if not isinstance(user, str) or not is_account_id(account):
                    return self._account_principal(out, account or recipient, time)
                ref = NodeRef("User", uids.aws_iam_user(account, user))
            props = {"name": ref.uid.rsplit("/", 1)[-1], "cloud": CLOUD, "account": ref.uid.split(":", 5)[4]}
        elif kind == "AssumedRole":
            issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
            role_uid = _role_uid(issuer.get("arn") or "") or _role_uid(arn or "")
            if role_uid is None:
                return self._account_principal(out, account or recipient, time)
            role_account = role_uid.split(":", 5)[4]
            session = arn.rsplit("/", 1)[-1] if isinstance(arn, str) and arn.count("/") >= 2 else ""
            if is_instance_id(session):
                ref = NodeRef("VM", uids.aws_ec2_instance(region, role_account, session))
                props = {"name": session, "cloud": CLOUD, "account": role_account, "region": region,
                         "instance_id": session}
            else:
                ref = NodeRef("Role", role_uid)
                props = {"name": role_uid.rsplit("/", 1)[-1], "cloud": CLOUD, "account": role_account}
        elif kind == "FederatedUser":
            if not isinstance(arn, str) or not arn.startswith("arn:"):
                return self._account_principal(out, account or recipient, time)
            ref = NodeRef("Role", arn)
            props = {"name": arn.rsplit("/", 1)[-1], "cloud": CLOUD, "account": arn.split(":", 5)[4],
                     "kind": "federated-user"}
        elif kind in ("Root", "AWSAccount"):
            return self._account_principal(out, account or recipient, time)
        elif kind == "AWSService":
            # The service itself is not an entity we model; EC2 fetching instance-role credentials is,
            # as the instance assuming its role (the session name is the instance id).
            session_name = params.get("roleSessionName")
            role_uid = role_uid_from_arn(params.get("roleArn") or "")
            if name == "AssumeRole" and is_instance_id(session_name) and role_uid:
                role_account = role_uid.split(":", 5)[4]
                ref = NodeRef("VM", uids.aws_ec2_instance(region, role_account, session_name))
                props = {"name": session_name, "cloud": CLOUD, "account": role_account, "region": region,
                         "instance_id": session_name}
            else:
                return None
        elif kind in ("SAMLUser", "WebIdentityUser"):
            user = identity.get("userName") or identity.get("principalId")
            provider = identity.get("identityProvider") or "unknown"
            if not isinstance(user, str):
                return self._account_principal(out, recipient, time)
            ref = NodeRef("User", f"aws:{kind.lower()}:{provider}/{user}")
            props = {"name": user, "cloud": CLOUD, "account": recipient, "identity_provider": provider}
        else:
            return self._account_principal(out, account or recipient, time)
        if not props.get("account"):
            props.pop("account", None)
        self._node(out, ref, props, time)
        return ref

    def _account_principal(self, out: list[Record], account: str, time: datetime) -> NodeRef | None:
        if not is_account_id(account):
            return None
        ref = account_ref(account)
        self._node(out, ref, {"name": account, "cloud": CLOUD, "account": account}, time)
        return ref


# ---- pure helpers -------------------------------------------------------------------------


# Pure lookups, remembered across files: AWS's 5-minute layout gives each file a few events, so a cache per file
# (as these once were) forgot them as soon as it had filled.
@functools.lru_cache(maxsize=4096)
def _verb(source: str, name: str) -> tuple[str, str, str]:
    """``(short service, action, kind)`` of an event's source and name."""
    short = source.split(".", 1)[0] if source else "unknown"
    return short, f"{short}:{_strip_api_version(name)}", _classify(short, name)


@functools.lru_cache(maxsize=1 << 16)
def _ip(source_ip: str) -> tuple[NodeRef, str, bool] | None:
    """The IP node, normalised address and ``public`` flag of a ``sourceIPAddress``; None for a service name."""
    address = ip_address_or_none(source_ip)
    return None if address is None else (NodeRef("IP", uids.ip(address)), address, ip_is_public(address))


def _role_uid(arn: Any) -> str | None:
    return _role_uid_of(arn) if isinstance(arn, str) else role_uid_from_arn(arn)


@functools.lru_cache(maxsize=1 << 14)
def _role_uid_of(arn: str) -> str | None:
    return role_uid_from_arn(arn)


def _strip_api_version(name: str) -> str:
    """``UpdateFunctionCode20150331v2`` → ``UpdateFunctionCode`` (Lambda appends API versions)."""
    index = len(name)
    while index and (name[index - 1].isdigit() or name[index - 1] == "v"):
        index -= 1
    suffix = name[index:]
    if len(suffix) >= 8 and suffix[:8].isdigit():
        return name[:index]
    return name


def _classify(short: str, name: str) -> str:
    """assume / START_VM / STOP_VM / RESTART_VM / LATERAL_MOVEMENT / read / write for one API."""
    if name in ASSUME_EVENTS and short == "sts":
        return "assume"
    if (short, name) in LATERAL_EVENTS:
        return "LATERAL_MOVEMENT"
    if short == "ec2" and name in VM_EVENTS:
        return VM_EVENTS[name]
    if name.startswith(READ_PREFIXES):
        return "read"
    if name.startswith(WRITE_PREFIXES):
        return "write"
    return "read"


def _excerpt(record: dict[str, Any]) -> str:
    return excerpt(record)


def _instance_ids(params: dict[str, Any], response: Any) -> list[str]:
    """Instance ids from instancesSet items (request or response), instanceId(s) or an SSM target."""
    found: list[str] = []
    for container in (params, response if isinstance(response, dict) else {}):
        items = (container.get("instancesSet") or {}).get("items") if isinstance(container, dict) else None
        if isinstance(items, list):
            for item in items:
                value = item.get("instanceId") if isinstance(item, dict) else None
                if is_instance_id(value) and value not in found:
                    found.append(value)
        if found:
            return found
    for key in ("instanceId", "target"):
        value = params.get(key)
        if is_instance_id(value):
            return [value]
    values = params.get("instanceIds")
    if isinstance(values, list):
        return [v for v in values if is_instance_id(v)]
    return found


def _assumed_role(
    name: str, params: dict[str, Any], record: dict[str, Any], recipient: str, principal: NodeRef
) -> NodeRef | None:
    """The Role an AssumeRole* names, or the federated-user session GetFederationToken creates."""
    if name == "GetFederationToken":
        federated = ((record.get("responseElements") or {}).get("federatedUser") or {}).get("arn")
        if isinstance(federated, str) and federated.startswith("arn:"):
            return NodeRef("Role", federated)
        session = params.get("name")
        account = principal.uid.split(":", 5)[4] if principal.uid.startswith("arn:") else recipient
        if isinstance(session, str) and is_account_id(account):
            return NodeRef("Role", f"arn:aws:sts::{account}:federated-user/{session}")
        return None
    uid = role_uid_from_arn(params.get("roleArn") or "")
    if uid is None:
        for resource in record.get("resources") or ():
            if isinstance(resource, dict) and resource.get("type") == "AWS::IAM::Role":
                uid = role_uid_from_arn(resource.get("ARN") or "")
                if uid:
                    break
    return NodeRef("Role", uid) if uid else None


def _resources(resources: Any, region: str, account: str) -> list[NodeRef]:
    if not isinstance(resources, list) or not resources:
        return []
    out: list[NodeRef] = []
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        arn = resource.get("ARN")
        if not isinstance(arn, str):
            continue
        ref = resolve_arn(arn, region, account)
        if ref is not None and ref not in out:
            out.append(ref)
    return out


def _from_parameters(short: str, params: dict[str, Any], region: str, account: str) -> list[NodeRef]:
    """The target named by well-known request parameters, in the event's region and account."""
    if not params:
        return []
    value = params.get("bucketName")
    if isinstance(value, str) and value:
        return [NodeRef("Bucket", uids.aws_bucket(value))]
    value = params.get("functionName")
    if isinstance(value, str) and value:
        ref = resolve_arn(value, region, account)
        if ref is None and is_account_id(account):
            ref = NodeRef("Function", uids.aws_lambda(region, account, value.split(":", 1)[0]))
        return [ref] if ref else []
    if not is_account_id(account):
        return []
    value = params.get("roleName")
    if isinstance(value, str) and value and short == "iam":
        return [NodeRef("Role", uids.aws_iam_role(account, value))]
    value = params.get("userName")
    if isinstance(value, str) and value and short == "iam":
        return [NodeRef("User", uids.aws_iam_user(account, value))]
    value = params.get("dBInstanceIdentifier")
    if isinstance(value, str) and value:
        return [NodeRef("Database", uids.aws_rds(region, account, value))]
    instances = _instance_ids(params, None)
    if instances:
        return [NodeRef("VM", uids.aws_ec2_instance(region, account, i)) for i in instances]
    for key in ("clusterName", "cluster", "name"):
        value = params.get(key)
        if isinstance(value, str) and value and (short == "eks" or (short == "ecs" and key != "name")):
            ref = resolve_arn(value)
            if ref is not None:
                return [ref]
            make = eks_cluster_uid if short == "eks" else ecs_cluster_uid
            return [NodeRef("Cluster", make(region, account, value))]
    value = params.get("loadBalancerArn")
    if isinstance(value, str):
        ref = resolve_arn(value)
        return [ref] if ref else []
    value = params.get("loadBalancerName")
    if isinstance(value, str) and value:
        return [NodeRef("LoadBalancer", uids.aws_classic_elb(region, account, value))]
    value = params.get("restApiId")
    if isinstance(value, str) and value:
        return [NodeRef("Gateway", gateway_uid(region, value))]
    value = params.get("subnetId")
    if isinstance(value, str) and value.startswith("subnet-"):
        return [NodeRef("Subnet", uids.aws_subnet(region, account, value))]
    value = params.get("vpcId")
    if isinstance(value, str) and value.startswith("vpc-"):
        return [NodeRef("Subnet", uids.aws_vpc(region, account, value))]
    return []


def _resource_props(ref: NodeRef, region: str, **extra: Any) -> dict[str, Any]:
    """Light props for a target known from an event: name, cloud, and account/region from its ARN."""
    props: dict[str, Any] = {"name": ref_name(ref), "cloud": CLOUD}
    uid = ref.uid
    if uid.startswith("arn:"):
        parts = uid.split(":", 5)
        if parts[4]:
            props["account"] = parts[4]
        if parts[3]:
            props["region"] = parts[3]
    elif uid.startswith("aws:account:"):
        props["account"] = uid[12:]
    if ref.label == "Subnet":
        props["kind"] = "vpc" if ":vpc/" in uid else "subnet"
    props.update(extra)
    return props
