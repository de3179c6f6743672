"""The fuzz suite (issue #12 "Hostile input"): every fixture mutated (``tests/fuzz_cases.py``) and ingested with
``gnnsec ingest SOURCE FILE`` against the real Neo4j the suite starts.

Each case must end as one of the outcomes its rules allow (loaded, rejected, quarantined) and:

* no traceback: the command ends with exit 0 or a clean error (exit 1, the file named in the message);
* no hang: every case runs under a timeout;
* no partial write: after a rejection the graph checksum (``graph_state``) is what it was before;
* no silent skip: a loaded file is counted in the summary (with 0 records only where the case allows it), a
  quarantined one says how many records it skipped and the quarantine report holds exactly those.

One test per source (each starts from an empty graph and loads the cases of that source one after another,
so accepted cases pile up as they would in a real estate); the last test prints the totals.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fuzz_cases import FIXTURES, LOADED, QUARANTINED, REJECTED, SOURCES, Case, by_source, generate
from test_ingest_validation import graph_state

from gnnsec.cli.main import cli
from gnnsec.ingest import get_adapter
from gnnsec.ingest.base import AdapterError, BadRecord
from gnnsec.ingest.pipeline import IngestError, discover, stage

CASE_TIMEOUT_S = 60.0
OUTCOMES: dict[str, Counter[str]] = {}
SECONDS: dict[str, float] = {}
SUMMARY = re.compile(r"(\d+) file\(s\), ([\d,]+) records")
SKIPPED = re.compile(r"skipped ([\d,]+) bad record")


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Case]]:
    return by_source(generate(tmp_path_factory.mktemp("fuzz")))


@pytest.fixture
def schema_applied_once(monkeypatch: pytest.MonkeyPatch, clean_db: Any) -> Iterator[None]:
    """``gnnsec ingest`` applies the schema on every run (about 0.4 s of IF NOT EXISTS statements, measured);
    the ``driver`` fixture applied it already, so the cases skip it: everything else is the real command."""
    monkeypatch.setattr("gnnsec.graphdb.driver.apply_schema", lambda *args, **kwargs: None)
    yield


def _invoke(settings: Any, args: list[str]) -> Result | None:
    """The CLI in a thread with a timeout: a read that blocks (a FIFO) is a hang, reported, not a stuck suite."""
    env = {"NEO4J_URI": settings.uri, "NEO4J_USER": settings.user, "NEO4J_PASSWORD": settings.password,
           "NEO4J_DATABASE": settings.database}
    box: list[Result] = []
    thread = threading.Thread(target=lambda: box.append(CliRunner().invoke(cli, ["-q", *args], env=env)),
                              daemon=True)
    thread.start()
    thread.join(CASE_TIMEOUT_S)
    return box[0] if box else None


def _node_count(driver: Any) -> int:
    records, _, _ = driver.execute_query("MATCH (n) RETURN count(n) AS n")
    return int(records[0]["n"])


def _check(case: Case, result: Result, before: list[str], after: list[str], quarantine: Path,
           nodes: tuple[int, int]) -> tuple[str, list[str]]:
    """The outcome of one case, and what is wrong with it (nothing, for a case that passes)."""
    output = " ".join(result.output.split())
    problems = []
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback", [f"{type(result.exception).__name__}: {result.exception}"]
    if "Traceback" in result.output:
        problems.append("a traceback in the output")
    if result.exit_code == 0:
        summary = SUMMARY.search(output)
        skipped = SKIPPED.search(output)
        outcome = QUARANTINED if skipped else LOADED
        if summary is None or summary.group(1) != "1":
            problems.append("exit 0 without the one-file summary line")
        elif int(summary.group(2).replace(",", "")) == 0 and not skipped and not case.may_be_empty:
            problems.append("silent skip: exit 0 with 0 records and nothing quarantined")
        if skipped:
            lines = [json.loads(line) for line in quarantine.read_text().splitlines()] if quarantine.exists() else []
            if len(lines) != int(skipped.group(1).replace(",", "")):
                problems.append(f"summary says {skipped.group(1)} skipped, quarantine holds {len(lines)}")
            if any(not line["file"].startswith(str(case.path)) for line in lines):
                problems.append("a quarantine line names another file")
        if nodes[1] < nodes[0]:
            problems.append(f"nodes went from {nodes[0]} to {nodes[1]}: hostile text ran as Cypher?")
    elif result.exit_code in (1, 2):
        outcome = REJECTED
        if not any(name in output for name in case.names):
            problems.append(f"the error does not name the file ({case.names[0]})")
        if after != before:
            problems.append("partial write: the graph changed although the file was rejected")
    else:
        return f"exit {result.exit_code}", [f"unexpected exit code {result.exit_code}"]
    if outcome not in case.allowed:
        problems.append(f"{outcome}, but the rules allow only {sorted(case.allowed)}")
    return outcome, problems


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("source", SOURCES)
def test_hostile_files_end_loaded_rejected_or_quarantined_with_no_trace_of_a_rejection(
    source: str, cases: dict[str, list[Case]], clean_db: Any, neo4j_settings: Any, schema_applied_once: None,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    began = time.perf_counter()
    before = graph_state(clean_db)
    for index, case in enumerate(cases[source]):
        quarantine = tmp_path / f"quarantine-{index}.jsonl"
        nodes_before = _node_count(clean_db)
        result = _invoke(neo4j_settings, case.args(quarantine))
        if result is None:
            outcomes["hang"] += 1
            failures.append(f"{case.id}: hang (no answer in {CASE_TIMEOUT_S:.0f} s)")
            break  # the hung thread still holds the CLI runner's streams
        after = graph_state(clean_db)
        outcome, problems = _check(case, result, before, after, quarantine, (nodes_before, _node_count(clean_db)))
        outcomes[outcome] += 1
        failures.extend(f"{case.id}: {problem}\n    {' '.join(result.output.split())[:400]}" for problem in problems)
        before = after
    OUTCOMES[source], SECONDS[source] = outcomes, time.perf_counter() - began
    with capsys.disabled():
        print(f"\nfuzz {source}: {sum(outcomes.values())} hostile files: "
              + ", ".join(f"{count} {name}" for name, count in sorted(outcomes.items()))
              + f" ({SECONDS[source]:.0f} s)")
    assert not failures, f"{len(failures)} of {len(cases[source])} cases failed:\n" + "\n".join(failures)


def test_the_fuzz_summary_covers_every_source_and_at_least_300_files(capsys: pytest.CaptureFixture[str]) -> None:
    if set(OUTCOMES) != set(SOURCES):
        pytest.skip("only some sources ran (-k?): no total to check")
    total: Counter[str] = Counter()
    for counts in OUTCOMES.values():
        total.update(counts)
    with capsys.disabled():
        print(f"\nfuzz total: {sum(total.values())} hostile files: "
              + ", ".join(f"{count} {name}" for name, count in sorted(total.items()))
              + f" in {sum(SECONDS.values()):.0f} s")
    assert sum(total.values()) >= 300
    assert set(total) <= {LOADED, REJECTED, QUARANTINED}, total


# ---- bugs the fuzz suite found, pinned -----------------------------------------------------------------------


def _gzip_that_zlib_refuses(data: bytes) -> bytes:
    """``data`` gzipped with one byte of the deflate stream flipped so that zlib itself fails ("invalid distance
    too far back" …), not the CRC check: ``zlib.error`` is no ``OSError``, and escaped two adapters."""
    packed = gzip.compress(data, mtime=0)
    for offset in range(10, len(packed) - 8):
        corrupt = bytearray(packed)
        corrupt[offset] ^= 0xFF
        try:
            gzip.decompress(bytes(corrupt))
        except zlib.error:
            return bytes(corrupt)
        except (OSError, EOFError):
            continue
    raise AssertionError("no single flipped byte makes zlib fail")


@pytest.mark.parametrize(("source", "fixture"), [("vulns", "vulns/trivy-amazon-2.json"),
                                                 ("flows", "flows/vpc-flow-v2.log")])
def test_a_corrupt_gzip_body_is_an_error_naming_the_file_not_a_zlib_traceback(
    tmp_path: Path, source: str, fixture: str
) -> None:
    path = tmp_path / (Path(fixture).name + ".gz")
    path.write_bytes(_gzip_that_zlib_refuses((FIXTURES / fixture).read_bytes() * 20))
    items, _ = discover([path], source)
    with pytest.raises(IngestError, match=rf"{re.escape(path.name)}: cannot read: Error -3") as caught:
        stage(items[0], timedelta(days=1), skip_bad=True)
    assert isinstance(caught.value.__cause__, AdapterError)


@pytest.mark.parametrize("stage_value", [True, 3, ["ResponseComplete"], "Complete"])
def test_a_k8s_audit_event_with_a_malformed_stage_is_a_bad_record_not_a_silent_skip(
    tmp_path: Path, stage_value: Any
) -> None:
    event = json.loads((FIXTURES / "panther" / "k8s-audit.jsonl").read_text())
    event["stage"] = stage_value
    path = tmp_path / "audit.jsonl"
    path.write_text(json.dumps(event) + "\n")
    records = list(get_adapter("k8s-audit").read(path))
    assert len(records) == 1 and isinstance(records[0], BadRecord), records
    assert "unknown stage" in records[0].reason and records[0].where == "line 1"
    event["stage"] = "RequestReceived"  # a real earlier stage of the same request: skipped, as documented
    path.write_text(json.dumps(event) + "\n")
    assert list(get_adapter("k8s-audit").read(path)) == []


def test_a_bad_file_inside_an_inventory_directory_is_named_not_only_the_directory(tmp_path: Path) -> None:
    copy = tmp_path / "inventory-extra"
    shutil.copytree(FIXTURES / "aws" / "inventory-extra", copy)
    bad = copy / "us-west-2" / "eks-describe-cluster" / "prod"  # a per-resource file: the folder's name is no help
    bad.write_bytes(bad.read_bytes()[:100])
    items, _ = discover([copy], "aws-inventory")
    with pytest.raises(IngestError, match=r"inventory-extra \(file .*us-west-2/eks-describe-cluster/prod\): "
                                          r"not valid JSON"):
        stage(items[0], timedelta(days=1))
