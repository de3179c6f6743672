"""Parallel ingest (issue #15): files staged in worker processes and merged in file order write the same graph,
fail on the same file, quarantine the same records and re-ingest as a no-op, exactly as one process does."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gnnsec.cli.main import cli
from gnnsec.graphdb import ingest as graphdb_ingest
from gnnsec.ingest import get_adapter, pipeline
from gnnsec.ingest.base import Edge, Node, NodeRef
from gnnsec.ingest.pipeline import IngestError, WorkItem, stage_partial
from gnnsec.ingest.staging import MAX_ACTIONS_PER_EDGE, Staging
from gnnsec.ingest.validation import INT64_MAX, PropertyError

STRATUS = Path(__file__).parent / "fixtures" / "aws" / "cloudtrail" / "stratus-red-team"
ALICE, BOB = NodeRef("User", "okta:user:alice"), NodeRef("User", "okta:user:bob")
BUCKET = NodeRef("Bucket", "arn:aws:s3:::payroll")
A, B = NodeRef("IP", "ip:10.0.0.1"), NodeRef("IP", "ip:10.0.0.2")
T = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _records(seed: int) -> list[Node | Edge]:
    """Records that overlap with other seeds' (same users, bucket, IPs and days), so merging has work to do."""
    records: list[Node | Edge] = [
        Node("User", ALICE.uid, {"team": f"t{seed}", f"only{seed}": seed}, T + timedelta(hours=seed)),
        Node("Bucket", BUCKET.uid, {"tier": seed % 2}),
    ]
    for n in range(40):
        when = T + timedelta(hours=seed, minutes=n * 7)
        user = ALICE if n % 3 else BOB
        records.append(Edge("ACCESS", user, BUCKET, {"failed": n % 5 == 0}, when, f"s3:Get{(seed * 40 + n) % 90}"))
        records.append(Edge("CONNECTS_TO", A, B, {"bytes": n + seed, "packets": 1}, when, "flow"))
        records.append(Edge("CONNECTS_TO", B, A, {"bytes": 0.5 * n}, when, "flow"))
    return records


def _staged(*seeds: int) -> Staging:
    staging = Staging("native")
    for seed in seeds:
        staging.begin_batch(f"batch{seed}", f"file{seed}")
        for record in _records(seed):
            staging.add(record)
    return staging


def _state(staging: Staging) -> Any:
    """Everything a staging holds, orders included (node and relationship order, property and action order)."""
    nodes = [(key, n.props, list(n.props), n.first_seen, n.last_seen) for key, n in staging.nodes.items()]
    edges = [(key, e.props, e.count, e.first_seen, e.last_seen, list(e.actions), e.sums,
              {b: (s, list(s)) for b, s in e.contributions.items()}, list(e.contributions))
             for key, e in staging.edges.items()]
    return nodes, edges, staging.records, staging.events, staging.batches, list(staging.batches), staging.batch


def test_merging_partial_stagings_in_order_equals_staging_everything_in_one() -> None:
    merged = _staged(0)
    for seed in (1, 2, 3):
        merged.merge(pickle.loads(pickle.dumps(_staged(seed))))  # as it comes back from a worker process
    one = _staged(0, 1, 2, 3)
    assert _state(merged) == _state(one)
    edge = one.edges[("ACCESS", ALICE, BUCKET, datetime(2026, 3, 2, tzinfo=UTC))]
    assert len(edge.actions) == MAX_ACTIONS_PER_EDGE and len(edge.contributions) == 4  # the cap and shares held


def test_a_merge_whose_window_sum_would_overflow_is_refused_and_changes_nothing() -> None:
    first, second = Staging("flows"), Staging("flows")
    first.begin_batch("one")
    first.add(Edge("CONNECTS_TO", A, B, {"bytes": INT64_MAX - 5}, T))
    second.begin_batch("two")
    second.add(Edge("CONNECTS_TO", A, B, {"bytes": 6}, T + timedelta(hours=1)))
    second.add(Node("IP", "ip:10.0.0.3"))
    before = _state(first)
    with pytest.raises(PropertyError, match="per-window sum of 'bytes'"):
        first.merge(second)
    assert _state(first) == before
    with pytest.raises(ValueError, match="staged in both"):
        first.merge(_copy_batch(first))
    with pytest.raises(ValueError, match="cannot merge"):
        first.merge(Staging("native"))


def _copy_batch(staging: Staging) -> Staging:
    copy = Staging(staging.source, staging.window)
    copy.begin_batch(next(iter(staging.batches)))
    return copy


