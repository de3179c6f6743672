"""``gnnsec ingest SOURCE PATH…``: exported telemetry into the master schema."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from gnnsec.cli.common import (
    ProgressLog,
    SuggestingChoice,
    connected,
    console,
    err_console,
    is_quiet,
    neo4j_options,
    parse_duration,
    rate_text,
)
from gnnsec.config import state_dir
from gnnsec.graphdb.ingest import FileResult, IngestReport
from gnnsec.graphdb.ingest import ingest as run_ingest
from gnnsec.ingest import ADAPTERS
from gnnsec.ingest.pipeline import IngestError, WorkItem, discover

if TYPE_CHECKING:
    from gnnsec.ingest.spark import SparkStaging


class RichIngestProgress:
    """One overall bar over files plus a bar for the current file's records and writes."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.files: TaskID | None = None
        self.current: TaskID | None = None
        self.label = ""

    def start_item(self, item: WorkItem, index: int, total: int) -> None:
        if self.files is None:
            self.files = self.progress.add_task("files", total=total)
        if self.current is not None:
            self.progress.remove_task(self.current)
        self.label = f"[cyan]{item.source}[/] {item.path.name or item.path}"
        self.current = self.progress.add_task(f"{self.label}: reading", total=None)

    def advance_records(self, count: int) -> None:
        if self.current is not None:
            self.progress.advance(self.current, count)

    def start_writing(self, rows: int) -> None:
        if self.current is not None:
            self.progress.update(self.current, description=f"{self.label}: writing", total=rows, completed=0)

    def advance_rows(self, count: int) -> None:
        if self.current is not None:
            self.progress.advance(self.current, count)

    def finish_item(self, result: FileResult) -> None:
        if self.files is not None:
            self.progress.advance(self.files, 1)


class LineIngestProgress:
    """Ingest progress when stderr is not a terminal: a line every few seconds with files done of all (rate,
    ETA), records read (rate) and the file at hand, through :class:`ProgressLog` (heartbeat included)."""

    def __init__(self, log: ProgressLog) -> None:
        import threading

        self.log = log
        self.records = 0
        self.current = ""
        self.began = time.monotonic()
        self._lock = threading.Lock()

    def _detail(self, step: str) -> str:
        records = rate_text(self.records, time.monotonic() - self.began, "records")
        return f"{records} · {self.current}: {step}" if self.current else records

    def start_item(self, item: WorkItem, index: int, total: int) -> None:
        with self._lock:
            self.current = f"{item.source} {item.path.name or item.path}"
            self.log.advance(0, detail=self._detail("reading"), total=total)

    def advance_records(self, count: int) -> None:
        with self._lock:
            self.records += count
            self.log.advance(0, detail=self._detail("reading"))

    def start_writing(self, rows: int) -> None:
        with self._lock:
            self.log.advance(0, detail=self._detail(f"writing {rows:,} rows"))

    def advance_rows(self, count: int) -> None:
        with self._lock:
            self.log.advance(0, detail=self._detail("writing"))

    def finish_item(self, result: FileResult) -> None:
        with self._lock:
            self.log.advance(1, detail=self._detail("done"))


@contextmanager
def _ingest_progress(total: int, what: str = "ingesting") -> Iterator[RichIngestProgress | LineIngestProgress | None]:
    """Rich bars on a terminal, progress lines when stderr is piped, nothing with ``gnnsec -q``."""
    if is_quiet():
        yield None
    elif err_console.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err_console, transient=True) as bar:
            yield RichIngestProgress(bar)
    else:
        with ProgressLog(what, total=total, unit="files") as log:
            yield LineIngestProgress(log)


