"""Self-supervised training learns, reproduces, samples neighbourhoods, and adapts only adapters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from gnn_helpers import make_estate, single_thread, tiny_train_config

from gnnsec.gnn.model import GraphAutoencoder, ModelConfig
from gnnsec.gnn.objective import NegativeSampler, edge_auc, scaled_cosine_error
from gnnsec.gnn.sampling import NeighbourSampler, iterate_subgraphs, pyg_sampler_available
from gnnsec.gnn.train import PHASES, fit

__all__ = ["single_thread"]
pytestmark = pytest.mark.usefixtures("single_thread")


def test_loss_decreases_over_epochs_on_a_generated_estate() -> None:
    snap, _ = make_estate(communities=6, seed=0)
    model, result, spec = fit(snap, tiny_train_config(epochs=40, patience=100))
    losses = [e.loss for e in result.epochs]
    assert len(losses) == 40 and result.mode == "full"
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    assert result.epochs[-1].feature_loss < result.epochs[0].feature_loss
    assert 0 <= result.best_epoch < 40 and result.best_val_loss == min(e.val_loss for e in result.epochs)
    assert len(result.val_node_uids) == round(0.2 * snap.num_nodes)
    assert isinstance(model, GraphAutoencoder) and spec.width > 0


def test_training_is_reproducible_with_a_seed() -> None:
    snap, _ = make_estate(communities=3, seed=0)
    a = fit(snap, tiny_train_config(epochs=5)).result
    b = fit(snap, tiny_train_config(epochs=5)).result
    assert [e.loss for e in a.epochs] == [e.loss for e in b.epochs]
    c = fit(snap, tiny_train_config(epochs=5, seed=1)).result
    assert [e.loss for e in a.epochs] != [e.loss for e in c.epochs]


def test_early_stopping_keeps_patience_and_reports_it() -> None:
    snap, _ = make_estate(communities=3, seed=0)
    result = fit(snap, tiny_train_config(epochs=200, patience=2, lr=0.5)).result
    assert result.stopped_early
    assert len(result.epochs) == result.best_epoch + 3


def test_progress_callback_sees_every_epoch() -> None:
    snap, _ = make_estate(communities=2, seed=0)
    seen: list[tuple[int, int]] = []
    fit(snap, tiny_train_config(epochs=4, patience=100), progress=lambda s, total: seen.append((s.epoch, total)))
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_minibatch_path_runs_when_the_graph_exceeds_the_full_batch_threshold() -> None:
    snap, _ = make_estate(communities=4, seed=0)
    config = tiny_train_config(epochs=3, full_batch_max_edges=10, batch_size=16, fanouts=(4, 4, 4), patience=100)
    result = fit(snap, config).result
    assert result.mode == "minibatch" and len(result.epochs) == 3
    assert all(torch.isfinite(torch.tensor([e.loss, e.val_loss])).all() for e in result.epochs)


def test_neighbour_sampler_respects_fanout_and_keeps_seeds_first() -> None:
    # node 0 has 10 in-neighbours (1..10); each of those has one in-neighbour (11..20)
    src = torch.cat([torch.arange(1, 11), torch.arange(11, 21)])
    dst = torch.cat([torch.zeros(10, dtype=torch.long), torch.arange(1, 11)])
    sampler = NeighbourSampler(torch.stack([src, dst]), torch.zeros(20, dtype=torch.long), 21, [3, 5])
    sub = sampler.sample(torch.tensor([0]), torch.Generator().manual_seed(0))
    assert sub.num_seeds == 1 and int(sub.n_id[0]) == 0
    hop1 = sub.edge_index[:, sub.edge_index[1] == 0]
    assert 1 <= hop1.shape[1] <= 3
    assert sub.edge_index.shape[1] == 2 * hop1.shape[1]  # each hop-1 node keeps its single in-edge
    global_edges = {(int(sub.n_id[s]), int(sub.n_id[d])) for s, d in sub.edge_index.T}
    assert global_edges <= set(zip(src.tolist(), dst.tolist(), strict=True))


NO_PYG_SAMPLER = "pyg-lib and torch-sparse are not installed: PyG's NeighborLoader cannot sample here"


@pytest.mark.skipif(not pyg_sampler_available(), reason=NO_PYG_SAMPLER)
def test_pyg_neighbor_loader_puts_the_seed_first_and_counts_it() -> None:
    ei = torch.tensor([[1, 2, 3], [0, 0, 1]])
    batch = next(iterate_subgraphs(ei, torch.tensor([0, 1, 2]), 4, torch.tensor([0]), [2, 2], 1,
                                   torch.Generator().manual_seed(0), use_pyg=True))
    assert int(batch.n_id[0]) == 0 and batch.num_seeds == 1


@pytest.mark.skipif(not pyg_sampler_available(), reason=NO_PYG_SAMPLER)
def test_pyg_batch_order_follows_the_generator() -> None:
    ei = torch.stack([torch.arange(1, 40), torch.arange(0, 39)])

    def seed_order(seed: int) -> list[int]:
        return [int(b.n_id[0]) for b in iterate_subgraphs(ei, torch.zeros(39, dtype=torch.long), 40,
                                                          torch.arange(40), [2], 1,
                                                          torch.Generator().manual_seed(seed), use_pyg=True)]

    assert seed_order(0) == seed_order(0) != seed_order(1)


def test_pyg_path_hands_the_generator_to_the_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs without pyg-lib: a stand-in loader records what the PyG path passes it."""
    import torch_geometric.loader

    seen: dict[str, object] = {}

    class RecordingLoader:
        def __init__(self, data: object, **kwargs: object) -> None:
            seen.update(kwargs)

        def __iter__(self) -> Iterator[object]:
            return iter(())

    monkeypatch.setattr(torch_geometric.loader, "NeighborLoader", RecordingLoader)
    generator = torch.Generator().manual_seed(0)
    ei = torch.tensor([[1], [0]])
    assert list(iterate_subgraphs(ei, torch.tensor([0]), 2, torch.tensor([0]), [2], 1, generator, use_pyg=True)) == []
    assert seen["generator"] is generator and seen["shuffle"] is True


