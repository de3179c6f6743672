"""Train/validation/test splits that never let test information into training or thresholds.

* ``time``: train on activity whose aggregation window starts before the cut, test on the rest
  (inventory relationships belong to both, as in ``graphdb.export``). Nodes first seen after the cut
  are absent from the training graph (nobody knew them then). Test positives are entities with
  malicious activity at or after the cut; entities malicious only before it are left out of the test
  metrics (neither attacked in the window nor known benign).
* ``campaign``: the time split, and campaign C is never seen in training: its labelled activity is
  removed from the training graph, its entities from the training labels, and the test positives are
  C's entities only (other campaigns' entities are left out of the metrics).
* ``entity``: stratified K-fold over the labelled node types on the whole graph; the validation part is
  carved out of the training folds only.

Every split also names validation nodes (part of the training side) on which thresholds are chosen.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from gnnsec import schema
from gnnsec.errors import InputError
from gnnsec.evaluate.data import EvalData
from gnnsec.snapshot import Snapshot, element_ids_at

DAY = 86400.0


@dataclass(slots=True)
class Split:
    """One train/test pair. Node sets are uids; ``train_labels`` is what supervision may use (uid → 0/1)."""

    name: str
    train: Snapshot
    test: Snapshot
    train_labels: dict[str, int]
    val_uids: set[str]  # training-side nodes held out of supervision, for thresholds
    test_positive: set[str]
    test_excluded: set[str] = field(default_factory=set)  # left out of test metrics
    test_uids: set[str] | None = None  # None: every test-snapshot node not excluded
    cut: float | None = None
    val_labels: dict[str, int] = field(default_factory=dict)  # truth of the validation nodes (training side)


def edge_window_epoch(snapshot: Snapshot) -> np.ndarray:
    """Window start of every edge as epoch seconds (NaN for inventory): the history features' reading."""
    from gnnsec.gnn.history import edge_windows

    return edge_windows(snapshot)


def subset(
    snapshot: Snapshot, node_keep: np.ndarray, edge_keep: np.ndarray, window: tuple[float, float] | None
) -> Snapshot:
    """The snapshot restricted to kept nodes and kept edges whose two ends are kept (reindexed)."""
    node_keep = np.asarray(node_keep, dtype=bool)
    new_index = np.full(snapshot.num_nodes, -1, dtype=np.int64)
    new_index[node_keep] = np.arange(int(node_keep.sum()))
    src, dst = snapshot.edge_index
    keep = np.asarray(edge_keep, dtype=bool) & node_keep[src] & node_keep[dst]
    rows = np.flatnonzero(keep)
    nodes = np.flatnonzero(node_keep)
    out = Snapshot(
        node_uid=[snapshot.node_uid[i] for i in nodes],
        node_label=snapshot.node_label[nodes],
        node_props=[snapshot.node_props[i] for i in nodes],
        edge_index=np.stack([new_index[src[rows]], new_index[dst[rows]]]).reshape(2, -1),
        edge_type=snapshot.edge_type[rows],
        edge_count=snapshot.edge_count[rows],
        edge_first_seen=snapshot.edge_first_seen[rows],
        edge_last_seen=snapshot.edge_last_seen[rows],
        edge_window=[snapshot.edge_window[i] for i in rows],
        edge_actions=[snapshot.edge_actions[i] for i in rows],
        window_start=window[0] if window else snapshot.window_start,
        window_end=window[1] if window else snapshot.window_end,
        meta={k: v for k, v in snapshot.meta.items() if k != "labels"},
        edge_element_id=element_ids_at(snapshot.edge_element_id, rows),
    )
    out.validate()
    return out


def relation_subset(snapshot: Snapshot, relations: tuple[str, ...] | None) -> Snapshot:
    """Only the named relationship types (ResHGNN's relation-subset ablation); ``None`` keeps all."""
    if relations is None:
        return snapshot
    wanted = np.isin(snapshot.edge_type, [schema.relation_id(r) for r in relations])
    return subset(snapshot, np.ones(snapshot.num_nodes, dtype=bool), wanted, None)


def period(snapshot: Snapshot) -> tuple[float, float]:
    """(first activity window start, end of the last activity window) of the graph."""
    windows = edge_window_epoch(snapshot)
    windows = windows[np.isfinite(windows)]
    if windows.size == 0:
        raise InputError("the graph has no activity relationships, so it cannot be split by time")
    return float(windows.min()), float(windows.max()) + DAY


def time_cut(snapshot: Snapshot, fraction: float) -> float:
    """The cut ``fraction`` of the way through the period, floored to a day (aggregation windows are days)."""
    start, end = period(snapshot)
    cut = start + math.floor(fraction * (end - start) / DAY) * DAY
    return min(max(cut, start + DAY), end - DAY)


def _activity_edge_keys(data: EvalData, campaign: str | None) -> set[tuple[str, int, str, float]]:
    """(src, relation id, dst, window start) of the labelled malicious activity (of one campaign)."""
    keys = set()
    for row in data.activity:
        if campaign is not None and row.campaign != campaign:
            continue
        if not math.isfinite(row.time):
            continue
        keys.add((row.src_uid, schema.relation_id(row.type), row.dst_uid, math.floor(row.time / DAY) * DAY))
    return keys


def malicious_edges(snapshot: Snapshot, data: EvalData, campaign: str | None = None) -> np.ndarray:
    """Bool [E]: the edge matches a labelled malicious activity row (same ends, type and day window)."""
    keys = _activity_edge_keys(data, campaign)
    windows = edge_window_epoch(snapshot)
    src, dst = snapshot.edge_index
    out = np.zeros(snapshot.num_edges, dtype=bool)
    if not keys:
        return out
    for e in range(snapshot.num_edges):
        if math.isfinite(windows[e]):
            key = (snapshot.node_uid[src[e]], int(snapshot.edge_type[e]), snapshot.node_uid[dst[e]], windows[e])
            out[e] = key in keys
    return out


