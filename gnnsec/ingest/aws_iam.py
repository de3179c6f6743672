"""``aws iam get-account-authorization-details`` → User, Role, CloudAccount, CAN_ASSUME, GRANTS_ACCESS.

Who may become whom (trust policies) and who may touch what (identity policies) is the static
half of an attack path; CloudTrail gives the dynamic half. Effective permissions of a user are
its inline and attached policies plus those of its groups (groups are not a schema label, so
they are folded into their members and recorded as the ``groups`` property).

Limits, by design: ``Deny`` statements, permission boundaries, SCPs and conditions are not
evaluated (an edge means "some Allow names this resource", with ``conditional`` set when the
statement has a Condition). ``Resource: "*"`` never fans out to every asset: it sets
``is_admin`` (for ``*``/``*:*`` actions) and ``full_access_services`` (for ``svc:*``) on the
principal instead. Wildcard resource ARNs (``arn:aws:s3:::logs-*``) only match assets this
adapter knows: the roles in the same file, plus what the caller passes as ``known_resources``
(the inventory adapter does so when it reads an authorization-details file in its directory).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from gnnsec.ingest import uids
from gnnsec.ingest.aws_common import (
    CLOUD,
    account_node,
    account_ref,
    as_list,
    clean_props,
    is_account_id,
    parse_arn,
    policy_statements,
    resolve_arn,
    stub_node,
)
from gnnsec.ingest.base import AdapterError, BadRecord, Edge, Node, NodeRef, Record, head
from gnnsec.ingest.jsonio import iter_json_records, parse_time
from gnnsec.ingest.validation import safe_excerpt

DETAIL_KEYS = ("UserDetailList", "RoleDetailList", "GroupDetailList")
ADMIN_POLICY_ARNS = frozenset({"arn:aws:iam::aws:policy/AdministratorAccess"})
GRANTABLE_LABELS = frozenset({"Role", "VM", "Bucket", "Function", "Database", "Cluster", "LoadBalancer", "Gateway",
                              "Subnet", "CloudAccount"})
"""Labels a GRANTS_ACCESS edge may point at (the schema forbids User targets)."""


@dataclass(slots=True)
class _Grant:
    actions: set[str] = field(default_factory=set)
    policies: set[str] = field(default_factory=set)
    conditional: bool = False


@dataclass(slots=True)
class _Permissions:
    """What the Allow statements of one principal add up to."""

    is_admin: bool = False
    full_access_services: set[str] = field(default_factory=set)
    grants: dict[NodeRef, _Grant] = field(default_factory=dict)


class AwsIamAdapter:
    """Maps an authorization-details export onto users, roles, trust and access edges."""

    name: ClassVar[str] = "aws-iam"
    description: ClassVar[str] = "aws iam get-account-authorization-details JSON (users, roles, trust, policies)"

    def __init__(self, known_resources: Mapping[str, str] | None = None) -> None:
        """``known_resources`` maps uid → label of assets seen elsewhere, for wildcard resource ARNs."""
        self.known_resources: dict[str, str] = dict(known_resources or {})

    def sniff(self, path: Path) -> bool:
        if path.is_dir():
            return False
        if path.name.startswith("iam-get-account-authorization-details"):
            return True
        text = head(path, 1 << 16).lstrip()
        return text.startswith("{") and any(f'"{key}"' in text for key in DETAIL_KEYS)

    def read(self, path: Path) -> Iterator[Record]:
        document: dict[str, Any] | None = None
        # Not map_json_records: the file is one document, so a bad item fails it and only the last object maps.
        for item in iter_json_records(path, envelope_keys=()):
            if isinstance(item, BadRecord):
                raise AdapterError(path, f"{item.where}: {item.reason}")
            document = item[1]
        if document is None:
            return
        if not any(isinstance(document.get(key), list) for key in DETAIL_KEYS):
            raise AdapterError(path, f"not an authorization-details export: none of {', '.join(DETAIL_KEYS)}")
        yield from self.map_document(document)

    # ---- mapping --------------------------------------------------------------------------

    def map_document(self, document: Mapping[str, Any]) -> Iterator[Record]:
        """All records of one authorization-details document."""
        account = _file_account(document)
        users = _entries(document, "UserDetailList")
        roles = _entries(document, "RoleDetailList")
        groups = {g.get("GroupName"): g for _, g in _entries(document, "GroupDetailList") if g.get("GroupName")}
        policies = _default_policy_documents(document)
        known = dict(self.known_resources)
        role_refs: dict[str, NodeRef] = {}
        for _, role in roles:
            ref = _principal_ref("Role", role, account)
            if ref is not None:
                role_refs[ref.uid] = ref
                known[ref.uid] = "Role"
        matcher = _ResourceMatcher(known)

        # Assets the caller knows are emitted by the caller: no stub nodes that would hide their properties.
        emitted: set[NodeRef] = {NodeRef(label, uid) for uid, label in self.known_resources.items()}
        if account and account_ref(account) not in emitted:
            yield account_node(account)
            emitted.add(account_ref(account))

        def user_facts(user: dict[str, Any], ref: NodeRef, own_account: str) -> _Facts:
            member_of = [g for g in as_list(user.get("GroupList")) if isinstance(g, str)]
            sources: list[tuple[str, Any]] = []
            sources += _inline(user.get("UserPolicyList"))
            sources += _attached(user.get("AttachedManagedPolicies"), policies)
            for group_name in member_of:
                group = groups.get(group_name, {})
                sources += _inline(group.get("GroupPolicyList"))
                sources += _attached(group.get("AttachedManagedPolicies"), policies)
            perms = _evaluate(sources, matcher, own_account)
            props = {
                "name": user.get("UserName") or ref.uid.rsplit("/", 1)[-1],
                "cloud": CLOUD,
                "account": own_account,
                "user_id": user.get("UserId"),
                "path": user.get("Path") or "/",
                "created": _time_or_none(user.get("CreateDate")),
                "groups": sorted(member_of),
                "attached_policies": _attached_names(user, member_of, groups),
                "is_admin": perms.is_admin,
                "full_access_services": perms.full_access_services,
                "permissions_boundary": (user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            }
            return props, perms, ()

        def role_facts(role: dict[str, Any], ref: NodeRef, own_account: str) -> _Facts:
            sources = _inline(role.get("RolePolicyList")) + _attached(role.get("AttachedManagedPolicies"), policies)
            perms = _evaluate(sources, matcher, own_account)
            trust = _trust(role.get("AssumeRolePolicyDocument"), own_account)
            profiles = [p for p in as_list(role.get("InstanceProfileList")) if isinstance(p, dict)]
            path = role.get("Path") or "/"
            last_used = role.get("RoleLastUsed") or {}
            props = {
                "name": role.get("RoleName") or ref.uid.rsplit("/", 1)[-1],
                "cloud": CLOUD,
                "account": own_account,
                "role_id": role.get("RoleId"),
                "path": path,
                "created": _time_or_none(role.get("CreateDate")),
                "last_used": _time_or_none(last_used.get("LastUsedDate") if isinstance(last_used, dict) else None),
                "attached_policies": _policy_names(role.get("AttachedManagedPolicies")),
                "is_admin": perms.is_admin,
                "full_access_services": perms.full_access_services,
                "trusted_principals": sorted(trust.principals),
                "trusted_services": sorted(trust.services),
                "trusted_federated": sorted(trust.federated),
                "trusts_external_account": trust.external,
                "trusts_any_principal": trust.anyone,
                "is_service_role": bool(trust.services) or path.startswith(("/aws-service-role/", "/service-role/")),
                "instance_profiles": sorted(str(p["Arn"]) for p in profiles if isinstance(p.get("Arn"), str)),
                "instance_profile_names": sorted(
                    str(p["InstanceProfileName"]) for p in profiles if isinstance(p.get("InstanceProfileName"), str)
                ),
                "max_session_duration": role.get("MaxSessionDuration"),
            }
            return props, perms, _trust_edges(ref, trust, emitted)

        yield from _principal_records("User", users, account, emitted, user_facts)
        yield from _principal_records("Role", roles, account, emitted, role_facts)


_Facts = tuple[dict[str, Any], _Permissions, Iterable[Record]]
"""What a principal's entry says: its props, its permissions and the edges it adds besides CONTAINS and grants."""


def _principal_records(
    label: str,
    entries: list[tuple[str, dict[str, Any]]],
    file_account: str,
    emitted: set[NodeRef],
    facts: Callable[[dict[str, Any], NodeRef, str], _Facts],
) -> Iterator[Record]:
    """Users and roles alike: the node, its account's CONTAINS, the edges of ``facts``, then its grants;
    an entry without a name or ARN is a bad record."""
    for where, entry in entries:
        ref = _principal_ref(label, entry, file_account)
        if ref is None:
            yield BadRecord(where, f"{label.lower()} without {label}Name/Arn", safe_excerpt(entry, 200))
            continue
        own_account = _account_of(ref, file_account)
        props, perms, edges = facts(entry, ref, own_account)
        yield Node(label, ref.uid, clean_props(props))
        emitted.add(ref)
        if own_account:
            yield Edge("CONTAINS", account_ref(own_account), ref)
        yield from edges  # lazy: they see the node emitted
        yield from _grant_edges(ref, perms, emitted)


def _trust_edges(role: NodeRef, trust: _Trust, emitted: set[NodeRef]) -> Iterator[Record]:
    """CAN_ASSUME from each principal the trust policy lets in, stubbed (with its account) when not emitted yet."""
    for source, conditional in sorted(trust.can_assume.items(), key=lambda kv: (kv[0].label, kv[0].uid)):
        if source not in emitted:
            yield from _stub_with_account(source, emitted)
        yield Edge("CAN_ASSUME", source, role, {"conditional": conditional})


