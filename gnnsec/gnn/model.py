"""Encoder assembly: the heterogeneous RGCN (primary), the baselines, and the self-supervised wrapper."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from gnnsec.errors import InputError
from gnnsec.gnn.data import NUM_ENCODER_RELATIONS
from gnnsec.gnn.decoders import DistMultDecoder, FeatureDecoder
from gnnsec.gnn.features import MAX_FDIM
from gnnsec.gnn.layers import (
    Adapter,
    FastDropout,
    InputProjection,
    RelationalConv,
    RelationPlan,
    TrimmedPlans,
    select_rows,
)
from gnnsec.schema import NUM_RELATIONS

MODEL_KINDS = ("rgcn", "gcn", "gat", "sage", "mlp")


@dataclass(slots=True)
class ModelConfig:
    """Architecture; saved in the checkpoint as a plain dict so the model can be rebuilt."""

    kind: str = "rgcn"
    in_dim: int = MAX_FDIM
    active_dim: int | None = None  # real (non-padding) feature columns; set from the FeatureSpec by fit()
    hidden_dim: int = 256
    out_dim: int = 128
    num_layers: int = 3
    num_relations: int = NUM_ENCODER_RELATIONS
    num_bases: int | None = 8
    adapter_rank: int = 16
    adapter_after: tuple[int, ...] = (0, 1)  # after layers 1 and 2 (0-based)
    dropout: float = 0.1
    layer_norm: bool = True
    decoder_hidden_dim: int = 256
    supervised: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["adapter_after"] = list(self.adapter_after)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        data["adapter_after"] = tuple(data.get("adapter_after", (0, 1)))
        return cls(**data)


INFERENCE_ROWS = 1 << 16
"""Rows per slice of a layer's row-wise part when no gradient is needed (64k × 256 floats: 64 MiB)."""


