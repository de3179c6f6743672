"""Every command works with a ``neo4j://`` (routing) URI against the local single server, not only ``bolt://``.

The driver asks the server for a routing table first; a Community server answers with itself for reads and
writes. Pinned through the real CLI against the real Neo4j the suite starts: ingest, score, query, findings,
feedback, explain (without a trained model) and ``db status``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_score_windows import DAY0, DAYS, _load

from gnnsec.cli.main import cli

NATIVE = Path(__file__).parent / "fixtures" / "native" / "sample.jsonl"


def routing(settings: Any) -> dict[str, str | None]:
    assert settings.uri.startswith("bolt://"), settings.uri
    return {"NEO4J_URI": "neo4j://" + settings.uri.removeprefix("bolt://"), "NEO4J_USER": settings.user,
            "NEO4J_PASSWORD": settings.password, "NEO4J_DATABASE": settings.database}


def run(env: dict[str, str | None], *args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.integration
def test_every_command_works_through_a_routing_uri(clean_db: Any, neo4j_settings: Any, tmp_path: Path) -> None:
    env = routing(neo4j_settings)
    assert "neo4j://" in run(env, "db", "status").output

    # The sample holds one deliberately bad line (an unknown label): quarantined, the rest written.
    ingest = ("ingest", "native", str(NATIVE), "--skip-bad", "--quarantine", str(tmp_path / "quarantine.jsonl"))
    run(env, *ingest)
    count = "MATCH (n) WITH count(n) AS n RETURN n, COUNT { ()-[]->() } AS r"
    [first] = [(r["n"], r["r"]) for r in clean_db.execute_query(count).records]
    run(env, *ingest)  # re-ingest through routing is a no-op as well
    [second] = [(r["n"], r["r"]) for r in clean_db.execute_query(count).records]
    assert first == second and first[0] > 0 and first[1] > 0

    clean_db.execute_query("MATCH (n) DETACH DELETE n")
    _load(clean_db)
    last = (DAY0 + timedelta(days=DAYS - 1)).date().isoformat()
    [day] = json.loads(run(env, "score", "--since", last, "--format", "json").stdout)
    assert {"uid": "u0", "label": "User", "rank": 1}.items() <= next(
        f for f in day["findings"] if f["uid"] == "u0").items()
    records = json.loads(run(env, "query", "top-findings", "--format", "json").stdout)
    assert any(r["uid"] == "u0" for r in records)
    lines = run(env, "findings", "--format", "jsonl").stdout.splitlines()
    assert any(json.loads(line)["uid"] == "u0" for line in lines)
    run(env, "feedback", "--benign", "u1", "--note", "routing test")
    # explain needs no trained model for what the default detector found: its scored days and their reasons.
    without_model = {**env, "GNNSEC_HOME": str(tmp_path / "no-models")}
    why = json.loads(run(without_model, "explain", "u0", "--format", "json").stdout)
    assert (why["uid"], why["label"], why["model_id"], why["neighbourhood_score"]) == ("u0", "User", None, None)
    assert why["scored_days"][-1]["anomalous"] and why["scored_days"][-1]["reasons"]
    assert "no trained graph model" in run(without_model, "explain", "u0", "--format", "table").output


@pytest.mark.integration
def test_exports_run_in_read_sessions_so_a_cluster_can_serve_them_from_a_secondary(clean_db: Any) -> None:
    """Every session the exporter opens asks for read access (a routing driver sends those to readers)."""
    import neo4j

    from gnnsec.graphdb.export import SnapshotFilter, export_snapshot

    _load(clean_db)
    modes: list[Any] = []

    class Spy:
        def session(self, **options: Any) -> Any:
            modes.append(options.get("default_access_mode"))
            return clean_db.session(**options)

    snapshot = export_snapshot(Spy(), SnapshotFilter(around=("u0",), hops=1))  # type: ignore[arg-type]
    assert snapshot.num_nodes > 0
    # the scope, the node ids, then a session per batch query (the next batch runs while one is decoded)
    assert len(modes) >= 3 and set(modes) == {neo4j.READ_ACCESS}
