"""Writers for the real export formats, byte-for-byte reproducible.

JSON keys are sorted, gzip headers carry ``mtime=0`` and no file name, and file names that the
real services randomise take their random part from a seeded RNG.  Hourly sources are written as
each hour is generated, so memory stays bounded by one hour of events.
"""

from __future__ import annotations

import gzip
import random
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from gnnsec.synth.estate import Account, Estate, Instance, Person, Role, SizeSpec
from gnnsec.synth.records import FLOW_HEADER, HourBatch, iso

JSON_OPTS = orjson.OPT_SORT_KEYS
PRETTY_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2


def dump(obj: Any, pretty: bool = False) -> bytes:
    return orjson.dumps(obj, option=PRETTY_OPTS if pretty else JSON_OPTS)


def write_gzip(path: Path, data: bytes) -> None:
    """Gzip with a fixed header (no name, mtime 0) so identical input gives identical bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
        gz.write(data)


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dump(obj, pretty=True) + b"\n")


class OutputWriter:
    """Writes the estate's static files once and the hourly files as the hours come."""

    def __init__(self, out: Path, estate: Estate) -> None:
        self.out = out
        self.estate = estate
        self.rng = random.Random(f"files:{estate.seed}")
        self.files: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.ips: set[str] = set()
        self.k8s_handles: dict[str, Any] = {}

    def _name_suffix(self, n: int = 16) -> str:
        return "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(n))

    # -- static files ---------------------------------------------------------------------------

    def write_static(self) -> None:
        estate = self.estate
        for account in estate.accounts.values():
            people = [p for p in estate.people if p.account_id == account.account_id]
            if estate.ci_user.account_id == account.account_id:
                people.append(estate.ci_user)
            write_json(self.out / "aws" / account.account_id / "iam" / "authorization-details.json",
                       authorization_details(account, people))
            self.files["aws-iam"] += 1
            self._inventory(account)
        self._kubernetes_objects()
        self._trivy()

    def _inventory(self, account: Account) -> None:
        base = self.out / "aws" / account.account_id / "inventory"
        write_json(base / "describe-regions.json", {"Regions": [
            {"Endpoint": f"ec2.{r}.amazonaws.com", "RegionName": r, "OptInStatus": "opt-in-not-required"}
            for r in account.regions]})
        self.files["aws-inventory"] += 1
        for region in account.regions:
            files = inventory_files(account, region, self.estate)
            for name, document in files.items():
                write_json(base / region / f"{name}.json", document)
                self.files["aws-inventory"] += 1

    def _kubernetes_objects(self) -> None:
        cluster = self.estate.cluster
        created = iso(self.estate.start - timedelta(days=30))
        items: list[dict[str, Any]] = []
        for node in cluster.nodes:
            name = f"ip-{node.private_ip.replace('.', '-')}.ec2.internal"
            items.append({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name, "uid": f"{node.instance_id[2:10]}-0000-4000-8000-{node.instance_id[2:14]}",
                    "creationTimestamp": created,
                    "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                               "node.kubernetes.io/instance-type": node.instance_type,
                               "topology.kubernetes.io/region": node.region,
                               "topology.kubernetes.io/zone": node.subnet.az,
                               "eks.amazonaws.com/nodegroup": "default"},
                },
                "spec": {"providerID": f"aws:///{node.subnet.az}/{node.instance_id}"},
                "status": {
                    "addresses": [{"type": "InternalIP", "address": node.private_ip},
                                  {"type": "Hostname", "address": name},
                                  {"type": "InternalDNS", "address": name}],
                    "nodeInfo": {"kubeletVersion": "v1.29.3-eks-ae9a62a", "osImage": "Amazon Linux 2",
                                 "containerRuntimeVersion": "containerd://1.7.11", "architecture": "amd64",
                                 "operatingSystem": "linux"},
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            })
        for pod in cluster.pods:
            node_name = f"ip-{pod.node.private_ip.replace('.', '-')}.ec2.internal"
            items.append({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid_k8s,
                             "creationTimestamp": created, "labels": {"app": pod.app}},
                "spec": {
                    "containers": [{"name": c.name, "image": c.image, "ports": [{"containerPort": 8080,
                                                                                  "protocol": "TCP"}]}
                                   for c in pod.containers],
                    "nodeName": node_name,
                    "serviceAccountName": pod.service_account,
                },
                "status": {
                    "phase": "Running",
                    "podIP": pod.ip,
                    "podIPs": [{"ip": pod.ip}],
                    "hostIP": pod.node.private_ip,
                    "startTime": created,
                    "containerStatuses": [{"name": c.name, "image": c.image, "imageID": f"{c.image.split(':')[0]}@"
                                           f"{c.image_id}", "containerID": c.container_id, "ready": True,
                                           "restartCount": 0, "started": True,
                                           "state": {"running": {"startedAt": created}}} for c in pod.containers],
                },
            })
        write_json(self.out / "k8s" / cluster.name / "objects.json",
                   {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}})
        self.files["k8s"] += 1  # named as the adapter that reads it

    def _trivy(self) -> None:
        estate = self.estate
        from gnnsec.synth.estate import CVE_CATALOGUE

        catalogue = {c[0]: c for c in CVE_CATALOGUE}
        created = iso(estate.start - timedelta(hours=6))
        for ref, cves in sorted(estate.images.items()):
            slug = ref.split("/")[-1].replace(":", "-")
            write_json(self.out / "vulns" / f"trivy-{slug}.json",
                       trivy_report(ref, "container_image", cves, catalogue, created))
            self.files["vulns"] += 1
        for host in estate.all_instances():
            if host.cves:
                write_json(self.out / "vulns" / f"trivy-{host.instance_id}.json",
                           trivy_report(host.uid, "vm", host.cves, catalogue, created, host=host))
                self.files["vulns"] += 1

    # -- hourly files ---------------------------------------------------------------------------

    def write_hour(self, t0: datetime, batch: HourBatch) -> None:
        stamp = t0.strftime("%Y%m%dT%H%M") + "Z"
        for (account, region), records in sorted(batch.cloudtrail.items()):
            records.sort(key=lambda r: (r["eventTime"], r["eventID"]))
            folder = self.out / "aws" / account / "cloudtrail" / region / f"{t0:%Y}" / f"{t0:%m}" / f"{t0:%d}"
            delivered = (t0 + timedelta(minutes=5)).strftime("%Y%m%dT%H%M") + "Z"
            name = f"{account}_CloudTrail_{region}_{delivered}_{self._name_suffix()}.json.gz"
            write_gzip(folder / name, dump({"Records": records}))
            self.files["cloudtrail"] += 1
            self.events["cloudtrail"] += len(records)
            for record in records:
                self.ips.add(record["sourceIPAddress"])
        for (account, region), lines in sorted(batch.flows.items()):
            lines.sort()
            folder = self.out / "flows" / account / region
            name = f"{account}_vpcflowlogs_{region}_fl-{account[-8:]}_{stamp}_{self._name_suffix(8).lower()}.log.gz"
            text = FLOW_HEADER + "\n" + "\n".join(line for _, line in lines) + "\n"
            write_gzip(folder / name, text.encode())
            self.files["flows"] += 1
            self.events["flows"] += len(lines)
            for _, line in lines:
                parts = line.split(" ", 5)
                self.ips.add(parts[3])
                self.ips.add(parts[4])
        hour = t0.strftime("%Y%m%dT%H") + "00Z"
        if batch.azure_activity:
            batch.azure_activity.sort(key=lambda r: (r["time"], r["correlationId"]))
            write_json(self.out / "azure" / "activity" / f"activity-{hour}.json", {"records": batch.azure_activity})
            self.files["azure-activity"] += 1
            self.events["azure-activity"] += len(batch.azure_activity)
        if batch.azure_signin:
            batch.azure_signin.sort(key=lambda r: (r["time"], r["correlationId"]))
            write_json(self.out / "azure" / "signin" / f"signin-{hour}.json", {"records": batch.azure_signin})
            self.files["azure-signin"] += 1
            self.events["azure-signin"] += len(batch.azure_signin)
        if batch.gcp_audit:
            batch.gcp_audit.sort(key=lambda r: (r["timestamp"], r["insertId"]))
            path = self.out / "gcp" / "audit" / f"audit-{hour}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"".join(dump(r) + b"\n" for r in batch.gcp_audit))
            self.files["gcp-audit"] += 1
            self.events["gcp-audit"] += len(batch.gcp_audit)
        for cluster, events in sorted(batch.k8s_audit.items()):
            events.sort(key=lambda r: (r["requestReceivedTimestamp"], r["auditID"]))
            handle = self.k8s_handles.get(cluster)
            if handle is None:
                path = self.out / "k8s" / cluster / "audit.jsonl"
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = self.k8s_handles[cluster] = path.open("wb")
                self.files["k8s-audit"] += 1
            handle.write(b"".join(dump(e) + b"\n" for e in events))
            self.events["k8s-audit"] += len(events)

    def close(self) -> None:
        for handle in self.k8s_handles.values():
            handle.close()
        self.k8s_handles.clear()


