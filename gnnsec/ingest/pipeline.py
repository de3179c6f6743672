"""From paths on disk to stagings: discover → read → stage (validate, aggregate). No database here:
``graphdb.ingest`` runs these and hands each staging to the loader.

Each file (or inventory directory) is one *batch*: it is read to the end and staged before the
loader writes anything, so a malformed file fails with the file and record named and writes
nothing.  With ``skip_bad`` bad records go to a quarantine report instead and the rest loads.
The batch id is the content digest, which is what makes re-ingesting the same data a no-op.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from gnnsec import schema
from gnnsec.errors import GnnsecError
from gnnsec.gc_pause import paused_gc
from gnnsec.ingest import ADAPTERS, SNIFF_ORDER, get_adapter
from gnnsec.ingest.base import Adapter, AdapterError, BadRecord, NodeRef, open_text
from gnnsec.ingest.staging import StagedEdge, StagedNode, Staging
from gnnsec.ingest.validation import safe_excerpt

IGNORED_NAMES = frozenset({"LICENSE", "LICENCE", "README", "NOTICE", "SOURCES.md", "manifest.json"})
IGNORED_SUFFIXES = (".md", ".txt", ".csv", ".py", ".sh", ".yml", ".yaml", ".xml", ".html", ".png")


class IngestError(GnnsecError):
    """A file that cannot be ingested; the message names the file and, where known, the record."""

    def __init__(self, path: Path | str, message: str, where: str | None = None) -> None:
        location = f"{path} ({where})" if where else str(path)
        super().__init__(f"{location}: {message}")
        self.path = str(path)
        self.where = where
        self.reason = message

    def __reduce__(self) -> tuple[type[IngestError], tuple[str, str, str | None]]:
        """Pickled as its parts, so a worker process's error reaches the parent whole (parallel ingest)."""
        return type(self), (self.path, self.reason, self.where)


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One batch: a file, or a directory an adapter reads as a whole (AWS CLI inventory)."""

    path: Path
    adapter: Adapter

    @property
    def source(self) -> str:
        return self.adapter.name

    @property
    def location(self) -> str:
        """Where results and errors say the file was read from (a file read by URL says its URL)."""
        return str(self.path)


class StageProgress(Protocol):
    """What staging tells a progress display while it reads (``graphdb.ingest.Progress`` adds the writing)."""

    def advance_records(self, count: int) -> None: ...


def _is_candidate_file(path: Path) -> bool:
    name = path.name
    return not (name.startswith(".") or name in IGNORED_NAMES or name.upper().startswith("LICENSE")
                or name.endswith(IGNORED_SUFFIXES))


def _unreadable(path: Path) -> str | None:
    """Why ``path`` cannot be read as (gzipped) UTF-8 text, or None. A file no adapter claims *because* it
    cannot be read is an error naming it, never a silent skip: non-regular files (a FIFO would block the read
    forever), permissions, broken compression, undecodable bytes."""
    import gzip
    import stat
    import zlib

    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        return "not a regular file (a FIFO, socket or device): gnnsec reads exported files only"
    if stat.S_ISDIR(mode):
        return None
    try:
        with open_text(path) as handle:
            handle.read(1 << 16)
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.start}: {exc.reason})"
    except gzip.BadGzipFile as exc:
        return f"named .gz but not gzip-compressed ({exc})"
    except (OSError, EOFError, zlib.error) as exc:
        return f"cannot read: {exc}"
    return None


def _sniffs(adapter: Adapter, path: Path) -> bool:
    try:
        return bool(adapter.sniff(path))
    except (OSError, ValueError, UnicodeDecodeError):
        return False


def discover(
    paths: Sequence[Path], source: str = "auto", **options: str | None
) -> tuple[list[WorkItem], list[str]]:
    """Decide which adapter reads what. Returns the work items and the files no adapter claimed.

    With a named source every given file goes to that adapter (directories are walked for files
    it recognises, or given whole if it reads directories).  With ``auto`` a directory an adapter
    claims as a whole (an inventory dump) goes to it, and every file is sniffed by each adapter in
    :data:`SNIFF_ORDER`, most specific first.
    """
    if source != "auto" and source not in ADAPTERS:
        raise IngestError(source, f"unknown source; choose auto or one of: {', '.join(sorted(ADAPTERS))}")
    names = SNIFF_ORDER if source == "auto" else (source,)
    adapters = [get_adapter(name, **options) for name in names]
    items: list[WorkItem] = []
    unrecognised: list[str] = []
    for path in paths:
        if not path.exists():
            raise IngestError(path, "no such file or directory")
        if not path.is_file() and not path.is_dir():
            raise IngestError(path, _unreadable(path) or "not a regular file or directory")
        if path.is_file():
            if source != "auto":
                items.append(WorkItem(path, adapters[0]))
                continue
            adapter = next((a for a in adapters if _sniffs(a, path)), None)
            if adapter is None:
                problem = _unreadable(path)
                if problem:
                    raise IngestError(path, problem)
                raise IngestError(path, "no adapter recognises this file; name the source explicitly "
                                  f"(one of: {', '.join(sorted(ADAPTERS))})")
            items.append(WorkItem(path, adapter))
            continue
        claimed_dirs: dict[Path, str] = {}
        for directory, subdirs, files in os.walk(path):
            subdirs.sort()
            current = Path(directory)
            owner = next((a for a in adapters if _sniffs(a, current)), None)
            if owner is not None and not any(current.is_relative_to(d) for d in claimed_dirs):
                claimed_dirs[current] = owner.name
                items.append(WorkItem(current, owner))
            inside = {name for d, name in claimed_dirs.items() if current.is_relative_to(d)}
            for name in sorted(files):
                file_path = current / name
                if not _is_candidate_file(file_path):
                    continue
                if not file_path.is_file():  # checked before any sniff opens it: a FIFO would block forever
                    raise IngestError(file_path, _unreadable(file_path) or "not a regular file")
                adapter = next((a for a in adapters if a.name not in inside and _sniffs(a, file_path)), None)
                if adapter is not None:
                    items.append(WorkItem(file_path, adapter))
                elif not inside:
                    problem = _unreadable(file_path)
                    if problem:
                        raise IngestError(file_path, problem)
                    unrecognised.append(str(file_path))
    return items, unrecognised


def content_digest(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (names and bytes, in sorted order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file_path in files:
        if path.is_dir():
            digest.update(str(file_path.relative_to(path)).encode())
        with file_path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:32]


# The parameters of stage_into, passed through: this is its entry point with a fresh staging.
def stage(
    item: WorkItem,
    window: timedelta,
    skip_bad: bool = False,
    quarantine: IO[bytes] | None = None,
    progress: StageProgress | None = None,
) -> tuple[Staging, Counter[str]]:
    """Read and validate one work item completely into a fresh :class:`Staging`."""
    staging = Staging(item.source, window)
    staging.begin_batch(content_digest(item.path), str(item.path))
    return staging, stage_into(staging, item, skip_bad, quarantine, progress)


@dataclass(slots=True)
class StagedFile:
    """What one file added to a :class:`PartialStaging` (the figures ``graphdb.ingest`` reports per file)."""

    digest: str
    records: int = 0
    events: int = 0
    edges: int = 0  # relationships it staged first: the next ``edges`` keys of the partial, in order
    skipped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    duplicate: bool = False  # the same bytes as an earlier file of the chunk: not staged again


@dataclass(slots=True)
class PartialStaging:
    """A run of consecutive files of one group staged together in a worker process. ``graphdb.ingest``
    merges these in file order (:meth:`Staging.merge`) into the staging one process would have built.

    Pickled compactly (plain tuples, endpoints once): the parent unpickles every partial while it also
    writes, so this is the serial part of a parallel ingest (about 2x cheaper than the dataclasses)."""

    staging: Staging
    files: list[StagedFile]
    quarantined: bytes  # the quarantine lines of its bad records, for the parent to write in file order

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _unpack_partial, (_pack_staging(self.staging), self.files, self.quarantined)


def _pack_staging(staging: Staging) -> tuple[Any, ...]:
    refs: dict[NodeRef, int] = {}

    def ref(node: NodeRef) -> int:
        index = refs.get(node)
        if index is None:
            index = refs[node] = len(refs)
        return index

    nodes = [(n.label, n.uid, n.props, n.first_seen, n.last_seen) for n in staging.nodes.values()]
    edges = [(e.type, ref(e.src), ref(e.dst), e.window, e.props, e.count, e.first_seen, e.last_seen, e.actions,
              e.sums, e.contributions) for e in staging.edges.values()]
    return (staging.source, staging.window, staging.limits, [(r.label, r.uid) for r in refs], nodes, edges,
            staging.events, staging.records, staging.label_conflicts, staging.batch, staging.batches)


def _unpack_partial(packed: tuple[Any, ...], files: list[StagedFile], quarantined: bytes) -> PartialStaging:
    source, window, limits, refs, nodes, edges, events, records, conflicts, batch, batches = packed
    staging = Staging(source, window, limits)
    endpoints = [NodeRef(label, uid) for label, uid in refs]
    staging.nodes = {(n[0], n[1]): StagedNode(*n) for n in nodes}
    for e in edges:
        src, dst = endpoints[e[1]], endpoints[e[2]]
        staging.edges[(e[0], src, dst, e[3])] = StagedEdge(e[0], src, dst, *e[3:])
    staging.events, staging.records, staging.label_conflicts = events, records, conflicts
    staging.batch, staging.batches = batch, batches
    return PartialStaging(staging, files, quarantined)


@paused_gc()  # one run of files, acyclic (gnnsec.gc_pause): staging ran 5-15 % faster
def stage_partial(items: Sequence[WorkItem], window: timedelta, skip_bad: bool = False,
                  quarantine: bool = False) -> PartialStaging:
    """Stage consecutive work items of one source into a fresh staging, one batch each, as the
    one-process ingest stages a group (the same bytes twice count once); run in a worker process.
    Raises :class:`IngestError` at the first bad file as :func:`stage_into` does. With ``quarantine``
    the bad records' lines are kept for the parent to write."""
    lines = io.BytesIO() if quarantine else None
    staging = Staging(items[0].source, window)
    files = []
    for item in items:
        began = time.perf_counter()
        digest = content_digest(item.path)
        if digest in staging.batches:
            files.append(StagedFile(digest, duplicate=True))
            continue
        staging.begin_batch(digest, str(item.path))
        records, events, edges = staging.records, staging.events, len(staging.edges)
        skipped = stage_into(staging, item, skip_bad, lines, None)
        files.append(StagedFile(digest, staging.records - records, staging.events - events,
                                len(staging.edges) - edges, skipped, time.perf_counter() - began))
    return PartialStaging(staging, files, lines.getvalue() if lines is not None else b"")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one): what worker counts start from."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes for staging: forked from a fresh forkserver (the parent may run threads: the Neo4j
    driver, the progress display), which has imported the adapters once; spawn where there is none."""
    import multiprocessing

    context: multiprocessing.context.BaseContext
    if "forkserver" in multiprocessing.get_all_start_methods():
        forkserver = multiprocessing.get_context("forkserver")
        forkserver.set_forkserver_preload(["gnnsec.ingest.pipeline"])
        context = forkserver
    else:
        context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


BLANK_CHECK_BYTES = 65_536
"""Plain files up to this size that hold only whitespace count as empty (larger ones are read by the adapter)."""


def _is_blank(path: Path) -> bool:
    """An empty regular file, or a small plain one of whitespace only (a ``.gz`` is judged by its adapter)."""
    if not path.is_file():
        return False
    size = path.stat().st_size
    if size == 0:
        return True
    if size > BLANK_CHECK_BYTES or path.suffix == ".gz":
        return False
    return path.read_bytes().strip() == b""


def stage_into(
    staging: Staging,
    item: WorkItem,
    skip_bad: bool = False,
    quarantine: IO[bytes] | None = None,
    progress: StageProgress | None = None,
) -> Counter[str]:
    """Read and validate one work item completely into ``staging``. Raises :class:`IngestError` on
    the first bad record unless ``skip_bad``, in which case bad records are counted and quarantined."""
    skipped: Counter[str] = Counter()
    if _is_blank(item.path):
        # Every adapter reports an empty file the same way: 0 records, no error (a quiet hour's export can be
        # empty); the ingest summary lists the files that held no records.
        return skipped
    pending = 0
    produced = 0  # records the adapter produced from this file: "record N" counts them
    try:
        for record in item.adapter.read(item.path):
            produced += 1
            if isinstance(record, BadRecord):
                if not skip_bad:
                    raise IngestError(item.path, record.reason, record.where)
                skipped[record.reason.split(":")[0][:80]] += 1
                if quarantine is not None:
                    quarantine.write(orjson.dumps({"file": str(item.path), "where": record.where,
                                                   "reason": record.reason, "excerpt": record.excerpt}) + b"\n")
                continue
            try:
                staging.add(record)
            except schema.SchemaError as exc:
                where = f"record {produced} of what the {item.adapter.name} adapter read"
                if not skip_bad:
                    raise IngestError(item.path, str(exc), where) from exc
                skipped["schema: " + str(exc)[:70]] += 1
                if quarantine is not None:
                    quarantine.write(orjson.dumps({"file": str(item.path), "where": where,
                                                   "reason": str(exc), "excerpt": safe_excerpt(record)}) + b"\n")
            pending += 1
            if progress is not None and pending >= 5000:
                progress.advance_records(pending)
                pending = 0
    except AdapterError as exc:
        # A directory batch (an inventory dump) fails on one of its files: name that file, not only the folder.
        inner = exc.path if exc.path != str(item.path) else None
        raise IngestError(item.path, exc.message, f"file {inner}" if inner else None) from exc
    except (AttributeError, TypeError, ValueError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        # An adapter met a shape it does not expect (a number where it reads a string …). Adapters turn the
        # shapes they know into bad records; this is the net under the rest, so hostile input still gets a
        # clear error naming the file instead of a traceback. The adapter cannot go on after it, so even
        # with --skip-bad the file fails (and writes nothing).
        raise IngestError(
            item.path,
            f"the {item.adapter.name} adapter cannot read a record ({type(exc).__name__}: {str(exc)[:200]}); "
            "fix or remove that record, and please report it: it should have been a bad record",
            f"after record {produced}",
        ) from exc
    if progress is not None and pending:
        progress.advance_records(pending)
    return skipped


GROUP_MAX_BYTES = 8 << 20
"""Files of one source are staged and written together up to this much input (on disk): about a
day of a busy account's hourly CloudTrail, so a daily window is mostly written once."""
GROUP_MAX_FILES = 512


def _size_on_disk(item: WorkItem) -> int:
    return item.path.stat().st_size if item.path.is_file() else GROUP_MAX_BYTES


def group_items(work: Sequence[WorkItem], size_of: Callable[[WorkItem], int] = _size_on_disk
                ) -> list[list[WorkItem]]:
    """Consecutive items of the same source, bounded in bytes and files: one staging, one write. ``size_of``
    gives an item's bytes (a file's size on disk; for files read by URL, the size their listing gave)."""
    groups: list[list[WorkItem]] = []
    size = 0
    for item in work:
        item_size = size_of(item)
        current = groups[-1] if groups else None
        if (current is None or item.source != current[0].source or size + item_size > GROUP_MAX_BYTES
                or len(current) >= GROUP_MAX_FILES):
            groups.append([item])
            size = item_size
        else:
            current.append(item)
            size += item_size
    return groups