def default_workers() -> int:
    """Staging processes by default: one per core this process may run on, less one for the writer.

    The parent merges the partial stagings and writes them, and Neo4j usually runs on the same machine;
    both need CPU.  Measured with ``benchmarks/ingest.py --workers 2`` on the 2-core development machine
    (shared, load 2-9; warm server, the same run): 300k CloudTrail events 8,982 events/s in one process
    vs 6,734 with 2 workers (0.75x, best of 2 rounds), 1M events 7,755 vs 5,585 (0.72x): staging alone
    scales (1.67x for 300k events read with 2 workers and no Neo4j) but two workers, the writer and
    Neo4j oversubscribe two cores.  So a 2-core machine keeps the one-process path (read in a thread
    while it writes) and larger ones get cores - 1 workers; ``--workers`` overrides.  Since the loader's batch
    bookkeeping became linear, the same machine *idle* (load 1-2) measured 2 workers faster: 300k hourly events
    1.14-1.28x (best of 2 rounds each), a week of AWS's 5-minute files 1.29x.  The default stays until that
    holds on a loaded machine as well."""
    from gnnsec.ingest.pipeline import usable_cores

    return max(1, usable_cores() - 1)


@contextmanager
def _executor(engine: str, master: str) -> Iterator[SparkStaging | None]:
    """The Spark stager for ``--engine spark`` (with a Java Spark supports), else None: local processes."""
    if engine != "spark":
        yield None
        return
    from gnnsec.graphdb.local.java import find_java
    from gnnsec.ingest.spark import SparkStaging

    err_console.print(f"starting Spark ({master})")
    stager = SparkStaging(master, java_home=find_java().home)
    try:
        yield stager
    finally:
        stager.shutdown()


def _summary(report: IngestReport) -> Table:
    totals = report.totals
    table = Table(title="Ingest summary", show_lines=False)
    table.add_column("kind")
    table.add_column("label / type")
    table.add_column("created", justify="right")
    table.add_column("already there", justify="right")
    for label in sorted(set(totals.nodes_created) | set(totals.nodes_matched)):
        table.add_row("node", label, str(totals.nodes_created[label]), str(totals.nodes_matched[label]))
    for rel in sorted(set(totals.relationships_created) | set(totals.relationships_matched)):
        table.add_row("relationship", rel, str(totals.relationships_created[rel]),
                      str(totals.relationships_matched[rel]))
    return table


@click.command("ingest")
@neo4j_options
@click.argument("source", type=SuggestingChoice(["auto", *sorted(ADAPTERS)]), metavar="SOURCE")
@click.argument("paths", nargs=-1, required=True, metavar="PATH|URL...")
@click.option("--window", default="1d", show_default=True, help="Aggregation window for activity (1h, 1d, …).")
@click.option("--batch-size", default=10_000, show_default=True, help="Rows per write transaction.")
@click.option("--skip-bad", is_flag=True, help="Quarantine bad records into a report and load the rest.")
@click.option("--quarantine", type=click.Path(path_type=Path), default=None,
              help="Where --skip-bad writes bad records (JSON lines). Default: under the state dir.")
@click.option("--dry-run", is_flag=True, help="Read and validate only; write nothing.")
@click.option("--cluster", default=None, help="Kubernetes cluster name for k8s/k8s-audit files that do not say.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes reading, parsing and staging files (default: one per core but one, left to the "
                   "writer and Neo4j; 1 = read in this process while it writes). With --engine spark: runs of "
                   "files per group (default: the cluster's parallelism).")
@click.option("--engine", type=click.Choice(["local", "spark"]), default="local", show_default=True,
              help="Where files are read and staged: this machine's processes, or Spark tasks (pyspark; the "
                   "driver merges and writes, so the graph is the same).")
@click.option("--master", default="local[*]", show_default=True, envvar="GNNSEC_SPARK_MASTER", show_envvar=True,
              help="Spark master URL for --engine spark (local[2], spark://host:7077, yarn, k8s://…).")
