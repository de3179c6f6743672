"""Parity: what the loader writes and the exporter reads back equals what ``staging_to_snapshot`` builds in
memory from the same files. ``gnnsec eval`` on a directory uses the in-memory path, ``gnnsec score`` the
database: if the two disagreed, evaluation would measure a graph the product never sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import neo4j
import numpy as np

from gnnsec.evaluate.data import snapshot_from_files
from gnnsec.graphdb.export import export_snapshot
from gnnsec.graphdb.ingest import ingest
from gnnsec.ingest.pipeline import discover
from gnnsec.snapshot import Snapshot
from gnnsec.synth import generate

COMPARED_NODE_PROPS = ("first_seen", "last_seen", "name", "cloud", "account_id", "region")


def _nodes(snapshot: Snapshot) -> dict[tuple[int, str], dict[str, Any]]:
    return {(int(label), uid): {k: props.get(k) for k in COMPARED_NODE_PROPS}
            for uid, label, props in zip(snapshot.node_uid, snapshot.node_label, snapshot.node_props, strict=True)}


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)  # NaN (no time) never equals itself


def _edges(snapshot: Snapshot) -> dict[tuple[int, str, str, str | None], tuple[Any, ...]]:
    out = {}
    for i in range(snapshot.num_edges):
        src, dst = snapshot.edge_index[:, i]
        key = (int(snapshot.edge_type[i]), snapshot.node_uid[src], snapshot.node_uid[dst], snapshot.edge_window[i])
        out[key] = (float(snapshot.edge_count[i]), _number(snapshot.edge_first_seen[i]),
                    _number(snapshot.edge_last_seen[i]), sorted(snapshot.edge_actions[i]))
    return out


def test_loader_then_exporter_equals_the_in_memory_builder_on_a_generated_estate(
        tmp_path: Path, clean_db: neo4j.Driver) -> None:
    estate = tmp_path / "estate"
    generate(estate, seed=5, size="small", days=2)
    items, unrecognised = discover([estate])
    assert items and not unrecognised
    ingest(clean_db, items)
    stored = export_snapshot(clean_db)
    built = snapshot_from_files(estate)

    stored_nodes, built_nodes = _nodes(stored), _nodes(built)
    assert stored_nodes.keys() == built_nodes.keys()
    different = [key for key in built_nodes if stored_nodes[key] != built_nodes[key]]
    assert not different, [(key, stored_nodes[key], built_nodes[key]) for key in different[:3]]

    stored_edges, built_edges = _edges(stored), _edges(built)
    assert stored_edges.keys() == built_edges.keys()
    different = [key for key in built_edges if stored_edges[key] != built_edges[key]]
    assert not different, [(key, stored_edges[key], built_edges[key]) for key in different[:3]]
    assert np.isfinite(built.edge_first_seen).sum() > 1000  # activity with times was compared, not only NaNs
    assert built.num_edges > 1000 and built.num_nodes > 100  # a real estate, not a toy
