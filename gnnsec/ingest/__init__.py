"""Ingest adapters: pure mappers from the files security teams export to schema records.

The registry maps the name users type to ``module:Class``; classes load lazily so a missing
optional dependency of one adapter never breaks the others.  ``auto`` tries each adapter's
``sniff`` in :data:`SNIFF_ORDER` (most specific first).
"""

from __future__ import annotations

import importlib

from gnnsec.ingest.base import Adapter

ADAPTERS: dict[str, str] = {
    "native": "gnnsec.ingest.native:NativeAdapter",
    "aws-iam": "gnnsec.ingest.aws_iam:AwsIamAdapter",
    "aws-inventory": "gnnsec.ingest.aws_inventory:AwsInventoryAdapter",
    "cloudtrail": "gnnsec.ingest.cloudtrail:CloudTrailAdapter",
    "azure-activity": "gnnsec.ingest.azure:AzureActivityAdapter",
    "azure-signin": "gnnsec.ingest.azure:AzureSignInAdapter",
    "gcp-audit": "gnnsec.ingest.gcp:GcpAuditAdapter",
    "k8s": "gnnsec.ingest.k8s:KubernetesObjectsAdapter",
    "k8s-audit": "gnnsec.ingest.k8s:KubernetesAuditAdapter",
    "vulns": "gnnsec.ingest.vulns:VulnerabilityReportAdapter",
    "flows": "gnnsec.ingest.flows:VpcFlowLogAdapter",
}

SNIFF_ORDER: tuple[str, ...] = (
    "native",
    "aws-iam",
    "aws-inventory",
    "cloudtrail",
    "azure-signin",
    "azure-activity",
    "gcp-audit",
    "k8s-audit",
    "k8s",
    "vulns",
    "flows",
)


ADAPTER_OPTIONS: dict[str, tuple[str, ...]] = {"k8s": ("cluster",), "k8s-audit": ("cluster",)}
"""Constructor options an adapter accepts (``gnnsec ingest --cluster`` for Kubernetes exports)."""


def get_adapter(name: str, **options: str | None) -> Adapter:
    """An instance of the adapter registered as ``name``, given the options it accepts."""
    try:
        target = ADAPTERS[name]
    except KeyError:
        # from None: the lookup's own KeyError only repeats the name this message already gives
        raise KeyError(f"unknown source {name!r}; known: {', '.join(sorted(ADAPTERS))}") from None
    module_name, class_name = target.split(":")
    accepted = {k: v for k, v in options.items() if k in ADAPTER_OPTIONS.get(name, ()) and v is not None}
    return getattr(importlib.import_module(module_name), class_name)(**accepted)