# ---- helpers ------------------------------------------------------------------------------


def _entries(document: Mapping[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
    items = document.get(key)
    if not isinstance(items, list):
        return []
    return [(f"{key}[{i}]", item) for i, item in enumerate(items) if isinstance(item, dict)]


def _file_account(document: Mapping[str, Any]) -> str:
    """The account most entity ARNs in the file name (some exports write ``aws`` for users)."""
    counts: Counter[str] = Counter()
    for key in (*DETAIL_KEYS, "Policies"):
        for _, entry in _entries(document, key):
            parsed = parse_arn(entry.get("Arn"))
            if parsed is not None and is_account_id(parsed.account):
                counts[parsed.account] += 1
    return counts.most_common(1)[0][0] if counts else ""


def _principal_ref(label: str, entry: Mapping[str, Any], file_account: str) -> NodeRef | None:
    """User/Role uid from its name and path, in the ARN's account (or the file's when the ARN has none)."""
    name = entry.get("UserName" if label == "User" else "RoleName")
    parsed = parse_arn(entry.get("Arn"))
    account = parsed.account if parsed is not None and is_account_id(parsed.account) else file_account
    if not isinstance(name, str) or not name or not account:
        return None
    path = entry.get("Path") or "/"
    make = uids.aws_iam_user if label == "User" else uids.aws_iam_role
    return NodeRef(label, make(account, name, path))


def _account_of(ref: NodeRef, fallback: str) -> str:
    parsed = parse_arn(ref.uid)
    return parsed.account if parsed is not None and is_account_id(parsed.account) else fallback


def _time_or_none(value: Any) -> Any:
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None


def _default_policy_documents(document: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """Managed policy ARN → (name, default version document)."""
    out: dict[str, tuple[str, Any]] = {}
    for _, policy in _entries(document, "Policies"):
        arn, default = policy.get("Arn"), policy.get("DefaultVersionId")
        for version in as_list(policy.get("PolicyVersionList")):
            if isinstance(version, dict) and (version.get("VersionId") == default or version.get("IsDefaultVersion")):
                out[str(arn)] = (str(policy.get("PolicyName") or arn), version.get("Document"))
                break
    return out


def _inline(policy_list: Any) -> list[tuple[str, Any]]:
    return [
        (str(p.get("PolicyName")), p.get("PolicyDocument")) for p in as_list(policy_list) if isinstance(p, dict)
    ]


def _attached(attached: Any, policies: Mapping[str, tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Attached managed policies resolved to their default document; unknown ones keep only their ARN."""
    out: list[tuple[str, Any]] = []
    for item in as_list(attached):
        if not isinstance(item, dict):
            continue
        arn = str(item.get("PolicyArn"))
        name, doc = policies.get(arn, (str(item.get("PolicyName") or arn), None))
        if doc is None and arn in ADMIN_POLICY_ARNS:
            doc = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        out.append((name, doc))
    return out


def _attached_names(user: Mapping[str, Any], member_of: list[str], groups: Mapping[Any, Any]) -> list[str]:
    names = set(_policy_names(user.get("AttachedManagedPolicies")))
    for group_name in member_of:
        names.update(_policy_names(groups.get(group_name, {}).get("AttachedManagedPolicies")))
    return sorted(names)


def _policy_names(attached: Any) -> list[str]:
    return sorted(str(p.get("PolicyName")) for p in as_list(attached) if isinstance(p, dict))


class _ResourceMatcher:
    """Resolves a policy ``Resource`` entry to schema nodes: concrete ARNs directly, wildcards against known assets."""

    def __init__(self, known: Mapping[str, str]) -> None:
        self.known = known
        self._cache: dict[str, list[NodeRef]] = {}

    def match(self, pattern: str, account: str) -> list[NodeRef]:
        cached = self._cache.get(pattern)
        if cached is None:
            cached = self._cache[pattern] = self._match(pattern, account)
        return cached

    def _match(self, pattern: str, account: str) -> list[NodeRef]:
        if pattern == "*" or "${" in pattern:
            return []
        if "*" not in pattern and "?" not in pattern:
            ref = resolve_arn(pattern)
            return [ref] if ref is not None and ref.label in GRANTABLE_LABELS else []
        parsed = parse_arn(pattern)
        if parsed is None:
            return []
        # An S3 object pattern (bucket/prefix*) grants on the bucket: match the bucket part.
        if parsed.service == "s3":
            bucket = parsed.resource.split("/", 1)[0]
            pattern = f"arn:aws:s3:::{bucket}"
            if "*" not in bucket and "?" not in bucket:
                return [NodeRef("Bucket", uids.aws_bucket(bucket))] if bucket else []
        regex = re.compile("^" + ".*".join(".".join(map(re.escape, p.split("?"))) for p in pattern.split("*")) + "$")
        refs = []
        for uid, label in self.known.items():
            if label in GRANTABLE_LABELS and regex.match(uid):
                refs.append(NodeRef(label, uid))
        return sorted(refs, key=lambda r: (r.label, r.uid))


def _evaluate(sources: list[tuple[str, Any]], matcher: _ResourceMatcher, account: str) -> _Permissions:
    """Fold the Allow statements of all policies of one principal into admin flags and grants."""
    perms = _Permissions()
    for policy_name, document in sources:
        for statement in policy_statements(document):
            if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotResource" in statement:
                continue
            actions = [a for a in as_list(statement.get("Action")) if isinstance(a, str)]
            resources = [r for r in as_list(statement.get("Resource")) if isinstance(r, str)]
            conditional = bool(statement.get("Condition"))
            if "*" in resources and not conditional:
                for action in actions:
                    if action in ("*", "*:*"):
                        perms.is_admin = True
                    elif action.endswith(":*"):
                        perms.full_access_services.add(action[:-2].lower())
            for resource in resources:
                for ref in matcher.match(resource, account):
                    grant = perms.grants.setdefault(ref, _Grant())
                    grant.actions.update(actions)
                    grant.policies.add(policy_name)
                    grant.conditional = grant.conditional or conditional
    return perms


def _grant_edges(principal: NodeRef, perms: _Permissions, emitted: set[NodeRef]) -> Iterator[Record]:
    for target in sorted(perms.grants, key=lambda r: (r.label, r.uid)):
        grant = perms.grants[target]
        if target not in emitted:
            yield from _stub_with_account(target, emitted)
        yield Edge(
            "GRANTS_ACCESS",
            principal,
            target,
            {"actions": sorted(grant.actions), "policies": sorted(grant.policies), "conditional": grant.conditional},
        )


def _stub_with_account(ref: NodeRef, emitted: set[NodeRef]) -> Iterator[Record]:
    """A node known only from a policy or trust document, and its account when the ARN names one."""
    emitted.add(ref)
    if ref.label == "CloudAccount":
        yield account_node(ref.uid.rsplit(":", 1)[-1])
        return
    node = stub_node(ref)
    yield node
    account = node.props.get("account")
    if isinstance(account, str) and is_account_id(account):
        parent = account_ref(account)
        if parent not in emitted:
            emitted.add(parent)
            yield account_node(account)
        yield Edge("CONTAINS", parent, ref)


@dataclass(slots=True)
class _Trust:
    principals: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    federated: set[str] = field(default_factory=set)
    external: bool = False
    anyone: bool = False
    can_assume: dict[NodeRef, bool] = field(default_factory=dict)


def _trust(document: Any, role_account: str) -> _Trust:
    """Who a role's trust policy lets in: AWS principals become CAN_ASSUME sources, the rest are recorded."""
    trust = _Trust()
    for statement in policy_statements(document):
        if statement.get("Effect") != "Allow":
            continue
        conditional = bool(statement.get("Condition"))
        principal = statement.get("Principal")
        if principal == "*":
            principal = {"AWS": "*"}
        if not isinstance(principal, dict):
            continue
        for service in as_list(principal.get("Service")):
            if isinstance(service, str):
                trust.services.add(service)
                trust.principals.add(service)
        for federated in as_list(principal.get("Federated")):
            if isinstance(federated, str):
                trust.federated.add(federated)
                trust.principals.add(federated)
        for aws in as_list(principal.get("AWS")):
            if not isinstance(aws, str):
                continue
            trust.principals.add(aws)
            if aws == "*":
                trust.anyone = trust.external = True
                continue
            source = _trusted_ref(aws)
            if source is None:
                continue
            source_account = _ref_account(source)
            if source_account and source_account != role_account:
                trust.external = True
            trust.can_assume[source] = trust.can_assume.get(source, False) or conditional
    return trust


def _ref_account(ref: NodeRef) -> str:
    if ref.label == "CloudAccount":
        return ref.uid.rsplit(":", 1)[-1]
    parsed = parse_arn(ref.uid)
    return parsed.account if parsed is not None else ""


def _trusted_ref(principal: str) -> NodeRef | None:
    """An AWS trust principal: account id or root → CloudAccount; user/role ARN → User/Role."""
    if is_account_id(principal):
        return account_ref(principal)
    ref = resolve_arn(principal)
    if ref is not None and ref.label in ("User", "Role", "CloudAccount"):
        return ref
    parsed = parse_arn(principal)
    if parsed is not None and parsed.service == "sts" and parsed.resource.startswith("assumed-role/"):
        name = parsed.resource[13:].split("/", 1)[0]
        return NodeRef("Role", uids.aws_iam_role(parsed.account, name)) if name else None
    return None


def role_by_instance_profile(document: Mapping[str, Any]) -> dict[str, str]:
    """Instance-profile ARN → role uid, as the inventory adapter needs to join VMs to roles."""
    account = _file_account(document)
    out: dict[str, str] = {}
    for _, role in _entries(document, "RoleDetailList"):
        ref = _principal_ref("Role", role, account)
        if ref is None:
            continue
        for profile in as_list(role.get("InstanceProfileList")):
            if isinstance(profile, dict) and isinstance(profile.get("Arn"), str):
                out[profile["Arn"]] = ref.uid
    return out
