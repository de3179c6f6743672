"""A week of a busy multi-region AWS account's CloudTrail, laid out as AWS delivers it (``benchmarks/ingest.py
--layout cloudtrail-5min``).

A multi-region trail writes one gzipped ``{"Records": [...]}`` file per region per 5 minutes (none when a
region had no event) under
``AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/<account>_CloudTrail_<region>_<yyyymmddTHHMMZ>_<16
random>.json.gz``, the time being the delivery, the end of the 5 minutes.  That is the shape that decides
ingest cost at scale: tens of thousands of small files a week, most of them from regions nobody uses.

The model, so the numbers mean something:

* 17 default regions.  Two home regions carry the account's own work (``us-east-1`` about three quarters,
  ``eu-west-1`` the rest): a background of Lambda functions, ECS tasks, an EC2 fleet, AWS services and
  a monitoring vendor around the clock, plus people (SSO roles, the console, the CLI) and CI in local
  business hours on weekdays, and a nightly batch.  The other 15 regions are nearly idle: AWS Config,
  service-linked roles, the vendor's and a security scanner's ``Describe*`` sweeps (the scanner's on the
  hour) and CloudTrail's own KMS calls, about :data:`IDLE_PER_FILE` events per file.
* ``events`` is the whole budget (exactly that many records).  Idle regions take their handful per file,
  capped at :data:`IDLE_CAP` of the budget; the home regions get the rest, shaped by hour of day.
  Counts per (region, 5 minutes) are one multinomial draw, so files vary like Poisson counts.
* Records are shaped like real ones (``/work/shared/data/aws/cloudtrail``): eventVersion 1.08-1.10,
  userIdentity AssumedRole / IAMUser / AWSService / AWSAccount / WebIdentityUser, service-linked and SSO
  role paths, instance-profile sessions named by instance id, sparse requestParameters, S3 and DynamoDB
  data events with ``resources``, an errorCode on about 2 % of calls, tlsDetails, unique eventIDs.

Everything is drawn from ``seed``: the same seed writes the same bytes (gzip without a timestamp), so
the content digests, and with them gnnsec's batch ids, repeat across runs.
"""

from __future__ import annotations

import bisect
import gzip
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ACCOUNT = "731942068215"
SECURITY_ACCOUNT = "204518337960"  # the organisation's security tooling account (its scanner assumes in)
VENDOR_ACCOUNT = "464622532012"  # a monitoring vendor's account (its integration role assumes in)
REGIONS = (
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
    "ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2", "eu-west-3", "sa-east-1",
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
)
HOME_REGIONS = {"us-east-1": (0.76, -5), "eu-west-1": (0.24, 1)}  # share of the home work, UTC offset
IDLE_PER_FILE = 3.0
IDLE_CAP = 0.4
SLOT = timedelta(minutes=5)
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
SLOTS_PER_DAY = 288
NAME_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@dataclass(slots=True)
class Layout:
    """What was written: the files in the order ``gnnsec ingest`` walks them, and how the events spread."""

    root: Path
    paths: list[Path]
    events: int
    events_per_file: list[int]
    region_events: dict[str, int]
    region_files: dict[str, int]
    days: int
    hour_events: dict[str, list[int]] = field(default_factory=dict)  # home region → events per UTC hour of day

    def stats(self) -> dict[str, Any]:
        """File sizes and the regional and hourly skew, for the benchmark's JSON."""
        per_file = np.array(self.events_per_file)
        sizes = np.array([path.stat().st_size for path in self.paths])
        idle = [r for r in REGIONS if r not in HOME_REGIONS]
        idle_files = sum(self.region_files[r] for r in idle)
        busiest = sorted(self.region_events.items(), key=lambda kv: -kv[1])[:3]
        return {
            "regions": len(self.region_files),
            "files": len(self.paths),
            "events_per_file": {"median": int(np.median(per_file)), "p90": int(np.percentile(per_file, 90)),
                                "p99": int(np.percentile(per_file, 99)), "max": int(per_file.max())},
            "file_bytes_gz": {"median": int(np.median(sizes)), "p99": int(np.percentile(sizes, 99)),
                              "max": int(sizes.max()), "total": int(sizes.sum())},
            "busiest_regions_event_share": {r: round(n / self.events, 3) for r, n in busiest},
            "idle_regions": {"count": len(idle), "files": idle_files,
                             "events_per_file": round(sum(self.region_events[r] for r in idle) / max(1, idle_files),
                                                      1)},
            "home_region_events_per_file_by_utc_hour": {
                region: {"min": round(min(hours) / (self.days * 12), 1), "max": round(max(hours) / (self.days * 12), 1)}
                for region, hours in self.hour_events.items()
            },
        }


# ---- how many events, where and when ---------------------------------------------------------------------


def _home_weights(when: datetime, offset_hours: int) -> tuple[float, float]:
    """(background, people) rate weights of a home region at a UTC time: automation around the clock with a
    nightly batch, people on weekdays in local business hours."""
    local = when + timedelta(hours=offset_hours)
    hour = local.hour + local.minute / 60
    background = 1.0 + (1.2 if 1 <= hour < 3 else 0.0)
    people = 0.0
    if local.weekday() < 5 and 8 <= hour < 19:
        people = 3.5 * math.sin(math.pi * (hour - 8) / 11)
    elif local.weekday() >= 5 and 10 <= hour < 16:
        people = 0.3
    return background, people


def _idle_weight(when: datetime) -> float:
    """An idle region's rate: flat, a little busier in US daytime (the vendor polls more), and the
    security scanner's sweep in the first 5 minutes of every hour."""
    sweep = 3.0 if when.minute == 0 else 0.0
    return 0.8 + 0.4 * (13 <= when.hour < 23) + sweep


