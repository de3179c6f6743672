"""What the three AWS adapters share: ARN parsing, ARN → schema node, account nodes, prop hygiene.

An ARN is the one identifier IAM policies, CloudTrail ``resources[]`` and inventory exports all
use, so resolving ARNs in one place is what makes the three adapters land on the same nodes.
Only the resource kinds the schema models resolve; everything else (KMS keys, SNS topics, …)
returns ``None`` and callers fall back to the account.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, TypeGuard

import orjson

from gnnsec.ingest import uids
from gnnsec.ingest.base import Edge, Node, NodeRef

CLOUD = "aws"


class Arn(NamedTuple):
    """``arn:partition:service:region:account:resource`` split into its parts."""

    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse_arn(text: Any) -> Arn | None:
    """The parts of an ARN, or None for anything that is not one."""
    if not isinstance(text, str) or not text.startswith("arn:"):
        return None
    parts = text.split(":", 5)
    if len(parts) != 6:
        return None
    return Arn(parts[1], parts[2], parts[3], parts[4], parts[5])


def is_account_id(value: Any) -> bool:
    """AWS account ids are exactly twelve digits."""
    return isinstance(value, str) and len(value) == 12 and value.isdigit()


def is_instance_id(value: Any) -> TypeGuard[str]:
    """``i-`` followed by 8 or 17 alphanumerics (anonymised samples use mixed case)."""
    return (
        isinstance(value, str) and value.startswith("i-") and len(value) in (10, 19) and value[2:].isalnum()
    )


def account_ref(account_id: str) -> NodeRef:
    return NodeRef("CloudAccount", uids.aws_account(account_id))


def account_node(account_id: str, seen: datetime | None = None, **extra: Any) -> Node:
    """The CloudAccount node every AWS resource hangs off."""
    props = {"name": account_id, "cloud": CLOUD, "account": account_id}
    props.update(clean_props(extra))
    return Node("CloudAccount", uids.aws_account(account_id), props, seen)


def clean_props(props: Mapping[str, Any]) -> dict[str, Any]:
    """Drop what Neo4j cannot store (None, dicts, empty or mixed lists) so adapters can be sloppy."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        if value is None or isinstance(value, dict):
            continue
        if isinstance(value, list | tuple | set | frozenset):
            items = [v for v in value if v is not None and not isinstance(v, dict | list)]
            if not items or len({type(v) for v in items}) != 1:
                continue
            value = sorted(items) if isinstance(value, set | frozenset) else list(items)
        out[key] = value
    return out


def tag_value(tags: Any, key: str = "Name") -> str | None:
    """The value of one tag in AWS's ``[{"Key": …, "Value": …}]`` tag lists."""
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, dict) and tag.get("Key") == key and isinstance(tag.get("Value"), str):
                return tag["Value"]
    return None


def role_uid_from_arn(arn: str) -> str | None:
    """A Role uid from a role ARN, an assumed-role session ARN or an instance-profile-less role ARN.

    ``arn:aws:sts::A:assumed-role/Name/session`` loses the role's path; callers prefer
    ``sessionContext.sessionIssuer.arn`` which keeps it.
    """
    parsed = parse_arn(arn)
    if parsed is None or not is_account_id(parsed.account):
        return None
    resource = parsed.resource
    if parsed.service == "iam" and resource.startswith("role/"):
        name, path = _name_and_path(resource[5:])
        return uids.aws_iam_role(parsed.account, name, path)
    if parsed.service == "sts" and resource.startswith("assumed-role/"):
        name = resource[13:].split("/", 1)[0]
        return uids.aws_iam_role(parsed.account, name) if name else None
    return None


def _name_and_path(rest: str) -> tuple[str, str]:
    """``path/to/Name`` → (``Name``, ``/path/to/``); a bare name has path ``/``."""
    head, _, name = rest.rpartition("/")
    return name, (f"/{head}/" if head else "/")


