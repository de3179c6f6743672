"""Run every (split, seed, relation subset, model, mode) and collect test metrics.

Per run: fit on the training side only; pick each label's threshold on the validation side only
(F1-maximising with labels in supervised mode, the benign 0.99 quantile in unsupervised mode, which for
the GNN is the detector's own calibrated 0.99); then score the test side once and measure.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from gnnsec import schema
from gnnsec.errors import InputError
from gnnsec.evaluate.baselines import BASELINES, baseline_scores
from gnnsec.evaluate.data import EvalData
from gnnsec.evaluate.metrics import (
    Metrics,
    benign_quantile_threshold,
    choose_threshold,
    decision_metrics,
    ranking_metrics,
)
from gnnsec.evaluate.splits import (
    Split,
    campaigns_after_cut,
    entity_folds,
    malicious_edges,
    relation_subset,
    time_split,
)
from gnnsec.snapshot import Snapshot

if TYPE_CHECKING:
    from gnnsec.gnn.train import EpochStats

GNN_KINDS = ("rgcn", "gcn", "gat", "sage", "mlp")
ALL_MODELS = (*GNN_KINDS, *BASELINES)
RELATION_SUBSETS: dict[str, tuple[str, ...] | None] = {
    "all": None,
    "identity": schema.IDENTITY_RELATIONS,
    "activity": schema.ACTIVITY_RELATIONS,
}
EVAL_LABELS = ("User", "Role", "VM")


@dataclass(slots=True)
class EvalConfig:
    models: tuple[str, ...] = ("rgcn", "gcn", "gat", "sage", "iforest", "mlp-ae", "nbr-iforest")
    split: str = "time"  # time | campaign | entity
    time_fraction: float = 0.6
    holdout_campaign: str | None = None
    folds: int = 5
    seeds: int = 1
    epochs: int = 60
    patience: int = 10
    mode: str = "unsupervised"  # unsupervised | supervised | both
    relations: tuple[str, ...] = ("all",)  # subsets beyond "all" are run for rgcn only
    hidden_dim: int = 256
    out_dim: int = 128


@dataclass(slots=True)
class RunRecord:
    """Test metrics of one model in one run."""

    model: str
    mode: str
    relations: str
    split: str
    seed: int
    params: int
    labels: dict[str, Metrics] = field(default_factory=dict)
    edge_auc: float = math.nan
    edge_ap: float = math.nan
    curves: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)  # label → (y, score)
    seconds: float = 0.0

    @property
    def row(self) -> str:
        suffix = "" if self.relations == "all" else f" [{self.relations}]"
        return f"{self.model.upper() if self.model in GNN_KINDS else self.model}{suffix}"


Progress = Callable[[str], None]


def _splits(data: EvalData, config: EvalConfig, seed: int) -> list[Split]:
    if config.split == "time":
        return [time_split(data, config.time_fraction, None, seed)]
    if config.split == "campaign":
        campaigns = [config.holdout_campaign] if config.holdout_campaign else campaigns_after_cut(
            data, config.time_fraction)
        if not campaigns:
            raise InputError("no labelled campaign has activity after the time cut; nothing to hold out")
        return [time_split(data, config.time_fraction, c, seed) for c in campaigns]
    if config.split == "entity":
        return list(entity_folds(data, config.folds, seed))
    raise InputError(f"unknown split {config.split!r}; choose time, campaign or entity")


def _eval_rows(split: Split, test: Snapshot, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Test rows of ``label`` that count, and their 0/1 truth."""
    lid = schema.label_id(label)
    rows = [i for i, uid in enumerate(test.node_uid)
            if test.node_label[i] == lid and uid not in split.test_excluded
            and (split.test_uids is None or uid in split.test_uids)]
    truth = np.asarray([int(test.node_uid[i] in split.test_positive) for i in rows], dtype=np.int64)
    return np.asarray(rows, dtype=np.int64), truth


def _measure(record: RunRecord, split: Split, test: Snapshot, test_scores: np.ndarray,
             thresholds: dict[str, float]) -> None:
    for label in EVAL_LABELS:
        rows, truth = _eval_rows(split, test, label)
        if truth.sum() == 0:
            continue
        scores = test_scores[rows]
        record.labels[label] = decision_metrics(truth, scores, thresholds.get(label, math.inf))
        record.curves[label] = (truth.tolist(), scores.tolist())


def _val_rows(train: Snapshot, split: Split) -> np.ndarray:
    return np.asarray([i for i, uid in enumerate(train.node_uid) if uid in split.val_uids], dtype=np.int64)


def _benign_thresholds(
    train: Snapshot, split: Split, val_scores: np.ndarray, quantile: float = 0.99
) -> dict[str, float]:
    rows = _val_rows(train, split)
    return {label: benign_quantile_threshold(val_scores[rows][train.node_label[rows] == schema.label_id(label)],
                                             quantile) for label in EVAL_LABELS}


