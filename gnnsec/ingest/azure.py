"""Azure Activity Log and Entra ID (Azure AD) sign-in / audit records → schema records.

Both arrive in two shapes: the REST/portal export (``{"value": [...]}``, camelCase fields at
the top) and diagnostic settings (``{"records": [...]}`` in storage, or one record per line from
Event Hubs / Log Analytics, with the payload nested under ``properties``).  Field names are
matched case-insensitively because some pipelines lower-case them.

The verbs land on the same relationship types as CloudTrail, so one hunt works across clouds:
``virtualMachines/start|deallocate|powerOff|restart`` → START_VM / STOP_VM / RESTART_VM, reads and
data-plane gets → ACCESS, writes, deletes and other actions → MODIFIES, run-command and serial
console → LATERAL_MOVEMENT, a managed identity used by its resource → ASSUMES_ROLE, a caller
from another tenant → CROSS_CLOUD_ACCESS, the caller address → AUTHENTICATES_FROM.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from gnnsec.ingest import uids
from gnnsec.ingest._common import as_str, clean_props, get_path, ip_node, parse_ip
from gnnsec.ingest.base import Edge, Node, Record, head
from gnnsec.ingest.jsonio import iter_json_records, map_json_records, parse_time

CLOUD = "azure"

SIGNIN_CATEGORIES = frozenset(
    {
        "signinlogs",
        "noninteractiveusersigninlogs",
        "serviceprincipalsigninlogs",
        "managedidentitysigninlogs",
    }
)
"""Diagnostic-settings categories of Entra sign-in logs."""

SERVICE_SIGNIN_CATEGORIES = frozenset({"serviceprincipalsigninlogs", "managedidentitysigninlogs"})

DIRECTORY_AUDIT_CATEGORIES = frozenset(
    {
        "auditlogs",
        "directorymanagement",
        "applicationmanagement",
        "rolemanagement",
        "usermanagement",
        "groupmanagement",
        "policy",
    }
)
"""Entra audit-log categories (directory changes initiated by a user or an app)."""

# (provider/type path, lower case) → label; the longest matching prefix wins, and the resource
# id is cut after it so a blob service or VM extension maps onto its storage account or VM.
# A declarative table: its rows are alike by design.
RESOURCE_LABELS: dict[tuple[str, ...], str] = {
    ("microsoft.compute", "virtualmachines"): "VM",
    ("microsoft.compute", "virtualmachinescalesets", "virtualmachines"): "VM",
    ("microsoft.classiccompute", "virtualmachines"): "VM",
    ("microsoft.storage", "storageaccounts"): "Bucket",
    ("microsoft.web", "sites"): "Function",
    ("microsoft.sql", "servers"): "Database",
    ("microsoft.sql", "servers", "databases"): "Database",
    ("microsoft.sql", "managedinstances"): "Database",
    ("microsoft.documentdb", "databaseaccounts"): "Database",
    ("microsoft.dbforpostgresql", "servers"): "Database",
    ("microsoft.dbforpostgresql", "flexibleservers"): "Database",
    ("microsoft.dbformysql", "servers"): "Database",
    ("microsoft.dbformysql", "flexibleservers"): "Database",
    ("microsoft.cache", "redis"): "Database",
    ("microsoft.network", "loadbalancers"): "LoadBalancer",
    ("microsoft.network", "applicationgateways"): "Gateway",
    ("microsoft.network", "frontdoors"): "Gateway",
    ("microsoft.apimanagement", "service"): "Gateway",
    ("microsoft.network", "virtualnetworks"): "Subnet",
    ("microsoft.network", "virtualnetworks", "subnets"): "Subnet",
    ("microsoft.containerservice", "managedclusters"): "Cluster",
    ("microsoft.kubernetes", "connectedclusters"): "Cluster",
    ("microsoft.containerinstance", "containergroups"): "Container",
    ("microsoft.authorization", "roleassignments"): "Role",
    ("microsoft.authorization", "roledefinitions"): "Role",
    ("microsoft.managedidentity", "userassignedidentities"): "Role",
}
"""Azure resource types with a home in the schema; everything else lands on its subscription."""

PRINCIPAL_LABELS = frozenset({"VM", "Function", "Container"})
"""Resource labels that can hold a managed identity and so act as principals."""

UPN_CLAIMS = (
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "upn",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "unique_name",
    "name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
)
OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
APP_ID_CLAIMS = ("appid", "azp")
TENANT_CLAIMS = ("http://schemas.microsoft.com/identity/claims/tenantid", "tid")

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_READ_VERBS = ("read", "get", "list", "query", "download", "export", "search", "check", "begingetaccess")
_LATERAL_OPERATIONS = ("/runcommand/action", "/runcommands/write", "serialports/connect/action")
_VM_VERBS = {
    "start": "START_VM",
    "deallocate": "STOP_VM",
    "poweroff": "STOP_VM",
    "delete": "STOP_VM",
    "restart": "RESTART_VM",
    "redeploy": "RESTART_VM",
}


def azure_tenant(tenant_id: str) -> str:
    """A tenant seen as the account of directory-level operations (no subscription involved)."""
    return f"azure:tenant:{tenant_id.strip().lower()}"


class AzureActivityAdapter:
    """Azure Activity Log (control plane) and resource logs (e.g. storage data plane)."""

    name: ClassVar[str] = "azure-activity"
    description: ClassVar[str] = (
        "Azure Activity Log / resource logs (REST {value:[…]}, diagnostic {records:[…]}, JSONL)"
    )

    def sniff(self, path: Path) -> bool:
        text = head(path).lower()
        if '"operationname"' not in text or not ('"resourceid"' in text or '"resourceuri"' in text or '"uri"' in text):
            return False
        if "microsoft.aadiam" in text or "kube-audit" in text or '"protopayload"' in text:
            return False
        return "microsoft." in text or "/subscriptions/" in text or '"callerippaddress"' in text

    def read(self, path: Path) -> Iterator[Record]:
        records = iter_json_records(path)
        yield from map_json_records(records, lambda _, record: _activity_records(_lower_keys(record)), _Bad)


class AzureSignInAdapter:
    """Entra ID sign-in logs (user, non-interactive, service principal, managed identity) and audit logs."""

    name: ClassVar[str] = "azure-signin"
    description: ClassVar[str] = "Entra ID (Azure AD) sign-in and directory audit logs (Graph export or diagnostic)"

    def sniff(self, path: Path) -> bool:
        text = head(path).lower()
        if "microsoft.aadiam" in text or "auditlogs/signins" in text:
            return True
        if any(f'"category": "{c}"' in text or f'"category":"{c}"' in text for c in SIGNIN_CATEGORIES):
            return True
        return '"userprincipalname"' in text and '"createddatetime"' in text and '"appdisplayname"' in text

    def read(self, path: Path) -> Iterator[Record]:
        records = iter_json_records(path)
        yield from map_json_records(records, lambda _, record: _signin_records(_lower_keys(record)), _Bad)


class _Bad(ValueError):
    """A record that cannot be mapped; becomes a BadRecord at the adapter boundary."""


# ---- resource ids -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AzureResource:
    """What a resource id maps to in the schema."""

    node: Node
    subscription: str | None


def resource_node(resource_id: str, tenant_id: str | None = None, region: str | None = None) -> AzureResource:
    """The schema node for an Azure resource id (cut to the mapped resource), see :data:`RESOURCE_LABELS`.

    Subscription-level and unmapped resource types become the subscription's CloudAccount;
    tenant-level ids (``/providers/Microsoft.Authorization``) the tenant's.
    """
    parts = [p for p in resource_id.strip().split("/") if p]
    lower = [p.lower() for p in parts]
    subscription = parts[1] if len(parts) > 1 and lower[0] == "subscriptions" else None
    region = region if region and region.lower() not in ("global", "") else None
    if "providers" in lower:
        start = lower.index("providers") + 1
        tail = lower[start:]
        if tail:
            namespace, pairs = tail[0], tail[1:]
            types = tuple(pairs[0::2])
            best: tuple[str, ...] | None = None
            for key in RESOURCE_LABELS:
                depth = len(key) - 1
                matches = key[0] == namespace and types[:depth] == key[1:] and len(pairs) >= 2 * depth
                if matches and (best is None or len(key) > len(best)):
                    best = key
            if best is not None:
                end = start + 1 + 2 * (len(best) - 1)
                cut = "/" + "/".join(parts[:end])
                label = RESOURCE_LABELS[best]
                props = clean_props(
                    name=parts[end - 1],
                    cloud=CLOUD,
                    account=subscription.lower() if subscription else None,
                    region=region,
                    resource_group=_resource_group(parts, lower),
                    kind=best[-1],
                )
                return AzureResource(Node(label, uids.azure_resource(cut), props), subscription)
    if subscription:
        return AzureResource(account_node(subscription), subscription)
    if tenant_id:
        return AzureResource(tenant_node(tenant_id), None)
    raise _Bad(f"resource id {resource_id!r} names neither a subscription nor a tenant")


def account_node(subscription_id: str) -> Node:
    sub = subscription_id.lower()
    return Node("CloudAccount", uids.azure_subscription(sub), {"name": sub, "cloud": CLOUD, "account": sub})


def tenant_node(tenant_id: str) -> Node:
    tenant = tenant_id.lower()
    return Node(
        "CloudAccount", azure_tenant(tenant), {"name": tenant, "cloud": CLOUD, "account": tenant, "kind": "tenant"}
    )


def _resource_group(parts: list[str], lower: list[str]) -> str | None:
    if "resourcegroups" in lower:
        index = lower.index("resourcegroups") + 1
        return parts[index] if index < len(parts) else None
    return None


# ---- activity log -------------------------------------------------------------------------


def _lower_keys(record: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level keys lower-cased (nested payloads keep their spelling); the first spelling wins."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key.startswith("p_"):  # Panther enrichment, not part of the Azure record
            continue
        out.setdefault(key.lower(), value)
    return out


def _value(field: Any) -> str | None:
    """Activity Log fields are a string or ``{"value": …, "localizedValue": …}``."""
    if isinstance(field, Mapping):
        return as_str(field.get("value"))
    return as_str(field)


def _event_time(record: Mapping[str, Any], *keys: str) -> datetime:
    for key in keys:
        value = record.get(key)
        if value not in (None, ""):
            try:
                return parse_time(value)
            except ValueError as exc:
                raise _Bad(f"'{key}': {exc}") from exc
    raise _Bad(f"no event time (looked for {', '.join(keys)})")


def _claims(record: Mapping[str, Any]) -> dict[str, Any]:
    claims = record.get("claims")
    if not isinstance(claims, Mapping):
        claims = get_path(record, "identity", "claims")
    return {str(k).lower(): v for k, v in claims.items()} if isinstance(claims, Mapping) else {}


def _first_claim(claims: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = as_str(claims.get(name))
        if value:
            return value
    return None


def _caller(record: Mapping[str, Any], claims: Mapping[str, Any], tenant: str | None) -> Node | None:
    """The acting identity: a User by UPN, else a Role-like principal by object/app id."""
    upn = next((v for v in (_first_claim(claims, (n,)) for n in UPN_CLAIMS) if v and "@" in v), None)
    caller = as_str(record.get("caller"))
    if upn is None and caller and "@" in caller:
        upn = caller
    props = clean_props(cloud=CLOUD, account=tenant.lower() if tenant else None)
    if upn:
        return Node("User", uids.azure_user(upn), {"name": upn.lower(), **props})
    object_id = _first_claim(claims, OBJECT_ID_CLAIMS) or (caller if caller and _GUID.match(caller) else None)
    object_id = object_id or _first_claim(claims, APP_ID_CLAIMS)
    if object_id is None:
        evidence = get_path(record, "identity", "authorization", "evidence")
        object_id = as_str(get_path(evidence, "principalId")) if isinstance(evidence, Mapping) else None
        if object_id:
            props["principal_type"] = as_str(evidence.get("principalType")) or ""
    if object_id:
        return Node("Role", uids.azure_principal(object_id), {"name": object_id.lower(), **clean_props(**props)})
    return None


def _relation(operation: str, label: str) -> str:
    """The relationship type for an operation on a resource of ``label``."""
    op = operation.lower()
    if any(op.endswith(marker) for marker in _LATERAL_OPERATIONS) and label == "VM":
        return "LATERAL_MOVEMENT"
    segments = [s for s in op.split("/") if s]
    verb = segments[-2] if len(segments) >= 2 and segments[-1] == "action" else segments[-1] if segments else op
    if label == "VM" and "virtualmachines" in op and verb in _VM_VERBS:
        return _VM_VERBS[verb]
    if verb.startswith(_READ_VERBS) or verb in ("listkeys", "getsecret"):
        return "ACCESS"
    return "MODIFIES"


def _activity_records(record: dict[str, Any]) -> Iterator[Record]:
    if str(record.get("category", "")).lower().startswith("kube-audit"):
        raise _Bad("an AKS kube-audit record: read it with the k8s-audit adapter")
    operation = _value(record.get("operationname"))
    if operation is None:
        raise _Bad("no operationName")
    time = _event_time(record, "eventtimestamp", "time")
    tenant = as_str(record.get("tenantid"))
    resource_id = as_str(record.get("resourceid")) or as_str(record.get("resourceuri"))
    region = as_str(record.get("location")) or as_str(get_path(record, "properties", "resourceLocation"))
    if resource_id is None:
        subscription = as_str(record.get("subscriptionid"))
        if subscription is None:
            raise _Bad("no resourceId and no subscriptionId")
        resource_id = f"/subscriptions/{subscription}"
    target = resource_node(resource_id, tenant, region)
    target_node = Node(target.node.label, target.node.uid, target.node.props, time)
    yield target_node

    claims = _claims(record)
    caller = _caller(record, claims, tenant)
    address = parse_ip(record.get("calleripaddress")) or parse_ip(get_path(record, "httprequest", "clientIpAddress"))
    if address:
        yield ip_node(address, time)
    if caller is None:
        return  # anonymous / SAS / account-key access: the nodes are known, the actor is not
    caller = Node(caller.label, caller.uid, caller.props, time)
    yield caller
    rel = _relation(operation, target_node.label)
    if rel in ("START_VM", "STOP_VM", "RESTART_VM", "LATERAL_MOVEMENT") and target_node.label != "VM":
        rel = "MODIFIES"
    yield Edge(rel, caller.ref, target_node.ref, {}, time, operation)
    if address:
        yield Edge("AUTHENTICATES_FROM", caller.ref, Node("IP", uids.ip(address)).ref, {}, time, operation)

    # A managed identity acting for its resource: the resource assumed the identity.
    mirid = _first_claim(claims, ("xms_mirid",))
    if mirid and caller.label == "Role":
        holder = resource_node(mirid, tenant)
        if holder.node.label in PRINCIPAL_LABELS:
            yield Node(holder.node.label, holder.node.uid, holder.node.props, time)
            yield Edge("ASSUMES_ROLE", holder.node.ref, caller.ref, {}, time, "managedidentity:token")
    # A caller whose token comes from another tenant reached into this one.
    caller_tenant = _first_claim(claims, TENANT_CLAIMS)
    if caller_tenant and tenant and caller_tenant.lower() != tenant.lower():
        account = account_node(target.subscription) if target.subscription else tenant_node(tenant)
        yield Node(account.label, account.uid, account.props, time)
        yield Edge("CROSS_CLOUD_ACCESS", caller.ref, account.ref, {}, time, operation)


# ---- Entra ID sign-in and audit logs ------------------------------------------------------


def _signin_records(record: dict[str, Any]) -> Iterator[Record]:
    category = str(record.get("category", "")).lower()
    nested = record.get("properties")
    # Diagnostic records nest the Graph object under ``properties``; keys are matched lower-cased.
    payload = _lower_keys(nested) if isinstance(nested, Mapping) and category else record
    tenant = as_str(record.get("tenantid")) or as_str(payload.get("tenantid")) or as_str(payload.get("hometenantid"))
    if category in DIRECTORY_AUDIT_CATEGORIES or (not category and "activitydisplayname" in payload):
        yield from _directory_audit(record, payload, tenant)
        return
    time = _event_time({**record, **payload}, "createddatetime", "time")
    principal = _signin_principal(payload, category, tenant)
    if principal is None:
        raise _Bad("a sign-in without userPrincipalName, userId or servicePrincipalId")
    principal = Node(principal.label, principal.uid, principal.props, time)
    yield principal
    address = parse_ip(payload.get("ipaddress")) or parse_ip(record.get("calleripaddress"))
    if address is None:
        return
    error = payload.get("status", {}).get("errorCode") if isinstance(payload.get("status"), Mapping) else None
    if error is None:
        error = record.get("resulttype")
    failed = str(error).strip() not in ("0", "", "None") if error is not None else False
    app = (
        as_str(payload.get("appdisplayname"))
        or as_str(payload.get("serviceprincipalname"))
        or as_str(payload.get("resourcedisplayname"))
        or "unknown"
    )
    location = payload.get("location")
    country = as_str(location.get("countryOrRegion")) if isinstance(location, Mapping) else as_str(location)
    props = clean_props(
        failed=failed,
        error_code=int(error) if error is not None and failed and str(error).lstrip("-").isdigit() else None,
        risk=as_str(payload.get("risklevelduringsignin")),
        conditional_access=as_str(payload.get("conditionalaccessstatus")),
        resource=as_str(payload.get("resourcedisplayname")),
        country=country,
    )
    yield ip_node(address, time)
    action = f"signin:{app}" + (":failed" if failed else "")
    yield Edge("AUTHENTICATES_FROM", principal.ref, Node("IP", uids.ip(address)).ref, props, time, action)


def _signin_principal(payload: Mapping[str, Any], category: str, tenant: str | None) -> Node | None:
    props = clean_props(cloud=CLOUD, account=tenant.lower() if tenant else None)
    if category not in SERVICE_SIGNIN_CATEGORIES:
        upn = as_str(payload.get("userprincipalname"))
        if upn:
            return Node("User", uids.azure_user(upn), {"name": upn.lower(), **props})
        user_id = as_str(payload.get("userid"))
        if user_id:
            return Node("User", uids.azure_user(user_id), {"name": user_id.lower(), **props})
    object_id = as_str(payload.get("serviceprincipalid")) or as_str(payload.get("appid"))
    if object_id:
        name = as_str(payload.get("serviceprincipalname")) or as_str(payload.get("appdisplayname")) or object_id
        kind = "managed_identity" if category == "managedidentitysigninlogs" else "service_principal"
        return Node("Role", uids.azure_principal(object_id), {"name": name, "kind": kind, **props})
    return None


def _directory_audit(record: Mapping[str, Any], payload: Mapping[str, Any], tenant: str | None) -> Iterator[Record]:
    """Entra audit: the initiator MODIFIES its target users / service principals, or the tenant."""
    time = _event_time({**record, **payload}, "activitydatetime", "time")
    activity = as_str(payload.get("activitydisplayname")) or _value(record.get("operationname")) or "unknown"
    action = f"aad:{activity}"
    user = get_path(payload, "initiatedby", "user")
    app = get_path(payload, "initiatedby", "app")
    props = clean_props(cloud=CLOUD, account=tenant.lower() if tenant else None)
    actor: Node | None = None
    address: str | None = None
    if isinstance(user, Mapping) and as_str(user.get("userPrincipalName")):
        upn = str(user["userPrincipalName"]).strip()
        actor = Node("User", uids.azure_user(upn), {"name": upn.lower(), **props}, time)
        address = parse_ip(user.get("ipAddress"))
    elif isinstance(app, Mapping) and (as_str(app.get("servicePrincipalId")) or as_str(app.get("appId"))):
        object_id = as_str(app.get("servicePrincipalId")) or str(app.get("appId"))
        name = as_str(app.get("displayName")) or object_id
        actor = Node(
            "Role", uids.azure_principal(object_id), {"name": name, "kind": "service_principal", **props}, time
        )
    if actor is None:
        raise _Bad("a directory audit record without initiatedBy.user or initiatedBy.app")
    address = address or parse_ip(record.get("calleripaddress"))
    yield actor
    targets: list[Node] = []
    for target in payload.get("targetresources") or []:
        if not isinstance(target, Mapping):
            continue
        kind = str(target.get("type", "")).lower()
        target_upn = as_str(target.get("userPrincipalName"))
        target_id = as_str(target.get("id"))
        if kind == "user" and target_upn:
            targets.append(Node("User", uids.azure_user(target_upn), {"name": target_upn.lower(), **props}, time))
        elif kind in ("serviceprincipal", "application") and target_id:
            name = as_str(target.get("displayName")) or target_id
            targets.append(Node("Role", uids.azure_principal(target_id), {"name": name, "kind": kind, **props}, time))
    if not targets and tenant:
        targets.append(Node("CloudAccount", azure_tenant(tenant), tenant_node(tenant).props, time))
    for target_node in targets:
        yield target_node
        yield Edge("MODIFIES", actor.ref, target_node.ref, {}, time, action)
    if address:
        yield ip_node(address, time)
        yield Edge("AUTHENTICATES_FROM", actor.ref, Node("IP", uids.ip(address)).ref, {}, time, action)
