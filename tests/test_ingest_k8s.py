"""Kubernetes objects (kubectl get -o json) and audit-event adapters."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from _ingest_support import FIXTURES, read

from gnnsec.ingest.k8s import KubernetesAuditAdapter, KubernetesObjectsAdapter

OBJECTS = FIXTURES / "k8s" / "prod-eks.json"
EKS_NODE = "k8s:node:prod-eks/ip-10-0-1-10.eu-west-1.compute.internal"
AKS_NODE = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourcegroups/mc_prod-rg_aks-prod_westeurope"
    "/providers/microsoft.compute/virtualmachinescalesets/aks-nodepool1/virtualmachines/0"
)
CLUSTER = "k8s:cluster:prod-eks"


def test_kubectl_list_maps_nodes_pods_and_containers_with_placement() -> None:
    mapped = read(KubernetesObjectsAdapter(), OBJECTS)
    web = "k8s:pod:prod-eks/default/web-7d4b9c"
    debugger = "k8s:pod:prod-eks/kube-system/node-debugger"
    orphan = "k8s:pod:prod-eks/default/orphan"
    stray = "k8s:node:prod-eks/ip-10-0-9-9.eu-west-1.compute.internal"
    container = "k8s:container:prod-eks"
    assert [(t, s, d) for t, s, d, _ in mapped.edge_tuples()] == [
        ("DEPLOYED_ON", EKS_NODE, CLUSTER),
        ("HAS_IP", EKS_NODE, "ip:10.0.1.10"),
        ("DEPLOYED_ON", AKS_NODE, CLUSTER),
        ("HAS_IP", AKS_NODE, "ip:10.0.1.11"),
        ("DEPLOYED_ON", web, CLUSTER),
        ("RUNS_ON", web, EKS_NODE),
        ("HAS_IP", web, "ip:10.0.1.57"),
        ("CONTAINS", web, f"{container}/default/web-7d4b9c/nginx"),
        ("RUNS_ON", f"{container}/default/web-7d4b9c/nginx", web),
        ("CONTAINS", web, f"{container}/default/web-7d4b9c/log-shipper"),
        ("RUNS_ON", f"{container}/default/web-7d4b9c/log-shipper", web),
        ("DEPLOYED_ON", debugger, CLUSTER),
        ("RUNS_ON", debugger, AKS_NODE),
        ("HAS_IP", debugger, "ip:10.0.1.11"),
        ("CONTAINS", debugger, f"{container}/kube-system/node-debugger/debug"),
        ("RUNS_ON", f"{container}/kube-system/node-debugger/debug", debugger),
        ("DEPLOYED_ON", orphan, CLUSTER),
        ("RUNS_ON", orphan, stray),
        ("HAS_IP", orphan, "ip:10.0.9.20"),
        ("CONTAINS", orphan, f"{container}/default/orphan/app"),
        ("RUNS_ON", f"{container}/default/orphan/app", orphan),
    ]
    assert all(e.time is None for e in mapped.edges)


def test_node_and_pod_properties_carry_the_security_relevant_facts() -> None:
    mapped = read(KubernetesObjectsAdapter(), OBJECTS)
    eks = mapped.node("VM", EKS_NODE).props
    assert (eks["cloud"], eks["instance_id"], eks["region"], eks["account"]) == (
        "aws",
        "i-0123456789abcdef0",
        "eu-west-1",
        "prod-eks",
    )
    assert mapped.node("VM", AKS_NODE).props["cloud"] == "azure"
    debugger = mapped.node("Pod", "k8s:pod:prod-eks/kube-system/node-debugger").props
    assert (debugger["privileged"], debugger["host_network"], debugger["service_account"]) == (True, True, "default")
    web = mapped.node("Pod", "k8s:pod:prod-eks/default/web-7d4b9c").props
    assert (web["privileged"], web["host_network"], web["service_account"]) == (False, False, "web")
    nginx = mapped.node("Container", "k8s:container:prod-eks/default/web-7d4b9c/nginx").props
    assert (nginx["image"], nginx["privileged"]) == ("nginx:1.25.3", False)
    assert mapped.node("Cluster", CLUSTER).props == {"name": "prod-eks", "cloud": "k8s", "account": "prod-eks"}


def test_cluster_comes_from_the_constructor_then_the_objects_then_the_file_name(tmp_path: Path) -> None:
    assert read(KubernetesObjectsAdapter(cluster="blue"), OBJECTS).nodes[0].uid == "k8s:cluster:blue"
    document = json.loads(OBJECTS.read_text())
    document["items"][0]["metadata"]["labels"]["alpha.eksctl.io/cluster-name"] = "green"
    renamed = tmp_path / "whatever.json"
    renamed.write_text(json.dumps(document))
    assert read(KubernetesObjectsAdapter(), renamed).nodes[0].uid == "k8s:cluster:green"


def test_a_gce_node_gets_the_instance_uid_gcp_audit_logs_use(tmp_path: Path) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "gke-n1"},
        "spec": {"providerID": "gce://acme-prod/europe-west1-b/gke-n1"},
    }
    path = tmp_path / "gke.json"
    path.write_text(json.dumps(node))
    vm = next(n for n in read(KubernetesObjectsAdapter(), path).nodes if n.label == "VM")
    assert vm.uid == "//compute.googleapis.com/projects/acme-prod/zones/europe-west1-b/instances/gke-n1"


def test_an_object_without_a_name_is_bad_at_its_index() -> None:
    bad = read(KubernetesObjectsAdapter(), OBJECTS).bad
    assert [(b.where, b.reason) for b in bad] == [("items[5]", "Pod without metadata.name")]


def test_audit_exec_secrets_and_writes_map_to_lateral_movement_access_and_modifies() -> None:
    mapped = read(KubernetesAuditAdapter(cluster="prod-eks"), FIXTURES / "k8s" / "audit.jsonl")
    alice = "k8s:user:prod-eks/alice@example.com"
    builder = "k8s:serviceaccount:prod-eks/ci/builder"
    # the ResponseStarted stage of the exec is not counted twice
    assert mapped.edge_tuples() == [
        ("LATERAL_MOVEMENT", alice, "k8s:pod:prod-eks/default/web-7d4b9c", "k8s:create pods/exec"),
        ("AUTHENTICATES_FROM", alice, "ip:203.0.113.9", "k8s:create pods/exec"),
        ("ACCESS", builder, CLUSTER, "k8s:list secrets"),
        ("AUTHENTICATES_FROM", builder, "ip:10.0.1.57", "k8s:list secrets"),
        ("MODIFIES", alice, CLUSTER, "k8s:delete configmaps"),
        ("AUTHENTICATES_FROM", alice, "ip:203.0.113.9", "k8s:delete configmaps"),
    ]
    assert mapped.node("Role", builder).props["kind"] == "service_account"
    assert mapped.edges[0].time == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)


def test_audit_event_without_user_is_bad_at_its_line() -> None:
    bad = read(KubernetesAuditAdapter(), FIXTURES / "k8s" / "audit.jsonl").bad
    assert [(b.where, b.reason) for b in bad] == [("line 5", "audit event without user.username")]


def test_panther_eks_node_minting_a_service_account_token_assumes_that_role() -> None:
    mapped = read(KubernetesAuditAdapter(), FIXTURES / "panther" / "k8s-audit.jsonl")
    node = "k8s:node:k8s-audit/suspicious-node"
    action = "k8s:create serviceaccounts/token"
    assert mapped.edge_tuples() == [
        ("DEPLOYED_ON", node, "k8s:cluster:k8s-audit", None),
        ("ASSUMES_ROLE", node, "k8s:serviceaccount:k8s-audit/kube-system/kube-proxy", action),
        ("AUTHENTICATES_FROM", node, "ip:1.2.3.4", action),
    ]
    assert mapped.edges[1].time == datetime(2025, 8, 26, 17, 40, 49, 330617, tzinfo=UTC)


def test_panther_eks_stub_without_verb_is_a_bad_record() -> None:
    mapped = read(KubernetesAuditAdapter(), FIXTURES / "panther" / "eks-audit.jsonl")
    assert [(b.where, b.reason) for b in mapped.bad] == [("line 1", "audit event without verb")]
    assert mapped.edges == []


def test_aks_diagnostic_records_unwrap_the_event_and_name_the_cluster(tmp_path: Path) -> None:
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "stage": "ResponseComplete",
        "verb": "get",
        "user": {"username": "dev@contoso.com"},
        "sourceIPs": ["10.0.0.1"],
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db"},
        "stageTimestamp": "2024-07-01T00:00:00Z",
    }
    record = {
        "category": "kube-audit",
        "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
        "resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-1",
        "time": "2024-07-01T00:00:00Z",
        "properties": {"log": json.dumps(event)},
    }
    path = tmp_path / "aks.jsonl"
    path.write_text(json.dumps(record) + "\n")
    assert KubernetesAuditAdapter().sniff(path)
    assert read(KubernetesAuditAdapter(), path).edge_tuples()[0] == (
        "ACCESS",
        "k8s:user:AKS-1/dev@contoso.com",
        "k8s:cluster:AKS-1",
        "k8s:get secrets",
    )


def test_every_panther_kubernetes_sample_is_mapped_or_reported(tmp_path: Path) -> None:
    """EKS and plain/AKS audit events of the shared sample.

    Panther's generic Kubernetes test events are stubs without any timestamp (or user), so each is
    reported, none silently dropped; the EKS events are complete and map.
    """
    panther = Path("/work/shared/data/events/panther")
    expected = {
        "aws_eks_audit.jsonl": (25, {"audit event without verb": 6}),
        "kubernetes_audit.jsonl": (
            0,
            {
                "audit event without stageTimestamp or requestReceivedTimestamp": 165,
                "audit event without user.username": 32,
                "audit event without verb": 5,
            },
        ),
    }
    for name, (edges, reasons) in expected.items():
        source = panther / name
        if not source.exists():
            continue
        events = [json.loads(line)["log"] for line in source.read_text().splitlines() if line.strip()]
        events = [e for e in events if "protoPayload" not in e]  # GKE entries belong to gcp-audit
        target = tmp_path / name
        target.write_text("\n".join(json.dumps(e) for e in events) + "\n")
        mapped = read(KubernetesAuditAdapter(), target)
        assert len(mapped.edges) == edges, name
        assert dict(Counter(b.reason for b in mapped.bad)) == reasons, name
