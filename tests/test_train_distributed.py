"""``gnnsec train --nproc 2``: two gloo processes on the CPU see disjoint mini-batches that cover each
epoch, end with identical weights, and rank 0's model makes a checkpoint the normal loader scores with."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gnn_helpers import make_estate, single_thread, tiny_train_config

from gnnsec.errors import InputError
from gnnsec.gnn.checkpoint import load_checkpoint, save_checkpoint
from gnnsec.gnn.data import to_tensors
from gnnsec.gnn.distributed import RankRecord, fit_data_parallel
from gnnsec.gnn.features import build_features, fit_feature_spec
from gnnsec.gnn.pipeline import score_snapshot, train_checkpoint
from gnnsec.gnn.train import FitOutput, TrainConfig, _split, edge_batch_count
from gnnsec.snapshot import Snapshot

__all__ = ["single_thread"]
pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without torch.distributed"),
]

EPOCHS = 3


def _training_edges(snapshot: Snapshot, config: TrainConfig) -> set[int]:
    """The schema-edge ids of the training split, as fit() draws it (first use of the seeded generator)."""
    graph = to_tensors(snapshot, build_features(snapshot, fit_feature_spec(snapshot)))
    return set(_split(graph, snapshot, config, torch.Generator().manual_seed(config.seed)).train_edges.tolist())


@pytest.fixture(scope="module")
def two_ranks() -> tuple[Snapshot, TrainConfig, FitOutput, list[RankRecord]]:
    snapshot, _ = make_estate(communities=4, seed=0)
    config = tiny_train_config(epochs=EPOCHS, patience=100)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # one thread per rank
    try:
        fitted, records = fit_data_parallel(snapshot, config, 2, record=True)
    finally:
        torch.set_num_threads(before)
    return snapshot, config, fitted, records


def test_ranks_train_on_disjoint_minibatches_that_cover_each_epoch(two_ranks: tuple) -> None:
    snapshot, config, fitted, records = two_ranks
    assert [r.rank for r in records] == [0, 1]
    train_edges = _training_edges(snapshot, config)
    assert len(train_edges) == snapshot.num_edges - round(config.val_edge_fraction * snapshot.num_edges)
    for epoch in range(EPOCHS):
        first, second = (set(r.shards[epoch]) for r in records)
        assert first and second
        assert not first & second, f"epoch {epoch}: both ranks trained on {sorted(first & second)}"
        assert first | second == train_edges
        assert abs(len(first) - len(second)) <= 2  # 4 near-equal mini-batches, two each
    assert records[0].shards[0] != records[0].shards[1]  # reshuffled each epoch
    assert edge_batch_count(torch.tensor([0] * len(train_edges)), config, 2) == 4  # 1 / positive_fraction
    assert len(fitted.result.epochs) == EPOCHS and fitted.result.mode == "full"
    assert all(np.isfinite([e.loss, e.val_loss]).all() for e in fitted.result.epochs)


def test_ranks_end_with_identical_weights_and_rank_zero_returns_them(two_ranks: tuple) -> None:
    _, _, fitted, records = two_ranks
    first, second = (r.state for r in records)
    assert first.keys() == second.keys() == fitted.model.state_dict().keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert all(torch.equal(first[k], v) for k, v in fitted.model.state_dict().items())


def test_neighbour_sampled_mode_shards_the_seed_nodes(tmp_path: Path) -> None:
    snapshot, _ = make_estate(communities=3, seed=0)
    config = tiny_train_config(epochs=2, patience=100, full_batch_max_edges=10, batch_size=8, fanouts=(3, 3, 3))
    fitted, records = fit_data_parallel(snapshot, config, 2, record=True)
    assert fitted.result.mode == "minibatch"
    val_nodes = {snapshot.node_uid.index(u) for u in fitted.result.val_node_uids}
    for epoch in range(2):
        first, second = (set(r.shards[epoch]) for r in records)
        assert not first & second and first | second == set(range(snapshot.num_nodes)) - val_nodes
    assert all(torch.equal(records[0].state[k], records[1].state[k]) for k in records[0].state)


def test_two_process_checkpoint_loads_and_scores(tmp_path: Path) -> None:
    snapshot, _ = make_estate(communities=4, injected=2, seed=0, with_labels=True)  # classifier under DDP too
    seen: list[int] = []
    config = dataclasses.replace(tiny_train_config(epochs=EPOCHS, patience=100), nproc=2)
    checkpoint, _ = train_checkpoint(snapshot, config, progress=lambda stats, total: seen.append(stats.epoch))
    assert seen == list(range(EPOCHS)) and checkpoint.model.classifier is not None
    assert checkpoint.train_config["nproc"] == 2 and checkpoint.metrics["epochs_run"] == EPOCHS
    path = save_checkpoint(tmp_path / "ddp.pt", checkpoint)
    loaded = load_checkpoint(path)  # the normal loader, weights_only
    assert all(torch.equal(v, checkpoint.model.state_dict()[k]) for k, v in loaded.model.state_dict().items())
    fresh, _ = make_estate(communities=4, injected=2, seed=1)
    scores = score_snapshot(loaded, fresh, device="cpu")
    assert scores.nodes.score.shape == (fresh.num_nodes,) and np.isfinite(scores.nodes.score).all()
    assert np.isfinite(scores.edge_anomaly).all() and np.isfinite(scores.snapshot.score)


def test_one_process_default_is_unchanged() -> None:
    assert TrainConfig().nproc == 1
    with pytest.raises(InputError, match="at least 2"):
        fit_data_parallel(make_estate(communities=1, seed=0)[0], tiny_train_config(epochs=1), 1)


def test_cli_offers_nproc() -> None:
    from gnnsec.cli.main import cli

    result = CliRunner().invoke(cli, ["train", "--nproc", "2", "--help"])
    assert result.exit_code == 0, result.output
    assert "--nproc" in result.output and "Data-parallel" in result.output


def test_too_few_training_nodes_for_the_ranks_is_an_input_error_in_the_caller() -> None:
    snapshot, _ = make_estate(communities=1, seed=0)
    config = tiny_train_config(epochs=1, full_batch_max_edges=10, val_node_fraction=0.95)  # one training node
    with pytest.raises(InputError, match="cannot feed 2 ranks"):
        fit_data_parallel(snapshot, config, 2)
