"""Scores persist per window: each (window, clouds, accounts) scope keeps one :ScoringRun with its
SCORED history, nodes carry the newest window's score, and nothing outside a run's scope moves."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gnnsec import schema
from gnnsec.graphdb.loader import write_staging
from gnnsec.graphdb.writeback import (
    NODE_SCORE_PROPERTIES,
    EdgeScore,
    NodeScore,
    ScoringRun,
    clear_scores,
    write_window_scores,
)
from gnnsec.ingest.base import Edge, Node, NodeRef
from gnnsec.ingest.staging import Staging

pytestmark = pytest.mark.integration

ALICE = NodeRef("User", "arn:aws:iam::111122223333:user/alice")
BOB = NodeRef("User", "arn:aws:iam::444455556666:user/bob")
ADMIN = NodeRef("Role", "arn:aws:iam::111122223333:role/admin")
BUCKET = NodeRef("Bucket", "arn:aws:s3:::payroll")
DAY_A = datetime(2026, 3, 1, tzinfo=UTC)
DAY_B = datetime(2026, 3, 2, tzinfo=UTC)


def load_graph(driver: Any) -> None:
    """Alice and Bob (two accounts) use the admin role on both days; the role reads the bucket on both days."""
    staging = Staging("test")
    staging.add(Node("User", ALICE.uid, {"name": "alice", "account": "111122223333"}, DAY_A))
    staging.add(Node("User", BOB.uid, {"name": "bob", "account": "444455556666"}, DAY_A))
    staging.add(Edge("CAN_ASSUME", ALICE, ADMIN))
    for day in (DAY_A, DAY_B):
        staging.add(Edge("ASSUMES_ROLE", ALICE, ADMIN, time=day + timedelta(hours=9), action="sts:AssumeRole"))
        staging.add(Edge("ASSUMES_ROLE", BOB, ADMIN, time=day + timedelta(hours=10), action="sts:AssumeRole"))
        staging.add(Edge("ACCESS", ADMIN, BUCKET, time=day + timedelta(hours=11), action="s3:GetObject"))
    write_staging(driver, staging, "windows")


def make_run(run_id: str, day: datetime | None, *, accounts: Sequence[str] = (), clouds: Sequence[str] = ()
             ) -> ScoringRun:
    return ScoringRun(run_id, "model-1", datetime(2026, 3, 5, tzinfo=UTC), threshold=0.99, window_start=day,
                      window_end=None if day is None else day + timedelta(days=1), clouds=clouds, accounts=accounts)


def score(node: NodeRef, value: float, *, anomalous: bool | None = None, raw: float | None = None,
          rank: int = 1, reasons: Sequence[str] = (), calibration: str = "label") -> NodeScore:
    return NodeScore(node.label, node.uid, value, rank, value >= 0.99 if anomalous is None else anomalous,
                     reasons, value * 10 if raw is None else raw, calibration)


def access(day: datetime, anomaly: float, reasons: Sequence[str] = ()) -> EdgeScore:
    return EdgeScore("Role", ADMIN.uid, "ACCESS", "Bucket", BUCKET.uid, day, anomaly * 3, anomaly, reasons)


def history(driver: Any, node: NodeRef) -> list[tuple[Any, str, float]]:
    """(window start, run id, score) of every SCORED relationship into ``node``, oldest window first."""
    records, _, _ = driver.execute_query(
        f"MATCH (r:ScoringRun)-[s:SCORED]->(n:{node.label} {{uid: $uid}}) "
        "RETURN s.window_start AS w, r.run_id AS run, s.score AS score ORDER BY w, run",
        uid=node.uid,
    )
    return [(r["w"].to_native() if r["w"] is not None else None, r["run"], r["score"]) for r in records]


def latest(driver: Any, node: NodeRef) -> dict[str, Any]:
    records, _, _ = driver.execute_query(
        f"MATCH (n:{node.label} {{uid: $uid}}) RETURN n {{{', '.join('.' + p for p in NODE_SCORE_PROPERTIES)}}} AS p",
        uid=node.uid,
    )
    props = dict(records[0]["p"])
    if props.get("score_window") is not None:
        props["score_window"] = props["score_window"].to_native()
    return props


def runs(driver: Any) -> dict[str, dict[str, Any]]:
    records, _, _ = driver.execute_query("MATCH (r:ScoringRun) RETURN r.run_id AS id, properties(r) AS p")
    return {r["id"]: r["p"] for r in records}


def graph_state(driver: Any) -> dict[str, Any]:
    """Every node and relationship with its properties, except run nodes and SCORED history."""
    nodes, _, _ = driver.execute_query(
        "MATCH (n) WHERE NOT n:ScoringRun RETURN labels(n)[0] + ':' + n.uid AS key, properties(n) AS p"
    )
    rels, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) WHERE NOT a:ScoringRun "
        "RETURN a.uid + '-' + type(r) + '->' + b.uid + '@' + coalesce(toString(r.window), '') AS key, "
        "properties(r) AS p"
    )
    return {"nodes": {r["key"]: r["p"] for r in nodes}, "rels": {r["key"]: r["p"] for r in rels}}


def test_scoring_window_b_keeps_window_a_s_history(clean_db: Any) -> None:
    load_graph(clean_db)
    counts_a = write_window_scores(clean_db, [score(ALICE, 0.95), score(BOB, 0.2)], [], make_run("a1", DAY_A))
    assert counts_a == {"nodes": 2, "latest": 2, "scored_rels": 1, "edges": 0, "replaced_runs": 0, "cleared": 0}
    counts_b = write_window_scores(clean_db, [score(ALICE, 0.999), score(BOB, 0.3)], [], make_run("b1", DAY_B))
    assert counts_b["replaced_runs"] == 0 and counts_b["scored_rels"] == 1

    assert history(clean_db, ALICE) == [(DAY_A, "a1", 0.95), (DAY_B, "b1", 0.999)]
    assert history(clean_db, BOB) == []  # below the floor and not anomalous: latest score only
    assert set(runs(clean_db)) == {"a1", "b1"}
    assert latest(clean_db, BOB)["anomaly_score"] == 0.3


def test_rescoring_a_window_replaces_only_that_window_s_run(clean_db: Any) -> None:
    load_graph(clean_db)
    write_window_scores(clean_db, [score(ALICE, 0.95)], [], make_run("a1", DAY_A))
    write_window_scores(clean_db, [score(ALICE, 0.97)], [], make_run("b1", DAY_B))
    counts = write_window_scores(clean_db, [score(ALICE, 0.91)], [], make_run("a2", DAY_A))

    assert counts["replaced_runs"] == 1
    assert history(clean_db, ALICE) == [(DAY_A, "a2", 0.91), (DAY_B, "b1", 0.97)]
    by_window = [p["window_start"].to_native() for p in runs(clean_db).values()]
    assert sorted(by_window) == [DAY_A, DAY_B]
    assert set(runs(clean_db)) == {"a2", "b1"}
    leftovers, _, _ = clean_db.execute_query("MATCH (r:PendingScoringRun) RETURN count(r) AS n")
    assert leftovers[0]["n"] == 0


def test_latest_properties_reflect_the_newest_window_even_when_an_older_one_is_rescored(clean_db: Any) -> None:
    load_graph(clean_db)
    write_window_scores(clean_db, [score(ALICE, 0.95, raw=4.0)], [], make_run("b1", DAY_B))
    counts = write_window_scores(clean_db, [score(ALICE, 0.99, raw=9.0), score(BOB, 0.5)], [], make_run("a1", DAY_A))
    assert (counts["nodes"], counts["latest"]) == (2, 1)  # Bob has no newer score: A is his latest
    write_window_scores(clean_db, [score(ALICE, 0.999, raw=9.5)], [], make_run("a2", DAY_A))

    alice = latest(clean_db, ALICE)
    assert (alice["anomaly_score"], alice["anomaly_raw"], alice["scoring_run"], alice["score_window"]) == (
        0.95, 4.0, "b1", DAY_B)
    # Bob's latest came from the replaced run a1 and a2 did not score him: it is removed, not left dangling
    assert latest(clean_db, BOB) == dict.fromkeys(NODE_SCORE_PROPERTIES)

    write_window_scores(clean_db, [score(ALICE, 0.5, raw=1.0)], [], make_run("b2", DAY_B))
    alice = latest(clean_db, ALICE)
    assert (alice["anomaly_score"], alice["anomaly_raw"], alice["scoring_run"]) == (0.5, 1.0, "b2")


def test_a_filtered_run_changes_only_the_nodes_it_scored(clean_db: Any) -> None:
    load_graph(clean_db)
    write_window_scores(clean_db, [score(ALICE, 0.95), score(BOB, 0.96), score(ADMIN, 0.4)],
                        [access(DAY_A, 0.7)], make_run("all-a", DAY_A))
    before = graph_state(clean_db)

    counts = write_window_scores(clean_db, [score(BOB, 0.999, reasons=["new role"])], [],
                                 make_run("bob-a", DAY_A, accounts=["444455556666"]))
    assert counts["replaced_runs"] == 0  # another scope: the unfiltered run of the same window stays
    after = graph_state(clean_db)
    bob_key = f"User:{BOB.uid}"
    assert after["rels"] == before["rels"]
    assert {k: v for k, v in after["nodes"].items() if k != bob_key} == {
        k: v for k, v in before["nodes"].items() if k != bob_key}
    assert after["nodes"][bob_key]["anomaly_reasons"] == ["new role"]
    assert {k: v for k, v in after["nodes"][bob_key].items() if k not in NODE_SCORE_PROPERTIES} == {
        k: v for k, v in before["nodes"][bob_key].items() if k not in NODE_SCORE_PROPERTIES}
    assert history(clean_db, BOB) == [(DAY_A, "all-a", 0.96), (DAY_A, "bob-a", 0.999)]

    stored = runs(clean_db)
    assert (stored["all-a"]["accounts"], stored["all-a"]["clouds"]) == ([], [])
    assert (stored["bob-a"]["accounts"], stored["bob-a"]["clouds"]) == (["444455556666"], [])

    again = write_window_scores(clean_db, [score(BOB, 0.98)], [], make_run("bob-a2", DAY_A, accounts=["444455556666"]))
    assert again["replaced_runs"] == 1
    assert set(runs(clean_db)) == {"all-a", "bob-a2"}


def test_edge_scores_of_another_window_are_untouched(clean_db: Any) -> None:
    load_graph(clean_db)
    counts = write_window_scores(clean_db, [], [access(DAY_A, 0.8, ["rare action"])], make_run("a1", DAY_A))
    assert counts["edges"] == 1
    write_window_scores(clean_db, [], [access(DAY_B, 0.1)], make_run("b1", DAY_B))
    write_window_scores(clean_db, [], [access(DAY_B, 0.2)], make_run("b2", DAY_B))

    records, _, _ = clean_db.execute_query(
        "MATCH ()-[r:ACCESS]->() RETURN r.window AS w, r.edge_anomaly AS e, r.distmult_score AS d, "
        "r.edge_reasons AS why ORDER BY w"
    )
    assert [(r["w"].to_native(), r["e"], r["d"], r["why"]) for r in records] == [
        (DAY_A, 0.8, pytest.approx(2.4), ["rare action"]),
        (DAY_B, 0.2, pytest.approx(0.6), None),
    ]
    unscored, _, _ = clean_db.execute_query("MATCH ()-[r:ASSUMES_ROLE]->() RETURN collect(r.edge_anomaly) AS e")
    assert unscored[0]["e"] == []


def test_scored_carries_the_node_score_s_values_and_anomalous_flag(clean_db: Any) -> None:
    load_graph(clean_db)
    scores = [
        score(ALICE, 0.5, anomalous=True, raw=3.25, rank=2, reasons=["odd hour"], calibration="pooled"),
        score(BOB, 0.93, anomalous=False, raw=7.5, rank=1, calibration="low"),
        score(ADMIN, 0.89, anomalous=False),
    ]
    counts = write_window_scores(clean_db, scores, [], make_run("a1", DAY_A), floor=0.9)
    assert counts["scored_rels"] == 2
    records, _, _ = clean_db.execute_query(
        "MATCH (:ScoringRun {run_id: 'a1'})-[s:SCORED]->(n) RETURN n.uid AS uid, properties(s) AS p"
    )
    scored = {r["uid"]: dict(r["p"]) for r in records}
    assert set(scored) == {ALICE.uid, BOB.uid}
    for expected in scores[:2]:
        got = scored[expected.uid]
        assert got.pop("window_start").to_native() == DAY_A
        assert got == {"score": expected.score, "raw": expected.raw, "rank": expected.rank,
                       "anomalous": expected.anomalous, "reasons": list(expected.reasons),
                       "calibration": expected.calibration}
    alice = latest(clean_db, ALICE)
    assert (alice["anomalous"], alice["anomaly_calibration"], alice["anomaly_rank"]) == (True, "pooled", 2)
    assert latest(clean_db, ADMIN)["anomaly_score"] == 0.89


def test_a_run_without_a_window_never_overrides_a_windowed_latest_score(clean_db: Any) -> None:
    load_graph(clean_db)
    write_window_scores(clean_db, [score(ALICE, 0.95)], [], make_run("b1", DAY_B))
    counts = write_window_scores(clean_db, [score(ALICE, 0.1), score(BOB, 0.2)], [], make_run("all", None))
    assert (counts["latest"], latest(clean_db, ALICE)["scoring_run"]) == (1, "b1")
    assert latest(clean_db, BOB)["score_window"] is None and latest(clean_db, BOB)["scoring_run"] == "all"
    assert "window_start" not in runs(clean_db)["all"]
    again = write_window_scores(clean_db, [score(BOB, 0.3)], [], make_run("all-2", None))
    assert again["replaced_runs"] == 1 and latest(clean_db, BOB)["anomaly_score"] == 0.3


def test_a_failure_half_way_leaves_the_earlier_run_and_no_unfinished_one(clean_db: Any) -> None:
    load_graph(clean_db)
    write_window_scores(clean_db, [score(ALICE, 0.95), score(BOB, 0.97)], [], make_run("a1", DAY_A))

    def fail(_: int) -> None:
        raise RuntimeError("connection lost")

    with pytest.raises(RuntimeError, match="connection lost"):
        write_window_scores(clean_db, [score(ALICE, 0.5), score(BOB, 0.6)], [], make_run("a2", DAY_A), progress=fail)

    assert set(runs(clean_db)) == {"a1"}
    assert history(clean_db, BOB) == [(DAY_A, "a1", 0.97)]
    records, _, _ = clean_db.execute_query(
        "MATCH (n) WHERE n:PendingScoringRun OR n.scoring_run = 'a2' RETURN count(n) AS n"
    )
    assert records[0]["n"] == 0


def test_bad_input_is_refused_before_anything_is_written(clean_db: Any) -> None:
    load_graph(clean_db)
    bad_edge = EdgeScore("Bucket", BUCKET.uid, "ACCESS", "Role", ADMIN.uid, DAY_A, 0.0, 0.0)
    with pytest.raises(schema.SchemaError, match="does not allow"):
        write_window_scores(clean_db, [score(ALICE, 0.95)], [bad_edge], make_run("a1", DAY_A))
    with pytest.raises(ValueError, match="calibration must be one of"):
        score(ALICE, 0.95, calibration="global")
    records, _, _ = clean_db.execute_query(
        "MATCH (n) WHERE n:ScoringRun OR n:PendingScoringRun OR n.anomaly_score IS NOT NULL RETURN count(n) AS n"
    )
    assert records[0]["n"] == 0


def test_clear_scores_removes_every_run_its_history_and_the_score_properties(clean_db: Any) -> None:
    load_graph(clean_db)
    write_window_scores(clean_db, [score(ALICE, 0.95)], [access(DAY_A, 0.5, ["x"])], make_run("a1", DAY_A))
    write_window_scores(clean_db, [score(ALICE, 0.99)], [], make_run("b1", DAY_B))
    clear_scores(clean_db)
    records, _, _ = clean_db.execute_query(
        "MATCH (n) WHERE n:ScoringRun OR n:PendingScoringRun OR n.anomaly_raw IS NOT NULL "
        "OR n.score_window IS NOT NULL RETURN count(n) AS n UNION ALL "
        "MATCH ()-[r]->() WHERE type(r) = 'SCORED' OR r.edge_reasons IS NOT NULL RETURN count(r) AS n"
    )
    assert [r["n"] for r in records] == [0, 0]


def test_many_batches_in_flight_write_every_node_once_and_a_failure_still_cleans_up(
        clean_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from gnnsec.graphdb import writeback

    monkeypatch.setattr(writeback, "BATCH_SIZE", 1)  # a batch per node: WRITERS of them at once
    load_graph(clean_db)
    scores = [score(ALICE, 0.95), score(BOB, 0.2), score(ADMIN, 0.991), score(BUCKET, 0.5, anomalous=True)]
    counts = write_window_scores(clean_db, scores, [access(DAY_A, 0.7)], make_run("a1", DAY_A))
    assert counts == {"nodes": 4, "latest": 4, "scored_rels": 3, "edges": 1, "replaced_runs": 0, "cleared": 0}
    for expected in scores:
        node = NodeRef(expected.label, expected.uid)
        assert latest(clean_db, node)["anomaly_score"] == expected.score
        assert latest(clean_db, node)["scoring_run"] == "a1"
        assert history(clean_db, node) == ([(DAY_A, "a1", expected.score)] if expected.uid != BOB.uid else [])

    seen: list[int] = []

    def fail_on_the_third(size: int) -> None:
        seen.append(size)
        if len(seen) == 3:
            raise RuntimeError("connection lost")

    with pytest.raises(RuntimeError, match="connection lost"):
        write_window_scores(clean_db, [score(n, 0.1) for n in (ALICE, BOB, ADMIN, BUCKET)], [],
                            make_run("a2", DAY_A), progress=fail_on_the_third)
    assert set(runs(clean_db)) == {"a1"}
    records, _, _ = clean_db.execute_query(
        "MATCH (n) WHERE n:PendingScoringRun OR n.scoring_run = 'a2' RETURN count(n) AS n")
    assert records[0]["n"] == 0
    assert history(clean_db, ADMIN) == [(DAY_A, "a1", 0.991)]
