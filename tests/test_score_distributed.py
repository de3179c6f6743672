"""``gnnsec score --with-gnn --nproc N``: the graph model's encoding split by node across gloo processes gives
what one process gives, each rank computing only its own shard of nodes and the edges into and out of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import neo4j
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from daily_activity import write_activity
from gnn_helpers import make_estate, single_thread, tiny_train_config

from gnnsec.errors import InputError
from gnnsec.gnn.distributed_embed import ShardRecord, embed_partitioned, embed_shards, node_shards
from gnnsec.gnn.embed import Embeddings, embed
from gnnsec.gnn.features import FeatureSpec, fit_feature_spec
from gnnsec.gnn.model import GraphAutoencoder, ModelConfig
from gnnsec.snapshot import Snapshot

__all__ = ["single_thread"]
pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without torch.distributed"),
]

TOLERANCE = 1e-5  # float32 sums in another order


def _model(spec: FeatureSpec, kind: str = "rgcn") -> GraphAutoencoder:
    """A small untrained RGCN whose adapters and mask token are not the identity/zero, so every term counts."""
    torch.manual_seed(0)
    model = GraphAutoencoder(ModelConfig(kind=kind, hidden_dim=32, out_dim=16, decoder_hidden_dim=32, num_bases=4,
                                         active_dim=spec.width))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".adapters." in name or name == "mask_token":
                param.normal_(0.0, 0.2)
    return model.eval()


def _assert_same(one: Embeddings, split: Embeddings) -> None:
    assert split.node_uid == one.node_uid
    np.testing.assert_array_equal(split.node_label, one.node_label)
    np.testing.assert_array_equal(split.edge_index, one.edge_index)
    np.testing.assert_array_equal(split.edge_type, one.edge_type)
    np.testing.assert_array_equal(split.features, one.features)
    for name in ("z", "recon_error", "edge_logit"):
        a, b = getattr(one, name), getattr(split, name)
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape, name
        np.testing.assert_allclose(b, a, rtol=TOLERANCE, atol=TOLERANCE, err_msg=name)


def _assert_partition(records: list[ShardRecord], snapshot: Snapshot) -> None:
    """The node shards are disjoint and cover every node once; so are the edges each rank ran and scored."""
    assert [r.rank for r in records] == list(range(len(records)))
    nodes = np.concatenate([r.nodes for r in records])
    assert sorted(nodes.tolist()) == list(range(snapshot.num_nodes))  # disjoint + covering: each node once
    assert all(r.nodes.size for r in records)
    assert sum(r.message_edges for r in records) == 2 * snapshot.num_edges  # each (inverse-augmented) edge once
    logit_edges = np.concatenate([r.logit_edges for r in records])
    assert sorted(logit_edges.tolist()) == list(range(snapshot.num_edges))
    src = snapshot.edge_index[0]
    for r in records:  # a rank scores the edges leaving its own shard
        assert set(src[r.logit_edges].tolist()) <= set(r.nodes.tolist())


@pytest.fixture(scope="module")
def estate() -> tuple[Snapshot, FeatureSpec, GraphAutoencoder]:
    snapshot, _ = make_estate(communities=4, injected=2, seed=0)
    spec = fit_feature_spec(snapshot)
    return snapshot, spec, _model(spec)


def test_two_ranks_give_what_one_process_gives(estate: tuple[Snapshot, FeatureSpec, GraphAutoencoder]) -> None:
    snapshot, spec, model = estate
    one = embed(model, snapshot, spec, device="cpu", seed=5)
    split, records = embed_shards(model, snapshot, spec, 2, device="cpu", seed=5)
    _assert_same(one, split)
    _assert_partition(records, snapshot)
    assert len(records) == 2 and all(r.seconds > 0 for r in records)


def test_three_uneven_shards_and_other_passes(estate: tuple[Snapshot, FeatureSpec, GraphAutoencoder]) -> None:
    snapshot, spec, model = estate
    split, records = embed_shards(model, snapshot, spec, 3, device="cpu", recon_passes=3, seed=1)
    _assert_same(embed(model, snapshot, spec, device="cpu", recon_passes=3, seed=1), split)
    _assert_partition(records, snapshot)
    assert len({r.nodes.size for r in records}) > 1  # shards of different sizes: the padded all_gather is used


def test_shards_balance_rows_plus_in_edges() -> None:
    bounds = node_shards(torch.tensor([9, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 2)  # cost 10 | 9 × 1
    assert bounds == [0, 1, 10]
    assert node_shards(torch.zeros(5, dtype=torch.long), 2) == [0, 3, 5]
    assert node_shards(torch.zeros(2, dtype=torch.long), 4) == [0, 1, 1, 2, 2]  # more ranks than nodes: empty
    assert node_shards(torch.zeros(0, dtype=torch.long), 3) == [0, 0, 0, 0]


def test_one_process_is_embed_and_bad_requests_are_input_errors(
    estate: tuple[Snapshot, FeatureSpec, GraphAutoencoder],
) -> None:
    snapshot, spec, model = estate
    one = embed_partitioned(model, snapshot, spec, 1, device="cpu")
    np.testing.assert_array_equal(one.z, embed(model, snapshot, spec, device="cpu").z)
    with pytest.raises(InputError, match="at least 1"):
        embed_partitioned(model, snapshot, spec, 0, device="cpu")
    with pytest.raises(InputError, match="'mlp' encoder runs in one process"):
        embed_partitioned(_model(spec, kind="mlp"), snapshot, spec, 2, device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            embed_partitioned(model, snapshot, spec, 2, device="cuda")


def test_nproc_without_the_graph_model_is_a_usage_error() -> None:
    from gnnsec.cli.main import cli

    result = CliRunner().invoke(cli, ["score", "--nproc", "2"], env={"NEO4J_URI": "bolt://127.0.0.1:1"})
    assert result.exit_code == 2, result.output
    assert "--with-gnn" in result.output and "vectorised" in result.output


# ---- the CLI against the real Neo4j ------------------------------------------------------------------------

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 6
USERS = 12
LAST = DAY0 + timedelta(days=DAYS - 1)


def _load(driver: neo4j.Driver) -> None:
    """12 users in two accounts read a bucket daily from their own address and assume a role; on the last day u0
    also calls from a new address and reads a second bucket."""
    rows = []
    for day in range(DAYS):
        window = DAY0 + timedelta(days=day)
        for i in range(USERS):
            rows.append({"src": f"u{i}", "type": "ACCESS", "dst": f"bucket{i % 2}", "w": window, "h": 10})
            rows.append({"src": f"u{i}", "type": "AUTHENTICATES_FROM", "dst": f"ip:10.0.0.{i}", "w": window, "h": 9})
            rows.append({"src": f"u{i}", "type": "ASSUMES_ROLE", "dst": f"role{i % 3}", "w": window, "h": 11})
    rows += [{"src": "u0", "type": "AUTHENTICATES_FROM", "dst": "ip:203.0.113.9", "w": LAST, "h": 3},
             {"src": "u0", "type": "ACCESS", "dst": "secret", "w": LAST, "h": 3}]
    driver.execute_query(
        """
        UNWIND range(0, $users - 1) AS i
        MERGE (u:User {uid: 'u' + i}) SET u.cloud = 'aws', u.account = CASE WHEN i < 6 THEN 'A' ELSE 'B' END
        MERGE (:IP {uid: 'ip:10.0.0.' + i})
        """, users=USERS)
    driver.execute_query(
        """
        UNWIND ['bucket0', 'bucket1', 'secret'] AS b MERGE (:Bucket {uid: b, cloud: 'aws', account: 'A'})
        WITH count(*) AS done UNWIND ['role0', 'role1', 'role2'] AS r MERGE (:Role {uid: r, cloud: 'aws', account: 'A'})
        WITH count(*) AS done MERGE (:IP {uid: 'ip:203.0.113.9'})
        """)
    write_activity(driver, rows)


def _written(driver: neo4j.Driver) -> tuple[dict[str, Any], dict[tuple[str, str, str], Any]]:
    nodes, _, _ = driver.execute_query(
        "MATCH (n) WHERE n.anomaly_score IS NOT NULL RETURN n.uid AS uid, n.anomaly_score AS s, n.anomaly_raw AS raw, "
        "n.anomaly_rank AS rank, n.anomalous AS flag")
    edges, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) WHERE r.window = $w AND r.edge_anomaly IS NOT NULL "
        "RETURN a.uid AS a, type(r) AS t, b.uid AS b, r.distmult_score AS logit, r.edge_anomaly AS anomaly", w=LAST)
    return ({r["uid"]: (r["s"], r["raw"], r["rank"], r["flag"]) for r in nodes},
            {(r["a"], r["t"], r["b"]): (r["logit"], r["anomaly"]) for r in edges})


@pytest.mark.integration
def test_cli_scores_the_same_with_two_processes(clean_db: neo4j.Driver, neo4j_settings: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from gnnsec.cli.main import cli
    from gnnsec.gnn import distributed_embed
    from gnnsec.gnn.checkpoint import save_checkpoint
    from gnnsec.gnn.pipeline import train_checkpoint
    from gnnsec.graphdb.export import export_snapshot

    _load(clean_db)
    snapshot = export_snapshot(clean_db, database=neo4j_settings.database)
    checkpoint, _ = train_checkpoint(snapshot, tiny_train_config(epochs=2))
    model = save_checkpoint(tmp_path / "tiny.pt", checkpoint)
    env = {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,
           "NEO4J_PASSWORD": neo4j_settings.password, "NEO4J_DATABASE": neo4j_settings.database,
           "GNNSEC_HOME": str(tmp_path / "home")}
    shards: list[list[ShardRecord]] = []

    def spy(*args: Any, **kwargs: Any) -> tuple[Embeddings, list[ShardRecord]]:
        out = embed_shards(*args, **kwargs)
        shards.append(out[1])
        return out

    monkeypatch.setattr(distributed_embed, "embed_shards", spy)  # a witness only: the real ranks still run
    written = []
    for nproc in ("1", "2"):
        result = CliRunner().invoke(cli, ["score", "--since", LAST.date().isoformat(), "--with-gnn", "--model",
                                          str(model), "--device", "cpu", "--nproc", nproc, "--format", "json"],
                                    env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        written.append(_written(clean_db))
    assert [len(records) for records in shards] == [0, 2]  # --nproc 1 is embed(); --nproc 2 split the nodes
    assert sorted(np.concatenate([r.nodes for r in shards[1]]).tolist()) == list(range(snapshot.num_nodes))
    (nodes_1, edges_1), (nodes_2, edges_2) = written
    assert nodes_1 and edges_1 and nodes_1.keys() == nodes_2.keys() and edges_1.keys() == edges_2.keys()
    for uid, (score, raw, rank, flag) in nodes_1.items():
        assert nodes_2[uid] == (pytest.approx(score, abs=1e-6), pytest.approx(raw, abs=1e-5), rank, flag), uid
    for key, (logit, anomaly) in edges_1.items():
        assert logit is not None, key  # the graph model's DistMult logit was written
        assert edges_2[key] == (pytest.approx(logit, abs=1e-4), pytest.approx(anomaly, abs=1e-6)), key
