"""The entities of the synthetic estate: accounts, networks, hosts, data stores, identities.

Everything is drawn from one seeded :class:`random.Random` in a fixed order, so a seed always
gives the same estate.  Entities are plain dataclasses; the writers turn them into the JSON the
real cloud APIs return, and the behaviour/campaign generators make them act.
"""

from __future__ import annotations

import ipaddress
import random
import string
from dataclasses import dataclass, field
from datetime import datetime

from gnnsec.ingest import uids

# --- sizes -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SizeSpec:
    """How big the estate is and how busy it is; ``scale`` multiplies every population."""

    name: str
    default_days: int
    people: int
    vms_per_region: int
    buckets_per_account: int
    functions_per_account: int
    databases_per_region: int
    k8s_nodes: int
    pods: int
    service_call_period_min: int
    """Service roles call their APIs every this many minutes (more calls → more events)."""
    flows_per_vm_hour: int
    internet_clients_per_hour: int


SIZES: dict[str, SizeSpec] = {
    "small": SizeSpec("small", 1, 40, 16, 6, 3, 1, 4, 30, 20, 2, 60),
    "medium": SizeSpec("medium", 7, 700, 520, 80, 40, 6, 60, 4000, 15, 3, 1100),
    "large": SizeSpec("large", 14, 1600, 900, 160, 80, 10, 120, 5000, 10, 3, 2500),
}

BASE_DATE = datetime.fromisoformat("2026-03-02T00:00:00+00:00")
"""Default start of the generated period (a Monday), so output never depends on the clock."""

# --- vocabulary --------------------------------------------------------------------------------

FIRST_NAMES = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj",
    "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yasmin", "zara", "amir", "bea", "chen",
    "dmitri", "elena", "farah", "goran", "hana", "ines", "jonas", "kemal", "lena", "marco", "nadia", "omar",
    "priya", "quinn", "rosa", "sven", "tara", "umar", "vera", "wei", "xenia", "yusuf",
]
LAST_NAMES = [
    "nguyen", "smith", "garcia", "mueller", "rossi", "kowalski", "tanaka", "okafor", "silva", "novak", "larsen",
    "dubois", "patel", "kim", "ivanova", "haddad", "jensen", "moreau", "schmidt", "costa",
]

TEAMS: tuple[tuple[str, int, int, int], ...] = (
    # team, UTC offset of its office, local start hour, local end hour
    ("platform", 0, 8, 17),
    ("backend", 1, 9, 18),
    ("data", -5, 9, 17),
    ("frontend", -8, 9, 18),
    ("sre", 5, 10, 19),
    ("security", 1, 8, 16),
    ("finance-it", 0, 9, 17),
)

CVE_CATALOGUE: tuple[tuple[str, str, str, str, str, float, bool], ...] = (
    # id, package, installed, fixed, severity, cvss, remotely exploitable from the network
    ("CVE-2021-44228", "log4j-core", "2.14.1", "2.15.0", "CRITICAL", 10.0, True),
    ("CVE-2023-46604", "activemq-client", "5.17.5", "5.17.6", "CRITICAL", 9.8, True),
    ("CVE-2022-22965", "spring-beans", "5.3.17", "5.3.18", "CRITICAL", 9.8, True),
    ("CVE-2021-41773", "httpd", "2.4.49", "2.4.50", "HIGH", 7.5, True),
    ("CVE-2024-6387", "openssh-server", "8.7p1-38", "8.7p1-38.el9_4.1", "HIGH", 8.1, True),
    ("CVE-2023-44487", "nghttp2-libs", "1.43.0-5", "1.43.0-5.amzn2.0.1", "HIGH", 7.5, False),
    ("CVE-2019-5481", "curl", "7.61.1-9.amzn2.0.1", "7.61.1-12.amzn2.0.1", "MEDIUM", 9.8, False),
    ("CVE-2023-38545", "curl", "7.88.1-10", "7.88.1-10+deb12u4", "HIGH", 9.8, False),
    ("CVE-2022-0778", "openssl", "1.1.1k", "1.1.1n", "HIGH", 7.5, False),
    ("CVE-2021-3156", "sudo", "1.8.23-10", "1.8.23-10.amzn2.2", "HIGH", 7.8, False),
    ("CVE-2023-4911", "glibc", "2.34-60", "2.34-60.el9_2.7", "HIGH", 7.8, False),
    ("CVE-2022-42889", "commons-text", "1.9", "1.10.0", "CRITICAL", 9.8, True),
    ("CVE-2019-5436", "curl", "7.61.1-9.amzn2.0.1", "7.61.1-11.amzn2.0.2", "LOW", 7.8, False),
)
EXPLOITABLE_CVES = tuple(c[0] for c in CVE_CATALOGUE if c[6])

