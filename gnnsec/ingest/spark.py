"""Staging in Apache Spark tasks: ``gnnsec ingest --engine spark [--master URL]``.

The same adapters and staging rules run inside Spark tasks. Each call submitted here (one run of consecutive
files of a group, :func:`gnnsec.ingest.pipeline.stage_partial`) is one Spark job of one task; a few jobs are in
flight at once, so the cluster stages the next runs while the driver merges and writes. The partial stagings
come back to the driver, which merges them in file order exactly as the process pool's do
(:meth:`~gnnsec.ingest.staging.Staging.merge`) and writes them through gnnsec's one loader: per-file
contributions stay exact, a bad file writes nothing, re-ingest changes nothing, and no two writers ever hold
locks on the same nodes (one writer, so no deadlocks to retry).

Why the driver writes rather than the Neo4j Connector for Apache Spark: the connector writes rows with its own
MERGE statements, which cannot express the per-file contributions of an aggregated relationship (a re-ingested
file replaces its share, never adds it twice); the write is also Neo4j-bound, not CPU-bound, on the machines
measured (``benchmarks/ingest.py``).

Files may also be Hadoop URLs (``s3a://``, ``hdfs://``, ``gs://``, ``abfs://``, ``file://`` …, issue #14): the
driver lists them through Spark's Hadoop FileSystem (:meth:`SparkStaging.list_urls`), and each run's task gets the
bytes from the JVM (``binaryFiles``), writes each file under its own name in a temporary folder and stages it there
with the same :func:`~gnnsec.ingest.pipeline.stage_partial`; paths and errors name the URL.

Like the rest of ``ingest`` this module only reads and stages; it never talks to Neo4j.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from gnnsec.errors import GnnsecError, InputError, StateError
from gnnsec.ingest import get_adapter, pipeline
from gnnsec.ingest.pipeline import IngestError, PartialStaging, WorkItem, stage_partial

if TYPE_CHECKING:
    from pyspark import SparkContext

T = TypeVar("T")

DEFAULT_MASTER = "local[*]"

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
"""What ``gnnsec ingest`` reads as a URL rather than a local path: a scheme and ``://``."""


def is_url(path: str) -> bool:
    return URL.match(path) is not None


@dataclass(frozen=True, slots=True)
class RemoteItem(WorkItem):
    """A file the cluster reads by URL. A :class:`WorkItem` so the driver groups, merges and shows it as any other:
    ``path`` is only its base name (what progress shows and what the task names its local copy); ``url`` names it
    in results and errors, ``key`` is the Hadoop path ``binaryFiles`` reports it under, ``size`` bounds groups."""

    url: str
    key: str
    size: int

    @property
    def location(self) -> str:
        return self.url


def group_remote(items: Sequence[RemoteItem]) -> list[list[WorkItem]]:
    """:func:`~gnnsec.ingest.pipeline.group_items` with the sizes the listing gave (no local file to stat)."""
    return pipeline.group_items(items, size_of=lambda item: item.size if isinstance(item, RemoteItem) else 0)


def _display_url(hadoop_path: str) -> str:
    """Hadoop writes local files as ``file:/abs``; users (and ``file://`` arguments) write ``file:///abs``."""
    if hadoop_path.startswith("file:/") and not hadoop_path.startswith("file://"):
        return "file://" + hadoop_path[len("file:"):]
    return hadoop_path


