"""Data-parallel training on one machine: ``gnnsec train --nproc N``.

:func:`fit_data_parallel` starts N worker processes with ``torch.multiprocessing.spawn`` (no torchrun),
joined in a ``torch.distributed`` process group on 127.0.0.1 and a free port: backend ``gloo`` on the
CPU, ``nccl`` when the run is on CUDA (rank r on ``cuda:r``). Each rank holds the **whole snapshot**
and its own copy of the model: a snapshot of one estate fits in one machine's memory many times over,
so nothing is partitioned but the work. The model is wrapped in ``DistributedDataParallel`` (through
the objective, see :class:`gnnsec.gnn.train.ParallelContext`), so every backward averages the gradients
of all ranks and the copies stay identical. Each epoch the training edges (neighbour-sampled mode: the
training nodes) are shuffled with a seed all ranks share and cut into mini-batches; rank r trains on
every N-th mini-batch, so the ranks see disjoint mini-batches that together cover the epoch once.

Rank 0 validates and decides early stopping for all ranks, and hands its best model, the run's record
and the feature spec back to the calling process, which builds and saves the checkpoint with exactly the
code of the one-process path (:func:`gnnsec.gnn.pipeline.train_checkpoint`): ``gnnsec score`` and
``gnnsec explain`` load it unchanged. Epoch progress is forwarded to the caller's callback as it comes.
"""

from __future__ import annotations

import dataclasses
import io
import os
import queue as queue_module
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.queues import Queue
from typing import Any

import torch

from gnnsec.errors import GnnsecError, InputError
from gnnsec.gnn.device import resolve_device
from gnnsec.gnn.features import FeatureSpec
from gnnsec.gnn.model import GraphAutoencoder, ModelConfig
from gnnsec.gnn.train import (
    EpochStats,
    FitOutput,
    ParallelContext,
    ProgressCallback,
    TrainConfig,
    TrainResult,
    fit,
)
from gnnsec.snapshot import Snapshot

_TIMEOUT = timedelta(minutes=30)  # a rank waiting this long on the others gives up instead of hanging


@dataclass(slots=True)
class RankRecord:
    """What one rank did (only with ``record=True``): per epoch, the sorted ids it trained on (schema-edge
    indices in full-batch mode, seed-node indices in neighbour-sampled mode), and its final weights."""

    rank: int
    shards: list[list[int]] = field(default_factory=list)
    state: dict[str, torch.Tensor] = field(default_factory=dict)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the rendezvous binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def state_to_bytes(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buffer)
    return buffer.getvalue()


def state_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    loaded: dict[str, torch.Tensor] = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return loaded


def _worker(rank: int, world_size: int, port: int, snapshot: Snapshot, config: TrainConfig, threads: int,
            record: bool, out: Queue[Any]) -> None:
    import torch.distributed as dist

    device = resolve_device(config.device)
    backend = "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(rank)
        config = dataclasses.replace(config, device=f"cuda:{rank}")
        backend = "nccl"
    torch.set_num_threads(threads)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
                            timeout=_TIMEOUT)
    try:
        context = ParallelContext(rank, world_size, record=[] if record else None)

        def forward(stats: EpochStats, total: int) -> None:
            out.put(("epoch", stats, total))

        try:
            model, result, spec = fit(snapshot, config, forward if rank == 0 else None, parallel=context)
        except GnnsecError as exc:  # the user's to act on: re-raised by the caller, not a rank's traceback
            out.put(("error", exc))
            return
        if rank == 0:
            out.put(("model", (model.config.to_dict(), state_to_bytes(model.state_dict()), result, spec)))
        if record:
            out.put(("record", (rank, context.record or [], state_to_bytes(model.state_dict()))))
    finally:
        dist.destroy_process_group()


# Same shape as graphdb.loader.write_staging's signature (input, settings, progress, flags): a layout, no shared code.
def collect(workers: Any, out: Queue[Any], handle: Callable[..., None], grace: float = 0.5) -> None:
    """Hand every message the ranks put on ``out`` to ``handle`` while they run, then what they put just before
    exiting (waiting ``grace`` seconds for each). ``workers`` is ``torch.multiprocessing.spawn(..., join=False)``'s
    context: its ``join`` raises ``ProcessRaisedException`` (a rank's traceback) when a rank failed, and
    ``ProcessExitedException`` when one was killed."""
    done = False
    while not done:
        try:
            handle(*out.get(timeout=0.2))
            continue
        except queue_module.Empty:
            pass
        done = workers.join(timeout=0)
    while True:
        try:
            handle(*out.get(timeout=grace))
        except queue_module.Empty:
            break


def fit_data_parallel(
    snapshot: Snapshot,
    config: TrainConfig,
    nproc: int | None = None,
    progress: ProgressCallback | None = None,
    *,
    record: bool = False,
) -> tuple[FitOutput, list[RankRecord]]:
    """Train on ``snapshot`` with ``nproc`` (default ``config.nproc``) data-parallel processes; returns
    what :func:`gnnsec.gnn.train.fit` returns (rank 0's best model) and, with ``record=True``, what each
    rank trained on and its final weights (for tests: shards are disjoint, weights identical)."""
    import multiprocessing

    import torch.multiprocessing as torch_mp

    nproc = config.nproc if nproc is None else nproc
    if nproc < 2:
        raise InputError("data-parallel training needs at least 2 processes; use fit() for one")
    device = resolve_device(config.device)
    if device.type == "cuda" and torch.cuda.device_count() < nproc:
        raise InputError(f"--nproc {nproc} on CUDA needs {nproc} GPUs; torch sees {torch.cuda.device_count()}")
    threads = max(1, torch.get_num_threads() // nproc)  # the ranks share this process's thread budget
    out: Queue[Any] = multiprocessing.get_context("spawn").Queue()
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # rendezvous and traffic stay on the loopback
    workers = torch_mp.spawn(
        _worker, args=(nproc, free_port(), snapshot, config, threads, record, out), nprocs=nproc, join=False
    )
    fitted: FitOutput | None = None
    records: list[RankRecord] = []
    failure: GnnsecError | None = None

    def handle(kind: str, *payload: Any) -> None:
        nonlocal fitted, failure
        if kind == "error":
            failure = failure or payload[0]
        elif kind == "epoch" and progress is not None:
            progress(payload[0], payload[1])
        elif kind == "model":
            model_config, state, result, spec = payload[0]
            model = GraphAutoencoder(ModelConfig.from_dict(model_config))
            model.load_state_dict(state_from_bytes(state))
            model.eval()
            assert isinstance(result, TrainResult) and isinstance(spec, FeatureSpec)
            fitted = FitOutput(model, result, spec)
        elif kind == "record":
            rank, shards, state = payload[0]
            records.append(RankRecord(rank, shards, state_from_bytes(state)))

    collect(workers, out, handle)
    if failure is not None:
        raise failure
    if fitted is None:
        raise RuntimeError("data-parallel training ended without a model from rank 0")
    return fitted, sorted(records, key=lambda r: r.rank)