def test_a_worker_error_reaches_the_parent_whole(tmp_path: Path) -> None:
    error = pickle.loads(pickle.dumps(IngestError(tmp_path / "x.json", "bad record", "record 3")))
    assert (error.path, error.reason, error.where) == (str(tmp_path / "x.json"), "bad record", "record 3")
    assert str(error) == f"{tmp_path / 'x.json'} (record 3): bad record"
    adapter = get_adapter("cloudtrail")
    items = [WorkItem(path, adapter) for path in sorted(STRATUS.glob("*.json"))[:3]]
    items.append(items[1])  # the same bytes again: staged once, as one process does
    staged = stage_partial(items, timedelta(days=1))
    partial = pickle.loads(pickle.dumps(staged))  # compactly, as it comes back from a worker
    assert _state(partial.staging) == _state(staged.staging) and partial.files == staged.files
    assert [f.duplicate for f in partial.files] == [False, False, False, True]
    assert list(partial.staging.batches) == [f.digest for f in partial.files[:3]]
    assert sum(f.records for f in partial.files) == partial.staging.records > 0


# --- end to end, against the real Neo4j -------------------------------------------------------------------------


def run(settings: Any, *args: str) -> Any:
    env = {"NEO4J_URI": settings.uri, "NEO4J_USER": settings.user, "NEO4J_PASSWORD": settings.password,
           "NEO4J_DATABASE": settings.database}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def graph_state(driver: Any) -> list[str]:
    """Every node and relationship with every property but the ingest times of the batches: a checksum."""
    nodes, _, _ = driver.execute_query("MATCH (n) RETURN labels(n) AS l, properties(n) AS p")
    rels, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN a.uid AS a, type(r) AS t, b.uid AS b, properties(r) AS p")

    def props(record: Any) -> list[Any]:
        return sorted((k, v) for k, v in record["p"].items() if k not in ("first_ingested", "last_ingested"))

    return sorted(repr((r["l"], props(r))) for r in nodes) + sorted(
        repr((r["a"], r["t"], r["b"], props(r))) for r in rels)


def _native_line(record: Node | Edge) -> str:
    if isinstance(record, Node):
        return json.dumps({"kind": "node", "label": record.label, "uid": record.uid, "props": record.props,
                           **({"seen": record.seen.isoformat()} if record.seen else {})})
    return json.dumps({"kind": "edge", "type": record.type, "src": {"label": record.src.label, "uid": record.src.uid},
                       "dst": {"label": record.dst.label, "uid": record.dst.uid}, "props": record.props,
                       "time": record.time.isoformat() if record.time else None, "action": record.action})


def native_dir(tmp_path: Path, files: int = 6, bad: dict[int, list[str]] | None = None, copy: bool = True) -> Path:
    """``files`` native files whose records overlap (same users, windows, relationships), with ``bad`` lines added
    to some, and with ``copy`` one file twice (the same bytes count once)."""
    directory = tmp_path / "native"
    directory.mkdir()
    for seed in range(files):
        lines = [_native_line(r) for r in _records(seed)] + (bad or {}).get(seed, [])
        (directory / f"part-{seed:02d}.jsonl").write_text("\n".join(lines) + "\n")
    if copy:
        shutil.copyfile(directory / "part-01.jsonl", directory / "part-01-copy.jsonl")
    return directory


def cloudtrail_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "trail"
    shutil.copytree(STRATUS, directory, ignore=shutil.ignore_patterns("LICENSE"))
    return directory


BAD_EDGE = json.dumps({"kind": "edge", "type": "ACCESS", "src": {"label": "User", "uid": ALICE.uid},
                       "dst": {"label": "Bucket", "uid": BUCKET.uid}, "props": {"window": 5},
                       "time": T.isoformat(), "action": "x:y"})
OVERFLOW = [_native_line(Edge("CONNECTS_TO", A, B, {"bytes": INT64_MAX - 5}, T + timedelta(days=3), "flow"))]


@pytest.fixture(params=[1, 512], ids=["groups-of-1", "one-group"])
def group_files(request: Any, monkeypatch: pytest.MonkeyPatch) -> int:
    """Each file its own group (a write each), or all of them staged together and merged."""
    monkeypatch.setattr(pipeline, "GROUP_MAX_FILES", request.param)
    return int(request.param)


