"""``gnnsec score``, ``gnnsec explain`` and ``gnnsec feedback``: scores onto the graph, and back again."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from gnnsec.cli.common import (
    connected,
    console,
    display_name,
    neo4j_options,
    progress,
    threads_option,
    window_filter,
    window_options,
)
from gnnsec.config import latest_model_path
from gnnsec.workflow import model_id_of


def _load(model: Path | None) -> tuple[Any, Path]:
    from gnnsec.gnn.checkpoint import CheckpointError, load_checkpoint

    path = model or latest_model_path()
    if not path.exists():
        raise click.ClickException(f"no model at {path}: run `gnnsec train` first, or pass --model")
    try:
        return load_checkpoint(path, device="cpu"), path
    except CheckpointError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


PRINCIPAL_LABELS = ("User", "Role", "VM", "Function", "Pod", "Container", "CloudAccount")
"""Who acts: the findings list shows these by default (addresses and resources appear in their reasons)."""


def findings_table(node_scores: list[Any], limit: int = 10, title: str | None = None,
                   labels: tuple[str, ...] | None = PRINCIPAL_LABELS) -> Table:
    """The top-scored entities of a run with their reasons (ranked by calibrated score, then raw)."""
    table = Table(title=title or f"Top {limit} findings")
    for column in ("#", "label", "uid", "score", "rank", "why"):
        table.add_column(column, overflow="fold")
    shown = [s for s in node_scores if labels is None or s.label in labels]
    ranked = sorted(shown, key=lambda s: (-s.score, -getattr(s, "raw", 0.0)))[:limit]
    for position, node in enumerate(ranked, start=1):
        flag = "[bold red]" if node.anomalous else ""
        table.add_row(str(position), node.label, display_name(node.uid), f"{flag}{node.score:.4f}", str(node.rank),
                      "; ".join(node.reasons[:3]))
    return table


@click.command("score")
@neo4j_options
@window_options
@click.option("--all-unscored", is_flag=True,
              help="Score every complete day not yet scored, oldest first (default: only the latest one).")
@click.option("--history-days", default=30, show_default=True, type=click.IntRange(1, 3650),
              help="Days of history each day is compared with.")
@click.option("--with-gnn", is_flag=True,
              help="Add the trained model's DistMult improbability of new relationships (needs `gnnsec train`).")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Checkpoint for --with-gnn "
              "(default: latest).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Flag entities whose calibrated score is at or above this (default 0.99).")
@click.option("--floor", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="Keep a per-window (:ScoringRun)-[:SCORED]->(entity) history for scores at or above this.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@threads_option
@click.option("--top", default=10, show_default=True, help="Findings to print per window.")
@click.option("--all-labels", is_flag=True, help="List every label in the findings, not only principals.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "jsonl"]), default=None,
              help="table on a terminal, jsonl when piped (default): one line per scored day with its top findings.")
def score(since: str | None, until: str | None, clouds: tuple[str, ...], accounts: tuple[str, ...],
          all_unscored: bool, history_days: int, with_gnn: bool, model: Path | None, threshold: float | None,
          floor: float, device: str, top: int, all_labels: bool, fmt: str | None) -> None:
    """Score each day's activity against the history before it and write the scores to Neo4j.

    The unit is (entity, day): what an identity, workload or resource did that day, next to what it and
    its peers did in the HISTORY_DAYS before. Without --since, the latest complete day not yet scored
    is scored (--all-unscored: every such day). Re-scoring a day replaces that day's scores only.
    """
    from gnnsec.workflow import score_windows, windows_to_score

    flt = window_filter(since, until, clouds, accounts)
    checkpoint, path = _load(model) if with_gnn else (None, None)
    with connected() as (driver, database), progress("scoring") as update:
        try:
            windows = windows_to_score(driver, flt.since, flt.until, all_unscored, clouds, accounts, database)
            if not windows:
                console.print("nothing to score: every complete day with activity is scored "
                              "(re-score one with --since DAY)")
                return
            results = score_windows(
                driver, windows, clouds=clouds, accounts=accounts, checkpoint=checkpoint,
                model_id=model_id_of(path) if path else "history", history_days=history_days, threshold=threshold,
                floor=floor, database=database, device=device, progress=update,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    fmt = fmt or ("table" if console.is_terminal else "jsonl")
    if fmt != "table":
        _print_runs_json(results, top, None if all_labels else PRINCIPAL_LABELS, fmt)
        return
    for result in results:
        run = result.run
        day = run.window_start.date() if run.window_start else "?"
        console.print(findings_table(result.node_scores, top, title=f"{day}: top {top} of {run.nodes_scored:,}",
                                     labels=None if all_labels else PRINCIPAL_LABELS))
        console.print(
            f"run {run.run_id} ({day}): {run.nodes_scored:,} entities and {run.edges_scored:,} relationships "
            f"scored against {result.reference_pairs:,} past (entity, day) pairs in {run.seconds:.1f} s; "
            f"{run.anomalous_nodes:,} anomalous (calibrated score ≥ {run.threshold})"
        )


def _print_runs_json(results: list[Any], top: int, labels: tuple[str, ...] | None, fmt: str) -> None:
    """Each scored day as one JSON object: the run and its ``top`` findings (full uids, ISO times)."""
    import json

    def iso(moment: Any) -> str | None:
        return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    documents = []
    for result in results:
        run = result.run
        shown = [s for s in result.node_scores if labels is None or s.label in labels]
        ranked = sorted(shown, key=lambda s: (-s.score, -s.raw))[:top]
        documents.append({
            "run_id": run.run_id, "window_start": iso(run.window_start), "window_end": iso(run.window_end),
            "model_id": run.model_id, "threshold": run.threshold, "entities_scored": run.nodes_scored,
            "relationships_scored": run.edges_scored, "anomalous": run.anomalous_nodes,
            "reference_pairs": result.reference_pairs, "seconds": round(run.seconds, 3),
            "findings": [{"uid": s.uid, "label": s.label, "score": s.score, "raw": s.raw, "rank": s.rank,
                          "anomalous": s.anomalous, "calibration": s.calibration, "reasons": list(s.reasons)}
                         for s in ranked],
        })
    if fmt == "json":
        click.echo(json.dumps(documents, indent=2))
    else:
        for document in documents:
            click.echo(json.dumps(document, separators=(",", ":")))


@click.command("explain")
@neo4j_options
@click.argument("uid")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Checkpoint (default: latest).")
@click.option("--hops", default=2, show_default=True, help="Neighbourhood used to recompute the embedding.")
def explain(uid: str, model: Path | None, hops: int) -> None:
    """Explain why an entity scored high: unusual relationships, pulling neighbours, odd features."""
    from gnnsec.workflow import explain_uid, find_node_query

    with connected() as (driver, database):
        # Fail fast: an unknown uid is said before torch loads or anything is exported.
        found, _, _ = driver.execute_query("WITH $uid AS uid " + find_node_query() + " RETURN count(n) AS n",
                                          uid=uid, database_=database)
        if not found or not found[0]["n"]:
            raise click.ClickException(f"no node with uid {uid!r} in the graph (uids are case-sensitive; "
                                       "`gnnsec findings` lists scored ones)")
        checkpoint, _ = _load(model)
        try:
            why = explain_uid(driver, checkpoint, uid, database=database, hops=hops)
        except KeyError as exc:
            raise click.ClickException(str(exc.args[0])) from None
        records, _, _ = driver.execute_query(
            "MATCH (n) WHERE n.uid = $uid RETURN n.anomaly_score AS s, n.anomaly_rank AS r, n.anomalous AS a",
            uid=uid, database_=database,
        )
        days, _, _ = driver.execute_query(
            "MATCH (r:ScoringRun)-[s:SCORED]->(n) WHERE n.uid = $uid RETURN r.window_start AS day, s.score AS score, "
            "s.rank AS rank, s.anomalous AS anomalous, s.reasons AS reasons ORDER BY day DESC LIMIT 14",
            uid=uid, database_=database,
        )
    stored = records[0] if records else None
    console.print(f"[bold]{why.label}[/] {uid}")
    if stored is not None and stored["s"] is not None:
        console.print(f"stored score {stored['s']:.4f} (rank {stored['r']} in {why.label}), anomalous: {stored['a']}")
    if days:
        history = Table(title="Scored days (against its own history and its label's)")
        for column in ("day", "score", "rank", "anomalous", "why"):
            history.add_column(column, overflow="fold")
        for day in reversed(days):
            history.add_row(str(day["day"].to_native().date()), f"{day['score']:.4f}", str(day["rank"]),
                            "yes" if day["anomalous"] else "no", "; ".join(day["reasons"] or []))
        console.print(history)
    console.print(f"score on its {hops}-hop neighbourhood now: {why.score:.4f}")
    edges = Table(title="Least plausible relationships (DistMult)")
    for column in ("relationship", "direction", "peer", "edge anomaly"):
        edges.add_column(column, overflow="fold")
    for rel, direction, peer, anomaly in why.unusual_edges:
        edges.add_row(rel, direction, peer, f"{anomaly:.3f}")
    console.print(edges)
    features = Table(title=f"Features furthest from {why.label} peers")
    features.add_column("feature")
    features.add_column("z", justify="right")
    for name, z in why.unusual_features:
        features.add_row(name, f"{z:+.2f}")
    console.print(features)
    if why.pulling_neighbours:
        console.print("neighbours pulling it away from normal: " +
                      ", ".join(f"{peer} ({pull:.2f})" for peer, pull in why.pulling_neighbours))


@click.command("feedback")
@neo4j_options
@click.option("--benign", "benign", multiple=True, metavar="UID", help="Confirmed benign (repeatable).")
@click.option("--malicious", "malicious", multiple=True, metavar="UID", help="Confirmed malicious (repeatable).")
@click.option("--note", default=None, help="A short note stored with the verdict.")
@click.option("--analyst", envvar="GNNSEC_ANALYST", show_envvar=True, default=None,
              help="Who gives the verdict, stored with it (default: your login name).")
def feedback(benign: tuple[str, ...], malicious: tuple[str, ...], note: str | None, analyst: str | None) -> None:
    """Record an analyst verdict. Benign verdicts join the reference set at the next `gnnsec score`;
    `gnnsec train --adapt MODEL` fine-tunes the adapters on new benign data."""
    from gnnsec.workflow import record_feedback

    if not benign and not malicious:
        raise click.UsageError("give at least one --benign or --malicious UID")
    both = sorted(set(benign) & set(malicious))
    if both:
        raise click.UsageError(f"{', '.join(both)}: given as both --benign and --malicious; say which it is")
    analyst = analyst or getpass.getuser()
    missing: list[str] = []
    with connected() as (driver, database):
        if benign:
            missing += record_feedback(driver, benign, "benign", analyst, note=note, database=database)
        if malicious:
            missing += record_feedback(driver, malicious, "malicious", analyst, note=note, database=database)
    recorded = len(benign) + len(malicious) - len(missing)
    console.print(f"recorded {recorded} verdict(s) by {analyst}")
    if missing:
        raise click.ClickException(f"no node with uid: {', '.join(missing)}")
