"""``gnnsec eval``: the model-card table, measured honestly (thresholds from validation only)."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import click


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


@click.command("evaluate")
@click.option("--data", "data", required=True, help="A directory of supported files (e.g. a synth estate), "
              "or bolt://… / neo4j for the configured database.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CSV with uid,label[,campaign,first_malicious]: every listed uid is malicious. "
              "Default: DIR/labels/entities.csv.")
@click.option("--models", default="rgcn,gcn,gat,sage,iforest,mlp-ae,nbr-iforest", show_default=True,
              help="Comma-separated: rgcn,gcn,gat,sage,mlp (GNN encoders) and iforest,mlp-ae,nbr-iforest.")
@click.option("--split", type=click.Choice(["time", "campaign", "entity"]), default="time", show_default=True)
@click.option("--cut", "time_fraction", default=0.6, show_default=True,
              help="Time split: fraction of the period for training (floored to a day).")
@click.option("--holdout-campaign", default=None, help="Campaign split: hold out this one (default: rotate).")
@click.option("--folds", default=5, show_default=True, help="Entity split: K of the stratified K-fold.")
@click.option("--seeds", default=1, show_default=True, help="Repeat every run with seeds 0..S-1.")
@click.option("--epochs", default=60, show_default=True, help="Most epochs (early stopping on validation).")
@click.option("--mode", type=click.Choice(["unsupervised", "supervised", "both"]), default="unsupervised",
              show_default=True, help="GNN scoring: detector anomaly score, supervised head, or both rows.")
@click.option("--relations", default="all", show_default=True,
              help="Relation subsets for RGCN: all,identity,activity (ResHGNN ablation).")
@click.option("--hidden", "hidden_dim", default=256, show_default=True, help="GNN hidden width.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Results directory. Default: results/eval-<time>/.")
def evaluate(data: str, labels: Path | None, models: str, split: str, time_fraction: float,
             holdout_campaign: str | None, folds: int, seeds: int, epochs: int, mode: str, relations: str,
             hidden_dim: int, out: Path | None) -> None:
    """Evaluate GNNs and baselines on labelled data; table on the terminal, Markdown/JSON/PR curves in --out."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gnnsec.evaluate.data import EvalDataError, load_eval_data
    from gnnsec.evaluate.report import aggregate, rich_table, write_outputs
    from gnnsec.evaluate.runner import RELATION_SUBSETS, EvalConfig, run_evaluation
    from gnnsec.workflow import configure_cpu_threads

    console = Console(width=max(Console().width, 260))  # the card's table is wide; never squeeze it
    err = Console(stderr=True)
    unknown = set(_csv(relations)) - set(RELATION_SUBSETS)
    if unknown:
        raise click.BadParameter(f"unknown subset(s) {sorted(unknown)}; choose from all,identity,activity",
                                 param_hint="--relations")
    config = EvalConfig(models=_csv(models), split=split, time_fraction=time_fraction,
                        holdout_campaign=holdout_campaign, folds=folds, seeds=seeds, epochs=epochs, mode=mode,
                        relations=_csv(relations), hidden_dim=hidden_dim, out_dim=max(16, hidden_dim // 2))
    configure_cpu_threads()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out or Path("results") / f"eval-{stamp}"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("reading data", total=None)
            eval_data = load_eval_data(data, labels, out.parent / "cache",
                                       progress=lambda name: bar.update(task, description=f"staging {name}"))
            bar.update(task, description="evaluating", total=None, completed=0)

            def on_run(what: str) -> None:
                bar.update(task, advance=1, description=what)

            records = run_evaluation(eval_data, config, progress=on_run)
    except (EvalDataError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    command = "gnnsec eval " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    snap = eval_data.snapshot
    notes = [
        f"Graph: {snap.num_nodes:,} nodes, {snap.num_edges:,} relationships; {len(eval_data.entities)} labelled "
        f"entities in {len(eval_data.campaigns)} campaigns.",
        "Thresholds for F1/P/R/MCC: chosen on validation data only (F1-max with labels in supervised mode, the "
        "benign 0.99 quantile of held-out training-side scores in unsupervised mode) and applied unchanged to test.",
        "AUC/AP need no threshold. Edge columns: 1 − σ(DistMult) of test-window activity relationships against "
        "labels/activity.csv (GNN rows only).",
    ]
    paths = write_outputs(records, out, command, dataclasses.asdict(config), notes)
    console.print(rich_table(aggregate(records), title=f"gnnsec eval ({split} split)"))
    for note in notes:
        console.print(note, style="dim")
    console.print(f"Written: {', '.join(str(p) for p in paths.values())}")