@pytest.mark.integration
@pytest.mark.parametrize("copy", [False, True], ids=["distinct-files", "a-file-twice"])
def test_one_worker_and_two_write_the_same_graph(clean_db: Any, neo4j_settings: Any, tmp_path: Path,
                                                 group_files: int, copy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [str(native_dir(tmp_path, copy=copy)), str(cloudtrail_dir(tmp_path))]
    one = run(neo4j_settings, "ingest", "auto", "--workers", "1", *paths)
    assert one.exit_code == 0, one.output
    expected = graph_state(clean_db)
    assert any("'batch_count'" in line for line in expected)
    clean_db.execute_query("MATCH (n) DETACH DELETE n")
    in_one_process = []
    stage_group = graphdb_ingest._stage_group
    monkeypatch.setattr(graphdb_ingest, "_stage_group", lambda group, *a: in_one_process.append(group) or
                        stage_group(group, *a))
    two = run(neo4j_settings, "ingest", "auto", "--workers", "2", *paths)
    assert two.exit_code == 0, two.output
    assert graph_state(clean_db) == expected
    assert one.output.splitlines()[-1].split(" in ")[0] == two.output.splitlines()[-1].split(" in ")[0]
    # partials merged, but where a file repeats one staged in another worker's run: that group is staged in one
    assert bool(in_one_process) == (copy and group_files > 1), in_one_process


@pytest.mark.integration
def test_a_bad_file_in_the_middle_fails_as_in_one_process(clean_db: Any, neo4j_settings: Any, tmp_path: Path,
                                                          group_files: int) -> None:
    directory = native_dir(tmp_path, bad={3: [BAD_EDGE], 4: [BAD_EDGE]})
    outcomes = []
    for workers in ("1", "2"):
        clean_db.execute_query("MATCH (n) DETACH DELETE n")
        result = run(neo4j_settings, "ingest", "native", "--workers", workers, str(directory))
        assert result.exit_code == 1, result.output
        assert "part-03.jsonl" in result.output and "part-04" not in result.output, result.output
        outcomes.append((result.output, graph_state(clean_db)))
    assert outcomes[0] == outcomes[1]
    if group_files > 1:  # all files in one staging: the bad one writes nothing, nor does any other
        assert outcomes[1][1] == []
    else:  # a write per file: the files before it loaded, it and the rest did not
        assert any("part-02.jsonl" in line for line in outcomes[1][1])
        assert not any("part-03.jsonl" in line for line in outcomes[1][1])


@pytest.mark.integration
def test_skip_bad_counts_and_quarantines_as_in_one_process(clean_db: Any, neo4j_settings: Any, tmp_path: Path,
                                                           group_files: int) -> None:
    # part-02 and part-03 overflow one window's bytes together: only one staging of both can see it
    directory = native_dir(tmp_path, bad={1: [BAD_EDGE, "{not json"], 2: OVERFLOW, 3: OVERFLOW, 5: [BAD_EDGE]})
    outcomes = []
    for workers in ("1", "2"):
        clean_db.execute_query("MATCH (n) DETACH DELETE n")
        quarantine = tmp_path / f"quarantine-{workers}.jsonl"
        result = run(neo4j_settings, "ingest", "native", "--skip-bad", "--quarantine", str(quarantine),
                     "--workers", workers, str(directory))
        assert result.exit_code == 0, result.output
        skipped = [line for line in result.output.splitlines() if re.match(r"skipped |  +\d+  ", line)]
        outcomes.append((skipped, quarantine.read_text(), graph_state(clean_db)))
    assert outcomes[0] == outcomes[1]
    lines = [json.loads(line) for line in outcomes[1][1].splitlines()]
    assert len(lines) == int(outcomes[1][0][0].split()[1].replace(",", "")) >= 4, outcomes[1][0]
    # staged together, the overflow is a bad record of part-03; written apart, the loader saturates it
    assert any("per-window sum" in line["reason"] for line in lines) == (group_files > 1), lines


@pytest.mark.integration
def test_reingesting_with_two_workers_changes_nothing(clean_db: Any, neo4j_settings: Any, tmp_path: Path) -> None:
    paths = [str(native_dir(tmp_path)), str(cloudtrail_dir(tmp_path))]
    assert run(neo4j_settings, "ingest", "auto", "--workers", "2", *paths).exit_code == 0
    before = graph_state(clean_db)
    again = run(neo4j_settings, "ingest", "auto", "--workers", "2", *paths)
    assert again.exit_code == 0, again.output
    assert graph_state(clean_db) == before
