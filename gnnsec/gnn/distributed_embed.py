r"""Partitioned inference: ``gnnsec score --with-gnn --nproc P`` splits the graph model's encoding by node.

The nodes 0..N-1 are cut into P contiguous shards :math:`S_0, …, S_{P-1}`, balanced on 1 + in-degree (the
message-passing edges, inverses included), one per rank. A layer of the RGCN encoder is row-wise except for the
messages, and a node's messages come only over its in-edges:

.. math::
    h_i^{l+1} = f_l\big(h_i^l,\ \{(r, h_j^l) : (j, r, i) \in E\}\big)

so rank p computes :math:`H^{l+1}[S_p]` from the whole :math:`H^l` with only the edges into its shard,
:math:`E_p = \{(j, r, i) \in E : i \in S_p\}` (the :math:`E_p` partition E; the mean's :math:`1/|N_r(i)|` is
unchanged since all of i's in-edges are in one :math:`E_p`), and ``all_gather`` stacks
:math:`H^{l+1} = [H^{l+1}[S_0]; …; H^{l+1}[S_{P-1}]]` for the next layer. The masked encodes of the
reconstruction errors run the same way on the same random groups (same seed); rank p judges the masked nodes of
:math:`S_p` from its own rows, so their last layer needs no gather. DistMult logits :math:`f(s, r, o)` of the
schema edges with :math:`s \in S_p` are computed on rank p from the gathered :math:`Z`.

Per layer a rank does 1/P of the messages and of the dense products and sends its :math:`|S_p| × d` rows. Each rank
holds the graph's tensors (shared memory from the calling process, which builds the features once) and a copy of
the model; processes start as for training (:mod:`gnnsec.gnn.distributed`): ``torch.multiprocessing.spawn``,
``gloo`` on the CPU, ``nccl`` on CUDA with rank r on ``cuda:r``. The result equals
:func:`gnnsec.gnn.embed.embed`'s up to float summation order.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import pairwise
from multiprocessing.queues import Queue
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gnnsec.errors import InputError, StateError
from gnnsec.gnn.data import GraphTensors, to_tensors
from gnnsec.gnn.device import resolve_device
from gnnsec.gnn.embed import Embeddings, edge_logits, embed
from gnnsec.gnn.features import FeatureSpec, build_features
from gnnsec.gnn.layers import RelationPlan
from gnnsec.gnn.model import GraphAutoencoder, HeteroRGCNEncoder, ModelConfig
from gnnsec.snapshot import Snapshot

_TIMEOUT = timedelta(minutes=30)  # a rank waiting this long on the others gives up instead of hanging


@dataclass(slots=True)
class ShardRecord:
    """What one rank computed: its node shard, the message-passing edges it ran, the schema edges whose logits
    it gave, and its seconds from joining the group to its results (spawn and transfers excluded)."""

    rank: int
    nodes: np.ndarray  # int64, the node ids whose rows this rank computed
    message_edges: int
    logit_edges: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # schema-edge ids
    seconds: float = 0.0


def node_shards(in_degree: torch.Tensor, parts: int) -> list[int]:
    """Bounds ``b`` of ``parts`` contiguous shards ``[b[p], b[p+1])`` of the nodes, cut where the running
    cost Σ(1 + in-degree) crosses p/parts of the total: a layer's work on a shard is its rows plus its messages."""
    n = in_degree.numel()
    if n == 0:
        return [0] * (parts + 1)
    cost = torch.cumsum(in_degree.to(torch.float64) + 1.0, 0)
    targets = cost[-1] * torch.arange(1, parts, dtype=torch.float64) / parts
    cuts = (torch.searchsorted(cost, targets) + 1).clamp(max=n).tolist()
    bounds = [0]
    for cut in [*cuts, n]:
        bounds.append(max(int(cut), bounds[-1]))
    return bounds


