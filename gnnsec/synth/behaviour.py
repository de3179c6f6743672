"""Benign activity with the texture of a real estate, generated one hour at a time.

People work in their own time zones, on-call engineers act at night, CI and batch jobs run on
schedules, service roles poll the same APIs every few minutes, a partner polls a monitoring
role, new hires and a new service appear mid-period and admins change IAM now and then.  Some
of it (night-time batch jobs, cross-account and cross-cloud pipelines, SSM sessions, new
functions behind API gateways, IAM policy edits) deliberately looks like the attacks, so naive
rules raise false positives on benign data.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any, cast

from gnnsec.synth.estate import Account, Estate, Ids, Instance, Person, Role
from gnnsec.synth.records import (
    UA_BOTO,
    UA_CLI,
    UA_CONSOLE,
    UA_SDK_JAVA,
    UA_TERRAFORM,
    HourBatch,
    Identity,
    RecordFactory,
    flow_line,
    gcp_entry,
    iso,
    iso_micro,
    k8s_event,
)

AWS_ENDPOINT_IPS = ("52.216.8.61", "3.5.0.17", "54.231.134.98", "52.94.236.248", "18.34.232.10")
"""Addresses of AWS public endpoints (S3, STS, SSM) that hosts talk to through the NAT."""

COUNTRY_CITY = {"US": ("New York", "NY"), "GB": ("London", "England"), "DE": ("Berlin", "Berlin"),
                "IN": ("Bengaluru", "Karnataka"), "FR": ("Paris", "Ile-de-France")}


def api_ip(estate: Estate, instance: Instance) -> str:
    """What CloudTrail records as sourceIPAddress for calls made from ``instance``."""
    if instance.public_ip:
        return instance.public_ip
    return estate.account_by_id(instance.account_id).vpc(instance.region).nat_ip


def second_in_hour(rng: random.Random, t0: datetime) -> datetime:
    return t0 + timedelta(seconds=rng.randrange(3600))


class BenignBehaviour:
    """Generates the benign events of one hour into a :class:`HourBatch`."""

    def __init__(self, estate: Estate) -> None:
        self.estate = estate
        assign = random.Random(f"assign:{estate.seed}")
        self.ids = Ids(random.Random(f"benign-ids:{estate.seed}"))
        self.role_hosts = [i for i in estate.all_instances() if i.role is not None]
        self.region_buckets: dict[tuple[str, str], list[str]] = {}
        for account in estate.accounts.values():
            for bucket in account.buckets:
                self.region_buckets.setdefault((account.account_id, bucket.region), []).append(bucket.name)
        self.host_bucket: dict[str, str | None] = {}
        for host in self.role_hosts:
            names = self.region_buckets.get((host.account_id, host.region), [])
            non_sensitive = [n for n in names if not any(k in n for k in ("exports", "backups", "invoices"))]
            self.host_bucket[host.instance_id] = assign.choice(non_sensitive) if non_sensitive else None
        prod, dev = estate.accounts["prod"], estate.accounts["dev"]
        for person in estate.people:
            if person.team == "data":
                pool = [b.name for b in prod.buckets if "exports" not in b.name]
            elif person.account_id == dev.account_id or person.team in ("backend", "frontend"):
                pool = [b.name for b in dev.buckets]
            else:
                pool = [b.name for b in prod.buckets + dev.buckets if not b.sensitive]
            person.buckets = sorted(assign.sample(pool, min(3, len(pool))))
        self.admins = [p for p in estate.people if "admins" in p.groups] or \
            [p for p in estate.people if p.team == "security"][:1]
        self.partner_ips = [self.ids.public_ip() for _ in range(2)]
        self.lambda_ips = {f.name: self.ids.public_ip() for a in estate.accounts.values() for f in a.functions}
        self.scheduler_ip = self.ids.public_ip()
        self.scanners = [self.ids.public_ip() for _ in range(estate.size.internet_clients_per_hour * 30)]
        """Internet background noise (SSH scanners); a bounded pool so node counts track the size."""
        self.runners: dict[int, list[tuple[str, str]]] = {}
        self.region_hosts: dict[tuple[str, str], list[Instance]] = {}
        for host in estate.all_instances():
            self.region_hosts.setdefault((host.account_id, host.region), []).append(host)
        self.new_service_hour = (estate.hours * 2) // 5 + 14 - ((estate.hours * 2) // 5) % 24
        self.partner_external_id = "".join(
            # The Condition block's shape is the one estate._trust_accounts writes.
            str(cast(dict[str, dict[str, str]], c.get("Condition", {})).get("StringEquals", {})
                .get("sts:ExternalId", ""))
            for c in prod.role("partner-monitoring").trust
        )

    # -- the hour -------------------------------------------------------------------------------

    def hour(self, h: int, batch: HourBatch) -> None:
        estate = self.estate
        rng = random.Random(f"benign:{estate.seed}:{h}")
        factory = RecordFactory(rng)
        t0 = estate.start + timedelta(hours=h)
        for person in estate.people:
            self._person(h, t0, person, rng, factory, batch)
        self._service_roles(t0, rng, factory, batch)
        self._functions(t0, rng, factory, batch)
        self._partner(t0, rng, factory, batch)
        self._ci(h, t0, rng, factory, batch)
        self._batch_jobs(t0, rng, factory, batch)
        self._pipeline(t0, rng, factory, batch)
        self._admin(h, t0, rng, factory, batch)
        if h == self.new_service_hour:
            self._new_service(t0, rng, factory, batch)
        self._flows(t0, rng, batch)
        self._kubernetes(t0, rng, factory, batch)
        self._azure(t0, rng, factory, batch)
        self._gcp(t0, rng, factory, batch)

    # -- people ---------------------------------------------------------------------------------

    def is_working(self, person: Person, t: datetime) -> bool:
        local = t + timedelta(hours=person.tz)
        return local.weekday() < 5 and person.start_hour <= local.hour < person.end_hour

    def active(self, h: int, person: Person) -> bool:
        if person.joins_hour is not None and h < person.joins_hour:
            return False
        return person.leaves_hour is None or h < person.leaves_hour

    def _person(self, h: int, t0: datetime, person: Person, rng: random.Random, factory: RecordFactory,
                batch: HourBatch) -> None:
        if not self.active(h, person):
            return
        working = self.is_working(person, t0)
        chance = 0.55 if working else (0.12 if person.oncall else 0.012)
        if rng.random() >= chance:
            return
        roll = rng.random()
        if roll < 0.01:
            ip = self.ids.public_ip()  # travelling: a first-time address
        elif roll < 0.12:
            ip = rng.choice(self.estate.vpn_ips)
        else:
            ip = person.office_ip if working else person.home_ip
        console = rng.random() < 0.45
        agent = UA_CONSOLE if console else rng.choice((UA_CLI.format(cmd="s3"), UA_BOTO, UA_TERRAFORM))
        t = second_in_hour(rng, t0)
        user = factory.iam_user(person, console_since=t if console else None)
        identity: Identity = user
        account = self.estate.account_by_id(person.account_id)
        if person.assumable and (person.account_id == self.estate.accounts["security"].account_id
                                 or rng.random() < 0.2):
            role = rng.choice(person.assumable)
            records, key = factory.assume_role(t, user, role, person.login, ip, agent)
            for record in records:
                batch.add_trail(record)
            identity = factory.role_session(role, person.login, t, key, mfa=True)
            account = self.estate.account_by_id(role.account_id)
        write = identity is user or any(n in identity.block["arn"] for n in ("/Admin/", "/Developer/"))
        for _ in range(rng.randint(2, 9)):
            t = min(t + timedelta(seconds=rng.randint(5, 300)), t0 + timedelta(seconds=3599))
            self.person_call(t, person, identity, account, ip, agent, write, rng, factory, batch)

    def person_call(self, t: datetime, person: Person, identity: Identity, account: Account, ip: str, agent: str,
                    write: bool, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        """One everyday API call of a person, drawn from their team's vocabulary."""
        region = rng.choice(account.regions)
        instances = self.region_hosts.get((account.account_id, region), [])
        choice = rng.random()
        own_buckets = [b for b in account.buckets if b.name in person.buckets]
        if choice < 0.3 and own_buckets:
            bucket = rng.choice(own_buckets)
            key = f"{person.team}/{t:%Y/%m/%d}/part-{rng.randrange(10000):05d}.parquet"
            batch.add_trail(factory.s3_object(t, identity, bucket.name, bucket.account_id, bucket.region, key, ip,
                                              agent, write=write and rng.random() < 0.3,
                                              size=rng.randint(2_000, 4_000_000)))
            return
        if choice < 0.45:
            batch.add_trail(factory.cloudtrail(t, identity, region, "ec2", "DescribeInstances", ip, agent,
                                               {"instancesSet": {}, "filterSet": {}}))
            return
        if choice < 0.52:
            batch.add_trail(factory.cloudtrail(t, identity, "us-east-1", "s3", "ListBuckets", ip, agent,
                                               {"Host": "s3.amazonaws.com"}))
            return
        if choice < 0.58:
            batch.add_trail(factory.cloudtrail(t, identity, region, "lambda", "ListFunctions20150331", ip, agent,
                                               None))
            return
        if choice < 0.63:
            batch.add_trail(factory.cloudtrail(t, identity, region, "rds", "DescribeDBInstances", ip, agent, None))
            return
        if choice < 0.68:
            batch.add_trail(factory.cloudtrail(t, identity, "us-east-1", "sts", "GetCallerIdentity", ip, agent,
                                               None))
            return
        if choice < 0.72 and person.team == "security":
            name = rng.choice(("ListRoles", "ListUsers", "GetAccountAuthorizationDetails", "ListPolicies"))
            batch.add_trail(factory.cloudtrail(t, identity, "us-east-1", "iam", name, ip, agent, None))
            return
        if choice < 0.78 and account.functions:
            fn = rng.choice(account.functions)
            name = "UpdateFunctionConfiguration20150331v2" if write and rng.random() < 0.2 else \
                "GetFunction20150331v2"
            batch.add_trail(factory.cloudtrail(t, identity, fn.region, "lambda", name, ip, agent,
                                               {"functionName": fn.name}))
            return
        if choice < 0.84 and instances and write and person.team in ("sre", "platform", "backend"):
            host = rng.choice(instances)
            if rng.random() < 0.5:
                session_id = f"{person.login}-{factory.uuid()[:17].replace('-', '')}"
                batch.add_trail(factory.cloudtrail(
                    t, identity, region, "ssm", "StartSession", ip, agent, {"target": host.instance_id},
                    {"sessionId": session_id, "tokenValue": "Value hidden due to security reasons.",
                     "streamUrl": f"wss://ssmmessages.{region}.amazonaws.com/v1/data-channel/{session_id}"}))
            else:
                name = rng.choice(("RebootInstances", "StopInstances", "StartInstances"))
                batch.add_trail(ec2_state_change(factory, t, identity, region, name, [host.instance_id], ip, agent))
            return
        if choice < 0.9 and account.clusters:
            cluster = account.clusters[0]
            batch.add_trail(factory.cloudtrail(t, identity, cluster.region, "eks", "DescribeCluster", ip, agent,
                                               {"name": cluster.name}))
            return
        batch.add_trail(factory.cloudtrail(t, identity, region, "ec2", "DescribeSecurityGroups", ip, agent,
                                           {"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}}))

    # -- machines -------------------------------------------------------------------------------

    def _service_roles(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        period = self.estate.size.service_call_period_min
        since = t0 - timedelta(hours=t0.hour % 6)
        for host in self.role_hosts:
            identity = factory.instance_session(host, since)
            ip = api_ip(self.estate, host)
            bucket = self.host_bucket[host.instance_id]
            offset = rng.randrange(period * 60)
            for start in range(offset, 3600, period * 60):
                t = t0 + timedelta(seconds=start)
                if host.k8s_node:
                    name = rng.choice(("GetAuthorizationToken", "DescribeInstances"))
                    source = "ecr" if name.startswith("GetAuth") else "ec2"
                    batch.add_trail(factory.cloudtrail(t, identity, host.region, source, name, ip, UA_SDK_JAVA,
                                                       {"instancesSet": {}, "filterSet": {}} if source == "ec2"
                                                       else {"registryIds": []}))
                elif bucket and rng.random() < 0.7:
                    key = f"{host.service}/{t:%Y%m%d}/{rng.randrange(1 << 30):08x}.json"
                    batch.add_trail(factory.s3_object(t, identity, bucket, host.account_id, host.region, key, ip,
                                                      UA_BOTO, write=rng.random() < 0.3,
                                                      size=rng.randint(500, 90_000)))
                elif rng.random() < 0.5:
                    batch.add_trail(factory.cloudtrail(t, identity, host.region, "ssm", "GetParameter", ip, UA_BOTO,
                                                       {"name": f"/{host.service}/db-url", "withDecryption": True}))
                else:
                    batch.add_trail(factory.cloudtrail(
                        t, identity, host.region, "kms", "Decrypt", ip, UA_BOTO,
                        {"encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                         "encryptionContext": {"aws:s3:arn": f"arn:aws:s3:::{bucket or host.service}"}}))

    def _functions(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        for account in self.estate.accounts.values():
            buckets = self.region_buckets.get((account.account_id, account.regions[0]), [])
            for fn in account.functions:
                if rng.random() > 0.6 or not buckets:
                    continue
                identity = factory.role_session(fn.role, fn.name, t0, factory.key_id("ASIA"))
                bucket = buckets[hash_index(fn.name, len(buckets))]
                for _ in range(rng.randint(1, 4)):
                    t = second_in_hour(rng, t0)
                    key = f"incoming/{rng.randrange(1 << 30):08x}.csv"
                    batch.add_trail(factory.s3_object(t, identity, bucket, account.account_id, fn.region, key,
                                                      self.lambda_ips[fn.name], UA_BOTO,
                                                      size=rng.randint(100, 50_000)))

    def _partner(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        """A monitoring vendor assumes a role in prod every 15 minutes and describes everything."""
        prod = self.estate.accounts["prod"]
        role = prod.role("partner-monitoring")
        caller = factory.aws_account(self.estate.partner_account_id, "AIDA" + "PARTNERINTEGRATION"[:17])
        for quarter in range(4):
            t = t0 + timedelta(minutes=15 * quarter, seconds=rng.randrange(60))
            ip = rng.choice(self.partner_ips)
            agent = "Datadog/1.0 Boto3/1.34.0 Python/3.11"
            records, key = factory.assume_role(t, caller, role, "DatadogAWSIntegration", ip, agent,
                                               external_id=self.partner_external_id)
            for record in records:
                batch.add_trail(record)
            identity = factory.role_session(role, "DatadogAWSIntegration", t, key)
            for region in prod.regions:
                for name, source, request in (("DescribeInstances", "ec2", {"instancesSet": {}, "filterSet": {}}),
                                              ("DescribeDBInstances", "rds", None),
                                              ("ListFunctions20150331", "lambda", None)):
                    t = t + timedelta(seconds=rng.randint(1, 4))
                    batch.add_trail(factory.cloudtrail(t, identity, region, source, name, ip, agent, request))

    def _ci(self, h: int, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        estate = self.estate
        for instance_id, region in self.runners.pop(h, []):
            dev = estate.accounts["dev"]
            role = dev.role("ci-deploy")
            t = second_in_hour(rng, t0)
            identity = factory.role_session(role, f"gha-{rng.randrange(10**9)}", t, factory.key_id("ASIA"))
            batch.add_trail(ec2_state_change(factory, t, identity, region, "TerminateInstances", [instance_id],
                                             estate.ci_user.office_ip, UA_TERRAFORM))
        nightly = t0.hour == 2
        if not nightly and not (t0.weekday() < 5 and 8 <= t0.hour < 18 and rng.random() < 0.5):
            return
        ci = estate.ci_user
        for account in (estate.accounts["dev"], estate.accounts["prod"]):
            if account.name == "prod" and rng.random() < 0.5 and not nightly:
                continue
            t = second_in_hour(rng, t0)
            user = factory.iam_user(ci)
            role = account.role("ci-deploy")
            session = f"gha-{rng.randrange(10**9)}"
            records, key = factory.assume_role(t, user, role, session, ci.office_ip, UA_BOTO)
            for record in records:
                batch.add_trail(record)
            identity = factory.role_session(role, session, t, key)
            if account.functions:
                fn = rng.choice(account.functions)
                t += timedelta(seconds=rng.randint(20, 90))
                batch.add_trail(factory.cloudtrail(t, identity, fn.region, "lambda", "UpdateFunctionCode20150331v2",
                                                   ci.office_ip, UA_TERRAFORM,
                                                   {"functionName": fn.name, "publish": True}))
            artifacts = next((b for b in account.buckets if "artifacts" in b.name), None)
            if artifacts is not None:
                t += timedelta(seconds=rng.randint(5, 30))
                batch.add_trail(factory.s3_object(t, identity, artifacts.name, account.account_id, artifacts.region,
                                                  f"builds/{session}/bundle.zip", ci.office_ip, UA_BOTO, write=True,
                                                  size=rng.randint(1_000_000, 40_000_000)))
            if account.name == "dev" and rng.random() < 0.3:
                region = account.regions[0]
                t += timedelta(seconds=rng.randint(5, 30))
                record, new_ids = run_instances(factory, t, identity, account, region, "t3.large", 1,
                                                ci.office_ip, UA_TERRAFORM, self.ids)
                batch.add_trail(record)
                self.runners.setdefault(h + 1, []).extend((i, region) for i in new_ids)

    def _batch_jobs(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        """Nightly batch: workers start at 01:00 UTC and stop at 04:00 UTC."""
        if t0.hour not in (1, 4):
            return
        name = "StartInstances" if t0.hour == 1 else "StopInstances"
        for account in (self.estate.accounts["prod"], self.estate.accounts["dev"]):
            role = account.role("batch-runner")
            identity = factory.role_session(role, "nightly-batch", t0, factory.key_id("ASIA"))
            for region in account.regions:
                workers = [i.instance_id for i in account.instances if i.region == region and "-worker-" in i.name]
                if workers:
                    t = t0 + timedelta(seconds=rng.randint(0, 120))
                    batch.add_trail(ec2_state_change(factory, t, identity, region, name, workers[:20],
                                                     self.scheduler_ip, UA_BOTO))

    def _pipeline(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        """The nightly ETL chain: dev host → etl-dev → prod data-pipeline → S3 → GCP (federation)."""
        if t0.hour != 2:
            return
        estate = self.estate
        dev, prod = estate.accounts["dev"], estate.accounts["prod"]
        host = next(i for i in dev.instances if i.role is not None and not i.k8s_node)
        t = t0 + timedelta(minutes=30, seconds=rng.randrange(60))
        ip = api_ip(estate, host)
        first = factory.instance_session(host, t0)
        records, key = factory.assume_role(t, first, dev.role("etl-dev"), "etl-nightly", ip, UA_BOTO)
        for record in records:
            batch.add_trail(record)
        second = factory.role_session(dev.role("etl-dev"), "etl-nightly", t, key)
        t += timedelta(seconds=3)
        records, key = factory.assume_role(t, second, prod.role("data-pipeline"), "etl-nightly", ip, UA_BOTO)
        for record in records:
            batch.add_trail(record)
        pipeline = factory.role_session(prod.role("data-pipeline"), "etl-nightly", t, key)
        sources = [b for b in prod.buckets if "raw" in b.name or "exports" in b.name]
        for n in range(rng.randint(10, 25)):
            bucket = sources[n % len(sources)]
            t += timedelta(seconds=rng.randint(1, 20))
            batch.add_trail(factory.s3_object(t, pipeline, bucket.name, prod.account_id, bucket.region,
                                              f"daily/{t0:%Y-%m-%d}/part-{n:04d}.parquet", ip, UA_BOTO,
                                              size=rng.randint(1_000_000, 60_000_000)))
        self.gcp_federation(t, ip, "etl-nightly", rng, factory, batch,
                            [f"{estate.gcp.project_id}-exports", f"{estate.gcp.project_id}-warehouse"],
                            method="storage.objects.create", count=rng.randint(3, 8))

    def gcp_federation(self, t: datetime, ip: str, session: str, rng: random.Random, factory: RecordFactory,
                       batch: HourBatch, buckets: list[str], method: str, count: int) -> list[tuple[datetime, str]]:
        """AWS data-pipeline session → workload identity federation → GCS; returns (time, bucket) of each call."""
        gcp = self.estate.gcp
        role = gcp.federated_aws_role
        assert role is not None
        subject = (f"principal://iam.googleapis.com/projects/{gcp.project_number}/locations/global/"
                   f"workloadIdentityPools/{gcp.pool}/subject/arn:aws:sts::{role.account_id}:assumed-role/"
                   f"{role.name}/{session}")
        sa_resource = f"projects/-/serviceAccounts/{gcp.federated_sa}"
        t += timedelta(seconds=2)
        token = gcp_entry(factory, t, gcp.project_id, "", "GenerateAccessToken", "iamcredentials.googleapis.com",
                          sa_resource, "service_account", {"email_id": gcp.federated_sa}, ip,
                          "google-cloud-sdk gcloud/468.0.0 command/gcloud.auth.print-access-token",
                          "iam.serviceAccounts.getAccessToken", log="data_access", principal_subject=subject)
        token["protoPayload"]["request"] = {
            "@type": "type.googleapis.com/google.iam.credentials.v1.GenerateAccessTokenRequest",
            "name": sa_resource,
        }
        batch.gcp_audit.append(token)
        done = []
        for n in range(count):
            bucket = buckets[n % len(buckets)]
            t += timedelta(seconds=rng.randint(1, 15))
            obj = f"projects/_/buckets/{bucket}/objects/aws/{t:%Y%m%d}/part-{n:04d}.parquet"
            permission = "storage.objects.create" if method.endswith("create") else "storage.objects.get"
            entry = gcp_entry(factory, t, gcp.project_id, gcp.federated_sa, method, "storage.googleapis.com", obj,
                              "gcs_bucket", {"bucket_name": bucket, "location": "us"}, ip,
                              "gcloud-python/2.16.0 gl-python/3.11.8 grpc/1.62.1 gax/2.17.1",
                              permission, log="data_access",
                              delegation=[{"principalSubject": subject}])
            batch.gcp_audit.append(entry)
            done.append((t, bucket))
        return done

    def _admin(self, h: int, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        estate = self.estate
        if not self.admins:
            return
        admin = self.admins[h % len(self.admins)]
        for person in estate.people:
            if person.joins_hour is not None and person.joins_hour - 1 == h:
                self._onboard(t0, admin, person, rng, factory, batch)
        if not (self.is_working(admin, t0) and rng.random() < 0.08):
            return
        t = second_in_hour(rng, t0)
        prod = estate.accounts["prod"]
        user = factory.iam_user(admin, console_since=t)
        records, key = factory.assume_role(t, user, prod.role("Admin"), admin.login, admin.office_ip, UA_CONSOLE)
        for record in records:
            batch.add_trail(record)
        identity = factory.role_session(prod.role("Admin"), admin.login, t, key, mfa=True)
        role = rng.choice([r for r in prod.roles if r.kind in ("instance", "lambda", "batch")])
        t += timedelta(seconds=rng.randint(30, 600))
        kind = rng.random()
        if kind < 0.5:
            request: dict[str, Any] = {"roleName": role.name, "policyName": "extra-access",
                                       "policyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                                                         '"Action":["s3:GetObject"],"Resource":"*"}]}'}
            batch.add_trail(factory.cloudtrail(t, identity, "us-east-1", "iam", "PutRolePolicy", admin.office_ip,
                                               UA_CONSOLE, request))
        elif kind < 0.8:
            batch.add_trail(factory.cloudtrail(
                t, identity, "us-east-1", "iam", "AttachRolePolicy", admin.office_ip, UA_CONSOLE,
                {"roleName": role.name, "policyArn": "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"}))
        else:
            developer = prod.role("Developer")
            document = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":['
                        f'"arn:aws:iam::{estate.accounts["security"].account_id}:root","arn:aws:iam::'
                        f'{estate.accounts["dev"].account_id}:root"]}},"Action":"sts:AssumeRole"}}]}}')
            batch.add_trail(factory.cloudtrail(t, identity, "us-east-1", "iam", "UpdateAssumeRolePolicy",
                                               admin.office_ip, UA_CONSOLE,
                                               {"roleName": developer.name, "policyDocument": document}))

    def _onboard(self, t0: datetime, admin: Person, person: Person, rng: random.Random, factory: RecordFactory,
                 batch: HourBatch) -> None:
        estate = self.estate
        t = second_in_hour(rng, t0)
        identity = factory.iam_user(admin, console_since=t)
        ip = admin.office_ip
        if person.account_id != admin.account_id:
            target = estate.account_by_id(person.account_id)
            records, key = factory.assume_role(t, identity, target.role("Admin"), admin.login, ip, UA_CONSOLE)
            for record in records:
                batch.add_trail(record)
            identity = factory.role_session(target.role("Admin"), admin.login, t, key, mfa=True)
        for name, request in (
            ("CreateUser", {"userName": person.login}),
            ("AddUserToGroup", {"groupName": person.groups[0], "userName": person.login}),
            ("CreateLoginProfile", {"userName": person.login, "passwordResetRequired": True}),
            ("CreateAccessKey", {"userName": person.login}),
        ):
            t += timedelta(seconds=rng.randint(5, 60))
            batch.add_trail(factory.cloudtrail(t, identity, "us-east-1", "iam", name, ip, UA_CONSOLE, request))

    def _new_service(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        """A team ships a new function behind an API gateway: the benign twin of the persistence campaign."""
        prod = self.estate.accounts["prod"]
        role = prod.role("ci-deploy")
        t = second_in_hour(rng, t0)
        records, key = factory.assume_role(t, factory.iam_user(self.estate.ci_user), role, "gha-release",
                                           self.estate.ci_user.office_ip, UA_BOTO)
        for record in records:
            batch.add_trail(record)
        identity = factory.role_session(role, "gha-release", t, key)
        fn_role = next(r for r in prod.roles if r.kind == "lambda")
        wire_function(factory, batch, t, identity, prod, prod.regions[0], "reporting-export-v2", fn_role,
                      self.estate.ci_user.office_ip, UA_TERRAFORM, self.ids.hex(10), rng)

    # -- networks -------------------------------------------------------------------------------

    def _flows(self, t0: datetime, rng: random.Random, batch: HourBatch) -> None:
        estate = self.estate
        base = int(t0.timestamp())
        per = estate.size.flows_per_vm_hour
        for account in estate.accounts.values():
            dbs = {d.region: d for d in account.databases}
            for host in account.instances:
                vpc_hosts = self.region_hosts[(host.account_id, host.region)]
                for _ in range(per):
                    start = base + rng.randrange(3540)
                    sport = rng.randint(32768, 60999)
                    if "-web-" in host.name:
                        src = rng.choice(estate.external_clients)
                        line = flow_line(account.account_id, host.eni_id, src, host.private_ip, sport, 443,
                                         rng.randint(5, 80), rng.randint(800, 90_000), start)
                    elif "-bastion-" in host.name and vpc_hosts and rng.random() < 0.5:
                        dst = rng.choice(vpc_hosts)
                        line = flow_line(account.account_id, host.eni_id, host.private_ip, dst.private_ip, sport, 22,
                                         rng.randint(20, 400), rng.randint(3000, 200_000), start)
                    elif "-bastion-" in host.name:
                        src = rng.choice(self.scanners)  # internet background noise: SSH scanners, rejected
                        line = flow_line(account.account_id, host.eni_id, src, host.private_ip, sport, 22, 1, 60,
                                         start, action="REJECT")
                    elif host.region in dbs and rng.random() < 0.5:
                        db = dbs[host.region]
                        port = 3306 if db.engine == "mysql" else 5432
                        line = flow_line(account.account_id, host.eni_id, host.private_ip, db.private_ip, sport, port,
                                         rng.randint(10, 300), rng.randint(2000, 400_000), start)
                    else:
                        line = flow_line(account.account_id, host.eni_id, host.private_ip,
                                         rng.choice(AWS_ENDPOINT_IPS), sport, 443, rng.randint(5, 60),
                                         rng.randint(900, 120_000), start)
                    batch.add_flow(account.account_id, host.region, start, line)
            for lb in account.load_balancers:
                for target in lb.targets[: per * 2]:
                    start = base + rng.randrange(3540)
                    batch.add_flow(account.account_id, lb.region, start, flow_line(
                        account.account_id, target.eni_id, rng.choice(lb.private_ips), target.private_ip,
                        rng.randint(32768, 60999), 443, rng.randint(5, 50), rng.randint(600, 60_000), start))

    def _kubernetes(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        cluster = self.estate.cluster
        events = batch.k8s_audit.setdefault(cluster.name, [])
        for node in cluster.nodes:
            node_name = f"ip-{node.private_ip.replace('.', '-')}.ec2.internal"
            for minute in range(0, 60, 10):
                t = t0 + timedelta(minutes=minute, seconds=rng.randrange(600))
                groups = ["system:nodes", "system:authenticated"]
                events.append(k8s_event(factory, t, f"system:node:{node_name}", groups,
                                        "patch", "nodes", None, node_name, node.private_ip,
                                        "kubelet/v1.29.3 (linux/amd64) kubernetes/6813625", subresource="status"))
        monitor = cluster.nodes[0]
        for minute in range(0, 60, 5):
            t = t0 + timedelta(minutes=minute, seconds=rng.randrange(300))
            events.append(k8s_event(factory, t, "system:serviceaccount:monitoring:prometheus",
                                    ["system:serviceaccounts", "system:serviceaccounts:monitoring",
                                     "system:authenticated"], "list", "pods", None, None, monitor.private_ip,
                                    "prometheus/2.51.0"))
        for person in self.estate.people:
            if person.team != "sre" or not self.is_working(person, t0) or rng.random() > 0.2:
                continue
            pod = rng.choice(cluster.pods)
            t = second_in_hour(rng, t0)
            agent = "kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625"
            groups = ["system:authenticated", "sre"]
            events.append(k8s_event(factory, t, person.login, groups, "list", "pods", pod.namespace, None,
                                    person.office_ip, agent))
            verb, sub = ("get", "log") if rng.random() < 0.8 else ("create", "exec")
            events.append(k8s_event(factory, t + timedelta(seconds=20), person.login, groups, verb, "pods",
                                    pod.namespace, pod.name, person.office_ip, agent, subresource=sub,
                                    code=101 if sub == "exec" else 200))

    # -- other clouds ---------------------------------------------------------------------------

    def _azure(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        azure = self.estate.azure
        for person in self.estate.people:
            if not self.is_working(person, t0) or rng.random() > 0.12:
                continue
            t = second_in_hour(rng, t0)
            traveling = rng.random() < 0.02
            country = rng.choice(("ES", "JP", "BR")) if traveling else person.country
            ip = self.ids.public_ip() if traveling else person.office_ip
            batch.azure_signin.append(signin_record(factory, t, azure.tenant_id, person, ip, country))
            if person.team in ("platform", "finance-it", "sre") and rng.random() < 0.5:
                vm = rng.choice(azure.vms)
                operation = rng.choice(("Microsoft.Compute/virtualMachines/read",
                                        "Microsoft.Compute/virtualMachines/restart/action",
                                        "Microsoft.Compute/virtualMachines/start/action"))
                batch.azure_activity.append(azure_activity_record(
                    factory, t + timedelta(minutes=2), azure.tenant_id, azure.subscription_id,
                    vm.resource_id(azure.subscription_id), operation, ip, person.email, person.azure_oid, None))
        # A service principal syncs backups from AWS every hour: benign cross-cloud access.
        name, oid, app = azure.service_principals[0]
        account, rg = azure.storage_accounts[1]
        nat = self.estate.accounts["prod"].vpcs[0].nat_ip
        resource = f"/subscriptions/{azure.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Storage/" \
                   f"storageAccounts/{account}"
        batch.azure_activity.append(azure_activity_record(
            factory, t0 + timedelta(minutes=7, seconds=rng.randrange(60)), azure.tenant_id, azure.subscription_id,
            resource, "Microsoft.Storage/storageAccounts/listKeys/action", nat, None, oid, app))
        del name

    def _gcp(self, t0: datetime, rng: random.Random, factory: RecordFactory, batch: HourBatch) -> None:
        gcp = self.estate.gcp
        for sa in gcp.service_accounts[1:]:
            for _ in range(rng.randint(1, 4)):
                t = second_in_hour(rng, t0)
                bucket = gcp.buckets[1] if sa.startswith("ml-") else gcp.buckets[0]
                obj = f"projects/_/buckets/{bucket}/objects/tables/{rng.randrange(1 << 20):05x}.avro"
                name, zone, ip = gcp.instances[hash_index(sa, len(gcp.instances))]
                batch.gcp_audit.append(gcp_entry(
                    factory, t, gcp.project_id, sa, "storage.objects.get", "storage.googleapis.com", obj,
                    "gcs_bucket", {"bucket_name": bucket, "location": "us"}, ip,
                    "gcloud-python/2.16.0 gl-python/3.11.8", "storage.objects.get", log="data_access"))
                del name, zone
        for person in self.estate.people:
            if person.team != "data" or not self.is_working(person, t0) or rng.random() > 0.2:
                continue
            t = second_in_hour(rng, t0)
            name, zone, _ip = rng.choice(gcp.instances)
            resource = f"projects/{gcp.project_id}/zones/{zone}/instances/{name}"
            batch.gcp_audit.append(gcp_entry(
                factory, t, gcp.project_id, person.email, "v1.compute.instances.get", "compute.googleapis.com",
                resource, "gce_instance", {"instance_id": str(hash_index(name, 10**12)), "zone": zone},
                person.office_ip, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Chrome/122.0.0.0,gzip(gfe)",
                "compute.instances.get", log="data_access"))


# --- shared record shapes --------------------------------------------------------------------------


def hash_index(text: str, modulo: int) -> int:
    """A stable (not salted, unlike ``hash()``) index for ``text``."""
    value = 0
    for char in text:
        value = (value * 131 + ord(char)) % 1_000_000_007
    return value % modulo


def ec2_state_change(factory: RecordFactory, t: datetime, identity: Identity, region: str, name: str,
                     instance_ids: list[str], ip: str, agent: str) -> dict[str, Any]:
    states = {"StartInstances": ((0, "pending"), (80, "stopped")), "StopInstances": ((64, "stopping"), (16, "running")),
              "TerminateInstances": ((32, "shutting-down"), (16, "running")),
              "RebootInstances": ((16, "running"), (16, "running"))}
    (code, state), (prev_code, prev) = states[name]
    items = [{"instanceId": i} for i in instance_ids]
    response: dict[str, Any] | None = {
        "requestId": factory.uuid(),
        "instancesSet": {"items": [{"instanceId": i, "currentState": {"code": code, "name": state},
                                    "previousState": {"code": prev_code, "name": prev}} for i in instance_ids]},
    }
    if name == "RebootInstances":
        response = {"requestId": factory.uuid(), "_return": True}
    return factory.cloudtrail(t, identity, region, "ec2", name, ip, agent, {"instancesSet": {"items": items}},
                              response)


def run_instances(factory: RecordFactory, t: datetime, identity: Identity, account: Account, region: str,
                  instance_type: str, count: int, ip: str, agent: str, ids: Ids,
                  image: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """A RunInstances record starting ``count`` new instances; returns it and the new instance ids."""
    new_ids = ["i-" + f"{factory.rng.getrandbits(68):017x}" for _ in range(count)]
    image = image or "ami-" + f"{factory.rng.getrandbits(68):017x}"
    subnet = f"subnet-{factory.rng.getrandbits(68):017x}"
    vpcs = [v for v in account.vpcs if v.region == region]
    if vpcs:
        subnet = vpcs[0].subnets[2].subnet_id
    request = {
        "instancesSet": {"items": [{"imageId": image, "minCount": count, "maxCount": count}]},
        "instanceType": instance_type,
        "blockDeviceMapping": {},
        "monitoring": {"enabled": False},
        "disableApiTermination": False,
        "subnetId": subnet,
    }
    response = {
        "requestId": factory.uuid(),
        "reservationId": "r-" + f"{factory.rng.getrandbits(68):017x}",
        "ownerId": account.account_id,
        "groupSet": {},
        "instancesSet": {"items": [
            {"instanceId": i, "imageId": image, "instanceState": {"code": 0, "name": "pending"},
             "instanceType": instance_type, "placement": {"availabilityZone": f"{region}a", "tenancy": "default"},
             "subnetId": subnet, "launchTime": int(t.timestamp() * 1000)} for i in new_ids]},
    }
    del ids
    return factory.cloudtrail(t, identity, region, "ec2", "RunInstances", ip, agent, request, response), new_ids


def wire_function(factory: RecordFactory, batch: HourBatch, t: datetime, identity: Identity, account: Account,
                  region: str, name: str, role: Role, ip: str, agent: str, api_id: str,
                  rng: random.Random) -> list[dict[str, Any]]:
    """CreateFunction → CreateRestApi → PutMethod/PutIntegration → CreateDeployment → AddPermission."""
    fn_arn = f"arn:aws:lambda:{region}:{account.account_id}:function:{name}"
    records: list[dict[str, Any]] = []

    def add(name_: str, source: str, request: dict[str, Any], response: dict[str, Any] | None) -> None:
        nonlocal t
        t += timedelta(seconds=rng.randint(3, 40))
        record = factory.cloudtrail(t, identity, region, source, name_, ip, agent, request, response)
        batch.add_trail(record)
        records.append(record)

    add("CreateFunction20150331", "lambda",
        {"functionName": name, "runtime": "python3.12", "role": role.arn, "handler": "app.handler",
         "code": {}, "timeout": 30, "memorySize": 256, "publish": True},
        {"functionName": name, "functionArn": fn_arn, "runtime": "python3.12", "role": role.arn,
         "state": "Pending", "codeSha256": f"{rng.getrandbits(256):064x}"[:43] + "="})
    add("CreateRestApi", "apigateway", {"name": f"{name}-api", "endpointConfiguration": {"types": ["REGIONAL"]}},
        {"id": api_id, "name": f"{name}-api", "createdDate": iso(t)})
    root = f"{rng.getrandbits(40):010x}"
    add("PutMethod", "apigateway", {"restApiId": api_id, "resourceId": root, "httpMethod": "ANY",
                                    "authorizationType": "NONE"}, {"httpMethod": "ANY"})
    add("PutIntegration", "apigateway",
        {"restApiId": api_id, "resourceId": root, "httpMethod": "ANY", "type": "AWS_PROXY",
         "integrationHttpMethod": "POST",
         "uri": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{fn_arn}/invocations"},
        {"type": "AWS_PROXY"})
    add("CreateDeployment", "apigateway", {"restApiId": api_id, "stageName": "prod"},
        {"id": f"{rng.getrandbits(24):06x}"})
    add("AddPermission20150331v2", "lambda",
        {"functionName": name, "statementId": f"apigw-{api_id}", "action": "lambda:InvokeFunction",
         "principal": "apigateway.amazonaws.com",
         "sourceArn": f"arn:aws:execute-api:{region}:{account.account_id}:{api_id}/*/*/*"},
        {"statement": "{\"Sid\":\"apigw\"}"})
    return records


def signin_record(factory: RecordFactory, t: datetime, tenant: str, person: Person, ip: str,
                  country: str) -> dict[str, Any]:
    """An Entra ID SignInLogs diagnostic record (as exported to a storage account / event hub)."""
    city, state = COUNTRY_CITY.get(country, ("Unknown", "Unknown"))
    correlation = factory.uuid()
    return {
        "time": iso_micro(t)[:-4] + "Z",
        "resourceId": f"/tenants/{tenant}/providers/Microsoft.aadiam",
        "operationName": "Sign-in activity",
        "operationVersion": "1.0",
        "category": "SignInLogs",
        "tenantId": tenant,
        "resultType": "0",
        "resultSignature": "None",
        "durationMs": 0,
        "callerIpAddress": ip,
        "correlationId": correlation,
        "identity": person.display,
        "Level": 4,
        "location": country,
        "properties": {
            "id": factory.uuid(),
            "createdDateTime": iso_micro(t)[:-4] + "Z",
            "userDisplayName": person.display,
            "userPrincipalName": person.email,
            "userId": person.azure_oid,
            "appId": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
            "appDisplayName": "Azure Portal",
            "ipAddress": ip,
            "status": {"errorCode": 0},
            "clientAppUsed": "Browser",
            "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/122.0.0.0",
            "location": {"city": city, "state": state, "countryOrRegion": country},
            "isInteractive": True,
            "authenticationRequirement": "multiFactorAuthentication",
            "conditionalAccessStatus": "success",
            "resourceDisplayName": "Windows Azure Service Management API",
            "correlationId": correlation,
            "tokenIssuerType": "AzureAD",
        },
    }


def azure_activity_record(factory: RecordFactory, t: datetime, tenant: str, subscription: str, resource_id: str,
                          operation: str, ip: str, upn: str | None, object_id: str,
                          app_id: str | None) -> dict[str, Any]:
    """An Azure Activity Log record in the diagnostic-settings export shape (``records`` envelope)."""
    claims: dict[str, str] = {"http://schemas.microsoft.com/identity/claims/objectidentifier": object_id}
    if upn:
        claims["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"] = upn
        claims["name"] = upn.split("@")[0].replace(".", " ").title()
    if app_id:
        claims["appid"] = app_id
    return {
        "time": iso_micro(t)[:-1] + "0Z",
        "resourceId": resource_id.upper(),
        "operationName": operation.upper(),
        "category": "Administrative",
        "resultType": "Success",
        "resultSignature": "Succeeded.OK",
        "durationMs": "312",
        "callerIpAddress": ip,
        "correlationId": factory.uuid(),
        "identity": {
            "authorization": {
                "scope": resource_id,
                "action": operation,
                "evidence": {"role": "Contributor", "roleAssignmentScope": f"/subscriptions/{subscription}",
                             "principalId": object_id.replace("-", ""),
                             "principalType": "User" if upn else "ServicePrincipal"},
            },
            "claims": claims,
        },
        "level": "Information",
        "location": "global",
        "properties": {"statusCode": "OK", "serviceRequestId": factory.uuid(), "eventCategory": "Administrative",
                       "entity": resource_id, "message": operation, "hierarchy": f"{tenant}/{subscription}"},
        "tenantId": tenant,
    }