def resolve_arn(arn: str, default_region: str = "", default_account: str = "") -> NodeRef | None:
    """The schema node an ARN names, or None when the schema does not model that kind.

    S3 object ARNs resolve to their bucket, Lambda version/alias ARNs to the function, IAM user
    and role ARNs to User/Role with their path, VPCs to Subnet (``kind=vpc``), API Gateway REST
    APIs to Gateway, EKS/ECS clusters to Cluster.
    """
    parsed = parse_arn(arn)
    if parsed is None:
        return None
    service, region, account, resource = parsed.service, parsed.region, parsed.account, parsed.resource
    if service == "s3":
        bucket = resource.split("/", 1)[0]
        return NodeRef("Bucket", uids.aws_bucket(bucket)) if bucket and not account else None
    if service == "iam":
        if not is_account_id(account):
            return None
        if resource.startswith("user/"):
            name, path = _name_and_path(resource[5:])
            return NodeRef("User", uids.aws_iam_user(account, name, path))
        if resource.startswith("role/"):
            name, path = _name_and_path(resource[5:])
            return NodeRef("Role", uids.aws_iam_role(account, name, path))
        if resource == "root":
            return account_ref(account)
        return None
    if service == "lambda" and resource.startswith("function:"):
        name = resource[9:].split(":", 1)[0]
        return NodeRef("Function", uids.aws_lambda(region or default_region, account or default_account, name))
    if service == "rds" and resource.startswith(("db:", "cluster:")):
        kind, _, identifier = resource.partition(":")
        if kind == "db":
            return NodeRef("Database", uids.aws_rds(region, account, identifier))
        return NodeRef("Database", f"arn:aws:rds:{region}:{account}:cluster:{identifier}")
    if service == "ec2":
        kind, _, ident = resource.partition("/")
        if kind == "instance" and ident:
            return NodeRef("VM", uids.aws_ec2_instance(region, account, ident))
        if kind == "subnet" and ident:
            return NodeRef("Subnet", uids.aws_subnet(region, account, ident))
        if kind == "vpc" and ident:
            return NodeRef("Subnet", uids.aws_vpc(region, account, ident))
        return None
    if service == "eks" and resource.startswith("cluster/"):
        return NodeRef("Cluster", eks_cluster_uid(region, account, resource[len("cluster/"):]))
    if service == "ecs" and resource.startswith("cluster/"):
        return NodeRef("Cluster", f"arn:aws:{service}:{region}:{account}:{resource}")
    if service == "elasticloadbalancing" and resource.startswith("loadbalancer/"):
        rest = resource[13:]
        if rest.startswith(("app/", "net/", "gwy/")):
            return NodeRef("LoadBalancer", f"arn:aws:elasticloadbalancing:{region}:{account}:{resource}")
        return NodeRef("LoadBalancer", uids.aws_classic_elb(region, account, rest))
    if service == "apigateway" and resource.startswith(("/restapis/", "/apis/")):
        kind, ident = resource[1:].split("/", 2)[:2]
        return NodeRef("Gateway", gateway_uid(region, ident, kind)) if ident else None
    if service == "redshift" and resource.startswith("cluster:"):
        return NodeRef("Database", f"arn:aws:redshift:{region}:{account}:{resource}")
    return None


def gateway_uid(region: str, api_id: str, kind: str = "restapis") -> str:
    """API Gateway's own ARN for an API (it has no account part): ``arn:aws:apigateway:R::/restapis/ID``."""
    return f"arn:aws:apigateway:{region}::/{kind}/{api_id}"


def ecs_cluster_uid(region: str, account: str, name: str) -> str:
    return f"arn:aws:ecs:{region}:{account}:cluster/{name}"


def eks_cluster_uid(region: str, account: str, name: str) -> str:
    """EKS clusters are keyed like every Kubernetes cluster, by name (``uids.k8s_cluster``), so the
    AWS inventory, CloudTrail and ``kubectl`` exports of one cluster land on one node; the ARN is
    kept as the ``arn`` property where known."""
    return uids.k8s_cluster(name)


