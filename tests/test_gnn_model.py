"""Encoders share one interface; parameter counts are what the architecture says; adapters freeze correctly."""

from __future__ import annotations

import pytest
import torch

from gnnsec.gnn.model import (
    MODEL_KINDS,
    GraphAutoencoder,
    ModelConfig,
    count_parameters,
    freeze_all_but_adapters,
    parameter_breakdown,
)


def _graph(n: int = 20, e: int = 60) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 64, generator=g)
    return x, torch.randint(0, n, (2, e), generator=g), torch.randint(0, 40, (e,), generator=g)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_encoder_maps_features_to_out_dim_embeddings(kind: str) -> None:
    model = GraphAutoencoder(ModelConfig(kind=kind, in_dim=64, hidden_dim=32, out_dim=16, decoder_hidden_dim=32))
    x, ei, et = _graph()
    model.eval()
    z = model.encode(x, ei, et)
    assert z.shape == (20, 16)
    assert model.feature_decoder(z).shape == (20, 64)
    logits = model.distmult(z, ei[0, :5], et[:5] % 20, ei[1, :5])
    assert logits.shape == (5,)


def test_default_rgcn_architecture_and_parameter_count() -> None:
    model = GraphAutoencoder(ModelConfig())
    enc = model.encoder
    assert enc.input_proj.weight.shape == (256, 1024)
    assert [(c.in_dim, c.out_dim) for c in enc.convs] == [(256, 256), (256, 256), (256, 128)]
    assert sorted(enc.adapters.keys()) == ["0", "1"]
    assert isinstance(enc.residuals[2], torch.nn.Linear) and isinstance(enc.residuals[0], torch.nn.Identity)
    assert model.distmult.relation_diagonals.shape == (20, 128)
    parts = parameter_breakdown(model)
    assert parts["total"] == count_parameters(model) == 2_089_312
    full = GraphAutoencoder(ModelConfig(num_bases=None))
    assert count_parameters(full) == 7_331_232


def test_distmult_is_the_trilinear_product_with_a_diagonal_per_relation() -> None:
    model = GraphAutoencoder(ModelConfig(in_dim=8, hidden_dim=8, out_dim=4))
    z = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 1.0, -1.0, 2.0]])
    with torch.no_grad():
        model.distmult.relation_diagonals[3] = torch.tensor([1.0, 0.0, 2.0, -1.0])
    got = model.distmult(z, torch.tensor([0]), torch.tensor([3]), torch.tensor([1]))
    assert got.item() == pytest.approx(1 * 1 * 0.5 + 0 + 3 * 2 * -1 + 4 * -1 * 2)


def test_residual_path_keeps_input_information_through_depth() -> None:
    """With every relational layer's output zeroed, the embedding is still a function of the input."""
    model = GraphAutoencoder(ModelConfig(in_dim=16, hidden_dim=8, out_dim=8, num_bases=2)).eval()
    x, ei, et = torch.randn(5, 16), torch.tensor([[0, 1], [1, 2]]), torch.tensor([0, 1])
    with torch.no_grad():
        for conv in model.encoder.convs:
            conv.bases.zero_()
            conv.root.weight.zero_()
            conv.root.bias.zero_()
        z1 = model.encode(x, ei, et)
        z2 = model.encode(x * 2, ei, et)
    assert not torch.allclose(z1, z2)


def test_freeze_all_but_adapters_leaves_only_adapter_parameters_trainable() -> None:
    model = GraphAutoencoder(ModelConfig(in_dim=16, hidden_dim=32, out_dim=16))
    names = freeze_all_but_adapters(model)
    assert names and all(".adapters." in n for n in names)
    assert count_parameters(model, trainable_only=True) == 2 * (32 * 16 + 16 + 16 * 32 + 32)


def test_freeze_refuses_models_without_adapters() -> None:
    with pytest.raises(ValueError, match="no adapters"):
        freeze_all_but_adapters(GraphAutoencoder(ModelConfig(kind="gcn", in_dim=16, hidden_dim=8, out_dim=8)))


