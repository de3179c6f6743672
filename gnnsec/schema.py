"""The master schema: the contract between ingest, Neo4j and the GNN.

Every label, relationship type and allowed ``(source label -> target label)`` pair lives here
and nowhere else.  The GNN takes its relation ids from :data:`RELATION_TYPES` order, so any
change to labels, types or their order must bump :data:`SCHEMA_VERSION`; checkpoints record the
version and refuse to load against another one.

This module imports nothing of ours, so every other part of gnnsec can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import product

SCHEMA_VERSION = 1
"""Bumped whenever labels, relationship types, their order or their allowed pairs change."""

NODE_LABELS: tuple[str, ...] = (
    "User",
    "VM",
    "IP",
    "Role",
    "CVE",
    "Container",
    "CloudAccount",
    "Subnet",
    "Bucket",
    "Function",
    "Cluster",
    "Pod",
    "Database",
    "LoadBalancer",
    "Gateway",
)
"""The 15 node labels, in the order the GNN numbers node types."""

COMMON_NODE_PROPERTIES: tuple[str, ...] = (
    "uid",
    "name",
    "cloud",
    "account",
    "region",
    "first_seen",
    "last_seen",
)
"""Properties every node may carry; ``uid`` is mandatory and unique per label."""

# Groups of labels used to state the allowed pairs compactly.
PRINCIPALS: frozenset[str] = frozenset(
    {"User", "Role", "VM", "Function", "Pod", "Container", "CloudAccount"}
)
"""Labels that can act: call APIs, assume roles, authenticate."""

RESOURCES: frozenset[str] = frozenset(NODE_LABELS) - {"IP", "CVE"}
"""Labels that can be the object of an API call (everything but IP and CVE)."""

WORKLOADS: frozenset[str] = frozenset({"VM", "Container", "Pod", "Function", "Database"})
"""Labels that run software, so can carry vulnerabilities and be exploited."""

NETWORK_ENDPOINTS: frozenset[str] = frozenset({"IP", "VM", "Pod", "Container"})
"""Labels that appear at either end of a network flow."""


class RelationCategory(StrEnum):
    """Why a relationship exists, which decides how the loader writes it."""

    INVENTORY = "inventory"  # a fact about configuration: one relationship, properties overwritten
    ACTIVITY = "activity"  # observed events: aggregated per time window with counts
    THREAT = "threat"  # derived or labelled attack steps; aggregated like activity


@dataclass(frozen=True, slots=True)
class RelationType:
    """One relationship type with the (source, target) label pairs it may connect."""

    name: str
    category: RelationCategory
    pairs: frozenset[tuple[str, str]]
    description: str

    @property
    def aggregated(self) -> bool:
        """Activity and threat relationships are time-windowed aggregates of events."""
        return self.category is not RelationCategory.INVENTORY

    def allows(self, source_label: str, target_label: str) -> bool:
        return (source_label, target_label) in self.pairs


def _pairs(sources: frozenset[str] | set[str], targets: frozenset[str] | set[str]) -> frozenset[tuple[str, str]]:
    return frozenset(product(sorted(sources), sorted(targets)))


_INV, _ACT, _THR = RelationCategory.INVENTORY, RelationCategory.ACTIVITY, RelationCategory.THREAT

RELATION_TYPES: tuple[RelationType, ...] = (
    # ---- inventory ----------------------------------------------------------------------
    RelationType(
        "CONTAINS",
        _INV,
        _pairs({"CloudAccount"}, RESOURCES)
        | _pairs({"Subnet"}, {"Subnet", "VM", "IP", "Database", "LoadBalancer", "Function", "Gateway", "Cluster"})
        | _pairs({"Cluster"}, {"Pod", "VM", "Container"})
        | _pairs({"Pod"}, {"Container"}),
        "Ownership and placement: account holds resources, VPC (a Subnet with kind=vpc) holds "
        "subnets, subnet holds hosts, cluster holds pods and nodes, pod holds containers.",
    ),
    RelationType(
        "RUNS_ON",
        _INV,
        frozenset({("Container", "VM"), ("Container", "Pod"), ("Pod", "VM"), ("Database", "VM"), ("Function", "VM")}),
        "A workload executes on a host.",
    ),
    RelationType(
        "DEPLOYED_ON",
        _INV,
        _pairs({"Pod", "VM", "Container", "Function"}, {"Cluster"}),
        "A workload is scheduled by an orchestrator (Kubernetes, ECS, EKS node group).",
    ),
    RelationType(
        "HAS_VULN",
        _INV,
        _pairs(WORKLOADS, {"CVE"}),
        "A scanner (Trivy, Grype) found this CVE in the workload or its image.",
    ),
    RelationType(
        "GRANTS_ACCESS",
        _INV,
        _pairs({"User", "Role"}, RESOURCES - {"User"}),
        "An IAM policy attached to the principal allows actions on the resource (actions in `actions`).",
    ),
    RelationType(
        "CAN_ASSUME",
        _INV,
        _pairs({"User", "Role", "VM", "Function", "Pod", "Container", "CloudAccount"}, {"Role"}),
        "A trust policy, instance profile, execution role or workload identity lets the source become the role.",
    ),
    RelationType(
        "HAS_IP",
        _INV,
        _pairs({"VM", "LoadBalancer", "Gateway", "Database", "Pod", "Container", "Function"}, {"IP"}),
        "A network interface of the resource holds the address.",
    ),
    RelationType(
        "ROUTES_TO",
        _INV,
        _pairs({"LoadBalancer", "Gateway"}, {"VM", "Container", "Pod", "Function", "IP", "LoadBalancer"})
        | _pairs({"Subnet"}, {"Gateway"}),
        "Traffic is forwarded from a load balancer or gateway to targets, or a subnet routes via a gateway.",
    ),
    RelationType(
        "TRIGGERS",
        _INV,
        _pairs({"Gateway", "Bucket", "Function"}, {"Function"}),
        "An event source invokes a function (API gateway route, bucket notification, chained function).",
    ),
    # ---- activity -----------------------------------------------------------------------
    RelationType(
        "ASSUMES_ROLE",
        _ACT,
        _pairs(PRINCIPALS, {"Role"}),
        "AssumeRole*, GetFederationToken, managed-identity or service-account impersonation events.",
    ),
    RelationType(
        "ACCESS",
        _ACT,
        _pairs(PRINCIPALS, RESOURCES),
        "Reads, lists, invocations and data events on a resource; account-level listing targets the account.",
    ),
    RelationType("START_VM", _ACT, _pairs(PRINCIPALS, {"VM"}), "RunInstances / StartInstances and equivalents."),
    RelationType("STOP_VM", _ACT, _pairs(PRINCIPALS, {"VM"}), "StopInstances / TerminateInstances and equivalents."),
    RelationType("RESTART_VM", _ACT, _pairs(PRINCIPALS, {"VM"}), "RebootInstances and equivalents."),
    RelationType(
        "MODIFIES",
        _ACT,
        _pairs(PRINCIPALS, RESOURCES),
        "Create*, Delete*, Put*, Update*, Attach* and other writes to a resource's configuration.",
    ),
    RelationType(
        "AUTHENTICATES_FROM",
        _ACT,
        _pairs(PRINCIPALS, {"IP"}),
        "The principal's API calls or sign-ins came from this source address.",
    ),
    RelationType(
        "CONNECTS_TO",
        _ACT,
        _pairs(NETWORK_ENDPOINTS, NETWORK_ENDPOINTS | {"Database", "LoadBalancer", "Gateway"}),
        "Network flows (VPC flow logs) between addresses or hosts.",
    ),
    RelationType(
        "CROSS_CLOUD_ACCESS",
        _ACT,
        _pairs(PRINCIPALS, {"CloudAccount", "Role"}),
        "A principal reached into another account, subscription or project (cross-account AssumeRole, federation).",
    ),
    # ---- threat -------------------------------------------------------------------------
    RelationType(
        "LATERAL_MOVEMENT",
        _THR,
        _pairs(PRINCIPALS | {"IP"}, {"VM", "Pod", "Container", "Database"}),
        "Remote access into a workload (SSM sessions, instance connect, kubectl exec, serial console).",
    ),
    RelationType(
        "EXPLOITS",
        _THR,
        _pairs({"IP", "User", "Role", "VM", "Pod", "Container"}, WORKLOADS | {"CVE"}),
        "Exploitation of a vulnerable workload, as reported by a detector or labelled data.",
    ),
)
"""The 20 relationship types; their order defines the GNN relation ids 0..19."""

RELATION_NAMES: tuple[str, ...] = tuple(r.name for r in RELATION_TYPES)
_BY_NAME: dict[str, RelationType] = {r.name: r for r in RELATION_TYPES}
_LABEL_IDS: dict[str, int] = {label: i for i, label in enumerate(NODE_LABELS)}
_RELATION_IDS: dict[str, int] = {name: i for i, name in enumerate(RELATION_NAMES)}

NUM_LABELS = len(NODE_LABELS)
NUM_RELATIONS = len(RELATION_TYPES)

INVENTORY_RELATIONS = tuple(r.name for r in RELATION_TYPES if r.category is _INV)
ACTIVITY_RELATIONS = tuple(r.name for r in RELATION_TYPES if r.category is _ACT)
THREAT_RELATIONS = tuple(r.name for r in RELATION_TYPES if r.category is _THR)
IDENTITY_RELATIONS = ("GRANTS_ACCESS", "CAN_ASSUME", "ASSUMES_ROLE", "AUTHENTICATES_FROM", "CROSS_CLOUD_ACCESS")
"""The identity subset used by the relation-subset ablation."""

SCORE_PROPERTIES: tuple[str, ...] = ("anomaly_score", "anomaly_rank", "anomalous", "scored_at")
"""Node properties written by ``gnnsec score``; indexed so hunts can sort on them."""


class SchemaError(ValueError):
    """Something does not fit the master schema (unknown label/type or disallowed pair)."""


def label_id(label: str) -> int:
    """The GNN's node-type id for ``label``."""
    try:
        return _LABEL_IDS[label]
    except KeyError as exc:
        raise SchemaError(f"unknown node label {label!r}; known: {', '.join(NODE_LABELS)}") from exc


