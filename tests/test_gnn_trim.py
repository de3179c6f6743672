"""Trimmed mini-batch steps: sampled subgraphs know their hops, a trimmed pass computes exactly the untrimmed
pass's rows and gradients, and training's losses read only nodes within ``loss_hops`` of the seeds."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch
from gnn_helpers import make_estate, single_thread, tiny_train_config

from gnnsec.errors import InputError
from gnnsec.gnn.data import NUM_ENCODER_RELATIONS, with_inverse_edges
from gnnsec.gnn.features import MAX_FDIM
from gnnsec.gnn.layers import RelationalConv, TrimmedPlans
from gnnsec.gnn.model import GraphAutoencoder, ModelConfig
from gnnsec.gnn.objective import NegativeSampler, Objective, StepBatch
from gnnsec.gnn.sampling import NeighbourSampler, SampledSubgraph, iterate_subgraphs, pyg_sampler_available
from gnnsec.gnn.train import fit
from gnnsec.schema import NUM_LABELS, NUM_RELATIONS

__all__ = ["single_thread"]
pytestmark = pytest.mark.usefixtures("single_thread")

LAYERS = 3


def _graph(nodes: int = 300, edges: int = 1200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(0, nodes, (2, edges), generator=g)
    return with_inverse_edges(index, torch.randint(0, NUM_RELATIONS, (edges,), generator=g))


def _sample(seed: int = 0, nodes: int = 300) -> SampledSubgraph:
    index, types = _graph(nodes, seed=seed)
    sampler = NeighbourSampler(index, types, nodes, [4, 4, 4])
    generator = torch.Generator().manual_seed(seed)
    return sampler.sample(torch.randperm(nodes, generator=generator)[:24], generator)


def _hop_of(sub: SampledSubgraph) -> torch.Tensor:
    return torch.repeat_interleave(torch.arange(len(sub.hop_sizes)), torch.tensor(sub.hop_sizes))


def _assert_hop_ordered(sub: SampledSubgraph) -> None:
    hop = _hop_of(sub)
    assert hop.numel() == sub.n_id.numel() and sub.hop_sizes[0] == sub.num_seeds
    src_hop, dst_hop = hop[sub.edge_index[0]], hop[sub.edge_index[1]]
    assert bool((dst_hop < len(sub.hop_sizes) - 1).all())  # the last hop's nodes take in no edge
    assert bool((src_hop <= dst_hop + 1).all())  # an edge's source is at most one hop further out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_plain_sampler_records_its_hops_in_node_order(seed: int) -> None:
    sub = _sample(seed)
    assert len(sub.hop_sizes) == 4 and min(sub.hop_sizes) > 0
    _assert_hop_ordered(sub)
    assert [sub.within(k) for k in range(4)] == [sum(sub.hop_sizes[: k + 1]) for k in range(4)]
    assert sub.within(10) == sub.n_id.numel()


@pytest.mark.skipif(not pyg_sampler_available(), reason="pyg-lib and torch-sparse are not installed")
def test_pyg_subgraphs_record_their_hops_in_node_order() -> None:
    index, types = _graph()
    for sub in iterate_subgraphs(index, types, 300, torch.arange(48), [4, 4, 4], 24,
                                 torch.Generator().manual_seed(0), use_pyg=True):
        _assert_hop_ordered(sub)


def test_a_subgraph_without_hops_cannot_say_what_lies_within_them() -> None:
    sub = SampledSubgraph(torch.arange(3), torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="hop sizes"):
        sub.within(1)


def _model(dropout: float = 0.0) -> GraphAutoencoder:
    torch.manual_seed(0)
    config = ModelConfig(in_dim=MAX_FDIM, active_dim=12, hidden_dim=32, out_dim=16, decoder_hidden_dim=32,
                         num_bases=4, num_relations=NUM_ENCODER_RELATIONS, dropout=dropout)
    return GraphAutoencoder(config)


def _layer_rows(sub: SampledSubgraph, loss_hops: int) -> tuple[int, ...]:
    return tuple(sub.within(loss_hops + LAYERS - 1 - layer) for layer in range(LAYERS))


@pytest.mark.parametrize("loss_hops", [0, 1, 2])
def test_a_trimmed_pass_computes_the_untrimmed_rows(loss_hops: int) -> None:
    sub = _sample()
    x = torch.randn(sub.n_id.numel(), 12, generator=torch.Generator().manual_seed(1))
    model, masked = _model().eval(), torch.arange(0, sub.num_seeds, 2)
    rows = _layer_rows(sub, loss_hops)
    with torch.no_grad():
        full = model.encode_masked(x, masked, sub.edge_index, sub.edge_type)
        trim = TrimmedPlans.build(sub.edge_index, sub.edge_type, rows)
        trimmed = model.encode_masked(x, masked, sub.edge_index, sub.edge_type, trim=trim)
    # the last layer may write more rows than asked where they take in the same edges (TrimmedPlans.build)
    assert trimmed.shape[0] == trim.rows[-1] >= rows[-1]
    assert trimmed.shape[0] < full.shape[0] or loss_hops == 2  # two hops reach every node that takes in an edge
    torch.testing.assert_close(trimmed, full[: trim.rows[-1]], rtol=1e-5, atol=1e-5)


def _objective_batch(sub: SampledSubgraph, loss_hops: int, trimmed: bool) -> StepBatch:
    reach = sub.within(loss_hops)
    inside = (sub.edge_index[0] < reach) & (sub.edge_index[1] < reach)
    src, dst = sub.edge_index[0, inside], sub.edge_index[1, inside]
    rel = sub.edge_type[inside] % NUM_RELATIONS
    labels = torch.randint(0, NUM_LABELS, (reach,), generator=torch.Generator().manual_seed(2))
    neg_src, neg_dst = NegativeSampler(labels).corrupt(src, dst, torch.Generator().manual_seed(3))
    batch = StepBatch(
        x=torch.randn(sub.n_id.numel(), 12, generator=torch.Generator().manual_seed(1)),
        edge_index=sub.edge_index, edge_type=sub.edge_type, masked=torch.arange(0, sub.num_seeds, 2),
        pos_src=src, pos_type=rel, pos_dst=dst, neg_src=neg_src, neg_dst=neg_dst,
        sup_nodes=torch.zeros(0, dtype=torch.long), sup_targets=torch.zeros(0),
        layer_rows=_layer_rows(sub, loss_hops) if trimmed else (),
    )
    return batch.planned()


def test_a_trimmed_step_has_the_untrimmed_loss_and_gradients() -> None:
    """Dropout off, so both passes are the same function: trimming may only drop rows nobody reads."""
    sub = _sample(seed=1)
    gradients: list[dict[str, torch.Tensor]] = []
    totals: list[float] = []
    for trimmed in (False, True):
        model = _model()
        batch = _objective_batch(sub, loss_hops=1, trimmed=trimmed)
        assert (batch.trim is not None) == trimmed and (batch.plan is None) == trimmed
        assert batch.pos_src.numel() > 0
        losses = Objective(model, gamma=3.0, structure_weight=1.0, supervised_weight=1.0)(batch)
        losses.total.backward()
        totals.append(float(losses.total))
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    assert totals[0] == pytest.approx(totals[1], rel=1e-5)
    assert gradients[0].keys() == gradients[1].keys()
    for name, grad in gradients[0].items():
        torch.testing.assert_close(gradients[1][name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_trimmed_plans_share_a_plan_where_the_edges_are_the_same() -> None:
    sub = _sample()
    trim = TrimmedPlans.build(sub.edge_index, sub.edge_type, _layer_rows(sub, 1))
    # rows within 3 hops (all) and within 2 take in the same edges: the last hop's nodes take in none
    assert trim.rows == (sub.n_id.numel(), sub.n_id.numel(), sub.within(1))
    assert trim.plans[0] is trim.plans[1] and trim.plans[2] is not trim.plans[1]
    assert trim.plans[2].num_nodes == sub.within(1)
    kept = sum(group.src.numel() for group in trim.plans[2].groups)
    assert kept == int((sub.edge_index[1] < sub.within(1)).sum()) < sub.edge_index.shape[1]
    with pytest.raises(ValueError, match="must not grow"):
        TrimmedPlans.build(sub.edge_index, sub.edge_type, (10, 20, 5))


def test_the_encoder_wants_rows_for_each_layer() -> None:
    sub = _sample()
    trim = TrimmedPlans.build(sub.edge_index, sub.edge_type, (sub.n_id.numel(), sub.within(1)))
    with pytest.raises(ValueError, match="each of the 3 layers"):
        _model().encoder(torch.zeros(sub.n_id.numel(), 12), sub.edge_index, sub.edge_type, trim=trim)


def _recorded_steps(monkeypatch: pytest.MonkeyPatch, kind: str = "rgcn",
                    **overrides: Any) -> list[tuple[StepBatch, SampledSubgraph]]:
    """Each training step's batch with the subgraph it was built from (one epoch, the plain sampler)."""
    import gnnsec.gnn.train as train

    batches: list[StepBatch] = []
    subgraphs: list[SampledSubgraph] = []
    call, sample = Objective.__call__, NeighbourSampler.sample

    def recording_call(self: Objective, batch: StepBatch) -> Any:
        batches.append(batch)
        return call(self, batch)

    def recording_sample(self: NeighbourSampler, *args: Any, **kwargs: Any) -> SampledSubgraph:
        subgraphs.append(sample(self, *args, **kwargs))
        return subgraphs[-1]

    monkeypatch.setattr(Objective, "__call__", recording_call)
    monkeypatch.setattr(NeighbourSampler, "sample", recording_sample)
    monkeypatch.setattr(train, "pyg_sampler_available", lambda: False)
    snap, _ = make_estate(communities=4, seed=0)
    config = tiny_train_config(epochs=1, full_batch_max_edges=10, batch_size=16, fanouts=(4, 4, 4), patience=100,
                               **overrides)
    config.model = dataclasses.replace(config.model, kind=kind)
    assert fit(snap, config).result.mode == "minibatch"
    # the validation subgraph is drawn first and its batch is scored last, after the epoch's steps
    assert len(subgraphs) == len(batches) >= 2
    return list(zip(batches[:-1], subgraphs[1:], strict=True))


@pytest.mark.parametrize("kind", ["rgcn", "sage"])
def test_training_losses_read_only_nodes_within_loss_hops(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    steps = _recorded_steps(monkeypatch, kind, loss_hops=1)
    for batch, sub in steps:
        reach = sub.within(1)
        assert batch.layer_rows == _layer_rows(sub, 1)
        if kind == "rgcn":
            assert batch.trim is not None and batch.trim.rows[-1] >= reach
        else:  # SAGE reads edge_index alone: no plan is built for it
            assert batch.trim is None and batch.plan is None
        for ids in (batch.pos_src, batch.pos_dst, batch.neg_src, batch.neg_dst, batch.masked, batch.sup_nodes):
            assert ids.numel() == 0 or int(ids.max()) < reach
    assert kind != "rgcn" or any(batch.trim is not None and batch.trim.rows[-1] < batch.x.shape[0]
                                 for batch, _ in steps)
    assert sum(batch.pos_src.numel() for batch, _ in steps) > 0


def test_loss_hops_none_keeps_the_whole_subgraph(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _recorded_steps(monkeypatch, loss_hops=None)
    assert all(not batch.layer_rows and batch.trim is None for batch, _ in steps)
    beyond = [int(torch.cat([batch.pos_src, batch.pos_dst]).max()) >= sub.within(1)
              for batch, sub in steps if batch.pos_src.numel()]
    assert any(beyond)  # positives two and three hops out, which loss_hops=1 leaves out


def test_a_sampler_without_hop_sizes_trains_on_the_whole_subgraph_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    sample = NeighbourSampler.sample

    def without_hops(self: NeighbourSampler, *args: Any, **kwargs: Any) -> SampledSubgraph:
        return dataclasses.replace(sample(self, *args, **kwargs), hop_sizes=())

    monkeypatch.setattr(NeighbourSampler, "sample", without_hops)
    with pytest.warns(RuntimeWarning, match="loss_hops is ignored"):
        steps = _recorded_steps(monkeypatch, loss_hops=1)
    assert all(not batch.layer_rows for batch, _ in steps)


def test_a_model_being_adapted_trims_to_its_own_depth() -> None:
    """``train --adapt`` passes a default config with a checkpoint's model: the model's depth counts."""
    snap, _ = make_estate(communities=4, seed=0)
    config = tiny_train_config(epochs=1, full_batch_max_edges=10, batch_size=16, fanouts=(4, 4), patience=100)
    config.model = dataclasses.replace(config.model, num_layers=2)
    model, _, spec = fit(snap, config)
    again = tiny_train_config(epochs=1, full_batch_max_edges=10, batch_size=16, fanouts=(4, 4), patience=100)
    assert again.model.num_layers == 3
    result = fit(snap, again, model=model, spec=spec, adapt=True).result
    assert result.mode == "minibatch" and math.isfinite(result.epochs[0].loss)


def test_negative_loss_hops_are_refused() -> None:
    with pytest.raises(InputError, match="cannot be negative"):
        tiny_train_config(loss_hops=-1)
    with pytest.raises(ValueError, match="cannot be negative"):
        _sample().within(-1)


def test_a_sampler_that_runs_out_of_nodes_still_trims_exactly() -> None:
    """A chain 2 → 1 → 0 seeded at 0 with three hops of fanout: the third hop finds nobody."""
    index, types = torch.tensor([[1, 2], [0, 1]]), torch.tensor([0, 1])
    sub = NeighbourSampler(index, types, 3, [4, 4, 4]).sample(torch.tensor([0]), torch.Generator().manual_seed(0))
    assert sub.hop_sizes[:3] == (1, 1, 1) and sum(sub.hop_sizes) == 3
    x = torch.randn(3, 12, generator=torch.Generator().manual_seed(1))
    model = _model().eval()
    with torch.no_grad():
        full = model.encode_masked(x, torch.tensor([0]), sub.edge_index, sub.edge_type)
        for loss_hops in (0, 1, 2):
            trim = TrimmedPlans.build(sub.edge_index, sub.edge_type, _layer_rows(sub, loss_hops))
            trimmed = model.encode_masked(x, torch.tensor([0]), sub.edge_index, sub.edge_type, trim=trim)
            torch.testing.assert_close(trimmed, full[: trim.rows[-1]], rtol=1e-5, atol=1e-5)


def test_a_layer_asked_for_its_first_rows_without_a_plan_reads_only_the_edges_into_them() -> None:
    sub = _sample()
    torch.manual_seed(0)
    conv = RelationalConv(32, 32, NUM_ENCODER_RELATIONS, num_bases=4)
    h = torch.randn(sub.n_id.numel(), 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        full = conv(h, sub.edge_index, sub.edge_type)
        first = conv(h, sub.edge_index, sub.edge_type, rows=sub.within(1))
    torch.testing.assert_close(first, full[: sub.within(1)], rtol=1e-5, atol=1e-5)
