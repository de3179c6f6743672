"""Checkpoints round-trip in a fresh process, load with weights_only, and refuse other schema versions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gnn_helpers import make_estate, single_thread, tiny_train_config

import gnnsec.gnn.checkpoint as checkpoint_module
from gnnsec.gnn.checkpoint import CheckpointError, SchemaVersionError, load_checkpoint, save_checkpoint
from gnnsec.gnn.embed import embed
from gnnsec.gnn.pipeline import score_snapshot, train_checkpoint
from gnnsec.schema import SCHEMA_VERSION

__all__ = ["single_thread"]
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    torch.set_num_threads(1)
    snap, _ = make_estate(communities=4, seed=0)
    ckpt, _ = train_checkpoint(snap, tiny_train_config(epochs=5))
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", ckpt)
    return path, ckpt


def test_checkpoint_holds_everything_scoring_needs_in_plain_types(trained: tuple[Path, object]) -> None:
    path, _ = trained
    payload = torch.load(path, map_location="cpu", weights_only=True)  # would raise on pickled objects
    assert payload["schema_version"] == SCHEMA_VERSION
    assert set(payload) >= {"state_dict", "model_config", "feature_spec", "detector", "train_window", "metrics"}
    assert payload["feature_spec"]["columns"][0] == "label:User"
    assert payload["metrics"]["parameters"]["total"] > 0
    assert payload["train_window"][1] > payload["train_window"][0]


def test_checkpoint_round_trip_gives_identical_scores_on_cpu(trained: tuple[Path, object]) -> None:
    path, original = trained
    loaded = load_checkpoint(path, device="cpu")
    snap, _ = make_estate(communities=4, seed=0, injected=1)
    a = score_snapshot(original, snap, device="cpu")  # type: ignore[arg-type]
    b = score_snapshot(loaded, snap, device="cpu")
    assert np.array_equal(a.embeddings.z, b.embeddings.z)
    assert np.array_equal(a.nodes.score, b.nodes.score)
    assert np.array_equal(a.edge_anomaly, b.edge_anomaly)
    assert loaded.model_id == original.model_id  # type: ignore[attr-defined]
    assert loaded.spec.columns == original.spec.columns  # type: ignore[attr-defined]


def test_checkpoint_loads_and_runs_in_a_fresh_process(trained: tuple[Path, object], tmp_path: Path) -> None:
    path, original = trained
    snap, _ = make_estate(communities=4, seed=0)
    expected = embed(original.model, snap, original.spec, device="cpu").z  # type: ignore[attr-defined]
    out = tmp_path / "z.npy"
    script = (
        "import sys, numpy as np; sys.path.insert(0, 'tests');"
        "from gnn_helpers import make_estate;"
        "from gnnsec.gnn.checkpoint import load_checkpoint; from gnnsec.gnn.embed import embed;"
        f"c = load_checkpoint({str(path)!r}, device='cpu'); s, _ = make_estate(communities=4, seed=0);"
        f"np.save({str(out)!r}, embed(c.model, s, c.spec, device='cpu').z)"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parent.parent, timeout=120)
    assert np.allclose(np.load(out), expected, atol=1e-5)


def test_checkpoint_of_another_schema_version_is_refused_naming_both(
    trained: tuple[Path, object], tmp_path: Path
) -> None:
    path, _ = trained
    payload = torch.load(path, map_location="cpu", weights_only=True)
    payload["schema_version"] = SCHEMA_VERSION + 41
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    with pytest.raises(SchemaVersionError) as info:
        load_checkpoint(old)
    assert f"schema version {SCHEMA_VERSION + 41}" in str(info.value)
    assert f"schema version {SCHEMA_VERSION};" in str(info.value)


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"hello": 1}, other)
    with pytest.raises(CheckpointError, match="not a gnnsec checkpoint"):
        load_checkpoint(other)


def test_save_is_atomic_and_leaves_no_temporary_file(trained: tuple[Path, object], tmp_path: Path) -> None:
    _, ckpt = trained
    path = save_checkpoint(tmp_path / "nested" / "m.pt", ckpt)  # type: ignore[arg-type]
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    assert checkpoint_module.CHECKPOINT_FORMAT == "gnnsec-checkpoint"