def cell_means(events: int, days: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Expected events per (region, 5 minutes) for a budget of ``events`` over ``days``, and per cell the
    share of people and CI among them (0 in idle regions)."""
    slots = days * SLOTS_PER_DAY
    means = np.zeros((len(REGIONS), slots))
    people = np.zeros((len(REGIONS), slots))
    times = [START + SLOT * s for s in range(slots)]
    idle_rows = [i for i, r in enumerate(REGIONS) if r not in HOME_REGIONS]
    idle_shape = np.array([_idle_weight(t) for t in times])
    idle_total = min(IDLE_PER_FILE * len(idle_rows) * slots, IDLE_CAP * events)
    for i in idle_rows:
        means[i] = idle_shape / idle_shape.sum() * idle_total / len(idle_rows)
    for region, (share, offset) in HOME_REGIONS.items():
        i = REGIONS.index(region)
        weights = np.array([_home_weights(t, offset) for t in times])
        total = weights.sum(axis=1)
        means[i] = total / total.sum() * (events - idle_total) * share
        people[i] = weights[:, 1] / total
    return means, people


# ---- who does what -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Actor:
    """A principal and how its calls look: identity block, agent, addresses, weighted calls."""

    identity: dict[str, Any]
    agent: str
    ips: Sequence[str]
    calls: Sequence[tuple[str, str, str]]  # (service, eventName, request shape)
    cumulative: list[float]
    error_rate: float = 0.005
    context: dict[str, Any] = field(default_factory=dict)  # buckets, tables, keys, the session's instance

    def call(self, rng: random.Random) -> tuple[str, str, str]:
        return self.calls[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


def _calls(*weighted: tuple[str, str, str, float]) -> tuple[list[tuple[str, str, str]], list[float]]:
    calls, cumulative, total = [], [], 0.0
    for service, name, shape, weight in weighted:
        total += weight
        calls.append((service, name, shape))
        cumulative.append(total)
    return calls, cumulative


LAMBDA_CALLS = _calls(
    ("s3", "GetObject", "s3obj", 24), ("s3", "PutObject", "s3put", 12), ("kms", "Decrypt", "kms", 16),
    ("kms", "GenerateDataKey", "kms", 6), ("dynamodb", "GetItem", "ddb", 10), ("dynamodb", "PutItem", "ddb", 6),
    ("dynamodb", "Query", "ddb", 5), ("ssm", "GetParameter", "param", 8),
    ("secretsmanager", "GetSecretValue", "secret", 5), ("sts", "GetCallerIdentity", "none", 2),
    ("ec2", "DescribeNetworkInterfaces", "filters", 2), ("logs", "CreateLogStream", "logstream", 4),
)
ECS_CALLS = _calls(
    ("s3", "GetObject", "s3obj", 20), ("s3", "PutObject", "s3put", 10), ("kms", "Decrypt", "kms", 14),
    ("dynamodb", "GetItem", "ddb", 12), ("dynamodb", "UpdateItem", "ddb", 8),
    ("secretsmanager", "GetSecretValue", "secret", 8), ("ssm", "GetParameters", "params", 6),
    ("sqs", "SendMessage", "sqs", 8), ("sqs", "ReceiveMessage", "sqs", 10), ("sts", "GetCallerIdentity", "none", 2),
)
INSTANCE_CALLS = _calls(
    ("ssm", "UpdateInstanceInformation", "ssminfo", 22), ("ec2messages", "GetMessages", "instance", 18),
    ("ssm", "ListInstanceAssociations", "instance", 8), ("ec2", "DescribeTags", "filters", 8),
    ("s3", "GetObject", "s3obj", 16), ("kms", "Decrypt", "kms", 8), ("logs", "CreateLogStream", "logstream", 6),
    ("ec2", "DescribeInstances", "instances", 6), ("autoscaling", "DescribeAutoScalingInstances", "none", 4),
    ("ssm", "GetParameter", "param", 4),
)
SERVICE_CALLS = _calls(  # AWSService identities: the service itself, invokedBy, no ARN
    ("sts", "AssumeRole", "svc-assume-lambda", 34), ("sts", "AssumeRole", "svc-assume-ec2", 16),
    ("sts", "AssumeRole", "svc-assume-ecs", 10), ("kms", "GenerateDataKey", "svc-kms", 20),
    ("kms", "Decrypt", "svc-kms", 14), ("sqs", "DeleteMessage", "sqs", 6),
)
VENDOR_CALLS = _calls(
    ("monitoring", "GetMetricData", "none", 30), ("monitoring", "ListMetrics", "none", 8),
    ("ec2", "DescribeInstances", "filters", 12), ("ec2", "DescribeVolumes", "filters", 6),
    ("tagging", "GetResources", "none", 10), ("rds", "DescribeDBInstances", "none", 6),
    ("lambda", "ListFunctions20150331", "none", 8), ("elasticloadbalancing", "DescribeLoadBalancers", "none", 6),
    ("sqs", "ListQueues", "none", 4), ("dynamodb", "ListTables", "none", 4), ("sts", "AssumeRole", "vendor-assume", 6),
)
SCANNER_CALLS = _calls(
    ("ec2", "DescribeSecurityGroups", "filters", 14), ("ec2", "DescribeInstances", "filters", 12),
    ("ec2", "DescribeSnapshots", "owner", 6), ("ec2", "DescribeVpcs", "none", 6),
    ("ec2", "DescribeFlowLogs", "none", 4),
    ("guardduty", "ListDetectors", "none", 6), ("access-analyzer", "ListAnalyzers", "none", 5),
    ("cloudtrail", "DescribeTrails", "none", 5), ("config", "DescribeConfigurationRecorders", "none", 5),
    ("kms", "ListKeys", "none", 5), ("s3", "ListBuckets", "none", 3), ("iam", "ListRoles", "global", 4),
    ("iam", "GetAccountAuthorizationDetails", "global", 2), ("iam", "ListUsers", "global", 3),
    ("securityhub", "GetFindings", "none", 4), ("sts", "AssumeRole", "scanner-assume", 4),
)
CONFIG_CALLS = _calls(
    ("ec2", "DescribeSecurityGroups", "filters", 10), ("ec2", "DescribeNetworkInterfaces", "filters", 8),
    ("ec2", "DescribeVpcs", "none", 6), ("ec2", "DescribeSubnets", "none", 6),
    ("ec2", "DescribeRouteTables", "none", 4),
    ("config", "PutEvaluations", "none", 3), ("iam", "GetRole", "role", 2), ("s3", "GetBucketAcl", "bucket", 3),
    ("lambda", "GetFunction20150331v2", "fn", 2), ("ec2", "DescribeVolumes", "filters", 4),
)
LINKED_CALLS = _calls(  # service-linked roles in every region (GuardDuty, Access Analyzer, Trusted Advisor)
    ("ec2", "DescribeInstances", "filters", 8), ("ec2", "DescribeVpcEndpoints", "none", 6),
    ("s3", "GetBucketPolicyStatus", "bucket", 4), ("iam", "GetRole", "role", 2), ("kms", "ListAliases", "none", 4),
    ("lambda", "ListFunctions20150331", "none", 4), ("ec2", "DescribeSecurityGroups", "filters", 4),
)
PERSON_CALLS = _calls(
    ("ec2", "DescribeInstances", "filters", 12), ("ec2", "DescribeSecurityGroups", "filters", 5),
    ("s3", "ListBuckets", "none", 6), ("s3", "GetBucketPolicy", "bucket", 3), ("s3", "GetObject", "s3obj", 5),
    ("lambda", "ListFunctions20150331", "none", 5), ("lambda", "GetFunction20150331v2", "fn", 4),
    ("logs", "FilterLogEvents", "logquery", 7), ("logs", "DescribeLogGroups", "none", 4),
    ("monitoring", "GetMetricData", "none", 6), ("cloudformation", "DescribeStacks", "stack", 5),
    ("iam", "ListRoles", "global", 3), ("iam", "GetRole", "role", 3), ("dynamodb", "DescribeTable", "table", 3),
    ("rds", "DescribeDBInstances", "none", 3), ("ssm", "StartSession", "session", 2),
    ("ec2", "StartInstances", "instances", 1), ("ec2", "StopInstances", "instances", 1),
    ("lambda", "UpdateFunctionConfiguration20150331v2", "fn", 1), ("s3", "PutObject", "s3put", 2),
    ("iam", "CreatePolicyVersion", "global", 0.2), ("iam", "AttachRolePolicy", "role", 0.2),
    ("signin", "ConsoleLogin", "login", 2), ("sts", "GetCallerIdentity", "none", 3),
    ("ec2", "AuthorizeSecurityGroupIngress", "sg", 0.3), ("secretsmanager", "GetSecretValue", "secret", 1),
)
CI_CALLS = _calls(
    ("sts", "AssumeRoleWithWebIdentity", "oidc", 6), ("cloudformation", "DescribeStacks", "stack", 14),
    ("cloudformation", "CreateChangeSet", "stack", 4), ("cloudformation", "ExecuteChangeSet", "stack", 3),
    ("cloudformation", "DescribeStackEvents", "stack", 12), ("s3", "PutObject", "s3put", 12),
    ("lambda", "UpdateFunctionCode20150331v2", "fn", 6), ("lambda", "GetFunction20150331v2", "fn", 8),
    ("ecr", "GetAuthorizationToken", "none", 6), ("ecr", "InitiateLayerUpload", "repo", 5),
    ("ecr", "PutImage", "repo", 3), ("ecs", "RegisterTaskDefinition", "none", 3), ("ecs", "UpdateService", "ecs", 3),
    ("ecs", "DescribeServices", "ecs", 8), ("iam", "PassRole", "global", 1),
)
USER_CALLS = _calls(  # long-lived IAM users: Terraform, a backup job, an old Jenkins
    ("s3", "PutObject", "s3put", 20), ("s3", "ListObjects", "bucket", 8), ("ec2", "DescribeInstances", "filters", 10),
    ("iam", "GetRole", "role", 8), ("iam", "ListAttachedRolePolicies", "role", 6),
    ("s3", "GetBucketTagging", "bucket", 6),
    ("lambda", "GetFunction20150331v2", "fn", 6), ("dynamodb", "DescribeTable", "table", 4),
    ("kms", "DescribeKey", "kms", 4), ("rds", "CreateDBSnapshot", "rds", 1),
    ("iam", "UpdateAssumeRolePolicy", "role", 0.3),
)

BUSY_MIX = (("lambda", 30.0), ("ecs", 18.0), ("instance", 20.0), ("service", 15.0), ("vendor", 8.0),
            ("config", 3.0), ("user", 4.0), ("scanner", 2.0))
PEOPLE_MIX = (("person", 62.0), ("ci", 28.0), ("user", 10.0))
IDLE_MIX = (("config", 34.0), ("vendor", 26.0), ("service-idle", 14.0), ("linked", 14.0), ("scanner", 12.0))
IDLE_SWEEP_MIX = (("scanner", 70.0), ("config", 12.0), ("vendor", 10.0), ("linked", 8.0))

GLOBAL_SERVICES = frozenset({"iam", "signin"})
READ_ONLY = ("Get", "List", "Describe", "Head", "Query", "Filter", "Receive", "Lookup")
FLEETS = {"us-east-1": (("web", 14), ("batch", 10), ("kafka", 6), ("bastion", 1)), "eu-west-1": (("web", 6),)}

UA_BOTO_LAMBDA = ("Boto3/1.34.{} md/Botocore#1.34.{} ua/2.0 os/linux#5.10.214-223.810.amzn2.x86_64 md/arch#x86_64 "
                  "lang/python#3.12.3 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy "
                  "Botocore/1.34.{}")
UA_NODE_LAMBDA = "aws-sdk-js/3.{}.0 ua/2.0 os/linux#5.10.214 lang/js md/nodejs#20.13.1 exec-env/AWS_Lambda_nodejs20.x"
UA_JAVA = ("aws-sdk-java/2.25.{} Linux/5.10.216-204.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.3+9-LTS "
           "Java/21.0.3 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy")
UA_GO = "aws-sdk-go-v2/1.26.{} os/linux lang/go#1.22.3 md/GOOS#linux md/GOARCH#amd64 api/{}"
UA_SSM = "aws-sdk-go/1.44.{} (go1.21.9; linux; amd64) amazon-ssm-agent/3.3.{}.0"
UA_CLI = "aws-cli/2.15.{} Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off command/{}"
UA_CONSOLE = "AWS Internal"
UA_TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0"
UA_GITHUB = "aws-sdk-js/2.1621.0 promise"


class _Generator:
    """Draws the account's population once, then one record at a time; all from one ``random.Random``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        rng = self.rng
        self.buckets = [f"{w}-{ACCOUNT[-4:]}-{r}" for w in ("orders", "invoices", "media", "exports", "datalake-raw",
                        "datalake-curated", "ml-features", "backups", "logs-archive", "static-assets", "reports",
                        "config-snapshots", "cur-billing", "terraform-state", "athena-results")
                        for r in ("use1", "euw1")]
        self.tables = [f"{w}-{env}" for w in ("orders", "sessions", "carts", "users", "inventory", "idempotency",
                                               "feature-flags", "rate-limits") for env in ("prod", "staging")]
        self.keys = {region: [f"{rng.getrandbits(128):032x}" for _ in range(8)] for region in REGIONS}
        self.functions = [f"{team}-{verb}-{noun}" for team in ("orders", "billing", "catalog", "search", "auth",
                          "notify", "etl", "media") for verb, noun in (("process", "events"), ("sync", "state"),
                          ("handle", "webhook"), ("resize", "images"), ("export", "report"), ("rotate", "keys"),
                          ("ingest", "feed"), ("score", "batch"), ("cleanup", "stale"), ("fanout", "jobs"))]
        self.people = [f"{first}.{last}@example.com" for first, last in zip(
            ("ana", "ben", "chen", "dara", "eli", "fatima", "gus", "hana", "ivan", "jo", "kai", "lena", "mo", "nia",
             "omar", "pia", "quinn", "raj", "sara", "tom", "uma", "vik", "wen", "xena", "yusuf", "zoe", "amir",
             "bea", "cyril", "dina", "emre", "flo", "gia", "hugo", "ines", "jake", "kira", "leo", "maya", "nils"),
            ("ito", "osei", "wu", "kaur", "roth", "ali", "berg", "sato", "petrov", "lee", "moss", "vogel", "diaz",
             "okafor", "haddad", "lund", "reid", "nair", "cohen", "hart", "rao", "shah", "zhang", "pike", "aydin",
             "ng", "farah", "costa", "dubois", "levy", "kaya", "meyer", "bruno", "laurent", "silva", "ward", "ivanova",
             "rossi", "das", "holm"), strict=True)]
        self.public = {region: [f"{a}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                                for a in (3, 18, 34, 44, 52, 54) for _ in range(4)] for region in REGIONS}
        self.office = ["198.51.100.17", "198.51.100.18", "203.0.113.40"]
        self.homes = [f"{rng.choice((24, 73, 81, 86, 92, 109))}.{rng.randrange(256)}.{rng.randrange(256)}."
                      f"{rng.randrange(1, 255)}" for _ in self.people]
        self.vendor_ips = [f"3.233.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(6)]
        self.scanner_ips = [f"35.{rng.randrange(150, 180)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                            for _ in range(2)]
        self.role_ids: dict[str, str] = {}
        self.sessions: dict[tuple[str, str], dict[str, Any]] = {}
        self.instance_cache: dict[tuple[str, str, int, int], tuple[str, str]] = {}
        self.tasks: dict[tuple[str, int, int], str] = {}
        self.function_roles: dict[str, str] = {}
        self.actors = self._population()
        for actor in self.actors["ecs"] + self.actors["instance"]:
            self.role_id(actor.context["role"])
        self.role_names = sorted(self.role_ids)
        self.groups: dict[tuple[str, str], tuple[list[float], list[_Actor]]] = {}

    # -- identifiers -------------------------------------------------------------------------------------

    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"

    def key_id(self, prefix: str, rng: random.Random | None = None) -> str:
        draw = (rng or self.rng).getrandbits
        return prefix + "".join(KEY_ALPHABET[draw(5)] for _ in range(16))

    def role_id(self, name: str) -> str:
        if name not in self.role_ids:
            self.role_ids[name] = self.key_id("AROA")
        return self.role_ids[name]

    def instance(self, fleet: str, region: str, size: int, when: datetime) -> tuple[str, str]:
        """An instance of an auto-scaling fleet live at ``when`` (id, private IP): each slot is replaced
        every day or two, so the week sees a few hundred instance ids."""
        slot = self.rng.randrange(size)
        hours = int((when - START).total_seconds() // 3600)
        life = 20 + slot % 5 * 7
        key = (fleet, region, slot, (hours + slot * 3) // life)
        if key not in self.instance_cache:
            draw = random.Random(f"{self.seed}:{key}")
            self.instance_cache[key] = (f"i-0{draw.getrandbits(64):016x}",
                                        f"10.{draw.randrange(0, 64)}.{draw.randrange(256)}.{draw.randrange(1, 255)}")
        return self.instance_cache[key]

    # -- identities ----------------------------------------------------------------------------------------

    def role_session(self, role: str, session: str, account: str = ACCOUNT, path: str = "/",
                     mfa: bool = False, invoked_by: str | None = None) -> dict[str, Any]:
        role_arn = f"arn:aws:iam::{account}:role{path}{role}"
        block: dict[str, Any] = {
            "type": "AssumedRole",
            "principalId": f"{self.role_id(role)}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
            "accountId": account,
            "accessKeyId": self.key_id("ASIA"),
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": self.role_id(role), "arn": role_arn,
                                  "accountId": account, "userName": role},
                "webIdFederationData": {},
                "attributes": {"creationDate": "2026-03-01T23:12:40Z", "mfaAuthenticated": "true" if mfa else "false"},
            },
        }
        if invoked_by:
            block["invokedBy"] = invoked_by
        return block

    def _actor(self, identity: dict[str, Any], agent: str, ips: Sequence[str],
               calls: tuple[list[tuple[str, str, str]], list[float]], error_rate: float = 0.005,
               **context: Any) -> _Actor:
        return _Actor(identity, agent, ips, calls[0], calls[1], error_rate, context)

    def group(self, kind: str, region: str) -> tuple[list[float], list[_Actor]]:
        """The actors of a kind that work in ``region``, with Pareto-like popularity (a few functions make
        most of the calls); its own RNG, so the order groups are first needed in changes nothing."""
        key = (kind, region)
        if key not in self.groups:
            members = [a for a in self.actors[kind] if a.context.get("region") in (None, region)]
            self.groups[key] = (_pareto_cumulative(len(members), random.Random(f"{self.seed}:{kind}:{region}")),
                                members)
        return self.groups[key]

    def _population(self) -> dict[str, list[_Actor]]:
        """Every actor of the account, per kind."""
        rng = self.rng
        actors: dict[str, list[_Actor]] = {}
        lambdas: list[_Actor] = []
        for n, fn in enumerate(self.functions):
            region = "eu-west-1" if n % 5 == 4 else "us-east-1"
            agent = (UA_BOTO_LAMBDA.format(n % 90, n % 90, n % 90) if n % 3 else UA_NODE_LAMBDA.format(500 + n))
            role = self.function_roles[fn] = f"{fn}-role-{rng.getrandbits(24):06x}"
            lambdas.append(self._actor(self.role_session(role, fn), agent,
                                       self.public[region][n % 7:n % 7 + 6], LAMBDA_CALLS, region=region,
                                       buckets=rng.sample(self.buckets, 2), tables=rng.sample(self.tables, 2),
                                       function=fn))
        actors["lambda"] = lambdas
        ecs: list[_Actor] = []
        for n, service in enumerate(("checkout", "catalog-api", "search-api", "auth", "payments", "notifications",
                                     "recommendations", "admin", "graphql-gateway", "media-worker", "reports-worker",
                                     "ingest-worker", "pricing", "inventory-sync", "audit-log")):
            region = "eu-west-1" if n % 4 == 3 else "us-east-1"
            ecs.append(self._actor({}, UA_JAVA.format(n) if n % 2 else UA_GO.format(n, "s3#1.53.1"),
                                   self.public[region][:2], ECS_CALLS, region=region, role=f"ecs-{service}-task-role",
                                   buckets=rng.sample(self.buckets, 2), tables=rng.sample(self.tables, 2),
                                   service=service, replicas=2 + n % 4))
        actors["ecs"] = ecs
        actors["instance"] = [
            self._actor({}, UA_SSM.format(300 + n, 1000 + n), (), INSTANCE_CALLS, region=region, fleet=fleet,
                        size=size, role=f"{fleet}-instance-role", buckets=rng.sample(self.buckets, 2))
            for n, (region, fleet, size) in enumerate((r, f, z) for r, fleets in FLEETS.items() for f, z in fleets)
        ]
        actors["service"] = [self._actor({"type": "AWSService", "invokedBy": service}, service, (service,),
                                         SERVICE_CALLS, service=service)
                             for service in ("lambda.amazonaws.com", "ec2.amazonaws.com",
                                             "ecs-tasks.amazonaws.com", "cloudtrail.amazonaws.com",
                                             "s3.amazonaws.com", "sqs.amazonaws.com")]
        actors["service-idle"] = [self._actor({"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"},
                                              "cloudtrail.amazonaws.com", ("cloudtrail.amazonaws.com",),
                                              _calls(("kms", "GenerateDataKey", "svc-kms", 1)))]
        vendor_session = f"vendor-{rng.getrandbits(40):010x}"
        actors["vendor"] = [self._actor(self.role_session("MonitoringIntegrationRole", vendor_session),
                                        "vendor-agent/7.52 " + UA_GO.format(11, "cloudwatch#1.38.0"), self.vendor_ips,
                                        VENDOR_CALLS, error_rate=0.02,
                                        caller={"type": "AWSAccount", "principalId": self.key_id("AROA")
                                                + ":vendor-integration", "accountId": VENDOR_ACCOUNT})]
        actors["scanner"] = [self._actor(self.role_session("SecurityAuditRole", "cspm-scanner"),
                                         UA_GO.format(9, "ec2#1.160.0"), self.scanner_ips, SCANNER_CALLS,
                                         error_rate=0.03,
                                         caller={"type": "AWSAccount", "principalId": self.key_id("AROA")
                                                 + ":cspm", "accountId": SECURITY_ACCOUNT})]
        actors["config"] = [self._actor(self.role_session("AWSServiceRoleForConfig", "AWSConfig-Describe",
                                                          path="/aws-service-role/config.amazonaws.com/",
                                                          invoked_by="config.amazonaws.com"),
                                        "config.amazonaws.com", ("config.amazonaws.com",), CONFIG_CALLS)]
        actors["linked"] = [
            self._actor(self.role_session(role, session, path=f"/aws-service-role/{service}/", invoked_by=service),
                        service, (service,), LINKED_CALLS)
            for role, session, service in (("AWSServiceRoleForAmazonGuardDuty", "GuardDutySession",
                                            "guardduty.amazonaws.com"),
                                           ("AWSServiceRoleForAccessAnalyzer", "access-analyzer",
                                            "access-analyzer.amazonaws.com"),
                                           ("AWSServiceRoleForTrustedAdvisor", "TrustedAdvisor_" + ACCOUNT,
                                            "trustedadvisor.amazonaws.com"))
        ]
        people: list[_Actor] = []
        for n, email in enumerate(self.people):
            permission = ("AdministratorAccess", "PowerUserAccess", "ReadOnlyAccess", "DataScientist")[n % 4]
            suffix = f"{(self.seed * 7919 + n % 4) % (1 << 64):016x}"
            identity = self.role_session(f"AWSReservedSSO_{permission}_{suffix}", email,
                                         path="/aws-reserved/sso.amazonaws.com/", mfa=True)
            region = "eu-west-1" if n % 10 >= 7 else "us-east-1"
            agent = UA_CONSOLE if n % 3 else UA_CLI.format(n % 20, "ec2.describe-instances")
            people.append(self._actor(identity, agent, (self.office[n % 3], self.homes[n]), PERSON_CALLS,
                                      error_rate=0.04, region=region, buckets=rng.sample(self.buckets, 3),
                                      tables=rng.sample(self.tables, 2), person=email))
        actors["person"] = people
        actors["ci"] = [self._actor(self.role_session("github-actions-deploy", "GitHubActions"), UA_GITHUB,
                                    self.public["us-east-1"][20:24], CI_CALLS, error_rate=0.01,
                                    buckets=["static-assets-" + ACCOUNT[-4:] + "-use1"], tables=self.tables[:2],
                                    caller={"type": "WebIdentityUser", "principalId": f"arn:aws:iam::{ACCOUNT}:"
                                            "oidc-provider/token.actions.githubusercontent.com:sts.amazonaws.com:"
                                            "repo:example/shop:ref:refs/heads/main",
                                            "userName": "repo:example/shop:ref:refs/heads/main",
                                            "identityProvider": f"arn:aws:iam::{ACCOUNT}:oidc-provider/"
                                            "token.actions.githubusercontent.com"})]
        users: list[_Actor] = []
        for n, (name, agent) in enumerate((("terraform-ci", UA_TERRAFORM), ("svc-backup", UA_BOTO_LAMBDA.format(
                1, 1, 1)), ("jenkins", UA_JAVA.format(2)), ("reporting-export", UA_CLI.format(3, "s3.cp")))):
            identity = {"type": "IAMUser", "principalId": self.key_id("AIDA"),
                        "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "accountId": ACCOUNT,
                        "accessKeyId": self.key_id("AKIA"), "userName": name}
            users.append(self._actor(identity, agent, (self.office[n % 3], self.public["us-east-1"][n]), USER_CALLS,
                                     error_rate=0.01, buckets=rng.sample(self.buckets, 2),
                                     tables=rng.sample(self.tables, 1)))
        actors["user"] = users
        return actors

    # -- one record ----------------------------------------------------------------------------------------

    def record(self, kind: str, region: str, when: datetime) -> dict[str, Any]:
        """One event of an actor of ``kind`` in ``region``'s file."""
        rng = self.rng
        cumulative, group = self.group(kind, region)
        actor = group[bisect.bisect(cumulative, rng.random() * cumulative[-1])]
        ctx = actor.context
        identity = actor.identity
        ip = rng.choice(actor.ips) if actor.ips else ""
        if kind == "ecs":
            replica, day = rng.randrange(ctx["replicas"]), (when - START).days
            task = self.tasks.get((ctx["service"], replica, day))
            if task is None:
                task = self.tasks[(ctx["service"], replica, day)] = f"{rng.getrandbits(128):032x}"
            identity = self._session(ctx["role"], task)
        elif kind == "instance":
            instance_id, ip = self.instance(ctx["fleet"], region, ctx["size"], when)
            identity = self._session(ctx["role"], instance_id, ec2=True)
            ctx = {**ctx, "instance": instance_id}
        for _ in range(8):  # IAM and the console sign-in are global: their events are in us-east-1's files
            service, name, shape = actor.call(rng)
            if region == "us-east-1" or not (shape == "global" or service in GLOBAL_SERVICES):
                break
        else:
            service, name, shape = "sts", "GetCallerIdentity", "none"
        if shape in ("vendor-assume", "scanner-assume", "oidc"):
            identity = ctx["caller"]  # the role's own trail sees the other account (or GitHub's token)
        request, response, resources, data = self.shape(shape, service, name, ctx, region, when)
        source = f"{service}.amazonaws.com"
        record: dict[str, Any] = {
            "eventVersion": "1.10" if data else ("1.09" if service in ("sts", "ssm", "kms") else "1.08"),
            "userIdentity": identity,
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip or source,
            "userAgent": actor.agent,
        }
        if rng.random() < actor.error_rate:
            code, message = _error(service, name, kind)
            record["errorCode"], record["errorMessage"] = code, message
            response = None
        record["requestParameters"] = request
        record["responseElements"] = response
        if data and service == "s3":
            record["additionalEventData"] = {
                "SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": rng.randrange(200, 400_000) if name == "PutObject" else 0,
                "AuthenticationMethod": "AuthHeader", "x-amz-id-2": f"{rng.getrandbits(160):040x}",
                "bytesTransferredOut": rng.randrange(200, 2_000_000) if name == "GetObject" else 0,
            }
        record["requestID"] = f"{rng.getrandbits(64):016X}" if service == "s3" else self.uuid()
        record["eventID"] = self.uuid()
        record["readOnly"] = name.startswith(READ_ONLY) or name in ("Decrypt", "GenerateDataKey")
        if resources is not None:
            record["resources"] = resources
        record["eventType"] = "AwsConsoleSignIn" if name == "ConsoleLogin" else "AwsApiCall"
        record["managementEvent"] = not data
        record["recipientAccountId"] = ACCOUNT
        if identity["type"] in ("AWSAccount", "WebIdentityUser"):
            record["sharedEventID"] = self.uuid()
        record["eventCategory"] = "Data" if data else "Management"
        if identity["type"] not in ("AWSService", "AWSAccount") and "invokedBy" not in identity:
            record["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                    "clientProvidedHostHeader": f"{service}.{region}.amazonaws.com"}
        if actor.agent == UA_CONSOLE:
            record["sessionCredentialFromConsole"] = "true"
        return record

    def _session(self, role: str, session: str, ec2: bool = False) -> dict[str, Any]:
        """A session's identity block, the same (access key and all) for every call it makes."""
        block = self.sessions.get((role, session))
        if block is None:
            block = self.sessions[(role, session)] = self.role_session(role, session)
            if ec2:
                block["sessionContext"]["ec2RoleDelivery"] = "2.0"
        return block

    def shape(self, shape: str, service: str, name: str, ctx: dict[str, Any], region: str, when: datetime
              ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, list[dict[str, str]] | None, bool]:
        """(requestParameters, responseElements, resources, data event) for a request shape."""
        rng = self.rng
        if shape in ("none", "global"):
            return None, None, None, False
        if shape in ("s3obj", "s3put"):
            bucket = rng.choice(ctx.get("buckets") or self.buckets)
            key = f"{rng.choice(('in', 'out', 'tmp', 'v2/data'))}/{when:%Y/%m/%d}/{rng.getrandbits(40):010x}.json"
            request: dict[str, Any] = {"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com",
                                       "key": key}
            response = None
            if shape == "s3put":
                request["x-amz-server-side-encryption"] = "aws:kms"
                response = {"x-amz-server-side-encryption": "aws:kms"}
            return request, response, [
                {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
            ], True
        if shape == "bucket":
            return {"bucketName": rng.choice(ctx.get("buckets") or self.buckets), "Host": "s3.amazonaws.com"}, \
                None, None, False
        if shape in ("kms", "svc-kms"):
            key = rng.choice(self.keys[region])
            arn = f"arn:aws:kms:{region}:{ACCOUNT}:key/{key[:8]}-{key[8:12]}-{key[12:16]}-{key[16:20]}-{key[20:]}"
            context = ({"aws:cloudtrail:arn": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/org-trail"}
                       if shape == "svc-kms" else {"aws:lambda:FunctionArn": f"arn:aws:lambda:{region}:{ACCOUNT}:"
                                                   f"function:{ctx.get('function', 'app')}"})
            request = {"encryptionContext": context, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
            if name == "GenerateDataKey":
                request = {"keyId": arn, "encryptionContext": context, "keySpec": "AES_256"}
            return request, None, [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": arn}], False
        if shape == "ddb":
            table = rng.choice(ctx.get("tables") or self.tables)
            return ({"tableName": table, "key": {"pk": {"S": f"{rng.getrandbits(32):08x}"}}}, None,
                    [{"accountId": ACCOUNT, "type": "AWS::DynamoDB::Table",
                      "ARN": f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}"}], True)
        if shape == "table":
            return {"tableName": rng.choice(ctx.get("tables") or self.tables)}, None, None, False
        if shape in ("param", "params"):
            names = [f"/{ctx.get('service') or ctx.get('function') or 'app'}/prod/{p}"
                     for p in rng.sample(("db-url", "api-key", "feature-x", "endpoint"), 1 if shape == "param" else 2)]
            return ({"name": names[0], "withDecryption": True} if shape == "param"
                    else {"names": names, "withDecryption": True}), None, None, False
        if shape == "secret":
            return {"secretId": f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:prod/"
                                f"{ctx.get('service') or ctx.get('function') or 'app'}/db-AbCdEf"}, None, None, False
        if shape == "sqs":
            queue = f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{ctx.get('service', 'events')}-queue"
            return {"queueUrl": queue}, None, None, service == "sqs" and name != "ListQueues"
        if shape == "logstream":
            owner = ctx.get("function") or ctx.get("fleet") or "app"
            return {"logGroupName": f"/aws/lambda/{owner}", "logStreamName": f"{when:%Y/%m/%d}/[$LATEST]"
                    f"{rng.getrandbits(128):032x}"}, None, None, False
        if shape == "logquery":
            return {"logGroupName": f"/aws/lambda/{rng.choice(self.functions)}", "startTime": 1, "limit": 100}, \
                None, None, False
        if shape == "filters":
            return (None if rng.random() < 0.6 else {"filterSet": {}, "maxResults": 1000}), None, None, False
        if shape == "owner":
            return {"ownersSet": {"items": [{"owner": "self"}]}, "maxResults": 1000}, None, None, False
        if shape in ("instance", "ssminfo"):
            instance = ctx.get("instance") or "i-0000000000000000a"
            request = {"instanceId": instance}
            if shape == "ssminfo":
                request.update(agentVersion="3.3.380.0", platformType="Linux", agentName="amazon-ssm-agent")
            return request, None, None, False
        if shape in ("instances", "session"):
            fleet, size = FLEETS.get(region, (("web", 1),))[0]
            instance = ctx.get("instance") or self.instance(fleet, region, size, when)[0]
            if shape == "session":
                return {"target": instance, "documentName": "SSM-SessionManagerRunShell"}, \
                    {"sessionId": f"{ctx.get('person', 'user')}-{rng.getrandbits(56):014x}"}, None, False
            return {"instancesSet": {"items": [{"instanceId": instance}]}}, None, None, False
        if shape == "fn":
            return {"functionName": rng.choice(self.functions)}, None, None, False
        if shape == "role":
            return {"roleName": rng.choice(self.role_names)}, None, None, False
        if shape == "stack":
            return {"stackName": f"{rng.choice(('orders', 'billing', 'catalog', 'network', 'data'))}-prod"}, \
                None, None, False
        if shape == "repo":
            return {"repositoryName": rng.choice(("checkout", "catalog-api", "search-api")),
                    "registryId": ACCOUNT}, None, None, False
        if shape == "ecs":
            return {"cluster": "prod", "services": ["checkout"]}, None, None, False
        if shape == "rds":
            return {"dBInstanceIdentifier": "orders-prod", "dBSnapshotIdentifier": f"manual-{when:%Y%m%d}"}, \
                None, None, False
        if shape == "sg":
            return {"groupId": f"sg-0{rng.getrandbits(64):016x}", "ipPermissions": {"items": [
                {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
                 "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}}]}}, None, None, False
        if shape == "login":
            return None, {"ConsoleLogin": "Success"}, None, False
        if shape.endswith("-assume") or shape.startswith("svc-assume") or shape == "oidc":
            return self._assume(shape, ctx, region, when)
        raise ValueError(f"unknown request shape {shape!r}")

    def _assume(self, shape: str, ctx: dict[str, Any], region: str, when: datetime
                ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, str]], bool]:
        rng = self.rng
        if shape == "svc-assume-ec2":  # EC2 fetching an instance profile's credentials: the session is the instance
            fleet, size = rng.choice(FLEETS[region]) if region in FLEETS else ("web", 1)
            role, session = f"{fleet}-instance-role", self.instance(fleet, region, size, when)[0]
        elif shape == "svc-assume-ecs":
            role, session = "ecs-checkout-task-role", f"{rng.getrandbits(128):032x}"
        elif shape == "svc-assume-lambda":
            fn = rng.choice(self.functions)
            role, session = self.function_roles[fn], fn
        elif shape == "vendor-assume":
            role, session = "MonitoringIntegrationRole", f"vendor-{rng.getrandbits(40):010x}"
        elif shape == "scanner-assume":
            role, session = "SecurityAuditRole", "cspm-scanner"
        else:
            role, session = "github-actions-deploy", "GitHubActions"
        arn = f"arn:aws:iam::{ACCOUNT}:role/{role}"
        request: dict[str, Any] = {"roleArn": arn, "roleSessionName": session, "durationSeconds": 3600}
        if shape == "vendor-assume":
            request["externalId"] = "a1b2c3d4e5f6"
        key = self.key_id("ASIA")
        response = {"credentials": {"accessKeyId": key, "sessionToken": f"IQoJb3JpZ2luX2VjE{rng.getrandbits(256):064x}",
                                    "expiration": (when + timedelta(hours=1)).strftime("%b %d, %Y, %I:%M:%S %p")},
                    "assumedRoleUser": {"assumedRoleId": f"{self.role_id(role)}:{session}",
                                        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"}}
        return request, response, [{"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": arn}], False


def _pareto_cumulative(count: int, rng: random.Random) -> list[float]:
    """Cumulative popularity of ``count`` actors: a few do most of the calls, the order is shuffled."""
    weights = [1.0 / (rank + 1) ** 0.9 for rank in range(count)]
    rng.shuffle(weights)
    total, cumulative = 0.0, []
    for weight in weights:
        total += weight
        cumulative.append(total)
    return cumulative


def _error(service: str, name: str, kind: str) -> tuple[str, str]:
    """The errorCode a call of this kind gets when it fails, and a message shaped like AWS's."""
    if kind in ("vendor", "scanner") and service in ("ec2", "monitoring"):
        return ("Client.RequestLimitExceeded" if service == "ec2" else "ThrottlingException", "Rate exceeded")
    if service == "ec2":
        return "Client.UnauthorizedOperation", "You are not authorized to perform this operation."
    if service == "s3" and name == "GetObject":
        return "NoSuchKey", "The specified key does not exist."
    return "AccessDenied", f"User is not authorized to perform: {service}:{name}"


def _mix(table: tuple[tuple[str, float], ...]) -> tuple[list[str], list[float]]:
    kinds, cumulative, total = [], [], 0.0
    for kind, weight in table:
        total += weight
        kinds.append(kind)
        cumulative.append(total)
    return kinds, cumulative


def _pick(mix: tuple[list[str], list[float]], rng: random.Random) -> str:
    return mix[0][bisect.bisect(mix[1], rng.random() * mix[1][-1])]


# ---- the files -------------------------------------------------------------------------------------------


def file_path(root: Path, region: str, delivered: datetime, suffix: str, account: str = ACCOUNT) -> Path:
    """Where AWS puts a trail file delivered at ``delivered`` (UTC)."""
    return (root / "AWSLogs" / account / "CloudTrail" / region / f"{delivered:%Y}" / f"{delivered:%m}"
            / f"{delivered:%d}" / f"{account}_CloudTrail_{region}_{delivered:%Y%m%dT%H%MZ}_{suffix}.json.gz")


def write_cloudtrail_5min(root: Path, events: int, seed: int = 7, days: int = 7, rates_of: int | None = None
                          ) -> Layout:
    """Write ``events`` records as a multi-region trail delivers them, one file per region per 5 minutes.

    ``rates_of``: draw the files at the rates of a ``days`` layout of that many events, but only as many
    5-minute periods from the start as ``events`` needs: a short export of the same account (the
    benchmark's first-ingest check)."""
    means, people = cell_means(rates_of or events, days)
    if rates_of is not None:
        needed = int(np.searchsorted(np.cumsum(means.sum(axis=0)), events)) + 1
        means, people = means[:, :needed], people[:, :needed]
    counts = np.random.default_rng(seed).multinomial(events, (means / means.sum()).ravel()).reshape(means.shape)
    gen = _Generator(seed)
    names = random.Random(seed ^ 0x5EED)
    busy_mix, people_mix = _mix(BUSY_MIX), _mix(PEOPLE_MIX)
    idle_mix, sweep_mix = _mix(IDLE_MIX), _mix(IDLE_SWEEP_MIX)
    paths, per_file = [], []
    region_events = dict.fromkeys(REGIONS, 0)
    region_files = dict.fromkeys(REGIONS, 0)
    hour_events = {region: [0] * 24 for region in HOME_REGIONS}
    for r, region in enumerate(REGIONS):  # regions in name order: the order `gnnsec ingest` walks the folders
        home = region in HOME_REGIONS
        for s in range(counts.shape[1]):
            count = int(counts[r, s])
            if not count:
                continue
            begin = START + SLOT * s
            seconds = sorted(gen.rng.random() * 300 for _ in range(count))
            records = []
            for offset in seconds:
                if home:
                    kind = _pick(people_mix if gen.rng.random() < people[r, s] else busy_mix, gen.rng)
                else:
                    kind = _pick(sweep_mix if begin.minute == 0 else idle_mix, gen.rng)
                records.append(gen.record(kind, region, begin + timedelta(seconds=int(offset))))
            suffix = "".join(names.choice(NAME_ALPHABET) for _ in range(16))
            path = file_path(root, region, begin + SLOT, suffix)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(gzip.compress(orjson.dumps({"Records": records}), compresslevel=6, mtime=0))
            paths.append(path)
            per_file.append(count)
            region_events[region] += count
            region_files[region] += 1
            if home:
                hour_events[region][begin.hour] += count
    return Layout(root, paths, events, per_file, region_events, region_files, days, hour_events)