def elbv2_name(arn: str) -> str:
    """``…:loadbalancer/app/NAME/ID`` → NAME."""
    parts = arn.rsplit(":", 1)[-1].split("/")
    return parts[2] if len(parts) >= 4 else parts[-1]


def ref_name(ref: NodeRef) -> str:
    """A readable name for a node known only by uid: the last ARN segment."""
    uid = ref.uid
    if uid.startswith("aws:account:"):
        return uid[12:]
    tail = uid.rsplit("/", 1)[-1] if "/" in uid else uid.rsplit(":", 1)[-1]
    return tail or uid


def ref_location(ref: NodeRef) -> tuple[str, str]:
    """(region, account) of a node from its uid, when the uid is an ARN that carries them."""
    parsed = parse_arn(ref.uid)
    if parsed is None:
        return "", ""
    return parsed.region, parsed.account


def stub_node(ref: NodeRef, seen: datetime | None = None, **extra: Any) -> Node:
    """A minimal node for something known only by reference (a trusted role in another account…)."""
    region, account = ref_location(ref)
    props: dict[str, Any] = {"name": ref_name(ref), "cloud": CLOUD}
    if account:
        props["account"] = account
    if region:
        props["region"] = region
    props.update(clean_props(extra))
    return Node(ref.label, ref.uid, props, seen)


def contains(account_id: str, refs: Iterable[NodeRef]) -> list[Edge]:
    """CloudAccount CONTAINS each ref."""
    parent = account_ref(account_id)
    return [Edge("CONTAINS", parent, ref) for ref in refs]


def as_list(value: Any) -> list[Any]:
    """Policy fields are a string or a list of strings; always get a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def policy_statements(document: Any) -> list[dict[str, Any]]:
    """The statements of an IAM policy document, which exports give as an object or as its JSON text
    (bucket and function policies); anything else, or invalid JSON, has none."""
    if isinstance(document, str):
        try:
            document = orjson.loads(document)
        except orjson.JSONDecodeError:
            return []
    if not isinstance(document, dict):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


def ipv4_or_none(text: Any) -> str | None:
    """A normalised dotted-quad, or None. Leading zeros (anonymised samples) are dropped."""
    if not isinstance(text, str):
        return None
    parts = text.split(".")
    if len(parts) != 4:
        return None
    out = []
    for part in parts:
        if not part.isdigit() or len(part) > 3:
            return None
        number = int(part)
        if number > 255:
            return None
        out.append(str(number))
    return ".".join(out)


def ip_address_or_none(text: Any) -> str | None:
    """An IPv4 or IPv6 literal as a normalised string, or None for hostnames like ``ec2.amazonaws.com``."""
    v4 = ipv4_or_none(text)
    if v4 is not None:
        return v4
    if isinstance(text, str) and ":" in text and all(c in "0123456789abcdefABCDEF:." for c in text):
        import ipaddress

        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return None
    return None


_NON_GLOBAL_V4: tuple[tuple[int, int], ...] = tuple(
    (int.from_bytes(bytes(map(int, net.split("/")[0].split("."))), "big"), int(net.split("/")[1]))
    for net in ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
                "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
                "203.0.113.0/24", "224.0.0.0/3")
)
"""IPv4 ranges that are not globally routable (private, shared, loopback, link-local, documentation, multicast)."""


def ip_is_public(address: str) -> bool:
    """True for globally routable addresses (not RFC 1918, loopback, link-local…).

    IPv4 is checked against a fixed table with integer masks: ``ipaddress.is_global`` costs tens
    of microseconds, which matters at CloudTrail rates.
    """
    v4 = ipv4_or_none(address)
    if v4 is not None:
        value = int.from_bytes(bytes(map(int, v4.split("."))), "big")
        return not any(value >> (32 - bits) == net >> (32 - bits) for net, bits in _NON_GLOBAL_V4)
    import ipaddress

    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def ip_node(address: str, seen: datetime | None = None, **extra: Any) -> Node:
    props: dict[str, Any] = {"name": address, "address": address, "public": ip_is_public(address)}
    props.update(clean_props(extra))
    return Node("IP", uids.ip(address), props, seen)
