"""A scored synthetic estate in the session's Neo4j, shared by the end-to-end tests.

Costs, measured on 2 busy cores: generating ``synth --size small --seed 3`` takes ~0.3 s, the
real ingest path 20-45 s (~340 small files, a few transactions each), training 15 epochs of a
small RGCN ~4 s, scoring and writing back ~5 s.  So the files, the ingest and the trained
checkpoint happen once per session (``scored_estate_model``), and ``scored_estate`` (module scope)
makes sure the graph holds exactly that estate with one fresh scoring: other modules wipe the
database with ``clean_db`` between ours, and then a Cypher-level copy of what ingest wrote (every
node, label, relationship and property) is restored in about a second.  Each module scores with a
freshly loaded checkpoint, since ``score_graph`` grows the checkpoint's benign reference in place.

Import the fixtures in a test module (``tests/`` is on ``sys.path``, as for ``gnn_helpers``); the
functions are named ``*_fixture`` so the test parameters ``scored_estate`` don't shadow an import:
``from scored_estate import scored_estate_fixture, scored_estate_model_fixture  # noqa: F401``.
"""

from __future__ import annotations

import csv
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import neo4j
import pytest

from gnnsec.config import Neo4jSettings
from gnnsec.gnn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from gnnsec.graphdb.export import SnapshotFilter
from gnnsec.workflow import ScoreResult, configure_cpu_threads, score_graph, train_from_graph

SEED = 3
SIZE = "small"
MODEL_ID = "scored-estate-test"
EPOCHS = 15
CHUNK = 5000

TIMINGS: dict[str, float] = {}
"""Seconds per phase of the last build, for the report (``pytest -s`` prints nothing by itself)."""


@dataclass(frozen=True, slots=True)
class EstateModel:
    """What the session builds once: the generated files, their labels and the trained checkpoint."""

    synth_dir: Path
    labels: dict[str, str]  # uid → campaign, from labels/entities.csv
    checkpoint_path: Path
    dump: GraphDump


@dataclass(slots=True)
class ScoredEstate:
    """The estate as loaded and scored in Neo4j for one test module."""

    driver: neo4j.Driver
    database: str | None
    settings: Neo4jSettings
    synth_dir: Path
    labels: dict[str, str]
    checkpoint_path: Path
    result: ScoreResult
    timings: dict[str, float] = field(default_factory=dict)

    def checkpoint(self) -> Checkpoint:
        """A fresh copy of the trained model (scoring may grow its benign reference in place)."""
        return load_checkpoint(self.checkpoint_path)

    def rescore(self) -> ScoreResult:
        """Score the whole graph again with a fresh checkpoint; the new run replaces the old one."""
        self.result = score_graph(self.driver, self.checkpoint(), MODEL_ID, SnapshotFilter(), database=self.database)
        return self.result


def read_labels(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["uid"]: row["campaign"] for row in csv.DictReader(handle)}


def _wipe(driver: neo4j.Driver, database: str | None) -> None:
    """Delete everything (``CALL … IN TRANSACTIONS`` needs an auto-commit transaction: ``session.run``)."""
    with driver.session(database=database) as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()


def _ingest(driver: neo4j.Driver, synth_dir: Path, database: str | None) -> None:
    from gnnsec.graphdb.ingest import ingest
    from gnnsec.ingest.pipeline import discover

    items, unrecognised = discover([synth_dir])
    assert not unrecognised, f"the generator wrote files no adapter reads: {unrecognised}"
    ingest(driver, items, database=database)


@dataclass(frozen=True, slots=True)
class GraphDump:
    """Every node and relationship of the database as plain rows, to restore it without re-ingesting."""

    nodes: list[dict[str, Any]]  # id (elementId), labels, props
    relationships: list[dict[str, Any]]  # a, b (elementIds), type, props

    @property
    def counts(self) -> tuple[int, int]:
        return len(self.nodes), len(self.relationships)


def dump_graph(driver: neo4j.Driver, database: str | None) -> GraphDump:
    nodes, _, _ = driver.execute_query(
        "MATCH (n) RETURN elementId(n) AS id, labels(n) AS labels, properties(n) AS props", database_=database
    )
    rels, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN elementId(a) AS a, elementId(b) AS b, type(r) AS type, properties(r) AS props",
        database_=database,
    )
    return GraphDump([r.data() for r in nodes], [r.data() for r in rels])