def ingest(source: str, paths: tuple[str, ...], window: str, batch_size: int, skip_bad: bool,
           quarantine: Path | None, dry_run: bool, cluster: str | None, workers: int | None, engine: str,
           master: str) -> None:
    """Load exported telemetry files into Neo4j under the master schema.

    SOURCE is `auto` (detect each file's format) or one of the adapters below. Re-ingesting the
    same files changes nothing; a malformed file fails with the file and record named and
    writes nothing. With --engine spark and a named SOURCE, files may be Hadoop URLs the
    cluster can read (s3a://, hdfs://, gs://, abfs://, file://; a folder is read recursively).

    Sources: """
    aggregation = parse_duration(window)
    urls = _urls(paths, source, engine, dry_run)
    items, unrecognised = ([], []) if urls else discover([Path(p) for p in paths], source, cluster=cluster)
    if unrecognised:
        err_console.print(f"[yellow]{len(unrecognised)} file(s) not recognised by any adapter were left out[/], "
                          f"e.g. {unrecognised[0]}")
    if not items and not urls:
        raise click.ClickException("nothing to ingest: no file matched a known format")
    if skip_bad and quarantine is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        quarantine = state_dir() / "quarantine" / f"ingest-{stamp}.jsonl"
    if dry_run:
        _dry_run(items, aggregation, skip_bad)
        return
    began = time.perf_counter()
    with connected(ensure_schema=True) as (driver, database), _executor(engine, master) as executor:
        if executor is not None and workers is None:
            workers = executor.parallelism
        if executor is not None and urls:
            items.extend(executor.list_urls(urls, source, cluster=cluster))
        with _ingest_progress(len(items)) as shown:
            try:
                report = run_ingest(driver, items, database=database, window=aggregation, batch_size=batch_size,
                                    skip_bad=skip_bad, quarantine_path=quarantine,
                                    progress=shown, workers=workers or default_workers(),
                                    executor=executor)
            except IngestError as exc:
                raise click.ClickException(
                    f"{exc}\nThat file wrote nothing (nor did the files read with it since the last write); "
                    "files before were loaded. Ingest is idempotent: fix the file and run the same command again."
                ) from exc
    events = sum(f.events for f in report.files)
    records = sum(f.records for f in report.files)
    seconds = time.perf_counter() - began
    console.print(_summary(report))
    # activity edges before aggregation, not input events: a CloudTrail event makes one or two (a week of AWS's
    # 5-minute layout: 301,000 events, 511,960 activity edges)
    console.print(f"{len(report.files)} file(s), {records:,} records, {events:,} activity edges in {seconds:.1f} s")
    _say_empty([f.path for f in report.files if f.records == 0 and not f.skipped])
    if report.skipped:
        console.print(f"[yellow]skipped {sum(report.skipped.values()):,} bad record(s)[/]; "
                      f"quarantined in {report.quarantine_path}")
        for reason, count in report.skipped.most_common(10):
            console.print(f"  {count:>6}  {reason}")


def _urls(paths: tuple[str, ...], source: str, engine: str, dry_run: bool) -> list[str]:
    """The URLs among ``paths`` (read by Spark), after the checks that need no cluster; [] for local paths."""
    from gnnsec.ingest.spark import is_url

    urls = [p for p in paths if is_url(p)]
    if not urls:
        return []
    if engine != "spark":
        raise click.UsageError(f"{urls[0]} is a URL: URLs are read by Spark; add --engine spark "
                               "(--engine local reads local paths)")
    if len(urls) < len(paths):
        local = next(p for p in paths if not is_url(p))
        raise click.UsageError(f"give local paths or URLs, not both: write {local} as a file:// URL "
                               "(file:///absolute/path) or ingest it in its own run")
    if source == "auto":
        raise click.UsageError(f"name the source for URLs ({urls[0]}): auto detects a format by reading files on "
                               f"this machine; e.g. gnnsec ingest cloudtrail {urls[0]} --engine spark "
                               f"(one of: {', '.join(sorted(ADAPTERS))})")
    if dry_run:
        raise click.UsageError("--dry-run reads local paths only; without it, a URL's bad file fails and writes "
                               "nothing, so ingest it directly")
    return urls