def test_adapter_only_fine_tuning_changes_only_adapter_parameters() -> None:
    snap, _ = make_estate(communities=3, seed=0)
    model, _, spec = fit(snap, tiny_train_config(epochs=3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new_snap, _ = make_estate(communities=3, seed=1)
    adapted, result, spec2 = fit(new_snap, tiny_train_config(epochs=5, patience=100, lr=1e-2), spec=spec, model=model,
                                 adapt=True)
    assert spec2 is spec
    assert result.trainable_parameters == sum(p.numel() for n, p in adapted.named_parameters() if ".adapters." in n)
    after = adapted.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".adapters." in k for k in changed)
    assert any(k.endswith("up.weight") for k in changed)


def test_supervised_head_is_added_and_trained_when_labels_exist() -> None:
    snap, _ = make_estate(communities=3, injected=2, seed=0, with_labels=True)
    model, result, _ = fit(snap, tiny_train_config(epochs=5, patience=100))
    assert model.classifier is not None
    assert any(e.supervised_loss > 0 for e in result.epochs)
    unlabelled, _ = make_estate(communities=3, seed=0)
    assert fit(unlabelled, tiny_train_config(epochs=1)).model.classifier is None


def test_scaled_cosine_error_is_zero_for_perfect_and_two_to_gamma_for_opposite() -> None:
    x = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    assert float(scaled_cosine_error(x * 3, x, gamma=3)) == pytest.approx(0.0, abs=1e-6)
    assert float(scaled_cosine_error(-x, x, gamma=3)) == pytest.approx(8.0)
    assert float(scaled_cosine_error(-x, x, gamma=1)) == pytest.approx(2.0)


def test_negative_samples_keep_the_label_of_the_replaced_end() -> None:
    labels = torch.tensor([0, 0, 0, 3, 3, 3, 3])
    sampler = NegativeSampler(labels)
    src, dst = torch.tensor([0, 1, 2] * 20), torch.tensor([3, 4, 5] * 20)
    ns, nd = sampler.corrupt(src, dst, torch.Generator().manual_seed(0))
    assert torch.equal(labels[ns], labels[src]) and torch.equal(labels[nd], labels[dst])
    assert bool(((ns != src) | (nd != dst)).any())


def test_edge_auc_counts_ties_as_half() -> None:
    assert edge_auc(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])) == 1.0
    assert edge_auc(torch.tensor([1.0]), torch.tensor([1.0])) == 0.5
    assert edge_auc(torch.tensor([1.0, 3.0]), torch.tensor([2.0])) == 0.5


