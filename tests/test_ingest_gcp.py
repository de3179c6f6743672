"""GCP Cloud Audit Logs adapter (including GKE audit entries carried in Cloud Audit Logs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from _ingest_support import FIXTURES, read

from gnnsec.ingest.gcp import GcpAuditAdapter

CAROL = "gcp:user:carol@acme.com"
ETL = "gcp:serviceAccount:etl@acme-data.iam.gserviceaccount.com"
DEPLOYER = "gcp:serviceAccount:deployer@acme-prod.iam.gserviceaccount.com"
API_1 = "//compute.googleapis.com/projects/acme-prod/zones/europe-west1-b/instances/api-1"
WORKER = "//compute.googleapis.com/projects/acme-prod/zones/europe-west1-b/instances/worker-9"
PROJECT = "gcp:project:acme-prod"


def test_gcloud_export_maps_verbs_onto_the_cloudtrail_relationship_types() -> None:
    mapped = read(GcpAuditAdapter(), FIXTURES / "gcp" / "audit-gcloud.json")
    decrypt = "google.cloud.kms.v1.KeyManagementService.Decrypt"
    assert [e for e in mapped.edge_tuples() if e[0] != "AUTHENTICATES_FROM"] == [
        ("START_VM", CAROL, API_1, "v1.compute.instances.start"),
        ("RESTART_VM", CAROL, API_1, "v1.compute.instances.reset"),
        ("ACCESS", ETL, "//storage.googleapis.com/projects/_/buckets/acme-payroll", "storage.objects.get"),
        ("CROSS_CLOUD_ACCESS", ETL, PROJECT, "storage.objects.get"),
        ("ASSUMES_ROLE", CAROL, DEPLOYER, "GenerateAccessToken"),
        ("MODIFIES", CAROL, PROJECT, "SetIamPolicy"),
        ("START_VM", CAROL, WORKER, "v1.compute.instances.insert"),
        ("ASSUMES_ROLE", CAROL, DEPLOYER, "iam.serviceAccounts.actAs"),
        ("ACCESS", ETL, PROJECT, decrypt),
        ("CROSS_CLOUD_ACCESS", ETL, PROJECT, decrypt),
    ]
    authentications = [(e.src.uid, e.dst.uid) for e in mapped.edges if e.type == "AUTHENTICATES_FROM"]
    # the KMS call came from "gce-internal-ip", which is no address
    assert (
        authentications == [(CAROL, "ip:35.190.0.10")] * 2 + [(ETL, "ip:10.128.0.7")] + [(CAROL, "ip:35.190.0.10")] * 3
    )
    assert mapped.edges[0].time == datetime(2024, 4, 1, 9, 0, 0, 123456, tzinfo=UTC)
    assert dict(mapped.node("VM", API_1).props) == {
        "name": "api-1",
        "cloud": "gcp",
        "account": "acme-prod",
        "region": "europe-west1-b",
    }
    assert mapped.node("Role", ETL).props["account"] == "acme-data"
    assert mapped.bad == []


def test_panther_sign_jwt_by_a_service_account_on_itself_is_access_not_impersonation() -> None:
    mapped = read(GcpAuditAdapter(), FIXTURES / "panther" / "gcp-audit.jsonl")
    sa = "gcp:serviceAccount:some-project@company.iam.gserviceaccount.com"
    assert mapped.edge_tuples() == [
        ("ACCESS", sa, sa, "SignJwt"),
        ("AUTHENTICATES_FROM", sa, "ip:1.2.3.4", "SignJwt"),
        # the account's e-mail says it lives in project "company"; it acted in "some-project"
        ("CROSS_CLOUD_ACCESS", sa, "gcp:project:some-project", "SignJwt"),
    ]
    assert mapped.edges[0].time == datetime(2024, 2, 26, 17, 15, 16, 314854, tzinfo=UTC)


def test_panther_gke_pod_creation_modifies_the_pod_in_its_cluster() -> None:
    mapped = read(GcpAuditAdapter(), FIXTURES / "panther" / "gke-audit.jsonl")
    pod = "k8s:pod:some-project-cluster/default/test-privileged-pod"
    assert mapped.edge_tuples() == [
        ("MODIFIES", "gcp:user:john.doe@company.com", pod, "io.k8s.core.v1.pods.create"),
        ("AUTHENTICATES_FROM", "gcp:user:john.doe@company.com", "ip:1.2.3.4", "io.k8s.core.v1.pods.create"),
    ]


def _entry(method: str, resource: str, service: str = "k8s.io", kind: str = "k8s_cluster", **labels: str) -> dict:
    return {
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "eve@example.com"},
            "requestMetadata": {"callerIp": "198.51.100.1"},
            "serviceName": service,
            "methodName": method,
            "resourceName": resource,
        },
        "resource": {"type": kind, "labels": {"project_id": "p1", **labels}},
        "timestamp": "2024-06-01T00:00:00Z",
    }


def test_gke_exec_is_lateral_movement_and_rbac_writes_modify_the_cluster(tmp_path: Path) -> None:
    path = tmp_path / "gke.jsonl"
    entries = [
        _entry("io.k8s.core.v1.pods.exec.create", "core/v1/namespaces/web/pods/api-0/exec", cluster_name="gke-1"),
        _entry(
            "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
            "rbac.authorization.k8s.io/v1/clusterrolebindings/pwn",
            cluster_name="gke-1",
        ),
        _entry("io.k8s.core.v1.secrets.list", "core/v1/namespaces/web/secrets", cluster_name="gke-1"),
    ]
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    edges = [e for e in read(GcpAuditAdapter(), path).edge_tuples() if e[0] != "AUTHENTICATES_FROM"]
    assert [(t, dst) for t, _, dst, _ in edges] == [
        ("LATERAL_MOVEMENT", "k8s:pod:gke-1/web/api-0"),
        ("MODIFIES", "k8s:cluster:gke-1"),
        ("ACCESS", "k8s:cluster:gke-1"),
    ]


def test_entries_without_method_or_time_are_bad_at_their_index(tmp_path: Path) -> None:
    good = _entry("storage.buckets.get", "projects/_/buckets/b", service="storage.googleapis.com", kind="gcs_bucket")
    no_method = _entry("x", "projects/_/buckets/b")
    del no_method["protoPayload"]["methodName"]
    no_time = _entry("storage.buckets.get", "projects/_/buckets/b", service="storage.googleapis.com")
    del no_time["timestamp"]
    path = tmp_path / "entries.json"
    path.write_text(json.dumps([good, no_method, no_time]))
    mapped = read(GcpAuditAdapter(), path)
    assert [(b.where, b.reason) for b in mapped.bad] == [
        ("[1]", "protoPayload has no methodName"),
        ("[2]", "no parseable timestamp"),
    ]
    assert mapped.edge_tuples()[0] == (
        "ACCESS",
        "gcp:user:eve@example.com",
        "//storage.googleapis.com/projects/_/buckets/b",
        "storage.buckets.get",
    )


def test_every_panther_gcp_sample_maps_without_schema_violations(tmp_path: Path) -> None:
    """The 168 GCP events of the shared sample.

    The bad ones are Panther test stubs: a ``protoPayload`` that is a placeholder string, no
    ``methodName``, or no timestamp at all; each is reported, none raises.
    """
    panther = Path("/work/shared/data/events/panther")
    for name, expected_bad in (("gcp_audit.jsonl", 19), ("gcp_k8s_audit.jsonl", 8)):
        source = panther / name
        if not source.exists():
            continue
        events = [json.dumps(json.loads(line)["log"]) for line in source.read_text().splitlines() if line.strip()]
        target = tmp_path / name
        target.write_text("\n".join(events) + "\n")
        bad = read(GcpAuditAdapter(), target).bad
        assert len(bad) == expected_bad, [(b.where, b.reason) for b in bad]