class HeteroRGCNEncoder(nn.Module):
    r"""Linear input projection, then relational layers with residual connections (ResHGNN).

    .. math::
        h^0 = W_{in} x,\qquad
        h^{l+1} = A_l\big(\mathrm{drop}(\sigma(\mathrm{LN}(\mathrm{RConv}_l(h^l)))) + P_l h^l\big)

    :math:`P_l` is the identity, or a linear projection where the width changes (256 → 128 on the last
    layer); :math:`\sigma` is omitted on the last layer so embeddings are not clipped at zero; :math:`A_l`
    is a rank-16 :class:`Adapter` after layers 1 and 2 and the identity elsewhere. The residual path is
    what keeps a node's own features in its embedding after three rounds of neighbour averaging.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.input_proj = InputProjection(c.in_dim, c.hidden_dim, c.active_dim)
        sizes = [c.hidden_dim] * c.num_layers + [c.out_dim]
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.residuals = nn.ModuleList()
        self.adapters = nn.ModuleDict()
        for layer, (i, o) in enumerate(pairwise(sizes)):
            self.convs.append(RelationalConv(i, o, c.num_relations, c.num_bases))
            self.norms.append(nn.LayerNorm(o) if c.layer_norm else nn.Identity())
            self.residuals.append(nn.Identity() if i == o else nn.Linear(i, o, bias=False))
            if layer in c.adapter_after and layer < c.num_layers - 1:
                self.adapters[str(layer)] = Adapter(o, c.adapter_rank)
        self.dropout = FastDropout(c.dropout)
        self.activation = nn.GELU()
        self.out_dim = c.out_dim

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_type: torch.Tensor,
        plan: RelationPlan | None = None,
        masked: torch.Tensor | None = None,
        mask_token: torch.Tensor | None = None,
        trim: TrimmedPlans | None = None,
    ) -> torch.Tensor:
        """``[N, out_dim]``. With ``masked`` (row indices) and ``mask_token`` (``[1, x.shape[1]]``) those rows
        are encoded as if their input were the token: the projection is row-wise, so their projected rows are
        replaced instead of copying ``x``. Each layer's input is released as soon as the next exists (no
        caller holds it), which keeps one [N, d] matrix off a million-node encode's peak. With ``trim``
        (``plan`` is then unused), only its last layer's rows, ``[trim.rows[-1], out_dim]``."""
        h = self.input_proj(x)
        if masked is not None and mask_token is not None:
            h[masked] = self.input_proj(mask_token.to(x.dtype))
        if trim is not None:
            if len(trim.rows) != len(self.convs):
                raise ValueError(f"a trimmed pass needs rows for each of the {len(self.convs)} layers, "
                                 f"got {len(trim.rows)}")
            for layer, (rows, layer_plan) in enumerate(zip(trim.rows, trim.plans, strict=True)):
                h = self.layer(layer, h, edge_index, edge_type, layer_plan, rows=rows)
            return h
        if plan is None:
            plan = RelationPlan.build(edge_index, edge_type, h.shape[0])
        for layer in range(len(self.convs)):
            h = self.layer(layer, h, edge_index, edge_type, plan)
        return h

    def layer(
        self,
        layer: int,
        h: torch.Tensor,
        edge_index: torch.Tensor,
        edge_type: torch.Tensor,
        plan: RelationPlan,
        rows: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """:math:`h^{l+1}` from the whole :math:`h^l`: every row, or only the destination ``rows`` (the plan's
        destinations then index ``rows``; an int is the first that many rows). Every term is row-wise but the
        messages, so a row subset needs only the edges into it: what partitioned scoring runs on each rank
        and what a trimmed training pass runs."""
        conv = self.convs[layer]
        m = conv(h, edge_index, edge_type, plan, rows=rows)
        skip = select_rows(h, rows)
        if not torch.is_grad_enabled():
            # Row-wise from here on, so without autograd it runs a slice of rows at a time into m's own
            # storage: the norm, activation and sum as whole [N, d] matrices were 2 GiB of a million-node
            # encode's peak (d = 256).
            for start in range(0, m.shape[0], INFERENCE_ROWS):
                part = m[start : start + INFERENCE_ROWS]
                part.copy_(self._after_conv(layer, part, skip[start : start + INFERENCE_ROWS]))
            return m
        return self._after_conv(layer, m, skip)

    def _after_conv(self, layer: int, m: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Norm, activation and dropout (all but the last layer), residual, adapter: every one row-wise."""
        m = self.norms[layer](m)
        if layer < len(self.convs) - 1:
            m = self.dropout(self.activation(m))
        h = m + self.residuals[layer](h)
        if str(layer) in self.adapters:
            h = self.adapters[str(layer)](h)
        return h


def build_encoder(config: ModelConfig) -> nn.Module:
    """The encoder named by ``config.kind``; every one maps (x, edge_index, edge_type) → [N, out_dim]."""
    c = config
    if c.kind == "rgcn":
        return HeteroRGCNEncoder(c)
    # imported here: torch-geometric takes seconds to import and the primary model does not need it
    from gnnsec.gnn.baselines import GATEncoder, GCNEncoder, MLPEncoder, SAGEEncoder

    baselines = {"gcn": GCNEncoder, "gat": GATEncoder, "sage": SAGEEncoder, "mlp": MLPEncoder}
    if c.kind not in baselines:
        raise InputError(f"unknown model kind {c.kind!r}; known: {', '.join(MODEL_KINDS)}")
    return baselines[c.kind](c.in_dim, c.hidden_dim, c.out_dim, c.num_layers, c.dropout, c.active_dim)


class GraphAutoencoder(nn.Module):
    """Encoder plus what self-supervised training needs: mask token, feature decoder, DistMult, and an
    optional supervised head. Detection uses the embeddings, the feature decoder and DistMult."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config)
        self.mask_token = nn.Parameter(torch.zeros(1, config.in_dim))
        self.feature_decoder = FeatureDecoder(
            config.out_dim, config.decoder_hidden_dim, config.in_dim, config.active_dim
        )
        self.distmult = DistMultDecoder(config.out_dim, NUM_RELATIONS)
        self.classifier = nn.Linear(config.out_dim, 1) if config.supervised else None

    def encode(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor, plan: RelationPlan | None = None
    ) -> torch.Tensor:
        return self.encoder(x, edge_index, edge_type, plan)

    def encode_masked(
        self,
        x: torch.Tensor,
        masked: torch.Tensor,
        edge_index: torch.Tensor,
        edge_type: torch.Tensor,
        plan: RelationPlan | None = None,
        trim: TrimmedPlans | None = None,
    ) -> torch.Tensor:
        """``encode(mask_features(x, masked), ...)`` without a copy of ``x`` for the RGCN: its input projection
        is row-wise, so the masked rows are replaced after it, in the narrower ``[N, hidden]`` matrix.

        ``trim`` lets the RGCN compute only the rows the caller reads (at least the first ``trim.rows[-1]``
        rows are returned, equal to the untrimmed pass's); the other encoders compute every row."""
        encoder = self.encoder
        if not isinstance(encoder, HeteroRGCNEncoder):  # they read edge_index, never a plan
            return self.encode(self.mask_features(x, masked), edge_index, edge_type, plan)
        return encoder(x, edge_index, edge_type, plan, masked=masked, mask_token=self.mask_token[:, : x.shape[1]],
                       trim=trim)

    def mask_features(self, x: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """``x`` with the rows in ``masked`` (indices) replaced by the learnable mask token (its first
        ``x.shape[1]`` columns: ``x`` holds only the real feature columns)."""
        out = x.clone()
        out[masked] = self.mask_token[:, : x.shape[1]].to(x.dtype)
        return out


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def parameter_breakdown(model: GraphAutoencoder) -> dict[str, int]:
    """Parameters per top-level part, for the report and ``gnnsec train``'s summary."""
    parts = {name: count_parameters(child) for name, child in model.named_children()}
    parts["mask_token"] = model.mask_token.numel()
    parts["total"] = count_parameters(model)
    return parts


def freeze_all_but_adapters(model: GraphAutoencoder) -> list[str]:
    """Make only adapter parameters trainable (``train --adapt``); returns their names.

    Raises ``ValueError`` for encoders without adapters (the baselines), where adaptation would
    silently train nothing.
    """
    names: list[str] = []
    for name, param in model.named_parameters():
        param.requires_grad = ".adapters." in name
        if param.requires_grad:
            names.append(name)
    if not names:
        raise InputError(f"model kind {model.config.kind!r} has no adapters to fine-tune")
    return names
