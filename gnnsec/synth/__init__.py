"""``gnnsec synth``: a multi-cloud estate with benign texture and labelled attack campaigns.

:func:`generate` builds the estate, writes its IAM/inventory/Kubernetes/Trivy files, then walks
the period hour by hour: benign behaviour and campaign steps fill one :class:`HourBatch`, which is
written and dropped, so memory never holds more than an hour of events.  The same seed gives the
same bytes in every file.
"""

from __future__ import annotations

import csv
import io
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from gnnsec.errors import InputError
from gnnsec.synth.behaviour import BenignBehaviour
from gnnsec.synth.campaigns import CAMPAIGNS, TECHNIQUES, Labels, plan_campaigns
from gnnsec.synth.estate import BASE_DATE, SIZES, Estate, build_estate
from gnnsec.synth.records import HourBatch, RecordFactory
from gnnsec.synth.writers import OutputWriter, write_json

__all__ = ["CAMPAIGNS", "SIZES", "Summary", "SynthError", "generate"]


class SynthError(InputError):
    """Bad arguments to the generator (unknown size or campaign, non-positive days)."""


@dataclass(slots=True)
class Summary:
    """What was generated, for the CLI, the README and ``manifest.json``."""

    out_dir: Path
    seed: int
    size: str
    days: int
    start: str
    campaigns: list[str]
    files: dict[str, int]
    events: dict[str, int]
    nodes: int
    malicious_entities: int
    malicious_activity: int
    seconds: float = 0.0
    entity_counts: dict[str, int] = field(default_factory=dict)

    @property
    def total_events(self) -> int:
        return sum(self.events.values())


