r"""Baselines on the history detector's own ground: (entity, window) pairs and their history features.

The detector (``gnn.window_detect``) scores each pair's :data:`~gnnsec.gnn.history.ANOMALY_COLUMNS`
against history. To claim it does better than what already exists, the baselines below score exactly the
same pairs from exactly the same columns; every unsupervised one is fitted on the training pairs only
(earlier windows) and scores the test pairs; higher is always more anomalous.

* ``rules``: what security teams already run, per principal (first-time source IP, API, role
  assumption, region; an event count above the label's 99th percentile; a volume burst). No learned
  weights: the score is the number of rules fired plus a tie-break below 1.
* ``iforest`` / ``mlp-ae``: the per-node baselines of :mod:`gnnsec.evaluate.baselines` on pair features.
* ``nbr-iforest``: pair features, the mean features of the pair's neighbours in the same window and
  log1p(#neighbours), then Isolation Forest per label (one step of feature propagation).
* ``dominant`` / ``anomalydae`` / ``cola`` / ``ocgnn``: PyGOD's graph outlier detectors on one
  homogeneous graph per window (nodes = that window's pairs), fitted on the training windows.
  Their scores are ranked with our thresholds; PyGOD's contamination-based ``predict`` is never used.
* ``gbt`` / ``gbt-nbr`` (supervised, needs pair labels): gradient boosting on the features, or on the
  features and the neighbour means; score = predicted probability of the malicious class.

A baseline that cannot run on the input (too big for a dense model, one class only, PyGOD missing)
raises :class:`BaselineSkipped` so that the caller can report that it did not fit instead of failing.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from gnnsec.errors import InputError
from gnnsec.evaluate.baselines import MIN_PER_LABEL, _autoencoder, _per_label_iforest
from gnnsec.gnn.history import ANOMALY_COLUMNS, CONTEXT_COLUMNS, WINDOW_SECONDS, WindowFeatures, edge_windows
from gnnsec.snapshot import Snapshot

FEATURE_BASELINES = ("iforest", "mlp-ae")
PYGOD_BASELINES = ("dominant", "anomalydae", "cola", "ocgnn")
DENSE_PYGOD = ("dominant", "anomalydae")
"""These reconstruct the N×N adjacency (``to_dense_adj`` and ``sigmoid(Z Zᵀ)``): memory grows as N²."""
HISTORY_BASELINES = ("rules", "iforest", "mlp-ae", "nbr-iforest", *PYGOD_BASELINES)
SUPERVISED_BASELINES = ("gbt", "gbt-nbr")

DENSE_NODE_CAP = 20_000
"""Most nodes in one graph a dense PyGOD model gets: 20k² float32 is 1.6 GB per N×N matrix, and a
training step holds several (adjacency, reconstruction, gradients)."""
SPARSE_NODE_CAP = 200_000
"""Most training nodes for CoLA and OCGNN (memory is linear, the cap bounds CPU time)."""
PYGOD_EPOCHS = 50

FIRST_TIME_RULES: tuple[tuple[str, str], ...] = (
    ("first-time source IP", "new_source_ips"),
    ("first-time API", "new_actions"),
    ("first-time role assumption", "new_roles_assumed"),
    ("first-time region", "new_regions"),
)
COUNT_RULE = "event count above the label's 99th percentile"
BURST_RULE = "volume burst (volume_z > 3)"
RULE_NAMES: tuple[str, ...] = (*(name for name, _ in FIRST_TIME_RULES), COUNT_RULE, BURST_RULE)
COUNT_QUANTILE = 0.99
BURST_Z = 3.0
TIE_BREAK = 0.01
"""The tie-break lies in [0, TIE_BREAK): one more fired rule always outranks any magnitude."""


class BaselineSkipped(RuntimeError):
    """The baseline cannot run on this input; ``reason`` says why, for the caller to print."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- rules ------------------------------------------------------------------------------------------


def _anomaly(x: np.ndarray, name: str) -> np.ndarray:
    return x[:, ANOMALY_COLUMNS.index(name)]


def _context(context: np.ndarray, name: str) -> np.ndarray:
    return context[:, CONTEXT_COLUMNS.index(name)]