@torch.no_grad()
def _encode_rank(
    rank: int, bounds: list[int], model: GraphAutoencoder, graph: GraphTensors, passes: int, seed: int
) -> tuple[ShardRecord, np.ndarray, np.ndarray, np.ndarray]:
    """Rank ``rank``'s part of :func:`gnnsec.gnn.embed.embed`: z and reconstruction errors of its shard, logits
    of the schema edges leaving it. Every rank makes the same collective calls in the same order."""
    import torch.distributed as dist

    began = time.perf_counter()
    encoder = model.encoder
    if not isinstance(encoder, HeteroRGCNEncoder):  # checked by the caller; narrows the type
        raise TypeError(f"partitioned encoding needs the RGCN encoder, not {type(encoder).__name__}")
    start, stop = bounds[rank], bounds[rank + 1]
    sizes = [hi - lo for lo, hi in pairwise(bounds)]
    rows = torch.arange(start, stop, device=graph.x.device)
    src, dst = graph.mp_edge_index
    into = (dst >= start) & (dst < stop)
    local_index = torch.stack([src[into], dst[into] - start])  # destinations as positions in the shard
    local_type = graph.mp_edge_type[into]
    plan = RelationPlan.build(local_index, local_type, stop - start)

    def gather(part: torch.Tensor) -> torch.Tensor:
        """The shards' rows stacked in node order (padded to the largest shard: all_gather wants equal sizes)."""
        padded = part.new_zeros(max(*sizes, 1), part.shape[1])
        padded[: part.shape[0]] = part
        buckets = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(buckets, padded)
        return torch.cat([bucket[:size] for bucket, size in zip(buckets, sizes, strict=True)])

    def encode(x: torch.Tensor, gather_last: bool) -> torch.Tensor:
        h = gather(encoder.input_proj(x[start:stop]))
        last = len(encoder.convs) - 1
        for layer in range(last + 1):
            own = encoder.layer(layer, h, local_index, local_type, plan, rows=rows)
            h = gather(own) if layer < last or gather_last else own
        return h

    z = encode(graph.x, gather_last=True)
    errors = torch.zeros(stop - start, device=graph.x.device)
    groups = torch.randperm(graph.num_nodes, generator=torch.Generator().manual_seed(seed)) % max(passes, 1)
    for g in range(max(passes, 1)):  # the groups of embed.reconstruction_errors, identical on every rank
        masked = torch.nonzero(groups == g).flatten().to(graph.x.device)
        if masked.numel() == 0:
            continue
        own = encode(model.mask_features(graph.x, masked), gather_last=False)
        mine = masked[(masked >= start) & (masked < stop)]
        recon = model.feature_decoder(own[mine - start])
        errors[mine - start] = 1.0 - F.cosine_similarity(recon, graph.x[mine], dim=-1, eps=1e-8)
    leaving = torch.nonzero((graph.edge_index[0] >= start) & (graph.edge_index[0] < stop)).flatten()
    logits = edge_logits(model, z, graph.edge_index[:, leaving], graph.edge_type[leaving])
    record = ShardRecord(rank, rows.cpu().numpy(), int(local_type.numel()), leaving.cpu().numpy(),
                         time.perf_counter() - began)
    return (record, z[start:stop].cpu().numpy().astype(np.float32), errors.cpu().numpy().astype(np.float32),
            logits.cpu().numpy().astype(np.float32))


def _worker(rank: int, world_size: int, port: int, model_config: dict[str, Any], state: bytes, graph: GraphTensors,
            bounds: list[int], passes: int, seed: int, device_type: str, threads: int, out: Queue[Any]) -> None:
    import torch.distributed as dist

    from gnnsec.gnn.distributed import state_from_bytes

    device, backend = torch.device("cpu"), "gloo"
    if device_type == "cuda":
        device, backend = torch.device("cuda", rank), "nccl"
        torch.cuda.set_device(device)
    torch.set_num_threads(threads)
    model = GraphAutoencoder(ModelConfig.from_dict(model_config))
    model.load_state_dict(state_from_bytes(state))
    model = model.to(device).eval()
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
                            timeout=_TIMEOUT)
    try:
        out.put(("shard", _encode_rank(rank, bounds, model, graph.to(device), passes, seed)))
    finally:
        dist.destroy_process_group()


