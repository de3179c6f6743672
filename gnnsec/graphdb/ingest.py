"""One ingest run: stage the discovered files (``ingest.pipeline``) and write each staging with the loader.

It lives on the database side so the arrows point forward: ``ingest`` reads files and knows nothing of
Neo4j; this module, like the loader, depends on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Protocol

from neo4j import Driver

from gnnsec.graphdb.loader import DEFAULT_BATCH_SIZE, WriteCounts, write_staging
from gnnsec.ingest.pipeline import StageProgress, WorkItem, content_digest, group_items, stage_into
from gnnsec.ingest.staging import Staging


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
) -> IngestReport:
    """Stage and load every work item in order; stops at the first bad file unless ``skip_bad``.

    Consecutive files of one source are staged together (:func:`group_items`) with their
    contributions kept per file, so hourly CloudTrail files write each daily relationship once.
    Reading the next group overlaps with writing the current one (a one-group look-ahead in a
    worker thread): staging is Python CPU work, writing is mostly waiting on Neo4j, so on two cores
    the run costs about max(read, write) instead of their sum.  A bad file stops the run; it and
    the files staged with it since the last write write nothing, everything before was written.
    """
    import time
    from concurrent.futures import Future, ThreadPoolExecutor

    work = list(items)
    groups = group_items(work)
    starts = [sum(len(g) for g in groups[:i]) for i in range(len(groups))]
    report = IngestReport(quarantine_path=str(quarantine_path) if quarantine_path else None)
    quarantine: IO[bytes] | None = None
    if skip_bad and quarantine_path is not None:
        from gnnsec.config import ensure_private_dir, open_private

        ensure_private_dir(quarantine_path.parent)
        quarantine = open_private(quarantine_path)  # it holds record excerpts: 0600
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gnnsec-stage") as reader:
            ahead: Future[tuple[Staging, list[FileResult]]] | None = None
            for index, group in enumerate(groups):
                if ahead is None:
                    staging, results = _stage_group(group, window, skip_bad, quarantine, progress, starts[index],
                                                    len(work))
                else:
                    staging, results = ahead.result()
                    if progress is not None:
                        progress.start_item(group[-1], starts[index] + len(group) - 1, len(work))
                ahead = (reader.submit(_stage_group, groups[index + 1], window, skip_bad, quarantine, None,
                                       starts[index + 1], len(work)) if index + 1 < len(groups) else None)
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
    finally:
        if quarantine is not None:
            quarantine.close()
    if quarantine_path is not None and not report.skipped and quarantine_path.exists():
        quarantine_path.unlink()
        report.quarantine_path = None
    return report
