"""``gnnsec ingest SOURCE URL… --engine spark`` (issue #14): files listed through Spark's Hadoop file systems and
fetched by the cluster write the same graph as the same files by local path, re-ingest (by URL or by path) changes
nothing, and a bad file fails naming its URL. ``file://`` URLs take the same Hadoop code path as s3a or hdfs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_ingest_parallel import BAD_EDGE, graph_state, native_dir, run
from test_ingest_spark import spark

__all__ = ["spark"]  # the module-scoped Spark session fixture, shared with this module

pyspark = pytest.importorskip("pyspark", reason="pyspark is in the test extra: `make test` installs it")


def _url(path: Path) -> str:
    return f"file://{path}"


def _as_local(state: list[str], directory: Path) -> list[str]:
    """The graph with each batch's recorded location as a local path (the one thing a URL changes)."""
    return [line.replace(_url(directory), str(directory)) for line in state]


def _counts(output: str) -> str:
    """The summary's files, records and events (not the seconds)."""
    return next(line for line in output.splitlines() if " records, " in line).split(" in ")[0]


@pytest.mark.integration
def test_a_url_writes_the_same_graph_as_its_local_path_and_reingest_either_way_changes_nothing(
        spark: Any, clean_db: Any, neo4j_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gnnsec.graphdb import ingest as graphdb_ingest

    directory = native_dir(tmp_path)  # part-01 twice: the group is staged again in one Spark task
    expected_run = run(neo4j_settings, "ingest", "native", "--workers", "1", str(directory))
    assert expected_run.exit_code == 0, expected_run.output
    expected = graph_state(clean_db)
    assert any(str(directory / "part-02.jsonl") in line for line in expected)
    clean_db.execute_query("MATCH (n) DETACH DELETE n")
    # what Hadoop jobs leave next to their data: hidden from the listing (part-99 would fail the run)
    (directory / "_SUCCESS").write_text("")
    (directory / ".part-00.jsonl.crc").write_text("not data")
    (directory / "_temporary").mkdir()
    (directory / "_temporary" / "part-99.jsonl").write_text(BAD_EDGE + "\n")

    whole_groups: list[int] = []
    merge_group = graphdb_ingest._merge_group
    monkeypatch.setattr(graphdb_ingest, "_merge_group", lambda group, chunks, *a: (
        whole_groups.append(len(group)) if len(chunks) == 1 and chunks[0][0] == group else None)
        or merge_group(group, chunks, *a))
    first = run(neo4j_settings, "ingest", "native", "--engine", "spark", "--workers", "2", _url(directory))
    assert first.exit_code == 0, first.output
    state = graph_state(clean_db)
    assert any(_url(directory / "part-02.jsonl") in line for line in state)
    assert _as_local(state, directory) == expected
    assert whole_groups == [7]  # the copy repeats bytes of another run: merged from one task of the whole group
    assert _counts(first.output) == _counts(expected_run.output)
    assert _url(directory / "part-01.jsonl") in first.output  # the duplicate's "held no records", by URL

    again = run(neo4j_settings, "ingest", "native", "--engine", "spark", _url(directory))
    assert again.exit_code == 0, again.output
    assert graph_state(clean_db) == state

    for name in ("_SUCCESS", ".part-00.jsonl.crc", "_temporary/part-99.jsonl"):
        (directory / name).unlink()
    by_path = run(neo4j_settings, "ingest", "native", "--workers", "1", str(directory))
    assert by_path.exit_code == 0, by_path.output
    assert graph_state(clean_db) == expected  # the same digests: only the recorded location is the path again


@pytest.mark.integration
def test_a_bad_file_by_url_fails_naming_its_url_and_the_files_before_it_load(
        spark: Any, clean_db: Any, neo4j_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gnnsec.ingest import pipeline

    monkeypatch.setattr(pipeline, "GROUP_MAX_FILES", 1)  # a write per file: the files before the bad one load
    directory = native_dir(tmp_path, bad={3: [BAD_EDGE], 4: [BAD_EDGE]}, copy=False)
    result = run(neo4j_settings, "ingest", "native", "--engine", "spark", "--workers", "1", _url(directory))
    assert result.exit_code == 1, result.output
    assert f"{_url(directory / 'part-03.jsonl')} (" in result.output, result.output
    assert "part-04" not in result.output and "gnnsec-spark-" not in result.output, result.output
    state = graph_state(clean_db)
    assert any(_url(directory / "part-02.jsonl") in line for line in state)
    assert not any("part-03.jsonl" in line for line in state)


@pytest.mark.integration
def test_urls_need_a_named_source_the_spark_engine_and_a_match(
        spark: Any, clean_db: Any, neo4j_settings: Any, tmp_path: Path) -> None:
    url = _url(native_dir(tmp_path, files=1, copy=False))

    auto = run(neo4j_settings, "ingest", "auto", "--engine", "spark", url)
    assert auto.exit_code == 2, auto.output
    assert f"name the source for URLs ({url}): auto detects a format by reading files on this machine" in auto.output

    local = run(neo4j_settings, "ingest", "native", url)
    assert local.exit_code == 2, local.output
    assert f"{url} is a URL: URLs are read by Spark; add --engine spark" in local.output

    missing = run(neo4j_settings, "ingest", "native", "--engine", "spark", _url(tmp_path / "nothing-here"))
    assert missing.exit_code == 1, missing.output
    assert f"{_url(tmp_path / 'nothing-here')}: no file matches this URL" in missing.output
    assert graph_state(clean_db) == []