SERVICES = [
    "checkout", "orders", "payments", "catalog", "search", "ledger", "auth", "notifications", "reporting",
    "billing", "inventory", "shipping", "pricing", "reviews", "recommendations",
]


# --- entities ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Role:
    """An IAM role; ``trust`` is the AssumeRolePolicyDocument's statement list."""

    account_id: str
    name: str
    path: str
    role_id: str
    kind: str  # human, ci, instance, lambda, partner, pipeline, federation, batch, monitoring
    trust: list[dict[str, object]]
    inline: dict[str, dict[str, object]] = field(default_factory=dict)
    managed: list[str] = field(default_factory=list)
    instance_profile_id: str | None = None

    @property
    def arn(self) -> str:
        return uids.aws_iam_role(self.account_id, self.name, self.path)

    @property
    def uid(self) -> str:
        return self.arn


@dataclass(slots=True)
class Person:
    """A human with an IAM user, an Entra account and a Google identity."""

    login: str
    display: str
    team: str
    tz: int
    start_hour: int
    end_hour: int
    oncall: bool
    account_id: str
    user_id: str
    access_key: str
    office_ip: str
    home_ip: str
    groups: list[str]
    assumable: list[Role] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)
    joins_hour: int | None = None
    leaves_hour: int | None = None
    azure_oid: str = ""
    country: str = "US"

    @property
    def arn(self) -> str:
        return uids.aws_iam_user(self.account_id, self.login)

    @property
    def uid(self) -> str:
        return self.arn

    @property
    def email(self) -> str:
        return f"{self.login}@corp.example.com"


@dataclass(slots=True)
class Subnet:
    subnet_id: str
    vpc_id: str
    cidr: str
    az: str
    public: bool
    name: str


@dataclass(slots=True)
class Vpc:
    vpc_id: str
    cidr: str
    region: str
    account_id: str
    subnets: list[Subnet]
    nat_ip: str
    security_groups: dict[str, str]  # purpose -> group id


@dataclass(slots=True)
class Instance:
    instance_id: str
    account_id: str
    region: str
    subnet: Subnet
    vpc_id: str
    private_ip: str
    public_ip: str | None
    instance_type: str
    name: str
    service: str
    role: Role | None
    eni_id: str
    sg_id: str
    ami: str
    launch_time: str
    cves: list[str] = field(default_factory=list)
    k8s_node: bool = False

    @property
    def uid(self) -> str:
        return uids.aws_ec2_instance(self.region, self.account_id, self.instance_id)

    @property
    def api_ip(self) -> str:
        """The address AWS sees when this host calls an API: its public IP, else the NAT's."""
        return self.public_ip or ""


@dataclass(slots=True)
class Bucket:
    name: str
    account_id: str
    region: str
    created: str
    sensitive: bool

    @property
    def uid(self) -> str:
        return uids.aws_bucket(self.name)


@dataclass(slots=True)
class Function:
    name: str
    account_id: str
    region: str
    role: Role
    runtime: str
    code_sha: str
    modified: str

    @property
    def uid(self) -> str:
        return uids.aws_lambda(self.region, self.account_id, self.name)


# Resource records are alike by nature (name, account, region, uid): one plain dataclass per kind reads
# better than a shared base with optional fields, so `duplicates` pairs them on shape alone.
@dataclass(slots=True)
class Database:
    identifier: str
    account_id: str
    region: str
    engine: str
    private_ip: str
    subnets: list[Subnet]
    vpc_id: str
    sg_id: str
    resource_id: str

    @property
    def uid(self) -> str:
        return uids.aws_rds(self.region, self.account_id, self.identifier)


@dataclass(slots=True)
class LoadBalancer:
    name: str
    account_id: str
    region: str
    arn: str
    dns: str
    vpc_id: str
    subnets: list[Subnet]
    sg_id: str
    targets: list[Instance]
    private_ips: list[str]


