"""History baselines: every kind scores the same (entity, window) pairs, rules follow their arithmetic,
the unsupervised models see an obvious outlier, the dense-model guard and the supervised checks hold.

One small generated estate (three days: two training windows, one test window) serves every test; no
database is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from gnnsec.evaluate.data import snapshot_from_files
from gnnsec.evaluate.history_baselines import (
    COUNT_RULE,
    HISTORY_BASELINES,
    PYGOD_BASELINES,
    RULE_NAMES,
    SUPERVISED_BASELINES,
    TIE_BREAK,
    BaselineSkipped,
    feature_scores,
    gbt_scores,
    history_baseline_scores,
    neighbour_pair_features,
    rule_matrix,
    rules_scores,
    window_graphs,
)
from gnnsec.evaluate.metrics import ranking_metrics
from gnnsec.gnn.history import ANOMALY_COLUMNS, CONTEXT_COLUMNS, WindowFeatures, history_features
from gnnsec.snapshot import Snapshot
from gnnsec.synth import generate

F = len(ANOMALY_COLUMNS)
PYGOD_EPOCHS = 2


@dataclass(slots=True)
class Estate:
    snapshot: Snapshot
    train: WindowFeatures
    test: WindowFeatures
    one_window_cap: int
    """A node cap that holds any single window but not two: PyGOD then fits on the latest training window."""


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Estate:
    root = tmp_path_factory.mktemp("history-baselines") / "synth"
    generate(root, seed=11, size="small", days=3)
    snapshot = snapshot_from_files(root)
    features = history_features(snapshot)
    windows = np.unique(features.window)
    assert windows.size == 3
    train = features.select(np.flatnonzero(features.window < windows[-1]))
    test = features.select(np.flatnonzero(features.window == windows[-1]))
    sizes = np.unique(features.window, return_counts=True)[1]
    assert 2 * sizes.min() > sizes.max()  # the cap below really holds one window only
    return Estate(snapshot, train, test, int(sizes.max()))


def _planted_labels(features: WindowFeatures) -> np.ndarray:
    """1 for the pairs with the most new edges: two classes in any split."""
    value = features.column("new_edges")
    return (value >= np.quantile(value, 0.9)).astype(np.int64)


# --- every kind -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*HISTORY_BASELINES, *SUPERVISED_BASELINES])
def test_every_kind_returns_finite_scores_aligned_with_the_test_pairs(estate: Estate, kind: str) -> None:
    scores = history_baseline_scores(kind, estate.snapshot, estate.train, estate.test, seed=0,
                                     train_y=_planted_labels(estate.train), epochs=PYGOD_EPOCHS,
                                     max_nodes=estate.one_window_cap)
    assert scores.shape == (estate.test.num_pairs,)
    assert np.isfinite(scores).all()
    assert scores.std() > 0  # a constant would be no ranking at all


def test_pygod_scores_repeat_with_the_seed_and_leave_the_global_rng_alone(estate: Estate) -> None:
    # CoLA draws a random permutation even when scoring: only a seeded private generator repeats it.
    before = torch.random.get_rng_state()
    runs = [history_baseline_scores("cola", estate.snapshot, estate.train, estate.test, seed=seed,
                                    epochs=PYGOD_EPOCHS, max_nodes=estate.one_window_cap) for seed in (3, 3, 4)]
    assert torch.equal(torch.random.get_rng_state(), before)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_an_empty_test_set_gives_an_empty_score_array(estate: Estate) -> None:
    empty = estate.test.select(np.zeros(0, dtype=np.int64))
    assert history_baseline_scores("iforest", estate.snapshot, estate.train, empty, seed=0).shape == (0,)


# --- rules ----------------------------------------------------------------------------------------


def _pairs(rows: list[dict[str, float]], events: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Feature and context arrays from {column name: value} per pair (columns found by name)."""
    x = np.zeros((len(rows), F))
    for i, row in enumerate(rows):
        for name, value in row.items():
            x[i, ANOMALY_COLUMNS.index(name)] = value
    context = np.zeros((len(rows), len(CONTEXT_COLUMNS)))
    context[:, CONTEXT_COLUMNS.index("events")] = events if events is not None else 1.0
    return x, context


