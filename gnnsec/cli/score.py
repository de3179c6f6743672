"""``gnnsec score``, ``gnnsec explain`` and ``gnnsec feedback``: scores onto the graph, and back again."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from gnnsec.cli.common import connected, console, err_console, window_filter, window_options
from gnnsec.cli.train import latest_model_path


def _load(model: Path | None) -> tuple[Any, Path]:
    from gnnsec.gnn.checkpoint import CheckpointError, load_checkpoint

    path = model or latest_model_path()
    if not path.exists():
        raise click.ClickException(f"no model at {path}: run `gnnsec train` first, or pass --model")
    try:
        return load_checkpoint(path, device="cpu"), path
    except CheckpointError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


def findings_table(result: Any, limit: int = 10) -> Table:
    """The top-scored nodes of a run with their reasons."""
    table = Table(title=f"Top {limit} findings")
    for column in ("rank", "label", "uid", "score", "why"):
        table.add_column(column, overflow="fold")
    ranked = sorted(result.node_scores, key=lambda s: -s.score)[:limit]
    for position, node in enumerate(ranked, start=1):
        table.add_row(str(position), node.label, node.uid, f"{node.score:.4f}", "; ".join(node.reasons[:3]))
    return table


@click.command("score")
@window_options
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Checkpoint (default: latest).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Flag nodes above this calibrated score (default: the model's validation-derived one).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--top", default=10, show_default=True, help="Findings to print.")
def score(since: str | None, until: str | None, clouds: tuple[str, ...], accounts: tuple[str, ...],
          model: Path | None, threshold: float | None, device: str, top: int) -> None:
    """Score every node and relationship and write the scores to Neo4j."""
    from gnnsec.workflow import model_id_of, score_graph

    checkpoint, path = _load(model)
    flt = window_filter(since, until, clouds, accounts)
    with connected() as (driver, database), err_console.status("scoring") as status:
        try:
            result = score_graph(driver, checkpoint, model_id_of(path), flt, database=database, threshold=threshold,
                                 device=device, progress=lambda message: status.update(message))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    run = result.run
    console.print(findings_table(result, top))
    console.print(
        f"run {run.run_id}: {run.nodes_scored:,} nodes, {run.edges_scored:,} relationships scored in "
        f"{run.seconds:.1f} s; {run.anomalous_nodes:,} flagged anomalous (threshold {run.threshold}); "
        f"window score {run.snapshot_score:.3f}"
    )


@click.command("explain")
@click.argument("uid")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Checkpoint (default: latest).")
@click.option("--hops", default=2, show_default=True, help="Neighbourhood used to recompute the embedding.")
def explain(uid: str, model: Path | None, hops: int) -> None:
    """Explain why an entity scored high: unusual relationships, pulling neighbours, odd features."""
    from gnnsec.workflow import explain_uid

    checkpoint, _ = _load(model)
    with connected() as (driver, database):
        try:
            why = explain_uid(driver, checkpoint, uid, database=database, hops=hops)
        except KeyError as exc:
            raise click.ClickException(str(exc.args[0])) from None
        records, _, _ = driver.execute_query(
            "MATCH (n) WHERE n.uid = $uid RETURN n.anomaly_score AS s, n.anomaly_rank AS r, n.anomalous AS a",
            uid=uid, database_=database,
        )
    stored = records[0] if records else None
    console.print(f"[bold]{why.label}[/] {uid}")
    if stored is not None and stored["s"] is not None:
        console.print(f"stored score {stored['s']:.4f} (rank {stored['r']} in {why.label}), anomalous: {stored['a']}")
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
@click.option("--benign", "benign", multiple=True, metavar="UID", help="Confirmed benign (repeatable).")
@click.option("--malicious", "malicious", multiple=True, metavar="UID", help="Confirmed malicious (repeatable).")
@click.option("--note", default=None, help="A short note stored with the verdict.")
def feedback(benign: tuple[str, ...], malicious: tuple[str, ...], note: str | None) -> None:
    """Record an analyst verdict. Benign verdicts join the reference set at the next `gnnsec score`;
    `gnnsec train --adapt MODEL` fine-tunes the adapters on new benign data."""
    from gnnsec.workflow import record_feedback

    if not benign and not malicious:
        raise click.UsageError("give at least one --benign or --malicious UID")
    analyst = os.environ.get("GNNSEC_ANALYST") or getpass.getuser()
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