# --- document builders ---------------------------------------------------------------------------------


def _policy_list(inline: dict[str, dict[str, object]]) -> list[dict[str, object]]:
    return [{"PolicyName": name, "PolicyDocument": doc} for name, doc in sorted(inline.items())]


def _managed(arns: list[str]) -> list[dict[str, str]]:
    return [{"PolicyArn": arn, "PolicyName": arn.rsplit("/", 1)[1]} for arn in arns]


def authorization_details(account: Account, people: list[Person]) -> dict[str, Any]:
    """``aws iam get-account-authorization-details`` for one account."""
    created = "2025-03-02T09:00:00+00:00"
    users = []
    for person in sorted(people, key=lambda p: p.login):
        users.append({
            "Path": "/",
            "UserName": person.login,
            "UserId": person.user_id,
            "Arn": person.arn,
            "CreateDate": created,
            "GroupList": sorted(g for g in person.groups if g in account.groups),
            "AttachedManagedPolicies": [],
            "UserPolicyList": [],
            "Tags": [{"Key": "team", "Value": person.team}],
        })
    groups = [{
        "Path": "/",
        "GroupName": name,
        "GroupId": "AGPA" + f"{abs(sum(map(ord, account.account_id + name))) * 7919:017d}"[:17],
        "Arn": f"arn:aws:iam::{account.account_id}:group/{name}",
        "CreateDate": created,
        "GroupPolicyList": [{"PolicyName": f"{name}-access",
                             "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}],
        "AttachedManagedPolicies": [],
    } for name, statements in sorted(account.groups.items())]
    roles = []
    for role in sorted(account.roles, key=lambda r: (r.path, r.name)):
        roles.append(_role_detail(role, created))
    return {"UserDetailList": users, "GroupDetailList": groups, "RoleDetailList": roles, "Policies": []}


def _role_detail(role: Role, created: str) -> dict[str, Any]:
    profiles = []
    if role.instance_profile_id:
        profiles.append({
            "Path": "/", "InstanceProfileName": role.name, "InstanceProfileId": role.instance_profile_id,
            "Arn": f"arn:aws:iam::{role.account_id}:instance-profile/{role.name}", "CreateDate": created,
            "Roles": [{"Path": role.path, "RoleName": role.name, "RoleId": role.role_id, "Arn": role.arn,
                       "CreateDate": created,
                       "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": role.trust}}],
        })
    return {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.role_id,
        "Arn": role.arn,
        "CreateDate": created,
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": role.trust},
        "InstanceProfileList": profiles,
        "RolePolicyList": _policy_list(role.inline),
        "AttachedManagedPolicies": _managed(role.managed),
        "Tags": [],
        "RoleLastUsed": {},
    }


def _instance_doc(host: Instance) -> dict[str, Any]:
    dns = f"ip-{host.private_ip.replace('.', '-')}.ec2.internal"
    association = None
    if host.public_ip:
        public_dns = f"ec2-{host.public_ip.replace('.', '-')}.compute-1.amazonaws.com"
        association = {"IpOwnerId": "amazon", "PublicDnsName": public_dns, "PublicIp": host.public_ip}
    eni: dict[str, Any] = {
        "Attachment": {"AttachTime": host.launch_time, "AttachmentId": "eni-attach-" + host.eni_id[4:],
                       "DeleteOnTermination": True, "DeviceIndex": 0, "Status": "attached"},
        "Description": "Primary network interface",
        "Groups": [{"GroupId": host.sg_id, "GroupName": "web" if host.public_ip else "app"}],
        "InterfaceType": "interface",
        "Ipv6Addresses": [],
        "MacAddress": "0e:" + ":".join(host.eni_id[4 + 2 * k: 6 + 2 * k] for k in range(5)),
        "NetworkInterfaceId": host.eni_id,
        "OwnerId": host.account_id,
        "PrivateDnsName": dns,
        "PrivateIpAddress": host.private_ip,
        "PrivateIpAddresses": [{"Primary": True, "PrivateDnsName": dns, "PrivateIpAddress": host.private_ip}],
        "SourceDestCheck": True,
        "Status": "in-use",
        "SubnetId": host.subnet.subnet_id,
        "VpcId": host.vpc_id,
    }
    doc: dict[str, Any] = {
        "AmiLaunchIndex": 0,
        "Architecture": "x86_64",
        "EbsOptimized": True,
        "Hypervisor": "xen",
        "ImageId": host.ami,
        "InstanceId": host.instance_id,
        "InstanceType": host.instance_type,
        "LaunchTime": host.launch_time,
        "Monitoring": {"State": "disabled"},
        "NetworkInterfaces": [eni],
        "Placement": {"AvailabilityZone": host.subnet.az, "GroupName": "", "Tenancy": "default"},
        "PrivateDnsName": dns,
        "PrivateIpAddress": host.private_ip,
        "PublicDnsName": association["PublicDnsName"] if association else "",
        "RootDeviceName": "/dev/xvda",
        "RootDeviceType": "ebs",
        "SecurityGroups": [{"GroupId": host.sg_id, "GroupName": "web" if host.public_ip else "app"}],
        "SourceDestCheck": True,
        "State": {"Code": 16, "Name": "running"},
        "StateTransitionReason": "",
        "SubnetId": host.subnet.subnet_id,
        "Tags": [{"Key": "Name", "Value": host.name}, {"Key": "service", "Value": host.service}],
        "VpcId": host.vpc_id,
    }
    if association:
        doc["PublicIpAddress"] = host.public_ip
        eni["Association"] = association
        eni["PrivateIpAddresses"][0]["Association"] = association
    if host.role is not None and host.role.instance_profile_id:
        doc["IamInstanceProfile"] = {"Arn": f"arn:aws:iam::{host.account_id}:instance-profile/{host.role.name}",
                                     "Id": host.role.instance_profile_id}
    if host.k8s_node:
        doc["Tags"].append({"Key": "eks:cluster-name", "Value": "prod-eks"})
    return doc


def inventory_files(account: Account, region: str, estate: Estate) -> dict[str, Any]:
    """The AWS CLI outputs cloudmapper collects for one account and region, by ``<service>-<call>``."""
    vpc = account.vpc(region)
    hosts = [h for h in account.instances if h.region == region]
    files: dict[str, Any] = {}
    files["ec2-describe-vpcs"] = {"Vpcs": [{
        "CidrBlock": vpc.cidr, "CidrBlockAssociationSet": [{"AssociationId": "vpc-cidr-assoc-" + vpc.vpc_id[4:],
                                                            "CidrBlock": vpc.cidr,
                                                            "CidrBlockState": {"State": "associated"}}],
        "DhcpOptionsId": "dopt-" + vpc.vpc_id[4:12], "InstanceTenancy": "default", "IsDefault": False,
        "OwnerId": account.account_id, "State": "available", "Tags": [{"Key": "Name", "Value": f"{account.name}"}],
        "VpcId": vpc.vpc_id}]}
    files["ec2-describe-subnets"] = {"Subnets": [{
        "AvailabilityZone": s.az, "AvailableIpAddressCount": 8000, "CidrBlock": s.cidr, "DefaultForAz": False,
        "MapPublicIpOnLaunch": s.public, "OwnerId": account.account_id, "State": "available",
        "SubnetArn": f"arn:aws:ec2:{region}:{account.account_id}:subnet/{s.subnet_id}", "SubnetId": s.subnet_id,
        "Tags": [{"Key": "Name", "Value": s.name}], "VpcId": s.vpc_id} for s in vpc.subnets]}
    groups = sorted(vpc.security_groups.items())
    files["ec2-describe-security-groups"] = {
        "SecurityGroups": [_security_group(account, vpc.vpc_id, purpose, gid) for purpose, gid in groups]
    }
    files["ec2-describe-instances"] = {"Reservations": [{
        "Groups": [], "Instances": [_instance_doc(h)], "OwnerId": account.account_id,
        "ReservationId": "r-" + h.instance_id[2:]} for h in hosts]}
    interfaces = [_instance_doc(h)["NetworkInterfaces"][0] | {"AvailabilityZone": h.subnet.az} for h in hosts]
    for lb in account.load_balancers:
        if lb.region != region:
            continue
        for n, ip in enumerate(lb.private_ips):
            interfaces.append({
                "AvailabilityZone": lb.subnets[n].az, "Description": f"ELB app/{lb.name}/{lb.arn.rsplit('/', 1)[1]}",
                "Groups": [{"GroupId": lb.sg_id, "GroupName": "web"}], "InterfaceType": "interface",
                "NetworkInterfaceId": f"eni-{lb.arn.rsplit('/', 1)[1]}{n}", "OwnerId": account.account_id,
                "PrivateIpAddress": ip, "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": ip}],
                "RequesterId": "amazon-elb", "RequesterManaged": True, "Status": "in-use",
                "SubnetId": lb.subnets[n].subnet_id, "VpcId": lb.vpc_id})
    for db in account.databases:
        if db.region == region:
            interfaces.append({
                "AvailabilityZone": db.subnets[0].az, "Description": "RDSNetworkInterface",
                "Groups": [{"GroupId": db.sg_id, "GroupName": "db"}], "InterfaceType": "interface",
                "NetworkInterfaceId": "eni-" + db.resource_id[3:20].lower(), "OwnerId": account.account_id,
                "PrivateIpAddress": db.private_ip,
                "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": db.private_ip}],
                "RequesterId": "amazon-rds", "RequesterManaged": True, "Status": "in-use",
                "SubnetId": db.subnets[0].subnet_id, "VpcId": db.vpc_id})
    files["ec2-describe-network-interfaces"] = {"NetworkInterfaces": interfaces}
    if region == account.regions[0]:
        files["s3-list-buckets"] = {
            "Buckets": [{"CreationDate": b.created, "Name": b.name} for b in account.buckets],
            "Owner": {"DisplayName": f"corp-{account.name}", "ID": f"{int(account.account_id) * 7919:064x}"[-64:]},
        }
        files["sts-get-caller-identity"] = {"Account": account.account_id,
                                            "Arn": f"arn:aws:iam::{account.account_id}:user/inventory-collector",
                                            "UserId": "AIDA" + account.account_id + "INVCOL"}
    files["lambda-list-functions"] = {"Functions": [{
        "Architectures": ["x86_64"], "CodeSha256": f.code_sha, "CodeSize": 4096, "Description": "",
        "FunctionArn": f.uid, "FunctionName": f.name, "Handler": "app.handler", "LastModified":
            f.modified.replace("Z", ".000+0000"), "MemorySize": 256, "PackageType": "Zip",
        "RevisionId": f"{abs(hash_text(f.name)):032x}"[:8] + "-0000-4000-8000-000000000000", "Role": f.role.arn,
        "Runtime": f.runtime, "Timeout": 30, "TracingConfig": {"Mode": "PassThrough"}, "Version": "$LATEST"}
        for f in account.functions if f.region == region]}
    files["rds-describe-db-instances"] = {"DBInstances": [{
        "AllocatedStorage": 100, "AvailabilityZone": d.subnets[0].az, "BackupRetentionPeriod": 7,
        "DBInstanceArn": d.uid, "DBInstanceClass": "db.r6g.large", "DBInstanceIdentifier": d.identifier,
        "DBInstanceStatus": "available", "DbiResourceId": d.resource_id,
        "DBSubnetGroup": {"DBSubnetGroupName": f"{d.identifier}-subnets", "SubnetGroupStatus": "Complete",
                          "Subnets": [{"SubnetAvailabilityZone": {"Name": s.az}, "SubnetIdentifier": s.subnet_id,
                                       "SubnetStatus": "Active"} for s in d.subnets], "VpcId": d.vpc_id},
        "Endpoint": {"Address": f"{d.identifier}.c{d.resource_id[3:13].lower()}.{region}.rds.amazonaws.com",
                     "HostedZoneId": "Z2R2ITUGPM61AM", "Port": 3306 if d.engine == "mysql" else 5432},
        "Engine": d.engine, "EngineVersion": "8.0.35" if d.engine == "mysql" else "15.5",
        "IAMDatabaseAuthenticationEnabled": False, "MasterUsername": "admin", "MultiAZ": True,
        "PubliclyAccessible": False, "StorageEncrypted": True, "StorageType": "gp3",
        "VpcSecurityGroups": [{"Status": "active", "VpcSecurityGroupId": d.sg_id}]}
        for d in account.databases if d.region == region]}
    files["elbv2-describe-load-balancers"] = {"LoadBalancers": [{
        "AvailabilityZones": [{"SubnetId": s.subnet_id, "ZoneName": s.az} for s in lb.subnets],
        "CanonicalHostedZoneId": "Z35SXDOTRQ7X7K", "CreatedTime": "2025-03-02T09:00:00.000Z", "DNSName": lb.dns,
        "IpAddressType": "ipv4", "LoadBalancerArn": lb.arn, "LoadBalancerName": lb.name,
        "Scheme": "internet-facing", "SecurityGroups": [lb.sg_id], "State": {"Code": "active"},
        "Type": "application", "VpcId": lb.vpc_id} for lb in account.load_balancers if lb.region == region]}
    files["apigateway-get-rest-apis"] = {"items": [{
        "apiKeySource": "HEADER", "createdDate": api.created.replace("Z", "+00:00"), "disableExecuteApiEndpoint": False,
        "endpointConfiguration": {"types": ["REGIONAL"]}, "id": api.api_id, "name": api.name,
        "tags": {"function": api.function.name if api.function else ""}} for api in account.apis
        if api.region == region]}
    files["eks-list-clusters"] = {"clusters": [c.name for c in account.clusters if c.region == region]}
    del estate
    return files


