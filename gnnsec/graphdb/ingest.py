"""One ingest run: stage the discovered files (``ingest.pipeline``) and write each staging with the loader.

It lives on the database side so the arrows point forward: ``ingest`` reads files and knows nothing of
Neo4j; this module, like the loader, depends on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Protocol

from neo4j import Driver

from gnnsec.errors import StateError
from gnnsec.graphdb.loader import DEFAULT_BATCH_SIZE, WriteCounts, write_staging
from gnnsec.ingest.pipeline import (
    PartialStaging,
    StageProgress,
    WorkItem,
    content_digest,
    group_items,
    process_pool,
    stage_into,
    stage_partial,
)
from gnnsec.ingest.spark import RemoteItem, group_remote
from gnnsec.ingest.staging import Staging
from gnnsec.ingest.validation import PropertyError


@dataclass(slots=True)
class FileResult:
    path: str
    source: str
    records: int = 0
    events: int = 0
    nodes: int = 0
    relationships: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    counts: WriteCounts = field(default_factory=WriteCounts)
    seconds: float = 0.0
    read_seconds: float = 0.0  # reading, mapping and staging (CPU in this process)
    write_seconds: float = 0.0  # the loader's transactions (mostly Neo4j)


@dataclass(slots=True)
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)
    quarantine_path: str | None = None

    @property
    def totals(self) -> WriteCounts:
        total = WriteCounts()
        for result in self.files:
            total.merge(result.counts)
        return total

    @property
    def skipped(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for result in self.files:
            total.update(result.skipped)
        return total


class Progress(StageProgress, Protocol):
    """What an ingest run tells a progress display (the CLI renders it with rich)."""

    def start_item(self, item: WorkItem, index: int, total: int) -> None: ...
    def start_writing(self, rows: int) -> None: ...
    def advance_rows(self, count: int) -> None: ...
    def finish_item(self, result: FileResult) -> None: ...


def _stage_group(
    group: list[WorkItem],
    window: timedelta,
    skip_bad: bool,
    quarantine: IO[bytes] | None,
    progress: Progress | None,
    first_index: int,
    total: int,
) -> tuple[Staging, list[FileResult]]:
    import time

    staging = Staging(group[0].source, window)
    results = []
    for offset, item in enumerate(group):
        began = time.perf_counter()
        if progress is not None:
            progress.start_item(item, first_index + offset, total)
        result = FileResult(str(item.path), item.source)
        digest = content_digest(item.path)
        if digest in staging.batches:  # the same bytes twice in one run: count them once
            results.append(result)
            continue
        staging.begin_batch(digest, str(item.path))
        records, events, edges = staging.records, staging.events, len(staging.edges)
        result.skipped = stage_into(staging, item, skip_bad, quarantine, progress)
        result.records, result.events = staging.records - records, staging.events - events
        result.relationships = len(staging.edges) - edges
        result.read_seconds = time.perf_counter() - began
        results.append(result)
    return staging, results


def _write_group(
    driver: Driver,
    staging: Staging,
    results: list[FileResult],
    report: IngestReport,
    database: str | None,
    batch_size: int,
    progress: Progress | None,
) -> None:
    """Write one group's staging and book its files' results (the write is counted on the last file)."""
    import time

    if not staging.is_empty:
        if progress is not None:
            progress.start_writing(len(staging.nodes) + len(staging.edges))
        began = time.perf_counter()
        counts = write_staging(
            driver, staging, database=database, batch_size=batch_size,
            progress=progress.advance_rows if progress is not None else None,
        )
        results[-1].counts = counts
        results[-1].write_seconds = time.perf_counter() - began
    for result in results:
        result.nodes = len(staging.nodes) if result is results[-1] else 0
        result.seconds = result.read_seconds + result.write_seconds
        report.files.append(result)
        if progress is not None:
            progress.finish_item(result)


def _chunked(group: list[WorkItem], workers: int) -> list[list[WorkItem]]:
    """A group cut into runs of consecutive files, one worker task each: about two per worker, so the workers
    share the group evenly, and runs rather than single files, so the partials repeat fewer nodes and
    relationships (what the parent unpickles and merges is the serial part of the run)."""
    size = max(1, -(-len(group) // (2 * workers)))
    return [group[i:i + size] for i in range(0, len(group), size)]


def _merge_group(
    group: list[WorkItem],
    chunks: list[tuple[list[WorkItem], Future[PartialStaging]]],
    window: timedelta,
    quarantine: IO[bytes] | None,
    progress: Progress | None,
    first_index: int,
    total: int,
) -> tuple[Staging, list[FileResult]] | None:
    """Merge a group's partial stagings in file order into the staging :func:`_stage_group` would build.

    Raises the first bad file's :class:`IngestError` in file order, as the one-process path does.
    None where one staging of the whole group could decide otherwise than the partials: a merged
    per-window sum overflows (one staging refuses the record that did), or a file repeats the bytes of
    a file in another partial (one staging counts it once); the caller then stages the group in one
    process.  Quarantine lines are written once the whole group merged."""
    import time

    staging = Staging(group[0].source, window)
    results = []
    quarantined: list[bytes] = []
    index = first_index
    for items, future in chunks:
        if progress is not None:
            progress.start_item(items[0], index, total)
        partial = future.result()
        began = time.perf_counter()
        if not staging.batches.keys().isdisjoint(partial.staging.batches):
            return None
        first_here = [key not in staging.edges for key in partial.staging.edges]
        try:
            staging.merge(partial.staging)
        except PropertyError:
            return None
        seen = 0
        for item, staged in zip(items, partial.files, strict=True):
            result = FileResult(item.location, item.source)
            if not staged.duplicate:  # the same bytes twice in one run count once
                result.records, result.events, result.skipped = staged.records, staged.events, staged.skipped
                result.relationships = sum(first_here[seen:seen + staged.edges])
                seen += staged.edges
                result.read_seconds = staged.seconds
            results.append(result)
            if progress is not None:
                if item is not items[0]:
                    progress.start_item(item, index, total)
                progress.advance_records(result.records + sum(result.skipped.values()))
            index += 1
        results[-1].read_seconds += time.perf_counter() - began  # the merge, on the run's last file
        quarantined.append(partial.quarantined)
    if quarantine is not None:
        quarantine.write(b"".join(quarantined))
    return staging, results


def ingest(
    driver: Driver,
    items: Iterable[WorkItem],
    *,
    database: str | None = None,
    window: timedelta = timedelta(days=1),
    batch_size: int = DEFAULT_BATCH_SIZE,
    skip_bad: bool = False,
    quarantine_path: Path | None = None,
    progress: Progress | None = None,
    workers: int = 1,
    executor: Executor | None = None,
) -> IngestReport:
    """Stage and load every work item in order; stops at the first bad file unless ``skip_bad``.

    Consecutive files of one source are staged together (:func:`group_items`) with their
    contributions kept per file, so hourly CloudTrail files write each daily relationship once.
    A bad file stops the run; it and the files staged with it since the last write write nothing,
    everything before was written.

    With ``workers`` = 1, reading the next group overlaps with writing the current one (a one-group
    look-ahead in a worker thread): staging is Python CPU work, writing is mostly waiting on Neo4j, so
    the run costs about max(read, write) instead of their sum.  With more, runs of consecutive files
    of a group are read, mapped and staged in ``workers`` processes while the parent writes (this
    group's and the next group's runs are in flight), and the parent merges each group's partial
    stagings in file order (:meth:`Staging.merge`): the same staging, the same batches, the same
    graph, the same first bad file and the same quarantine as one process.  A file's
    ``read_seconds`` is then its worker's time (plus the merge, on the last file of a run).

    ``executor`` stages the runs there instead of in local processes, with ``workers`` runs per group: e.g.
    :class:`gnnsec.ingest.spark.SparkStaging` (``--engine spark``); the merge and the write stay here. Items may
    then be :class:`~gnnsec.ingest.spark.RemoteItem` (files read by URL), all of them: Spark fetches and stages.
    """
    work = list(items)
    remote = [item for item in work if isinstance(item, RemoteItem)]
    if remote and (executor is None or len(remote) < len(work)):
        raise StateError("files given by URL are read by Spark: ingest all of them (and no local path) with "
                         "--engine spark")
    groups = group_remote(remote) if remote else group_items(work)
    starts = [sum(len(g) for g in groups[:i]) for i in range(len(groups))]
    report = IngestReport(quarantine_path=str(quarantine_path) if quarantine_path else None)
    quarantine: IO[bytes] | None = None
    if skip_bad and quarantine_path is not None:
        from gnnsec.config import ensure_private_dir, open_private

        ensure_private_dir(quarantine_path.parent)
        quarantine = open_private(quarantine_path)  # it holds record excerpts: 0600
    try:
        if executor is not None:
            _ingest_in_workers(driver, executor, groups, starts, len(work), report, database=database, window=window,
                               batch_size=batch_size, skip_bad=skip_bad, quarantine=quarantine, progress=progress,
                               workers=max(1, workers))
        elif workers > 1 and len(work) > 1:
            with process_pool(min(workers, len(work))) as pool:
                _ingest_in_workers(driver, pool, groups, starts, len(work), report, database=database,
                                   window=window, batch_size=batch_size, skip_bad=skip_bad, quarantine=quarantine,
                                   progress=progress, workers=min(workers, len(work)))
        else:
            _ingest_in_one_process(driver, groups, starts, len(work), report, database=database, window=window,
                                   batch_size=batch_size, skip_bad=skip_bad, quarantine=quarantine,
                                   progress=progress)
    finally:
        if quarantine is not None:
            quarantine.close()
    if quarantine_path is not None and not report.skipped and quarantine_path.exists():
        quarantine_path.unlink()
        report.quarantine_path = None
    return report


def _ingest_in_one_process(
    driver: Driver, groups: list[list[WorkItem]], starts: list[int], total: int, report: IngestReport, *,
    database: str | None, window: timedelta, batch_size: int, skip_bad: bool, quarantine: IO[bytes] | None,
    progress: Progress | None,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gnnsec-stage") as reader:
        ahead: Future[tuple[Staging, list[FileResult]]] | None = None
        for index, group in enumerate(groups):
            if ahead is None:
                staging, results = _stage_group(group, window, skip_bad, quarantine, progress, starts[index], total)
            else:
                staging, results = ahead.result()
                if progress is not None:
                    progress.start_item(group[-1], starts[index] + len(group) - 1, total)
            ahead = (reader.submit(_stage_group, groups[index + 1], window, skip_bad, quarantine, None,
                                   starts[index + 1], total) if index + 1 < len(groups) else None)
            _write_group(driver, staging, results, report, database, batch_size, progress)


def _ingest_in_workers(
    driver: Driver, pool: Executor, groups: list[list[WorkItem]], starts: list[int], total: int,
    report: IngestReport, *, database: str | None, window: timedelta, batch_size: int, skip_bad: bool,
    quarantine: IO[bytes] | None, progress: Progress | None, workers: int,
) -> None:
    """Runs of each group staged by ``pool`` (local processes, or Spark), merged here in file order, written."""
    in_flight: dict[int, list[tuple[list[WorkItem], Future[PartialStaging]]]] = {}

    def submit(index: int) -> None:
        if index < len(groups):
            in_flight[index] = [
                (chunk, pool.submit(stage_partial, chunk, window, skip_bad, quarantine is not None))
                for chunk in _chunked(groups[index], workers)
            ]

    try:
        submit(0)
        for index, group in enumerate(groups):
            submit(index + 1)  # the workers stage the next group while this one merges and writes
            merged = _merge_group(group, in_flight.pop(index), window, quarantine, progress, starts[index], total)
            if merged is None and isinstance(group[0], RemoteItem):  # no local files: the group in one Spark task
                whole = [(group, pool.submit(stage_partial, group, window, skip_bad, quarantine is not None))]
                merged = _merge_group(group, whole, window, quarantine, progress, starts[index], total)
            if merged is None:
                merged = _stage_group(group, window, skip_bad, quarantine, progress, starts[index], total)
            _write_group(driver, *merged, report, database, batch_size, progress)
    except BaseException:
        for chunks in in_flight.values():
            for _, future in chunks:
                future.cancel()
        raise
