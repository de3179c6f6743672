"""``gnnsec eval --split history``: every test day scored against everything before it.

The unit is the (entity, day) pair. Training pairs are the days before the cut; each test day is scored
with the history of all earlier days (the earlier test days included, as in production), by detectors
fitted on training pairs only. A pair is positive when a labelled entity takes part in labelled malicious
activity that day (``labels/activity.csv``, either end) or the day falls in its malicious period; a
labelled entity on its other days is neither attacked nor known benign and is left out of the metrics.

Thresholds never come from the test days: ours is the calibrated 0.99 (a quantile of historical pairs),
the baselines' the 0.99 quantile of their scores on the training pairs (or, supervised, the validation F1
optimum on a held-out fifth of the training pairs).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gnnsec import schema
from gnnsec.errors import InputError
from gnnsec.evaluate.data import EvalData
from gnnsec.evaluate.metrics import benign_quantile_threshold, choose_threshold, decision_metrics
from gnnsec.evaluate.runner import EVAL_LABELS, RunRecord
from gnnsec.evaluate.splits import time_cut
from gnnsec.gnn.history import WINDOW_SECONDS, WindowFeatures, history_features
from gnnsec.gnn.window_detect import PairDetector, TailConfig, rank_within
from gnnsec.snapshot import Snapshot

OURS = "history"
OURS_GNN = "history+rgcn"
"""Ours with the RGCN's DistMult improbability of each new relationship as one more column."""
DEFAULT_MODELS = (OURS_GNN, OURS, "rules", "iforest", "mlp-ae", "nbr-iforest")
PRINCIPALS = ("User", "Role", "VM", "Function")
"""Labels counted for the per-day false-positive rate."""


@dataclass(slots=True)
class HistoryEvalConfig:
    models: tuple[str, ...] = DEFAULT_MODELS
    time_fraction: float = 0.6
    seeds: int = 1
    mode: str = "unsupervised"  # unsupervised | supervised | both
    tail: TailConfig = field(default_factory=TailConfig)
    epochs: int = 40
    patience: int = 10
    propagate: bool = True  # ours: the second pass with the most unusual acting neighbour (PairDetector)


@dataclass(slots=True)
class CampaignRank:
    """Where a campaign's best-ranked entity of a label sat on a day it acted."""

    model: str
    seed: int
    campaign: str
    day: str
    label: str
    rank: int
    of: int
    uid: str


@dataclass(slots=True)
class HistoryEvalResult:
    records: list[RunRecord]
    ranks: list[CampaignRank]
    false_positive_rate: dict[str, dict[str, float]]  # model → day → share of principals flagged
    pairs: dict[str, int]


def _day(epoch: float) -> float:
    return math.floor(epoch / WINDOW_SECONDS) * WINDOW_SECONDS


