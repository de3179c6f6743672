"""Stable ``uid`` conventions shared by every adapter and by the estate generator.

A uid must be the same whichever file mentions the entity, so an IAM export, a CloudTrail
event and a flow log all land on one node.  Provider identifiers are used as they are where
they are globally unique (AWS ARNs, Azure resource ids, GCP full resource names); everything
else gets a short typed prefix.  The generator writes its label files with these functions,
so labels and ingested nodes always agree.
"""

from __future__ import annotations

# One two-line function per convention, alike by design: each spells one uid format in full, where a shared
# builder would hide it (duplicates reports these as same-shape runs).

# --- accounts -----------------------------------------------------------------------------


def aws_account(account_id: str) -> str:
    return f"aws:account:{account_id}"


def azure_subscription(subscription_id: str) -> str:
    return f"azure:subscription:{subscription_id.lower()}"


def gcp_project(project_id: str) -> str:
    return f"gcp:project:{project_id}"


# --- network and vulnerabilities ----------------------------------------------------------


def ip(address: str) -> str:
    return f"ip:{address.strip()}"


def cve(vulnerability_id: str) -> str:
    return f"cve:{vulnerability_id.strip().upper()}"


# --- AWS ----------------------------------------------------------------------------------


def aws_iam_user(account_id: str, name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{account_id}:user{path}{name}"


def aws_iam_role(account_id: str, name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{account_id}:role{path}{name}"


def aws_ec2_instance(region: str, account_id: str, instance_id: str) -> str:
    return f"arn:aws:ec2:{region}:{account_id}:instance/{instance_id}"


def aws_subnet(region: str, account_id: str, subnet_id: str) -> str:
    return f"arn:aws:ec2:{region}:{account_id}:subnet/{subnet_id}"


def aws_vpc(region: str, account_id: str, vpc_id: str) -> str:
    return f"arn:aws:ec2:{region}:{account_id}:vpc/{vpc_id}"


def aws_bucket(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def aws_lambda(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:function:{name}"


def aws_rds(region: str, account_id: str, identifier: str) -> str:
    return f"arn:aws:rds:{region}:{account_id}:db:{identifier}"


def aws_classic_elb(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:elasticloadbalancing:{region}:{account_id}:loadbalancer/{name}"


# --- Azure --------------------------------------------------------------------------------


def azure_resource(resource_id: str) -> str:
    """Azure resource ids are case-insensitive; lower-case them so every source agrees."""
    return resource_id.strip().lower()


def azure_user(user_principal_name: str) -> str:
    return f"azure:user:{user_principal_name.strip().lower()}"


def azure_principal(object_id: str) -> str:
    """A service principal or managed identity seen only by its object/application id."""
    return f"azure:principal:{object_id.strip().lower()}"


# --- GCP ----------------------------------------------------------------------------------


def gcp_user(email: str) -> str:
    return f"gcp:user:{email.strip().lower()}"


def gcp_service_account(email: str) -> str:
    """Service accounts are roles a principal acts as (impersonation is ASSUMES_ROLE)."""
    return f"gcp:serviceAccount:{email.strip().lower()}"


def gcp_resource(full_resource_name: str) -> str:
    """A full resource name such as ``//compute.googleapis.com/projects/p/zones/z/instances/i``."""
    return full_resource_name.strip()


# --- Kubernetes ---------------------------------------------------------------------------


def k8s_cluster(name: str) -> str:
    return f"k8s:cluster:{name}"


def k8s_node(cluster: str, name: str) -> str:
    return f"k8s:node:{cluster}/{name}"


def k8s_pod(cluster: str, namespace: str, name: str) -> str:
    return f"k8s:pod:{cluster}/{namespace}/{name}"


def k8s_container(cluster: str, namespace: str, pod: str, name: str) -> str:
    return f"k8s:container:{cluster}/{namespace}/{pod}/{name}"


def k8s_user(cluster: str, username: str) -> str:
    return f"k8s:user:{cluster}/{username}"


def container_image(reference: str) -> str:
    """A container image as scanned by Trivy/Grype (``repo/name:tag`` or ``…@sha256:…``)."""
    return f"image:{reference.strip()}"
