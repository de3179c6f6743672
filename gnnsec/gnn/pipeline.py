"""The three calls the CLI makes: train a checkpoint, adapt it, score a snapshot with it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gnnsec.errors import StateError
from gnnsec.gnn.checkpoint import Checkpoint
from gnnsec.gnn.detect import Detector, DetectorConfig, NodeScores, SnapshotScore, edge_anomaly
from gnnsec.gnn.embed import Embeddings, embed
from gnnsec.gnn.features import window_bounds
from gnnsec.gnn.model import parameter_breakdown
from gnnsec.gnn.train import ProgressCallback, TrainConfig, TrainResult, fit
from gnnsec.snapshot import Snapshot


def _metrics(result: TrainResult, checkpoint_parameters: dict[str, int]) -> dict[str, object]:
    best = result.epochs[result.best_epoch] if 0 <= result.best_epoch < len(result.epochs) else None
    return {
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "val_edge_auc": best.val_edge_auc if best else float("nan"),
        "epochs_run": len(result.epochs),
        "stopped_early": result.stopped_early,
        "mode": result.mode,
        "device": result.device,
        "seconds": result.seconds,
        "parameters": checkpoint_parameters,
        "history": [dataclasses.asdict(e) for e in result.epochs],
    }


def train_checkpoint(
    snapshot: Snapshot,
    config: TrainConfig | None = None,
    detector_config: DetectorConfig | None = None,
    progress: ProgressCallback | None = None,
    *,
    stage: Callable[[str], None] | None = None,
) -> tuple[Checkpoint, TrainResult]:
    """``gnnsec train``: fit on benign data, embed the training snapshot, build the detector's reference
    (calibrated on the nodes held out of training), and return a checkpoint ready to save. ``progress`` is told
    of each epoch and ``stage`` of the steps after them (on the medium estate about 15 s that said nothing).

    ``config.nproc`` > 1 fits with that many data-parallel processes (:mod:`gnnsec.gnn.distributed`); the
    checkpoint is then built here from rank 0's model, by the same code as a one-process run."""
    config = config or TrainConfig()
    if config.nproc > 1:
        from gnnsec.gnn.distributed import fit_data_parallel

        (model, result, spec), _ = fit_data_parallel(snapshot, config, config.nproc, progress)
    else:
        model, result, spec = fit(snapshot, config, progress)
    if stage is not None:
        stage("embedding the training graph")
    reference = embed(model, snapshot, spec, device=config.device, seed=config.seed)
    if stage is not None:
        stage("fitting the detector's reference")
    detector = Detector.fit(reference, detector_config, calibration_uids=result.val_node_uids)
    checkpoint = Checkpoint(
        model=model,
        spec=spec,
        detector=detector,
        train_window=window_bounds(snapshot),
        metrics=_metrics(result, parameter_breakdown(model)),
        train_config=config.to_dict(),
    )
    return checkpoint, result


def adapt_checkpoint(
    checkpoint: Checkpoint,
    snapshot: Snapshot,
    config: TrainConfig | None = None,
    progress: ProgressCallback | None = None,
    *,
    stage: Callable[[str], None] | None = None,
) -> tuple[Checkpoint, TrainResult]:
    """``gnnsec train --adapt``: fine-tune only the adapters on new benign data, same feature spec, and add
    the new benign embeddings to the reference (calibration is kept, so scores stay comparable)."""
    config = config or TrainConfig()
    model, result, spec = fit(snapshot, config, progress, spec=checkpoint.spec, model=checkpoint.model, adapt=True)
    if checkpoint.detector is not None:
        if stage is not None:
            stage("embedding the new benign graph")
        fresh = embed(model, snapshot, spec, device=config.device, seed=config.seed)
        checkpoint.detector.add_reference(fresh)
    checkpoint.model = model
    checkpoint.metrics = {**checkpoint.metrics, "adapted": _metrics(result, parameter_breakdown(model))}
    return checkpoint, result


@dataclass(slots=True)
class ScoreOutput:
    """Everything ``gnnsec score`` writes back, aligned with the snapshot's nodes and edges."""

    embeddings: Embeddings
    nodes: NodeScores
    edge_anomaly: np.ndarray  # [E], 1 − σ(DistMult)
    snapshot: SnapshotScore


def score_snapshot(checkpoint: Checkpoint, snapshot: Snapshot, device: str = "auto") -> ScoreOutput:
    """``gnnsec score``: embed ``snapshot`` with the checkpoint's model and score nodes, edges and window."""
    if checkpoint.detector is None:
        raise StateError("this checkpoint has no detector reference; retrain it with `gnnsec train`")
    emb = embed(checkpoint.model, snapshot, checkpoint.spec, device=device)
    nodes = checkpoint.detector.score(emb)
    return ScoreOutput(emb, nodes, edge_anomaly(emb.edge_logit), checkpoint.detector.snapshot_score(nodes))