DRY_RUN_FILE_ROWS = 50
"""A dry run lists each file up to this many files; above it, one row per source. A row per file for the 31,414
files of a week of AWS's 5-minute CloudTrail was a third of the dry run's time in a profile, and no one reads
31k rows: with the rows per source (and progress) the dry run of that week went 75.2 / 60.9 -> 34.1 / 43.1 s."""


def _dry_run(items: list[WorkItem], aggregation: timedelta, skip_bad: bool) -> None:
    """Stage every file as ingest would, with progress, and say what the graph would get: per source the
    distinct nodes and relationships of all its files together (their keys only, so memory stays bounded by
    the graph, not by files), and per file while there are few."""
    from gnnsec.ingest.pipeline import stage

    node_keys: dict[str, set[Any]] = {}
    edge_keys: dict[str, set[Any]] = {}
    totals: dict[str, Counter[str]] = {}
    per_file: dict[str, list[tuple[str, ...]]] = {}
    empty: list[str] = []
    folder = Path(os.path.commonpath([item.path.parent for item in items])) if items else Path()
    with _ingest_progress(len(items), "reading (dry run)") as shown:
        for index, item in enumerate(items):
            if shown is not None:
                shown.start_item(item, index, len(items))
            staging, skipped = stage(item, aggregation, skip_bad, progress=shown)
            node_keys.setdefault(item.source, set()).update(staging.nodes)
            edge_keys.setdefault(item.source, set()).update(staging.edges)
            result = FileResult(str(item.path), item.source, staging.records, staging.events, len(staging.nodes),
                                len(staging.edges), skipped)
            bad = sum(skipped.values())
            totals.setdefault(item.source, Counter()).update(
                files=1, records=result.records, events=result.events, skipped=bad)
            if len(items) <= DRY_RUN_FILE_ROWS:
                per_file.setdefault(item.source, []).append((
                    str(item.path.relative_to(folder)), f"{result.records:,}", f"{result.events:,}",
                    f"{result.nodes:,}", f"{result.relationships:,}", f"{bad:,}"))
            if result.records == 0 and not skipped:
                empty.append(result.path)
            if shown is not None:
                shown.finish_item(result)
    for source, rows in sorted(per_file.items()):
        console.print(_dry_run_table(f"Dry run: {source} files in {folder} (nothing written)", "file", rows))
    console.print(_dry_run_table(
        "Per source" if per_file else "Dry run per source (nothing written)", "source",
        [(source, f"{t['files']:,}", f"{t['records']:,}", f"{t['events']:,}", f"{len(node_keys[source]):,}",
          f"{len(edge_keys[source]):,}", f"{t['skipped']:,}") for source, t in sorted(totals.items())]))
    if not per_file:
        console.print(f"{len(items):,} files: each file has a row up to {DRY_RUN_FILE_ROWS} files")
    _say_empty(empty)


def _dry_run_table(title: str, key: str, rows: list[tuple[str, ...]]) -> Table:
    """One row per file (``key`` "file") or per source (then a files column too), and the figures both have
    (activity edges: what the records make before they are aggregated per window; a CloudTrail event may make
    two). A path folds onto more lines rather than losing its file name to an ellipsis."""
    table = Table(title=title)
    table.add_column(key, overflow="fold", ratio=1)
    for column in ("files", "records", "activity edges", "nodes", "relationships", "skipped")[key == "file":]:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def _say_empty(paths: list[str]) -> None:
    """Files that held no records are never passed over in silence (an empty file, an empty Records list)."""
    if paths:
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        console.print(f"[yellow]{len(paths)} file(s) held no records[/]: {shown}", soft_wrap=True)


ingest.help = (ingest.help or "") + ", ".join(sorted(ADAPTERS)) + "."