def test_unknown_model_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown model kind 'rgnn'"):
        GraphAutoencoder(ModelConfig(kind="rgnn"))


def test_input_projection_skipping_the_padding_equals_the_full_product() -> None:
    from gnnsec.gnn.layers import InputProjection

    proj = InputProjection(64, 8, active_dim=10)
    x = torch.zeros(4, 64)
    x[:, :10] = torch.randn(4, 10)
    assert torch.allclose(proj(x), torch.nn.functional.linear(x, proj.weight, proj.bias), atol=1e-6)
    decoder = GraphAutoencoder(ModelConfig(in_dim=64, active_dim=10, hidden_dim=8, out_dim=4)).feature_decoder
    out = decoder(torch.randn(3, 4))
    assert out.shape == (3, 10) and torch.all(out != 0)  # the real columns; the padding is never built
    assert torch.equal(proj(x[:, :10]), proj(x))  # and the projection reads narrow input as the padded


def test_masked_encoding_replaces_projected_rows_exactly_as_masking_the_input() -> None:
    x, ei, et = _graph()
    model = GraphAutoencoder(ModelConfig(in_dim=64, active_dim=64, hidden_dim=16, out_dim=8)).eval()
    with torch.no_grad():
        model.mask_token.normal_()
        masked = torch.tensor([1, 4, 9])
        want = model.encode(model.mask_features(x, masked), ei, et)
        assert torch.allclose(model.encode_masked(x, masked, ei, et), want, atol=1e-5)


def test_masked_encoding_trains_every_parameter_as_masking_the_input_does() -> None:
    """The training objective encodes through ``encode_masked`` (no gradient for the whole input): the mask
    token and every weight get the gradients they got when the input itself was masked."""
    x, ei, et = _graph()
    masked = torch.tensor([1, 4, 9])
    model = GraphAutoencoder(ModelConfig(in_dim=64, active_dim=64, hidden_dim=16, out_dim=8))
    with torch.no_grad():
        model.mask_token.normal_()
    gradients = []
    for encode in (lambda: model.encode(model.mask_features(x, masked), ei, et),
                   lambda: model.encode_masked(x, masked, ei, et)):
        torch.manual_seed(0)  # the same dropout draws
        model.zero_grad()
        encode().pow(2).sum().backward()
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    assert gradients[0].keys() == gradients[1].keys() and "mask_token" in gradients[1]
    for name, want in gradients[0].items():
        assert torch.allclose(gradients[1][name], want, atol=1e-4, rtol=1e-4), name


def test_inference_without_autograd_equals_the_differentiable_encode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without autograd the layers take other routes (products into one preallocated block, the row-wise tail
    in slices written into the conv output, sums added in place); they must compute the same function. Small
    blocks and slices here, so that several of each run."""
    import gnnsec.gnn.layers as layers
    import gnnsec.gnn.model as model_module

    monkeypatch.setattr(layers, "ROW_CHUNK", 8)
    monkeypatch.setattr(model_module, "INFERENCE_ROWS", 7)
    x, ei, et = _graph(n=50, e=300)
    model = GraphAutoencoder(ModelConfig(in_dim=64, active_dim=64, hidden_dim=32, out_dim=16, adapter_after=(0,)))
    model.eval()
    with torch.no_grad():
        for adapter in model.encoder.adapters.values():
            adapter.up.weight.normal_()  # a fresh adapter is the identity: make it count
        model.mask_token.normal_()
    with torch.enable_grad():
        want = model.encode(x.requires_grad_(True), ei, et).detach()
        want_masked = model.encode_masked(x, torch.tensor([0, 3, 30]), ei, et).detach()
    with torch.no_grad():
        got = model.encode(x, ei, et)
        got_masked = model.encode_masked(x, torch.tensor([0, 3, 30]), ei, et)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(got_masked, want_masked, atol=1e-5)
    assert not torch.allclose(got, got_masked, atol=1e-3)  # the mask did change something
