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

Like the rest of ``ingest`` this module only reads and stages; it never talks to Neo4j.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gnnsec.errors import GnnsecError, InputError, StateError

if TYPE_CHECKING:
    from pyspark import SparkContext

T = TypeVar("T")

DEFAULT_MASTER = "local[*]"


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

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self._jobs.submit(self._run, fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._jobs.shutdown(wait=wait, cancel_futures=cancel_futures)
        if self._owns_session:
            self.session.stop()
