"""The hunting pack: each ``cypher/hunts/*.cypher`` file runs as is in Neo4j Browser and through
``gnnsec query NAME -p key=value``, whose parameters replace the literal defaults of its header.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import neo4j
import pytest
from click.testing import CliRunner
from scored_estate import ScoredEstate, scored_estate_fixture, scored_estate_model_fixture  # noqa: F401

from gnnsec.cli.main import cli
from gnnsec.config import Neo4jSettings
from gnnsec.errors import InputError
from gnnsec.graphdb.writeback import NodeScore, ScoringRun, write_window_scores
from gnnsec.hunts import HUNTS_DIR, HuntParameter, coerce, load_hunts, parse_hunt

PACK = (
    "anomalous-vm-start-bursts",
    "internet-to-database-paths",
    "new-cross-cloud-access",
    "score-history",
    "top-anomalous-entities",
    "top-anomalous-identities",
    "top-anomalous-relationships",
    "top-findings",
    "unusual-assume-role-chains",
    "vulnerable-internet-facing-hosts",
)

EXAMPLE = """\
// name: example-hunt
// description: Users above a score,
//   over two lines.
// param: min_score = 0.9  lowest anomaly_score
// param: label = 'User'  which label
// param: strict = true  only anomalous ones
// param: limit = 10  rows to return
WITH 0.9 AS min_score, 'User' AS label, true AS strict // @params
MATCH (n) WHERE label IN labels(n) AND n.anomaly_score >= min_score AND (NOT strict OR n.anomalous)
RETURN n.uid AS uid
LIMIT 10 // @limit
"""


@pytest.fixture
def example(tmp_path: Path) -> Path:
    path = tmp_path / "example.cypher"
    path.write_text(EXAMPLE, encoding="utf-8")
    return path


# ---- parsing and binding (no database) ------------------------------------------------------


def test_the_pack_holds_one_hunt_per_file_named_after_it_each_with_a_description_and_a_limit() -> None:
    hunts = load_hunts()
    assert tuple(hunts) == PACK
    for name, hunt in hunts.items():
        assert hunt.path == HUNTS_DIR / f"{name}.cypher"
        assert hunt.description
        assert "limit" in [p.name for p in hunt.parameters], name
        assert sum(line.rstrip().endswith("// @params") for line in hunt.text.splitlines()) == 1, name
        assert sum(line.rstrip().endswith("// @limit") for line in hunt.text.splitlines()) == 1, name


def test_a_header_gives_the_name_the_joined_description_and_typed_parameter_defaults(example: Path) -> None:
    hunt = parse_hunt(example)
    assert hunt.name == "example-hunt"
    assert hunt.description == "Users above a score, over two lines."
    assert hunt.parameters == (
        HuntParameter("min_score", 0.9, "lowest anomaly_score"),
        HuntParameter("label", "User", "which label"),
        HuntParameter("strict", True, "only anomalous ones"),
        HuntParameter("limit", 10, "rows to return"),
    )


def test_a_file_without_a_name_header_is_named_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nameless.cypher"
    path.write_text("// description: d\nMATCH (n) RETURN n LIMIT 1\n", encoding="utf-8")
    assert parse_hunt(path).name == "nameless"


def test_bind_turns_the_params_and_limit_lines_into_parameters_and_keeps_every_other_line(example: Path) -> None:
    cypher, values = parse_hunt(example).bind()
    lines = cypher.splitlines()
    original = EXAMPLE.splitlines()
    assert lines[7] == "WITH $min_score AS min_score, $label AS label, $strict AS strict"
    assert lines[10] == "LIMIT $limit"
    assert lines[:7] + lines[8:10] == original[:7] + original[8:10]
    assert values == {"min_score": 0.9, "label": "User", "strict": True, "limit": 10}


def test_bind_coerces_overrides_to_the_type_of_the_default(example: Path) -> None:
    _, values = parse_hunt(example).bind({"min_score": "0.5", "limit": "3", "strict": "no", "label": "Role"})
    assert values == {"min_score": 0.5, "label": "Role", "strict": False, "limit": 3}
    assert type(values["min_score"]) is float and type(values["limit"]) is int


def test_bind_rejects_a_parameter_the_hunt_does_not_declare_and_names_the_known_ones(example: Path) -> None:
    with pytest.raises(InputError, match=r"has no parameter min_scor; it takes: label, limit, min_score, strict"):
        parse_hunt(example).bind({"min_scor": "0.5"})


def test_coerce_follows_the_default_s_type_and_refuses_text_that_is_not_a_number() -> None:
    assert coerce("7", 25) == 7
    assert coerce("0.25", 0.9) == 0.25
    assert coerce("3", 0.9) == 3.0 and isinstance(coerce("3", 0.9), float)
    assert coerce("yes", False) is True and coerce("0", True) is False
    assert coerce("Role", "User") == "Role"
    with pytest.raises(ValueError):
        coerce("many", 25)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("limit", "abc", "parameter limit takes a whole number, got 'abc'"),
    ("limit", "-1", "parameter limit takes a whole number from 1 to 1,000,000,000"),
    ("limit", "0", "from 1 to"),
    ("limit", "99999999999999999999", "from 1 to"),
    ("days", "99999999999999", "parameter days takes a whole number from 0 to"),
    ("min_score", "nan", "parameter min_score takes a finite number"),
    ("min_score", "x", "parameter min_score takes a number"),
])
def test_bad_parameter_values_get_a_message_that_says_what_the_parameter_takes(name: str, text: str,
                                                                              message: str) -> None:
    default = 0.9 if name == "min_score" else 25
    with pytest.raises(ValueError, match=re.escape(message)):
        coerce(text, default, name)


def test_query_suggests_the_hunt_you_meant_and_show_prints_the_file_unchanged() -> None:
    runner = CliRunner()
    typo = runner.invoke(cli, ["query", "top-anomalous-identity"])
    assert typo.exit_code == 1 and "did you mean 'top-anomalous-identities'?" in typo.output
    bad = runner.invoke(cli, ["query", "top-anomalous-identities", "-p", "limit=abc"])
    assert bad.exit_code == 1 and "takes a whole number, got 'abc'" in bad.output
    hunts = load_hunts()
    for name, hunt in hunts.items():
        shown = runner.invoke(cli, ["query", name, "--show"], terminal_width=40)
        assert shown.exit_code == 0 and shown.stdout == hunt.text, name


def test_a_hunt_with_only_a_limit_binds_no_with_line(tmp_path: Path) -> None:
    path = tmp_path / "plain.cypher"
    path.write_text("// param: limit = 5  rows\nWITH 1 AS one // @params\nMATCH (n) RETURN n\nLIMIT 5 // @limit\n",
                    encoding="utf-8")
    cypher, values = parse_hunt(path).bind({"limit": "2"})
    assert cypher.splitlines() == ["// param: limit = 5  rows", "", "MATCH (n) RETURN n", "LIMIT $limit"]
    assert values == {"limit": 2}


def test_query_list_shows_every_hunt_and_query_rejects_unknown_names_and_parameters() -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["query", "--list"], terminal_width=250)
    assert listed.exit_code == 0, listed.output
    for name in PACK:
        assert name in listed.output
    unknown = runner.invoke(cli, ["query", "no-such-hunt"])
    assert unknown.exit_code == 1 and "no hunt named 'no-such-hunt'" in unknown.output
    bad = runner.invoke(cli, ["query", "top-anomalous-identities", "-p", "min_scor=1", "--show"])
    assert bad.exit_code == 1 and "has no parameter min_scor" in bad.output
    malformed = runner.invoke(cli, ["query", "top-anomalous-identities", "-p", "min_score", "--show"])
    assert malformed.exit_code == 2 and "is not KEY=VALUE" in malformed.output


# ---- windowed scores on a tiny graph ---------------------------------------------------------
# These empty the database (clean_db), so they come before the scored-estate tests: the module's
# scored_estate fixture is built at its first use and restores the estate when it finds it gone.

WINDOW_A = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW_B = datetime(2026, 3, 2, tzinfo=UTC)
USER_A = "arn:aws:iam::111122223333:user/a"
USER_B = "arn:aws:iam::111122223333:user/b"
ROLE_R = "arn:aws:iam::111122223333:role/r"


def score_windows(driver: neo4j.Driver) -> None:
    """Three identities tied at score 1.0 in window B (raw b > r > a, the reverse of uid order);
    user b also scored in window A."""
    driver.execute_query("MERGE (:User {uid: $a}) MERGE (:User {uid: $b}) MERGE (:Role {uid: $r})",
                         a=USER_A, b=USER_B, r=ROLE_R)

    def run(run_id: str, start: datetime) -> ScoringRun:
        return ScoringRun(run_id, "model-1", start + timedelta(days=2), 0.99, start, start + timedelta(days=1))

    write_window_scores(driver, [NodeScore("User", USER_B, 0.95, 1, False, ["odd hour"], raw=1.5)], [],
                        run("run-a", WINDOW_A))
    write_window_scores(driver, [NodeScore("User", USER_A, 1.0, 2, True, raw=2.0),
                                 NodeScore("User", USER_B, 1.0, 1, True, ["new role"], raw=5.0),
                                 NodeScore("Role", ROLE_R, 1.0, 1, True, raw=3.0)], [], run("run-b", WINDOW_B))


def cli_env(settings: Neo4jSettings) -> dict[str, str]:
    return {"NEO4J_URI": settings.uri, "NEO4J_USER": settings.user, "NEO4J_PASSWORD": settings.password,
            "NEO4J_DATABASE": settings.database}


@pytest.mark.integration
@pytest.mark.parametrize("name", ["top-findings", "top-anomalous-entities", "top-anomalous-identities"])
def test_score_ties_go_to_the_higher_raw_score_not_to_the_uid(clean_db: neo4j.Driver, name: str) -> None:
    score_windows(clean_db)
    cypher, values = load_hunts()[name].bind()
    records, _, _ = clean_db.execute_query(cypher, values)
    assert [r["uid"] for r in records] == [USER_B, ROLE_R, USER_A]


@pytest.mark.integration
def test_top_findings_shows_each_entity_s_latest_window(clean_db: neo4j.Driver) -> None:
    score_windows(clean_db)
    cypher, values = load_hunts()["top-findings"].bind({"limit": "1"})
    records, _, _ = clean_db.execute_query(cypher, values)
    assert [(r["label"], r["uid"], r["score"], r["anomalous"], r["reasons"], r["score_window"].to_native())
            for r in records] == [("User", USER_B, 1.0, True, ["new role"], WINDOW_B)]


@pytest.mark.integration
def test_score_history_lists_an_entity_s_windows_oldest_first_keeping_the_most_recent(
    clean_db: neo4j.Driver, neo4j_settings: Neo4jSettings
) -> None:
    score_windows(clean_db)
    hunt = load_hunts()["score-history"]
    cypher, values = hunt.bind({"uid": USER_B})
    records, _, _ = clean_db.execute_query(cypher, values)
    assert [(r["window_start"].to_native(), r["score"], r["rank"], r["anomalous"], r["reasons"], r["run"])
            for r in records] == [(WINDOW_A, 0.95, 1, False, ["odd hour"], "run-a"),
                                  (WINDOW_B, 1.0, 1, True, ["new role"], "run-b")]
    cypher, values = hunt.bind({"uid": USER_B, "limit": "1"})
    records, _, _ = clean_db.execute_query(cypher, values)
    assert [r["run"] for r in records] == ["run-b"]
    result = CliRunner().invoke(cli, ["query", "score-history", "-p", f"uid={USER_B}", "--format", "table"],
                                env=cli_env(neo4j_settings), terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "score-history: 2 row(s)" in result.output and "run-a" in result.output
    piped = CliRunner().invoke(cli, ["query", "score-history", "-p", f"uid={USER_B}"], env=cli_env(neo4j_settings))
    assert piped.exit_code == 0, piped.output
    rows = [json.loads(line) for line in piped.stdout.splitlines()]  # JSON lines when piped
    assert [(r["window_start"], r["run"], r["anomalous"]) for r in rows] == [
        ("2026-03-01T00:00:00Z", "run-a", False), ("2026-03-02T00:00:00Z", "run-b", True)]


def run_hunt(driver: neo4j.Driver, name: str, **overrides: str) -> list[neo4j.Record]:
    cypher, values = load_hunts()[name].bind(overrides)
    records, _, _ = driver.execute_query(cypher, values)
    return records


@pytest.mark.integration
def test_relationship_ties_go_to_the_more_unusual_endpoint_not_to_more_events(clean_db: neo4j.Driver) -> None:
    """Three relationships equally unusual: the endpoint scored higher (then raw) wins, whatever the events or uids."""
    clean_db.execute_query(
        "UNWIND $rows AS row MERGE (u:User {uid: row.user}) SET u.anomaly_score = row.score, u.anomaly_raw = row.raw "
        "MERGE (b:Bucket {uid: row.bucket}) MERGE (u)-[r:ACCESS {window: datetime('2026-03-02T00:00:00Z')}]->(b) "
        "SET r.count = row.events, r.edge_anomaly = 0.95",
        rows=[{"user": "user:a", "score": 0.2, "raw": 9.0, "events": 9, "bucket": "bucket:x"},
              {"user": "user:b", "score": 0.99, "raw": 2.0, "events": 5, "bucket": "bucket:y"},
              {"user": "user:c", "score": 0.99, "raw": 5.0, "events": 1, "bucket": "bucket:z"}])
    records = run_hunt(clean_db, "top-anomalous-relationships")
    assert [r["source"] for r in records] == ["User:user:c", "User:user:b", "User:user:a"]


@pytest.mark.integration
def test_assume_role_chain_ties_go_to_the_principal_that_scored_higher(clean_db: neo4j.Driver) -> None:
    """Two chains with the same worst hop: the higher-scored principal's first, though its chain is shorter and
    its uid sorts last."""
    clean_db.execute_query(
        "MERGE (p1:User {uid: 'user:p1'}) SET p1.anomaly_score = 0.5 "
        "MERGE (p2:User {uid: 'user:p2'}) SET p2.anomaly_score = 0.9 "
        "MERGE (r1:Role {uid: 'role:r1'}) MERGE (r2:Role {uid: 'role:r2'}) MERGE (r3:Role {uid: 'role:r3'}) "
        "MERGE (r4:Role {uid: 'role:r4'}) MERGE (r5:Role {uid: 'role:r5'}) "
        "MERGE (p1)-[:ASSUMES_ROLE {edge_anomaly: 0.9}]->(r1) MERGE (r1)-[:ASSUMES_ROLE {edge_anomaly: 0.1}]->(r2) "
        "MERGE (r2)-[:ASSUMES_ROLE {edge_anomaly: 0.1}]->(r3) "
        "MERGE (p2)-[:ASSUMES_ROLE {edge_anomaly: 0.9}]->(r4) MERGE (r4)-[:ASSUMES_ROLE {edge_anomaly: 0.1}]->(r5)")
    records = run_hunt(clean_db, "unusual-assume-role-chains")
    assert [(r["principal"], r["hops"]) for r in records] == [("user:p2", 2), ("user:p1", 3), ("user:p1", 2)]


# A public address reaches VM 1 (10.0.1.5, subnet A); the database sits in subnet B with VM 2. Both subnets are in
# one VPC (a Subnet with kind 'vpc'), everything in one account: placement, not reachability.
PLACEMENT = """
MERGE (ip:IP {uid: 'ip:203.0.113.9'}) SET ip.public = true
MERGE (ip1:IP {uid: 'ip:10.0.1.5'}) SET ip1.public = false
MERGE (ip2:IP {uid: 'ip:10.0.2.6'}) SET ip2.public = false
MERGE (vm1:VM {uid: 'vm:1'}) MERGE (vm2:VM {uid: 'vm:2'}) MERGE (db:Database {uid: 'db:orders'})
MERGE (vpc:Subnet {uid: 'vpc:main'}) SET vpc.kind = 'vpc'
MERGE (a:Subnet {uid: 'subnet:a'}) SET a.kind = 'subnet'
MERGE (b:Subnet {uid: 'subnet:b'}) SET b.kind = 'subnet'
MERGE (acct:CloudAccount {uid: 'aws:111122223333'})
MERGE (ip)-[:CONNECTS_TO {window: datetime('2026-03-02T00:00:00Z'), edge_anomaly: 0.9}]->(ip1)
MERGE (vm1)-[:HAS_IP]->(ip1) MERGE (vm2)-[:HAS_IP]->(ip2)
MERGE (vpc)-[:CONTAINS]->(a) MERGE (vpc)-[:CONTAINS]->(b)
MERGE (a)-[:CONTAINS]->(vm1) MERGE (a)-[:CONTAINS]->(ip1)
MERGE (b)-[:CONTAINS]->(vm2) MERGE (b)-[:CONTAINS]->(ip2) MERGE (b)-[:CONTAINS]->(db)
WITH acct UNWIND ['vm:1', 'vm:2', 'db:orders', 'vpc:main', 'subnet:a', 'subnet:b'] AS uid
MATCH (n {uid: uid}) MERGE (acct)-[:CONTAINS]->(n)
"""


@pytest.mark.integration
def test_internet_to_database_never_walks_through_the_account_or_the_vpc(clean_db: neo4j.Driver) -> None:
    clean_db.execute_query(PLACEMENT)
    assert run_hunt(clean_db, "internet-to-database-paths", min_edge_anomaly="0.0") == []
    clean_db.execute_query(  # VM 2 (beside the database) talks to VM 1: a flow away from the database, not to it
        "MATCH (vm1:VM {uid: 'vm:1'}), (vm2:VM {uid: 'vm:2'}) "
        "MERGE (vm2)-[:CONNECTS_TO {window: datetime('2026-03-02T00:00:00Z'), edge_anomaly: 0.9}]->(vm1)")
    assert run_hunt(clean_db, "internet-to-database-paths", min_edge_anomaly="0.0") == []


@pytest.mark.integration
def test_internet_to_database_follows_a_real_flow_in_its_direction(clean_db: neo4j.Driver) -> None:
    clean_db.execute_query(PLACEMENT)
    clean_db.execute_query(  # VM 1 talks to the database: a network path now exists
        "MATCH (vm1:VM {uid: 'vm:1'}), (db:Database {uid: 'db:orders'}) "
        "MERGE (vm1)-[:CONNECTS_TO {window: datetime('2026-03-02T00:00:00Z'), edge_anomaly: 0.7}]->(db)")
    [row] = run_hunt(clean_db, "internet-to-database-paths")
    assert (row["internet_ip"], row["database"], row["hops"]) == ("ip:203.0.113.9", "db:orders", 3)
    assert row["relationships"] == ["CONNECTS_TO", "HAS_IP", "CONNECTS_TO"]
    assert row["steps"] == ["IP:ip:203.0.113.9", "IP:ip:10.0.1.5", "VM:vm:1", "Database:db:orders"]


@pytest.mark.integration
def test_internet_to_database_ties_go_to_the_more_unusual_path_not_to_the_address(clean_db: neo4j.Driver) -> None:
    clean_db.execute_query(
        "MERGE (db:Database {uid: 'db:orders'}) WITH db UNWIND $flows AS flow "
        "MERGE (ip:IP {uid: flow.ip}) SET ip.public = true "
        "MERGE (ip)-[:CONNECTS_TO {window: datetime('2026-03-02T00:00:00Z'), edge_anomaly: flow.anomaly}]->(db)",
        flows=[{"ip": "ip:198.51.100.1", "anomaly": 0.6}, {"ip": "ip:203.0.113.9", "anomaly": 0.9}])
    records = run_hunt(clean_db, "internet-to-database-paths")
    assert [(r["internet_ip"], r["max_edge_anomaly"]) for r in records] == [("ip:203.0.113.9", 0.9),
                                                                            ("ip:198.51.100.1", 0.6)]


# ---- every hunt against a scored estate ------------------------------------------------------


def run_cli(estate: ScoredEstate, *args: str) -> str:
    result = CliRunner().invoke(cli, ["query", *args, "--format", "table"], env=cli_env(estate.settings),
                                terminal_width=400)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.integration
@pytest.mark.parametrize("name", PACK)
def test_each_hunt_runs_as_is_the_way_browser_runs_the_file(scored_estate: ScoredEstate, name: str) -> None:
    hunt = load_hunts()[name]
    records, _, keys = scored_estate.driver.execute_query(hunt.text, database_=scored_estate.database)
    assert keys == documented_columns()[name], "docs/findings.md lists other columns for this hunt"
    assert len(records) <= next(p.default for p in hunt.parameters if p.name == "limit")


def documented_columns() -> dict[str, list[str]]:
    """The per-hunt column table of docs/findings.md: what scripts reading `gnnsec query --format json` rely on."""
    text = (Path(__file__).parents[1] / "docs" / "findings.md").read_text()
    rows = re.findall(r"^\| `([a-z-]+)` \| (`.+`) \|$", text, flags=re.MULTILINE)
    return {name: re.findall(r"`([^`]+)`", columns) for name, columns in rows}


def test_every_hunt_has_its_columns_documented() -> None:
    assert set(documented_columns()) == set(load_hunts())


@pytest.mark.integration
@pytest.mark.parametrize("name", PACK)
def test_each_hunt_runs_through_gnnsec_query_with_every_parameter_given(scored_estate: ScoredEstate, name: str) -> None:
    hunt = load_hunts()[name]
    args = [f"{p.name}={p.default}" for p in hunt.parameters if p.name != "limit"] + ["limit=3"]
    output = run_cli(scored_estate, name, *[item for arg in args for item in ("-p", arg)])
    cypher, values = hunt.bind(dict(arg.split("=", 1) for arg in args))
    records, _, _ = scored_estate.driver.execute_query(cypher, values, database_=scored_estate.database)
    assert len(records) <= 3
    assert f"{name}: {len(records)} row(s)" in output


@pytest.mark.integration
def test_the_identity_hunt_lists_the_top_scored_users_and_roles_first(scored_estate: ScoredEstate) -> None:
    """Whole-graph scoring (``score_graph``) writes no ``anomaly_raw``, so ties in the calibrated score would
    fall to uid order unnoticed: give every identity a raw score that runs against its uid order, so only a
    hunt that breaks ties by raw score lists them as expected."""
    identities = sorted((s for s in scored_estate.result.node_scores if s.label in ("User", "Role")),
                        key=lambda s: s.uid)
    raw = {s.uid: float(position) for position, s in enumerate(identities)}  # later uid, higher raw
    top = sorted(identities, key=lambda s: (-s.score, -raw[s.uid]))[:5]
    tied = [s for s in top if sum(1 for other in identities if other.score == s.score) > 1]
    assert tied, "no tie among the top identities: this test would not tell raw-score from uid ordering"
    driver, database = scored_estate.driver, scored_estate.database
    driver.execute_query("UNWIND $rows AS row MATCH (n {uid: row.uid}) WHERE n:User OR n:Role "
                         "SET n.anomaly_raw = row.raw", rows=[{"uid": u, "raw": r} for u, r in raw.items()],
                         database_=database)
    try:
        output = run_cli(scored_estate, "top-anomalous-identities", "-p", "limit=5")
        assert "top-anomalous-identities: 5 row(s)" in output
        hunt = load_hunts()["top-anomalous-identities"]
        cypher, values = hunt.bind({"limit": "5"})
        records, _, _ = driver.execute_query(cypher, values, database_=database)
        assert [r["uid"] for r in records] == [s.uid for s in top]
        assert f"{round(top[0].score, 4):.4g}" in output  # rich may shorten the uid column to fit the terminal
    finally:
        driver.execute_query("MATCH (n) WHERE n:User OR n:Role REMOVE n.anomaly_raw", database_=database)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "relaxed"),
    [
        ("top-anomalous-entities", {"min_score": "0.9"}),
        ("top-findings", {}),
        ("top-anomalous-relationships", {"min_edge_anomaly": "0.5"}),
        ("internet-to-database-paths", {"min_edge_anomaly": "0.0"}),
        ("new-cross-cloud-access", {"days": "30"}),
        ("anomalous-vm-start-bursts", {"min_starts": "1"}),
        ("unusual-assume-role-chains", {"min_edge_anomaly": "0.0"}),
        ("vulnerable-internet-facing-hosts", {"min_score": "0.0"}),
    ],
)
def test_each_hunt_finds_rows_in_an_estate_with_attacks_once_its_thresholds_are_relaxed(
    scored_estate: ScoredEstate, name: str, relaxed: dict[str, str]
) -> None:
    cypher, values = load_hunts()[name].bind(relaxed)
    records, _, _ = scored_estate.driver.execute_query(cypher, values, database_=scored_estate.database)
    assert records, f"{name} with {relaxed} found nothing in the scored estate"


@pytest.mark.integration
def test_vulnerable_hosts_are_the_inventory_vms_the_scanner_named(scored_estate: ScoredEstate) -> None:
    """Scan reports name a host, stored as VM ``host:<name>``; the hunt reports the inventory VM it is."""
    cypher, values = load_hunts()["vulnerable-internet-facing-hosts"].bind({"min_score": "0"})
    records, _, _ = scored_estate.driver.execute_query(cypher, values, database_=scored_estate.database)
    hosts = [r["host"] for r in records]
    assert hosts and all(h.startswith("arn:aws:ec2:") for h in hosts)
    assert all(r["score"] is not None and r["max_cvss"] >= 7.0 for r in records)
