"""``gnnsec findings``: what scoring flagged, for an analyst (table), a script (JSON) or a SIEM (OCSF)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import click
from rich.text import Text

from gnnsec import __version__
from gnnsec.cli.common import connected, neo4j_options, window_filter
from gnnsec.cli.output import choose_format, emit, format_option, print_table, short_name, short_text

FORMATS = ("table", "json", "jsonl", "csv", "ocsf")
FIELDS = ("uid", "label", "name", "cloud", "account", "region", "window_start", "window_end", "score", "raw", "rank",
          "anomalous", "threshold", "calibration", "reasons", "evidence", "run_id", "model_id", "scored_at")
"""The JSON fields of a finding, in the order of the CSV header (docs/findings.md)."""
OCSF_VERSION = "1.1.0"
_SEVERITY = ((0.999, 4, "High"), (0.99, 3, "Medium"), (0.9, 2, "Low"), (0.0, 1, "Informational"))


def _epoch_ms(iso: str | None) -> int | None:
    return None if iso is None else int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def to_ocsf(finding: dict[str, Any]) -> dict[str, Any]:
    """One finding as an OCSF Detection Finding (class 2004, activity Create), required attributes first."""
    severity_id, severity = next((i, name) for floor, i, name in _SEVERITY if finding["score"] >= floor)
    uid = hashlib.blake2b(f"{finding['uid']}|{finding['window_start']}".encode(), digest_size=16).hexdigest()
    title = f"Unusual day for {finding['label']} {finding['name'] or finding['uid']}"
    event: dict[str, Any] = {
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": severity,
        "time": _epoch_ms(finding["scored_at"]),
        "status_id": 1,
        "status": "New",
        "message": "; ".join(finding["reasons"][:3]) or title,
        "metadata": {"version": OCSF_VERSION, "uid": uid,
                     "product": {"name": "gnnsec", "vendor_name": "gnnsec", "version": __version__}},
        "finding_info": {
            "uid": uid,
            "title": title,
            "desc": "; ".join(finding["reasons"]),
            "types": ["Unusual Behaviors"],
            "first_seen_time": _epoch_ms(finding["window_start"]),
            "last_seen_time": _epoch_ms(finding["window_end"]),
            "analytic": {"name": "gnnsec history detector", "type_id": 2, "type": "Behavioral",
                         "uid": finding["model_id"]},
        },
        "risk_score": round(100 * finding["score"]),
        "resources": [{"uid": finding["uid"], "type": finding["label"], "name": finding["name"] or finding["uid"],
                       "region": finding["region"], "cloud_partition": finding["cloud"],
                       "owner": {"account": {"uid": finding["account"]}} if finding["account"] else None}],
        "unmapped": {"gnnsec": {k: finding[k] for k in ("score", "raw", "rank", "calibration", "threshold",
                                                        "window_start", "window_end", "run_id", "evidence")}},
    }
    if finding["cloud"]:
        event["cloud"] = {"provider": str(finding["cloud"]).upper(), "region": finding["region"],
                          "account": {"uid": finding["account"]}}
    return event


@click.command("findings")
@neo4j_options
@click.option("--since", default=None, help="First day (ISO date) whose findings are listed.")
@click.option("--until", default=None, help="Day (ISO date, exclusive) up to which findings are listed.")
@click.option("--min-score", type=click.FloatRange(0, 1), default=None,
              help="List scores at or above this (default: the entities flagged anomalous).")
@click.option("--label", "labels", multiple=True, help="Only this label, e.g. User (repeatable).")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=100, show_default=True,
              help="Most findings listed (the highest scores first).")
@format_option("ocsf: one OCSF Detection Finding a line.", choices=FORMATS)
def findings(since: str | None, until: str | None, min_score: float | None, labels: tuple[str, ...], limit: int,
             fmt: str | None) -> None:
    """List what scoring flagged, most unusual first, with reasons and evidence (docs/findings.md)."""
    from gnnsec.workflow import list_findings

    flt = window_filter(since, until)
    fmt = choose_format(fmt)
    with connected() as (driver, database):
        rows = list_findings(driver, since=flt.since, until=flt.until, min_score=min_score, labels=labels,
                             limit=limit, database=database)
    if fmt == "ocsf":
        for row in rows:
            click.echo(json.dumps(to_ocsf(row), separators=(",", ":")))
    elif fmt != "table":
        emit(rows, fmt, columns=FIELDS if fmt == "csv" else None)
    else:
        print_table(f"{len(rows)} finding(s)", ("day", "label", "entity", "score", "rank", "why"),
                    [[(row["window_start"] or "")[:10], row["label"], short_name(row["uid"]),
                      Text(f"{row['score']:.4f}", style="bold red" if row["anomalous"] else ""), str(row["rank"]),
                      short_text("; ".join(row["reasons"][:3]))] for row in rows], right=("score", "rank"))
