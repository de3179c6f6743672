"""``gnnsec demo``: from nothing to scored findings in Neo4j Browser, in one command.

Starts the local Neo4j unless ``NEO4J_URI`` names a server, generates a small estate with
labelled attacks, ingests it through the real adapters, trains, scores, and prints the top
findings, how the generator's labelled attackers ranked, and two queries to paste into Browser.
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import click
from rich.markup import escape
from rich.panel import Panel

from gnnsec.cli.common import (
    connection_options,
    console,
    display_name,
    err_console,
    is_quiet,
    neo4j_options,
    progress,
    threads_option,
)
from gnnsec.config import models_dir, state_dir

DEMO_MARKER = "GnnsecDemo"
DEMO_DAYS = 8
SCORED_DAYS = 4
"""The demo trains on the first days and scores each of the last ones against everything before it. A day needs
the first observed day plus three more of history before it is scored (``TailConfig``), so with 8 days the last
4 are scored: the generator places the campaigns at fractions of the span, and these 4 hold stolen-key,
privesc, cryptomining and the insider's nights."""
FIRST_SCOREABLE = 4
"""Days of history before the first day that can be scored (warm-up 1 + minimum reference 3)."""
BROWSER_QUERIES = (
    "MATCH (r:ScoringRun)-[s:SCORED]->(n) WHERE s.anomalous RETURN date(r.window_start) AS day, labels(n)[0] AS label, "
    "n.uid AS uid, s.score AS score, s.rank AS rank, s.reasons AS reasons ORDER BY day, score DESC, s.raw DESC",
    "MATCH (n) WHERE n.anomaly_score IS NOT NULL RETURN labels(n)[0] AS label, n.uid AS uid, n.anomaly_score AS score, "
    "date(n.score_window) AS day, n.anomaly_reasons AS reasons ORDER BY score DESC, n.anomaly_raw DESC LIMIT 25",
    "MATCH p = (a)-[r]->(b) WHERE r.edge_anomaly >= 0.99 RETURN p LIMIT 50",
)


def _campaign_days(labels: Path) -> dict[tuple[str, str], set[str]]:
    """(campaign, day) → uids of its labelled entities taking part in its activity that day."""
    with (labels / "entities.csv").open(newline="", encoding="utf-8") as handle:
        entities = {row["uid"]: row.get("campaign", "") for row in csv.DictReader(handle)}
    out: dict[tuple[str, str], set[str]] = {}
    with (labels / "activity.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for uid in (row["src_uid"], row["dst_uid"]):
                if uid in entities:
                    out.setdefault((row["campaign"], row["time"][:10]), set()).add(uid)
    return out


def _say(message: str) -> None:
    if not is_quiet():
        err_console.print(message, style="dim")


def _ensure_server(cache: Path | None = None) -> tuple[str | None, float]:
    """Start the local server unless --neo4j-uri / NEO4J_URI names one; returns (Browser URL, seconds)."""
    from gnnsec.graphdb.local import LocalNeo4j

    if connection_options().uri:
        return None, 0.0  # connecting says clearly when that server does not answer
    began = time.perf_counter()
    status = LocalNeo4j(cache=cache).start(progress=_say)
    return status.browser_url, time.perf_counter() - began


@click.command("demo")
@neo4j_options
@click.option("--seed", default=42, show_default=True, help="Seed of the generated estate.")
@click.option("--size", type=click.Choice(["small", "medium"]), default="small", show_default=True,
              help="Estate size: small runs in a minute or two on a laptop; medium has more accounts and events.")
@click.option("--epochs", default=60, show_default=True, help="Most training epochs (early stopping on validation).")
@click.option("--days", default=DEMO_DAYS, show_default=True, type=click.IntRange(FIRST_SCOREABLE + 1, 60),
              help=f"Days generated; the last {SCORED_DAYS} (or all after the first {FIRST_SCOREABLE}) are scored "
                   "against the ones before.")
@click.option("--reset", is_flag=True, help="Wipe a non-empty database that is not a previous demo's.")
@threads_option
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), envvar="GNNSEC_CACHE", show_envvar=True,
              help="Where the local Neo4j's jars are downloaded once (default: ~/.cache/gnnsec).")