def _is_hidden(relative: str) -> bool:
    """Hadoop's rule (``_SUCCESS``, ``.crc``, ``_temporary/``): a name starting with . or _ is not data."""
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def _stage_fetched(rows: Iterable[tuple[str, bytes]], items: list[RemoteItem], window: timedelta, skip_bad: bool,
                   quarantine: bool) -> Iterator[tuple[GnnsecError | None, PartialStaging | None]]:
    """Inside the Spark task: each fetched file written under its own base name (``.gz`` and adapters that look at
    names work), staged as local files, then every recorded path, error and quarantine line renamed to its URL."""
    import tempfile

    import orjson

    fetched = dict(rows)
    with tempfile.TemporaryDirectory(prefix="gnnsec-spark-") as folder:
        local: list[WorkItem] = []
        urls: dict[str, str] = {}
        for index, item in enumerate(items):
            data = fetched.get(item.key, b"" if item.size == 0 else None)
            if data is None:
                yield InputError(f"{item.url}: listed, but Spark returned no bytes for it (was it moved or deleted "
                                 "while ingesting?); run the same command again"), None
                return
            path = Path(folder, str(index), item.path.name)
            path.parent.mkdir()
            path.write_bytes(data)
            local.append(WorkItem(path, item.adapter))
            urls[str(path)] = item.url

        def renamed(text: str) -> str:
            for path, url in urls.items():
                text = text.replace(path, url)
            return text

        try:
            staged = stage_partial(local, window, skip_bad, quarantine)
        except IngestError as exc:
            yield IngestError(urls.get(exc.path, renamed(exc.path)), renamed(exc.reason),
                              renamed(exc.where) if exc.where else None), None
            return
        except GnnsecError as exc:
            yield exc, None
            return
    for batch in staged.staging.batches.values():
        batch["path"] = urls.get(batch["path"], batch["path"])
    lines = [orjson.loads(line) for line in staged.quarantined.splitlines()]
    for line in lines:
        line["file"] = urls.get(line["file"], line["file"])
    staged.quarantined = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    yield None, staged


def _run_task(payload: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]) -> tuple[GnnsecError | None, Any]:
    """Inside the Spark task: a gnnsec error (a bad file) comes back as a value, whole, for the driver to raise
    in file order; Spark would otherwise turn it into a Java exception carrying only its text."""
    function, args, kwargs = payload
    try:
        return None, function(*args, **kwargs)
    except GnnsecError as exc:
        return exc, None


