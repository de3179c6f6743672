"""The six labelled attack campaigns, each a short script of ordinary-looking API calls and flows.

Campaigns reuse existing identities and the same API vocabulary as benign users; what gives
them away is structure (edges between entities that never connect, a relation type new for that
identity, a new address or region), not a field value.  Every record a campaign writes is also
turned into label rows with the uids the adapters compute (:func:`records.cloudtrail_edges`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gnnsec.ingest import uids
from gnnsec.synth.behaviour import (
    UA_BOTO,
    BenignBehaviour,
    api_ip,
    ec2_state_change,
    run_instances,
    wire_function,
)
from gnnsec.synth.estate import EXPLOITABLE_CVES, Estate, Ids, Instance, Person
from gnnsec.synth.records import (
    UA_CLI,
    UA_CONSOLE,
    HourBatch,
    LabelRow,
    RecordFactory,
    cloudtrail_edges,
    flow_line,
    iso,
)

TECHNIQUES: dict[str, dict[str, str]] = {
    "stolen-key": {
        "T1078.004": "Valid Accounts: Cloud Accounts",
        "T1087.004": "Account Discovery: Cloud Account",
        "T1580": "Cloud Infrastructure Discovery",
        "T1548.005": "Abuse Elevation Control Mechanism: Temporary Elevated Cloud Access",
        "T1530": "Data from Cloud Storage",
    },
    "exploit-lateral": {
        "T1190": "Exploit Public-Facing Application",
        "T1552.005": "Unsecured Credentials: Cloud Instance Metadata API",
        "T1651": "Cloud Administration Command",
        "T1021.004": "Remote Services: SSH",
        "T1578.001": "Modify Cloud Compute Infrastructure: Create Snapshot",
        "T1537": "Transfer Data to Cloud Account",
    },
    "cryptomining": {
        "T1078.004": "Valid Accounts: Cloud Accounts",
        "T1578.002": "Modify Cloud Compute Infrastructure: Create Cloud Instance",
        "T1535": "Unused/Unsupported Cloud Regions",
        "T1496": "Resource Hijacking",
    },
    "insider": {
        "T1078.004": "Valid Accounts: Cloud Accounts",
        "T1530": "Data from Cloud Storage",
    },
    "persistence": {
        "T1078.004": "Valid Accounts: Cloud Accounts",
        "T1648": "Serverless Execution",
        "T1546": "Event Triggered Execution",
        "T1098": "Account Manipulation",
        "T1199": "Trusted Relationship",
    },
    "privesc": {
        "T1098.003": "Account Manipulation: Additional Cloud Roles",
        "T1098.001": "Account Manipulation: Additional Cloud Credentials",
        "T1087.004": "Account Discovery: Cloud Account",
        "T1530": "Data from Cloud Storage",
    },
}
CAMPAIGNS: tuple[str, ...] = tuple(TECHNIQUES)


@dataclass(slots=True)
class EntityLabel:
    uid: str
    label: str
    campaign: str
    techniques: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None

    def touch(self, t: datetime, technique: str) -> None:
        self.techniques.add(technique)
        self.first = t if self.first is None or t < self.first else self.first
        self.last = t if self.last is None or t > self.last else self.last


@dataclass(slots=True)
class Labels:
    """Ground truth collected while campaigns write their records."""

    entities: dict[tuple[str, str], EntityLabel] = field(default_factory=dict)
    activity: list[LabelRow] = field(default_factory=list)

    def entity(self, uid: str, label: str, campaign: str, t: datetime, technique: str) -> None:
        key = (uid, campaign)
        if key not in self.entities:
            self.entities[key] = EntityLabel(uid, label, campaign)
        self.entities[key].touch(t, technique)

    def edge(self, src: str, kind: str, dst: str, t: datetime, campaign: str, technique: str) -> None:
        self.activity.append(LabelRow(src, kind, dst, iso(t), campaign, technique))


Step = Callable[[datetime, random.Random, RecordFactory, HourBatch], None]


class Campaign:
    """A campaign: steps scheduled at hours, label bookkeeping shared by all campaigns."""

    name = ""

    def __init__(self, estate: Estate, behaviour: BenignBehaviour, labels: Labels, rng: random.Random) -> None:
        self.estate = estate
        self.behaviour = behaviour
        self.labels = labels
        self.rng = rng
        self.ids = Ids(rng)
        self.steps: dict[int, list[Step]] = {}
        self.seen_ips: set[tuple[str, str]] = set()

    def plan(self) -> None:
        """Schedule the campaign's steps with :meth:`at` (each campaign defines its own)."""
        raise NotImplementedError

    def at(self, hour: int, step: Step) -> None:
        hour = max(0, min(self.estate.hours - 1, hour))
        self.steps.setdefault(hour, []).append(step)

    def run_hour(self, h: int, t0: datetime, factory: RecordFactory, batch: HourBatch) -> None:
        for step in self.steps.get(h, []):
            step(t0, self.rng, factory, batch)

    def hour_frac(self, fraction: float) -> int:
        return int(self.estate.hours * fraction)

    # -- label helpers --------------------------------------------------------------------------

    def trail(self, batch: HourBatch, record: dict[str, Any], technique: str, label_src: str | None = None) -> None:
        """Write a CloudTrail record and label its relationships (and a new source address)."""
        batch.add_trail(record)
        t = datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00"))
        for src, kind, dst in cloudtrail_edges(record):
            self.labels.edge(src, kind, dst, t, self.name, technique)
            if label_src and record["userIdentity"]["type"] != "AWSAccount":
                self.labels.entity(src, label_src, self.name, t, technique)
        src = cloudtrail_edges(record)[0][0]
        ip = record["sourceIPAddress"]
        if (src, ip) not in self.seen_ips:
            self.seen_ips.add((src, ip))
            self.labels.edge(src, "AUTHENTICATES_FROM", uids.ip(ip), t, self.name, "T1078.004")

    def flow(self, batch: HourBatch, host: Instance, src: str, dst: str, sport: int, dport: int, packets: int,
             size: int, t: datetime, technique: str) -> None:
        start = int(t.timestamp())
        batch.add_flow(host.account_id, host.region, start,
                       flow_line(host.account_id, host.eni_id, src, dst, sport, dport, packets, size, start))
        self.labels.edge(uids.ip(src), "CONNECTS_TO", uids.ip(dst), datetime.fromtimestamp(start, t.tzinfo), self.name,
                         technique)