def _entity_malicious_between(data: EvalData, start: float, end: float) -> set[str]:
    """Entities whose malicious period [first, last] meets [start, end) (no times: always)."""
    out = set()
    for uid, entity in data.entities.items():
        first = entity.first_malicious if math.isfinite(entity.first_malicious) else -math.inf
        last = entity.last_malicious if math.isfinite(entity.last_malicious) else first
        last = math.inf if not math.isfinite(last) else last
        if first < end and last >= start:
            out.add(uid)
    return out


def _validation_uids(train: Snapshot, labels: dict[str, int], fraction: float, seed: int) -> set[str]:
    """A stratified ``fraction`` of training nodes (per node label and class) held out for thresholds."""
    rng = np.random.default_rng(seed)
    out: set[str] = set()
    classes = np.asarray([labels.get(uid, 0) for uid in train.node_uid])
    for lid in np.unique(train.node_label):
        for cls in (0, 1):
            rows = np.flatnonzero((train.node_label == lid) & (classes == cls))
            take = round(fraction * rows.size)
            if cls == 1 and rows.size >= 2:
                take = max(take, 1)
            out.update(train.node_uid[i] for i in rng.permutation(rows)[:take])
    return out


def time_split(data: EvalData, fraction: float = 0.6, campaign: str | None = None, seed: int = 0,
               val_fraction: float = 0.2) -> Split:
    """Train before the cut, test from it; with ``campaign`` that campaign is also unseen in training."""
    snap = data.snapshot
    start, end = period(snap)
    cut = time_cut(snap, fraction)
    windows = edge_window_epoch(snap)
    inventory = ~np.isfinite(windows)
    first_seen = np.asarray([p.get("first_seen", math.nan) for p in snap.node_props], dtype=np.float64)
    known_before = ~(first_seen >= cut)  # NaN (no time) counts as known
    train_edges = inventory | (windows < cut)
    hidden: set[str] = set()
    if campaign is not None:
        train_edges &= ~malicious_edges(snap, data, campaign)
        hidden = {uid for uid, e in data.entities.items() if e.campaign == campaign}
    train = subset(snap, known_before, train_edges, (start, cut))
    test = subset(snap, np.ones(snap.num_nodes, dtype=bool), inventory | (windows >= cut), (cut, end))
    before = _entity_malicious_between(data, -math.inf, cut)
    after = _entity_malicious_between(data, cut, math.inf)
    train_labels = {uid: 0 for uid in train.node_uid if uid not in hidden}
    train_labels.update({uid: 1 for uid in before if uid in train_labels})
    if campaign is None:
        positives, excluded = after, before - after
    else:
        positives = {uid for uid in after if uid in hidden}
        excluded = set(data.entities) - positives
    val = _validation_uids(train, train_labels, val_fraction, seed)
    name = f"time@{fraction:g}" + (f" holdout={campaign}" if campaign else "")
    return Split(name, train, test, {u: v for u, v in train_labels.items() if u not in val}, val, positives,
                 excluded, None, cut, {u: train_labels.get(u, 0) for u in val})


def campaigns_after_cut(data: EvalData, fraction: float) -> list[str]:
    """Campaigns with malicious activity in the test window of the time split (the ones worth holding out)."""
    cut = time_cut(data.snapshot, fraction)
    after = _entity_malicious_between(data, cut, math.inf)
    return sorted({data.entities[uid].campaign for uid in after if data.entities[uid].campaign})


def entity_folds(data: EvalData, folds: int, seed: int = 0, val_fraction: float = 0.2) -> Iterator[Split]:
    """Stratified K-fold over nodes (per node label and class); validation carved from the training folds."""
    from sklearn.model_selection import StratifiedKFold

    snap = data.snapshot
    if folds < 2:
        raise InputError("--folds must be at least 2 for the entity split")
    if snap.num_nodes < folds:
        raise InputError(f"--folds {folds} needs at least {folds} nodes; the graph has {snap.num_nodes}")
    malicious = np.asarray([uid in data.entities for uid in snap.node_uid])
    strata = snap.node_label * 2 + malicious
    # Strata smaller than K cannot be stratified; they join their label's benign stratum.
    counts = np.bincount(strata, minlength=int(strata.max()) + 1)
    strata = np.where(counts[strata] < folds, snap.node_label * 2, strata)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    full = subset(snap, np.ones(snap.num_nodes, dtype=bool), np.ones(snap.num_edges, dtype=bool), None)
    for k, (train_rows, test_rows) in enumerate(splitter.split(np.zeros(snap.num_nodes), strata)):
        train_labels = {snap.node_uid[i]: int(malicious[i]) for i in train_rows}
        rng = np.random.default_rng(seed + k)
        val: set[str] = set()
        for stratum in np.unique(strata[train_rows]):
            rows = train_rows[strata[train_rows] == stratum]
            take = round(val_fraction * rows.size)
            val.update(snap.node_uid[i] for i in rng.permutation(rows)[:take])
        test_uids = {snap.node_uid[i] for i in test_rows}
        yield Split(
            f"entity fold {k + 1}/{folds}", full, full,
            {u: v for u, v in train_labels.items() if u not in val}, val,
            {u for u in test_uids if u in data.entities}, set(), test_uids, None,
            {u: train_labels[u] for u in val},
        )