class SparkStaging(Executor):
    """An :class:`~concurrent.futures.Executor` whose calls run as Spark jobs (one task each).

    ``master`` is any Spark master URL (``local[2]``, ``spark://host:7077``, ``yarn``, ``k8s://…``). An active
    Spark session in this process is reused, and then left running; one created here is stopped by
    :meth:`shutdown`. ``java_home`` points Spark at a supported Java (17 or 21) when ``JAVA_HOME`` does not.
    """

    def __init__(self, master: str = DEFAULT_MASTER, *, java_home: Path | None = None,
                 app_name: str = "gnnsec-ingest") -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise StateError("--engine spark needs pyspark: pip install 'gnnsec[spark]' (or pip install pyspark)"
                             ) from exc
        if java_home is not None:
            os.environ["JAVA_HOME"] = str(java_home)
        active = SparkSession.getActiveSession()
        self._owns_session = active is None
        try:
            self.session = active or (
                SparkSession.builder.master(master).appName(app_name)
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.pyspark.python", sys.executable)
                .getOrCreate()
            )
        except Exception as exc:  # py4j/JVM start-up failures come as several types
            raise InputError(f"cannot start Spark with master {master!r}: {exc}") from exc
        self.context: SparkContext = self.session.sparkContext
        if self._owns_session:
            self.context.setLogLevel("ERROR")
        self.parallelism = max(1, int(self.context.defaultParallelism))
        # Jobs in flight: one per task slot, so every core stages while the driver merges and writes.
        self._jobs = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="gnnsec-spark")

    def _run(self, function: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        error, value = self.context.parallelize([(function, args, kwargs)], 1).map(_run_task).collect()[0]
        if error is not None:
            raise error
        return value

    def _stage_remote(self, items: list[RemoteItem], window: timedelta, skip_bad: bool = False,
                      quarantine: bool = False) -> PartialStaging:
        """One run of remote files as one Spark task: the JVM reads them (Python tasks cannot call Hadoop), the
        task stages them (:func:`_stage_fetched`)."""
        stage = partial(_stage_fetched, items=items, window=window, skip_bad=skip_bad, quarantine=quarantine)
        keys = [item.key for item in items if item.size > 0]
        try:
            if keys:
                results = (self.context.binaryFiles(",".join(keys), minPartitions=1).coalesce(1)
                           .mapPartitions(stage).collect())
            else:  # empty files only: nothing for the cluster to read
                results = list(stage([]))
        except Exception as exc:  # py4j and Spark job failures come as several types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"Spark could not read {items[0].url} (or the {len(items) - 1} file(s) after it in its "
                             f"run): {first[:300]}; check that the cluster can read these URLs, then run the same "
                             "command again") from exc
        error, staged = results[0]
        if error is not None:
            raise error
        assert staged is not None
        return staged

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """``fn`` runs in a Spark task; :func:`stage_partial` of :class:`RemoteItem` runs in one that fetches them."""
        if fn is stage_partial and args and args[0] and isinstance(args[0][0], RemoteItem):
            return self._jobs.submit(cast(Callable[..., T], self._stage_remote), *args, **kwargs)
        return self._jobs.submit(self._run, fn, args, kwargs)

    def list_urls(self, urls: Sequence[str], source: str, **options: str | None) -> list[RemoteItem]:
        """The files at ``urls`` (a file, a folder read recursively, or a glob), each URL's sorted, hidden files
        (names starting with . or _) and the names local discovery ignores (README, *.md …) left out; all go to the
        adapter ``source``. Listed here on the driver through Hadoop's FileSystem, so any scheme the cluster's
        Hadoop configuration can read works (``s3a://`` needs hadoop-aws on the classpath, and credentials)."""
        adapter = get_adapter(source, **options)
        jvm, conf = self.context._jvm, self.context._jsc.hadoopConfiguration()
        items: list[RemoteItem] = []
        for url in urls:
            try:
                found = self._list(jvm, conf, url)
            except Exception as exc:  # py4j: no FileSystem for the scheme, no credentials, unreachable …
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InputError(f"{url}: cannot list it through Spark's Hadoop file systems ({first[:300]}); check "
                                 "the URL, that the cluster has the connector for its scheme (s3a:// needs "
                                 "hadoop-aws) and credentials to read it") from exc
            if not found:
                raise InputError(f"{url}: no file matches this URL (files and folders whose names start with . or _ "
                                 "are skipped); check the URL")
            for key, size in sorted(found):
                if re.search(r"[,{}\[\]*?\\]", key):
                    raise InputError(f"{_display_url(key)}: Spark reads a list of URLs separated by commas, with "
                                     "globs; rename the file without , { } [ ] * ? or \\, or ingest a local copy")
                items.append(RemoteItem(Path(key.rsplit("/", 1)[-1]), adapter, _display_url(key), key, size))
        return items

    @staticmethod
    def _list(jvm: Any, conf: Any, url: str) -> list[tuple[str, int]]:
        """(Hadoop path, size) of each data file ``url`` names."""
        pattern = jvm.org.apache.hadoop.fs.Path(url)
        system = pattern.getFileSystem(conf)
        found: list[tuple[str, int]] = []
        globbed = re.search(r"[{}\[\]*?]", url) is not None
        for status in system.globStatus(pattern) or []:
            root = status.getPath()
            if globbed and _is_hidden(root.getName()):  # a name given whole is meant, even if hidden
                continue
            if not status.isDirectory():
                found.append((root.toString(), int(status.getLen())))
                continue
            prefix = root.toString().rstrip("/") + "/"
            files = system.listFiles(root, True)
            while files.hasNext():
                file = files.next()
                key = file.getPath().toString()
                name = key.rsplit("/", 1)[-1]
                if (key.startswith(prefix) and _is_hidden(key[len(prefix):])) or not pipeline._is_candidate_file(
                        Path(name)):
                    continue
                found.append((key, int(file.getLen())))
        return found

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._jobs.shutdown(wait=wait, cancel_futures=cancel_futures)
        if self._owns_session:
            self.session.stop()
