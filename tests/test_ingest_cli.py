"""`gnnsec ingest` end to end against the real Neo4j: formats detected, idempotent, bad files write nothing."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gnnsec.cli.main import cli
from gnnsec.synth import generate

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent / "fixtures"
AWS = FIXTURES / "aws"
REAL_AWS_SAMPLES = [
    AWS / "iam",
    AWS / "inventory",
    AWS / "cloudtrail" / "stratus-red-team",
    AWS / "cloudtrail" / "otrf",
]
"""The public AWS samples (the Panther slice holds deliberately broken records and is tested apart)."""


def run(settings: Any, *args: str) -> Any:
    env = {"NEO4J_URI": settings.uri, "NEO4J_USER": settings.user, "NEO4J_PASSWORD": settings.password,
           "NEO4J_DATABASE": settings.database}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def counts(driver: Any) -> dict[str, int]:
    records, _, _ = driver.execute_query(
        "MATCH (n) WHERE NOT n:IngestedBatch RETURN labels(n)[0] AS label, count(*) AS n "
        "UNION ALL MATCH ()-[r]->() RETURN type(r) AS label, count(*) AS n"
    )
    return {r["label"]: r["n"] for r in records}


def fingerprint(driver: Any) -> list[Any]:
    records, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN a.uid AS a, type(r) AS t, b.uid AS b, r.count AS c, r.first_seen AS f, "
        "r.last_seen AS l ORDER BY a, t, b, f"
    )
    return [tuple(r.values()) for r in records]


def test_auto_detects_every_aws_sample_and_loads_the_expected_labels(clean_db: Any, neo4j_settings: Any) -> None:
    result = run(neo4j_settings, "ingest", "auto", *map(str, REAL_AWS_SAMPLES))
    assert result.exit_code == 0, result.output
    found = counts(clean_db)
    for label in ("User", "Role", "VM", "IP", "CloudAccount", "Subnet", "Bucket"):
        assert found.get(label, 0) > 0, label
    for rel in ("ASSUMES_ROLE", "ACCESS", "MODIFIES", "AUTHENTICATES_FROM", "CONTAINS", "LATERAL_MOVEMENT"):
        assert found.get(rel, 0) > 0, rel


def test_ingesting_the_same_files_again_changes_no_count_and_no_property(clean_db: Any, neo4j_settings: Any) -> None:
    samples = map(str, REAL_AWS_SAMPLES)
    assert run(neo4j_settings, "ingest", "auto", *samples).exit_code == 0
    before_counts, before = counts(clean_db), fingerprint(clean_db)
    again = run(neo4j_settings, "ingest", "auto", *map(str, REAL_AWS_SAMPLES))
    assert again.exit_code == 0
    assert counts(clean_db) == before_counts
    assert fingerprint(clean_db) == before


def corrupt_copy(tmp_path: Path) -> Path:
    source = AWS / "cloudtrail" / "stratus-red-team" / "aws.execution.ssm-send-command.json"
    records = json.loads(source.read_text())
    del records[3]["eventName"]
    bad = tmp_path / "broken-cloudtrail.json"
    bad.write_text(json.dumps(records))
    return bad


def test_a_corrupt_file_fails_naming_file_and_record_and_writes_nothing(
    clean_db: Any, neo4j_settings: Any, tmp_path: Path
) -> None:
    assert run(neo4j_settings, "ingest", "aws-iam", str(AWS / "iam" / "cloudsplaining-example-authz-details.json")
               ).exit_code == 0
    before_counts, before = counts(clean_db), fingerprint(clean_db)
    bad = corrupt_copy(tmp_path)
    result = run(neo4j_settings, "ingest", "cloudtrail", str(bad))
    assert result.exit_code == 1
    assert "broken-cloudtrail.json" in result.output and "[3]" in result.output
    assert counts(clean_db) == before_counts
    assert fingerprint(clean_db) == before


def test_truncated_gzip_is_a_clear_error_not_a_traceback(clean_db: Any, neo4j_settings: Any, tmp_path: Path) -> None:
    data = gzip.compress((AWS / "cloudtrail" / "otrf" / "ec2_proxy_s3_exfiltration.jsonl").read_bytes())
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(data[: len(data) // 2])
    result = run(neo4j_settings, "ingest", "cloudtrail", str(truncated))
    assert result.exit_code == 1
    assert "cut.jsonl.gz" in result.output
    assert counts(clean_db) == {}


def test_skip_bad_quarantines_the_bad_record_and_loads_the_rest(
    clean_db: Any, neo4j_settings: Any, tmp_path: Path
) -> None:
    bad = corrupt_copy(tmp_path)
    quarantine = tmp_path / "quarantine.jsonl"
    result = run(neo4j_settings, "ingest", "cloudtrail", "--skip-bad", "--quarantine", str(quarantine), str(bad))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [(q["file"], q["where"]) for q in lines] == [(str(bad), "[3]")]
    assert counts(clean_db).get("LATERAL_MOVEMENT", 0) > 0


def test_a_generated_estate_loads_with_zero_skipped_and_every_labelled_entity_exists(
    clean_db: Any, neo4j_settings: Any, tmp_path: Path
) -> None:
    estate = tmp_path / "estate"
    generate(estate, seed=5, size="small")
    result = run(neo4j_settings, "ingest", "auto", str(estate))
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.output
    with (estate / "labels" / "entities.csv").open(newline="") as handle:
        labelled = [(row["uid"], row["label"]) for row in csv.DictReader(handle)]
    records, _, _ = clean_db.execute_query(
        "UNWIND $rows AS row MATCH (n {uid: row[0]}) WHERE row[1] IN labels(n) RETURN count(DISTINCT n) AS n",
        rows=[list(r) for r in labelled],
    )
    assert records[0]["n"] == len(set(labelled))
    shutil.rmtree(estate)