def pair_truth(data: EvalData, features: WindowFeatures) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(positive [P], excluded [P], campaign of each positive pair or '')."""
    uid = data.snapshot.node_uid
    malicious: dict[tuple[str, float], str] = {}
    for row in data.activity:
        if not math.isfinite(row.time):
            continue
        for end in (row.src_uid, row.dst_uid):
            if end in data.entities:
                malicious.setdefault((end, _day(row.time)), row.campaign or data.entities[end].campaign)
    for entity in data.entities.values():
        if math.isfinite(entity.first_malicious):
            last = entity.last_malicious if math.isfinite(entity.last_malicious) else entity.first_malicious
            day = _day(entity.first_malicious)
            while day <= last:
                malicious.setdefault((entity.uid, day), entity.campaign)
                day += WINDOW_SECONDS
    positive = np.zeros(features.num_pairs, dtype=bool)
    excluded = np.zeros(features.num_pairs, dtype=bool)
    campaign = [""] * features.num_pairs
    for i, (node, window) in enumerate(zip(features.node.tolist(), features.window.tolist(), strict=True)):
        key = (uid[node], float(window))
        if key in malicious:
            positive[i] = True
            campaign[i] = malicious[key]
        elif uid[node] in data.entities:
            excluded[i] = True
    return positive, excluded, campaign


def _iso_day(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d")


def campaign_ranks(model: str, seed: int, data: EvalData, test: WindowFeatures, positive: np.ndarray,
                   campaign: list[str], score: np.ndarray, raw: np.ndarray) -> list[CampaignRank]:
    """Per campaign, day and label: the best rank (within label and day) of its entities."""
    out: list[CampaignRank] = []
    for window in np.unique(test.window):
        day_rows = np.flatnonzero(test.window == window)
        ranks = rank_within(test.label[day_rows], score[day_rows], raw[day_rows])
        best: dict[tuple[str, int], tuple[int, int]] = {}
        for position, row in enumerate(day_rows.tolist()):
            if not positive[row]:
                continue
            key = (campaign[row], int(test.label[row]))
            if key not in best or ranks[position] < best[key][0]:
                best[key] = (int(ranks[position]), row)
        for (name, lid), (rank, row) in sorted(best.items()):
            label = schema.NODE_LABELS[lid]
            if label not in EVAL_LABELS:
                continue
            of = int((test.label[day_rows] == lid).sum())
            out.append(CampaignRank(model, seed, name, _iso_day(float(window)), label, rank, of,
                                    data.snapshot.node_uid[int(test.node[row])]))
    return out


def _measure(record: RunRecord, test: WindowFeatures, positive: np.ndarray, excluded: np.ndarray,
             scores: np.ndarray, flagged: np.ndarray, thresholds: dict[str, float]) -> None:
    """AUC/AP from the scores, F1/P/R/MCC from the flags each model raised at its own threshold."""
    for label in EVAL_LABELS:
        rows = np.flatnonzero((test.label == schema.label_id(label)) & ~excluded)
        truth = positive[rows].astype(np.int64)
        if truth.sum() == 0 or truth.sum() == truth.size:
            continue
        decided = decision_metrics(truth, flagged[rows].astype(np.float64), 0.5)
        metrics = decision_metrics(truth, scores[rows], thresholds.get(label, math.nan))
        for name in ("f1", "precision", "recall", "mcc"):
            setattr(metrics, name, getattr(decided, name))
        record.labels[label] = metrics
        record.curves[label] = (truth.tolist(), scores[rows].tolist())


def false_positive_rate(test: WindowFeatures, flagged: np.ndarray, positive: np.ndarray,
                        excluded: np.ndarray) -> dict[str, float]:
    """Per day: the share of benign principal pairs flagged."""
    principal = np.isin(test.label, [schema.label_id(label) for label in PRINCIPALS]) & ~positive & ~excluded
    out = {}
    for window in np.unique(test.window):
        rows = principal & (test.window == window)
        out[_iso_day(float(window))] = float(flagged[rows].mean()) if rows.any() else 0.0
    return out


def _score_ours(snapshot: Snapshot, features: WindowFeatures, test: WindowFeatures, config: HistoryEvalConfig
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Each test day against every pair before it, exactly as ``gnnsec score`` recalibrates every day."""
    score, raw = np.zeros(test.num_pairs), np.zeros(test.num_pairs)
    flagged = np.zeros(test.num_pairs, dtype=bool)
    for window in np.unique(test.window):
        rows = np.flatnonzero(test.window == window)
        detector = PairDetector(snapshot, config.tail, propagate=config.propagate)
        scored, _, _ = detector.fit(features.select(np.flatnonzero(features.window < window))).score(test.select(rows))
        score[rows], raw[rows], flagged[rows] = scored.score, scored.raw, scored.anomalous
    return score, raw, flagged, config.tail.threshold


DAILY_BASELINES = ("rules", "iforest", "mlp-ae", "nbr-iforest")
"""Unsupervised baselines cheap enough to be refitted every test day on all earlier days, like ours."""