def _reference(n: int = 100, label: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training pairs: events 1..n of one label; first-time columns fire now and then with magnitude 1."""
    x, context = _pairs([{} for _ in range(n)], events=list(np.arange(1.0, n + 1)))
    for name in ("new_source_ips", "new_actions", "new_roles_assumed", "new_regions"):
        x[:: 10, ANOMALY_COLUMNS.index(name)] = 1.0
    return x, context, np.full(n, label)


def test_one_more_fired_rule_outranks_any_magnitude() -> None:
    train_x, train_context, train_label = _reference()
    x, context = _pairs([
        {"new_actions": 1000.0},  # one rule, enormous magnitude
        {"new_actions": 0.1, "new_regions": 1.0},  # two rules, small magnitudes
        {"new_actions": 0.1, "new_regions": 1.0, "volume_z": 3.5},  # three
        {},  # none
    ])
    scores = rules_scores(x, context, np.zeros(4, dtype=np.int64), train_x, train_context, train_label)
    assert scores[3] == 0.0
    assert scores[3] < scores[0] < scores[1] < scores[2]
    np.testing.assert_array_equal(np.floor(scores), [1, 2, 3, 0])  # the count, tie-break below 1
    assert scores[0] - 1 < TIE_BREAK


def test_equal_counts_are_ordered_by_how_far_past_the_line_they_are() -> None:
    train_x, train_context, train_label = _reference()
    x, context = _pairs([{"new_source_ips": 1.0}, {"new_source_ips": 5.0}, {"volume_z": 3.1}, {"volume_z": 9.0}])
    scores = rules_scores(x, context, np.zeros(4, dtype=np.int64), train_x, train_context, train_label)
    assert 1 < scores[0] < scores[1] < 2
    assert 1 < scores[2] < scores[3] < 2


def test_each_rule_reads_its_own_column_by_name() -> None:
    train_x, train_context, train_label = _reference()
    columns = {
        "first-time source IP": "new_source_ips", "first-time API": "new_actions",
        "first-time role assumption": "new_roles_assumed", "first-time region": "new_regions",
    }
    for rule, column in columns.items():
        x, context = _pairs([{column: 1.0}])
        fired, _ = rule_matrix(x, context, np.zeros(1, dtype=np.int64), train_x, train_context, train_label)
        assert [RULE_NAMES[i] for i in np.flatnonzero(fired[0])] == [rule]
    # Columns no rule reads never fire one.
    quiet = [c for c in ANOMALY_COLUMNS if c not in {*columns.values(), "volume_z"}]
    x, context = _pairs([dict.fromkeys(quiet, 50.0)])
    fired, _ = rule_matrix(x, context, np.zeros(1, dtype=np.int64), train_x, train_context, train_label)
    assert not fired.any()


def test_the_count_rule_uses_the_99th_percentile_of_the_pairs_own_label() -> None:
    # Label 0 trains on events 1..100 (p99 ≈ 99), label 1 on 1001..1100 (p99 ≈ 1099).
    x0, c0, l0 = _reference(100, label=0)
    x1, c1, l1 = _reference(100, label=1)
    c1[:, CONTEXT_COLUMNS.index("events")] += 1000
    train_x, train_context, train_label = np.vstack([x0, x1]), np.vstack([c0, c1]), np.concatenate([l0, l1])
    x, context = _pairs([{}, {}, {}], events=[500.0, 500.0, 2000.0])
    label = np.array([0, 1, 1])
    fired, _ = rule_matrix(x, context, label, train_x, train_context, train_label)
    count = fired[:, RULE_NAMES.index(COUNT_RULE)]
    np.testing.assert_array_equal(count, [True, False, True])


# --- unsupervised models --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["iforest", "mlp-ae"])
def test_an_obvious_outlier_pair_scores_above_the_bulk(estate: Estate, kind: str) -> None:
    train, test = estate.train, estate.test
    common = int(np.bincount(test.label).argmax())
    outlier = train.x.max(axis=0) * 10 + 10
    test_x = np.vstack([test.x, outlier])
    test_label = np.append(test.label, common)
    scores = feature_scores(kind, train.x, train.label, test_x, test_label, seed=0)
    assert scores[-1] > np.median(scores[:-1])
    assert scores[-1] > np.quantile(scores[:-1], 0.99)


def test_an_unknown_kind_is_refused_naming_the_known_ones(estate: Estate) -> None:
    with pytest.raises(ValueError, match=r"unknown history baseline 'lof'.*rules.*ocgnn.*gbt-nbr"):
        history_baseline_scores("lof", estate.snapshot, estate.train, estate.test, seed=0)


@pytest.mark.parametrize("kind", ["dominant", "anomalydae"])
def test_dense_models_refuse_a_graph_over_the_node_cap(estate: Estate, kind: str) -> None:
    with pytest.raises(BaselineSkipped, match="10-node cap") as caught:
        history_baseline_scores(kind, estate.snapshot, estate.train, estate.test, seed=0, max_nodes=10)
    assert "pairs" in caught.value.reason
    # A training side under the cap is not enough: the dense adjacency of the test window is over it.
    few = estate.train.select(np.arange(5))
    with pytest.raises(BaselineSkipped, match="test window"):
        history_baseline_scores(kind, estate.snapshot, few, estate.test, seed=0, max_nodes=10)


def test_a_sparse_model_scores_a_test_window_over_the_cap(estate: Estate) -> None:
    few = estate.train.select(np.arange(5))
    scores = history_baseline_scores("ocgnn", estate.snapshot, few, estate.test, seed=0, epochs=PYGOD_EPOCHS,
                                     max_nodes=10)
    assert scores.shape == (estate.test.num_pairs,) and np.isfinite(scores).all()


def test_a_training_window_over_the_cap_skips_even_a_sparse_model(estate: Estate) -> None:
    small_test = estate.test.select(np.arange(5))
    with pytest.raises(BaselineSkipped, match="training window"):
        history_baseline_scores("ocgnn", estate.snapshot, estate.train, small_test, seed=0, max_nodes=10)


def test_pygod_kinds_are_the_graph_models_of_the_registry() -> None:
    assert set(PYGOD_BASELINES) <= set(HISTORY_BASELINES)
    assert not set(SUPERVISED_BASELINES) & set(HISTORY_BASELINES)


# --- neighbours -----------------------------------------------------------------------------------


DAY1 = datetime.fromisoformat("2026-03-02T00:00:00+00:00").timestamp()
DAY2 = DAY1 + 86400.0


def _hand_snapshot() -> Snapshot:
    """a→b active on day 1, b→c inventory, c→d and a→d active on day 2."""
    edges = [(0, 1, "2026-03-02T00:00:00"), (1, 2, None), (2, 3, "2026-03-03T00:00:00"), (0, 3, "2026-03-03T00:00:00")]
    e = len(edges)
    return Snapshot(
        node_uid=["a", "b", "c", "d"], node_label=np.zeros(4, dtype=np.int64), node_props=[{} for _ in range(4)],
        edge_index=np.array([[s for s, _, _ in edges], [d for _, d, _ in edges]], dtype=np.int64),
        edge_type=np.zeros(e, dtype=np.int64), edge_count=np.ones(e), edge_first_seen=np.full(e, np.nan),
        edge_last_seen=np.full(e, np.nan), edge_window=[w for _, _, w in edges], edge_actions=[[] for _ in edges],
    )


def _hand_pairs(nodes: list[int], windows: list[float], x: np.ndarray) -> WindowFeatures:
    p = len(nodes)
    return WindowFeatures(
        node=np.asarray(nodes, dtype=np.int64), window=np.asarray(windows), label=np.zeros(p, dtype=np.int64),
        x=x, context=np.zeros((p, len(CONTEXT_COLUMNS))), edge=np.zeros(0, dtype=np.int64), edge_window=np.zeros(0),
        edge_x=np.zeros((0, 4)), edge_peer_count=np.zeros(0, dtype=np.int64), pair_of_edge=np.zeros(0, dtype=np.int64),
    )


def test_neighbours_are_pairs_of_the_same_window_joined_by_that_windows_or_inventory_relationships() -> None:
    # Day 1: a, b, c active; a–b (day 1) and b–c (inventory) join them. Day 2: a, b, c, d; b–c (inventory),
    # c–d and a–d (day 2) join them, but a–b does not: that relationship is a day-1 one.
    nodes = [0, 1, 2, 0, 1, 2, 3]
    windows = [DAY1] * 3 + [DAY2] * 4
    x = np.arange(7, dtype=np.float64)[:, None] * np.ones((1, F))
    pairs = _hand_pairs(nodes, windows, x)
    graphs = window_graphs(_hand_snapshot(), pairs)
    links = {(g.window, tuple(sorted((int(g.rows[a]), int(g.rows[b]))))) for g in graphs for a, b in g.edge_index.T}
    assert links == {(DAY1, (0, 1)), (DAY1, (1, 2)), (DAY2, (4, 5)), (DAY2, (5, 6)), (DAY2, (3, 6))}
    features = neighbour_pair_features(_hand_snapshot(), pairs)
    assert features.shape == (7, 2 * F + 1)
    np.testing.assert_array_equal(features[:, :F], x)
    # Mean of the neighbours' rows, e.g. pair 6 (d, day 2) has pairs 3 and 5: (3 + 5) / 2 = 4.
    np.testing.assert_allclose(features[:, F], [1.0, 1.0, 1.0, 6.0, 5.0, 5.0, 4.0])
    np.testing.assert_allclose(features[:, -1], np.log1p([1, 2, 1, 1, 1, 2, 2]))


# --- supervised -----------------------------------------------------------------------------------


def test_gbt_separates_a_planted_feature_and_only_when_it_is_planted() -> None:
    # One OpenMP thread: on a busy 2-core machine the boosting's per-iteration barriers cost 20x otherwise.
    with threadpool_limits(1):
        _check_planted_feature()


def _check_planted_feature() -> None:
    rng = np.random.default_rng(0)

    def sample(n: int, plant: bool) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, F))
        y = (rng.random(n) < 0.05).astype(np.int64)
        if plant:
            x[y == 1, ANOMALY_COLUMNS.index("hour_novelty")] += 4.0
        return x, y

    train_x, train_y = sample(2000, plant=True)
    test_x, test_y = sample(1000, plant=True)
    auc, _ = ranking_metrics(test_y, gbt_scores(train_x, train_y, test_x, seed=0))
    assert auc > 0.95
    train_x, train_y = sample(2000, plant=False)
    test_x, test_y = sample(1000, plant=False)
    auc, _ = ranking_metrics(test_y, gbt_scores(train_x, train_y, test_x, seed=0))
    assert auc < 0.75  # nothing to learn: no better than chance by much


def test_supervised_baselines_need_labels_of_both_classes(estate: Estate) -> None:
    with pytest.raises(ValueError, match="train_y"):
        history_baseline_scores("gbt", estate.snapshot, estate.train, estate.test, seed=0)
    with pytest.raises(BaselineSkipped, match="one class"):
        history_baseline_scores("gbt-nbr", estate.snapshot, estate.train, estate.test, seed=0,
                                train_y=np.zeros(estate.train.num_pairs, dtype=np.int64))


def test_label_length_must_match_the_training_pairs() -> None:
    with pytest.raises(ValueError, match="labels for"):
        gbt_scores(np.zeros((4, F)), np.array([0, 1]), np.zeros((2, F)), seed=0)

