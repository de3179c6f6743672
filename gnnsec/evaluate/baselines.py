"""Non-graph and simple graph-outlier baselines on exactly the GNN's input features.

* ``iforest``: Isolation Forest per node label on the feature matrix (``gnn.features``), fitted on the
  training-window nodes; score = −``score_samples`` (higher is more anomalous).
* ``mlp-ae``: a feature-only MLP autoencoder (sklearn ``MLPRegressor`` x → 64 → 16 → 64 → x) fitted on
  the training nodes; score = mean squared reconstruction error.
* ``nbr-iforest``: the graph-outlier baseline. Features concatenated with the mean of the neighbours'
  features (one undirected hop over all relations) and log1p(degree), then Isolation Forest per label.
  It is one step of feature propagation, not DOMINANT or any PyGOD model (PyGOD is not installed here).

All are unsupervised: labels are never used, so they compare with the GNN's unsupervised mode.
"""

from __future__ import annotations

import numpy as np

from gnnsec.errors import InputError
from gnnsec.gnn.features import FeatureSpec, build_features, fit_feature_spec
from gnnsec.snapshot import Snapshot

BASELINES = ("iforest", "mlp-ae", "nbr-iforest")
MIN_PER_LABEL = 32
"""Labels with fewer training nodes share one model fitted on all training nodes."""


def feature_matrix(snapshot: Snapshot, spec: FeatureSpec) -> np.ndarray:
    """The GNN's feature columns without the zero padding."""
    return build_features(snapshot, spec)[:, : spec.width].astype(np.float64)


def neighbour_features(snapshot: Snapshot, x: np.ndarray) -> np.ndarray:
    r""":math:`[x_i \,\|\, \frac1{|N(i)|}\sum_{j\in N(i)} x_j \,\|\, \log(1+|N(i)|)]` over undirected edges."""
    src, dst = snapshot.edge_index
    n = snapshot.num_nodes
    both_src = np.concatenate([src, dst])
    both_dst = np.concatenate([dst, src])
    sums = np.zeros_like(x)
    np.add.at(sums, both_dst, x[both_src])
    degree = np.bincount(both_dst, minlength=n).astype(np.float64)
    mean = sums / np.maximum(degree, 1.0)[:, None]
    return np.concatenate([x, mean, np.log1p(degree)[:, None]], axis=1)


def _per_label_iforest(train_x: np.ndarray, train_label: np.ndarray, test_x: np.ndarray, test_label: np.ndarray,
                       seed: int) -> np.ndarray:
    from sklearn.ensemble import IsolationForest

    def fitted(rows: np.ndarray) -> IsolationForest:
        return IsolationForest(n_estimators=200, random_state=seed).fit(train_x[rows])

    pooled = fitted(np.arange(train_x.shape[0]))
    scores = np.zeros(test_x.shape[0])
    for lid in np.unique(test_label):
        rows = np.flatnonzero(test_label == lid)
        own = np.flatnonzero(train_label == lid)
        model = fitted(own) if own.size >= MIN_PER_LABEL else pooled
        scores[rows] = -model.score_samples(test_x[rows])
    return scores


def _autoencoder(train_x: np.ndarray, test_x: np.ndarray, seed: int) -> np.ndarray:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    model = MLPRegressor(hidden_layer_sizes=(64, 16, 64), max_iter=60, early_stopping=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train_x, train_x)
    return np.mean((model.predict(test_x) - test_x) ** 2, axis=1)


def baseline_scores(kind: str, train: Snapshot, fit_rows: np.ndarray, targets: list[Snapshot], seed: int,
                    spec: FeatureSpec | None = None) -> list[np.ndarray]:
    """Scores of every node of each target snapshot by baseline ``kind`` fitted on ``train[fit_rows]``."""
    if kind not in BASELINES:
        raise InputError(f"unknown baseline {kind!r}; known: {', '.join(BASELINES)}")
    spec = spec or fit_feature_spec(train)
    train_x = feature_matrix(train, spec)
    target_x = [feature_matrix(t, spec) for t in targets]
    if kind == "nbr-iforest":
        train_x = neighbour_features(train, train_x)
        target_x = [neighbour_features(t, x) for t, x in zip(targets, target_x, strict=True)]
    fit_x, fit_label = train_x[fit_rows], train.node_label[fit_rows]
    if kind == "mlp-ae":
        return [_autoencoder(fit_x, x, seed) for x in target_x]
    return [_per_label_iforest(fit_x, fit_label, x, t.node_label, seed) for t, x in zip(targets, target_x, strict=True)]
