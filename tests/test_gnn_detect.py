"""Detection: injected anomalies rank high after self-supervised training on benign data; calibration,
snapshot score, explanations and analyst feedback behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gnn_helpers import make_estate, single_thread, tiny_train_config

from gnnsec.errors import InputError
from gnnsec.gnn.checkpoint import Checkpoint
from gnnsec.gnn.detect import Detector, DetectorConfig, add_benign_reference, edge_anomaly
from gnnsec.gnn.embed import Embeddings
from gnnsec.gnn.pipeline import ScoreOutput, score_snapshot, train_checkpoint
from gnnsec.schema import NODE_LABELS

__all__ = ["single_thread"]
pytestmark = pytest.mark.usefixtures("single_thread")
USER = NODE_LABELS.index("User")


@pytest.fixture(scope="module")
def scored() -> tuple[Checkpoint, ScoreOutput, ScoreOutput, list[str]]:
    torch.set_num_threads(1)
    benign, _ = make_estate(communities=8, seed=7)
    ckpt, _ = train_checkpoint(benign, tiny_train_config(epochs=60, patience=15))
    attacked, injected = make_estate(communities=8, seed=7, injected=3)
    return ckpt, score_snapshot(ckpt, attacked, "cpu"), score_snapshot(ckpt, benign, "cpu"), injected


def test_injected_users_score_above_the_benign_median_and_rank_in_the_top_fifth(
    scored: tuple[Checkpoint, ScoreOutput, ScoreOutput, list[str]],
) -> None:
    _, out, _, injected = scored
    emb, nodes = out.embeddings, out.nodes
    idx = [emb.node_uid.index(u) for u in injected]
    benign_users = [i for i in np.nonzero(emb.node_label == USER)[0] if i not in idx]
    assert min(nodes.raw[idx]) > np.median(nodes.raw[benign_users])
    assert min(nodes.score[idx]) >= np.median(nodes.score[benign_users])
    num_users = len(benign_users) + len(idx)
    assert np.mean(nodes.rank[idx]) <= 0.2 * num_users
    assert all(nodes.anomalous[idx])


def test_calibrated_scores_lie_in_the_unit_interval_and_ranks_are_per_label(
    scored: tuple[Checkpoint, ScoreOutput, ScoreOutput, list[str]],
) -> None:
    _, out, _, _ = scored
    assert np.all((out.nodes.score >= 0) & (out.nodes.score < 1))
    for lid in np.unique(out.embeddings.node_label):
        ranks = out.nodes.rank[out.embeddings.node_label == lid]
        assert sorted(ranks.tolist()) == list(range(1, ranks.size + 1))


def test_the_attacked_window_scores_higher_than_the_benign_window(
    scored: tuple[Checkpoint, ScoreOutput, ScoreOutput, list[str]],
) -> None:
    _, attacked, benign, _ = scored
    assert attacked.snapshot.exceedances > benign.snapshot.exceedances
    assert attacked.snapshot.score > benign.snapshot.score
    assert benign.snapshot.score < 0.9


def test_edge_anomaly_is_one_minus_sigmoid_of_distmult(
    scored: tuple[Checkpoint, ScoreOutput, ScoreOutput, list[str]],
) -> None:
    _, out, _, _ = scored
    assert out.edge_anomaly.shape == (out.embeddings.edge_type.size,)
    assert np.allclose(out.edge_anomaly, 1 / (1 + np.exp(out.embeddings.edge_logit)))
    assert edge_anomaly(0.0) == pytest.approx(0.5)


def test_explanation_names_relationships_neighbours_and_features(
    scored: tuple[Checkpoint, ScoreOutput, ScoreOutput, list[str]],
) -> None:
    ckpt, out, _, injected = scored
    assert ckpt.detector is not None
    ex = ckpt.detector.explain(out.embeddings, out.nodes, ckpt.spec, injected[0])
    assert ex.label == "User" and len(ex.unusual_edges) == 5
    anomalies = [a for *_, a in ex.unusual_edges]
    assert anomalies == sorted(anomalies, reverse=True)
    feature_names = [name for name, _ in ex.unusual_features]
    assert set(feature_names) & {"num:login_count", "offhours", "cnt:ASSUMES_ROLE:out", "bool:mfa_enabled"}
    assert all(name in ckpt.spec.columns for name in feature_names)
    assert 1 <= len(ex.reasons()) <= 5 and all(isinstance(r, str) for r in ex.reasons())
    with pytest.raises(InputError, match="not in the scored snapshot"):
        ckpt.detector.explain(out.embeddings, out.nodes, ckpt.spec, "aws:user:nobody")


def test_feedback_marks_a_pattern_benign_so_a_similar_node_scores_lower(
    scored: tuple[Checkpoint, ScoreOutput, ScoreOutput, list[str]],
) -> None:
    ckpt, out, _, injected = scored
    assert ckpt.detector is not None
    detector = Detector.from_state(ckpt.detector.to_state())  # a copy: the fixture stays untouched
    emb = out.embeddings
    first, second = emb.node_uid.index(injected[0]), emb.node_uid.index(injected[1])
    before = detector.score(emb).raw[[first, second]]
    holder = Checkpoint(model=ckpt.model, spec=ckpt.spec, detector=detector)
    add_benign_reference(holder, emb.subset(np.array([first])))
    after = detector.score(emb).raw[[first, second]]
    assert after[0] < before[0] and after[1] < before[1]


def _embeddings(z: np.ndarray, labels: np.ndarray, recon: np.ndarray | None = None) -> Embeddings:
    n = z.shape[0]
    return Embeddings(
        node_uid=[f"n{i}" for i in range(n)],
        node_label=labels,
        z=z.astype(np.float32),
        recon_error=np.zeros(n, dtype=np.float32) if recon is None else recon.astype(np.float32),
        features=np.zeros((n, 3), dtype=np.float32),
        edge_index=np.zeros((2, 0), dtype=np.int64),
        edge_type=np.zeros(0, dtype=np.int64),
        edge_logit=np.zeros(0, dtype=np.float32),
    )


def test_knn_distance_is_standardised_by_the_reference_mean_and_excludes_the_node_itself() -> None:
    # Reference: 1-D points 0..9 of one label; calibration: points 10..13 held out by uid.
    z = np.arange(14, dtype=np.float32).reshape(-1, 1)
    benign = _embeddings(z, np.zeros(14, dtype=np.int64))
    config = DetectorConfig(k=1, min_reference=2, recon_weight=0.0, feature_weight=0.0)
    detector = Detector.fit(benign, config, calibration_uids=[f"n{i}" for i in range(10, 14)])
    ref = detector.references["User"]
    assert sorted(ref.uids) == [f"n{i}" for i in range(10)]
    # every reference point's nearest other point is 1 away, in units of the mean embedding norm (4.5)
    assert ref.z_scale == pytest.approx(4.5)
    assert ref.mean_knn * ref.z_scale == pytest.approx(1.0)
    # n3 at 3.0 is in the reference, but its own entry is excluded: nearest other is 1 away → 1.0
    query = _embeddings(np.array([[3.0], [20.0]]), np.zeros(2, dtype=np.int64))
    query.node_uid = ["n3", "new"]
    scores = detector.score(query)
    assert scores.knn.tolist() == pytest.approx([1.0, 11.0])
    # calibration scores are 1..4 (points 10..13 vs nearest reference 9): ECDF with n+1 in the denominator
    assert ref.calibration.tolist() == pytest.approx([1.0, 2.0, 3.0, 4.0])
    # n3's raw score ties the lowest calibration score (1.0, up to float rounding of the scaled view)
    assert scores.score[0] in (pytest.approx(0.0), pytest.approx(1 / 5))
    assert scores.score[1] == pytest.approx(4 / 5)


def test_labels_without_enough_reference_use_the_pooled_reference() -> None:
    z = np.arange(20, dtype=np.float32).reshape(-1, 1)
    labels = np.zeros(20, dtype=np.int64)
    labels[:2] = 3  # only two Role nodes: too few for their own reference
    detector = Detector.fit(_embeddings(z, labels), DetectorConfig(k=2, min_reference=3))
    assert "Role" not in detector.references and "User" in detector.references and "*" in detector.references
    scores = detector.score(_embeddings(np.array([[5.0]]), np.array([3])))
    assert scores.score.shape == (1,)


def test_detector_state_is_plain_and_round_trips() -> None:
    z = np.random.default_rng(0).normal(size=(30, 4))
    detector = Detector.fit(_embeddings(z, np.zeros(30, dtype=np.int64), recon=np.linspace(0, 1, 30)))
    state = detector.to_state()
    restored = Detector.from_state(state)
    probe = _embeddings(z[:5] + 0.1, np.zeros(5, dtype=np.int64))
    assert np.array_equal(detector.score(probe).score, restored.score(probe).score)


def test_scoring_in_slices_of_nodes_gives_the_scores_of_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    import gnnsec.gnn.detect as detect

    rng = np.random.default_rng(3)
    emb = _embeddings(rng.normal(size=(60, 4)), rng.integers(0, 2, 60), rng.random(60))
    emb.features = rng.normal(size=(60, 3)).astype(np.float32)  # the view's feature block is sliced too
    detector = Detector.fit(emb, DetectorConfig(k=3, min_reference=3))
    whole = detector.score(emb)
    monkeypatch.setattr(detect, "VIEW_ROWS", 7)
    sliced = detector.score(emb)
    assert np.allclose(sliced.raw, whole.raw) and np.array_equal(sliced.rank, whole.rank)
