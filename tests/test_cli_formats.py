"""``--format table|json|jsonl|csv`` on score, query, explain, findings, db status and eval: every JSON output parses
and carries the fields docs/findings.md documents (names and types pinned here), CSV parses, times are ISO-8601 to
the second; and the tables stay readable at 80 columns (no line wider, no uid or header cut mid-token)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from scored_estate import ScoredEstate, scored_estate_fixture, scored_estate_model_fixture  # noqa: F401

from gnnsec.cli.main import cli
from gnnsec.cli.output import emit, iso_utc, plain, print_table, short_name, short_text

WIDTH = 80
ISO_SECOND = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "findings.md"
NUMBER = (int, float)
NULL = type(None)

# ---- the documented fields (docs/findings.md), pinned: name -> accepted JSON types --------------------------

SCORE_RUN = {"run_id": str, "window_start": str, "window_end": str, "model_id": str, "threshold": NUMBER,
             "entities_scored": int, "relationships_scored": int, "anomalous": int, "reference_pairs": int,
             "reference_days": int, "seconds": NUMBER, "findings": list}
SCORE_FINDING = {"uid": str, "label": str, "score": NUMBER, "raw": NUMBER, "rank": int, "anomalous": bool,
                 "calibration": str, "reasons": list}
FINDING = {"uid": str, "label": str, "name": (str, NULL), "cloud": (str, NULL), "account": (str, NULL),
           "region": (str, NULL), "window_start": str, "window_end": str, "score": NUMBER, "raw": NUMBER,
           "rank": int, "anomalous": bool, "threshold": NUMBER, "calibration": str, "reasons": list,
           "evidence": list, "run_id": str, "model_id": str, "scored_at": str}
EXPLAIN = {"uid": str, "label": str, "model_id": str, "hops": int, "neighbourhood_score": NUMBER,
           "stored_score": (*NUMBER, NULL), "stored_rank": (int, NULL), "anomalous": (bool, NULL),
           "scored_days": list, "unusual_relationships": list, "unusual_features": list, "pulling_neighbours": list}
EXPLAIN_DAY = {"window_start": str, "score": NUMBER, "rank": int, "anomalous": bool, "reasons": list}
EXPLAIN_RELATIONSHIP = {"type": str, "direction": str, "peer": str, "edge_anomaly": NUMBER}
EXPLAIN_FEATURE = {"feature": str, "z": NUMBER}
DB_STATUS = {"server": str, "uri_origin": (str, NULL), "running": bool, "pid": (int, NULL), "version": (str, NULL),
             "bolt_uri": str, "browser_url": (str, NULL), "bolt_port": (int, NULL), "http_port": (int, NULL),
             "user": str, "database": str, "data_dir": (str, NULL), "log_file": (str, NULL)}
QUERY_LIST = {"name": str, "description": str, "parameters": list}
EVAL_ROW = {"model": str, "type": str, "mode": str, "relations": str, "params": int, "runs": int, "splits": list,
            "seconds": NUMBER, "User_support": (*NUMBER, NULL), "User_auc": (*NUMBER, NULL),
            "User_auc_std": (*NUMBER, NULL), "User_ap": (*NUMBER, NULL), "User_f1": (*NUMBER, NULL),
            "User_mcc": (*NUMBER, NULL), "Role_auc": (*NUMBER, NULL), "VM_precision": (*NUMBER, NULL),
            "VM_recall": (*NUMBER, NULL), "edge_auc": (*NUMBER, NULL), "edge_ap_std": (*NUMBER, NULL)}
DOCUMENTED = {"score": {**SCORE_RUN, **SCORE_FINDING}, "query": QUERY_LIST, "explain": {**EXPLAIN, **EXPLAIN_DAY,
              **EXPLAIN_RELATIONSHIP, **EXPLAIN_FEATURE}, "findings": FINDING, "db status": DB_STATUS,
              "eval": {k: v for k, v in EVAL_ROW.items() if "_" not in k or k.startswith("edge")}}
"""Per section of docs/findings.md, the fields it must name (eval's per-label metrics are named by pattern)."""


def check(document: dict[str, Any], schema: dict[str, Any], where: str) -> None:
    for name, types in schema.items():
        assert name in document, f"{where}: no field {name!r} in {sorted(document)}"
        value = document[name]
        accepted = types if isinstance(types, tuple) else (types,)
        wrong_bool = isinstance(value, bool) and bool not in accepted  # True is an int to isinstance
        assert isinstance(value, accepted) and not wrong_bool, f"{where}: {name}={value!r} is not {accepted}"


# ---- running the CLI like a pipe, and like an 80-column terminal ---------------------------------------------


def cli_env(settings: Any) -> dict[str, str | None]:
    return {"NEO4J_URI": settings.uri, "NEO4J_USER": settings.user, "NEO4J_PASSWORD": settings.password,
            "NEO4J_DATABASE": settings.database, "COLUMNS": str(WIDTH)}


@pytest.fixture(autouse=True)
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every console at 80 columns, whatever the terminal running the tests says."""
    from gnnsec.cli import common, db

    for console in (common.console, db.console):
        monkeypatch.setattr(console, "_width", WIDTH)


def run(env: dict[str, str | None], *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env, terminal_width=WIDTH)
    assert result.exit_code == code, result.output
    return result


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def as_jsonl(result: Result) -> list[Any]:
    lines = result.stdout.splitlines()
    assert lines, "no JSON lines"
    return [json.loads(line) for line in lines]


def as_csv(result: Result) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(result.stdout)))


def readable(text: str, whole: Sequence[str] = ()) -> None:
    """No line wider than 80 columns, and each of ``whole`` (short names, headers) unbroken on one line."""
    lines = text.splitlines()
    too_wide = [line for line in lines if len(line) > WIDTH]
    assert not too_wide, "\n".join(too_wide)
    for token in whole:
        assert any(token in line for line in lines), f"{token!r} is not whole on any line of:\n{text}"


# ---- the serializer, without a database ------------------------------------------------------------------------


def test_plain_gives_iso_seconds_numbers_and_nulls() -> None:
    from datetime import date, timezone

    import neo4j.time

    moment = datetime(2026, 3, 2, 1, 2, 3, 456789, tzinfo=timezone(timedelta(hours=2)))
    assert iso_utc(moment) == "2026-03-01T23:02:03Z"
    assert plain(neo4j.time.DateTime(2026, 3, 2, 0, 0, 0, 123456789, tzinfo=UTC)) == "2026-03-02T00:00:00Z"
    assert plain({"d": date(2026, 3, 2), "x": float("nan"), "n": (1, 2.5), "b": True}) == {
        "d": "2026-03-02", "x": None, "n": [1, 2.5], "b": True}


def test_emit_writes_parseable_json_jsonl_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"uid": "arn:aws:iam::1:user/a,b", "score": 0.5, "reasons": ["x, \"y\""], "ok": False, "none": None}]
    emit(rows, "json")
    assert json.loads(capsys.readouterr().out) == rows
    emit(rows, "jsonl")
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == rows
    emit(rows, "csv")
    [row] = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert row == {"uid": "arn:aws:iam::1:user/a,b", "score": "0.5", "reasons": '["x, \\"y\\""]', "ok": "false",
                   "none": ""}


@pytest.mark.parametrize(("uid", "short"), [
    ("arn:aws:iam::123456789012:role/break-glass-administrator-for-production",
     "role/break-glass-admini…-production@123456789012"),
    ("gcp:serviceAccount:loader@corp-analytics-664869.iam.gserviceaccount.com", "gcp:sa:loader@corp-analytics-664869"),
    ("…:123456789012:role/etl-dev", "role/etl-dev@123456789012"),  # as the detector's reasons cut an ARN
    ("ip:203.0.113.9", "ip:203.0.113.9"),
])
def test_short_names_fit_a_narrow_table(uid: str, short: str) -> None:
    assert short_name(uid) == short and len(short) <= 48
    assert short_text(f"first time it assumed {uid} (never seen before)") == \
        f"first time it assumed {short} (never seen before)"


def test_a_table_too_wide_for_80_columns_becomes_blocks_without_cutting_a_uid() -> None:
    from rich.console import Console

    out = Console(width=WIDTH, record=True, file=io.StringIO())
    long_name = short_name("arn:aws:iam::123456789012:assumed-role/very-long-role-name-for-etl/session")
    print_table("wide", ("#", "label", "entity", "score", "rank", "why"),
                [["1", "Role", long_name, "0.9990", "1", "first time it did something odd " * 3]], out=out)
    readable(out.export_text(), [long_name, "entity"])


def test_every_command_documents_its_fields_in_docs_findings_md() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for command, schema in DOCUMENTED.items():
        heading = f"## `gnnsec {command}`"
        assert heading in text, heading
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        for name in schema:
            assert f"`{name}`" in section, f"docs/findings.md, {heading}: field {name} is not documented"


def test_every_command_takes_the_four_formats() -> None:
    for command in (["score"], ["query"], ["explain"], ["findings"], ["db", "status"], ["eval"]):
        shown = " ".join(CliRunner().invoke(cli, [*command, "--help"]).output.split())
        assert "[table|json|jsonl|csv" in shown, command


def test_db_status_of_a_stopped_local_server_in_every_format() -> None:
    import shutil
    import tempfile

    home = tempfile.mkdtemp(prefix="gs")  # short: the status prints its paths whole, never cut
    env: dict[str, str | None] = {"GNNSEC_HOME": home, "NEO4J_URI": None, "COLUMNS": str(WIDTH)}
    try:
        _stopped_status(env)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _stopped_status(env: dict[str, str | None]) -> None:
    document = as_json(run(env, "db", "status", "--format", "json", code=3))
    check(document, DB_STATUS, "db status")
    assert document["server"] == "local" and document["running"] is False
    [line] = as_jsonl(run(env, "db", "status", "--format", "jsonl", code=3))
    assert line == document
    [row] = as_csv(run(env, "db", "status", "--format", "csv", code=3))
    assert row["running"] == "false" and row["bolt_port"] == str(document["bolt_port"])
    text = run(env, "db", "status", code=3).output  # piped: plain lines, as on a terminal
    readable(text, ["stopped", "Browser", document["bolt_uri"]])


# ---- score and findings on a week of daily activity (the scored estate spans one day) ---------------------------
# These empty the database (clean_db), so they come before the scored-estate tests: the module's scored_estate
# fixture is built at its first use and restores the estate when it finds it gone.

ACCOUNT = "111122223333"
DAY0 = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 8
USER = f"arn:aws:iam::{ACCOUNT}:user/analyst-" + "{}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/break-glass-administrator-for-production"
BUCKET = "arn:aws:s3:::corp-finance-ledger-archive-2026"
SECRET = "arn:aws:s3:::corp-payroll-exports-restricted"
LAST = (DAY0 + timedelta(days=DAYS - 1)).date().isoformat()


def load_week(driver: Any) -> None:
    """12 users read one bucket daily from their own address; on the last day analyst-0 calls from a new address,
    assumes a role it never assumed and reads another bucket (long ARNs, so long reasons)."""
    rows = []
    for day in range(DAYS):
        window = DAY0 + timedelta(days=day)
        for i in range(12):
            rows += [{"src": USER.format(i), "type": "ACCESS", "dst": BUCKET, "w": window},
                     {"src": USER.format(i), "type": "AUTHENTICATES_FROM", "dst": f"ip:10.0.0.{i}", "w": window}]
    last = DAY0 + timedelta(days=DAYS - 1)
    rows += [{"src": USER.format(0), "type": "AUTHENTICATES_FROM", "dst": "ip:203.0.113.9", "w": last},
             {"src": USER.format(0), "type": "ASSUMES_ROLE", "dst": ROLE, "w": last},
             {"src": USER.format(0), "type": "ACCESS", "dst": SECRET, "w": last}]
    driver.execute_query(
        "UNWIND range(0, 11) AS i MERGE (u:User {uid: replace($user, '{}', toString(i))}) "
        "SET u.cloud = 'aws', u.account = $account MERGE (:IP {uid: 'ip:10.0.0.' + i})", user=USER, account=ACCOUNT)
    driver.execute_query(
        "MERGE (:Bucket {uid: $bucket, cloud: 'aws', account: $account}) "
        "MERGE (:Bucket {uid: $secret, cloud: 'aws', account: $account}) "
        "MERGE (:Role {uid: $role, cloud: 'aws', account: $account}) MERGE (:IP {uid: 'ip:203.0.113.9'})",
        bucket=BUCKET, secret=SECRET, role=ROLE, account=ACCOUNT)
    for rel in ("ACCESS", "AUTHENTICATES_FROM", "ASSUMES_ROLE"):
        driver.execute_query(
            f"UNWIND $rows AS row MATCH (a {{uid: row.src}}) MATCH (b {{uid: row.dst}}) "
            f"MERGE (a)-[r:{rel} {{window: row.w}}]->(b) SET r.count = 3, r.first_seen = row.w + duration('PT10H'), "
            "r.last_seen = row.w + duration('PT10H5M'), r.actions = ['GetObject']",
            rows=[r for r in rows if r["type"] == rel])


@pytest.mark.integration
def test_score_in_every_format(clean_db: Any, neo4j_settings: Any) -> None:
    load_week(clean_db)
    env = cli_env(neo4j_settings)
    [document] = as_json(run(env, "score", "--since", LAST, "--format", "json"))
    check(document, SCORE_RUN, "score")
    assert document["window_start"] == f"{LAST}T00:00:00Z" and ISO_SECOND.match(document["window_end"])
    assert document["findings"][0]["uid"] == USER.format(0)  # full uids
    for finding in document["findings"]:
        check(finding, SCORE_FINDING, "score finding")
    piped = as_jsonl(run(env, "score", "--since", LAST))  # piped: JSON lines by default
    assert [d["window_start"] for d in piped] == [document["window_start"]]
    rows = as_csv(run(env, "score", "--since", LAST, "--format", "csv"))
    assert [r["uid"] for r in rows] == [f["uid"] for f in piped[0]["findings"]]
    assert all(r["window_start"] == document["window_start"] and isinstance(json.loads(r["reasons"]), list)
               for r in rows)
    table = run(env, "score", "--since", LAST, "--format", "table").output
    readable(table, [short_name(f["uid"]) for f in piped[0]["findings"]] + ["score", "rank", "why"])
    assert ROLE not in table and short_name(ROLE) in table  # in the reasons, by its short name


@pytest.mark.integration
def test_findings_in_every_format(clean_db: Any, neo4j_settings: Any) -> None:
    load_week(clean_db)
    env = cli_env(neo4j_settings)
    run(env, "score", "--since", (DAY0 + timedelta(days=DAYS - 2)).date().isoformat(), "--format", "json")
    rows = as_json(run(env, "findings", "--min-score", "0", "--limit", "8", "--format", "json"))
    assert rows and rows[0]["uid"] == USER.format(0)
    for row in rows:
        check(row, FINDING, "findings")
        assert ISO_SECOND.match(row["window_start"]) and ISO_SECOND.match(row["scored_at"])
    assert as_jsonl(run(env, "findings", "--min-score", "0", "--limit", "8")) == rows
    table = as_csv(run(env, "findings", "--min-score", "0", "--limit", "8", "--format", "csv"))
    assert list(table[0]) == list(FINDING)
    assert [r["uid"] for r in table] == [r["uid"] for r in rows]
    assert [json.loads(r["evidence"]) for r in table] == [r["evidence"] for r in rows]
    text = run(env, "findings", "--min-score", "0", "--limit", "8", "--format", "table").output
    readable(text, [short_name(r["uid"]) for r in rows] + ["entity", "score"])


# ---- against the scored estate ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_query_in_every_format(scored_estate: ScoredEstate) -> None:
    env = cli_env(scored_estate.settings)
    rows = as_json(run(env, "query", "top-findings", "--format", "json"))
    assert rows and all(isinstance(r["uid"], str) for r in rows)
    for row in rows:
        for value in row.values():
            assert not isinstance(value, str) or "T" not in value[:11] or ISO_SECOND.match(value), value
    assert as_jsonl(run(env, "query", "top-findings")) == rows
    assert [r["uid"] for r in as_csv(run(env, "query", "top-findings", "--format", "csv"))] == [r["uid"] for r in rows]
    text = run(env, "query", "top-findings", "--format", "table").output
    readable(text, [short_name(r["uid"]) for r in rows] + list(rows[0]))
    readable(run(env, "query", "top-anomalous-identities", "--format", "table").output)


def test_query_list_in_every_format() -> None:
    from gnnsec.hunts import load_hunts

    env: dict[str, str | None] = {"COLUMNS": str(WIDTH)}
    hunts = load_hunts()
    listed = as_json(run(env, "query", "--list", "--format", "json"))
    for row in listed:
        check(row, QUERY_LIST, "query --list")
    assert [r["name"] for r in listed] == list(hunts)
    assert as_csv(run(env, "query", "--list", "--format", "csv"))[0]["name"] == listed[0]["name"]
    text = run(env, "query", "--list", "--format", "table").output
    defaults = [f"{p.name}={p.default}" for hunt in hunts.values() for p in hunt.parameters]
    readable(text, list(hunts) + defaults + ["parameters"])  # every default in full
    assert "…" not in text


@pytest.mark.integration
def test_explain_in_every_format(scored_estate: ScoredEstate) -> None:
    env = cli_env(scored_estate.settings)
    top = max((s for s in scored_estate.result.node_scores if s.label in ("User", "Role")),
              key=lambda s: (s.score, s.raw))
    model = str(scored_estate.checkpoint_path)
    document = as_json(run(env, "explain", top.uid, "--model", model, "--format", "json"))
    check(document, EXPLAIN, "explain")
    assert document["uid"] == top.uid and document["unusual_relationships"] and document["unusual_features"]
    for day in document["scored_days"]:
        check(day, EXPLAIN_DAY, "explain day")
        assert ISO_SECOND.match(day["window_start"])
    for edge in document["unusual_relationships"]:
        check(edge, EXPLAIN_RELATIONSHIP, "explain relationship")
    for feature in document["unusual_features"]:
        check(feature, EXPLAIN_FEATURE, "explain feature")
        assert "#" not in feature["feature"], feature  # in words, never a hash bucket (cat:endpoint#2)
    assert as_jsonl(run(env, "explain", top.uid, "--model", model, "--format", "jsonl")) == [document]
    rows = as_csv(run(env, "explain", top.uid, "--model", model, "--format", "csv"))
    assert {r["section"] for r in rows} >= {"stored", "neighbourhood", "relationship", "feature"}
    assert all(r["uid"] == top.uid for r in rows)
    text = run(env, "explain", top.uid, "--model", model, "--format", "table").output
    peers = [short_name(e["peer"]) for e in document["unusual_relationships"]]
    shown = top.uid if len(top.label) + 1 + len(top.uid) <= WIDTH else short_name(top.uid)
    readable(text, [shown, "relationship", "direction", *peers])


@pytest.mark.integration
def test_db_status_of_an_external_server_in_every_format(neo4j_settings: Any) -> None:
    env = cli_env(neo4j_settings)
    document = as_json(run(env, "db", "status", "--format", "json"))
    check(document, DB_STATUS, "db status")
    assert document == {**document, "server": "external", "running": True, "bolt_uri": neo4j_settings.uri}
    assert as_jsonl(run(env, "db", "status", "--format", "jsonl")) == [document]
    assert as_csv(run(env, "db", "status", "--format", "csv"))[0]["server"] == "external"
    readable(run(env, "db", "status").output, ["external (NEO4J_URI)", neo4j_settings.uri])


def test_eval_rows_as_json_lines_and_csv(tmp_path: Path) -> None:
    estate = tmp_path / "estate"
    env: dict[str, str | None] = {"COLUMNS": str(WIDTH)}
    run(env, "synth", "--out", str(estate), "--size", "small", "--days", "4", "--seed", "3")
    common = ["eval", "--data", str(estate), "--models", "iforest", "--cut", "0.5"]
    rows = as_jsonl(run(env, *common, "--out", str(tmp_path / "a")))  # piped: JSON lines
    assert [r["model"] for r in rows] == ["iforest"]
    for row in rows:
        check(row, EVAL_ROW, "eval")
    saved = json.loads((tmp_path / "a" / "results.json").read_text())["rows"][0]
    assert rows[0]["User_auc"] == pytest.approx(saved["User_auc"][0])
    [row] = as_csv(run(env, *common, "--format", "csv", "--out", str(tmp_path / "b")))
    assert row["model"] == "iforest" and float(row["User_auc"]) == pytest.approx(rows[0]["User_auc"])


def test_eval_table_fits_80_columns_and_the_out_files_keep_the_whole_card(tmp_path: Path) -> None:
    estate = tmp_path / "estate"
    env: dict[str, str | None] = {"COLUMNS": str(WIDTH)}
    run(env, "synth", "--out", str(estate), "--size", "small", "--days", "4", "--seed", "3")
    out = tmp_path / "r"
    text = run(env, "eval", "--data", str(estate), "--models", "iforest,mlp-ae", "--cut", "0.5", "--format", "table",
               "--out", str(out)).stdout
    readable(text, ["model", "label", "AUC", "MCC", "iforest", "mlp-ae", "User"])
    header = next(line for line in (out / "table.md").read_text().splitlines() if line.startswith("| Model"))
    assert all(f"User_{name}" in header for name in ("AUC", "F1", "AP", "P", "R", "MCC")), header
    assert "Params" in header and "Edge_AUC" in header
