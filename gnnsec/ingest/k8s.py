"""Kubernetes objects (``kubectl get nodes,pods -A -o json``) and audit events → schema records.

**Which cluster.**  Neither format names its cluster reliably, so the name is, in order: the
``cluster`` constructor argument (``gnnsec ingest k8s --cluster prod``), the AKS resource id of
a diagnostic record (``…/managedClusters/<name>``), ``metadata.clusterName`` or the eksctl
node label ``alpha.eksctl.io/cluster-name`` of any object in the file, and finally the file
name without its extensions (``prod-eks.json`` → ``prod-eks``).

**Identities.**  A human or external user is a User (uids.k8s_user); a service account
``system:serviceaccount:<ns>:<name>`` is a Role with uid ``k8s:serviceaccount:<cluster>/<ns>/<name>``
(it is what pods *act as*, like an IAM role); a kubelet ``system:node:<name>`` is the node's VM.

**Nodes as VMs.**  A node whose ``spec.providerID`` names an Azure VM or GCE instance gets that
cloud's uid, so the same machine seen in Azure Activity or GCP audit logs is one node; an AWS
``aws:///<az>/i-…`` cannot become an ARN (the account is not in the object), so the node keeps
uids.k8s_node and records ``instance_id``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import orjson

from gnnsec.ingest import uids
from gnnsec.ingest._common import as_str, clean_props, excerpt, first_json_line, get_path, ip_node, parse_ip
from gnnsec.ingest.base import BadRecord, Edge, Node, Record, head
from gnnsec.ingest.jsonio import iter_json_records, map_json_records, parse_time
from gnnsec.ingest.validation import safe_excerpt

CLOUD = "k8s"

READ_VERBS = frozenset({"get", "list", "watch"})
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
REMOTE_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})
"""Pod subresources that open a session inside the workload (kubectl exec/attach/port-forward)."""

_COMPLETE_STAGES = frozenset({"ResponseComplete", "Panic"})
_STAGES = _COMPLETE_STAGES | {"RequestReceived", "ResponseStarted"}
_CLUSTER_LABELS = ("alpha.eksctl.io/cluster-name", "eks.amazonaws.com/cluster-name")
_GCE_PROVIDER = re.compile(r"^gce://([^/]+)/([^/]+)/([^/]+)$")
_AWS_PROVIDER = re.compile(r"^aws:///([^/]+)/(i-[0-9a-f]+)$")


def k8s_service_account(cluster: str, namespace: str, name: str) -> str:
    """A Kubernetes service account: the identity pods run as, hence a Role."""
    return f"k8s:serviceaccount:{cluster}/{namespace}/{name}"


def k8s_pod_node(cluster: str, namespace: str, name: str, seen: datetime | None = None, **extra: Any) -> Node:
    props = clean_props(name=name, namespace=namespace, cloud=CLOUD, account=cluster, **extra)
    return Node("Pod", uids.k8s_pod(cluster, namespace, name), props, seen)


def cluster_node(cluster: str, seen: datetime | None = None) -> Node:
    return Node("Cluster", uids.k8s_cluster(cluster), {"name": cluster, "cloud": CLOUD, "account": cluster}, seen)


def k8s_relation(verb: str, resource: str | None, subresource: str | None, target_label: str) -> str | None:
    """The relationship type for an API verb on a resource; None for verbs with no meaning here.

    ``pods/exec|attach|portforward`` → LATERAL_MOVEMENT (into a Pod); ``serviceaccounts/token``
    creation or ``impersonate`` → ASSUMES_ROLE; get/list/watch → ACCESS; writes → MODIFIES.
    """
    verb = verb.lower()
    if resource == "pods" and subresource in REMOTE_SUBRESOURCES and target_label == "Pod":
        return "LATERAL_MOVEMENT"
    if resource == "serviceaccounts" and target_label == "Role" and (subresource == "token" or verb == "impersonate"):
        return "ASSUMES_ROLE"
    if verb in READ_VERBS:
        return "ACCESS"
    if verb in WRITE_VERBS:
        return "MODIFIES"
    return None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".ndjson", ".json", ".log"):
        name = name.removesuffix(suffix)
    return name or "default"


# ---- kubectl get -o json --------------------------------------------------------------------


class KubernetesObjectsAdapter:
    """``kubectl get nodes,pods -A -o json``: Cluster, nodes as VMs, Pods, Containers."""

    name: ClassVar[str] = "k8s"
    description: ClassVar[str] = "Kubernetes objects from kubectl get nodes,pods -A -o json (List or single object)"

    def __init__(self, cluster: str | None = None) -> None:
        self.cluster = cluster

    def sniff(self, path: Path) -> bool:
        text = head(path)
        if "audit.k8s.io" in text or '"protoPayload"' in text or not text.lstrip().startswith("{"):
            return False
        return (
            '"apiVersion"' in text and re.search(r'"kind"\s*:\s*"(Pod|Node|List|PodList|NodeList)"', text) is not None
        )

    def read(self, path: Path) -> Iterator[Record]:
        items: list[tuple[str, dict[str, Any]]] = []

        def collect(where: str, obj: dict[str, Any]) -> Iterator[Record]:
            if where == "document" and "items" in obj:  # a list whose items are not a JSON array
                yield BadRecord("items", f"'items' must be a JSON array, found {type(obj['items']).__name__}",
                                excerpt(obj))
            else:
                items.append((where, obj))

        yield from map_json_records(iter_json_records(path, envelope_keys=("items",)), collect)
        if not any(obj.get("kind") in ("Pod", "Node") for _, obj in items):
            return  # no object the schema keeps: no cluster named after the file (a phantom entity)
        cluster = self.cluster or _cluster_from_objects(obj for _, obj in items) or _stem(path)
        yield cluster_node(cluster)
        node_uids: dict[str, str] = {}

        def node_records(_where: str, obj: dict[str, Any]) -> list[Record]:
            records = list(_node_records(cluster, obj))  # all or nothing: a bad node leaves no VM behind
            vm = records[0]
            if not isinstance(vm, Node):  # _node_records yields the VM first
                raise TypeError(f"expected the VM node first, got {vm!r}")
            node_uids[str(obj["metadata"]["name"])] = vm.uid
            return records

        # Nodes first, so pods find their VM; other kinds (Service, Deployment…) have no place in the schema yet.
        nodes = [(where, obj) for where, obj in items if obj.get("kind") == "Node"]
        yield from map_json_records(nodes, node_records, ValueError)
        pods = [(where, obj) for where, obj in items if obj.get("kind") == "Pod"]
        yield from map_json_records(pods, lambda _, obj: _pod_records(cluster, obj, node_uids), ValueError)


def _cluster_from_objects(objects: Iterator[Mapping[str, Any]]) -> str | None:
    for obj in objects:
        metadata = _mapping(obj.get("metadata"))
        name = as_str(metadata.get("clusterName"))
        labels = _mapping(metadata.get("labels"))
        name = name or next((as_str(labels.get(key)) for key in _CLUSTER_LABELS if as_str(labels.get(key))), None)
        if name:
            return name
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping) or not as_str(metadata.get("name")):
        raise ValueError(f"{obj.get('kind')} without metadata.name")
    return metadata


def _node_records(cluster: str, obj: Mapping[str, Any]) -> Iterator[Record]:
    metadata = _metadata(obj)
    name = str(metadata["name"])
    labels = _mapping(metadata.get("labels"))
    provider = as_str(get_path(obj, "spec", "providerID")) or ""
    region = as_str(labels.get("topology.kubernetes.io/region")) or as_str(
        labels.get("failure-domain.beta.kubernetes.io/region")
    )
    cloud, uid, instance_id = CLOUD, uids.k8s_node(cluster, name), None
    if provider.lower().startswith("azure:///subscriptions/"):
        cloud, uid = "azure", uids.azure_resource(provider[len("azure://") :])
    elif match := _GCE_PROVIDER.match(provider):
        project, zone, instance = match.groups()
        cloud, uid = (
            "gcp",
            uids.gcp_resource(f"//compute.googleapis.com/projects/{project}/zones/{zone}/instances/{instance}"),
        )
    elif match := _AWS_PROVIDER.match(provider):
        cloud, instance_id = "aws", match.group(2)
    info = get_path(obj, "status", "nodeInfo") or {}
    props = clean_props(
        name=name,
        cloud=cloud,
        account=cluster,
        region=region,
        kind="k8s-node",
        provider_id=provider or None,
        instance_id=instance_id,
        instance_type=as_str(labels.get("node.kubernetes.io/instance-type")),
        kubelet_version=as_str(get_path(info, "kubeletVersion")),
        os_image=as_str(get_path(info, "osImage")),
    )
    vm = Node("VM", uid, props)
    yield vm
    yield Edge("DEPLOYED_ON", vm.ref, Node("Cluster", uids.k8s_cluster(cluster)).ref)
    for address in get_path(obj, "status", "addresses") or []:
        if isinstance(address, Mapping) and address.get("type") in ("InternalIP", "ExternalIP"):
            ip = parse_ip(address.get("address"))
            if ip:
                yield ip_node(ip)
                yield Edge("HAS_IP", vm.ref, Node("IP", uids.ip(ip)).ref)


def _pod_records(cluster: str, obj: Mapping[str, Any], node_uids: Mapping[str, str]) -> Iterator[Record]:
    metadata = _metadata(obj)
    name = str(metadata["name"])
    namespace = as_str(metadata.get("namespace")) or "default"
    spec = _mapping(obj.get("spec"))
    containers = [(c, False) for c in spec.get("containers") or [] if isinstance(c, Mapping)]
    containers += [(c, True) for c in spec.get("initContainers") or [] if isinstance(c, Mapping)]
    privileged = any(bool(get_path(c, "securityContext", "privileged")) for c, _ in containers)
    node_name = as_str(spec.get("nodeName"))
    pod = k8s_pod_node(
        cluster,
        namespace,
        name,
        service_account=as_str(spec.get("serviceAccountName")) or as_str(spec.get("serviceAccount")),
        host_network=bool(spec.get("hostNetwork", False)),
        host_pid=bool(spec.get("hostPID", False)),
        privileged=privileged,
        phase=as_str(get_path(obj, "status", "phase")),
        node=node_name,
    )
    yield pod
    cluster_ref = Node("Cluster", uids.k8s_cluster(cluster)).ref
    yield Edge("DEPLOYED_ON", pod.ref, cluster_ref)
    if node_name:
        vm_uid = node_uids.get(node_name, uids.k8s_node(cluster, node_name))
        if node_name not in node_uids:
            yield Node("VM", vm_uid, {"name": node_name, "cloud": CLOUD, "account": cluster, "kind": "k8s-node"})
        yield Edge("RUNS_ON", pod.ref, Node("VM", vm_uid).ref)
    pod_ips = {parse_ip(get_path(obj, "status", "podIP"))}
    pod_ips |= {parse_ip(get_path(entry, "ip")) for entry in get_path(obj, "status", "podIPs") or []}
    for ip in sorted(ip for ip in pod_ips if ip):
        yield ip_node(ip)
        yield Edge("HAS_IP", pod.ref, Node("IP", uids.ip(ip)).ref)
    for container, init in containers:
        container_name = as_str(container.get("name"))
        if container_name is None:
            raise ValueError(f"a container of pod {namespace}/{name} has no name")
        props = clean_props(
            name=container_name,
            cloud=CLOUD,
            account=cluster,
            image=as_str(container.get("image")),
            privileged=bool(get_path(container, "securityContext", "privileged")),
            init=init,
            kind="container",
        )
        node = Node("Container", uids.k8s_container(cluster, namespace, name, container_name), props)
        yield node
        yield Edge("CONTAINS", pod.ref, node.ref)
        yield Edge("RUNS_ON", node.ref, pod.ref)


# ---- audit.k8s.io Event ----------------------------------------------------------------------


# Its head is shaped like KubernetesObjectsAdapter's: the Adapter protocol's declarations and the --cluster option.
class KubernetesAuditAdapter:
    """Kubernetes API-server audit events (plain, EKS CloudWatch, AKS diagnostic ``kube-audit``)."""

    name: ClassVar[str] = "k8s-audit"
    description: ClassVar[str] = "Kubernetes audit.k8s.io Events (JSON lines, EventList, EKS/AKS exports)"

    def __init__(self, cluster: str | None = None) -> None:
        self.cluster = cluster

    def sniff(self, path: Path) -> bool:
        text = head(path)
        if "audit.k8s.io" in text and '"protoPayload"' not in text:
            return True
        first = first_json_line(text)
        return first is not None and str(first.get("category", "")).lower().startswith("kube-audit")

    def read(self, path: Path) -> Iterator[Record]:
        default_cluster = self.cluster or _stem(path)

        def records(_where: str, record: dict[str, Any]) -> Iterator[Record]:
            event, cluster = _unwrap_event(record)
            return _audit_records(event, self.cluster or cluster or default_cluster)

        yield from map_json_records(iter_json_records(path), records, ValueError)


def _unwrap_event(record: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None]:
    """The audit Event, and the cluster named by an AKS diagnostic wrapper if there is one."""
    properties = record.get("properties")
    if isinstance(properties, Mapping) and "log" in properties:
        log = properties["log"]
        try:
            event = orjson.loads(log) if isinstance(log, str) else log
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"properties.log is not JSON: {exc}") from exc
        if not isinstance(event, Mapping):
            raise ValueError("properties.log is not a JSON object")
        resource_id = as_str(record.get("resourceId")) or as_str(record.get("resourceid")) or ""
        match = re.search(r"/managedclusters/([^/]+)", resource_id, re.IGNORECASE)
        return event, (match.group(1) if match else None)
    return record, None


def _audit_identity(cluster: str, username: str, seen: datetime) -> Node:
    if username.startswith("system:serviceaccount:"):
        parts = username.split(":")
        if len(parts) == 4:
            namespace, name = parts[2], parts[3]
            props = {
                "name": f"{namespace}/{name}",
                "namespace": namespace,
                "cloud": CLOUD,
                "account": cluster,
                "kind": "service_account",
            }
            return Node("Role", k8s_service_account(cluster, namespace, name), props, seen)
    if username.startswith("system:node:"):
        node = username.removeprefix("system:node:")
        props = {"name": node, "cloud": CLOUD, "account": cluster, "kind": "k8s-node"}
        return Node("VM", uids.k8s_node(cluster, node), props, seen)
    return Node("User", uids.k8s_user(cluster, username), {"name": username, "cloud": CLOUD, "account": cluster}, seen)


def _audit_records(event: Mapping[str, Any], cluster: str) -> Iterator[Record]:
    stage = event.get("stage")
    if stage is not None and (not isinstance(stage, str) or stage not in _STAGES):
        # dropped as "not complete", a malformed stage would be a silent skip: the event is bad instead
        raise ValueError(f"audit event with an unknown stage {safe_excerpt(stage, 60)} "
                         f"(one of {', '.join(sorted(_STAGES))})")
    if stage is not None and stage not in _COMPLETE_STAGES:
        return  # RequestReceived / ResponseStarted repeat the same request; count it once
    username = as_str(get_path(event, "user", "username"))
    if username is None:
        raise ValueError("audit event without user.username")
    verb = as_str(event.get("verb"))
    if verb is None:
        raise ValueError("audit event without verb")
    time = None
    for key in ("stageTimestamp", "requestReceivedTimestamp", "timestamp"):
        if as_str(event.get(key)):
            time = parse_time(event[key])
            break
    if time is None:
        raise ValueError("audit event without stageTimestamp or requestReceivedTimestamp")
    ref = _mapping(event.get("objectRef"))
    resource = as_str(ref.get("resource"))
    subresource = as_str(ref.get("subresource"))
    namespace = as_str(ref.get("namespace"))
    name = as_str(ref.get("name"))

    principal = _audit_identity(cluster, username, time)
    cluster_target = cluster_node(cluster, time)
    target = cluster_target
    if resource == "pods" and namespace and name:
        target = k8s_pod_node(cluster, namespace, name, time)
    elif resource == "serviceaccounts" and namespace and name and (subresource == "token" or verb == "impersonate"):
        target = _audit_identity(cluster, f"system:serviceaccount:{namespace}:{name}", time)
    if resource:
        action = f"k8s:{verb} {resource}" + (f"/{subresource}" if subresource else "")
    else:
        uri = as_str(event.get("requestURI")) or "/"
        action = f"k8s:{verb} {uri.split('?', 1)[0]}"
    rel = k8s_relation(verb, resource, subresource, target.label)
    if rel is None and target is not cluster_target:
        target, rel = cluster_target, k8s_relation(verb, resource, subresource, "Cluster")
    yield cluster_target
    if target is not cluster_target:
        yield target
    yield principal
    if principal.label == "VM":
        yield Edge("DEPLOYED_ON", principal.ref, cluster_target.ref)
    if rel is not None:
        yield Edge(rel, principal.ref, target.ref, {}, time, action)
    for source in event.get("sourceIPs") or []:
        address = parse_ip(source)
        if address:
            yield ip_node(address, time)
            yield Edge("AUTHENTICATES_FROM", principal.ref, Node("IP", uids.ip(address)).ref, {}, time, action)
            break
