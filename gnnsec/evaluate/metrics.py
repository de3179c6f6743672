"""Ranking and decision metrics (sklearn), and the one rule that keeps them honest.

Ranking metrics (AUC, AP) need no threshold. Decision metrics (F1, precision, recall, MCC) need one,
and it is chosen on *validation* data only (:func:`choose_threshold`) and applied unchanged to the test
scores (:func:`decision_metrics`): choosing it on the test scores is the mistake several published
detectors made, and it inflates F1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    matthews_corrcoef,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

NAN = float("nan")


@dataclass(slots=True)
class Metrics:
    """Test-split metrics of one label for one run; NaN where undefined (e.g. no positive)."""

    auc: float = NAN
    ap: float = NAN
    f1: float = NAN
    precision: float = NAN
    recall: float = NAN
    mcc: float = NAN
    support: int = 0  # positives in the test split
    negatives: int = 0
    threshold: float = NAN

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(ROC AUC, average precision); NaN when only one class is present."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0 or labels.min() == labels.max():
        return NAN, NAN
    return float(roc_auc_score(labels, scores)), float(average_precision_score(labels, scores))


def choose_threshold(val_labels: np.ndarray, val_scores: np.ndarray) -> float:
    """The score threshold that maximises F1 on the validation split (predict positive when ``score >= t``).

    Candidates are the validation scores themselves; ties in F1 go to the highest threshold (fewest
    alerts). Without a validation positive F1 is undefined: the threshold is then just above the highest
    validation score, i.e. "alert only on something more extreme than anything seen in validation".
    """
    labels = np.asarray(val_labels, dtype=np.int64)
    scores = np.asarray(val_scores, dtype=np.float64)
    if scores.size == 0:
        return math.inf
    if labels.sum() == 0:
        return float(np.nextafter(scores.max(), math.inf))
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)[:-1]
    best = np.flatnonzero(f1 == f1.max())
    return float(thresholds[best[-1]])


def benign_quantile_threshold(val_scores: np.ndarray, quantile: float = 0.99) -> float:
    """Unsupervised rule: alert above the ``quantile`` of held-out (presumed benign) validation scores."""
    scores = np.asarray(val_scores, dtype=np.float64)
    return float(np.quantile(scores, quantile)) if scores.size else math.inf


def decision_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Metrics:
    """All test metrics at a threshold fixed beforehand (``score >= threshold`` is an alert)."""
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    auc, ap = ranking_metrics(labels, scores)
    predicted = (scores >= threshold).astype(np.int64)
    out = Metrics(auc=auc, ap=ap, support=int(labels.sum()), negatives=int((labels == 0).sum()), threshold=threshold)
    if labels.size and labels.sum() > 0:
        out.f1 = float(f1_score(labels, predicted, zero_division=0))
        out.precision = float(precision_score(labels, predicted, zero_division=0))
        out.recall = float(recall_score(labels, predicted, zero_division=0))
        out.mcc = float(matthews_corrcoef(labels, predicted)) if labels.min() != labels.max() else NAN
    return out


def mean_std(values: list[float]) -> tuple[float, float, int]:
    """(mean, sample std, n) over the finite values; NaN mean when none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return NAN, NAN, 0
    if len(finite) == 1:
        return finite[0], 0.0, 1
    return float(np.mean(finite)), float(np.std(finite, ddof=1)), len(finite)