def gnn_implausibility(data: EvalData, fraction: float, seed: int, epochs: int, patience: int) -> np.ndarray:
    """1 − σ(DistMult) for every relationship of the graph, from an RGCN trained before the cut only."""
    from gnnsec.evaluate.splits import time_split
    from gnnsec.gnn.detect import edge_anomaly
    from gnnsec.gnn.embed import embed
    from gnnsec.gnn.model import ModelConfig
    from gnnsec.gnn.pipeline import train_checkpoint
    from gnnsec.gnn.train import TrainConfig

    split = time_split(data, fraction, None, seed)
    config = TrainConfig(model=ModelConfig(kind="rgcn"), epochs=epochs, patience=patience, seed=seed, device="cpu")
    checkpoint, _ = train_checkpoint(split.train, config)
    emb = embed(checkpoint.model, data.snapshot, checkpoint.spec, device="cpu", seed=seed)
    return edge_anomaly(emb.edge_logit)


def run_history_evaluation(
    data: EvalData, config: HistoryEvalConfig, progress: Callable[[str], None] | None = None
) -> HistoryEvalResult:
    """Every model on the time split with history; see the module docstring."""
    say = progress or (lambda _message: None)
    snapshot = data.snapshot
    cut = time_cut(snapshot, config.time_fraction)
    say("history features for every (entity, day)")
    features = history_features(snapshot)
    train_rows = np.flatnonzero(features.window < cut)
    test_rows = np.flatnonzero(features.window >= cut)
    if train_rows.size == 0 or test_rows.size == 0:
        raise InputError("the time split left no training or no test days; generate more days (--days)")
    train, test = features.select(train_rows), features.select(test_rows)
    positive, excluded, campaign = pair_truth(data, test)
    train_positive, _, _ = pair_truth(data, train)
    modes = ("unsupervised", "supervised") if config.mode == "both" else (config.mode,)
    records: list[RunRecord] = []
    ranks: list[CampaignRank] = []
    fpr: dict[str, dict[str, float]] = {}
    for seed in range(config.seeds):
        with_gnn: tuple[WindowFeatures, WindowFeatures] | None = None
        gnn_full = features
        if OURS_GNN in config.models:
            say(f"history seed {seed}: training the RGCN on the days before the cut")
            implausible = gnn_implausibility(data, config.time_fraction, seed, config.epochs, config.patience)
            gnn_full = history_features(snapshot, edge_implausibility=implausible)
            with_gnn = (gnn_full.select(np.flatnonzero(gnn_full.window < cut)),
                        gnn_full.select(np.flatnonzero(gnn_full.window >= cut)))
        for model in config.models:
            for mode in modes:
                supervised_kind = model in ("gbt", "gbt-nbr")
                if (mode == "supervised") != supervised_kind:
                    continue
                say(f"history seed {seed} {model} {mode}")
                started = time.perf_counter()
                record = RunRecord(model, mode, "all", f"history@{config.time_fraction:g}", seed, 0)
                if model in (OURS, OURS_GNN):
                    full, scored = (gnn_full, with_gnn[1]) if model == OURS_GNN and with_gnn is not None else (
                        features, test)
                    score, raw, flagged, threshold = _score_ours(snapshot, full, scored, config)
                    thresholds = {label: threshold for label in EVAL_LABELS}
                else:
                    from gnnsec.evaluate.history_baselines import BaselineSkipped, history_baseline_scores

                    try:
                        if model in DAILY_BASELINES and mode == "unsupervised":
                            score, flagged = _daily_baseline(model, snapshot, features, test, seed)
                            thresholds = {}
                        else:
                            score, thresholds = _baseline(model, snapshot, train, test, seed, train_positive, mode)
                            flagged = np.zeros(score.size, dtype=bool)
                            for label in EVAL_LABELS:
                                rows = test.label == schema.label_id(label)
                                flagged[rows] = score[rows] >= thresholds[label]
                    except BaselineSkipped as skipped:
                        say(f"{model} skipped: {skipped}")
                        continue
                    raw = score
                    del history_baseline_scores
                _measure(record, test, positive, excluded, score, flagged, thresholds)
                ranks += campaign_ranks(record.row, seed, data, test, positive, campaign, score, raw)
                fpr[record.row] = false_positive_rate(test, flagged, positive, excluded)
                record.seconds = time.perf_counter() - started
                records.append(record)
    return HistoryEvalResult(records, ranks, fpr, {"train": int(train_rows.size), "test": int(test_rows.size)})