@dataclass(slots=True)
class RestApi:
    api_id: str
    name: str
    account_id: str
    region: str
    created: str
    function: Function | None

    @property
    def arn(self) -> str:
        return f"arn:aws:apigateway:{self.region}::/restapis/{self.api_id}"


@dataclass(slots=True)
class Container:
    name: str
    image: str
    image_id: str
    container_id: str


@dataclass(slots=True)
class Pod:
    name: str
    namespace: str
    uid_k8s: str
    node: Instance
    ip: str
    service_account: str
    containers: list[Container]
    app: str

    def uid(self, cluster: str) -> str:
        return uids.k8s_pod(cluster, self.namespace, self.name)


@dataclass(slots=True)
class Cluster:
    name: str
    account_id: str
    region: str
    arn: str
    nodes: list[Instance]
    pods: list[Pod]
    endpoint_ip: str


@dataclass(slots=True)
class Account:
    account_id: str
    name: str
    regions: list[str]
    vpcs: list[Vpc] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)
    databases: list[Database] = field(default_factory=list)
    load_balancers: list[LoadBalancer] = field(default_factory=list)
    apis: list[RestApi] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    groups: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    customer_policies: dict[str, dict[str, object]] = field(default_factory=dict)

    def role(self, name: str) -> Role:
        for candidate in self.roles:
            if candidate.name == name:
                return candidate
        raise KeyError(f"no role {name} in account {self.name}")

    def vpc(self, region: str) -> Vpc:
        return next(v for v in self.vpcs if v.region == region)


@dataclass(slots=True)
class AzureVm:
    name: str
    resource_group: str
    location: str
    private_ip: str

    def resource_id(self, subscription: str) -> str:
        return (
            f"/subscriptions/{subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{self.name}"
        )


@dataclass(slots=True)
class AzureEstate:
    tenant_id: str
    subscription_id: str
    vms: list[AzureVm]
    storage_accounts: list[tuple[str, str]]  # (name, resource group)
    service_principals: list[tuple[str, str, str]]  # (display name, object id, app id)


@dataclass(slots=True)
class GcpEstate:
    project_id: str
    project_number: str
    buckets: list[str]
    instances: list[tuple[str, str, str]]  # (name, zone, internal ip)
    service_accounts: list[str]
    pool: str
    federated_sa: str
    """The service account AWS workloads impersonate through workload identity federation."""
    federated_aws_role: Role | None = None


@dataclass(slots=True)
class Estate:
    """The whole synthetic organisation."""

    size: SizeSpec
    seed: int
    start: datetime
    hours: int
    org: str
    accounts: dict[str, Account]  # by short name: security, prod, dev
    partner_account_id: str
    attacker_account_id: str
    people: list[Person]
    ci_user: Person
    azure: AzureEstate
    gcp: GcpEstate
    cluster: Cluster
    images: dict[str, list[str]]  # image reference -> CVE ids
    external_clients: list[str]
    vpn_ips: list[str]

    def account_by_id(self, account_id: str) -> Account:
        return next(a for a in self.accounts.values() if a.account_id == account_id)

    def all_instances(self) -> list[Instance]:
        return [i for a in self.accounts.values() for i in a.instances]


# --- builder -----------------------------------------------------------------------------------