def _security_group(account: Account, vpc_id: str, purpose: str, group_id: str) -> dict[str, Any]:
    ingress = {
        "web": [(443, "0.0.0.0/0")], "bastion": [(22, "0.0.0.0/0")], "app": [(8080, "10.0.0.0/8")],
        "db": [(5432, "10.0.0.0/8"), (3306, "10.0.0.0/8")], "k8s": [(443, "10.0.0.0/8")], "lambda": [],
    }[purpose]
    return {
        "Description": f"{purpose} tier",
        "GroupId": group_id,
        "GroupName": purpose,
        "IpPermissions": [{"FromPort": port, "IpProtocol": "tcp", "IpRanges": [{"CidrIp": cidr}],
                           "Ipv6Ranges": [], "PrefixListIds": [], "ToPort": port, "UserIdGroupPairs": []}
                          for port, cidr in ingress],
        "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
                                 "PrefixListIds": [], "UserIdGroupPairs": []}],
        "OwnerId": account.account_id,
        "VpcId": vpc_id,
    }


def hash_text(text: str) -> int:
    value = 1469598103934665603
    for char in text.encode():
        value = ((value ^ char) * 1099511628211) % (1 << 64)
    return value


def trivy_report(artifact: str, kind: str, cves: list[str], catalogue: dict[str, tuple[Any, ...]], created: str,
                 host: Instance | None = None) -> dict[str, Any]:
    """A Trivy JSON report (schema version 2) for an image or a VM."""
    vulns = []
    for cve_id in cves:
        _id, package, installed, fixed, severity, score, _remote = catalogue[cve_id]
        vulns.append({
            "VulnerabilityID": cve_id, "PkgName": package, "InstalledVersion": installed, "FixedVersion": fixed,
            "Severity": severity, "SeveritySource": "nvd",
            "PrimaryURL": f"https://avd.aquasec.com/nvd/{cve_id.lower()}",
            "Title": f"{package}: {cve_id}",
            "CVSS": {"nvd": {"V3Score": score}},
            "DataSource": {"ID": "nvd", "Name": "National Vulnerability Database", "URL": "https://nvd.nist.gov/"},
        })
    family, name = ("amazon", "2023") if kind == "vm" else ("debian", "12.5")
    metadata: dict[str, Any] = {"OS": {"Family": family, "Name": name}}
    if host is not None:
        metadata["ImageID"] = host.ami
        metadata["RepoTags"] = []
    else:
        metadata["RepoTags"] = [artifact]
        metadata["ImageID"] = f"sha256:{hash_text(artifact):016x}" * 4
    return {
        "SchemaVersion": 2,
        "CreatedAt": created,
        "ArtifactName": artifact,
        "ArtifactType": kind,
        "Metadata": metadata,
        "Results": [{"Target": f"{artifact} ({family} {name})", "Class": "os-pkgs", "Type": family,
                     "Vulnerabilities": vulns}],
    }


def size_table(size: SizeSpec) -> str:
    return f"{size.people} people, {size.vms_per_region} VMs per region, {size.pods} pods"