def test_cuda_request_without_a_gpu_is_an_error_not_a_silent_cpu_run() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    snap, _ = make_estate(communities=1, seed=0)
    with pytest.raises(RuntimeError, match="CUDA"):
        fit(snap, tiny_train_config(epochs=1, device="cuda"))


def test_model_config_round_trips_through_a_plain_dict() -> None:
    config = ModelConfig(kind="sage", hidden_dim=12, adapter_after=(1,))
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_epochs_record_their_steps_and_where_the_time_went() -> None:
    snap, _ = make_estate(communities=4, seed=0)
    config = tiny_train_config(epochs=2, full_batch_max_edges=10, batch_size=16, fanouts=(4, 4, 4), patience=100)
    result = fit(snap, config).result
    train_nodes = snap.num_nodes - len(result.val_node_uids)
    for epoch in result.epochs:
        assert epoch.steps == -(-train_nodes // 16)
        assert set(epoch.phase_seconds) == set(PHASES) and min(epoch.phase_seconds.values()) >= 0
        assert epoch.phase_seconds["forward"] > 0 and epoch.phase_seconds["backward"] > 0
        assert sum(epoch.phase_seconds.values()) <= epoch.seconds
    full = fit(snap, tiny_train_config(epochs=1)).result.epochs[0]
    assert full.steps == 1 and full.phase_seconds["sample"] == 0 and full.phase_seconds["forward"] > 0


def test_the_neighbour_sampler_indexes_the_training_edges_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import gnnsec.gnn.train as train

    built: list[int] = []
    original = NeighbourSampler.__init__

    def counting(self: NeighbourSampler, *args: Any, **kwargs: Any) -> None:
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(NeighbourSampler, "__init__", counting)
    monkeypatch.setattr(train, "pyg_sampler_available", lambda: False)
    snap, _ = make_estate(communities=4, seed=0)
    config = tiny_train_config(epochs=3, full_batch_max_edges=10, batch_size=16, fanouts=(4, 4, 4), patience=100)
    assert len(fit(snap, config).result.epochs) == 3
    assert len(built) == 1  # validation's sampler, reused by every epoch's batches


def test_a_prebuilt_sampler_draws_the_same_subgraphs() -> None:
    g = torch.Generator().manual_seed(3)
    ei, et = torch.randint(0, 30, (2, 120), generator=g), torch.randint(0, 4, (120,), generator=g)
    seeds = torch.arange(30)

    def draw(sampler: NeighbourSampler | None) -> list[torch.Tensor]:
        subs = iterate_subgraphs(ei, et, 30, seeds, [3, 2], 8, torch.Generator().manual_seed(0), use_pyg=False,
                                 sampler=sampler)
        return [torch.cat([s.n_id, s.edge_index.flatten(), s.edge_type]) for s in subs]

    fresh, reused = draw(None), draw(NeighbourSampler(ei, et, 30, [3, 2]))
    assert len(fresh) == 4 and all(torch.equal(a, b) for a, b in zip(fresh, reused, strict=True))