def generate(
    out_dir: Path | str,
    seed: int = 7,
    size: str = "small",
    days: int | None = None,
    campaigns: list[str] | None = None,
    start: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Generate the estate for ``seed`` into ``out_dir`` and return what was written."""
    if size not in SIZES:
        raise SynthError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    spec = SIZES[size]
    days = spec.default_days if days is None else days
    if days < 1:
        raise SynthError(f"--days must be at least 1, got {days}")
    names = list(CAMPAIGNS) if campaigns is None else campaigns
    unknown = [n for n in names if n not in CAMPAIGNS]
    if unknown:
        raise SynthError(f"unknown campaign(s) {', '.join(unknown)}; known: {', '.join(CAMPAIGNS)}")
    began = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = start or BASE_DATE
    estate = build_estate(seed, spec, start, days)
    behaviour = BenignBehaviour(estate)
    labels = Labels()
    planned = plan_campaigns(estate, behaviour, sorted(names, key=CAMPAIGNS.index), labels)
    writer = OutputWriter(out, estate)
    writer.write_static()
    try:
        for h in range(estate.hours):
            t0 = start + timedelta(hours=h)
            batch = HourBatch()
            behaviour.hour(h, batch)
            factory = RecordFactory(_campaign_rng(seed, h))
            for campaign in planned:
                campaign.run_hour(h, t0, factory, batch)
            writer.write_hour(t0, batch)
            if progress is not None:
                progress(h + 1, estate.hours)
    finally:
        writer.close()
    entity_rows, activity_rows = _write_labels(out, labels)
    counts = entity_counts(estate)
    summary = Summary(
        out_dir=out, seed=seed, size=size, days=days, start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        campaigns=sorted(names, key=CAMPAIGNS.index), files=dict(sorted(writer.files.items())),
        events=dict(sorted(writer.events.items())), nodes=sum(counts.values()) + len(writer.ips),
        malicious_entities=entity_rows, malicious_activity=activity_rows, entity_counts=counts,
    )
    _write_manifest(out, summary, len(writer.ips))
    summary.seconds = time.perf_counter() - began
    return summary


def _campaign_rng(seed: int, hour: int) -> random.Random:
    return random.Random(f"campaign-hour:{seed}:{hour}")


def entity_counts(estate: Estate) -> dict[str, int]:
    """Entities the static files describe, by schema label (IPs are counted from the events)."""
    accounts = list(estate.accounts.values())
    cves = {c for i in estate.all_instances() for c in i.cves} | {c for cs in estate.images.values() for c in cs}
    return {
        "CloudAccount": len(accounts) + 3,
        "User": len(estate.people) + 1 + 2 * len(estate.people),
        "Role": sum(len(a.roles) for a in accounts) + len(estate.gcp.service_accounts),
        "VM": len(estate.all_instances()) + len(estate.azure.vms) + len(estate.gcp.instances),
        "Subnet": sum(len(v.subnets) + 1 for a in accounts for v in a.vpcs),
        "Bucket": sum(len(a.buckets) for a in accounts) + len(estate.gcp.buckets) + len(estate.azure.storage_accounts),
        "Function": sum(len(a.functions) for a in accounts),
        "Database": sum(len(a.databases) for a in accounts),
        "LoadBalancer": sum(len(a.load_balancers) for a in accounts),
        "Gateway": sum(len(a.apis) for a in accounts),
        "Cluster": 1,
        "Pod": len(estate.cluster.pods),
        "Container": sum(len(p.containers) for p in estate.cluster.pods),
        "CVE": len(cves),
    }


def _write_labels(out: Path, labels: Labels) -> tuple[int, int]:
    folder = out / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    rows = sorted(
        (e.uid, e.label, e.campaign, ";".join(sorted(e.techniques)),
         e.first.strftime("%Y-%m-%dT%H:%M:%SZ") if e.first else "",
         e.last.strftime("%Y-%m-%dT%H:%M:%SZ") if e.last else "")
        for e in labels.entities.values()
    )
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(["uid", "label", "campaign", "technique", "first_malicious", "last_malicious"])
    w.writerows(rows)
    (folder / "entities.csv").write_text(buffer.getvalue(), encoding="utf-8")
    activity = sorted({(a.src_uid, a.type, a.dst_uid, a.time, a.campaign, a.technique) for a in labels.activity},
                      key=lambda r: (r[3], r[4], r[0], r[1], r[2], r[5]))
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(["src_uid", "type", "dst_uid", "time", "campaign", "technique"])
    w.writerows(activity)
    (folder / "activity.csv").write_text(buffer.getvalue(), encoding="utf-8")
    # Distinct uids, as `gnnsec eval` counts them: an entity used by two campaigns has two rows.
    return len({row[0] for row in rows}), len(activity)


def _write_manifest(out: Path, summary: Summary, ip_count: int) -> None:
    campaigns = summary.campaigns
    write_json(out / "manifest.json", {
        "generator": "gnnsec synth",
        "seed": summary.seed,
        "size": summary.size,
        "days": summary.days,
        "start": summary.start,
        "campaigns": {c: sorted(TECHNIQUES[c]) for c in campaigns},
        "files": summary.files,
        "events": summary.events,
        "events_total": summary.total_events,
        "nodes_estimate": summary.nodes,
        "entities": summary.entity_counts | {"IP": ip_count},
        "labels": {"entities": summary.malicious_entities, "activity": summary.malicious_activity},
    })
    command = (f"gnnsec synth --out <this directory> --seed {summary.seed} --size {summary.size} --days {summary.days} "
               f"--campaigns {','.join(campaigns)}")
    lines = [
        "# Synthetic multi-cloud estate",
        "",
        f"Generated by `{command}` (start {summary.start}). The same command gives the same bytes.",
        "",
        "Everything here is synthetic: account ids, people, addresses and keys are drawn from a seeded RNG.",
        "",
        "| source | files | events |",
        "| --- | ---: | ---: |",
    ]
    for kind in sorted(set(summary.files) | set(summary.events)):
        lines.append(f"| {kind} | {summary.files.get(kind, 0)} | {summary.events.get(kind, 0)} |")
    lines += [
        "",
        f"About {summary.nodes} graph nodes, {summary.total_events} events.",
        "",
        "Layout: `aws/<account>/iam/authorization-details.json`,",
        "`aws/<account>/inventory/<region>/<service>-<call>.json`,",
        "`aws/<account>/cloudtrail/<region>/<yyyy>/<mm>/<dd>/*.json.gz` (hourly),",
        "`flows/<account>/<region>/*.log.gz`, `azure/activity/*.json`, `azure/signin/*.json`, `gcp/audit/*.jsonl`,",
        "`k8s/<cluster>/{objects.json,audit.jsonl}`,",
        "`vulns/trivy-*.json`.",
        "",
        f"Ground truth in `labels/`: {summary.malicious_entities} malicious entities (`entities.csv`) and "
        f"{summary.malicious_activity} malicious relationships (`activity.csv`), uids as `gnnsec.ingest.uids` "
        "computes them. Campaigns: " + ", ".join(campaigns) + " (see docs/campaigns.md).",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")
