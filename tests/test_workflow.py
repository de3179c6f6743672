"""End to end over a real Neo4j: a generated estate is ingested, a model trained, the graph scored.

The scores land on the graph itself (that is where analysts hunt), so these tests read them back
with Cypher: every entity scored and ranked, one ``:ScoringRun`` per run, relationships scored,
re-scoring replaces the previous scores, analyst feedback changes the next scoring, and the
generator's labelled attack entities score above the benign ones.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from scored_estate import MODEL_ID, ScoredEstate, scored_estate_fixture, scored_estate_model_fixture  # noqa: F401

from gnnsec import schema
from gnnsec.errors import InputError
from gnnsec.graphdb.export import SnapshotFilter
from gnnsec.workflow import explain_uid, record_feedback, score_graph

pytestmark = pytest.mark.integration

ENTITY = "any(label IN labels(n) WHERE label IN $labels)"


def query(estate: ScoredEstate, cypher: str, **params: Any) -> list[dict[str, Any]]:
    records, _, _ = estate.driver.execute_query(
        cypher, {"labels": list(schema.NODE_LABELS), **params}, database_=estate.database
    )
    return [r.data() for r in records]


def latest_run(estate: ScoredEstate) -> dict[str, Any]:
    rows = query(estate, "MATCH (r:ScoringRun) RETURN properties(r) AS run ORDER BY r.scored_at DESC LIMIT 1")
    return rows[0]["run"]


def scores_by_uid(estate: ScoredEstate) -> dict[str, float]:
    return {s.uid: s.score for s in estate.result.node_scores}


def test_every_entity_node_carries_a_score_in_the_unit_interval_a_rank_the_time_and_the_model(
    scored_estate: ScoredEstate,
) -> None:
    rows = query(
        scored_estate,
        f"MATCH (n) WHERE {ENTITY} RETURN count(n) AS nodes, "
        "count(n.anomaly_score) AS scored, min(n.anomaly_score) AS low, max(n.anomaly_score) AS high, "
        "min(n.anomaly_rank) AS best_rank, count(n.scored_at) AS timed, collect(DISTINCT n.model_id) AS models",
    )[0]
    assert rows["nodes"] == scored_estate.result.snapshot.num_nodes
    assert rows["scored"] == rows["nodes"] == rows["timed"]
    assert 0.0 <= rows["low"] <= rows["high"] <= 1.0
    assert rows["best_rank"] == 1
    assert rows["models"] == [MODEL_ID]


def test_anomaly_rank_numbers_each_label_from_1_by_descending_score(scored_estate: ScoredEstate) -> None:
    rows = query(scored_estate, f"MATCH (n) WHERE {ENTITY} RETURN labels(n)[0] AS label, n.anomaly_rank AS rank")
    ranks: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        ranks[row["label"]].append(row["rank"])
    for label, seen in ranks.items():
        assert sorted(seen) == list(range(1, len(seen) + 1)), label
    top = query(
        scored_estate,
        "MATCH (u:User) RETURN u.anomaly_rank AS rank, u.anomaly_score AS score ORDER BY rank",
    )
    assert [r["rank"] for r in top] == list(range(1, len(top) + 1))
    assert all(a["score"] >= b["score"] for a, b in pairwise(top))


def test_one_scoring_run_node_records_the_snapshot_s_counts(scored_estate: ScoredEstate) -> None:
    run = scored_estate.result.run
    stored = query(scored_estate, "MATCH (r:ScoringRun {run_id: $id}) RETURN properties(r) AS run", id=run.run_id)
    assert len(stored) == 1
    props = stored[0]["run"]
    assert props["nodes_scored"] == scored_estate.result.snapshot.num_nodes
    assert props["edges_scored"] == scored_estate.result.snapshot.num_edges
    assert props["model_id"] == MODEL_ID
    assert props["threshold"] == pytest.approx(run.threshold)
    flagged = query(scored_estate, f"MATCH (n) WHERE {ENTITY} AND n.anomalous RETURN count(n) AS flagged")
    assert props["anomalous_nodes"] == flagged[0]["flagged"] == run.anomalous_nodes
    assert 0.0 <= props["snapshot_score"] <= 1.0
    assert props["seconds"] > 0


def test_every_relationship_of_the_snapshot_carries_edge_anomaly_in_the_unit_interval(
    scored_estate: ScoredEstate,
) -> None:
    rows = query(
        scored_estate,
        f"MATCH (n)-[r]->() WHERE {ENTITY} RETURN count(r) AS rels, count(r.edge_anomaly) AS scored, "
        "count(r.distmult_score) AS plausibility, min(r.edge_anomaly) AS low, max(r.edge_anomaly) AS high",
    )[0]
    assert rows["scored"] == rows["plausibility"] == scored_estate.result.snapshot.num_edges == rows["rels"]
    assert 0.0 <= rows["low"] <= rows["high"] <= 1.0


def test_explain_gives_reasons_for_the_top_scored_node_and_they_are_written_onto_it(
    scored_estate: ScoredEstate,
) -> None:
    top = query(
        scored_estate,
        f"MATCH (n) WHERE {ENTITY} AND n.anomalous RETURN n.uid AS uid, n.anomaly_reasons AS reasons "
        "ORDER BY n.anomaly_score DESC, n.uid LIMIT 1",
    )[0]
    assert top["reasons"], "an anomalous node should carry anomaly_reasons for Browser users"
    explanation = explain_uid(scored_estate.driver, scored_estate.checkpoint(), top["uid"],
                              database=scored_estate.database, device="cpu")
    assert explanation.uid == top["uid"]
    assert explanation.reasons()
    assert explanation.unusual_edges, "a scored node in a connected estate has relationships to explain"
    with pytest.raises(InputError, match="no node with uid"):
        explain_uid(scored_estate.driver, scored_estate.checkpoint(), "arn:aws:iam::000000000000:user/nobody",
                    database=scored_estate.database, device="cpu")


def test_labelled_attack_entities_score_above_the_benign_median_on_average(scored_estate: ScoredEstate) -> None:
    scores = scores_by_uid(scored_estate)
    order = sorted(scores, key=lambda uid: scores[uid])
    percentile = {uid: 100.0 * (i + 0.5) / len(order) for i, uid in enumerate(order)}
    malicious = [uid for uid in scored_estate.labels if uid in scores]
    benign = [uid for uid in scores if uid not in scored_estate.labels]
    assert len(malicious) >= 0.8 * len(scored_estate.labels), "most labelled entities should be in the graph"
    malicious_mean = float(np.mean([percentile[u] for u in malicious]))
    benign_median = float(np.median([percentile[u] for u in benign]))
    assert malicious_mean > benign_median, (malicious_mean, benign_median)


def test_record_feedback_stores_the_verdict_and_returns_the_uids_it_did_not_find(
    scored_estate: ScoredEstate,
) -> None:
    user = query(scored_estate, "MATCH (u:User) RETURN u.uid AS uid ORDER BY u.uid LIMIT 1")[0]["uid"]
    missing = "arn:aws:iam::000000000000:user/nobody"
    try:
        assert record_feedback(scored_estate.driver, [user, missing], "malicious", "analyst-7", note="phished",
                               database=scored_estate.database) == [missing]
        stored = query(scored_estate, "MATCH (u:User {uid: $uid}) RETURN u.analyst_label AS label, "
                       "u.analyst AS analyst, u.analyst_note AS note, u.analyst_at IS NOT NULL AS dated", uid=user)
        assert stored == [{"label": "malicious", "analyst": "analyst-7", "note": "phished", "dated": True}]
        with pytest.raises(ValueError, match="verdict must be one of"):
            record_feedback(scored_estate.driver, [user], "suspicious", "analyst-7", database=scored_estate.database)
    finally:
        query(scored_estate, "MATCH (u:User {uid: $uid}) REMOVE u.analyst_label, u.analyst, u.analyst_at, "
              "u.analyst_note", uid=user)


def test_rescoring_replaces_the_previous_run_s_scores_everywhere(scored_estate: ScoredEstate) -> None:
    before = scored_estate.result.run
    # Score only the AWS part: the Azure/GCP/k8s nodes scored by the first run must lose their scores.
    aws_only = score_graph(scored_estate.driver, scored_estate.checkpoint(), MODEL_ID, SnapshotFilter(clouds=["aws"]),
                           database=scored_estate.database)
    try:
        assert aws_only.run.run_id != before.run_id
        assert 0 < aws_only.snapshot.num_nodes < before.nodes_scored
        runs = query(scored_estate, "MATCH (r:ScoringRun) RETURN r.run_id AS id ORDER BY r.scored_at")
        # Whole-graph scoring is a reset: the earlier run and its history go with it (clear_scores).
        assert [r["id"] for r in runs] == [aws_only.run.run_id]
        latest = latest_run(scored_estate)
        on_nodes = query(
            scored_estate,
            f"MATCH (n) WHERE {ENTITY} AND n.anomaly_score IS NOT NULL "
            "RETURN count(n) AS scored, collect(DISTINCT n.scored_at) AS times, collect(n.uid) AS uids",
        )[0]
        assert on_nodes["scored"] == aws_only.snapshot.num_nodes == latest["nodes_scored"]
        assert on_nodes["times"] == [latest["scored_at"]]
        assert sorted(on_nodes["uids"]) == sorted(aws_only.snapshot.node_uid)
        stale = query(scored_estate, "MATCH ()-[r]->() WHERE r.edge_anomaly IS NOT NULL RETURN count(r) AS scored")
        assert stale[0]["scored"] == aws_only.snapshot.num_edges
    finally:
        full = scored_estate.rescore()
    on_nodes = query(scored_estate, f"MATCH (n) WHERE {ENTITY} RETURN count(n.anomaly_score) AS scored, "
                     "collect(DISTINCT n.scored_at) AS times")[0]
    assert on_nodes["scored"] == full.snapshot.num_nodes
    assert on_nodes["times"] == [latest_run(scored_estate)["scored_at"]]


def test_a_benign_verdict_brings_that_node_s_next_score_down(scored_estate: ScoredEstate) -> None:
    before = scored_estate.rescore()
    position = before.snapshot.index_of()
    flagged = sorted((s for s in before.node_scores if s.anomalous), key=lambda s: (-s.score, s.uid))
    assert flagged, "the estate holds labelled attacks: some node should be flagged"
    target = flagged[0].uid
    raw_before = float(before.output.nodes.raw[position[target]])
    try:
        assert record_feedback(scored_estate.driver, [target], "benign", "analyst-7",
                               database=scored_estate.database) == []
        after = scored_estate.rescore()
        index = after.snapshot.index_of()
        raw_after = float(after.output.nodes.raw[index[target]])
        score_after = {s.uid: s.score for s in after.node_scores}[target]
        assert raw_after < raw_before
        assert score_after <= flagged[0].score
        stored = query(scored_estate, f"MATCH (n) WHERE {ENTITY} AND n.uid = $uid RETURN n.anomaly_score AS score",
                       uid=target)
        assert stored == [{"score": pytest.approx(score_after)}]
    finally:
        query(scored_estate, "MATCH (n) WHERE n.analyst_label IS NOT NULL "
              "REMOVE n.analyst_label, n.analyst, n.analyst_at, n.analyst_note")


def test_training_takes_every_core_once_the_export_is_done(
        scored_estate: ScoredEstate, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neo4j works during the export and waits during training: all cores but one, then all of them (an explicit
    GNNSEC_THREADS or --threads still wins)."""
    import os

    import torch

    import gnnsec.gnn.pipeline as pipeline
    import gnnsec.workflow as workflow
    from gnnsec.gnn.train import TrainConfig

    class Stop(Exception):
        pass

    seen: dict[str, int] = {}
    export = workflow.export_snapshot

    def exporting(*args: Any, **kwargs: Any) -> Any:
        seen["export"] = torch.get_num_threads()
        return export(*args, **kwargs)

    def training(*args: Any, **kwargs: Any) -> Any:
        seen["train"] = torch.get_num_threads()
        raise Stop

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(workflow, "export_snapshot", exporting)
    monkeypatch.setattr(pipeline, "train_checkpoint", training)
    before = torch.get_num_threads()
    try:
        for threads, want in ((None, {"export": 3, "train": 4}), ("1", {"export": 1, "train": 1})):
            if threads is None:
                monkeypatch.delenv("GNNSEC_THREADS", raising=False)
            else:
                monkeypatch.setenv("GNNSEC_THREADS", threads)
            with pytest.raises(Stop):
                workflow.train_from_graph(scored_estate.driver, SnapshotFilter(), TrainConfig(),
                                          database=scored_estate.database)
            assert seen == want
    finally:
        torch.set_num_threads(before)
