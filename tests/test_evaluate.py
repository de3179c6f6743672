"""`gnnsec eval`: metrics on known answers, thresholds from validation only, the staging → snapshot builder
matching the exporter's conventions, and a tiny end-to-end evaluation on a generated estate."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gnnsec import schema
from gnnsec.evaluate.data import staging_to_snapshot
from gnnsec.evaluate.metrics import choose_threshold, decision_metrics, ranking_metrics
from gnnsec.ingest.base import Edge, Node, NodeRef
from gnnsec.ingest.staging import Staging

# Six nodes, scores descending: truth 1 0 1 0 1 0 (positives ranked 1st, 3rd, 5th).
TRUTH = np.array([1, 0, 1, 0, 1, 0])
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])


def test_auc_and_ap_match_hand_computed_values_on_six_elements() -> None:
    # AUC: positive-negative pairs ordered correctly: 3 + 2 + 1 of 9 = 2/3.
    # AP: precision at each positive's rank: (1/1 + 2/3 + 3/5) / 3 = 0.7555…
    auc, ap = ranking_metrics(TRUTH, SCORES)
    assert auc == pytest.approx(6 / 9)
    assert ap == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_decision_metrics_at_a_fixed_threshold_match_hand_computed_values() -> None:
    # threshold 0.7 alerts on the top three: TP 2, FP 1, FN 1, TN 2.
    m = decision_metrics(TRUTH, SCORES, 0.7)
    assert (m.precision, m.recall, m.f1) == (pytest.approx(2 / 3), pytest.approx(2 / 3), pytest.approx(2 / 3))
    # MCC = (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (4 − 1) / 9 = 1/3
    assert m.mcc == pytest.approx(1 / 3)
    assert (m.support, m.negatives, m.threshold) == (3, 3, 0.7)


def test_threshold_is_the_validation_f1_optimum_and_is_applied_unchanged_to_test() -> None:
    val_truth = np.array([1, 1, 0, 0, 0, 0])
    val_scores = np.array([0.9, 0.8, 0.3, 0.2, 0.1, 0.0])
    threshold = choose_threshold(val_truth, val_scores)
    assert threshold == 0.8  # F1 = 1 on validation, highest such threshold
    # On test the optimum is 0.5 (F1 = 1), but the reported F1 must be the one at 0.8: 1 TP of 3.
    test_truth = np.array([1, 1, 1, 0, 0, 0])
    test_scores = np.array([0.85, 0.6, 0.5, 0.4, 0.3, 0.2])
    assert choose_threshold(test_truth, test_scores) == 0.5
    reported = decision_metrics(test_truth, test_scores, threshold)
    assert reported.threshold == 0.8
    assert reported.recall == pytest.approx(1 / 3)
    assert reported.f1 == pytest.approx(0.5)


def test_without_validation_positives_the_threshold_sits_above_every_validation_score() -> None:
    threshold = choose_threshold(np.zeros(3, dtype=int), np.array([0.1, 0.4, 0.2]))
    assert threshold > 0.4
    assert threshold == np.nextafter(0.4, math.inf)


def _t(hour: int, minute: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def test_staging_to_snapshot_follows_the_loader_merge_and_the_exporter_conventions() -> None:
    user, role, bucket = NodeRef("User", "u1"), NodeRef("Role", "r1"), NodeRef("Bucket", "b1")
    first = Staging("cloudtrail")
    first.add(Node("User", "u1", {"name": "alice", "created": _t(1)}, seen=_t(9)))
    first.add(Edge("ACCESS", user, bucket, {}, _t(10), "GetObject"))
    first.add(Edge("ACCESS", user, bucket, {"failed": True}, _t(11), "ListObjects"))
    first.add(Edge("CAN_ASSUME", user, role, {}))
    second = Staging("cloudtrail")  # another file: same window, its count adds up, actions union
    second.add(Edge("ACCESS", user, bucket, {}, _t(12), "GetObject"))
    second.add(Edge("ACCESS", user, bucket, {}, _t(1, day=3), "PutObject"))

    snap = staging_to_snapshot([first, second])

    assert snap.node_uid == ["u1", "r1", "b1"]  # schema label order: User, Role, Bucket
    assert snap.node_label.tolist() == [schema.label_id("User"), schema.label_id("Role"), schema.label_id("Bucket")]
    alice = snap.node_props[0]
    assert alice["uid"] == "u1" and alice["name"] == "alice"
    assert alice["created"] == _t(1).timestamp()  # datetimes come back as epoch floats
    assert (alice["first_seen"], alice["last_seen"]) == (_t(9).timestamp(), _t(1, day=3).timestamp())
    assert [schema.RELATION_NAMES[t] for t in snap.edge_type] == ["CAN_ASSUME", "ACCESS", "ACCESS"]
    assert snap.edge_window == [None, "2026-03-02T00:00:00.000000000+00:00", "2026-03-03T00:00:00.000000000+00:00"]
    assert snap.edge_count.tolist() == [1.0, 3.0, 1.0]
    assert snap.edge_actions == [[], ["GetObject", "ListObjects"], ["PutObject"]]
    assert snap.edge_first_seen[1] == _t(10).timestamp() and snap.edge_last_seen[1] == _t(12).timestamp()
    assert math.isnan(snap.edge_first_seen[0])  # inventory: no time, NaN as the exporter gives
    assert snap.edge_index[:, 1].tolist() == [0, 2]


def test_tiny_end_to_end_eval_writes_the_table_json_and_pr_curves(tmp_path: Path) -> None:
    from gnnsec.cli.main import cli

    estate = tmp_path / "estate"
    runner = CliRunner()
    made = runner.invoke(cli, ["synth", "--out", str(estate), "--size", "small", "--days", "4", "--seed", "3"])
    assert made.exit_code == 0, made.output
    out = tmp_path / "results"
    result = runner.invoke(cli, ["eval", "--data", str(estate), "--models", "rgcn,iforest", "--epochs", "2",
                                 "--hidden", "32", "--cut", "0.5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = (out / "table.md").read_text()
    assert "| Model | Type | Params | User_AUC | User_F1 | User_AP |" in table
    assert "| RGCN | GNN unsup. |" in table and "| iforest | features unsup. |" in table
    payload = json.loads((out / "results.json").read_text())
    assert [row["model"] for row in payload["rows"]] == ["RGCN", "iforest"]
    for run in payload["runs"]:
        user = run["labels"]["User"]
        assert 0.0 <= user["auc"] <= 1.0 and user["support"] >= 1
    assert (out / "pr_User.png").stat().st_size > 1000


def _native_estate(root: Path, users: int = 30, buckets: int = 6, malicious: int = 6) -> None:
    """A native-format graph (no synth) with many more relationships than nodes, and a labels file."""
    rng = np.random.default_rng(0)
    lines = []
    for b in range(buckets):
        lines.append({"kind": "node", "label": "Bucket", "uid": f"arn:aws:s3:::bucket-{b}", "props": {"name": f"b{b}"}})
    for u in range(users):
        uid = f"okta:user:user{u}@example.com"
        lines.append({"kind": "node", "label": "User", "uid": uid, "props": {"name": f"user{u}"}})
        for day in range(1, 5):
            for b in rng.choice(buckets, size=3, replace=False):
                lines.append({"kind": "edge", "type": "ACCESS", "src": {"label": "User", "uid": uid},
                              "dst": {"label": "Bucket", "uid": f"arn:aws:s3:::bucket-{b}"},
                              "time": f"2024-05-0{day}T0{u % 9}:00:00Z", "action": "s3:GetObject"})
            lines.append({"kind": "edge", "type": "AUTHENTICATES_FROM", "src": {"label": "User", "uid": uid},
                          "dst": {"label": "IP", "uid": f"ip:198.51.100.{u + 1}"},
                          "time": f"2024-05-0{day}T0{u % 9}:00:00Z", "action": "okta:user.session.start"})
    (root / "native").mkdir(parents=True)
    (root / "native" / "graph.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    (root / "labels").mkdir()
    (root / "labels" / "entities.csv").write_text(
        "uid,label,campaign,first_malicious\n"
        + "".join(f"okta:user:user{u}@example.com,User,c,2024-05-03T00:00:00Z\n" for u in range(malicious)))


def test_entity_split_runs_on_a_native_graph_whose_relationship_and_node_counts_differ(tmp_path: Path) -> None:
    """The entity split once passed a node-sized mask as the relationship mask: it failed on every graph whose
    counts differ (here 66 nodes and 480 relationships)."""
    from gnnsec.cli.main import cli

    _native_estate(tmp_path / "estate")
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["eval", "--data", str(tmp_path / "estate"), "--split", "entity", "--folds",
                                      "2", "--models", "iforest", "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "results.json").read_text())
    assert [run["split"] for run in payload["runs"]] == ["entity fold 1/2", "entity fold 2/2"]
    assert all(run["labels"]["User"]["support"] >= 1 for run in payload["runs"])
