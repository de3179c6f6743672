"""``gnnsec train``: learn what normal looks like in the graph and save a checkpoint."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from gnnsec.cli.common import (
    connected,
    console,
    neo4j_options,
    threads_option,
    window_filter,
    window_options,
    work_progress,
)
from gnnsec.config import latest_model_path, models_dir
from gnnsec.errors import StateError

if TYPE_CHECKING:
    import neo4j

    from gnnsec.graphdb.export import SnapshotFilter

MODEL_KINDS = ("rgcn", "gcn", "gat", "sage", "mlp")


@click.command("train")
@neo4j_options
@window_options
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Checkpoint path. Default: <state>/models/gnnsec-<time>.pt (and latest.pt).")
@click.option("--kind", type=click.Choice(MODEL_KINDS), default="rgcn", show_default=True, help="Encoder.")
@click.option("--epochs", default=60, show_default=True, help="Most epochs (early stopping on validation).")
@click.option("--patience", default=10, show_default=True, help="Epochs without validation gain before stopping.")
@click.option("--lr", default=1e-3, show_default=True, help="Learning rate of the Adam optimiser.")
@click.option("--seed", default=0, show_default=True,
              help="Random seed: the same seed, data and options train the same model.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where to train: auto takes a CUDA GPU when torch sees one, else the CPU.")
@threads_option
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Data-parallel training processes on this machine (gloo on CPU, one GPU each on CUDA); "
                   "see docs/scale.md.")
@click.option("--adapt", "adapt", type=click.Path(exists=True, path_type=Path), default=None,
              help="Fine-tune only the adapters of this checkpoint on the (new, benign) window.")
@click.option("--no-feedback-labels", is_flag=True, help="Ignore analyst verdicts (pure self-supervised).")
def train(since: str | None, until: str | None, clouds: tuple[str, ...], accounts: tuple[str, ...], out: Path | None,
          kind: str, epochs: int, patience: int, lr: float, seed: int, device: str, nproc: int,
          adapt: Path | None, no_feedback_labels: bool) -> None:
    """Train the GNN on a snapshot of the graph (self-supervised, plus analyst labels when present)."""
    # Fail fast: the window, the options and an empty graph are said before torch loads (seconds) or
    # anything is exported.
    flt = window_filter(since, until, clouds, accounts)
    if nproc > 1 and adapt is not None:
        raise click.UsageError("--adapt runs in one process; drop --nproc")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out or models_dir() / f"gnnsec-{kind}-{stamp}.pt"
    with connected() as (driver, database):
        _require_nodes(driver, database, flt)
        with work_progress("loading torch") as work:
            from gnnsec.gnn.checkpoint import load_checkpoint, save_checkpoint
            from gnnsec.gnn.model import ModelConfig
            from gnnsec.gnn.train import TrainConfig

            config = TrainConfig(model=ModelConfig(kind=kind), epochs=epochs, patience=patience, lr=lr, seed=seed,
                                 device=device, nproc=nproc)

            def on_epoch(stats: object, total: int | None = None) -> None:
                if not started:
                    started.append(True)
                    work.phase("training", total=epochs, unit="epochs")
                loss = getattr(stats, "loss", float("nan"))
                auc = getattr(stats, "val_edge_auc", float("nan"))
                work.advance(1, detail=f"loss {loss:.3f}, val edge AUC {auc:.3f}")

            started: list[bool] = []
            work.phase("exporting the graph")
            if adapt is not None:
                from gnnsec.gnn.pipeline import adapt_checkpoint
                from gnnsec.graphdb.export import export_snapshot

                snapshot = export_snapshot(driver, flt, database=database)
                checkpoint, result = adapt_checkpoint(load_checkpoint(adapt, device="cpu"), snapshot, config,
                                                      progress=on_epoch, stage=work.phase)
            else:
                from gnnsec.workflow import train_from_graph

                checkpoint, result, snapshot = train_from_graph(
                    driver, flt, config, database=database, use_feedback_labels=not no_feedback_labels,
                    progress=on_epoch, stage=work.phase,
                )
    save_checkpoint(out, checkpoint)
    if out.resolve() != latest_model_path().resolve():
        latest_model_path().parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, latest_model_path())

    table = Table(title=f"Trained {kind} on {snapshot.num_nodes:,} nodes, {snapshot.num_edges:,} relationships")
    table.add_column("metric")
    table.add_column("value", justify="right")
    best = result.epochs[result.best_epoch] if 0 <= result.best_epoch < len(result.epochs) else None
    rows = [
        ("epochs run", str(len(result.epochs))),
        ("best epoch", str(result.best_epoch)),
        ("stopped early", str(result.stopped_early)),
        ("validation loss", f"{result.best_val_loss:.4f}"),
        ("validation edge AUC", f"{best.val_edge_auc:.3f}" if best else "n/a"),
        ("mode / device", f"{result.mode} / {result.device}"),
        ("parameters", f"{result.num_parameters:,} ({result.trainable_parameters:,} trainable)"),
        ("seconds", f"{result.seconds:.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    console.print(f"checkpoint: [bold]{out}[/] (also {latest_model_path()})")


def _require_nodes(driver: neo4j.Driver, database: str, flt: SnapshotFilter) -> None:
    """One cheap query instead of an export: a graph (or --cloud/--account part of it) with no node to train on
    is a :class:`StateError` before torch loads."""
    from gnnsec.graphdb.export import has_nodes

    if has_nodes(driver, flt, database=database):
        return
    if flt.clouds or flt.accounts:
        raise StateError("the graph has no nodes in the --cloud/--account asked for, so nothing to train on: widen "
                         "them, or ingest that data first (`gnnsec ingest`)")
    raise StateError("the graph is empty, so there is nothing to train on: ingest data first (`gnnsec ingest`), "
                     "or check that --neo4j-uri/--neo4j-database name the graph you mean")