def demo(seed: int, size: str, epochs: int, days: int, reset: bool, cache: Path | None) -> None:
    """From nothing to scored findings: start Neo4j, generate, ingest, train, score, report."""
    from gnnsec.cli.common import connected
    from gnnsec.gnn.checkpoint import save_checkpoint
    from gnnsec.gnn.model import ModelConfig
    from gnnsec.gnn.train import TrainConfig
    from gnnsec.graphdb.export import SnapshotFilter
    from gnnsec.graphdb.ingest import ingest
    from gnnsec.graphdb.loader import delete_everything
    from gnnsec.ingest.pipeline import discover
    from gnnsec.synth import generate
    from gnnsec.workflow import activity_days, score_windows, train_from_graph

    timings: dict[str, float] = {}
    browser_url, timings["neo4j start"] = _ensure_server(cache)

    began = time.perf_counter()
    estate = state_dir() / "demo" / f"estate-{size}-{seed}"
    if estate.exists():
        shutil.rmtree(estate)
    with progress(f"generating a {size} estate (seed {seed})"):
        summary = generate(estate, seed=seed, size=size, days=days)
    timings["generate"] = time.perf_counter() - began
    console.print(f"generated {summary.total_events:,} events over {summary.nodes:,} entities with "
                  f"{summary.malicious_entities} labelled attack entities in {len(summary.campaigns)} campaigns "
                  f"→ {estate}")

    with connected(ensure_schema=True) as (driver, database):
        records, _, _ = driver.execute_query(
            f"RETURN COUNT {{ MATCH (m:{DEMO_MARKER}) }} AS demo, "
            "COUNT { MATCH (n) WHERE NOT n:IngestedBatch AND NOT n:ScoringRun } AS nodes",
            database_=database,
        )
        demo_before, nodes_before = records[0]["demo"], records[0]["nodes"]
        if nodes_before and not demo_before and not reset:
            raise click.ClickException(
                f"the database already holds {nodes_before:,} nodes that a demo did not create; the demo wipes "
                "its database, so run it against an empty one or pass --reset"
            )
        delete_everything(driver, database)
        driver.execute_query(f"MERGE (:{DEMO_MARKER} {{seed: $seed, size: $size}})", seed=seed, size=size,
                             database_=database)

        began = time.perf_counter()
        items, _ = discover([estate])
        with progress(f"ingesting {len(items)} files"):
            report = ingest(driver, items, database=database)
        timings["ingest"] = time.perf_counter() - began
        events = sum(f.events for f in report.files)
        console.print(f"ingested {len(report.files)} files, {events:,} activity edges "
                      f"({sum(report.totals.nodes_created.values()):,} nodes, "
                      f"{sum(report.totals.relationships_created.values()):,} relationships)")

        all_days = activity_days(driver, database)
        scored_days = all_days[max(FIRST_SCOREABLE, len(all_days) - SCORED_DAYS):]
        began = time.perf_counter()
        config = TrainConfig(model=ModelConfig(kind="rgcn"), epochs=epochs, patience=10, seed=seed, device="auto")
        with progress("training the RGCN (self-supervised)") as update:
            checkpoint, result, _ = train_from_graph(
                driver, SnapshotFilter(until=scored_days[0]), config, database=database,
                progress=lambda stats, total=None: update(
                    f"training the RGCN: epoch {stats.epoch + 1}, loss {stats.loss:.3f}"),
            )
        model_path = models_dir() / f"demo-{size}-{seed}.pt"
        save_checkpoint(model_path, checkpoint)
        shutil.copyfile(model_path, models_dir() / "latest.pt")
        timings["train"] = time.perf_counter() - began
        console.print(f"trained {len(result.epochs)} epochs on {result.device} in {result.seconds:.1f} s on the days "
                      f"before {scored_days[0].date()} → {model_path}")

        began = time.perf_counter()
        with progress("scoring") as update:
            results = score_windows(driver, scored_days, model_id="history", database=database,
                                    progress=update)
        timings["score"] = time.perf_counter() - began

    from gnnsec.cli.score import print_findings

    for scored in results:
        day = scored.run.window_start.date() if scored.run.window_start else "?"
        print_findings(scored.node_scores, 10, title=f"{day}: top 10 of {scored.run.nodes_scored:,}")
    by_day = {str(r.run.window_start.date()): r for r in results if r.run.window_start}
    from gnnsec.cli.output import print_table

    rows: list[list[str]] = []
    for (campaign, day), uids in sorted(_campaign_days(estate / "labels").items(), key=lambda kv: (kv[0][1], kv[0][0])):
        scored_day = by_day.get(day)
        if scored_day is None:
            continue
        scores = [s for s in scored_day.node_scores if s.uid in uids and s.label in ("User", "Role", "VM", "Function")]
        if not scores:
            continue
        best = min(scores, key=lambda s: (s.rank, -s.score))
        of = sum(1 for s in scored_day.node_scores if s.label == best.label)
        rows.append([campaign, day[5:], display_name(best.uid), best.label, f"{best.rank} of {of}",
                     f"{best.score:.4f}", "yes" if best.anomalous else "no"])
    print_table("Each campaign on the day it acts: its best entity's rank within its label (labels never used)",
                ("campaign", "day", "entity", "label", "rank", "score", "flag"), rows, right=("rank", "score"))
    # wrapped between timings, never inside one (rich would fold "11.9 s" at 80 columns when piped)
    line = ""
    for part in (f"{name} {seconds:.1f} s" for name, seconds in timings.items()):
        if line and len(line) + 3 + len(part) > 78:
            console.print(line, soft_wrap=True)
            line = ""
        line = f"{line} · {part}" if line else part
    console.print(line, soft_wrap=True)
    if browser_url:
        from gnnsec.graphdb.local import LocalNeo4j

        login = f"user neo4j, password in {LocalNeo4j().password_file} (or $NEO4J_PASSWORD if you set it)"
        where = f"{browser_url} ({login})"
    else:
        where = "your Neo4j Browser (the server --neo4j-uri / NEO4J_URI names)"
    queries = "\n\n".join(escape(q) for q in BROWSER_QUERIES)
    guide = "The whole hunting pack as slides in Browser: gnnsec db guide --serve, then type the :play line it prints."
    console.print(Panel(f"Open {where} and paste:\n\n{queries}\n\n{guide}", title="Hunt in Neo4j Browser"))
