"""Builders for the raw records every source emits, shaped field by field like the real ones.

One :class:`RecordFactory` per hour holds that hour's RNG, so identifiers (request ids, event
ids, access keys of sessions) are reproducible.  :func:`cloudtrail_edges` is the reference
mapping from a CloudTrail record to schema relationships, used to write the label files; it
follows the same rules the CloudTrail adapter documents.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gnnsec.ingest import uids
from gnnsec.synth.estate import Instance, Person, Role

Record = dict[str, Any]

UA_CONSOLE = "AWS Internal"
UA_CLI = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1014-aws exe/x86_64.ubuntu.22 prompt/off command/{cmd}"
UA_BOTO = "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.79 md/arch#x86_64 lang/python#3.11.8"
UA_SDK_JAVA = "aws-sdk-java/2.25.16 Linux/5.10.210-201.852.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.2+13-LTS"
UA_TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0"

READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "Search", "Filter", "BatchGet", "Scan", "Query")
LATERAL_EVENTS = frozenset({"StartSession", "SendCommand", "SendSSHPublicKey", "SendSerialConsoleSSHPublicKey"})


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class Identity:
    """Who makes an AWS call: the ``userIdentity`` block and the schema uid it maps to."""

    block: dict[str, Any]
    uid: str
    account_id: str


@dataclass(slots=True)
class LabelRow:
    src_uid: str
    type: str
    dst_uid: str
    time: str
    campaign: str
    technique: str


@dataclass(slots=True)
class HourBatch:
    """Everything generated for one hour, grouped by the file it lands in."""

    cloudtrail: dict[tuple[str, str], list[Record]] = field(default_factory=dict)
    flows: dict[tuple[str, str], list[tuple[int, str]]] = field(default_factory=dict)
    azure_activity: list[Record] = field(default_factory=list)
    azure_signin: list[Record] = field(default_factory=list)
    gcp_audit: list[Record] = field(default_factory=list)
    k8s_audit: dict[str, list[Record]] = field(default_factory=dict)

    def add_trail(self, record: Record) -> None:
        key = (record["recipientAccountId"], record["awsRegion"])
        self.cloudtrail.setdefault(key, []).append(record)

    def add_flow(self, account: str, region: str, start: int, line: str) -> None:
        self.flows.setdefault((account, region), []).append((start, line))

    def count(self) -> int:
        return (
            sum(len(v) for v in self.cloudtrail.values())
            + sum(len(v) for v in self.flows.values())
            + len(self.azure_activity)
            + len(self.azure_signin)
            + len(self.gcp_audit)
            + sum(len(v) for v in self.k8s_audit.values())
        )


class RecordFactory:
    """Shapes records; draws every random identifier from ``rng``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # -- identifiers --------------------------------------------------------------------------

    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"

    def key_id(self, prefix: str) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        return prefix + "".join(alphabet[self.rng.getrandbits(5)] for _ in range(16))

    def request_id(self) -> str:
        return f"{self.rng.getrandbits(64):016X}"

    # -- identities ---------------------------------------------------------------------------

    @staticmethod
    def iam_user(person: Person, console_since: datetime | None = None, key: str | None = None) -> Identity:
        block: dict[str, Any] = {
            "type": "IAMUser",
            "principalId": person.user_id,
            "arn": person.arn,
            "accountId": person.account_id,
            "accessKeyId": key or person.access_key,
            "userName": person.login,
        }
        if console_since is not None:
            block["sessionContext"] = {
                "sessionIssuer": {},
                "webIdFederationData": {},
                "attributes": {"creationDate": iso(console_since), "mfaAuthenticated": "true"},
            }
        return Identity(block, person.uid, person.account_id)

    def role_session(self, role: Role, session: str, since: datetime, key: str, region: str = "",
                     mfa: bool = False) -> Identity:
        """An assumed-role session; a session named ``i-…`` is an EC2 instance-profile session."""
        block: dict[str, Any] = {
            "type": "AssumedRole",
            "principalId": f"{role.role_id}:{session}",
            "arn": f"arn:aws:sts::{role.account_id}:assumed-role/{role.name}/{session}",
            "accountId": role.account_id,
            "accessKeyId": key,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role.role_id,
                    "arn": role.arn,
                    "accountId": role.account_id,
                    "userName": role.name,
                },
                "webIdFederationData": {},
                "attributes": {"creationDate": iso(since), "mfaAuthenticated": "true" if mfa else "false"},
            },
        }
        if session.startswith("i-"):
            block["sessionContext"]["ec2RoleDelivery"] = "2.0"
            return Identity(block, uids.aws_ec2_instance(region, role.account_id, session), role.account_id)
        return Identity(block, role.uid, role.account_id)

    def instance_session(self, instance: Instance, since: datetime) -> Identity:
        assert instance.role is not None
        key = "ASIA" + instance.instance_id[2:18].upper()
        return self.role_session(instance.role, instance.instance_id, since, key, region=instance.region)

    @staticmethod
    def aws_account(account_id: str, principal_id: str) -> Identity:
        """How a role's account sees a principal of another account calling AssumeRole."""
        block = {"type": "AWSAccount", "principalId": principal_id, "accountId": account_id}
        return Identity(block, uids.aws_account(account_id), account_id)

    # -- CloudTrail ---------------------------------------------------------------------------

    def cloudtrail(
        self,
        t: datetime,
        identity: Identity,
        region: str,
        source: str,
        name: str,
        ip: str,
        agent: str,
        request: dict[str, Any] | None,
        response: dict[str, Any] | None = None,
        recipient: str | None = None,
        resources: list[dict[str, str]] | None = None,
        data_event: bool = False,
        shared_event_id: str | None = None,
    ) -> Record:
        read_only = name.startswith(READ_PREFIXES) or name in ("GetCallerIdentity",)
        record: Record = {
            "eventVersion": "1.09" if data_event else "1.08",
            "userIdentity": identity.block,
            "eventTime": iso(t),
            "eventSource": f"{source}.amazonaws.com",
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip,
            "userAgent": agent,
            "requestParameters": request,
            "responseElements": response,
            "requestID": self.request_id() if source == "s3" else self.uuid(),
            "eventID": self.uuid(),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": not data_event,
            "recipientAccountId": recipient or identity.account_id,
            "eventCategory": "Data" if data_event else "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": f"{source}.{region}.amazonaws.com" if source != "s3"
                else (request or {}).get("Host", "s3.amazonaws.com"),
            },
        }
        if resources is not None:
            record["resources"] = resources
        if shared_event_id is not None:
            record["sharedEventID"] = shared_event_id
        if identity.block["type"] == "AWSAccount":
            del record["tlsDetails"]
        return record

    def s3_object(self, t: datetime, identity: Identity, bucket: str, bucket_account: str, region: str, key: str,
                  ip: str, agent: str, write: bool = False, size: int = 0) -> Record:
        request = {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com", "key": key}
        if write:
            request["x-amz-server-side-encryption"] = "AES256"
        record = self.cloudtrail(
            t, identity, region, "s3", "PutObject" if write else "GetObject", ip, agent, request,
            {"x-amz-server-side-encryption": "AES256"} if write else None,
            recipient=bucket_account,
            resources=[
                {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                {"accountId": bucket_account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
            ],
            data_event=True,
        )
        record["additionalEventData"] = {
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": size if write else 0,
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": f"{self.rng.getrandbits(160):040x}",
            "bytesTransferredOut": 0 if write else size,
        }
        return record

    def assume_role(self, t: datetime, caller: Identity, role: Role, session: str, ip: str, agent: str,
                    region: str = "us-east-1", external_id: str | None = None) -> tuple[list[Record], str]:
        """The AssumeRole records (caller's trail, and the role's trail when cross-account) and the new key."""
        new_key = self.key_id("ASIA")
        request: dict[str, Any] = {"roleArn": role.arn, "roleSessionName": session, "durationSeconds": 3600}
        if external_id:
            request["externalId"] = external_id
        response = {
            "credentials": {
                "accessKeyId": new_key,
                "sessionToken": "IQoJb3JpZ2luX2VjE" + f"{self.rng.getrandbits(256):064x}",
                "expiration": (t + timedelta(hours=1)).strftime("%b %-d, %Y, %-I:%M:%S %p"),
            },
            "assumedRoleUser": {
                "assumedRoleId": f"{role.role_id}:{session}",
                "arn": f"arn:aws:sts::{role.account_id}:assumed-role/{role.name}/{session}",
            },
        }
        resources = [{"accountId": role.account_id, "type": "AWS::IAM::Role", "ARN": role.arn}]
        shared = self.uuid() if caller.account_id != role.account_id else None
        records = []
        if caller.block["type"] != "AWSAccount":
            records.append(self.cloudtrail(t, caller, region, "sts", "AssumeRole", ip, agent, request, response,
                                           resources=resources, shared_event_id=shared))
        if caller.account_id != role.account_id:
            principal = caller.block.get("principalId", "")
            seen_as = self.aws_account(caller.account_id, str(principal).split(":")[0])
            records.append(self.cloudtrail(t, seen_as, region, "sts", "AssumeRole", ip, agent, request, response,
                                           recipient=role.account_id, resources=resources,
                                           shared_event_id=shared or self.uuid()))
        return records, new_key


# --- the reference mapping used for labels --------------------------------------------------------


def _write_type(name: str) -> str:
    if name in ("RunInstances", "StartInstances"):
        return "START_VM"
    if name in ("StopInstances", "TerminateInstances"):
        return "STOP_VM"
    if name == "RebootInstances":
        return "RESTART_VM"
    if name in LATERAL_EVENTS:
        return "LATERAL_MOVEMENT"
    if name.startswith(("AssumeRole", "GetFederationToken")):
        return "ASSUMES_ROLE"
    if name.startswith(READ_PREFIXES) or name == "GetCallerIdentity":
        return "ACCESS"
    return "MODIFIES"


def _targets(record: Record) -> list[str]:
    """The resources a CloudTrail record acts on, as schema uids (empty when none resolves)."""
    req = record.get("requestParameters") or {}
    resp = record.get("responseElements") or {}
    name = record["eventName"]
    region = record["awsRegion"]
    account = record["recipientAccountId"]
    if name.startswith("AssumeRole") and "roleArn" in req:
        return [req["roleArn"]]
    if name == "RunInstances":
        items = (resp.get("instancesSet") or {}).get("items", [])
        return [uids.aws_ec2_instance(region, account, i["instanceId"]) for i in items]
    if "instancesSet" in req:
        items = (req["instancesSet"] or {}).get("items", [])
        return [uids.aws_ec2_instance(region, account, i["instanceId"]) for i in items if "instanceId" in i]
    if name == "SendCommand":
        return [uids.aws_ec2_instance(region, account, i) for i in req.get("instanceIds", [])]
    if name == "StartSession":
        return [uids.aws_ec2_instance(region, account, req["target"])]
    if "bucketName" in req:
        return [uids.aws_bucket(req["bucketName"])]
    if "functionName" in req:
        fn = str(req["functionName"])
        return [fn if fn.startswith("arn:") else uids.aws_lambda(region, account, fn)]
    if "dBInstanceIdentifier" in req:
        return [uids.aws_rds(region, account, req["dBInstanceIdentifier"])]
    if "restApiId" in req:
        return [f"arn:aws:apigateway:{region}::/restapis/{req['restApiId']}"]
    if "roleName" in req:
        return [uids.aws_iam_role(account, req["roleName"])]
    if "userName" in req:
        return [uids.aws_iam_user(account, req["userName"])]
    return []


def principal_uid(record: Record) -> str:
    identity = record["userIdentity"]
    kind = identity["type"]
    if kind == "IAMUser":
        return str(identity["arn"])
    if kind == "AssumedRole":
        issuer = identity["sessionContext"]["sessionIssuer"]
        session = str(identity["arn"]).rsplit("/", 1)[1]
        if session.startswith("i-"):
            return uids.aws_ec2_instance(record["awsRegion"], issuer["accountId"], session)
        return str(issuer["arn"])
    return uids.aws_account(str(identity["accountId"]))


def cloudtrail_edges(record: Record) -> list[tuple[str, str, str]]:
    """``(src_uid, type, dst_uid)`` for one CloudTrail record, without AUTHENTICATES_FROM."""
    src = principal_uid(record)
    kind = _write_type(record["eventName"])
    targets = _targets(record) or [uids.aws_account(record["recipientAccountId"])]
    edges = [(src, kind, dst) for dst in targets]
    if kind == "ASSUMES_ROLE":
        role_account = targets[0].split(":")[4]
        if role_account != record["userIdentity"].get("accountId"):
            edges.append((src, "CROSS_CLOUD_ACCESS", uids.aws_account(role_account)))
    return edges


# --- other sources -------------------------------------------------------------------------------


def flow_line(account: str, eni: str, src: str, dst: str, sport: int, dport: int, packets: int, size: int,
              start: int, action: str = "ACCEPT", protocol: int = 6) -> str:
    """One VPC flow log record, default (version 2) format."""
    return f"2 {account} {eni} {src} {dst} {sport} {dport} {protocol} {packets} {size} {start} {start + 60} {action} OK"


FLOW_HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
)


def gcp_entry(factory: RecordFactory, t: datetime, project: str, principal: str, method: str, service: str,
              resource_name: str, resource_type: str, labels: dict[str, str], ip: str, agent: str,
              permission: str, log: str = "activity", delegation: list[dict[str, Any]] | None = None,
              principal_subject: str | None = None) -> Record:
    """A Cloud Audit Logs LogEntry as exported by a log sink (JSON, ``protoPayload`` AuditLog)."""
    auth: dict[str, Any] = {}
    if principal:
        auth["principalEmail"] = principal
    if principal_subject:
        auth["principalSubject"] = principal_subject
    if delegation:
        auth["serviceAccountDelegationInfo"] = delegation
    ts = iso_micro(t)
    return {
        "insertId": f"{factory.rng.getrandbits(48):012x}",
        "logName": f"projects/{project}/logs/cloudaudit.googleapis.com%2F{log}",
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": auth,
            "authorizationInfo": [{"granted": True, "permission": permission, "resource": resource_name,
                                   "resourceAttributes": {}}],
            "methodName": method,
            "requestMetadata": {
                "callerIp": ip,
                "callerSuppliedUserAgent": agent,
                "destinationAttributes": {},
                "requestAttributes": {"auth": {}, "time": ts},
            },
            "resourceName": resource_name,
            "serviceName": service,
            "status": {},
        },
        "receiveTimestamp": iso_micro(t + timedelta(milliseconds=420)),
        "resource": {"labels": {"project_id": project, **labels}, "type": resource_type},
        "severity": "NOTICE" if log == "activity" else "INFO",
        "timestamp": ts,
    }


def k8s_event(factory: RecordFactory, t: datetime, user: str, groups: list[str], verb: str, resource: str,
              namespace: str | None, name: str | None, ip: str, agent: str, subresource: str | None = None,
              code: int = 200) -> Record:
    """A Kubernetes audit.k8s.io/v1 Event at Metadata level, stage ResponseComplete."""
    path = "/api/v1"
    if namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{resource}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    # Optional fields are set one by one in every record builder (here and in gcp_audit): each format
    # names and nests them differently, so a shared helper would only move the if-chain.
    ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    if namespace:
        ref["namespace"] = namespace
    if name:
        ref["name"] = name
    if subresource:
        ref["subresource"] = subresource
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": factory.uuid(),
        "stage": "ResponseComplete",
        "requestURI": path,
        "verb": verb,
        "user": {"username": user, "groups": groups},
        "sourceIPs": [ip],
        "userAgent": agent,
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": iso_micro(t),
        "stageTimestamp": iso_micro(t + timedelta(milliseconds=12)),
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }
