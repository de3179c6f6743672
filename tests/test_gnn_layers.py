"""RelationalConv computes the RGCN formula exactly; relation ids follow the schema; adapters start as identity."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import RGCNConv

from gnnsec.gnn.data import NUM_ENCODER_RELATIONS, inverse_relation, to_tensors, with_inverse_edges
from gnnsec.gnn.layers import Adapter, FastDropout, RelationalConv, RelationPlan
from gnnsec.schema import NUM_RELATIONS, relation_id


def _reference_rgcn(conv: RelationalConv, x: torch.Tensor, ei: torch.Tensor, et: torch.Tensor) -> torch.Tensor:
    """h_i' = W_0 h_i + b + Σ_r 1/|N_r(i)| Σ_j W_r h_j, written as plainly as possible."""
    out = conv.root(x).clone()
    weights = conv.relation_weights()
    for i in range(x.shape[0]):
        for r in range(conv.num_relations):
            sources = ei[0, (ei[1] == i) & (et == r)]
            if sources.numel():
                out[i] += (x[sources] @ weights[r]).mean(0)
    return out


def _random_graph(n: int, e: int, r: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    ei = torch.randint(0, n, (2, e), generator=g)
    et = torch.randint(0, r, (e,), generator=g)
    return x, ei, et


@pytest.mark.parametrize("num_bases", [None, 3])
def test_relational_conv_matches_the_rgcn_formula(num_bases: int | None) -> None:
    torch.manual_seed(0)
    x, ei, et = _random_graph(12, 60, 5, seed=1)
    conv = RelationalConv(8, 6, 5, num_bases=num_bases)
    with torch.no_grad():
        assert torch.allclose(conv(x, ei, et), _reference_rgcn(conv, x, ei, et), atol=1e-5)


def test_both_evaluation_orders_are_used_and_agree() -> None:
    """Fan-in (many sources, one destination) aggregates first; fan-out transforms sources first."""
    x = torch.randn(6, 8)
    fan_in = torch.tensor([[1, 2, 3, 4], [0, 0, 0, 0]])
    fan_out = torch.tensor([[5, 5, 5], [1, 2, 3]])
    ei = torch.cat([fan_in, fan_out], dim=1)
    et = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    plan = RelationPlan.build(ei, et, 6)
    assert [g.transform_sources_first for g in plan.groups] == [False, True]
    conv = RelationalConv(8, 4, 2)
    with torch.no_grad():
        assert torch.allclose(conv(x, ei, et, plan), _reference_rgcn(conv, x, ei, et), atol=1e-5)


def test_relational_conv_agrees_with_pyg_rgcnconv_given_the_same_weights() -> None:
    x, ei, et = _random_graph(30, 200, 4, seed=2)
    ours = RelationalConv(8, 5, 4)
    pyg = RGCNConv(8, 5, 4, aggr="mean", root_weight=True, bias=True)
    with torch.no_grad():
        pyg.weight.copy_(ours.weight)
        pyg.root.copy_(ours.root.weight.T)
        pyg.bias.copy_(ours.root.bias)
        assert torch.allclose(ours(x, ei, et), pyg(x, ei, et), atol=1e-5)


def test_basis_decomposition_cuts_parameters() -> None:
    full = RelationalConv(256, 256, NUM_ENCODER_RELATIONS)
    bases = RelationalConv(256, 256, NUM_ENCODER_RELATIONS, num_bases=8)
    assert sum(p.numel() for p in full.parameters()) == 40 * 256 * 256 + 256 * 256 + 256
    assert sum(p.numel() for p in bases.parameters()) == 8 * 256 * 256 + 40 * 8 + 256 * 256 + 256


def test_gradients_flow_to_weights_and_inputs() -> None:
    x, ei, et = _random_graph(10, 40, 3, seed=3)
    x.requires_grad_(True)
    conv = RelationalConv(8, 4, 3, num_bases=2)
    conv(x, ei, et).sum().backward()
    assert x.grad is not None and conv.bases.grad is not None and conv.coefficients.grad is not None
    assert float(conv.bases.grad.abs().sum()) > 0


def test_nodes_without_incoming_edges_get_only_the_root_transform() -> None:
    x = torch.randn(3, 8)
    ei = torch.tensor([[0], [1]])
    conv = RelationalConv(8, 4, 2)
    with torch.no_grad():
        out = conv(x, ei, torch.tensor([1]))
        assert torch.allclose(out[2], conv.root(x[2]))
        assert torch.allclose(out[0], conv.root(x[0]))


def test_inverse_relations_are_schema_id_plus_num_relations() -> None:
    assert NUM_RELATIONS == 20 and NUM_ENCODER_RELATIONS == 40
    rid = relation_id("ASSUMES_ROLE")
    assert int(inverse_relation(torch.tensor([rid]))[0]) == rid + 20
    ei, et = with_inverse_edges(torch.tensor([[0, 1], [2, 3]]), torch.tensor([rid, 0]))
    assert ei.tolist() == [[0, 1, 2, 3], [2, 3, 0, 1]]
    assert et.tolist() == [rid, 0, rid + 20, 20]


def test_to_tensors_rejects_feature_rows_that_do_not_match_the_nodes() -> None:
    from gnn_helpers import make_estate

    snap, _ = make_estate(communities=1, users_per_community=2)
    with pytest.raises(ValueError, match="rows"):
        to_tensors(snap, torch.zeros(snap.num_nodes + 1, 4))


def test_adapter_starts_as_identity_and_has_rank_16_bottleneck() -> None:
    adapter = Adapter(256, 16)
    h = torch.randn(5, 256)
    assert torch.equal(adapter(h), h)
    assert adapter.down.weight.shape == (16, 256) and adapter.up.weight.shape == (256, 16)


def test_splitting_relations_into_blocks_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import gnnsec.gnn.layers as layers

    x, ei, et = _random_graph(15, 90, 3, seed=4)
    conv = RelationalConv(8, 4, 3)
    with torch.no_grad():
        whole = conv(x, ei, et)
        monkeypatch.setattr(layers, "ROW_CHUNK", 7)
        plan = RelationPlan.build(ei, et, 15)
        assert len(plan.blocks(15)) == 3  # one relation per block
        assert torch.allclose(conv(x, ei, et, plan), whole, atol=1e-5)
        assert torch.allclose(whole, _reference_rgcn(conv, x, ei, et), atol=1e-5)


def test_pyg_data_carries_message_passing_edges_and_types() -> None:
    from gnn_helpers import make_estate

    from gnnsec.gnn.data import to_pyg_data

    snap, _ = make_estate(communities=1, users_per_community=2)
    graph = to_tensors(snap, torch.zeros(snap.num_nodes, 4))
    data = to_pyg_data(graph)
    assert data.num_nodes == snap.num_nodes and data.edge_index.shape == (2, 2 * snap.num_edges)
    assert int(data.edge_type.max()) >= NUM_RELATIONS


def _mixed_graph() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random relations 0-1 (sources first) plus a fan-in relation 2 (aggregate first) of 10 edges."""
    x, ei, et = _random_graph(15, 60, 2, seed=5)
    fan_in = torch.stack([torch.arange(1, 11), torch.zeros(10, dtype=torch.long)])
    return x, torch.cat([ei, fan_in], dim=1), torch.cat([et, torch.full((10,), 2)])


def test_gradients_equal_the_plain_formulas_across_blocks_and_both_evaluation_orders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gnnsec.gnn.layers as layers

    x, ei, et = _mixed_graph()
    conv = RelationalConv(8, 4, 3, num_bases=2)

    def gradients(forward: object) -> list[torch.Tensor]:
        leaf = x.clone().requires_grad_(True)
        conv.zero_grad()
        forward(leaf).pow(2).sum().backward()  # type: ignore[operator]
        return [leaf.grad, *(p.grad for p in conv.parameters())]  # type: ignore[list-item]

    want = gradients(lambda leaf: _reference_rgcn(conv, leaf, ei, et))
    plan = RelationPlan.build(ei, et, 15)
    assert {g.transform_sources_first for g in plan.groups} == {True, False}
    for got, expected in zip(gradients(lambda leaf: conv(leaf, ei, et)), want, strict=True):
        assert torch.allclose(got, expected, atol=1e-5)
    monkeypatch.setattr(layers, "ROW_CHUNK", 7)  # several blocks of each order
    for got, expected in zip(gradients(lambda leaf: conv(leaf, ei, et)), want, strict=True):
        assert torch.allclose(got, expected, atol=1e-5)


def test_relations_share_a_gather_so_the_input_gradient_is_not_summed_per_relation() -> None:
    """Each op that reads x adds a dense [N, d] gradient in backward: the root and one gather per kind of
    relation here, not one per relation (20 of them)."""
    x, ei, et = _random_graph(40, 400, 20, seed=6)
    fan_in = torch.stack([torch.arange(1, 31), torch.zeros(30, dtype=torch.long)])
    ei, et = torch.cat([ei, fan_in], dim=1), torch.cat([et, torch.full((30,), 19)])
    leaf = x.clone().requires_grad_(True)
    out = RelationalConv(8, 4, 20, num_bases=4)(leaf, ei, et)
    accumulate = leaf.view_as(leaf).grad_fn.next_functions[0][0]  # type: ignore[union-attr]
    readers, seen, stack = set(), set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        for child, _ in node.next_functions:
            if child is accumulate:
                readers.add(node)
            stack.append(child)
    assert len(readers) <= 3


def test_the_layer_runs_under_bfloat16_autocast_with_its_sums_in_float32() -> None:
    """CPU sparse kernels have no bfloat16: the products run in bfloat16 and the sums over edges in float32."""
    x, ei, et = _mixed_graph()
    conv = RelationalConv(8, 4, 3, num_bases=2)
    want = conv(x, ei, et)
    leaf = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = conv(leaf, ei, et)
    got.float().pow(2).sum().backward()
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all()
    assert torch.allclose(got.float(), want, atol=0.1, rtol=0.05)


def test_fast_dropout_zeroes_p_of_the_elements_and_keeps_the_expectation() -> None:
    torch.manual_seed(0)
    dropout = FastDropout(0.1).train()
    x = torch.rand(1000, 1000) + 0.5
    y = dropout(x)
    dropped = y == 0
    assert abs(dropped.float().mean().item() - 0.1) < 0.002  # 1M draws: the standard error is 0.0003
    assert torch.allclose(y[~dropped], x[~dropped] / 0.9, rtol=1e-4)  # k/65536 = 0.1000061: scale 1/0.8999939
    assert abs(y.mean().item() / x.mean().item() - 1.0) < 0.005
    rows = dropped.float().mean(1)
    assert rows.std().item() < 0.02  # no structure: every row drops about p (a lane reused would show)
    torch.manual_seed(1)
    first = dropout(x)
    torch.manual_seed(1)
    assert torch.equal(first, dropout(x))  # torch's generator: a seed reproduces the mask


def test_fast_dropout_passes_the_gradient_only_where_it_kept_and_is_the_identity_when_not_training() -> None:
    dropout = FastDropout(0.3).train()
    x = torch.randn(77, 13, requires_grad=True)  # n not a multiple of 3 (three draws per random word)
    y = dropout(x)
    y.sum().backward()
    assert x.grad is not None
    kept = y != 0
    assert torch.all(x.grad[~kept] == 0) and torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 1 / 0.7),
                                                             rtol=1e-4)
    assert dropout.eval()(x) is x and FastDropout(0.0).train()(x) is x
    with pytest.raises(ValueError, match="dropout probability"):
        FastDropout(1.0)
