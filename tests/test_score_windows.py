"""``score_windows`` against the real Neo4j: each day scored against its history, every other day left intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import neo4j
import pytest
from daily_activity import write_activity

from gnnsec.errors import StateError
from gnnsec.workflow import score_windows, windows_to_score

pytestmark = pytest.mark.integration
DAY0 = datetime(2026, 3, 2, tzinfo=UTC)
USERS = 20
DAYS = 8


def _load(driver: neo4j.Driver) -> None:
    """20 users in two accounts read one bucket daily from their own address; on the last day user u0 calls
    from a new address, assumes a role it never assumed and reads another bucket."""
    rows = []
    for day in range(DAYS):
        window = DAY0 + timedelta(days=day)
        for i in range(USERS):
            rows.append({"src": f"u{i}", "type": "ACCESS", "dst": "bucket", "w": window, "h": 10})
            rows.append({"src": f"u{i}", "type": "AUTHENTICATES_FROM", "dst": f"ip:10.0.0.{i}", "w": window, "h": 10})
    last = DAY0 + timedelta(days=DAYS - 1)
    rows += [
        {"src": "u0", "type": "AUTHENTICATES_FROM", "dst": "ip:203.0.113.9", "w": last, "h": 3},
        {"src": "u0", "type": "ASSUMES_ROLE", "dst": "role", "w": last, "h": 3},
        {"src": "u0", "type": "ACCESS", "dst": "secret", "w": last, "h": 3},
    ]
    driver.execute_query(
        """
        UNWIND range(0, $users - 1) AS i
        MERGE (u:User {uid: 'u' + i}) SET u.cloud = 'aws', u.account = CASE WHEN i < 10 THEN 'A' ELSE 'B' END
        MERGE (:IP {uid: 'ip:10.0.0.' + i})
        """, users=USERS)
    driver.execute_query(
        "MERGE (:Bucket {uid: 'bucket', cloud: 'aws', account: 'A'}) MERGE (:Bucket {uid: 'secret', cloud: 'aws', "
        "account: 'A'}) MERGE (:Role {uid: 'role', cloud: 'aws', account: 'A'}) MERGE (:IP {uid: 'ip:203.0.113.9'})")
    write_activity(driver, rows)


def _runs(driver: neo4j.Driver) -> list[tuple[datetime, int]]:
    records, _, _ = driver.execute_query(
        "MATCH (r:ScoringRun) RETURN r.window_start AS w, COUNT { (r)-[:SCORED]->() } AS n ORDER BY w")
    return [(r["w"].to_native(), r["n"]) for r in records]


def test_each_day_against_its_history_and_other_days_untouched(clean_db: neo4j.Driver) -> None:
    driver = clean_db
    _load(driver)
    last = DAY0 + timedelta(days=DAYS - 1)
    now = last + timedelta(days=2)
    # The latest complete unscored day by default; with --all every unscored day that has enough history
    # (the first observed day opens the history, three more calibrate).
    assert windows_to_score(driver, None, None, False, now=now) == [last]
    assert windows_to_score(driver, None, None, True, now=now) == [DAY0 + timedelta(days=d) for d in range(4, DAYS)]

    [attack] = score_windows(driver, [last], floor=0.0)
    top = next(s for s in attack.node_scores if s.label == "User")
    assert (top.uid, top.rank) == ("u0", 1)
    assert top.anomalous and top.score >= 0.99 and top.reasons
    assert any("203.0.113.9" in reason for reason in top.reasons)
    assert all(s.anomalous == (s.score >= attack.run.threshold) for s in attack.node_scores)

    earlier = last - timedelta(days=1)
    score_windows(driver, [earlier], floor=0.0)
    before = _runs(driver)
    # The run says how much history calibrated it; days 1..4 before the last are usable, day 0 opens it.
    records, _, _ = driver.execute_query(
        "MATCH (r:ScoringRun) RETURN r.reference_days AS d ORDER BY r.window_start")
    assert [r["d"] for r in records] == [DAYS - 3, DAYS - 2]
    with pytest.raises(StateError, match=r"too little history before .*: 2 usable day"):
        score_windows(driver, [DAY0 + timedelta(days=3)], write=False)  # days 1 and 2 only
    assert [w for w, _ in before] == [earlier, last]
    records, _, _ = driver.execute_query("MATCH (u:User {uid: 'u0'}) RETURN u.score_window AS w, u.anomalous AS a")
    assert records[0]["w"].to_native() == last and records[0]["a"]  # the older window never overwrites the latest

    score_windows(driver, [last], floor=0.0)  # re-scoring a day replaces that day only
    after = _runs(driver)
    assert [w for w, _ in after] == [earlier, last] and after == before

    # A filtered run touches only what it scored: account B's users, one run of its own.
    score_windows(driver, [earlier], accounts=["B"], floor=0.0)
    records, _, _ = driver.execute_query(
        "MATCH (r:ScoringRun)-[:SCORED]->(u:User) WHERE r.accounts = ['B'] RETURN collect(DISTINCT u.account) AS a")
    assert records[0]["a"] == ["B"]
    assert len(_runs(driver)) == 3
    records, _, _ = driver.execute_query("MATCH (u:User {uid: 'u0'}) RETURN u.anomalous AS a")
    assert records[0]["a"] is True


def test_bad_scopes_and_windows_are_errors(clean_db: neo4j.Driver) -> None:
    _load(clean_db)
    with pytest.raises(ValueError, match="--cloud awz"):
        score_windows(clean_db, [DAY0 + timedelta(days=3)], clouds=["awz"])
    with pytest.raises(ValueError, match="--account nope"):
        score_windows(clean_db, [DAY0 + timedelta(days=3)], accounts=["nope"])
    with pytest.raises(ValueError, match="is not before"):
        windows_to_score(clean_db, DAY0 + timedelta(days=3), DAY0 + timedelta(days=2), False)
    with pytest.raises(StateError, match="too little history"):
        score_windows(clean_db, [DAY0])
    with pytest.raises(StateError, match="1 usable day"):
        score_windows(clean_db, [DAY0 + timedelta(days=2)])
    records, _, _ = clean_db.execute_query("MATCH (r:ScoringRun) RETURN count(r) AS n")
    assert records[0]["n"] == 0


def _cli(settings: object, *args: str, stdout_only: bool = False) -> tuple[int, str]:
    from click.testing import CliRunner

    from gnnsec.cli.main import cli

    env = {"NEO4J_URI": settings.uri, "NEO4J_USER": settings.user,  # type: ignore[attr-defined]
           "NEO4J_PASSWORD": settings.password, "NEO4J_DATABASE": settings.database}  # type: ignore[attr-defined]
    result = CliRunner().invoke(cli, ["score", *args], env=env, terminal_width=200)
    # Progress lines go to stderr when it is not a terminal; JSON is on stdout alone.
    return result.exit_code, result.stdout if stdout_only else result.output


def test_score_command_days_and_errors(clean_db: neo4j.Driver, neo4j_settings: object) -> None:
    _load(clean_db)
    last = (DAY0 + timedelta(days=DAYS - 1)).date().isoformat()
    code, output = _cli(neo4j_settings, "--since", last, "--format", "table")
    assert code == 0, output
    assert "│ u0 " in output and "first calls from" in output
    words = " ".join(output.split())  # the run line wraps between words at 80 columns
    assert f"({last})" in words and "anomalous (calibrated score ≥" in words and "usable day(s)" in words
    code, output = _cli(neo4j_settings, "--since", last, stdout_only=True)  # piped: one JSON line per day
    assert code == 0, output
    import json

    [day] = [json.loads(line) for line in output.splitlines()]
    assert day["window_start"] == f"{last}T00:00:00Z" and {"u0", "role"} == {f["uid"] for f in day["findings"][:2]}
    code, output = _cli(neo4j_settings, "--cloud", "awz")
    assert code != 0 and "--cloud awz" in output and "known: aws" in output
    code, output = _cli(neo4j_settings, "--since", last, "--until", last)
    assert code != 0 and "is not before" in output
    records, _, _ = clean_db.execute_query("MATCH (r:ScoringRun) RETURN count(r) AS n")
    assert records[0]["n"] == 1  # the day scored twice: one run
    from click.testing import CliRunner

    from gnnsec.cli.main import cli

    env = {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,  # type: ignore[attr-defined]
           "NEO4J_PASSWORD": neo4j_settings.password,  # type: ignore[attr-defined]
           "NEO4J_DATABASE": neo4j_settings.database,  # type: ignore[attr-defined]
           "GNNSEC_HOME": "/nonexistent-no-model-needed"}
    result = CliRunner().invoke(cli, ["explain", "U0"], env=env)  # before any model is looked for
    assert result.exit_code == 1 and "no node with uid 'U0'" in result.output


OCSF_DETECTION_FINDING_REQUIRED = ("activity_id", "category_uid", "class_uid", "finding_info", "metadata",
                                   "severity_id", "time", "type_uid")
"""Required attributes of the OCSF 1.1 Detection Finding class (2004), and of its required objects below."""


def test_findings_for_people_scripts_and_siems(clean_db: neo4j.Driver, neo4j_settings: object) -> None:
    import json

    from click.testing import CliRunner

    from gnnsec.cli.main import cli
    from gnnsec.workflow import list_findings

    _load(clean_db)
    last = DAY0 + timedelta(days=DAYS - 1)
    score_windows(clean_db, [last - timedelta(days=1), last])
    rows = list_findings(clean_db, labels=["User"])
    assert [r["uid"] for r in rows] == ["u0"]
    top = rows[0]
    assert top["window_start"] == last.strftime("%Y-%m-%dT%H:%M:%SZ") and top["anomalous"]
    assert {e["peer"] for e in top["evidence"]} >= {"ip:203.0.113.9", "role"}
    assert all(e["reasons"] for e in top["evidence"] if e["edge_anomaly"] >= 0.99)
    assert list_findings(clean_db, since=last - timedelta(days=1), until=last, labels=["User"]) == []
    with pytest.raises(ValueError, match="is not before"):
        list_findings(clean_db, since=last, until=last)

    env = {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,  # type: ignore[attr-defined]
           "NEO4J_PASSWORD": neo4j_settings.password,  # type: ignore[attr-defined]
           "NEO4J_DATABASE": neo4j_settings.database}  # type: ignore[attr-defined]
    result = CliRunner().invoke(cli, ["findings", "--label", "User"], env=env)  # piped: JSON lines by default
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["uid"] for line in lines] == ["u0"]
    result = CliRunner().invoke(cli, ["findings", "--format", "ocsf", "--min-score", "0.9"], env=env)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events
    for event in events:
        assert all(event.get(key) is not None for key in OCSF_DETECTION_FINDING_REQUIRED)
        assert (event["class_uid"], event["category_uid"], event["type_uid"]) == (2004, 2, 200401)
        assert event["finding_info"]["uid"] and event["finding_info"]["title"]
        assert event["metadata"]["version"] and event["metadata"]["product"]["name"] == "gnnsec"
    result = CliRunner().invoke(cli, ["findings", "--label", "Usr"], env=env)
    assert result.exit_code != 0 and "unknown node label 'Usr'" in result.output


def test_the_demo_scores_only_days_with_enough_history() -> None:
    from gnnsec.cli.demo import FIRST_SCOREABLE
    from gnnsec.gnn.window_detect import TailConfig

    assert TailConfig().warmup_windows + TailConfig().min_reference_windows == FIRST_SCOREABLE
