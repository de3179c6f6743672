"""Long work is never silent when stderr is piped: ``ingest``, ``train``, ``explain`` and ``eval`` print a
progress line every few seconds (counts, rate, ETA where a total is known) and a heartbeat between steps;
``gnnsec -q`` prints none. The interval (2 s) is lowered here so the tests stay fast."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gnnsec.cli import common
from gnnsec.cli.common import ProgressLog, rate_text
from gnnsec.cli.main import cli
from gnnsec.ingest.pipeline import discover, stage

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LINE = re.compile(r"^\[\s*\d+\.\d s\] ", re.MULTILINE)
"""A progress line starts with the seconds since the work began: ``[   12.3 s] training: …``."""


@pytest.fixture
def fast_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """A progress line on every report (and a heartbeat every 50 ms) instead of every 2 s."""
    monkeypatch.setattr(common, "PROGRESS_INTERVAL_S", 0.0)


def invoke(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, args, env=env)


def progress_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if LINE.match(line)]


# ---- the line itself ----------------------------------------------------------------------------------------


def test_rate_text_gives_counts_rate_and_eta_where_the_total_is_known() -> None:
    assert rate_text(3, 2.0, "files", 10) == "3/10 files (1.5/s, ETA 0:05)"
    assert rate_text(1_234, 1.0, "records") == "1,234 records (1,234.0/s)"
    assert rate_text(3, 60.0, "runs") == "3 runs (3.0/min)"
    assert rate_text(0, 5.0, "epochs", 60) == "0/60 epochs"
    assert rate_text(1, 1.0, "epochs", 7201) == "1/7,201 epochs (1.0/s, ETA 2:00:00)"


def test_slow_units_say_how_long_each_took_and_the_eta_counts_down_between_them() -> None:
    # an eval run of five minutes: "0.0/s" said nothing, and the ETA grew with every line until the next run
    assert rate_text(1, 300.0, "runs", 3) == "1/3 runs (5:00 each, ETA 10:00)"
    assert rate_text(1, 360.0, "runs", 3, idle=60.0) == "1/3 runs (5:00 each, ETA 9:00)"
    # the run under way is late: the ETA stops at the one run not yet begun instead of reading 0:00
    assert rate_text(1, 1000.0, "runs", 3, idle=700.0) == "1/3 runs (5:00 each, ETA 5:00)"
    assert rate_text(2, 1000.0, "runs", 3, idle=400.0) == "2/3 runs (5:00 each, ETA 0:00)"
    assert rate_text(0, 360.0, "runs", 3, idle=360.0) == "0/3 runs"


def test_the_progress_log_counts_the_eta_down_while_a_unit_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    log = ProgressLog("evaluating", total=3, unit="runs", interval=1.0)  # not entered: no heartbeat thread
    now[0] += 300.0
    log.advance(1)
    etas = []
    for _ in range(3):
        now[0] += 60.0
        etas.append(re.search(r"ETA (\S+)\)", log.status()).group(1))  # type: ignore[union-attr]
    assert etas == ["9:00", "8:00", "7:00"]


def test_progress_log_throttles_reports_and_beats_between_them(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressLog("training", total=4, unit="epochs", interval=0.2) as log:
        log.advance(1, detail="loss 0.500")  # within the interval of the first line: not printed
        time.sleep(0.5)  # no report: heartbeats carry the latest state
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("] training: 0/4 epochs"), lines
    beats = lines[1:]
    assert beats and all(re.search(r"training: 1/4 epochs \(.+/s, ETA .+\) · loss 0\.500$", b) for b in beats), lines
    assert len(lines) <= 4  # at most one line per interval


def test_progress_log_prints_a_report_once_the_interval_has_passed(capsys: pytest.CaptureFixture[str]) -> None:
    log = ProgressLog("ingesting", total=3, unit="files", interval=0.1)  # not entered: no heartbeat
    log.advance(1, detail="cloudtrail a.json: done")
    log.advance(1, detail="cloudtrail b.json: done")  # too soon
    time.sleep(0.15)
    log.advance(0, detail="cloudtrail c.json: reading")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("ingesting: 1/3 files · cloudtrail a.json: done") or "1/3 files (" in lines[0], lines
    assert re.search(r"ingesting: 2/3 files \(.+/s, ETA .+\) · cloudtrail c\.json: reading$", lines[1]), lines


# ---- eval (no database) ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "estate"
    result = invoke(["synth", "--out", str(path), "--size", "small", "--days", "4", "--seed", "3"])
    assert result.exit_code == 0, result.output
    return path


def test_eval_prints_progress_lines_on_a_piped_stderr_and_none_with_quiet(
        estate: Path, tmp_path: Path, fast_progress: None) -> None:
    common_args = ["eval", "--data", str(estate), "--models", "iforest", "--cut", "0.5", "--format", "jsonl"]
    result = invoke([*common_args, "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    lines = progress_lines(result)
    assert any("] reading data" in line for line in lines), result.stderr
    assert any(re.search(r"evaluating: 1/1 runs \(.+/(s|min)\) · ", line) for line in lines), result.stderr
    quiet = invoke(["-q", *common_args, "--out", str(tmp_path / "b")])
    assert quiet.exit_code == 0, quiet.output
    assert not progress_lines(quiet), quiet.stderr


def test_eval_reports_files_read_of_the_total_and_the_epochs_inside_a_run(
        estate: Path, tmp_path: Path, fast_progress: None) -> None:
    """A medium estate's files take minutes to read and one GNN run 20 minutes on 2 cores: neither is silent."""
    result = invoke(["eval", "--data", str(estate), "--models", "rgcn", "--epochs", "2", "--hidden", "16",
                     "--cut", "0.5", "--workers", "2", "--format", "jsonl", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    lines = progress_lines(result)
    assert any(re.search(rf"staging {re.escape(str(estate))}: [\d,]+/[\d,]+ files \(.+\) · \S+", line)
               for line in lines), result.stderr
    assert any(re.search(r"seed 0 rgcn unsupervised \[all\] · epoch 2/2 \(\d+\.\d s\), validation loss \d", line)
               for line in lines), result.stderr
    assert any("building the snapshot" in line for line in lines), result.stderr
    for after_epochs in ("embedding the training graph", "fitting the detector's reference", "scoring the test side"):
        assert any(f"[all] · {after_epochs}" in line for line in lines), result.stderr


# ---- ingest --dry-run (no database) --------------------------------------------------------------------------


def one_event_files(folder: Path, count: int) -> list[Path]:
    """``count`` CloudTrail files of one event each, from the OTRF sample's first events (the same few users)."""
    lines = (FIXTURES / "aws" / "cloudtrail" / "otrf" / "ec2_proxy_s3_exfiltration.jsonl").read_text().splitlines()
    folder.mkdir()
    paths = [folder / f"event-{i:03}.jsonl" for i in range(count)]
    for path, line in zip(paths, lines, strict=False):
        path.write_text(line + "\n")
    return paths


def test_a_dry_run_shows_progress_and_counts_each_node_once_across_files(tmp_path: Path, fast_progress: None) -> None:
    """Was: no progress at all and a table row per file (31k rows for a week of AWS's 5-minute layout)."""
    paths = one_event_files(tmp_path / "many", 60)
    result = invoke(["ingest", "cloudtrail", str(tmp_path / "many"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert any(re.search(r"reading \(dry run\): 60/60 files", line) for line in progress_lines(result)), result.stderr
    assert paths[0].name not in result.stdout  # no per-file rows above 50 files
    row = next(line for line in result.stdout.splitlines() if "cloudtrail" in line)
    files, records, _, nodes, _, skipped = (int(cell.replace(",", "")) for cell in row.split("│")[2:8])
    stagings = [stage(item, timedelta(days=1))[0] for item in discover(paths, "cloudtrail")[0]]
    assert (files, records, skipped) == (60, sum(s.records for s in stagings), 0)
    assert 0 < nodes < sum(len(s.nodes) for s in stagings)  # an account, user or IP in many files is one node

    few = invoke(["ingest", "cloudtrail", *map(str, paths[:2]), "--dry-run"])
    assert few.exit_code == 0, few.output
    assert paths[0].name in few.stdout and paths[1].name in few.stdout


# ---- ingest, train and explain against the session's Neo4j -----------------------------------------------------


def cli_env(settings: Any, home: Path) -> dict[str, str | None]:
    return {"NEO4J_URI": settings.uri, "NEO4J_USER": settings.user, "NEO4J_PASSWORD": settings.password,
            "NEO4J_DATABASE": settings.database, "GNNSEC_HOME": str(home)}


@pytest.mark.integration
def test_ingest_train_and_explain_print_progress_lines_on_a_piped_stderr(
        clean_db: Any, neo4j_settings: Any, tmp_path: Path, fast_progress: None) -> None:
    env = cli_env(neo4j_settings, tmp_path / "home")
    files = [str(FIXTURES / "aws" / "cloudtrail" / name) for name in ("otrf", "stratus-red-team")]
    ingested = invoke(["ingest", "auto", *files], env)
    assert ingested.exit_code == 0, ingested.output
    lines = progress_lines(ingested)
    assert any(re.search(r"ingesting: \d+/\d+ files \(.+ETA .+\) · [\d,]+ records", line) for line in lines), \
        ingested.stderr
    assert any(re.search(r"ingesting: (\d+)/\1 files", line) for line in lines), ingested.stderr  # the last file

    trained = invoke(["train", "--epochs", "3", "--patience", "3", "--device", "cpu"], env)
    assert trained.exit_code == 0, trained.output
    lines = progress_lines(trained)
    assert any("] loading torch" in line or "] exporting the graph" in line for line in lines), trained.stderr
    assert any(re.search(r"training: [123]/3 epochs \(.+\) · loss [\d.]+, val edge AUC", line) for line in lines), \
        trained.stderr
    assert any("] embedding the training graph" in line for line in lines), trained.stderr  # after the epochs
    assert not progress_lines(invoke(["-q", "train", "--epochs", "1", "--device", "cpu"], env))

    records, _, _ = clean_db.execute_query("MATCH (u:User) RETURN u.uid AS uid LIMIT 1",
                                           database_=neo4j_settings.database)
    explained = invoke(["explain", records[0]["uid"], "--format", "json"], env)
    assert explained.exit_code == 0, explained.output
    lines = progress_lines(explained)
    assert any("] loading the model" in line for line in lines), explained.stderr
    assert any("] explaining " in line for line in lines), explained.stderr