# embed_partitioned and embed_shards take embed()'s parameters plus nproc, on purpose: a drop-in for it.
def embed_partitioned(
    model: GraphAutoencoder,
    snapshot: Snapshot,
    spec: FeatureSpec,
    nproc: int,
    device: str = "auto",
    recon_passes: int = 4,
    seed: int = 0,
) -> Embeddings:
    """:func:`gnnsec.gnn.embed.embed` with the nodes split across ``nproc`` processes (one process: ``embed``)."""
    return embed_shards(model, snapshot, spec, nproc, device, recon_passes, seed)[0]


def embed_shards(
    model: GraphAutoencoder,
    snapshot: Snapshot,
    spec: FeatureSpec,
    nproc: int,
    device: str = "auto",
    recon_passes: int = 4,
    seed: int = 0,
) -> tuple[Embeddings, list[ShardRecord]]:
    """:func:`embed_partitioned`, with what each rank computed (for tests and ``benchmarks/score_partitioned.py``)."""
    if nproc < 1:
        raise InputError(f"--nproc must be at least 1, not {nproc}")
    if nproc == 1:
        return embed(model, snapshot, spec, device, recon_passes, seed), []
    if not isinstance(model.encoder, HeteroRGCNEncoder):
        raise InputError(f"--nproc splits the RGCN encoder's layers by node; this checkpoint's {model.config.kind!r} "
                         "encoder runs in one process: drop --nproc")
    try:
        target = resolve_device(device)
    except RuntimeError as exc:
        raise InputError(str(exc)) from exc
    if target.type == "cuda" and torch.cuda.device_count() < nproc:
        raise InputError(f"--nproc {nproc} on CUDA needs {nproc} GPUs; torch sees {torch.cuda.device_count()}")
    graph = to_tensors(snapshot, build_features(snapshot, spec))
    bounds = node_shards(torch.bincount(graph.mp_edge_index[1], minlength=graph.num_nodes), nproc)
    records, parts = _run_ranks(model, graph, bounds, nproc, target.type, recon_passes, seed)
    logits = np.zeros(graph.edge_type.numel(), dtype=np.float32)
    for record, (_, _, part) in zip(records, parts, strict=True):
        logits[record.logit_edges] = part
    embeddings = Embeddings(
        node_uid=list(snapshot.node_uid),
        node_label=graph.node_label.numpy(),
        z=np.concatenate([z for z, _, _ in parts]),
        recon_error=np.concatenate([errors for _, errors, _ in parts]),
        features=graph.x[:, : spec.width].numpy(),
        edge_index=graph.edge_index.numpy(),
        edge_type=graph.edge_type.numpy(),
        edge_logit=logits,
    )
    return embeddings, records


def _run_ranks(model: GraphAutoencoder, graph: GraphTensors, bounds: list[int], nproc: int, device_type: str,
               passes: int, seed: int) -> tuple[list[ShardRecord], list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Spawn the ranks, collect each one's shard, and return them in rank order."""
    import multiprocessing

    import torch.multiprocessing as torch_mp

    from gnnsec.gnn.distributed import collect, free_port, state_to_bytes

    threads = max(1, torch.get_num_threads() // nproc)  # the ranks share this process's thread budget
    out: Queue[Any] = multiprocessing.get_context("spawn").Queue()
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # rendezvous and traffic stay on the loopback
    args = (nproc, free_port(), model.config.to_dict(), state_to_bytes(model.state_dict()), graph, bounds, passes, seed,
            device_type, threads, out)
    workers = torch_mp.spawn(_worker, args=args, nprocs=nproc, join=False)
    shards: dict[int, tuple[ShardRecord, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}

    def take(kind: str, payload: Any) -> None:
        if kind == "shard":
            record, z, errors, logits = payload
            shards[record.rank] = (record, (z, errors, logits))

    try:
        collect(workers, out, take, grace=1.0)
    except torch_mp.ProcessExitedException as exc:
        raise StateError(f"scoring process {exc.error_index} of {nproc} died ({exc}); the likeliest cause is memory: "
                         "score with a smaller --nproc") from exc
    if sorted(shards) != list(range(nproc)):
        raise RuntimeError(f"partitioned encoding ended with shards {sorted(shards)} of {nproc}")
    return [shards[r][0] for r in range(nproc)], [shards[r][1] for r in range(nproc)]