def count_thresholds(train_events: np.ndarray, train_label: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Per row of ``label``: the 99th percentile of training events of that label.

    Labels with fewer than ``MIN_PER_LABEL`` training pairs use the pooled percentile (as the per-label
    Isolation Forest pools them); with no training pairs at all the rule never fires (threshold ∞).
    """
    if train_events.size == 0:
        return np.full(label.shape[0], np.inf)
    pooled = float(np.quantile(train_events, COUNT_QUANTILE))
    out = np.full(label.shape[0], pooled)
    for lid in np.unique(label):
        own = train_events[train_label == lid]
        if own.size >= MIN_PER_LABEL:
            out[label == lid] = float(np.quantile(own, COUNT_QUANTILE))
    return out


def rule_matrix(x: np.ndarray, context: np.ndarray, label: np.ndarray, train_x: np.ndarray,
                train_context: np.ndarray, train_label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Which of :data:`RULE_NAMES` fire per pair (bool [P, R]) and by how much (float [P, R], 0 where not).

    Magnitude is "how far past the line", unit-free: a first-time column's value over its mean among
    training pairs where it fired (1 when it never did); :math:`\text{events}/t_{99}`; :math:`z/3`.
    """
    fired = []
    magnitude = []
    for _, name in FIRST_TIME_RULES:
        value = _anomaly(x, name)
        seen = _anomaly(train_x, name)
        scale = float(seen[seen > 0].mean()) if np.any(seen > 0) else 1.0
        fired.append(value > 0)
        magnitude.append(value / scale)
    events = _context(context, "events")
    threshold = count_thresholds(_context(train_context, "events"), train_label, label)
    fired.append(events > threshold)
    magnitude.append(np.divide(events, threshold, out=np.zeros_like(events), where=np.isfinite(threshold)
                               & (threshold > 0)))
    z = _anomaly(x, "volume_z")
    fired.append(z > BURST_Z)
    magnitude.append(z / BURST_Z)
    fired_m = np.stack(fired, axis=1)
    return fired_m, np.where(fired_m, np.stack(magnitude, axis=1), 0.0)


def rules_scores(x: np.ndarray, context: np.ndarray, label: np.ndarray, train_x: np.ndarray,
                 train_context: np.ndarray, train_label: np.ndarray) -> np.ndarray:
    r"""#rules fired plus a tie-break: :math:`n + 0.01\,\frac{m}{1+m}` with :math:`m` the summed magnitudes.

    No learned weights: the training pairs only set the count rule's per-label threshold and the
    magnitude units, as a team would pick a threshold from last month's logs.
    """
    fired, magnitude = rule_matrix(x, context, label, train_x, train_context, train_label)
    total = magnitude.sum(axis=1)
    return fired.sum(axis=1).astype(np.float64) + TIE_BREAK * total / (1.0 + total)


# --- feature-only and neighbour baselines ---------------------------------------------------------


def standardise(train_x: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Columns scaled by the training mean and standard deviation (constant columns: std 1)."""
    mean = train_x.mean(axis=0) if train_x.size else np.zeros(x.shape[1])
    std = train_x.std(axis=0) if train_x.size else np.ones(x.shape[1])
    return (x - mean) / np.where(std > 0, std, 1.0)


def feature_scores(kind: str, train_x: np.ndarray, train_label: np.ndarray, test_x: np.ndarray,
                   test_label: np.ndarray, seed: int) -> np.ndarray:
    """``iforest`` (per label) or ``mlp-ae`` (pooled, standardised columns) on the pair features."""
    if kind == "iforest":
        return _per_label_iforest(train_x, train_label, test_x, test_label, seed)
    if kind == "mlp-ae":
        return _autoencoder(standardise(train_x, train_x), standardise(train_x, test_x), seed)
    raise InputError(f"unknown feature baseline {kind!r}; known: {', '.join(FEATURE_BASELINES)}")


@dataclass(frozen=True, slots=True)
class WindowGraph:
    """One window's pairs as a homogeneous graph."""

    window: float
    rows: np.ndarray  # int64 [n]: rows of the WindowFeatures, local node i is rows[i]
    edge_index: np.ndarray  # int64 [2, m]: local indices, both directions, no self-loops, no duplicates


def window_graphs(snapshot: Snapshot, features: WindowFeatures) -> list[WindowGraph]:
    """One graph per window of ``features``: pairs joined when their entities share a relationship that is
    active in that window or is inventory (no window). Neighbours are looked up among ``features`` only,
    so a split by window keeps every window whole on its side."""
    windows = np.unique(features.window)
    if windows.size == 0:
        return []
    src, dst = snapshot.edge_index
    when = edge_windows(snapshot)
    inventory = ~np.isfinite(when)
    # Window of each activity relationship: the pair window it falls into (−1 when none).
    slot = np.searchsorted(windows, np.where(inventory, -np.inf, when), side="right") - 1
    inside = (slot >= 0) & ~inventory
    inside[inside] = when[inside] < windows[slot[inside]] + WINDOW_SECONDS
    slot = np.where(inside, slot, -1)
    inv_src, inv_dst = src[inventory], dst[inventory]
    position = np.full(snapshot.num_nodes, -1, dtype=np.int64)
    graphs = []
    for index, window in enumerate(windows.tolist()):
        rows = np.flatnonzero(features.window == window)
        n = rows.size
        position[features.node[rows]] = np.arange(n)
        active = slot == index
        a = position[np.concatenate([src[active], inv_src])]
        b = position[np.concatenate([dst[active], inv_dst])]
        position[features.node[rows]] = -1
        keep = (a >= 0) & (b >= 0) & (a != b)
        key = np.unique(np.minimum(a[keep], b[keep]) * n + np.maximum(a[keep], b[keep]))
        lo, hi = key // n, key % n
        edge_index = np.stack([np.concatenate([lo, hi]), np.concatenate([hi, lo])]).astype(np.int64)
        graphs.append(WindowGraph(float(window), rows, edge_index))
    return graphs


def neighbour_pair_features(snapshot: Snapshot, features: WindowFeatures) -> np.ndarray:
    r""":math:`[x_p \,\|\, \frac1{|N(p)|}\sum_{q\in N(p)} x_q \,\|\, \log(1+|N(p)|)]`, :math:`N(p)` the pairs
    adjacent to ``p`` in its window's graph (:func:`window_graphs`); the mean is 0 without neighbours."""
    x = features.x
    mean = np.zeros_like(x)
    degree = np.zeros(features.num_pairs)
    for graph in window_graphs(snapshot, features):
        n = graph.rows.size
        if graph.edge_index.size == 0:
            continue
        a, b = graph.edge_index
        local = x[graph.rows]
        sums = np.zeros_like(local)
        np.add.at(sums, b, local[a])
        count = np.bincount(b, minlength=n).astype(np.float64)
        mean[graph.rows] = sums / np.maximum(count, 1.0)[:, None]
        degree[graph.rows] = count
    return np.concatenate([x, mean, np.log1p(degree)[:, None]], axis=1)


def nbr_scores(snapshot: Snapshot, train: WindowFeatures, test: WindowFeatures, seed: int) -> np.ndarray:
    """Isolation Forest per label on :func:`neighbour_pair_features`: a pair that looks normal alone but sits
    among unusual neighbours (or the reverse) is set apart."""
    return _per_label_iforest(neighbour_pair_features(snapshot, train), train.label,
                              neighbour_pair_features(snapshot, test), test.label, seed)


# --- PyGOD ----------------------------------------------------------------------------------------


class _FullBatchLoader:
    """Stands in for PyG's ``NeighborLoader`` inside PyGOD: the whole graph as one batch.

    PyGOD's detectors always go through ``NeighborLoader``, which needs ``pyg-lib`` or ``torch-sparse``
    (neither installs from PyPI against current torch). With ``batch_size=0`` and all neighbours, which
    is how we use them, the loader yields the whole graph once anyway; this does exactly that, on the
    graph it is given (so a test graph of any size is scored in one piece, whatever the training size).
    It also pads the dense adjacency that DOMINANT and AnomalyDAE attach (``to_dense_adj`` sizes it by the
    largest node index on an edge, one short per trailing isolated node) to the full N×N.
    """

    def __init__(self, data: Any, num_neighbors: Any = None, batch_size: int = 0, **_: Any) -> None:
        self.data = data

    def __iter__(self) -> Iterator[Any]:
        import torch

        batch = self.data.clone()
        n = int(batch.num_nodes)
        if "s" in batch and batch.s.shape[0] < n:
            pad = n - batch.s.shape[0]
            batch.s = torch.nn.functional.pad(batch.s, (0, pad, 0, pad))
        batch.n_id = torch.arange(n)
        batch.batch_size = n
        yield batch

    def __len__(self) -> int:
        return 1


@contextmanager
def _pygod_runtime(seed: int) -> Iterator[None]:
    """Full-batch loader, no warnings, and a private torch RNG seeded with ``seed`` (global state untouched)."""
    import torch
    from pygod.detector import base

    if not hasattr(base, "NeighborLoader"):
        raise BaselineSkipped("this PyGOD version no longer loads graphs through NeighborLoader")
    original = base.NeighborLoader
    base.NeighborLoader = _FullBatchLoader
    try:
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.simplefilter("ignore")
            torch.manual_seed(seed)
            yield
    finally:
        base.NeighborLoader = original


def _detector(kind: str, epochs: int) -> Any:
    """The PyGOD detector on CPU, silent, with PyGOD's default architecture and ``epochs`` epochs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit deprecation noise on import
            from pygod.detector import DOMINANT, OCGNN, AnomalyDAE, CoLA
    except ImportError as err:
        raise BaselineSkipped(f"PyGOD is not installed ({err})") from err
    common: dict[str, Any] = {"epoch": epochs, "gpu": -1, "verbose": 0}
    if kind == "dominant":
        return DOMINANT(**common)
    if kind == "anomalydae":
        return AnomalyDAE(**common)
    if kind == "cola":
        return CoLA(**common)
    # OCGNN sets its centre and radius during the first `warmup` epochs; keep one epoch after them.
    return OCGNN(warmup=min(2, epochs - 1), **common)


def _graph_data(x: np.ndarray, edge_index: np.ndarray) -> Any:
    import torch
    from torch_geometric.data import Data

    return Data(x=torch.as_tensor(x, dtype=torch.float32), edge_index=torch.as_tensor(edge_index, dtype=torch.long))


def _training_windows(graphs: list[WindowGraph], cap: int, kind: str) -> list[WindowGraph]:
    """The most recent training windows whose pairs add up to at most ``cap`` (whole windows keep the graph
    intact); :class:`BaselineSkipped` when even the latest window alone is over the cap."""
    chosen: list[WindowGraph] = []
    total = 0
    for graph in reversed(graphs):
        if total + graph.rows.size > cap:
            break
        chosen.append(graph)
        total += graph.rows.size
    if not chosen:
        raise BaselineSkipped(f"{kind}: a training window holds {graphs[-1].rows.size:,} pairs, over the "
                              f"{cap:,}-node cap of one fitted graph")
    return chosen[::-1]


def pygod_scores(kind: str, snapshot: Snapshot, train: WindowFeatures, test: WindowFeatures, seed: int,
                 epochs: int = PYGOD_EPOCHS, max_nodes: int | None = None) -> np.ndarray:
    """PyGOD detector ``kind`` fitted on the training windows, ``decision_function`` per test window.

    Training graph: the disjoint union of the training windows' graphs (the most recent ones up to
    ``max_nodes``, default :data:`DENSE_NODE_CAP` for dense models, :data:`SPARSE_NODE_CAP` otherwise).
    Node features: the pair features standardised with the training mean and std. A dense model also
    refuses a test window over the cap. AnomalyDAE's attribute decoder is a linear layer over the fitted
    graph's node count, so it is transductive: PyGOD zero-pads (or cuts) another graph to that count,
    as it does for its own mini-batches. Its scores are used as they come; reported, not fixed.
    """
    if kind not in PYGOD_BASELINES:
        raise InputError(f"unknown PyGOD baseline {kind!r}; known: {', '.join(PYGOD_BASELINES)}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    dense = kind in DENSE_PYGOD
    cap = max_nodes if max_nodes is not None else (DENSE_NODE_CAP if dense else SPARSE_NODE_CAP)
    train_graphs = window_graphs(snapshot, train)
    if not train_graphs:
        raise BaselineSkipped(f"{kind}: no training pairs")
    test_graphs = window_graphs(snapshot, test)
    too_big = [g for g in test_graphs if g.rows.size > cap]
    if dense and too_big:
        raise BaselineSkipped(f"{kind}: a test window holds {too_big[0].rows.size:,} pairs, over the "
                              f"{cap:,}-node cap of the dense adjacency")
    chosen = _training_windows(train_graphs, cap, kind)
    rows = np.concatenate([g.rows for g in chosen])
    offsets = np.cumsum([0] + [g.rows.size for g in chosen[:-1]])
    edges = np.concatenate([g.edge_index + off for g, off in zip(chosen, offsets, strict=True)], axis=1)
    fit_x = train.x[rows]
    detector = _detector(kind, epochs)
    scores = np.zeros(test.num_pairs)
    import torch

    with _pygod_runtime(seed):
        detector.fit(_graph_data(standardise(fit_x, fit_x), edges))
        with torch.no_grad():
            for graph in test_graphs:
                data = _graph_data(standardise(fit_x, test.x[graph.rows]), graph.edge_index)
                scores[graph.rows] = detector.decision_function(data).numpy().astype(np.float64)
    return scores


# --- supervised -----------------------------------------------------------------------------------


def gbt_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int) -> np.ndarray:
    """Probability of class 1 from a histogram gradient-boosted classifier; classes weighted inversely to
    their frequency, because a handful of malicious pairs would otherwise barely move the trees."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    y = np.asarray(train_y).astype(np.int64)
    if y.shape[0] != train_x.shape[0]:
        raise ValueError(f"train_y has {y.shape[0]} labels for {train_x.shape[0]} training pairs")
    if np.unique(y).size < 2:
        raise BaselineSkipped(f"the training pairs hold one class only ({int(y[0]) if y.size else 'none'})")
    model = HistGradientBoostingClassifier(max_iter=200, class_weight="balanced", random_state=seed)
    model.fit(train_x, y)
    return model.predict_proba(test_x)[:, list(model.classes_).index(1)]


def supervised_scores(kind: str, snapshot: Snapshot, train: WindowFeatures, test: WindowFeatures,
                      train_y: np.ndarray, seed: int) -> np.ndarray:
    """``gbt`` on the pair features or ``gbt-nbr`` on :func:`neighbour_pair_features`: an upper reference
    for what the labels alone can buy with these columns."""
    if kind == "gbt":
        return gbt_scores(train.x, train_y, test.x, seed)
    if kind == "gbt-nbr":
        return gbt_scores(neighbour_pair_features(snapshot, train), train_y,
                          neighbour_pair_features(snapshot, test), seed)
    raise InputError(f"unknown supervised baseline {kind!r}; known: {', '.join(SUPERVISED_BASELINES)}")


# --- entry point ----------------------------------------------------------------------------------


def history_baseline_scores(kind: str, snapshot: Snapshot, train: WindowFeatures, test: WindowFeatures, seed: int,
                            train_y: np.ndarray | None = None, *, epochs: int = PYGOD_EPOCHS,
                            max_nodes: int | None = None) -> np.ndarray:
    """Scores of ``test``'s pairs (same order) by baseline ``kind`` fitted on ``train``'s pairs.

    ``train_y`` (0/1 per training pair) is required by the supervised kinds and ignored by the others;
    ``epochs`` and ``max_nodes`` apply to the PyGOD kinds. Raises ``ValueError`` for an unknown kind and
    :class:`BaselineSkipped` when the baseline does not fit the input.
    """
    known = (*HISTORY_BASELINES, *SUPERVISED_BASELINES)
    if kind not in known:
        raise InputError(f"unknown history baseline {kind!r}; known: {', '.join(known)}")
    if kind in SUPERVISED_BASELINES and train_y is None:
        raise InputError(f"{kind} is supervised: pass train_y, one 0/1 label per training pair")
    if test.num_pairs == 0:
        return np.zeros(0)
    if kind == "rules":
        return rules_scores(test.x, test.context, test.label, train.x, train.context, train.label)
    if train.num_pairs == 0:
        raise BaselineSkipped(f"{kind}: no training pairs")
    if kind in FEATURE_BASELINES:
        return feature_scores(kind, train.x, train.label, test.x, test.label, seed)
    if kind == "nbr-iforest":
        return nbr_scores(snapshot, train, test, seed)
    if kind in PYGOD_BASELINES:
        return pygod_scores(kind, snapshot, train, test, seed, epochs=epochs, max_nodes=max_nodes)
    assert train_y is not None
    return supervised_scores(kind, snapshot, train, test, np.asarray(train_y), seed)
