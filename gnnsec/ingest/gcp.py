"""Google Cloud Audit Logs (``LogEntry`` with an ``AuditLog`` ``protoPayload``) → schema records.

Accepts what ``gcloud logging read --format=json`` writes (a JSON array), JSON lines from a log
sink, and ``{"entries": [...]}`` from the Logging API.  The resource is named by its full
resource name ``//<service>/<resourceName>`` (uids.gcp_resource), cut to the schema object it
belongs to: a storage object maps to its bucket, a disk of an instance stays on the project.

Verbs follow the CloudTrail mapping: ``instances.start|stop|suspend|reset|insert|delete`` →
START_VM/STOP_VM/RESTART_VM, reads → ACCESS, writes and ``SetIamPolicy`` → MODIFIES,
``GenerateAccessToken``/``SignBlob``/``SignJwt``/``GenerateIdToken`` and granted
``iam.serviceAccounts.actAs`` → ASSUMES_ROLE to the service account, a service account of one
project acting in another → CROSS_CLOUD_ACCESS, serial-port connects and GKE ``pods/exec`` →
LATERAL_MOVEMENT, the caller IP → AUTHENTICATES_FROM.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from gnnsec.ingest import uids
from gnnsec.ingest._common import as_str, clean_props, get_path, ip_node, parse_ip
from gnnsec.ingest.base import Edge, Node, Record, head
from gnnsec.ingest.jsonio import iter_json_records, map_json_records, parse_time
from gnnsec.ingest.k8s import k8s_pod_node, k8s_relation

CLOUD = "gcp"

TOKEN_METHODS = frozenset({"generateaccesstoken", "signblob", "signjwt", "generateidtoken"})
"""iamcredentials methods that mint credentials of another identity (impersonation)."""

_READ_PREFIXES = (
    "get",
    "list",
    "aggregatedlist",
    "read",
    "search",
    "query",
    "lookup",
    "check",
    "testiampermissions",
    "encrypt",
    "decrypt",
    "export",
    "fetch",
    "watch",
    "authorizeuser",
)
_VM_VERBS = {
    "start": "START_VM",
    "resume": "START_VM",
    "insert": "START_VM",
    "stop": "STOP_VM",
    "suspend": "STOP_VM",
    "delete": "STOP_VM",
    "reset": "RESTART_VM",
}

# (pattern on resourceName, label, how many path segments make the object) — the first match wins.
_RESOURCE_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("compute", re.compile(r"^(projects/[^/]+/zones/[^/]+/instances/[^/]+)"), "VM"),
    ("compute", re.compile(r"^(projects/[^/]+/regions/[^/]+/subnetworks/[^/]+)"), "Subnet"),
    ("compute", re.compile(r"^(projects/[^/]+/global/networks/[^/]+)"), "Subnet"),
    (
        "compute",
        re.compile(r"^(projects/[^/]+/(?:global|regions/[^/]+)/(?:backendServices|forwardingRules|urlMaps)/[^/]+)"),
        "LoadBalancer",
    ),
    ("storage", re.compile(r"^(projects/[^/]+/buckets/[^/]+)"), "Bucket"),
    ("cloudfunctions", re.compile(r"^(projects/[^/]+/locations/[^/]+/functions/[^/]+)"), "Function"),
    ("run", re.compile(r"^((?:projects|namespaces)/[^/]+(?:/locations/[^/]+)?/services/[^/]+)"), "Function"),
    ("sqladmin", re.compile(r"^(projects/[^/]+/instances/[^/]+)"), "Database"),
    ("cloudsql", re.compile(r"^(projects/[^/]+/instances/[^/]+)"), "Database"),
    ("spanner", re.compile(r"^(projects/[^/]+/instances/[^/]+)"), "Database"),
    ("bigtableadmin", re.compile(r"^(projects/[^/]+/instances/[^/]+)"), "Database"),
    ("bigquery", re.compile(r"^(projects/[^/]+/datasets/[^/]+)"), "Database"),
    ("container", re.compile(r"^(projects/[^/]+/(?:locations|zones)/[^/]+/clusters/[^/]+)"), "Cluster"),
    ("apigateway", re.compile(r"^(projects/[^/]+/locations/[^/]+/gateways/[^/]+)"), "Gateway"),
    ("iam", re.compile(r"^((?:projects|organizations)/[^/]+/roles/[^/]+)"), "Role"),
)
_SERVICE_ACCOUNT = re.compile(r"serviceAccounts/([^/]+)")
_PROJECT = re.compile(r"(?:^|/)projects/([^/_-][^/]*)")


class GcpAuditAdapter:
    """Cloud Audit Logs: Admin Activity, Data Access, System Event and Policy Denied entries."""

    name: ClassVar[str] = "gcp-audit"
    description: ClassVar[str] = "Google Cloud Audit Logs (gcloud logging read JSON, sink JSONL, API entries)"

    def sniff(self, path: Path) -> bool:
        text = head(path)
        return '"protoPayload"' in text and ('"methodName"' in text or "AuditLog" in text)

    def read(self, path: Path) -> Iterator[Record]:
        yield from map_json_records(iter_json_records(path), lambda _, record: _entry_records(record), ValueError)


def _entry_records(entry: Mapping[str, Any]) -> Iterator[Record]:
    payload = entry.get("protoPayload")
    if not isinstance(payload, Mapping):
        raise ValueError("no protoPayload object")
    method = as_str(payload.get("methodName"))
    if method is None:
        raise ValueError("protoPayload has no methodName")
    time = _entry_time(entry, payload)
    service = as_str(payload.get("serviceName")) or as_str(get_path(entry, "resource", "labels", "service")) or ""
    project = _project(entry, payload)
    principal = _principal(payload, time)
    target = _target(entry, payload, method, service, project, time)

    yield target
    address = parse_ip(get_path(payload, "requestMetadata", "callerIp")) or parse_ip(
        get_path(payload, "requestMetadata", "callerIP")
    )
    if address:
        yield ip_node(address, time)
    if principal is None:
        return  # system events and Google-internal callers carry no principal
    yield principal
    rel = _relation(method, service, target.label, payload)
    if rel == "ASSUMES_ROLE" and target.uid == principal.uid:
        rel = "ACCESS"  # a service account signing with its own identity impersonates no one
    yield Edge(rel, principal.ref, target.ref, {}, time, method)
    if address:
        yield Edge("AUTHENTICATES_FROM", principal.ref, Node("IP", uids.ip(address)).ref, {}, time, method)
    for account in _act_as(payload):
        if account.uid != target.uid or rel != "ASSUMES_ROLE":
            yield Node(account.label, account.uid, account.props, time)
            yield Edge("ASSUMES_ROLE", principal.ref, account.ref, {}, time, "iam.serviceAccounts.actAs")
    home = principal.props.get("account")
    if principal.label == "Role" and home and project and home != project:
        account_node = _project_node(project, time)
        yield account_node
        yield Edge("CROSS_CLOUD_ACCESS", principal.ref, account_node.ref, {}, time, method)


def _entry_time(entry: Mapping[str, Any], payload: Mapping[str, Any]) -> datetime:
    for value in (
        entry.get("timestamp"),
        get_path(payload, "requestMetadata", "requestAttributes", "time"),
        entry.get("receiveTimestamp"),
    ):
        if isinstance(value, str | int | float) and value not in ("", "..."):
            try:
                return parse_time(value)
            except ValueError:
                continue
    raise ValueError("no parseable timestamp")


def _project(entry: Mapping[str, Any], payload: Mapping[str, Any]) -> str | None:
    label = as_str(get_path(entry, "resource", "labels", "project_id"))
    if label:
        return label
    for text in (payload.get("resourceName"), entry.get("logName")):
        if isinstance(text, str) and (match := _PROJECT.search(text)):
            return match.group(1)
    return None


def service_account_node(email: str, time: datetime | None = None) -> Node:
    """A service account as a Role; its home project comes from the ``…@<project>.iam…`` address."""
    email = email.strip().lower()
    domain = email.partition("@")[2]
    home = domain.removesuffix(".iam.gserviceaccount.com") if domain.endswith(".iam.gserviceaccount.com") else None
    props = clean_props(name=email, cloud=CLOUD, account=home, kind="service_account")
    return Node("Role", uids.gcp_service_account(email), props, time)


def _federated_aws_role(assumed_role_arn: str, time: datetime) -> Node | None:
    """Workload identity federation from AWS: the subject is the caller's assumed-role session
    (``arn:aws:sts::<account>:assumed-role/<role>/<session>``); the actor is that AWS role."""
    parts = assumed_role_arn.split(":", 5)
    if len(parts) < 6 or not parts[5].startswith("assumed-role/"):
        return None
    account, role = parts[4], parts[5].split("/")[1]
    return Node("Role", uids.aws_iam_role(account, role), {"name": role, "cloud": "aws", "account": account}, time)


def _principal(payload: Mapping[str, Any], time: datetime) -> Node | None:
    email = as_str(get_path(payload, "authenticationInfo", "principalEmail"))
    if email is None:
        subject = as_str(get_path(payload, "authenticationInfo", "principalSubject")) or ""
        kind, _, value = subject.partition(":")
        if kind in ("user", "serviceAccount") and "@" in value:
            email = value
        elif "/subject/arn:aws:sts::" in subject:
            return _federated_aws_role(subject.split("/subject/", 1)[1], time)
    if email is None or "@" not in email:
        return None
    if email.lower().endswith("gserviceaccount.com"):
        return service_account_node(email, time)
    return Node("User", uids.gcp_user(email), {"name": email.lower(), "cloud": CLOUD}, time)


def _project_node(project: str, time: datetime | None = None) -> Node:
    return Node("CloudAccount", uids.gcp_project(project), {"name": project, "cloud": CLOUD, "account": project}, time)


def _short_service(service: str, method: str) -> str:
    if service:
        return service.split(".", 1)[0]
    parts = method.split(".")
    return parts[1] if parts[0] in ("v1", "beta", "alpha", "google") and len(parts) > 1 else parts[0]


def _target(
    entry: Mapping[str, Any],
    payload: Mapping[str, Any],
    method: str,
    service: str,
    project: str | None,
    time: datetime,
) -> Node:
    resource_name = as_str(payload.get("resourceName")) or ""
    resource_type = as_str(get_path(entry, "resource", "type")) or ""
    labels = get_path(entry, "resource", "labels")
    labels = labels if isinstance(labels, Mapping) else {}
    short = _short_service(service, method)
    region = as_str(labels.get("zone")) or as_str(labels.get("location")) or as_str(labels.get("region"))
    common = clean_props(cloud=CLOUD, account=project, region=region)

    if short == "k8s" or resource_type == "k8s_cluster" or method.startswith("io.k8s."):
        return _gke_target(method, resource_name, labels, project, time)
    if short == "iamcredentials" or resource_type == "service_account" or "/serviceAccounts/" in resource_name:
        email = _service_account_email(payload, resource_name, labels)
        if email:
            return service_account_node(email, time)
    name = resource_name.removeprefix("//").split("/", 1)[1] if resource_name.startswith("//") else resource_name
    for service_key, pattern, label in _RESOURCE_PATTERNS:
        if short != service_key and not (service_key == "cloudsql" and method.startswith("cloudsql.")):
            continue
        match = pattern.match(name)
        if match:
            cut = match.group(1)
            host = f"{service_key}.googleapis.com" if service_key != "cloudsql" else "sqladmin.googleapis.com"
            props = {"name": cut.rsplit("/", 1)[-1], **common}
            return Node(label, uids.gcp_resource(f"//{host}/{cut}"), props, time)
    bucket = as_str(labels.get("bucket_name"))
    if short == "storage" and bucket:
        return Node(
            "Bucket",
            uids.gcp_resource(f"//storage.googleapis.com/projects/_/buckets/{bucket}"),
            {"name": bucket, **common},
            time,
        )
    if resource_type == "sql_instance" and as_str(labels.get("database_id")):
        database = str(labels["database_id"]).split(":")[-1]
        uid = uids.gcp_resource(f"//sqladmin.googleapis.com/projects/{project}/instances/{database}")
        return Node("Database", uid, {"name": database, **common}, time)
    log_name = as_str(entry.get("logName")) or ""
    if name.startswith("organizations/") or (project is None and log_name.startswith("organizations/")):
        org = (name if name.startswith("organizations/") else log_name).split("/")[1]
        uid = uids.gcp_resource(f"//cloudresourcemanager.googleapis.com/organizations/{org}")
        return Node("CloudAccount", uid, {"name": org, "cloud": CLOUD, "kind": "organization"}, time)
    if project is None:
        raise ValueError(f"cannot tell the project of {method} on {resource_name or resource_type!r}")
    return _project_node(project, time)


def _service_account_email(payload: Mapping[str, Any], resource_name: str, labels: Mapping[str, Any]) -> str | None:
    for text in (as_str(get_path(payload, "request", "name")), resource_name):
        if text and (match := _SERVICE_ACCOUNT.search(text)) and "@" in match.group(1):
            return match.group(1)
    email = as_str(labels.get("email_id"))
    if email:
        return email
    match = _SERVICE_ACCOUNT.search(resource_name)
    return match.group(1) if match else None


def _gke_target(
    method: str, resource_name: str, labels: Mapping[str, Any], project: str | None, time: datetime
) -> Node:
    cluster = as_str(labels.get("cluster_name")) or project or "unknown"
    parts = resource_name.split("/")
    namespace = parts[parts.index("namespaces") + 1] if "namespaces" in parts[:-1] else None
    if namespace and "pods" in parts[:-1]:
        pod = parts[parts.index("pods") + 1]
        return k8s_pod_node(cluster, namespace, pod, time)
    props = clean_props(name=cluster, cloud=CLOUD, account=project, region=as_str(labels.get("location")))
    return Node("Cluster", uids.k8s_cluster(cluster), props, time)


def _relation(method: str, service: str, label: str, payload: Mapping[str, Any]) -> str:
    verb = method.rsplit(".", 1)[-1].lower()
    if method.startswith("io.k8s."):
        # io.k8s.core.v1.pods.exec.create → resource pods, subresource exec, verb create
        parts = method.split(".")
        version = next((i for i, part in enumerate(parts) if re.fullmatch(r"v\d+(?:(?:alpha|beta)\d*)?", part)), 3)
        segments = parts[version + 1 :]
        resource = segments[0] if segments else ""
        subresource = segments[1] if len(segments) > 2 else None
        return k8s_relation(segments[-1] if segments else "", resource, subresource, label) or "ACCESS"
    if verb in TOKEN_METHODS and label == "Role":
        return "ASSUMES_ROLE"
    if label == "VM" and "serialport" in (service + method).lower():
        return "LATERAL_MOVEMENT"
    if label == "VM" and verb in _VM_VERBS and ".instances." in method:
        return _VM_VERBS[verb]
    if verb.startswith(_READ_PREFIXES):
        return "ACCESS"
    return "MODIFIES"


def _act_as(payload: Mapping[str, Any]) -> Iterator[Node]:
    """Service accounts the caller was granted ``iam.serviceAccounts.actAs`` on in this call."""
    for grant in payload.get("authorizationInfo") or []:
        if not isinstance(grant, Mapping) or grant.get("permission") != "iam.serviceAccounts.actAs":
            continue
        if grant.get("granted") is False:
            continue
        match = _SERVICE_ACCOUNT.search(str(grant.get("resource", "")))
        if match and "@" in match.group(1):
            yield service_account_node(match.group(1))