def _run_gnn(kind: str, mode: str, split: Split, train: Snapshot, test: Snapshot, data: EvalData, config: EvalConfig,
             seed: int, val_truth: dict[str, int], epoch_progress: Progress | None = None) -> RunRecord:
    import torch

    from gnnsec.gnn.embed import embed
    from gnnsec.gnn.model import ModelConfig
    from gnnsec.gnn.pipeline import score_snapshot, train_checkpoint
    from gnnsec.gnn.train import TrainConfig

    train = dataclasses.replace(train, meta=dict(train.meta))
    if mode == "supervised":
        train.meta["labels"] = dict(split.train_labels)
    model_config = ModelConfig(kind=kind, hidden_dim=config.hidden_dim, out_dim=config.out_dim)
    train_config = TrainConfig(model=model_config, epochs=config.epochs, patience=config.patience, seed=seed,
                               device="cpu")

    def on_epoch(stats: EpochStats, total: int) -> None:
        if epoch_progress is not None:
            epoch_progress(f"epoch {stats.epoch + 1}/{total} ({stats.seconds:.1f} s), validation loss "
                           f"{stats.val_loss:.4f}")

    checkpoint, result = train_checkpoint(train, train_config, progress=on_epoch, stage=epoch_progress)
    if epoch_progress is not None:
        epoch_progress("scoring the test side")
    out = score_snapshot(checkpoint, test, device="cpu")
    record = RunRecord(kind, mode, "all", split.name, seed, result.num_parameters)
    if mode == "supervised":
        classifier = checkpoint.model.classifier
        if classifier is None:
            raise InputError("supervised mode needs labelled training nodes")
        with torch.no_grad():
            test_scores = torch.sigmoid(classifier(torch.from_numpy(out.embeddings.z))).squeeze(-1).numpy()
            train_emb = embed(checkpoint.model, train, checkpoint.spec, device="cpu", seed=seed)
            val_scores = torch.sigmoid(classifier(torch.from_numpy(train_emb.z))).squeeze(-1).numpy()
        thresholds = _thresholds_from_truth(train, split, val_scores, val_truth)
    else:
        test_scores = out.nodes.raw
        detector = checkpoint.detector
        assert detector is not None
        thresholds = {}
        for label in EVAL_LABELS:
            reference = detector.references.get(label) or detector.references["*"]
            thresholds[label] = float(np.quantile(reference.calibration, detector.config.threshold))
    _measure(record, split, test, test_scores, thresholds)
    edges = np.asarray([w is not None for w in test.edge_window])
    truth = malicious_edges(test, data)[edges]
    if edges.any() and truth.any():
        record.edge_auc, record.edge_ap = ranking_metrics(truth.astype(np.int64), out.edge_anomaly[edges])
    return record


def _thresholds_from_truth(train: Snapshot, split: Split, val_scores: np.ndarray,
                           val_truth: dict[str, int]) -> dict[str, float]:
    rows = _val_rows(train, split)
    truth = np.asarray([val_truth.get(train.node_uid[i], 0) for i in rows], dtype=np.int64)
    out = {}
    for label in EVAL_LABELS:
        mask = train.node_label[rows] == schema.label_id(label)
        out[label] = choose_threshold(truth[mask], val_scores[rows][mask])
    return out


def _run_baseline(kind: str, split: Split, train: Snapshot, test: Snapshot, seed: int) -> RunRecord:
    fit_rows = np.asarray([i for i, uid in enumerate(train.node_uid) if uid not in split.val_uids], dtype=np.int64)
    train_scores, test_scores = baseline_scores(kind, train, fit_rows, [train, test], seed)
    record = RunRecord(kind, "unsupervised", "all", split.name, seed, 0)
    _measure(record, split, test, test_scores, _benign_thresholds(train, split, train_scores))
    return record


def _split_count(data: EvalData, config: EvalConfig) -> int:
    """Splits per seed, as :func:`_splits` makes them (without building their snapshots)."""
    if config.split == "campaign" and not config.holdout_campaign:
        return len(campaigns_after_cut(data, config.time_fraction))
    return config.folds if config.split == "entity" else 1


def count_runs(data: EvalData, config: EvalConfig) -> int:
    """How many runs :func:`run_evaluation` makes: the total its progress counts towards."""
    modes = 2 if config.mode == "both" else 1
    per_subset = [sum(modes if model in GNN_KINDS else 1 for model in config.models if name == "all" or model == "rgcn")
                  for name in config.relations]
    return config.seeds * _split_count(data, config) * sum(per_subset)


def run_evaluation(data: EvalData, config: EvalConfig, progress: Progress | None = None,
                   within: Progress | None = None) -> list[RunRecord]:
    """Every configured run, in a stable order; ``progress`` is told before each one, and ``within`` of a GNN
    run's epochs (a medium estate's run takes 20 minutes on 2 cores)."""
    import time

    unknown = set(config.models) - set(ALL_MODELS)
    if unknown:
        raise InputError(f"unknown model(s) {', '.join(sorted(unknown))}; known: {', '.join(ALL_MODELS)}")
    modes = ("unsupervised", "supervised") if config.mode == "both" else (config.mode,)
    records: list[RunRecord] = []
    for seed in range(config.seeds):
        for split in _splits(data, config, seed):
            val_truth = split.val_labels
            for subset_name in config.relations:
                relations = RELATION_SUBSETS[subset_name]
                train, test = relation_subset(split.train, relations), relation_subset(split.test, relations)
                for model in config.models:
                    if subset_name != "all" and model != "rgcn":
                        continue
                    for mode in modes if model in GNN_KINDS else ("unsupervised",):
                        if progress is not None:
                            progress(f"{split.name} seed {seed} {model} {mode} [{subset_name}]")
                        started = time.perf_counter()
                        if model in GNN_KINDS:
                            record = _run_gnn(model, mode, split, train, test, data, config, seed, val_truth, within)
                        else:
                            record = _run_baseline(model, split, train, test, seed)
                        record.relations = subset_name
                        record.seconds = time.perf_counter() - started
                        records.append(record)
    return records

