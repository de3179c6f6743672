"""Checkpoints: one ``torch.save`` file with everything ``gnnsec score`` needs, in plain types.

Contents: the state dict, the model config, :data:`gnnsec.schema.SCHEMA_VERSION`, the feature spec, the
training window, metrics, and the detector (benign reference embeddings and calibration data). Only
dicts, lists, strings, numbers and tensors are stored, so it loads with ``torch.load(weights_only=True)``:
opening a checkpoint never executes pickled code.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gnnsec.errors import InputError
from gnnsec.gnn.detect import Detector
from gnnsec.gnn.features import FeatureSpec
from gnnsec.gnn.model import GraphAutoencoder, ModelConfig
from gnnsec.schema import SCHEMA_VERSION

CHECKPOINT_FORMAT = "gnnsec-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1


class CheckpointError(InputError):
    """The file is not a usable gnnsec checkpoint."""


class SchemaVersionError(CheckpointError):
    """The checkpoint was trained against another master schema: relation ids would not line up."""


@dataclass(slots=True)
class Checkpoint:
    model: GraphAutoencoder
    spec: FeatureSpec
    detector: Detector | None = None
    train_window: tuple[float | None, float | None] = (None, None)
    metrics: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    model_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: float = field(default_factory=time.time)
    schema_version: int = SCHEMA_VERSION


def _plain(value: Any) -> Any:
    """Tuples → lists, recursively, and numpy scalars → Python numbers, for weights_only loading."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):
        return value.item()
    return value


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` (parent directories created); returns the path."""
    from gnnsec.config import ensure_private_dir, open_private

    path = Path(path)
    ensure_private_dir(path.parent)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "schema_version": checkpoint.schema_version,
        "model_id": checkpoint.model_id,
        "created_at": checkpoint.created_at,
        "model_config": _plain(checkpoint.model.config.to_dict()),
        "state_dict": {k: v.detach().cpu() for k, v in checkpoint.model.state_dict().items()},
        "feature_spec": _plain(checkpoint.spec.to_dict()),
        "detector": checkpoint.detector.to_state() if checkpoint.detector is not None else None,
        "train_window": _plain(list(checkpoint.train_window)),
        "metrics": _plain(checkpoint.metrics),
        "train_config": _plain(checkpoint.train_config),
    }
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp) as handle:  # 0600: a checkpoint holds the estate's uids and reference embeddings
        torch.save(payload, handle)
    tmp.replace(path)  # a crash mid-write never leaves a truncated checkpoint behind
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint onto ``device``; refuses other formats and other schema versions."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise CheckpointError(f"{path}: not a readable gnnsec checkpoint ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a gnnsec checkpoint")
    if payload.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload.get('format_version')} is not supported "
            f"(this gnnsec reads format {CHECKPOINT_FORMAT_VERSION})"
        )
    if payload.get("schema_version") != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path}: the model was trained on schema version {payload.get('schema_version')}, but this gnnsec "
            f"uses schema version {SCHEMA_VERSION}; retrain with `gnnsec train`"
        )
    model = GraphAutoencoder(ModelConfig.from_dict(payload["model_config"]))
    model.load_state_dict(payload["state_dict"])
    model.to(device).eval()
    window = payload.get("train_window") or [None, None]
    return Checkpoint(
        model=model,
        spec=FeatureSpec.from_dict(payload["feature_spec"]),
        detector=Detector.from_state(payload["detector"]) if payload.get("detector") else None,
        train_window=(window[0], window[1]),
        metrics=payload.get("metrics") or {},
        train_config=payload.get("train_config") or {},
        model_id=payload["model_id"],
        created_at=float(payload["created_at"]),
        schema_version=payload["schema_version"],
    )
