"""Azure Activity Log and Entra ID sign-in/audit adapters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from _ingest_support import FIXTURES, read

from gnnsec.ingest.azure import AzureActivityAdapter, AzureSignInAdapter, resource_node

SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourcegroups/prod-rg/providers"
VM = f"{RG}/microsoft.compute/virtualmachines/web-01"
BOB = "azure:user:bob@contoso.com"
MI = "azure:principal:7a7a7a7a-0000-0000-0000-000000000009"


def test_panther_elevate_access_event_is_a_tenant_modification_from_the_caller_ip() -> None:
    mapped = read(AzureActivityAdapter(), FIXTURES / "panther" / "azure-activity.jsonl")
    tenant = "azure:tenant:87654321-4321-4321-4321-111111111111"
    action = "Microsoft.Authorization/elevateAccess/action"
    assert mapped.edge_tuples() == [
        ("MODIFIES", "azure:user:attacker@example.com", tenant, action),
        ("AUTHENTICATES_FROM", "azure:user:attacker@example.com", "ip:203.0.113.42", action),
    ]
    assert mapped.edges[0].time == datetime(2024, 12, 24, 15, 45, tzinfo=UTC)
    assert mapped.node("CloudAccount", tenant).props["kind"] == "tenant"
    assert mapped.bad == []


def test_rest_export_maps_vm_power_verbs_run_command_managed_identity_and_cross_tenant_writes() -> None:
    mapped = read(AzureActivityAdapter(), FIXTURES / "azure" / "activity-rest.json")
    storage = f"{RG}/microsoft.storage/storageaccounts/payrollsa"
    assignment = (
        f"/subscriptions/{SUB}/providers/microsoft.authorization/roleassignments/5e5e5e5e-0000-0000-0000-000000000005"
    )
    mallory = "azure:user:mallory@fabrikam.com"
    compute = "Microsoft.Compute/virtualMachines"
    assert [e for e in mapped.edge_tuples() if e[0] != "AUTHENTICATES_FROM"] == [
        ("START_VM", BOB, VM, f"{compute}/start/action"),
        ("STOP_VM", BOB, VM, f"{compute}/deallocate/action"),
        ("LATERAL_MOVEMENT", BOB, VM, f"{compute}/runCommand/action"),
        ("ACCESS", MI, storage, "Microsoft.Storage/storageAccounts/listKeys/action"),
        ("ASSUMES_ROLE", VM, MI, "managedidentity:token"),
        ("MODIFIES", mallory, assignment, "Microsoft.Authorization/roleAssignments/write"),
        ("CROSS_CLOUD_ACCESS", mallory, f"azure:subscription:{SUB}", "Microsoft.Authorization/roleAssignments/write"),
        ("MODIFIES", BOB, f"azure:subscription:{SUB}", "Microsoft.Resources/subscriptions/resourceGroups/delete"),
    ]
    sources = sorted({(e.src.uid, e.dst.uid) for e in mapped.edges if e.type == "AUTHENTICATES_FROM"})
    assert sources == sorted([(BOB, "ip:52.170.10.20"), (MI, "ip:10.1.0.4"), (mallory, "ip:203.0.113.66")])
    assert mapped.node("IP", "ip:10.1.0.4").props == {"name": "10.1.0.4", "public": False}
    assert mapped.node("Role", "azure:principal:7a7a7a7a-0000-0000-0000-000000000009").label == "Role"
    assert dict(mapped.node("VM", VM).props) == {
        "name": "web-01",
        "cloud": "azure",
        "account": SUB,
        "resource_group": "prod-rg",
        "kind": "virtualmachines",
    }
    assert mapped.edges[0].time == datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)


def test_diagnostic_records_cut_sub_resources_and_fall_back_to_the_subscription() -> None:
    mapped = read(AzureActivityAdapter(), FIXTURES / "azure" / "activity-records.json")
    database = f"{RG}/microsoft.sql/servers/sql-prod/databases/orders"
    cluster = f"{RG}/microsoft.containerservice/managedclusters/aks-prod"
    assert [(e.type, e.dst.label, e.dst.uid) for e in mapped.edges if e.type != "AUTHENTICATES_FROM"] == [
        ("MODIFIES", "Database", database),
        ("ACCESS", "Cluster", cluster),
        ("MODIFIES", "CloudAccount", f"azure:subscription:{SUB}"),
    ]
    assert mapped.node("Database", database).props["region"] == "westeurope"


def test_a_record_without_resource_or_subscription_is_bad_at_its_index() -> None:
    bad = read(AzureActivityAdapter(), FIXTURES / "azure" / "activity-records.json").bad
    assert [(b.where, b.reason) for b in bad] == [("records[3]", "no resourceId and no subscriptionId")]


def test_resource_ids_map_to_labels_by_provider_and_type() -> None:
    base = f"/subscriptions/{SUB}/resourceGroups/rg/providers"
    cases = {
        f"{base}/Microsoft.Storage/storageAccounts/sa/blobServices/default": (
            "Bucket",
            f"{base}/Microsoft.Storage/storageAccounts/sa",
        ),
        f"{base}/Microsoft.Web/sites/fn": ("Function", f"{base}/Microsoft.Web/sites/fn"),
        f"{base}/Microsoft.DocumentDB/databaseAccounts/cosmos": (
            "Database",
            f"{base}/Microsoft.DocumentDB/databaseAccounts/cosmos",
        ),
        f"{base}/Microsoft.Network/loadBalancers/lb": ("LoadBalancer", f"{base}/Microsoft.Network/loadBalancers/lb"),
        f"{base}/Microsoft.ApiManagement/service/apim": ("Gateway", f"{base}/Microsoft.ApiManagement/service/apim"),
        f"{base}/Microsoft.Network/virtualNetworks/vnet/subnets/app": (
            "Subnet",
            f"{base}/Microsoft.Network/virtualNetworks/vnet/subnets/app",
        ),
        f"{base}/Microsoft.Compute/virtualMachines/vm/extensions/x": (
            "VM",
            f"{base}/Microsoft.Compute/virtualMachines/vm",
        ),
        f"{base}/Microsoft.KeyVault/vaults/kv": ("CloudAccount", f"azure:subscription:{SUB}"),
    }
    for resource_id, (label, uid) in cases.items():
        node = resource_node(resource_id).node
        assert (node.label, node.uid) == (label, uid.lower()), resource_id


def test_graph_sign_ins_become_authentications_with_app_and_failure() -> None:
    mapped = read(AzureSignInAdapter(), FIXTURES / "azure" / "signins-graph.json")
    assert mapped.edge_tuples() == [
        ("AUTHENTICATES_FROM", BOB, "ip:52.170.10.20", "signin:Azure Portal"),
        ("AUTHENTICATES_FROM", BOB, "ip:185.220.101.4", "signin:Microsoft Teams:failed"),
    ]
    assert dict(mapped.edges[1].props) == {
        "failed": True,
        "error_code": 50126,
        "risk": "high",
        "conditional_access": "failure",
        "resource": "Microsoft Teams",
        "country": "DE",
    }
    assert mapped.edges[0].props["failed"] is False
    assert mapped.edges[1].time == datetime(2024, 3, 4, 7, 3, 10, tzinfo=UTC)


def test_panther_service_principal_sign_in_failure() -> None:
    mapped = read(AzureSignInAdapter(), FIXTURES / "panther" / "azure-signin.jsonl")
    principal = "azure:principal:b1c34143-e405-4058-8e29-84596ad737b8"
    assert mapped.edge_tuples() == [
        ("AUTHENTICATES_FROM", principal, "ip:12.12.12.12", "signin:some-service-principal:failed"),
    ]
    assert mapped.edges[0].props["error_code"] == 7000215
    assert mapped.node("Role", principal).props["name"] == "some-service-principal"
    assert mapped.edges[0].time == datetime(2023, 7, 26, 22, 58, 30, 983201, tzinfo=UTC)


def test_entra_audit_records_modify_their_target_principals(tmp_path: Path) -> None:
    record = (
        '{"time":"2025-01-15 09:30:20.123","resourceId":"/tenants/t-1/providers/Microsoft.aadiam",'
        '"operationName":"Add service principal credentials","category":"ApplicationManagement","tenantId":"t-1",'
        '"callerIpAddress":"2.2.2.2","properties":{"activityDisplayName":"Add service principal credentials",'
        '"activityDateTime":"2025-01-15T09:30:20.1234567Z","initiatedBy":{"user":{"userPrincipalName":"frodo@lotr.com",'
        '"ipAddress":"2.2.2.2"}},"targetResources":[{"id":"sp-app-456","displayName":"API","type":"ServicePrincipal"}]}}'
    )
    path = tmp_path / "audit.jsonl"
    path.write_text(record + "\n")
    action = "aad:Add service principal credentials"
    assert read(AzureSignInAdapter(), path).edge_tuples() == [
        ("MODIFIES", "azure:user:frodo@lotr.com", "azure:principal:sp-app-456", action),
        ("AUTHENTICATES_FROM", "azure:user:frodo@lotr.com", "ip:2.2.2.2", action),
    ]


def test_a_sign_in_without_identity_is_bad_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "signins.jsonl"
    path.write_text(
        '{"category":"SignInLogs","time":"2024-01-01T00:00:00Z","properties":{"userPrincipalName":"a@b.c",'
        '"ipAddress":"1.1.1.1","createdDateTime":"2024-01-01T00:00:00Z"}}\n'
        '{"category":"SignInLogs","time":"2024-01-01T00:00:00Z","properties":{"ipAddress":"1.1.1.1"}}\n'
    )
    mapped = read(AzureSignInAdapter(), path)
    assert len(mapped.edges) == 1
    assert [(b.where, b.reason) for b in mapped.bad] == [
        ("line 2", "a sign-in without userPrincipalName, userId or servicePrincipalId")
    ]


def test_every_panther_azure_sample_maps_without_schema_violations(tmp_path: Path) -> None:
    """All 214 activity and 47 Entra events of the shared sample, through the same checks.

    The five bad activity records are Panther test stubs of storage logs with neither resourceId
    nor subscription (only a SAS ``uri``).
    """
    panther = Path("/work/shared/data/events/panther")
    for name, adapter, expected_bad in (
        ("azure_activity.jsonl", AzureActivityAdapter(), 5),
        ("azure_signin.jsonl", AzureSignInAdapter(), 0),
    ):
        source = panther / name
        if not source.exists():
            continue
        events = [json.dumps(json.loads(line)["log"]) for line in source.read_text().splitlines() if line.strip()]
        target = tmp_path / name
        target.write_text("\n".join(events) + "\n")
        assert len(read(adapter, target).bad) == expected_bad, name
