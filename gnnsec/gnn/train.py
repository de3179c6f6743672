r"""Self-supervised training on benign data (MAGIC-style), plus an optional supervised head.

Objective per step, on the nodes and edges of the training split (computed by
:class:`gnnsec.gnn.objective.Objective`):

* masked feature reconstruction: a fraction ``mask_rate`` of nodes has its features replaced by a
  learnable mask token; the decoder reconstructs them from the embedding, scored by the scaled cosine
  error :math:`\mathrm{SCE} = \frac{1}{|M|}\sum_{i\in M}(1-\cos(x_i,\hat x_i))^{\gamma}` (γ = 3 as in
  MAGIC's released configuration; γ > 1 down-weights the easy nodes);
* structure reconstruction: up to ``positives_per_relation`` edges per schema relation against as many
  negatives made by replacing the head or the tail with a random node of the same label, scored by
  DistMult, binary cross-entropy;
* supervised (only when ``snapshot.meta["labels"]`` maps uids to 0/1): BCE of a linear head on the
  labelled training-split nodes.

Validation holds out ``val_node_fraction`` of nodes (masked and reconstructed at validation time) and
``val_edge_fraction`` of edges (removed from the message-passing graph, scored against fixed negatives);
early stopping keeps the weights of the best validation loss. Full-batch below
``full_batch_max_edges`` message-passing edges, neighbour-sampled mini-batches above.

Data-parallel (``TrainConfig.nproc`` > 1, launched by :mod:`gnnsec.gnn.distributed`): each epoch the
training edges (full-batch mode) or training nodes (neighbour-sampled mode) are shuffled with a generator
shared by all ranks and cut into mini-batches; rank r takes every N-th one, so the ranks see disjoint
mini-batches that together cover the epoch once. Gradients are averaged by ``DistributedDataParallel``;
rank 0 validates and decides early stopping for everyone.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from gnnsec.errors import InputError
from gnnsec.gnn.data import GraphTensors, to_tensors, with_inverse_edges
from gnnsec.gnn.device import resolve_device
from gnnsec.gnn.features import FeatureSpec, build_features, fit_feature_spec
from gnnsec.gnn.model import (
    GraphAutoencoder,
    HeteroRGCNEncoder,
    ModelConfig,
    count_parameters,
    freeze_all_but_adapters,
)
from gnnsec.gnn.objective import Losses, NegativeSampler, Objective, StepBatch, sample_positives
from gnnsec.gnn.sampling import NeighbourSampler, SampledSubgraph, iterate_subgraphs, pyg_sampler_available
from gnnsec.schema import NUM_RELATIONS
from gnnsec.snapshot import Snapshot


@dataclass(slots=True)
class TrainConfig:
    """Training hyper-parameters; ``model`` is the architecture."""

    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 200
    lr: float = 1e-3
    weight_decay: float = 5e-4
    mask_rate: float = 0.5
    gamma: float = 3.0
    structure_weight: float = 1.0
    supervised_weight: float = 1.0
    positives_per_relation: int = 2048
    positive_fraction: float = 0.25  # at most this share of a relation's edges is held out of one step
    val_node_fraction: float = 0.2
    val_edge_fraction: float = 0.1
    patience: int = 15
    min_delta: float = 1e-4
    seed: int = 0
    device: str = "auto"
    full_batch_max_edges: int = 300_000
    """Above this many message-passing edges, train on neighbour-sampled mini-batches. A full-batch
    epoch on the medium estate (55k nodes, 486k relationships) grew past 19 GB and was OOM-killed on a
    24 GB machine: activations and gradients scale with edges x hidden width x layers."""
    batch_size: int = 1024
    fanouts: tuple[int, ...] = (10, 10, 10)
    """Seeds per mini-batch and in-neighbours drawn per hop: kept after measuring the alternatives on the
    medium estate (seed 0, 1 torch thread on a 2-core machine shared with other work, load average 2.3-6, so
    the seconds are comparable only within one session; "loss" is the validation loss on the whole graph,
    no sampling, of the model after that epoch). 1024 seeds sample ~9.3k nodes and ~45k edges (median in-degree
    3; 1024/1288/4778/2227 nodes at hops 0-3), 43 steps an epoch; 2048 seeds sample ~11.4k nodes and 4096
    ~14.7k, so larger batches make much cheaper epochs, but Adam's progress is per step and they lost at equal
    wall-clock as well as at equal epochs:

    ==============  ===========  ====================  ==========================================
    batch, fanouts  s per epoch  loss / AUC, 3 epochs  loss at about the same wall-clock
    ==============  ===========  ====================  ==========================================
    1024, 10/10/10  24-40        0.326 / 0.922         0.326 after 86-106 s (3 epochs)
    1024, 10/10/5   24-35        0.327 / 0.926         0.327 after 88-98 s (3 epochs)
    2048, 10/10/10  16-22        0.374 / 0.888         0.361 after 105 s, 0.329 after 139 s
    4096, 10/10/10  11-26        0.439 / 0.876         0.411 after 79-84 s, 0.345 after 127-130 s
    ==============  ===========  ====================  ==========================================

    The last fanout at 5 did not make steps measurably cheaper (few nodes have more than 5 in-edges)."""
    loss_hops: int | None = 1
    """Neighbour-sampled steps: the structure loss's positives and negatives are nodes within this many hops of
    the batch's seeds (the feature and supervised losses read only seeds), so the RGCN computes only the rows
    those need (:class:`~gnnsec.gnn.layers.TrimmedPlans`). ``None``: any node of the subgraph, as before,
    including the last hop's nodes, whose embeddings saw no neighbour at all, while inference gives every node
    its neighbours. At 0 hardly any positive is left (74 of 46k edges join two seeds of a medium-estate batch).

    Measured against ``None`` on the medium estate (seed 11, the benchmark's; 2 threads; the validation batch
    is the same for both, and its nodes and edges are all seeds):

    * epoch: a median 1.11x faster over seven pairs, from 0.89x to 1.24x (this machine's steal time was 25 %);
      the profiled epoch spent 7 % less time in its products, and peak RSS fell from 2.7-2.8 to 2.5 GB. The
      last layer writes a quarter of the rows and reads a third of the edges, but it is the narrowest
      (256 -> 128) and the other two are untouched, so the saving is small;
    * validation loss, 10 epochs, best: 0.2853 -> 0.2719 (seed 0), 0.2806 -> 0.2713 (seed 1); its structure
      part falls and its feature part rises (last epoch 0.0082 -> 0.0103 and 0.0084 -> 0.0090): the seeds and
      their neighbours now carry all of the structure loss;
    * ``gnnsec eval --split time --models rgcn --epochs 12 --seeds 2`` on that development estate: User AUC
      0.908 -> 0.929 and AP 0.423 -> 0.431, VM AUC 0.968 -> 0.970 and AP 0.062 -> 0.060, edge AUC 0.518 ->
      0.602, Role AP 1.000 -> 0.667 (the one attacked Role ranked third in one of the two seeds); 426 -> 392 s."""
    grad_clip: float = 5.0
    nproc: int = 1
    """Data-parallel worker processes (``gnnsec train --nproc``); 1 trains in this process, unchanged."""

    def __post_init__(self) -> None:
        if self.loss_hops is not None and self.loss_hops < 0:
            raise InputError(f"loss_hops counts hops from the seeds and cannot be negative, got {self.loss_hops}")

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        data["fanouts"] = list(self.fanouts)
        data["model"] = self.model.to_dict()
        return data


@dataclass(slots=True)
class EpochStats:
    epoch: int
    loss: float
    feature_loss: float
    structure_loss: float
    supervised_loss: float
    val_loss: float
    val_feature_loss: float
    val_structure_loss: float
    val_edge_auc: float
    seconds: float
    steps: int = 0  # optimiser steps this epoch (this rank's, in a data-parallel run)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    """Training seconds of this epoch per phase (:data:`PHASES`; validation is the rest of ``seconds``), so a
    slow epoch says whether sampling, the forward pass, the backward pass or the optimiser is to blame."""


@dataclass(slots=True)
class TrainResult:
    """Per-epoch losses and validation metrics, and how the run went."""

    epochs: list[EpochStats] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = float("inf")
    stopped_early: bool = False
    mode: str = "full"  # full | minibatch
    device: str = "cpu"
    num_parameters: int = 0
    trainable_parameters: int = 0
    seconds: float = 0.0
    val_node_uids: list[str] = field(default_factory=list)  # held out of the feature loss: calibration data

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class FitOutput(NamedTuple):
    model: GraphAutoencoder
    result: TrainResult
    spec: FeatureSpec


PHASES = ("sample", "prepare", "forward", "backward", "optimiser")
"""A training step's phases: draw the subgraph, build its batch (positives, negatives, relation plan), the
objective's forward pass, its backward pass, gradient clipping and the optimiser step."""


class _PhaseClock:
    """Seconds per phase, each lap charged to the phase that just ended. On CUDA a lap waits for the kernels
    queued so far; the steps already wait for their loss values, so this adds no stall worth measuring."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.last = time.perf_counter()

    def reset(self) -> None:
        """Zero every phase: a new epoch."""
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.start()

    def start(self) -> None:
        """Forget what happened since the last lap (validation, bookkeeping between steps)."""
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.seconds[phase] += now - self.last
        self.last = now


ProgressCallback = Callable[[EpochStats, int], None]
"""Called after each epoch with the stats and the maximum number of epochs."""


@dataclass(slots=True)
class ParallelContext:
    """This process's place in a data-parallel run; the process group is already initialised.

    ``record``, when a list, receives per epoch the sorted ids of what this rank trained on: schema-edge
    indices in full-batch mode, seed-node indices in neighbour-sampled mode (a test hook).
    """

    rank: int
    world_size: int
    record: list[list[int]] | None = None


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


@dataclass(slots=True)
class _Split:
    train_nodes: torch.Tensor
    val_nodes: torch.Tensor
    train_edges: torch.Tensor  # indices into the schema edges
    val_edges: torch.Tensor
    labelled: torch.Tensor  # node indices with a supervision label
    targets: torch.Tensor  # float [N], NaN where unlabelled


def _split(graph: GraphTensors, snapshot: Snapshot, config: TrainConfig, generator: torch.Generator) -> _Split:
    n, e = graph.num_nodes, int(graph.edge_type.numel())
    node_perm = torch.randperm(n, generator=generator)
    n_val = round(config.val_node_fraction * n) if n > 1 else 0
    edge_perm = torch.randperm(e, generator=generator)
    e_val = round(config.val_edge_fraction * e) if e > 1 else 0
    targets = torch.full((n,), float("nan"))
    labels = snapshot.meta.get("labels") or {}
    if labels:
        index = snapshot.index_of()
        for uid, value in labels.items():
            if uid in index:
                targets[index[uid]] = float(value)
    return _Split(
        train_nodes=node_perm[n_val:].sort().values,
        val_nodes=node_perm[:n_val].sort().values,
        train_edges=edge_perm[e_val:].sort().values,
        val_edges=edge_perm[:e_val].sort().values,
        labelled=torch.nonzero(~torch.isnan(targets)).flatten(),
        targets=targets,
    )


def _subset(mask_size: float, nodes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    count = max(1, round(mask_size * nodes.numel())) if nodes.numel() else 0
    return nodes[torch.randperm(nodes.numel(), generator=generator)[:count]]


@dataclass(slots=True)
class _Run:
    """What every step of one run reads, built once by :func:`fit`: one record instead of the same dozen
    arguments to each step, epoch and validation function."""

    objective: Callable[[StepBatch], Losses]
    optimiser: torch.optim.Optimizer
    params: list[torch.nn.Parameter]
    config: TrainConfig
    graph: GraphTensors
    split: _Split
    negatives: NegativeSampler
    train_index: torch.Tensor  # message-passing edges of the training split, inverses included
    train_type: torch.Tensor
    x: torch.Tensor  # node features, on the training device
    sup_train: torch.Tensor  # labelled training nodes
    minibatch: bool
    clock: _PhaseClock
    num_layers: int  # the model's, which a checkpoint being adapted may set, not config.model
    relational: bool  # the encoder reads relation plans (the RGCN); the others read edge_index alone
    sampler: NeighbourSampler | None = None  # built on first use, then shared by every epoch

    def subgraphs(self, seeds: torch.Tensor, batch_size: int, generator: torch.Generator) -> Iterator[SampledSubgraph]:
        """Shuffled batches of ``seeds`` with sampled neighbourhoods of the training graph (see
        :func:`iterate_subgraphs`); the plain-torch sampler's CSR index over the training edges is built once
        per run instead of once per epoch and per data-parallel batch."""
        use_pyg = pyg_sampler_available()
        return iterate_subgraphs(self.train_index, self.train_type, self.graph.num_nodes, seeds,
                                 list(self.config.fanouts), batch_size, generator, use_pyg=use_pyg,
                                 sampler=None if use_pyg else self.neighbour_sampler())

    def neighbour_sampler(self) -> NeighbourSampler:
        """The plain-torch sampler over the training edges, built on first use."""
        if self.sampler is None:
            self.sampler = NeighbourSampler(self.train_index, self.train_type, self.graph.num_nodes,
                                            list(self.config.fanouts))
        return self.sampler

    @property
    def device(self) -> torch.device:
        return self.x.device


def fit(
    snapshot: Snapshot,
    config: TrainConfig | None = None,
    progress: ProgressCallback | None = None,
    *,
    spec: FeatureSpec | None = None,
    model: GraphAutoencoder | None = None,
    adapt: bool = False,
    parallel: ParallelContext | None = None,
) -> FitOutput:
    """Train on ``snapshot`` (benign data) and return the best model, the run's record and the spec.

    ``spec``/``model`` continue from a checkpoint; ``adapt=True`` trains only the adapters
    (``gnnsec train --adapt``), keeping the feature spec fixed so scoring columns do not move.
    ``parallel`` makes this process one rank of a data-parallel run (see :mod:`gnnsec.gnn.distributed`).
    """
    config = config or TrainConfig()
    seed_everything(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = resolve_device(config.device)
    started = time.perf_counter()

    spec = spec or fit_feature_spec(snapshot)
    graph = to_tensors(snapshot, build_features(snapshot, spec))
    split = _split(graph, snapshot, config, generator)
    if model is None:
        labelled = split.labelled.numel() > 0
        model_config = dataclasses.replace(
            config.model, in_dim=spec.max_fdim, active_dim=spec.width, supervised=labelled
        )
        model = GraphAutoencoder(model_config)
    if adapt:
        freeze_all_but_adapters(model)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    objective = Objective(
        model, gamma=config.gamma, structure_weight=config.structure_weight,
        supervised_weight=config.supervised_weight,
    )
    train_index, train_type = with_inverse_edges(
        graph.edge_index[:, split.train_edges], graph.edge_type[split.train_edges]
    )
    run = _Run(
        objective=objective,
        optimiser=_adamw(params, config, device),
        params=params,
        config=config,
        graph=graph,
        split=split,
        negatives=NegativeSampler(graph.node_label),
        train_index=train_index,
        train_type=train_type,
        x=graph.x.to(device),
        sup_train=split.labelled[torch.isin(split.labelled, split.train_nodes)],
        minibatch=train_index.shape[1] > config.full_batch_max_edges,
        clock=_PhaseClock(device),
        num_layers=model.config.num_layers,
        relational=isinstance(model.encoder, HeteroRGCNEncoder),
    )
    result = TrainResult(
        mode="minibatch" if run.minibatch else "full",
        device=str(device),
        num_parameters=count_parameters(model),
        trainable_parameters=count_parameters(model, trainable_only=True),
    )
    validation = _validation_batch(run) if parallel is None or parallel.rank == 0 else None
    sharded = _Sharded(run, objective, parallel) if parallel is not None else None
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs = 0
    for epoch in range(config.epochs):
        tick = time.perf_counter()
        run.clock.reset()
        model.train()
        if sharded is not None:
            step_losses = sharded.epoch()
        elif run.minibatch:
            step_losses = _minibatch_epoch(run, generator)
        else:
            step_losses = [_full_batch_step(run, generator)]
        model.eval()
        if validation is not None:
            with torch.no_grad():
                val = objective(validation)
        else:  # rank 0 validates for everyone
            val = Losses(torch.tensor(float("nan")), float("nan"), float("nan"), float("nan"))
        means = _mean_step_losses(step_losses) if sharded is None else sharded.mean_step_losses(step_losses)
        stats = EpochStats(
            epoch=epoch,
            loss=means.total,
            feature_loss=means.feature,
            structure_loss=means.structure,
            supervised_loss=means.supervised,
            val_loss=float(val.total),
            val_feature_loss=val.feature,
            val_structure_loss=val.structure,
            val_edge_auc=val.edge_auc,
            seconds=time.perf_counter() - tick,
            steps=len(step_losses),
            phase_seconds=dict(run.clock.seconds),
        )
        result.epochs.append(stats)
        if progress is not None:
            progress(stats, config.epochs)
        improved = stats.val_loss < result.best_val_loss - config.min_delta
        if sharded is not None:  # every rank follows rank 0's verdict, so all keep the same best weights
            improved = sharded.agree(improved)
        if improved:
            result.best_val_loss, result.best_epoch, bad_epochs = stats.val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
            if bad_epochs >= config.patience:
                result.stopped_early = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    for p in model.parameters():
        p.requires_grad = True
    model.eval()
    result.seconds = time.perf_counter() - started
    result.val_node_uids = [snapshot.node_uid[i] for i in split.val_nodes.tolist()]
    return FitOutput(model.cpu(), result, spec)


def _adamw(params: list[torch.nn.Parameter], config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW, fused into one kernel over all parameters on CPU and CUDA (torch's default elsewhere). Clipping and the
    update took 0.53-0.58 s of a medium-estate epoch (43 steps, 2 threads) tensor by tensor, 0.19-0.23 s fused,
    with the same validation losses to four places (alternated twice)."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused or None)


@dataclass(slots=True)
class _StepLoss:
    total: float
    feature: float
    structure: float
    supervised: float


def _mean_step_losses(steps: list[_StepLoss]) -> _StepLoss:
    return _StepLoss(
        float(np.mean([s.total for s in steps])),
        float(np.mean([s.feature for s in steps])),
        float(np.mean([s.structure for s in steps])),
        float(np.mean([s.supervised for s in steps])),
    )


def _optimise(run: _Run, batch: StepBatch) -> _StepLoss:
    clock = run.clock
    clock.lap("prepare")
    losses = run.objective(batch)
    clock.lap("forward")
    run.optimiser.zero_grad(set_to_none=True)
    losses.total.backward()
    clock.lap("backward")
    torch.nn.utils.clip_grad_norm_(run.params, run.config.grad_clip)
    run.optimiser.step()
    clock.lap("optimiser")
    return _StepLoss(float(losses.total.detach()), losses.feature, losses.structure, losses.supervised)


def _full_batch_step(run: _Run, generator: torch.Generator, chosen: torch.Tensor | None = None) -> _StepLoss:
    """One step on the whole training graph; ``chosen`` (schema-edge ids) are the positives when given,
    else up to ``positives_per_relation`` random training edges per relation."""
    config, graph, split = run.config, run.graph, run.split
    run.clock.start()
    masked = _subset(config.mask_rate, split.train_nodes, generator)
    if chosen is None:
        picked = sample_positives(
            graph.edge_type[split.train_edges], config.positives_per_relation, generator, config.positive_fraction
        )
        chosen = split.train_edges[picked]
    src, dst, rel = graph.edge_index[0, chosen], graph.edge_index[1, chosen], graph.edge_type[chosen]
    neg_src, neg_dst = run.negatives.corrupt(src, dst, generator)
    # The supervised edges leave the message-passing graph for this step, so DistMult learns whether an
    # edge is plausible from its context instead of recognising that the two ends are already linked.
    passing = split.train_edges[~torch.isin(split.train_edges, chosen)]
    mp_index, mp_type = with_inverse_edges(graph.edge_index[:, passing], graph.edge_type[passing])
    batch = StepBatch(
        x=run.x, edge_index=mp_index, edge_type=mp_type, masked=masked,
        pos_src=src, pos_type=rel, pos_dst=dst, neg_src=neg_src, neg_dst=neg_dst,
        sup_nodes=run.sup_train, sup_targets=split.targets[run.sup_train],
    )
    return _optimise(run, batch.to(run.device).planned(run.relational))


def _subgraph_positives(sub: SampledSubgraph) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Schema-direction edges of a sampled subgraph (inverse edges flipped back), local ids."""
    inverse = sub.edge_type >= NUM_RELATIONS
    src = torch.where(inverse, sub.edge_index[1], sub.edge_index[0])
    dst = torch.where(inverse, sub.edge_index[0], sub.edge_index[1])
    rel = torch.where(inverse, sub.edge_type - NUM_RELATIONS, sub.edge_type)
    return src, rel, dst


def _loss_rows(sub: SampledSubgraph, loss_hops: int | None, layers: int) -> tuple[int | None, tuple[int, ...]]:
    """How many of the subgraph's first nodes the losses may read (``None``: all), and the rows each of the
    ``layers`` RGCN layers then writes: layer l of L those within ``loss_hops + L - 1 - l`` hops (empty: no
    trimming)."""
    if loss_hops is None:
        return None, ()
    if not sub.hop_sizes:
        warnings.warn("the neighbour sampler does not report hop sizes (PyG's loader on torch-sparse alone), so "
                      "loss_hops is ignored and every node of a sampled subgraph enters the losses; install "
                      "pyg-lib or uninstall torch-sparse to use gnnsec's own sampler", RuntimeWarning, stacklevel=2)
        return None, ()
    reach = sub.within(loss_hops)
    return reach, tuple(sub.within(loss_hops + layers - 1 - layer) for layer in range(layers))


def _minibatch_epoch(
    run: _Run, generator: torch.Generator, subgraphs: Iterable[SampledSubgraph] | None = None
) -> list[_StepLoss]:
    """One pass over the training nodes in sampled batches (``subgraphs`` when given)."""
    config, graph, split = run.config, run.graph, run.split
    is_train = torch.zeros(graph.num_nodes, dtype=torch.bool)
    is_train[split.train_nodes] = True
    has_label = ~torch.isnan(split.targets)
    out: list[_StepLoss] = []
    if subgraphs is None:
        subgraphs = run.subgraphs(split.train_nodes, config.batch_size, generator)
    clock = run.clock
    clock.start()
    for sub in subgraphs:
        clock.lap("sample")
        seeds_local = torch.arange(sub.num_seeds)
        masked = _subset(config.mask_rate, seeds_local, generator)
        src, rel, dst = _subgraph_positives(sub)
        reach, layer_rows = _loss_rows(sub, config.loss_hops, run.num_layers)
        eligible = torch.arange(rel.numel()) if reach is None else torch.nonzero((src < reach) & (dst < reach))[:, 0]
        keep = eligible[sample_positives(rel[eligible], config.positives_per_relation, generator,
                                         config.positive_fraction)]
        src, rel, dst = src[keep], rel[keep], dst[keep]
        passing = torch.ones(sub.edge_type.numel(), dtype=torch.bool)
        passing[keep] = False  # supervised edges leave message passing, as in the full-batch step
        neg_src, neg_dst = NegativeSampler(graph.node_label[sub.n_id[:reach]]).corrupt(src, dst, generator)
        seed_ids = sub.n_id[: sub.num_seeds]
        sup_local = seeds_local[has_label[seed_ids] & is_train[seed_ids]]
        batch = StepBatch(
            x=run.x[sub.n_id.to(run.device)], edge_index=sub.edge_index[:, passing], edge_type=sub.edge_type[passing],
            masked=masked, pos_src=src, pos_type=rel, pos_dst=dst, neg_src=neg_src, neg_dst=neg_dst,
            sup_nodes=sup_local, sup_targets=split.targets[sub.n_id][sup_local], layer_rows=layer_rows,
        )
        out.append(_optimise(run, batch.to(run.device).planned(run.relational)))
    return out


def _validation_batch(run: _Run) -> StepBatch:
    """Held-out nodes (all masked at once) and held-out edges (absent from message passing) against fixed
    negatives; the same every epoch, so built once."""
    config, graph, split = run.config, run.graph, run.split
    src, dst = graph.edge_index[0, split.val_edges], graph.edge_index[1, split.val_edges]
    rel = graph.edge_type[split.val_edges]
    neg_src, neg_dst = run.negatives.corrupt(src, dst, torch.Generator().manual_seed(config.seed + 1))
    sup_val = split.labelled[torch.isin(split.labelled, split.val_nodes)]
    if not run.minibatch:
        batch = StepBatch(
            x=run.x, edge_index=run.train_index, edge_type=run.train_type, masked=split.val_nodes,
            pos_src=src, pos_type=rel, pos_dst=dst, neg_src=neg_src, neg_dst=neg_dst,
            sup_nodes=sup_val, sup_targets=split.targets[sup_val],
        )
        return batch.to(run.device).planned(run.relational)
    # Mini-batch mode: one deterministic sampled subgraph around the validation nodes and edge endpoints.
    cap = 4 * config.batch_size
    src, rel, dst, neg_src, neg_dst = src[:cap], rel[:cap], dst[:cap], neg_src[:cap], neg_dst[:cap]
    val_nodes = split.val_nodes[:cap]
    seeds = torch.unique(torch.cat([val_nodes, src, dst, neg_src, neg_dst]))
    sub = next(iterate_subgraphs(  # the plain-torch sampler here whatever is installed; training reuses it
        run.train_index, run.train_type, graph.num_nodes, seeds, list(config.fanouts), seeds.numel(),
        torch.Generator().manual_seed(config.seed + 2), use_pyg=False, sampler=run.neighbour_sampler(),
    ))
    local = torch.full((graph.num_nodes,), -1, dtype=torch.long)
    local[sub.n_id] = torch.arange(sub.n_id.numel())
    sup_local = local[sup_val[torch.isin(sup_val, sub.n_id)]]
    batch = StepBatch(
        x=run.x[sub.n_id.to(run.device)], edge_index=sub.edge_index, edge_type=sub.edge_type,
        masked=local[val_nodes], pos_src=local[src], pos_type=rel, pos_dst=local[dst],
        neg_src=local[neg_src], neg_dst=local[neg_dst],
        sup_nodes=sup_local, sup_targets=split.targets[sub.n_id][sup_local],
    )
    return batch.to(run.device).planned(run.relational)


# ---- data-parallel ranks ------------------------------------------------------------------------------


class _ObjectiveModule(torch.nn.Module):
    """The objective as a module whose ``forward`` runs the encoder and decoders, so that
    ``DistributedDataParallel`` sees every parameter the loss touches (the model's own ``forward`` is
    not what training calls)."""

    def __init__(self, objective: Objective) -> None:
        super().__init__()
        self.model = objective.model
        self.objective = objective

    def forward(self, batch: StepBatch) -> tuple[torch.Tensor, Losses]:
        losses = self.objective(batch)
        return losses.total, losses


class _DataParallelObjective:
    """Runs the objective through ``DistributedDataParallel``: backward averages gradients over ranks."""

    def __init__(self, ddp: torch.nn.Module) -> None:
        self.ddp = ddp

    def __call__(self, batch: StepBatch) -> Losses:
        total, losses = self.ddp(batch)
        return dataclasses.replace(losses, total=total)


def edge_batch_count(edge_type: torch.Tensor, config: TrainConfig, world_size: int) -> int:
    """Mini-batches of training edges per data-parallel epoch: enough that one step holds out at most
    ``positive_fraction`` of the edges and about ``positives_per_relation`` of the largest relation (the
    one-process step's limits), rounded up to a multiple of ``world_size`` so every rank takes as many
    steps (DDP's collectives run in lockstep)."""
    k = math.ceil(1.0 / config.positive_fraction) if config.positive_fraction > 0 else 1
    if edge_type.numel():
        k = max(k, math.ceil(int(torch.bincount(edge_type).max()) / max(1, config.positives_per_relation)))
    return math.ceil(max(1, k) / world_size) * world_size


class _Sharded:
    """One rank's epochs: the shared shuffle, its share of the mini-batches, and rank 0's decisions."""

    def __init__(self, run: _Run, objective: Objective, parallel: ParallelContext) -> None:
        from torch.nn.parallel import DistributedDataParallel

        device = run.device
        # find_unused_parameters: the classifier sits idle in steps without labelled nodes, DistMult in steps
        # without positives; DDP would otherwise wait for their gradients forever.
        ddp = DistributedDataParallel(
            _ObjectiveModule(objective),
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
        self.run = dataclasses.replace(run, objective=_DataParallelObjective(ddp))
        self.parallel = parallel
        self.shuffle = torch.Generator().manual_seed(run.config.seed + 3)  # identical on every rank
        self.steps = torch.Generator().manual_seed(run.config.seed + 7919 * (parallel.rank + 1))  # masks, negatives

    def epoch(self) -> list[_StepLoss]:
        run, rank, world = self.run, self.parallel.rank, self.parallel.world_size
        config, split = run.config, run.split
        if run.minibatch:  # shard the seed nodes; each rank samples its own batches' neighbourhoods
            order = split.train_nodes[torch.randperm(split.train_nodes.numel(), generator=self.shuffle)]
            count = math.ceil(max(1, math.ceil(order.numel() / config.batch_size)) / world) * world
            if order.numel() < count:  # some rank would get an empty batch; the same verdict on every rank
                raise InputError(f"{order.numel()} training nodes cannot feed {world} ranks; lower --nproc")
            mine = list(order.tensor_split(count)[rank::world])
            self._record(mine)
            subgraphs = (next(run.subgraphs(chunk, chunk.numel(), self.steps)) for chunk in mine)
            return _minibatch_epoch(run, self.steps, subgraphs)
        order = split.train_edges[torch.randperm(split.train_edges.numel(), generator=self.shuffle)]
        count = edge_batch_count(run.graph.edge_type[split.train_edges], config, world)
        mine = list(order.tensor_split(count)[rank::world])
        self._record(mine)
        return [_full_batch_step(run, self.steps, chosen=batch) for batch in mine]

    def _record(self, batches: list[torch.Tensor]) -> None:
        if self.parallel.record is not None:
            self.parallel.record.append(sorted(torch.cat(batches).tolist()) if batches else [])

    def mean_step_losses(self, steps: list[_StepLoss]) -> _StepLoss:
        """Means over every rank's steps of this epoch."""
        import torch.distributed as dist

        sums = torch.tensor(
            [[s.total, s.feature, s.structure, s.supervised, 1.0] for s in steps] or [[0.0] * 5],
            dtype=torch.float64,
        ).sum(0).to(self.run.device)
        dist.all_reduce(sums)
        n = max(1.0, float(sums[4]))
        return _StepLoss(*(float(v) / n for v in sums[:4].tolist()))

    def agree(self, improved: bool) -> bool:
        """Rank 0's early-stopping verdict for this epoch, on every rank."""
        import torch.distributed as dist

        flag = torch.tensor([1 if improved else 0], dtype=torch.int64, device=self.run.device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())
