"""``gnnsec eval --data DIR`` reads its files in worker processes (``--workers``): the snapshot must be the one a
single process builds, a bad file must still stop it naming that file, and reading reports files done of a total.
No database: evaluation reads files through the ingest adapters and stagings alone."""

from __future__ import annotations

import itertools
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gnnsec.evaluate.data import READ_CHUNK_FILES, snapshot_from_files
from gnnsec.ingest.pipeline import IngestError, discover
from gnnsec.snapshot import Snapshot
from gnnsec.synth import generate


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reading") / "estate"
    generate(path, seed=5, size="small", days=2)  # about 600 files: a score of 32-file tasks for the workers
    return path


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN (no time) equals NaN, through lists and dicts."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def assert_same_snapshot(one: Snapshot, other: Snapshot) -> None:
    assert one.node_uid == other.node_uid
    np.testing.assert_array_equal(one.node_label, other.node_label)
    different = [i for i, (a, b) in enumerate(zip(one.node_props, other.node_props, strict=True)) if not _same(a, b)]
    assert not different, [(one.node_props[i], other.node_props[i]) for i in different[:2]]
    for name in ("edge_index", "edge_type", "edge_count", "edge_first_seen", "edge_last_seen"):
        np.testing.assert_array_equal(getattr(one, name), getattr(other, name), err_msg=name)  # NaNs equal here
    assert one.edge_window == other.edge_window
    assert one.edge_actions == other.edge_actions


def test_workers_build_the_snapshot_one_process_builds(estate: Path) -> None:
    alone = snapshot_from_files(estate)
    assert alone.num_nodes > 100 and alone.num_edges > 1000  # a real estate, not a toy
    assert_same_snapshot(snapshot_from_files(estate, workers=2), alone)
    assert_same_snapshot(snapshot_from_files(estate, workers=3), alone)


def test_a_bad_file_in_the_middle_stops_the_workers_naming_it(estate: Path, tmp_path: Path) -> None:
    broken = tmp_path / "estate"
    shutil.copytree(estate, broken)
    items, _ = discover([broken])
    plain = [item.path for item in items if item.path.suffix == ".json" and "labels" not in item.path.parts]
    bad = plain[len(plain) // 2]
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # cut off mid-record; its head still sniffs
    messages = []
    for workers in (1, 2):
        with pytest.raises(IngestError) as caught:
            snapshot_from_files(broken, workers=workers)
        messages.append(str(caught.value))
    assert str(bad) in messages[0]
    assert messages[1] == messages[0]  # the same file and record named, whichever process read it


class Recorder:
    """What :class:`gnnsec.cli.common.Work` would be told."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, int | None, str]] = []
        self.done: list[tuple[int, str]] = []

    def phase(self, text: str, *, total: int | None = None, unit: str = "") -> None:
        self.phases.append((text, total, unit))

    def advance(self, count: int = 1, *, detail: str | None = None, total: int | None = None) -> None:
        self.done.append((count, detail or ""))


@pytest.mark.parametrize("workers", [1, 2])
def test_reading_reports_files_done_of_the_total_in_order(estate: Path, workers: int) -> None:
    items, _ = discover([estate])
    names = [str(item.path.relative_to(estate)) for item in items if "labels" not in item.path.parts]
    recorder = Recorder()
    snapshot_from_files(estate, progress=recorder, workers=workers)
    assert recorder.phases[0] == (f"staging {estate}", len(names), "files")
    counts, details = zip(*recorder.done, strict=True)
    assert sum(counts) == len(names)
    assert list(details) == [names[i - 1] for i in itertools.accumulate(counts)]  # the last file of each step
    assert max(counts) == (1 if workers == 1 else READ_CHUNK_FILES)
    assert recorder.phases[-1][0].startswith("building the snapshot")


def test_the_run_count_eval_shows_is_the_number_of_runs_it_makes(estate: Path) -> None:
    from gnnsec.evaluate.data import EvalData, read_entity_labels
    from gnnsec.evaluate.runner import EvalConfig, count_runs, run_evaluation

    snapshot = snapshot_from_files(estate)
    entities = {uid: e for uid, e in read_entity_labels(estate / "labels" / "entities.csv").items()
                if uid in set(snapshot.node_uid)}
    data = EvalData(snapshot, entities)
    for config in (EvalConfig(models=("iforest",), split="campaign", time_fraction=0.5),
                   EvalConfig(models=("iforest",), split="entity", folds=2, seeds=2)):
        assert count_runs(data, config) == len(run_evaluation(data, config)) > 0
    # what is not run here: GNN rows twice in mode "both", and relation subsets for the RGCN alone
    config = EvalConfig(models=("rgcn", "gcn", "iforest"), mode="both", relations=("all", "identity"), seeds=3)
    assert count_runs(data, config) == 3 * ((2 + 2 + 1) + 2)
