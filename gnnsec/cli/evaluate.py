"""``gnnsec eval``: the model-card table, measured honestly (thresholds from validation only)."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gnnsec.cli.common import (
    connection_settings,
    console,
    describe_connection,
    is_quiet,
    is_verbose,
    neo4j_options,
    threads_option,
    work_progress,
)
from gnnsec.cli.output import choose_format, emit, format_option, print_table, short_name

if TYPE_CHECKING:
    from gnnsec.config import Neo4jSettings


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


@click.command("evaluate")
@neo4j_options
@click.option("--data", "data", required=True, help="A directory of supported files (e.g. a synth estate), "
              "or neo4j for the database the --neo4j-* options name (bolt://… overrides the URI).")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CSV with uid,label[,campaign,first_malicious]: every listed uid is malicious. "
              "Default: DIR/labels/entities.csv.")
@click.option("--models", default="rgcn,gcn,gat,sage,iforest,mlp-ae,nbr-iforest", show_default=True,
              help="Comma-separated: rgcn,gcn,gat,sage,mlp (GNN encoders) and iforest,mlp-ae,nbr-iforest.")
@click.option("--split", type=click.Choice(["time", "campaign", "entity", "history"]), default="time",
              show_default=True, help="history: every test day scored against all days before it, unit (entity, "
              "day); --data may then list several estates separated by commas.")
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
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes that read and stage --data files (they need no database). Default: one per core.")
@threads_option
@format_option("json/jsonl/csv: one object (line) per row of the results table, notes on stderr.")
def evaluate(data: str, labels: Path | None, models: str, split: str, time_fraction: float,
             holdout_campaign: str | None, folds: int, seeds: int, epochs: int, mode: str, relations: str,
             hidden_dim: int, out: Path | None, workers: int | None, fmt: str | None) -> None:
    """Evaluate GNNs and baselines on labelled data; table on the terminal, Markdown/JSON/PR curves in --out."""
    from rich.console import Console

    from gnnsec.evaluate.data import default_read_workers, is_database, load_eval_data
    from gnnsec.evaluate.report import aggregate, write_outputs
    from gnnsec.evaluate.runner import RELATION_SUBSETS, EvalConfig, count_runs, run_evaluation
    from gnnsec.workflow import configure_cpu_threads

    err = Console(stderr=True, quiet=is_quiet())
    settings = None
    if any(is_database(part) for part in _csv(data)):
        settings = connection_settings()
        if is_verbose():
            err.print(describe_connection(settings), style="dim", markup=False, soft_wrap=True)
    unknown = set(_csv(relations)) - set(RELATION_SUBSETS)
    if unknown:
        raise click.BadParameter(f"unknown subset(s) {sorted(unknown)}; choose from all,identity,activity",
                                 param_hint="--relations")
    config = EvalConfig(models=_csv(models), split=split, time_fraction=time_fraction,
                        holdout_campaign=holdout_campaign, folds=folds, seeds=seeds, epochs=epochs, mode=mode,
                        relations=_csv(relations), hidden_dim=hidden_dim, out_dim=max(16, hidden_dim // 2))
    configure_cpu_threads(database_idle=True)  # the data is read before any training, and no write follows
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out or Path("results") / f"eval-{stamp}"
    fmt = choose_format(fmt)
    workers = workers or default_read_workers()
    if split == "history":
        _history(data, labels, models, time_fraction, seeds, epochs, mode, out, settings, fmt, workers)
        return
    with work_progress("reading data") as work:
        eval_data = load_eval_data(data, labels, out.parent / "cache", progress=work, settings=settings,
                                   workers=workers)
        work.phase("evaluating", total=count_runs(eval_data, config), unit="runs")

        run: list[str] = []

        def on_run(what: str) -> None:
            work.advance(0 if not run else 1, detail=what)  # a run is done when the next one starts
            run[:] = [what]

        def within_run(what: str) -> None:
            work.advance(0, detail=f"{run[0]} · {what}")

        records = run_evaluation(eval_data, config, progress=on_run, within=within_run)
        work.advance(1)
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
    _print_results(aggregate(records), f"gnnsec eval ({split} split)", fmt, err)
    for note in notes:
        (console if fmt == "table" else err).print(note, style="dim")
    (console if fmt == "table" else err).print(f"Written: {', '.join(str(p) for p in paths.values())}")


def _print_results(rows: list[dict[str, Any]], title: str, fmt: str, err: Any) -> None:
    """The results for a person, narrow enough for 80 columns (one line per model and label: AUC, AP, F1, MCC;
    the full card with P, R and parameters is in --out), or the rows as json/jsonl/csv on stdout."""
    from gnnsec.evaluate.report import TERMINAL_COLUMNS, flat_rows, model_types, terminal_rows

    if fmt != "table":
        emit(flat_rows(rows), fmt)
        return
    print_table(title, TERMINAL_COLUMNS, terminal_rows(rows), right=TERMINAL_COLUMNS[2:])
    console.print(model_types(rows), style="dim")


def _history(data: str, labels: Path | None, models: str, time_fraction: float, seeds: int, epochs: int, mode: str,
             out: Path, settings: Neo4jSettings | None = None, fmt: str = "table", workers: int = 1) -> None:
    """``--split history`` over one or more estates: the table, per-campaign ranks and the false-positive rate."""
    import json

    from rich.console import Console

    from gnnsec.evaluate.data import load_eval_data
    from gnnsec.evaluate.history_eval import DEFAULT_MODELS, HistoryEvalConfig, run_history_evaluation
    from gnnsec.evaluate.report import aggregate, write_outputs

    err = Console(stderr=True, quiet=is_quiet())
    chosen = _csv(models)
    if chosen == _csv("rgcn,gcn,gat,sage,iforest,mlp-ae,nbr-iforest"):  # the option's default: the history rows
        chosen = DEFAULT_MODELS
    config = HistoryEvalConfig(models=chosen, time_fraction=time_fraction, seeds=seeds, mode=mode, epochs=epochs)
    records, ranks, fpr = [], [], {}
    for estate_index, estate in enumerate(_csv(data)):
        step = f"[{estate_index + 1}]"
        with work_progress(f"{step} reading {estate}") as work:
            # A benign-only estate (no labelled entity) still gives the per-day false-positive rate.
            eval_data = load_eval_data(estate, labels, out.parent / "cache", progress=work,
                                       require_labels=False, settings=settings, workers=workers)
            work.phase(f"{step} evaluating {estate}", unit="steps")
            result = run_history_evaluation(eval_data, config, progress=lambda what: work.advance(1, detail=what))
        for record in result.records:
            record.split = f"{record.split} {estate}"
        records += result.records
        ranks += [(estate, r) for r in result.ranks]
        fpr[estate] = result.false_positive_rate
    command = "gnnsec eval " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    notes = [
        "Unit: (entity, day). Each test day is scored against every day before it; detectors are fitted on the days "
        "before the cut only. Ours flags at a calibrated 0.99 (a quantile of historical pairs); baselines at the "
        "0.99 quantile of their scores on held-out training pairs. Mean ± std over estates and seeds.",
    ]
    paths = write_outputs(records, out, command, dataclasses.asdict(config), notes)
    _print_results(aggregate(records), "gnnsec eval (history split)", fmt, err)
    extra = out / "history.json"
    extra.write_text(json.dumps({"ranks": [dict(estate=e, **dataclasses.asdict(r)) for e, r in ranks],
                                 "false_positive_rate": fpr}, indent=2), encoding="utf-8")
    if fmt != "table":  # the ranks and false-positive rates are in history.json
        err.print(f"Written: {', '.join(str(p) for p in paths.values())}, {extra}")
        return
    print_table("Best rank of each campaign's entities within their label, on each day it acts",
                ("estate", "model", "campaign", "day", "label", "rank", "entity"),
                [[estate, r.model, r.campaign, r.day, r.label, f"{r.rank} of {r.of}", short_name(r.uid)]
                 for estate, r in ranks if r.model in ("history", "history+rgcn", "rules")], right=("rank",))
    print_table("Share of benign principals (User, Role, VM, Function) flagged per test day",
                ("estate", "model", "per day"),
                [[estate, model, ", ".join(f"{d} {v:.2%}" for d, v in days.items())]
                 for estate, per_model in fpr.items() for model, days in per_model.items()])
    console.print(f"Written: {', '.join(str(p) for p in paths.values())}, {extra}", soft_wrap=False)