class Ids:
    """Provider-shaped identifiers drawn from the estate's RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def upper(self, n: int) -> str:
        return "".join(self.rng.choice(string.ascii_uppercase + "234567") for _ in range(n))

    def digits(self, n: int) -> str:
        return str(self.rng.randint(1, 9)) + "".join(self.rng.choice(string.digits) for _ in range(n - 1))

    def uuid(self) -> str:
        h = self.hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def public_ip(self) -> str:
        """A routable-looking address outside private, loopback and multicast space."""
        while True:
            first = self.rng.choice((3, 13, 18, 34, 35, 44, 52, 54, 81, 85, 91, 93, 104, 141, 151, 176, 185, 193, 203))
            addr = f"{first}.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
            if not ipaddress.ip_address(addr).is_private:
                return addr


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _trust_service(service: str) -> list[dict[str, object]]:
    return [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]


def _trust_accounts(account_ids: list[str], external_id: str | None = None) -> list[dict[str, object]]:
    principals = [f"arn:aws:iam::{a}:root" for a in account_ids]
    statement: dict[str, object] = {
        "Effect": "Allow",
        "Principal": {"AWS": principals[0] if len(principals) == 1 else principals},
        "Action": "sts:AssumeRole",
    }
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return [statement]


def _allow(actions: list[str], resources: list[str] | str = "*") -> dict[str, object]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def _policy(*statements: dict[str, object]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


class EstateBuilder:
    """Builds an :class:`Estate` deterministically; one method per kind of entity."""

    def __init__(self, seed: int, size: SizeSpec, start: datetime, days: int) -> None:
        self.rng = random.Random(f"estate:{seed}")
        self.ids = Ids(self.rng)
        self.size = size
        self.seed = seed
        self.start = start
        self.days = days
        self.created = _iso(start.replace(year=start.year - 1))

    def role_id(self) -> str:
        return "AROA" + self.ids.upper(17)

    def build(self) -> Estate:
        ids = self.ids
        account_ids = sorted({ids.digits(12) for _ in range(8)})[:5]
        security = Account(account_ids[0], "security", ["us-east-1"])
        prod = Account(account_ids[1], "prod", ["us-east-1", "eu-west-1"])
        dev = Account(account_ids[2], "dev", ["us-east-1"])
        partner_id, attacker_id = account_ids[3], account_ids[4]
        accounts = {"security": security, "prod": prod, "dev": dev}
        for index, account in enumerate(accounts.values()):
            for r_index, region in enumerate(account.regions):
                account.vpcs.append(self._vpc(account, region, 10 * index + r_index))
        self._roles(accounts, partner_id)
        images = self._images()
        for account in accounts.values():
            self._compute(account)
            self._data(account)
        cluster = self._cluster(prod, images)
        people, ci_user = self._people(accounts)
        gcp = self._gcp(prod)
        azure = self._azure()
        external = [ids.public_ip() for _ in range(max(40, self.size.internet_clients_per_hour * 2))]
        vpn = [ids.public_ip() for _ in range(4)]
        return Estate(
            size=self.size,
            seed=self.seed,
            start=self.start,
            hours=self.days * 24,
            org="corp",
            accounts=accounts,
            partner_account_id=partner_id,
            attacker_account_id=attacker_id,
            people=people,
            ci_user=ci_user,
            azure=azure,
            gcp=gcp,
            cluster=cluster,
            images=images,
            external_clients=external,
            vpn_ips=vpn,
        )

    # -- network --------------------------------------------------------------------------------

    def _vpc(self, account: Account, region: str, octet: int) -> Vpc:
        ids = self.ids
        vpc_id = "vpc-" + ids.hex(17)
        subnets = []
        for k, (az, public) in enumerate(((f"{region}a", True), (f"{region}b", True), (f"{region}a", False),
                                           (f"{region}b", False))):
            kind = "public" if public else "private"
            subnets.append(Subnet("subnet-" + ids.hex(17), vpc_id, f"10.{octet}.{k * 32}.0/19", az, public,
                                  f"{account.name}-{kind}-{az[-1]}"))
        groups = {p: "sg-" + ids.hex(17) for p in ("web", "app", "db", "bastion", "k8s", "lambda")}
        return Vpc(vpc_id, f"10.{octet}.0.0/16", region, account.account_id, subnets, ids.public_ip(), groups)

    def _host_ip(self, subnet: Subnet, used: set[str]) -> str:
        net = ipaddress.ip_network(subnet.cidr)
        while True:
            addr = str(net.network_address + self.rng.randint(4, net.num_addresses - 2))
            if addr not in used:
                used.add(addr)
                return addr

    # -- identities ------------------------------------------------------------------------------

    def _roles(self, accounts: dict[str, Account], partner_id: str) -> None:
        sec, prod, dev = accounts["security"], accounts["prod"], accounts["dev"]
        for account in (prod, dev):
            trusted = [sec.account_id]
            account.roles += [
                Role(account.account_id, "Admin", "/", self.role_id(), "human", _trust_accounts(trusted),
                     managed=["arn:aws:iam::aws:policy/AdministratorAccess"]),
                Role(account.account_id, "Developer", "/", self.role_id(), "human", _trust_accounts(trusted),
                     managed=["arn:aws:iam::aws:policy/PowerUserAccess"]),
                Role(account.account_id, "ReadOnly", "/", self.role_id(), "human", _trust_accounts(trusted),
                     managed=["arn:aws:iam::aws:policy/ReadOnlyAccess"]),
                Role(account.account_id, "ci-deploy", "/", self.role_id(), "ci", _trust_accounts(trusted),
                     inline={"deploy": _policy(_allow(["lambda:*", "s3:*", "ec2:*", "apigateway:*", "ecr:*",
                                                       "eks:Describe*", "iam:PassRole"]))}),
                Role(account.account_id, "batch-runner", "/", self.role_id(), "batch",
                     _trust_service("events.amazonaws.com"),
                     inline={"batch": _policy(_allow(["ec2:StartInstances", "ec2:StopInstances",
                                                      "ec2:DescribeInstances", "s3:GetObject", "s3:PutObject"]))}),
            ]
        prod.roles.append(Role(prod.account_id, "partner-monitoring", "/", self.role_id(), "partner",
                               _trust_accounts([partner_id], external_id=self.ids.hex(24)),
                               managed=["arn:aws:iam::aws:policy/SecurityAudit"]))
        prod.roles.append(Role(prod.account_id, "data-pipeline", "/", self.role_id(), "pipeline",
                               _trust_accounts([dev.account_id]),
                               inline={"data": _policy(_allow(["s3:GetObject", "s3:ListBucket", "s3:PutObject"]))}))
        dev.roles.append(Role(dev.account_id, "etl-dev", "/", self.role_id(), "pipeline",
                              _trust_accounts([dev.account_id]),
                              inline={"etl": _policy(_allow(["sts:AssumeRole"],
                                                            [f"arn:aws:iam::{prod.account_id}:role/data-pipeline"]),
                                                     _allow(["s3:*"]))}))
        sec.roles += [
            Role(sec.account_id, "SecurityAudit", "/", self.role_id(), "human", _trust_accounts([sec.account_id]),
                 managed=["arn:aws:iam::aws:policy/SecurityAudit"]),
            Role(sec.account_id, "log-archive-reader", "/", self.role_id(), "monitoring",
                 _trust_service("lambda.amazonaws.com"),
                 inline={"logs": _policy(_allow(["s3:GetObject", "s3:ListBucket"]))}),
        ]

    def _people(self, accounts: dict[str, Account]) -> tuple[list[Person], Person]:
        ids, rng = self.ids, self.rng
        sec, prod, dev = accounts["security"], accounts["prod"], accounts["dev"]
        people: list[Person] = []
        logins: set[str] = set()
        office_ips = {team: ids.public_ip() for team, *_ in TEAMS}
        hours = self.days * 24
        countries = {"platform": "GB", "backend": "DE", "data": "US", "frontend": "US", "sre": "IN",
                     "security": "FR", "finance-it": "GB"}
        for i in range(self.size.people):
            team, tz, start, end = TEAMS[i % len(TEAMS)]
            login = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}"
            suffix = 2
            while login in logins:  # more people than name pairs: number the namesakes
                login = f"{login.rstrip('0123456789')}{suffix}"
                suffix += 1
            logins.add(login)
            # Data analysts and some developers keep IAM users in the workload accounts (legacy
            # access keys); everyone else signs in to the security hub and assumes roles.
            if team == "data":
                home = prod
            elif team in ("backend", "frontend") and rng.random() < 0.4:
                home = dev
            else:
                home = sec
            shift = rng.choice((-1, 0, 0, 0, 1))
            person = Person(
                login=login,
                display=login.replace(".", " ").title(),
                team=team,
                tz=tz,
                start_hour=start + shift,
                end_hour=end + shift,
                oncall=team in ("sre", "platform") and rng.random() < 0.35,
                account_id=home.account_id,
                user_id="AIDA" + ids.upper(17),
                access_key="AKIA" + ids.upper(16),
                office_ip=office_ips[team],
                home_ip=ids.public_ip(),
                groups=[team, "admins"] if team == "security" and rng.random() < 0.3 else [team],
                azure_oid=ids.uuid(),
                country=countries[team],
            )
            if home is sec:
                person.assumable = [dev.role("Developer"), prod.role("ReadOnly")]
                if team in ("sre", "platform"):
                    person.assumable += [prod.role("Admin"), prod.role("Developer")]
                if team == "security":
                    person.assumable = [sec.role("SecurityAudit"), prod.role("ReadOnly"), dev.role("ReadOnly")]
            elif home is dev:
                person.assumable = [dev.role("etl-dev")] if rng.random() < 0.5 else []
            people.append(person)
        # New hires join mid-period; one person per few dozen leaves (access removed).
        joiners = max(1, len(people) // 25)
        for person in rng.sample(people, joiners):
            person.joins_hour = rng.randint(hours // 3, max(hours // 3, (2 * hours) // 3))
        ci_user = Person(
            login="ci-bot", display="CI Bot", team="platform", tz=0, start_hour=0, end_hour=24, oncall=False,
            account_id=sec.account_id, user_id="AIDA" + ids.upper(17), access_key="AKIA" + ids.upper(16),
            office_ip=ids.public_ip(), home_ip=ids.public_ip(), groups=["ci"],
            assumable=[prod.role("ci-deploy"), dev.role("ci-deploy")],
        )
        sec.groups = {
            "platform": [_allow(["sts:AssumeRole"], "*")],
            "backend": [_allow(["sts:AssumeRole"], [r.arn for r in (dev.role("Developer"), prod.role("ReadOnly"))])],
            "frontend": [_allow(["sts:AssumeRole"], [r.arn for r in (dev.role("Developer"), prod.role("ReadOnly"))])],
            "sre": [_allow(["sts:AssumeRole"], "*")],
            "security": [_allow(["sts:AssumeRole"], "*"), _allow(["iam:Get*", "iam:List*"])],
            "finance-it": [_allow(["ce:Get*", "budgets:View*"])],
            "admins": [_allow(["iam:*"])],
            "ci": [_allow(["sts:AssumeRole"], [prod.role("ci-deploy").arn, dev.role("ci-deploy").arn])],
        }
        prod.groups = {"data": [_allow(["s3:GetObject", "s3:ListBucket", "s3:ListAllMyBuckets", "athena:*"])]}
        dev.groups = {
            "backend": [_allow(["ec2:Describe*", "s3:*", "lambda:*", "logs:*", "sts:AssumeRole"])],
            "frontend": [_allow(["ec2:Describe*", "s3:*", "cloudfront:*", "sts:AssumeRole"])],
        }
        return people, ci_user

    # -- compute and data ------------------------------------------------------------------------

    def _compute(self, account: Account) -> None:
        ids, rng = self.ids, self.rng
        per_region = self.size.vms_per_region if account.name != "security" else max(3, self.size.vms_per_region // 5)
        service_roles: dict[str, Role] = {}
        for vpc in account.vpcs:
            used: set[str] = set()
            for n in range(per_region):
                service = SERVICES[n % len(SERVICES)] if account.name != "security" else "siem"
                tier = ("web", "app", "app", "worker", "bastion")[n % 5] if n else "bastion"
                public = tier in ("web", "bastion")
                subnet = vpc.subnets[n % 2] if public else vpc.subnets[2 + n % 2]
                key = f"{service}-{tier}"
                role = service_roles.get(key)
                if role is None and tier != "bastion":
                    role = Role(account.account_id, f"{service}-{tier}-instance", "/", self.role_id(), "instance",
                                _trust_service("ec2.amazonaws.com"),
                                inline={"app": _policy(_allow(["s3:GetObject", "s3:PutObject", "sqs:*",
                                                               "ssm:GetParameter", "kms:Decrypt"]))},
                                instance_profile_id="AIPA" + ids.upper(17))
                    service_roles[key] = role
                    account.roles.append(role)
                cves: list[str] = []
                if rng.random() < 0.3:
                    pool = [c[0] for c in CVE_CATALOGUE]
                    cves = sorted(rng.sample(pool, rng.randint(1, 3)))
                itype = rng.choice(("t3.medium", "m5.large", "m5.xlarge", "c5.large", "r5.large"))
                account.instances.append(Instance(
                    instance_id="i-" + ids.hex(17), account_id=account.account_id, region=vpc.region,
                    subnet=subnet, vpc_id=vpc.vpc_id, private_ip=self._host_ip(subnet, used),
                    public_ip=ids.public_ip() if public else None, instance_type=itype,
                    name=f"{account.name}-{service}-{tier}-{n:03d}", service=service, role=role,
                    eni_id="eni-" + ids.hex(17), sg_id=vpc.security_groups["web" if public else "app"],
                    ami="ami-" + ids.hex(17), launch_time=self.created, cves=cves,
                ))
            vpc_used = used
            for db_n in range(self.size.databases_per_region if account.name != "security" else 0):
                engine = rng.choice(("postgres", "mysql", "aurora-postgresql"))
                ident = f"{account.name}-{SERVICES[db_n % len(SERVICES)]}-db"
                if vpc.region != account.regions[0]:
                    ident += "-" + vpc.region.split("-")[0]
                account.databases.append(Database(ident, account.account_id, vpc.region, engine,
                                                  self._host_ip(vpc.subnets[2], vpc_used), vpc.subnets[2:],
                                                  vpc.vpc_id, vpc.security_groups["db"], "db-" + ids.upper(26)))
            webs = [i for i in account.instances if i.region == vpc.region and "-web-" in i.name]
            if webs and account.name != "security":
                name = f"{account.name}-web-{vpc.region.split('-')[0]}"
                account.load_balancers.append(LoadBalancer(
                    name, account.account_id, vpc.region,
                    f"arn:aws:elasticloadbalancing:{vpc.region}:{account.account_id}:loadbalancer/app/{name}/"
                    + ids.hex(16),
                    f"{name}-{ids.digits(10)}.{vpc.region}.elb.amazonaws.com", vpc.vpc_id, vpc.subnets[:2],
                    vpc.security_groups["web"], webs, [self._host_ip(vpc.subnets[0], vpc_used),
                                                       self._host_ip(vpc.subnets[1], vpc_used)]))

    def _data(self, account: Account) -> None:
        ids, rng = self.ids, self.rng
        region = account.regions[0]
        kinds = ("exports", "raw", "logs", "artifacts", "reports", "backups", "static", "ml-features", "invoices")
        for n in range(self.size.buckets_per_account):
            kind = kinds[n % len(kinds)]
            name = f"{self.org_prefix()}-{account.name}-{kind}-{n:03d}" if n >= len(kinds) else \
                f"{self.org_prefix()}-{account.name}-{kind}"
            account.buckets.append(Bucket(name, account.account_id, region, self.created,
                                          kind in ("exports", "raw", "backups", "invoices")))
        for n in range(self.size.functions_per_account):
            service = SERVICES[(n * 3) % len(SERVICES)]
            name = f"{service}-{('ingest', 'notify', 'resize', 'cleanup', 'sync')[n % 5]}-{n:02d}"
            role = Role(account.account_id, f"{name}-role", "/service-role/", self.role_id(), "lambda",
                        _trust_service("lambda.amazonaws.com"),
                        inline={"exec": _policy(_allow(["logs:CreateLogStream", "logs:PutLogEvents",
                                                        "s3:GetObject", "dynamodb:PutItem"]))})
            account.roles.append(role)
            account.functions.append(Function(name, account.account_id, region, role,
                                              rng.choice(("python3.12", "nodejs20.x", "java21")),
                                              ids.upper(43) + "=", self.created))
        for function in account.functions[: max(1, len(account.functions) // 3)]:
            account.apis.append(RestApi(ids.hex(10), f"{function.name}-api", account.account_id, region,
                                        self.created, function))

    def org_prefix(self) -> str:
        return "corp"

    def _images(self) -> dict[str, list[str]]:
        rng = self.rng
        images: dict[str, list[str]] = {}
        for n, service in enumerate(SERVICES):
            ref = f"registry.corp.example.com/{service}:1.{n}.{rng.randint(0, 20)}"
            images[ref] = sorted(rng.sample([c[0] for c in CVE_CATALOGUE], rng.randint(0, 3)))
        images["docker.io/library/nginx:1.25.3"] = ["CVE-2023-44487"]
        images["docker.io/library/redis:7.2.4"] = []
        return images

    def _cluster(self, account: Account, images: dict[str, list[str]]) -> Cluster:
        ids, rng = self.ids, self.rng
        region = account.regions[0]
        vpc = account.vpc(region)
        role = Role(account.account_id, "eks-node-instance", "/", self.role_id(), "instance",
                    _trust_service("ec2.amazonaws.com"),
                    managed=["arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"],
                    instance_profile_id="AIPA" + ids.upper(17))
        account.roles.append(role)
        used = {i.private_ip for i in account.instances}
        nodes: list[Instance] = []
        for n in range(self.size.k8s_nodes):
            subnet = vpc.subnets[2 + n % 2]
            node = Instance(
                instance_id="i-" + ids.hex(17), account_id=account.account_id, region=region, subnet=subnet,
                vpc_id=vpc.vpc_id, private_ip=self._host_ip(subnet, used), public_ip=None,
                instance_type="m5.2xlarge", name=f"prod-eks-node-{n:03d}", service="eks", role=role,
                eni_id="eni-" + ids.hex(17), sg_id=vpc.security_groups["k8s"], ami="ami-" + ids.hex(17),
                launch_time=self.created, k8s_node=True,
            )
            nodes.append(node)
            account.instances.append(node)
        refs = sorted(images)
        pods: list[Pod] = []
        namespaces = ("default", "payments", "catalog", "platform", "monitoring", "kube-system")
        pod_net = ipaddress.ip_network(vpc.subnets[3].cidr)
        for n in range(self.size.pods):
            app = SERVICES[n % len(SERVICES)] if n % 7 else "node-exporter"
            ns = namespaces[n % len(namespaces)] if app != "node-exporter" else "monitoring"
            name = f"{app}-{ids.hex(10)}-{ids.hex(5)}"
            containers = [Container(app, rng.choice(refs[:-2]) if app != "node-exporter" else refs[-1],
                                    "sha256:" + ids.hex(64), "containerd://" + ids.hex(64))]
            if rng.random() < 0.4:
                containers.append(Container("sidecar-proxy", "docker.io/library/nginx:1.25.3",
                                            "sha256:" + ids.hex(64), "containerd://" + ids.hex(64)))
            ip = str(pod_net.network_address + 4 + (n * 7919) % (pod_net.num_addresses - 8))
            pods.append(Pod(name, ns, ids.uuid(), nodes[n % len(nodes)], ip, f"{app}-sa", containers, app))
        cluster = Cluster("prod-eks", account.account_id, region,
                          f"arn:aws:eks:{region}:{account.account_id}:cluster/prod-eks", nodes, pods, ids.public_ip())
        account.clusters.append(cluster)
        return cluster

    # -- other clouds ---------------------------------------------------------------------------------

    def _gcp(self, prod: Account) -> GcpEstate:
        ids = self.ids
        project = f"corp-analytics-{ids.digits(6)}"
        sas = [f"{n}@{project}.iam.gserviceaccount.com" for n in ("analytics-loader", "dashboards", "ml-train")]
        gcp = GcpEstate(
            project_id=project, project_number=ids.digits(12),
            buckets=[f"{project}-{k}" for k in ("warehouse", "ml-models", "exports", "scratch")],
            instances=[(f"etl-{n}", "us-central1-a", f"10.128.{n // 200}.{10 + n % 200}")
                       for n in range(max(2, self.size.vms_per_region // 6))],
            service_accounts=sas, pool="aws-prod-pool", federated_sa=sas[0],
        )
        gcp.federated_aws_role = prod.role("data-pipeline")
        return gcp

    def _azure(self) -> AzureEstate:
        ids = self.ids
        vms = [AzureVm(f"win-app-{n:02d}", "rg-apps" if n % 2 else "rg-shared", "westeurope", f"10.200.0.{10 + n}")
               for n in range(max(2, self.size.vms_per_region // 4))]
        return AzureEstate(
            tenant_id=ids.uuid(), subscription_id=ids.uuid(), vms=vms,
            storage_accounts=[("corpsharedfiles", "rg-shared"), ("corpbackupvault", "rg-shared")],
            service_principals=[("aws-backup-sync", ids.uuid(), ids.uuid()), ("terraform-ci", ids.uuid(), ids.uuid())],
        )


def build_estate(seed: int, size: SizeSpec, start: datetime, days: int) -> Estate:
    """The estate for ``seed``: identical entities for identical arguments."""
    return EstateBuilder(seed, size, start, days).build()