def restore_graph(driver: neo4j.Driver, dump: GraphDump, database: str | None) -> None:
    """Empty the database and recreate the dump (labels and types come from the dump, never from input)."""
    _wipe(driver, database)
    new_id: dict[str, str] = {}
    by_labels: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for node in dump.nodes:
        by_labels[tuple(sorted(node["labels"]))].append({"id": node["id"], "props": node["props"]})
    for labels, rows in by_labels.items():
        label_text = "".join(f":`{label}`" for label in labels)
        for start in range(0, len(rows), CHUNK):
            created, _, _ = driver.execute_query(
                f"UNWIND $rows AS row CREATE (n{label_text}) SET n = row.props "
                "RETURN row.id AS old, elementId(n) AS new",
                rows=rows[start : start + CHUNK], database_=database,
            )
            new_id.update((r["old"], r["new"]) for r in created)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rel in dump.relationships:
        by_type[rel["type"]].append({"a": new_id[rel["a"]], "b": new_id[rel["b"]], "props": rel["props"]})
    for rel_type, rows in by_type.items():
        for start in range(0, len(rows), CHUNK):
            driver.execute_query(
                "UNWIND $rows AS row MATCH (a) WHERE elementId(a) = row.a MATCH (b) WHERE elementId(b) = row.b "
                f"CREATE (a)-[r:`{rel_type}`]->(b) SET r = row.props",
                rows=rows[start : start + CHUNK], database_=database,
            )


def _graph_counts(driver: neo4j.Driver, database: str | None) -> tuple[int, int]:
    """Nodes and relationships, leaving out the ``:ScoringRun`` nodes scoring adds."""
    records, _, _ = driver.execute_query(
        "MATCH (n) WHERE NOT n:ScoringRun "
        "OPTIONAL MATCH (n)-[r]->() RETURN count(DISTINCT n) AS nodes, count(r) AS rels",
        database_=database,
    )
    return int(records[0]["nodes"]), int(records[0]["rels"])


@pytest.fixture(scope="session", name="scored_estate_model")
def scored_estate_model_fixture(
    tmp_path_factory: pytest.TempPathFactory, driver: neo4j.Driver, neo4j_settings: Neo4jSettings
) -> EstateModel:
    """Generate ``synth --size small --seed 3``, ingest it into an emptied database, train a small RGCN."""
    from gnnsec.gnn.model import ModelConfig
    from gnnsec.gnn.train import TrainConfig
    from gnnsec.synth import generate

    database = neo4j_settings.database
    configure_cpu_threads()
    root = tmp_path_factory.mktemp("scored-estate")
    began = time.perf_counter()
    generate(root / "synth", seed=SEED, size=SIZE)
    TIMINGS["generate"] = time.perf_counter() - began

    began = time.perf_counter()
    _wipe(driver, database)
    _ingest(driver, root / "synth", database)
    dump = dump_graph(driver, database)
    TIMINGS["ingest"] = time.perf_counter() - began

    began = time.perf_counter()
    config = TrainConfig(
        model=ModelConfig(hidden_dim=64, out_dim=32, decoder_hidden_dim=64, num_bases=4),
        epochs=EPOCHS, patience=EPOCHS, seed=SEED, device="cpu",
    )
    checkpoint, _, _ = train_from_graph(driver, SnapshotFilter(), config, database=database)
    checkpoint_path = save_checkpoint(root / f"{MODEL_ID}.pt", checkpoint)
    TIMINGS["train"] = time.perf_counter() - began

    return EstateModel(root / "synth", read_labels(root / "synth" / "labels" / "entities.csv"), checkpoint_path,
                       dump)


@pytest.fixture(scope="module", name="scored_estate")
def scored_estate_fixture(
    scored_estate_model: EstateModel, driver: neo4j.Driver, neo4j_settings: Neo4jSettings
) -> Iterator[ScoredEstate]:
    """The estate in Neo4j (restored when another module wiped or changed the graph), freshly scored,
    with no analyst verdicts left from earlier tests."""
    database = neo4j_settings.database
    timings: dict[str, float] = {}
    began = time.perf_counter()
    expected = scored_estate_model.dump.counts
    if _graph_counts(driver, database) != expected:
        restore_graph(driver, scored_estate_model.dump, database)
        assert _graph_counts(driver, database) == expected, "restoring the estate gave a different graph"
    driver.execute_query(
        "MATCH (n) WHERE n.analyst_label IS NOT NULL REMOVE n.analyst_label, n.analyst, n.analyst_at, n.analyst_note",
        database_=database,
    )
    timings["restore"] = time.perf_counter() - began
    began = time.perf_counter()
    estate = ScoredEstate(
        driver=driver,
        database=database,
        settings=neo4j_settings,
        synth_dir=scored_estate_model.synth_dir,
        labels=scored_estate_model.labels,
        checkpoint_path=scored_estate_model.checkpoint_path,
        result=score_graph(driver, load_checkpoint(scored_estate_model.checkpoint_path), MODEL_ID, SnapshotFilter(),
                           database=database),
        timings=timings,
    )
    timings["score"] = time.perf_counter() - began
    TIMINGS.update({f"module {k}": v for k, v in timings.items()})
    yield estate