# --- 1. stolen access key ----------------------------------------------------------------------------


class StolenKey(Campaign):
    """A developer's long-lived key leaks; the attacker enumerates, chains roles and exfiltrates."""

    name = "stolen-key"

    def plan(self) -> None:
        estate = self.estate
        dev, prod = estate.accounts["dev"], estate.accounts["prod"]
        candidates = [p for p in estate.people if p.account_id == dev.account_id and p.joins_hour is None]
        self.victim: Person = candidates[0] if candidates else estate.people[0]
        if dev.role("etl-dev") not in self.victim.assumable:
            self.victim.assumable.append(dev.role("etl-dev"))
        self.ip = self.ids.public_ip()
        self.targets = ([b for b in prod.buckets if any(k in b.name for k in ("invoices", "backups"))]
                        or prod.buckets)[:3]
        start = self.hour_frac(0.55)
        self.at(start, self.enumerate)
        self.at(start + 1, self.chain_and_exfiltrate)

    def enumerate(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        identity = factory.iam_user(self.victim)
        agent = UA_CLI.format(cmd="sts")
        t = t0 + timedelta(minutes=rng.randint(5, 20))
        self.labels.entity(uids.ip(self.ip), "IP", self.name, t, "T1078.004")
        calls: list[tuple[str, str, str, dict[str, Any] | None, str]] = [
            ("sts", "GetCallerIdentity", "us-east-1", None, "T1078.004"),
            ("iam", "ListUsers", "us-east-1", None, "T1087.004"),
            ("iam", "ListRoles", "us-east-1", None, "T1087.004"),
            ("iam", "ListAttachedUserPolicies", "us-east-1", {"userName": self.victim.login}, "T1087.004"),
            ("s3", "ListBuckets", "us-east-1", {"Host": "s3.amazonaws.com"}, "T1580"),
            ("ec2", "DescribeInstances", "us-east-1", {"instancesSet": {}, "filterSet": {}}, "T1580"),
            ("ec2", "DescribeInstances", "eu-west-1", {"instancesSet": {}, "filterSet": {}}, "T1580"),
            ("rds", "DescribeDBInstances", "us-east-1", None, "T1580"),
        ]
        for source, name, region, request, technique in calls:
            t += timedelta(seconds=rng.randint(2, 40))
            self.trail(batch, factory.cloudtrail(t, identity, region, source, name, self.ip, agent, request),
                       technique, label_src="User")

    def chain_and_exfiltrate(self, t0: datetime, rng: random.Random, factory: RecordFactory,
                             batch: HourBatch) -> None:
        estate = self.estate
        dev, prod = estate.accounts["dev"], estate.accounts["prod"]
        agent = UA_CLI.format(cmd="sts")
        t = t0 + timedelta(minutes=rng.randint(1, 10))
        session = self.victim.login
        user = factory.iam_user(self.victim)
        records, key = factory.assume_role(t, user, dev.role("etl-dev"), session, self.ip, agent)
        for record in records:
            self.trail(batch, record, "T1548.005", label_src="User")
        hop = factory.role_session(dev.role("etl-dev"), session, t, key)
        self.labels.entity(dev.role("etl-dev").uid, "Role", self.name, t, "T1548.005")
        t += timedelta(seconds=rng.randint(10, 60))
        records, key = factory.assume_role(t, hop, prod.role("data-pipeline"), session, self.ip, agent)
        for record in records:
            self.trail(batch, record, "T1548.005")
        pipeline = factory.role_session(prod.role("data-pipeline"), session, t, key)
        self.labels.entity(prod.role("data-pipeline").uid, "Role", self.name, t, "T1548.005")
        t += timedelta(seconds=rng.randint(5, 30))
        self.trail(batch, factory.cloudtrail(t, pipeline, "us-east-1", "s3", "ListBuckets", self.ip, agent,
                                             {"Host": "s3.amazonaws.com"}), "T1580")
        for n in range(max(25, self.estate.size.people // 4)):
            bucket = self.targets[n % len(self.targets)]
            t = min(t + timedelta(seconds=rng.randint(1, 6)), t0 + timedelta(seconds=3599))
            record = factory.s3_object(t, pipeline, bucket.name, prod.account_id, bucket.region,
                                       f"{t:%Y/%m}/export-{n:05d}.csv.gz", self.ip, agent,
                                       size=rng.randint(5_000_000, 80_000_000))
            self.trail(batch, record, "T1530")
            self.labels.entity(bucket.uid, "Bucket", self.name, t, "T1530")
        # Cross-cloud: the same role federates into GCP and reads buckets the pipeline only writes.
        gcp = estate.gcp
        done = self.behaviour.gcp_federation(t, self.ip, session, rng, factory, batch,
                                             [f"{gcp.project_id}-warehouse", f"{gcp.project_id}-ml-models"],
                                             method="storage.objects.get", count=12)
        sa_uid = uids.gcp_service_account(gcp.federated_sa)
        role_uid = prod.role("data-pipeline").uid
        token_time = t + timedelta(seconds=2)  # gcp_federation writes GenerateAccessToken 2 s after ``t``
        self.labels.edge(role_uid, "ASSUMES_ROLE", sa_uid, token_time, self.name, "T1548.005")
        for when, bucket_name in done:
            bucket_uid = uids.gcp_resource(f"//storage.googleapis.com/projects/_/buckets/{bucket_name}")
            self.labels.edge(sa_uid, "ACCESS", bucket_uid, when, self.name, "T1530")
            self.labels.entity(sa_uid, "Role", self.name, when, "T1530")
            self.labels.entity(bucket_uid, "Bucket", self.name, when, "T1530")


# --- 2. exploit and lateral movement --------------------------------------------------------------


class ExploitLateral(Campaign):
    """Log4Shell-style exploitation of a public VM, then its instance credentials used from outside."""

    name = "exploit-lateral"

    def plan(self) -> None:
        prod = self.estate.accounts["prod"]
        region = prod.regions[0]
        webs = [i for i in prod.instances if i.region == region and i.public_ip and i.role and "-web-" in i.name]
        self.victim = webs[0]
        exploitable = [c for c in self.victim.cves if c in EXPLOITABLE_CVES]
        if not exploitable:
            self.victim.cves = sorted({*self.victim.cves, "CVE-2021-44228"})
            exploitable = ["CVE-2021-44228"]
        self.cve = exploitable[0]
        self.ip = self.ids.public_ip()
        others = [i for i in prod.instances if i.region == region and i is not self.victim and not i.k8s_node
                  and "-app-" in i.name]
        self.lateral = others[:2]
        self.database = next(d for d in prod.databases if d.region == region)
        start = self.hour_frac(0.3)
        self.at(start, self.exploit)
        self.at(start + 1, self.use_credentials)
        self.at(start + 2, self.dump_database)

    def exploit(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        t = t0 + timedelta(minutes=rng.randint(10, 40))
        vm = self.victim
        self.labels.entity(uids.ip(self.ip), "IP", self.name, t, "T1190")
        self.labels.entity(vm.uid, "VM", self.name, t, "T1190")
        self.labels.entity(uids.cve(self.cve), "CVE", self.name, t, "T1190")
        for n in range(3):
            self.flow(batch, vm, self.ip, vm.private_ip, rng.randint(40000, 60000), 443, rng.randint(6, 20),
                      rng.randint(1500, 9000), t + timedelta(seconds=n * 7), "T1190")
        # The reverse shell calls home.
        self.flow(batch, vm, vm.private_ip, self.ip, rng.randint(40000, 60000), 4444, rng.randint(50, 400),
                  rng.randint(20_000, 400_000), t + timedelta(seconds=40), "T1190")

    def use_credentials(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        vm = self.victim
        identity = factory.instance_session(vm, t0 - timedelta(hours=1))
        agent = UA_CLI.format(cmd="ssm")
        t = t0 + timedelta(minutes=rng.randint(1, 15))
        region = vm.region
        for source, name, request, technique in (
            ("sts", "GetCallerIdentity", None, "T1552.005"),
            ("ec2", "DescribeInstances", {"instancesSet": {}, "filterSet": {}}, "T1552.005"),
            ("ssm", "DescribeInstanceInformation", {"maxResults": 50}, "T1552.005"),
            ("rds", "DescribeDBInstances", None, "T1552.005"),
        ):
            t += timedelta(seconds=rng.randint(3, 30))
            self.trail(batch, factory.cloudtrail(t, identity, region, source, name, self.ip, agent, request),
                       technique, label_src="VM")
        t += timedelta(seconds=rng.randint(10, 60))
        command_id = factory.uuid()
        self.trail(batch, factory.cloudtrail(
            t, identity, region, "ssm", "SendCommand", self.ip, agent,
            {"instanceIds": [i.instance_id for i in self.lateral], "documentName": "AWS-RunShellScript",
             "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS", "interactive": False},
            {"command": {"commandId": command_id, "documentName": "AWS-RunShellScript", "status": "Pending",
                         "instanceIds": [i.instance_id for i in self.lateral]}}), "T1651")
        target = self.lateral[-1]
        t += timedelta(seconds=rng.randint(30, 120))
        session_id = f"{vm.instance_id}-{factory.uuid()[:13].replace('-', '')}"
        self.trail(batch, factory.cloudtrail(
            t, identity, region, "ssm", "StartSession", self.ip, agent, {"target": target.instance_id},
            {"sessionId": session_id, "tokenValue": "Value hidden due to security reasons.",
             "streamUrl": f"wss://ssmmessages.{region}.amazonaws.com/v1/data-channel/{session_id}"}), "T1651")
        for other in self.lateral:
            self.labels.entity(other.uid, "VM", self.name, t, "T1651")
            self.flow(batch, vm, vm.private_ip, other.private_ip, rng.randint(40000, 60000), 22,
                      rng.randint(40, 900), rng.randint(10_000, 900_000), t + timedelta(seconds=rng.randint(1, 60)),
                      "T1021.004")

    def dump_database(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        vm, db = self.victim, self.database
        identity = factory.instance_session(vm, t0 - timedelta(hours=2))
        agent = UA_CLI.format(cmd="rds")
        t = t0 + timedelta(minutes=rng.randint(1, 20))
        snapshot = f"{db.identifier}-maint-{t:%Y%m%d}"
        self.trail(batch, factory.cloudtrail(
            t, identity, db.region, "rds", "CreateDBSnapshot", self.ip, agent,
            {"dBSnapshotIdentifier": snapshot, "dBInstanceIdentifier": db.identifier},
            {"dBSnapshotIdentifier": snapshot, "dBInstanceIdentifier": db.identifier, "status": "creating",
             "engine": db.engine, "snapshotType": "manual"}), "T1578.001")
        self.labels.entity(db.uid, "Database", self.name, t, "T1578.001")
        t += timedelta(minutes=rng.randint(8, 20))
        self.trail(batch, factory.cloudtrail(
            t, identity, db.region, "rds", "ModifyDBSnapshotAttribute", self.ip, agent,
            {"dBSnapshotIdentifier": snapshot, "attributeName": "restore",
             "valuesToAdd": [self.estate.attacker_account_id]},
            {"dBSnapshotIdentifier": snapshot, "dBSnapshotAttributes": [
                {"attributeName": "restore", "attributeValues": [self.estate.attacker_account_id]}]}), "T1537")
        port = 3306 if db.engine == "mysql" else 5432
        self.flow(batch, vm, vm.private_ip, db.private_ip, rng.randint(40000, 60000), port, rng.randint(5000, 20000),
                  rng.randint(50_000_000, 400_000_000), t - timedelta(minutes=5), "T1537")


# --- 3. crypto-mining ------------------------------------------------------------------------------------


class CryptoMining(Campaign):
    """The CI key is abused to start GPU instances in regions the estate never uses."""

    name = "cryptomining"
    REGIONS = ("ap-southeast-1", "sa-east-1", "ap-northeast-2")

    def plan(self) -> None:
        self.ip = self.ids.public_ip()
        self.at(self.hour_frac(0.7), self.mine)

    def mine(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        estate = self.estate
        dev = estate.accounts["dev"]
        ci = estate.ci_user
        role = dev.role("ci-deploy")
        t = t0 + timedelta(minutes=rng.randint(0, 20))
        agent = UA_BOTO
        self.labels.entity(uids.ip(self.ip), "IP", self.name, t, "T1078.004")
        records, key = factory.assume_role(t, factory.iam_user(ci), role, f"gha-{rng.randrange(10**9)}", self.ip,
                                           agent)
        for record in records:
            self.trail(batch, record, "T1078.004", label_src="User")
        identity = factory.role_session(role, str(records[0]["requestParameters"]["roleSessionName"]), t, key)
        self.labels.entity(role.uid, "Role", self.name, t, "T1578.002")
        for region in self.REGIONS:
            t += timedelta(seconds=rng.randint(20, 90))
            self.trail(batch, factory.cloudtrail(t, identity, region, "ec2", "DescribeInstanceTypeOfferings",
                                                 self.ip, agent, {"locationType": "region"}), "T1535")
            for itype in (("p3.16xlarge", "g4dn.12xlarge", "p3.8xlarge")[self.REGIONS.index(region)],):
                t += timedelta(seconds=rng.randint(5, 30))
                record, new_ids = run_instances(factory, t, identity, dev, region, itype, 2, self.ip, agent, self.ids)
                self.trail(batch, record, "T1496")
                for instance_id in new_ids:
                    self.labels.entity(uids.aws_ec2_instance(region, dev.account_id, instance_id), "VM", self.name,
                                       t, "T1496")


# --- 4. insider ------------------------------------------------------------------------------------------


class Insider(Campaign):
    """A leaving analyst bulk-downloads buckets they rarely touch, late at night, before access is removed."""

    name = "insider"

    def plan(self) -> None:
        estate = self.estate
        prod = estate.accounts["prod"]
        analysts = [p for p in estate.people if p.account_id == prod.account_id and p.joins_hour is None]
        self.person = analysts[-1]
        leaves = estate.hours - 2
        self.person.leaves_hour = leaves
        nights = [h for h in range(leaves) if (h + self.person.tz) % 24 in (22, 23, 0, 1)]
        by_night: dict[int, list[int]] = {}
        for h in nights:
            by_night.setdefault((h + self.person.tz + 2) // 24, []).append(h)
        chosen = list(by_night.values())[-3:] if estate.hours > 48 else list(by_night.values())[:1]
        self.nights = [h for night in chosen for h in night[1:3]]
        self.targets = [b for b in prod.buckets if b.name not in self.person.buckets and b.sensitive][:4]
        for h in self.nights:
            self.at(h, self.download)
        self.at(leaves, self.offboard)

    def download(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        person = self.person
        identity = factory.iam_user(person)
        agent = UA_CLI.format(cmd="s3.cp")
        t = t0 + timedelta(minutes=rng.randint(0, 10))
        self.trail(batch, factory.cloudtrail(t, identity, "us-east-1", "s3", "ListBuckets", person.home_ip, agent,
                                             {"Host": "s3.amazonaws.com"}), "T1078.004", label_src="User")
        for n in range(rng.randint(30, 60)):
            bucket = self.targets[n % len(self.targets)]
            t = min(t + timedelta(seconds=rng.randint(1, 30)), t0 + timedelta(seconds=3599))
            self.trail(batch, factory.s3_object(t, identity, bucket.name, bucket.account_id, bucket.region,
                                                f"customers/{rng.randrange(1 << 24):06x}.csv", person.home_ip, agent,
                                                size=rng.randint(200_000, 20_000_000)), "T1530")
            self.labels.entity(bucket.uid, "Bucket", self.name, t, "T1530")

    def offboard(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        """HR's ticket lands: an admin removes the user (benign, unlabelled)."""
        estate = self.estate
        admin = self.behaviour.admins[0]
        prod = estate.accounts["prod"]
        t = t0 + timedelta(minutes=5)
        user = factory.iam_user(admin, console_since=t)
        records, key = factory.assume_role(t, user, prod.role("Admin"), admin.login, admin.office_ip, UA_CONSOLE)
        for record in records:
            batch.add_trail(record)
        identity = factory.role_session(prod.role("Admin"), admin.login, t, key, mfa=True)
        for name, request in (
            ("DeleteLoginProfile", {"userName": self.person.login}),
            ("DeleteAccessKey", {"userName": self.person.login, "accessKeyId": self.person.access_key}),
            ("RemoveUserFromGroup", {"groupName": self.person.groups[0], "userName": self.person.login}),
            ("DeleteUser", {"userName": self.person.login}),
        ):
            t += timedelta(seconds=rng.randint(10, 60))
            batch.add_trail(factory.cloudtrail(t, identity, "us-east-1", "iam", name, admin.office_ip, UA_CONSOLE,
                                               request))


# --- 5. persistence ------------------------------------------------------------------------------------


class Persistence(Campaign):
    """A hijacked engineer session plants a function behind an API gateway and backdoors a role's trust."""

    name = "persistence"

    def plan(self) -> None:
        estate = self.estate
        prod = estate.accounts["prod"]
        engineers = [p for p in estate.people if prod.role("Admin") in p.assumable and p.joins_hour is None]
        self.person = engineers[0]
        self.ip = self.ids.public_ip()
        self.ip2 = self.ids.public_ip()
        self.backdoor = prod.role("ci-deploy")
        self.api_id = self.ids.hex(10)
        start = self.hour_frac(0.4)
        self.at(start, self.implant)
        self.at(start + 3, self.use_backdoor)
        if estate.hours > 24:
            self.at(start + 26, self.use_backdoor)

    def implant(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        estate = self.estate
        prod = estate.accounts["prod"]
        t = t0 + timedelta(minutes=rng.randint(0, 15))
        user = factory.iam_user(self.person, console_since=t)
        self.labels.entity(uids.ip(self.ip), "IP", self.name, t, "T1078.004")
        records, key = factory.assume_role(t, user, prod.role("Admin"), self.person.login, self.ip, UA_CONSOLE)
        for record in records:
            self.trail(batch, record, "T1078.004", label_src="User")
        identity = factory.role_session(prod.role("Admin"), self.person.login, t, key, mfa=True)
        fn_role = next(r for r in prod.roles if r.kind == "lambda")
        region = prod.regions[0]
        sub = HourBatch()
        records = wire_function(factory, sub, t + timedelta(minutes=2), identity, prod, region, "log-forwarder-sync",
                                fn_role, self.ip, UA_CONSOLE, self.api_id, rng)
        for record in records:
            technique = "T1648" if record["eventSource"].startswith("lambda") else "T1546"
            self.trail(batch, record, technique)
        last = datetime.fromisoformat(records[-1]["eventTime"].replace("Z", "+00:00"))
        self.labels.entity(uids.aws_lambda(region, prod.account_id, "log-forwarder-sync"), "Function", self.name,
                           last, "T1648")
        self.labels.entity(f"arn:aws:apigateway:{region}::/restapis/{self.api_id}", "Gateway", self.name, last,
                           "T1546")
        t = last + timedelta(minutes=rng.randint(2, 9))
        attacker_root = f"arn:aws:iam::{estate.attacker_account_id}:root"
        document = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":['
                    f'"arn:aws:iam::{estate.accounts["security"].account_id}:root","{attacker_root}"]}},'
                    '"Action":"sts:AssumeRole"}]}')
        self.trail(batch, factory.cloudtrail(t, identity, "us-east-1", "iam", "UpdateAssumeRolePolicy", self.ip,
                                             UA_CONSOLE, {"roleName": self.backdoor.name, "policyDocument": document}),
                   "T1098")
        self.labels.entity(self.backdoor.uid, "Role", self.name, t, "T1098")

    def use_backdoor(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        estate = self.estate
        prod = estate.accounts["prod"]
        t = t0 + timedelta(minutes=rng.randint(0, 30))
        caller = factory.aws_account(estate.attacker_account_id, "AIDA" + self.ids.upper(17))
        self.labels.entity(uids.aws_account(estate.attacker_account_id), "CloudAccount", self.name, t, "T1199")
        self.labels.entity(uids.ip(self.ip2), "IP", self.name, t, "T1199")
        session = "aws-go-sdk-" + str(rng.randrange(10**12))
        records, key = factory.assume_role(t, caller, self.backdoor, session, self.ip2, UA_BOTO)
        for record in records:
            self.trail(batch, record, "T1199")
        identity = factory.role_session(self.backdoor, session, t, key)
        t += timedelta(seconds=rng.randint(5, 40))
        self.trail(batch, factory.cloudtrail(t, identity, "us-east-1", "s3", "ListBuckets", self.ip2, UA_BOTO,
                                             {"Host": "s3.amazonaws.com"}), "T1199")
        backups = [b for b in prod.buckets if "backups" in b.name] or prod.buckets
        for n in range(rng.randint(6, 12)):
            bucket = backups[0]
            t += timedelta(seconds=rng.randint(1, 10))
            self.trail(batch, factory.s3_object(t, identity, bucket.name, prod.account_id, bucket.region,
                                                f"db/{n:04d}.dump", self.ip2, UA_BOTO,
                                                size=rng.randint(10_000_000, 90_000_000)), "T1199")
            self.labels.entity(bucket.uid, "Bucket", self.name, t, "T1199")


# --- 6. privilege escalation ---------------------------------------------------------------------------


class PrivilegeEscalation(Campaign):
    """A developer grants themselves IAM rights through an inline policy, then uses them."""

    name = "privesc"

    # Like Insider.plan, each campaign picks its actor from one account's people: the choice differs in
    # detail (who, which account, fallback), so it stays written out where the campaign is read.
    def plan(self) -> None:
        estate = self.estate
        dev = estate.accounts["dev"]
        devs = [p for p in estate.people if p.account_id == dev.account_id and p.joins_hour is None]
        self.person = devs[-1] if len(devs) > 1 else estate.people[1]
        others = [p for p in estate.people if p.account_id == self.person.account_id and p is not self.person]
        self.other = others[-1]
        start = self.hour_frac(0.6)
        while not self.behaviour.is_working(self.person, estate.start + timedelta(hours=start)) and start > 0:
            start -= 1
        self.at(start, self.escalate)

    def escalate(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        person = self.person
        identity = factory.iam_user(person)
        ip = person.office_ip
        agent = UA_CLI.format(cmd="iam")
        t = t0 + timedelta(minutes=rng.randint(0, 15))
        document = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:*","s3:*",'
                    '"secretsmanager:GetSecretValue"],"Resource":"*"}]}')
        self.trail(batch, factory.cloudtrail(t, identity, "us-east-1", "iam", "PutUserPolicy", ip, agent,
                                             {"userName": person.login, "policyName": "dev-tools-access",
                                              "policyDocument": document}), "T1098.003", label_src="User")
        steps: list[tuple[str, str, dict[str, Any] | None, str]] = [
            ("iam", "ListUsers", None, "T1087.004"),
            ("iam", "AttachUserPolicy", {"userName": person.login,
                                         "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, "T1098.003"),
            ("iam", "CreateAccessKey", {"userName": self.other.login}, "T1098.001"),
            ("secretsmanager", "ListSecrets", None, "T1087.004"),
        ]
        for source, name, request, technique in steps:
            t += timedelta(seconds=rng.randint(10, 90))
            region = "us-east-1"
            response = None
            if name == "CreateAccessKey":
                response = {"accessKey": {"userName": self.other.login, "accessKeyId": factory.key_id("AKIA"),
                                          "status": "Active", "createDate": t.strftime("%b %-d, %Y, %-I:%M:%S %p")}}
            self.trail(batch, factory.cloudtrail(t, identity, region, source, name, ip, agent, request, response),
                       technique)
        self.labels.entity(self.other.uid, "User", self.name, t, "T1098.001")
        dev = self.estate.accounts["dev"]
        backups = [b for b in dev.buckets if b.sensitive and b.name not in person.buckets] or dev.buckets
        for n in range(8):
            t += timedelta(seconds=rng.randint(2, 20))
            bucket = backups[n % len(backups)]
            self.trail(batch, factory.s3_object(t, identity, bucket.name, dev.account_id, bucket.region,
                                                f"snapshots/{n:03d}.tar.gz", ip, agent,
                                                size=rng.randint(1_000_000, 30_000_000)), "T1530")
            self.labels.entity(bucket.uid, "Bucket", self.name, t, "T1530")


CAMPAIGN_CLASSES: dict[str, type[Campaign]] = {
    "stolen-key": StolenKey,
    "exploit-lateral": ExploitLateral,
    "cryptomining": CryptoMining,
    "insider": Insider,
    "persistence": Persistence,
    "privesc": PrivilegeEscalation,
}


def plan_campaigns(estate: Estate, behaviour: BenignBehaviour, names: list[str], labels: Labels) -> list[Campaign]:
    """Instantiate and schedule the named campaigns (may adjust the estate, e.g. add a CVE)."""
    campaigns = []
    for name in names:
        cls = CAMPAIGN_CLASSES[name]
        campaign = cls(estate, behaviour, labels, random.Random(f"campaign:{estate.seed}:{name}"))
        campaign.plan()
        campaigns.append(campaign)
    return campaigns


# The api_ip and ec2_state_change helpers are re-exported for campaign authors.
__all__ = ["CAMPAIGNS", "CAMPAIGN_CLASSES", "TECHNIQUES", "Labels", "api_ip", "ec2_state_change", "plan_campaigns"]