def _daily_baseline(model: str, snapshot: Snapshot, features: WindowFeatures, test: WindowFeatures, seed: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Each test day: fit on every earlier pair (a fifth held out for the threshold), then score the day.
    Scores of different days are comparable through the flag; rankings are per day. Returns (score, flagged)."""
    score = np.zeros(test.num_pairs)
    flagged = np.zeros(test.num_pairs, dtype=bool)
    no_labels = np.zeros(features.num_pairs, dtype=bool)
    for window in np.unique(test.window):
        rows = np.flatnonzero(test.window == window)
        earlier = features.select(np.flatnonzero(features.window < window))
        day = test.select(rows)
        day_scores, thresholds = _baseline(model, snapshot, earlier, day, seed, no_labels[: earlier.num_pairs],
                                           "unsupervised")
        score[rows] = day_scores
        for label in EVAL_LABELS:
            mine = day.label == schema.label_id(label)
            flagged[rows[mine]] = day_scores[mine] >= thresholds[label]
    return score, flagged


def _baseline(model: str, snapshot: Snapshot, train: WindowFeatures, test: WindowFeatures, seed: int,
              train_positive: np.ndarray, mode: str) -> tuple[np.ndarray, dict[str, float]]:
    """A baseline's test scores and per-label thresholds from the training side only."""
    from gnnsec.evaluate.history_baselines import history_baseline_scores

    rng = np.random.default_rng(seed)
    held = rng.random(train.num_pairs) < 0.2
    fit, val = train.select(np.flatnonzero(~held)), train.select(np.flatnonzero(held))
    fit_y = train_positive[~held].astype(np.int64)
    val_y = train_positive[held].astype(np.int64)
    # One fit scores both: the held-out fifth (for the threshold) and the test pairs.
    both = _concatenate(val, test)
    scores = history_baseline_scores(model, snapshot, fit, both, seed, train_y=fit_y)
    val_scores, test_scores = scores[: val.num_pairs], scores[val.num_pairs :]
    thresholds = {}
    for label in EVAL_LABELS:
        rows = val.label == schema.label_id(label)
        if mode == "supervised":
            thresholds[label] = choose_threshold(val_y[rows], val_scores[rows])
        else:
            thresholds[label] = benign_quantile_threshold(val_scores[rows & (val_y == 0)], 0.99)
    return test_scores, thresholds


def _concatenate(first: WindowFeatures, second: WindowFeatures) -> WindowFeatures:
    """The pairs of ``first`` then ``second`` (both selected from one feature pass), edges remapped."""
    import dataclasses

    def stack(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
        return None if a is None or b is None else np.concatenate([a, b])

    return dataclasses.replace(
        first,
        node=np.concatenate([first.node, second.node]), window=np.concatenate([first.window, second.window]),
        label=np.concatenate([first.label, second.label]), x=np.concatenate([first.x, second.x]),
        context=np.concatenate([first.context, second.context]), edge=np.concatenate([first.edge, second.edge]),
        edge_window=np.concatenate([first.edge_window, second.edge_window]),
        edge_x=np.concatenate([first.edge_x, second.edge_x]),
        edge_peer_count=np.concatenate([first.edge_peer_count, second.edge_peer_count]),
        pair_of_edge=np.concatenate([first.pair_of_edge, second.pair_of_edge + first.num_pairs]),
        habit=stack(first.habit, second.habit),
    )
