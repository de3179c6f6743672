"""``gnnsec ingest --engine spark`` (issue #14): files read and staged in Spark tasks (``local[2]``) write the
same graph as the in-process path, re-ingest changes nothing, and a bad file fails its batch and writes none
of it, as in one process. One Spark session serves the module (the CLI reuses an active one)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_ingest_parallel import BAD_EDGE, graph_state, native_dir, run

from gnnsec.errors import GnnsecError
from gnnsec.ingest.pipeline import IngestError
from gnnsec.synth import generate

PROGRESS_LINE = re.compile(r"^\[\s*\d+\.\d s\] ")

pyspark = pytest.importorskip("pyspark", reason="pyspark is in the test extra: `make test` installs it")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    from gnnsec.graphdb.local.java import find_java
    from gnnsec.ingest.spark import SparkStaging

    stager = SparkStaging("local[2]", java_home=find_java().home, app_name="gnnsec-tests")
    assert stager.parallelism == 2
    yield SparkSession.getActiveSession()
    stager.shutdown()  # it created the session, so it stops it


def _checksum(state: list[str]) -> str:
    return hashlib.sha256("\n".join(state).encode()).hexdigest()


@pytest.mark.integration
def test_spark_writes_the_same_graph_as_one_process_and_reingest_changes_nothing(
        spark: Any, clean_db: Any, neo4j_settings: Any, tmp_path: Path) -> None:
    estate = tmp_path / "estate"
    generate(estate, seed=11, size="small", days=2)
    local = run(neo4j_settings, "ingest", "auto", "--workers", "1", str(estate))
    assert local.exit_code == 0, local.output
    expected = graph_state(clean_db)
    assert len(expected) > 5000
    clean_db.execute_query("MATCH (n) DETACH DELETE n")

    first = run(neo4j_settings, "ingest", "auto", "--engine", "spark", "--master", "local[2]", str(estate))
    assert first.exit_code == 0, first.output
    assert _checksum(graph_state(clean_db)) == _checksum(expected)
    # the same files, records and events counted, whichever engine read them
    assert first.output.splitlines()[-1].split(" in ")[0] == local.output.splitlines()[-1].split(" in ")[0]

    again = run(neo4j_settings, "ingest", "auto", "--engine", "spark", str(estate))
    assert again.exit_code == 0, again.output
    assert _checksum(graph_state(clean_db)) == _checksum(expected)


@pytest.mark.integration
def test_spark_fails_on_the_same_bad_file_as_one_process_and_it_writes_nothing(
        spark: Any, clean_db: Any, neo4j_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gnnsec.ingest import pipeline

    monkeypatch.setattr(pipeline, "GROUP_MAX_FILES", 1)  # a write per file: the files before the bad one load
    directory = native_dir(tmp_path, bad={3: [BAD_EDGE], 4: [BAD_EDGE]})
    outcomes = []
    for engine in ("local", "spark"):
        clean_db.execute_query("MATCH (n) DETACH DELETE n")
        result = run(neo4j_settings, "ingest", "native", "--engine", engine, "--workers", "1", str(directory))
        assert result.exit_code == 1, result.output
        assert "part-03.jsonl" in result.output and "part-04" not in result.output, result.output
        # progress lines come on a clock (a slow run prints one more), so the error and its advice are compared
        message = [line for line in result.output.splitlines()
                   if not PROGRESS_LINE.match(line) and line != "starting Spark (local[*])"]
        outcomes.append((message, graph_state(clean_db)))
    assert outcomes[0] == outcomes[1]
    assert any("part-02.jsonl" in line for line in outcomes[1][1])
    assert not any("part-03.jsonl" in line for line in outcomes[1][1])


@pytest.mark.integration
def test_a_bad_file_in_a_spark_task_reaches_the_driver_whole(spark: Any, tmp_path: Path) -> None:
    from gnnsec.ingest import get_adapter
    from gnnsec.ingest.pipeline import WorkItem, stage_partial
    from gnnsec.ingest.spark import SparkStaging

    directory = native_dir(tmp_path, files=2, bad={1: [BAD_EDGE]}, copy=False)
    items = [WorkItem(path, get_adapter("native")) for path in sorted(directory.iterdir())]
    stager = SparkStaging("local[2]")  # the module's session, reused and left running
    try:
        good = stager.submit(stage_partial, items[:1], timedelta(days=1)).result()
        assert good.staging.records > 0 and not good.files[0].duplicate
        with pytest.raises(IngestError) as raised:
            stager.submit(stage_partial, items, timedelta(days=1)).result()
    finally:
        stager.shutdown()
    assert isinstance(raised.value, GnnsecError) and raised.value.path.endswith("part-01.jsonl")
    assert "window" in raised.value.reason
    assert spark.sparkContext._jsc is not None  # still running: not this stager's to stop