def relation(name: str) -> RelationType:
    """The :class:`RelationType` called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError as exc:
        raise SchemaError(f"unknown relationship type {name!r}; known: {', '.join(RELATION_NAMES)}") from exc


def relation_id(name: str) -> int:
    """The GNN's relation id for ``name`` (0..19); inverse relations are ``id + NUM_RELATIONS``."""
    relation(name)
    return _RELATION_IDS[name]


def is_label(label: str) -> bool:
    return label in _LABEL_IDS


def is_relation(name: str) -> bool:
    return name in _BY_NAME


def validate_edge(source_label: str, rel_type: str, target_label: str) -> None:
    """Raise :class:`SchemaError` unless the schema allows ``(source)-[rel_type]->(target)``."""
    label_id(source_label)
    label_id(target_label)
    rel = relation(rel_type)
    if not rel.allows(source_label, target_label):
        raise SchemaError(
            f"the schema does not allow ({source_label})-[:{rel_type}]->({target_label}); "
            f"allowed sources for {rel_type}: {', '.join(sorted({s for s, _ in rel.pairs}))}"
        )


def schema_cypher() -> str:
    """The constraints and indexes of the schema, as the statements in ``cypher/schema.cypher``."""
    lines = [
        f"// gnnsec master schema, version {SCHEMA_VERSION}. Generated from gnnsec/schema.py, keep them in sync",
        "// (tests/test_schema.py fails when they differ). Every statement is idempotent.",
        "",
    ]
    for label in NODE_LABELS:
        lines.append(
            f"CREATE CONSTRAINT {label.lower()}_uid IF NOT EXISTS FOR (n:{label}) REQUIRE n.uid IS UNIQUE;"
        )
    lines.append("")
    for label in NODE_LABELS:
        lines.append(f"CREATE INDEX {label.lower()}_last_seen IF NOT EXISTS FOR (n:{label}) ON (n.last_seen);")
    lines.append("")
    for label in NODE_LABELS:
        lines.append(
            f"CREATE INDEX {label.lower()}_anomaly_score IF NOT EXISTS FOR (n:{label}) ON (n.anomaly_score);"
        )
    lines.append("")
    for rel in RELATION_NAMES:
        lines.append(
            f"CREATE INDEX {rel.lower()}_edge_anomaly IF NOT EXISTS FOR ()-[r:{rel}]-() ON (r.edge_anomaly);"
        )
    lines.append("")
    lines.extend(
        [
            "CREATE CONSTRAINT scoring_run_id IF NOT EXISTS FOR (r:ScoringRun) REQUIRE r.run_id IS UNIQUE;",
            "CREATE INDEX scoring_run_window IF NOT EXISTS FOR (r:ScoringRun) ON (r.window_start);",
            "CREATE CONSTRAINT ingested_batch_id IF NOT EXISTS FOR (b:IngestedBatch) REQUIRE b.batch_id IS UNIQUE;",
            "",
        ]
    )
    return "\n".join(lines)
