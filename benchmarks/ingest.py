"""CloudTrail ingest throughput, end to end into a real Neo4j, against a naive loader in the same run.

    python benchmarks/ingest.py [--layout hourly|cloudtrail-5min [--days 7]] [--events N] [--seed 7]
                                [--naive-events 2000] [--workers N] [--rounds 1] [--engine spark [--master local[2]]]

Generates ``--events`` realistic CloudTrail management and data events (a few hundred principals
over a few thousand resources, one week) as CloudTrail delivers them, one gzipped ``Records``
file per hour, then times
``gnnsec ingest cloudtrail`` on it (parse → map → stage → batched UNWIND MERGE) and, on a slice,
a naive loader that writes one transaction per event (MERGE both endpoints and the relationship),
which is what a first implementation usually does.  Then, on the now warm server, the same files
into an emptied graph twice: in one process and with ``--workers`` staging processes (default: one
per core), each checked to write the graph of the first run; and the first-ingest latency of a small export
(``--first-events``, schema applied first) into an emptied graph.  With ``--engine spark``, the same files
staged in Spark tasks (``--master``) next to the one-process path, in the same run, each into an emptied graph
and checked to write the same graph (``spark_vs_one_process``).  Prints one JSON object: events/s of
each, their ratios (``speedup_workers_vs_one_process``), read and write shares, and the peak
resident memory of the batched run.

``--layout cloudtrail-5min`` writes instead a busy multi-region account as a multi-region trail delivers it
(``benchmarks/cloudtrail_layout.py``): one gzipped file per region per 5 minutes under
``AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/``, 17 regions of which two carry the account's work
and fifteen a handful of events per file, shaped by hour of day: about 4.5k files a day.  The files are found
the way ``gnnsec ingest cloudtrail AWSLogs/`` finds them (``discover``, timed apart as ``discover_seconds``); the
first-ingest check reads the first 5-minute files of the same account (every region) until ``--first-events``;
the JSON adds ``layout_stats`` (files, events and bytes per file, regional and hourly skew) and
``batches_per_relationship``.  Both layouts are deterministic for ``--seed``.

It spans a week by default (``--days 7``, 301,000 events in about 31k files).  Every file is a batch, and an
aggregated daily relationship keeps one contribution per file that touched it (``batches_per_relationship``:
principals that act in every region every 5 minutes, such as AWS Config, a monitoring integration or a scanner,
reach about 2,400 a day).  Before the loader's bookkeeping became linear in those (``gnnsec/graphdb/loader.py``)
one day of this layout took 44-53 s in one process with a write share of 0.99, and the week did not finish its
first ingest in 10 minutes; the whole week now takes about 34 s (2 cores, load 1-2).

Neo4j: ``NEO4J_URI`` (+ ``NEO4J_PASSWORD``) if set, else a throw-away local server started and
stopped by the benchmark (in a temporary state dir, sharing the jar cache).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cloudtrail_layout import write_cloudtrail_5min
from benchmarks.neo4j_for_bench import neo4j_driver
from gnnsec.graphdb.driver import apply_schema
from gnnsec.graphdb.ingest import ingest
from gnnsec.graphdb.loader import delete_everything
from gnnsec.ingest import get_adapter
from gnnsec.ingest.base import Edge
from gnnsec.ingest.pipeline import WorkItem, discover, usable_cores

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
LAYOUT_EVENTS = {"hourly": 1_000_000, "cloudtrail-5min": 43_000}  # default --events (cloudtrail-5min: per day)
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
READS = (
    ("s3.amazonaws.com", "GetObject"),
    ("s3.amazonaws.com", "ListObjects"),
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("iam.amazonaws.com", "ListRoles"),
    ("lambda.amazonaws.com", "GetFunction"),
    ("sts.amazonaws.com", "GetCallerIdentity"),
)
WRITES = (
    ("s3.amazonaws.com", "PutObject"),
    ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2"),
    ("iam.amazonaws.com", "UpdateAssumeRolePolicy"),
)


def _identity(rng: random.Random, index: int) -> dict[str, Any]:
    account = ACCOUNTS[index % len(ACCOUNTS)]
    if index % 3 == 0:
        name = f"user{index}"
        return {
            "type": "IAMUser",
            "principalId": f"AIDA{index:016d}",
            "arn": f"arn:aws:iam::{account}:user/{name}",
            "accountId": account,
            "accessKeyId": f"AKIA{index:016d}",
            "userName": name,
        }
    role = f"service-role-{index}"
    return {
        "type": "AssumedRole",
        "principalId": f"AROA{index:016d}:session-{index}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/session-{index}",
        "accountId": account,
        "accessKeyId": f"ASIA{index:016d}",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": f"AROA{index:016d}",
                "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2026-03-02T00:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def generate_events(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """A week of CloudTrail events; deterministic for a seed."""
    rng = random.Random(seed)
    identities = [_identity(rng, i) for i in range(300)]
    buckets = [f"bench-bucket-{i}" for i in range(400)]
    instances = [f"i-{i:017x}" for i in range(1500)]
    start = datetime(2026, 3, 2, tzinfo=UTC)
    step = timedelta(days=7) / count
    for n in range(count):
        identity = identities[int(rng.paretovariate(1.2)) % len(identities)]
        region = REGIONS[n % len(REGIONS)]
        when = (start + step * n).strftime("%Y-%m-%dT%H:%M:%SZ")
        roll = rng.random()
        request: dict[str, Any] | None
        if roll < 0.05:
            source, name = "sts.amazonaws.com", "AssumeRole"
            target = identities[rng.randrange(1, len(identities), 3) if rng.random() < 0.5 else 1]
            role_arn = target.get("sessionContext", {}).get("sessionIssuer", {}).get(
                "arn", f"arn:aws:iam::{ACCOUNTS[0]}:role/service-role-1"
            )
            request = {"roleArn": role_arn, "roleSessionName": f"s{n % 97}"}
        elif roll < 0.08:
            source, name = "ec2.amazonaws.com", rng.choice(("StartInstances", "StopInstances"))
            request = {"instancesSet": {"items": [{"instanceId": rng.choice(instances)}]}}
        elif roll < 0.15:
            source, name = rng.choice(WRITES)
            if source.startswith("s3"):
                request = {"bucketName": rng.choice(buckets), "key": f"obj/{n % 1000}"}
            elif source.startswith("lambda"):
                request = {"functionName": f"fn-{n % 50}"}
            else:
                request = {"roleName": f"service-role-{n % 90}"}
        else:
            source, name = rng.choice(READS)
            if source.startswith("s3"):
                request = {"bucketName": rng.choice(buckets), "key": f"obj/{n % 1000}"}
            elif name == "GetFunction":
                request = {"functionName": f"fn-{n % 50}"}
            else:
                request = None
        yield {
            "eventVersion": "1.08",
            "userIdentity": identity,
            "eventTime": when,
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": f"203.0.113.{n % 200 + 1}" if n % 11 else "10.0.1.5",
            "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",
            "requestParameters": request,
            "responseElements": None,
            "requestID": f"{n:032x}",
            "eventID": f"{(n * 7919) % (1 << 64):032x}",
            "readOnly": name.startswith(("Get", "List", "Describe")),
            "eventType": "AwsApiCall",
            "managementEvent": not source.startswith("s3"),
            "recipientAccountId": identity["accountId"],
            "eventCategory": "Management",
        }


def write_hourly_files(directory: Path, count: int, seed: int = 7) -> list[Path]:
    """CloudTrail as it is delivered: one gzipped ``{"Records": [...]}`` file per hour."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    hour: str | None = None
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if batch:
            path = directory / f"111111111111_CloudTrail_us-east-1_{hour}_bench.json.gz"
            with gzip.open(path, "wb", compresslevel=1) as handle:
                handle.write(orjson.dumps({"Records": batch}))
            paths.append(path)

    for event in generate_events(count, seed):
        event_hour = event["eventTime"][:13].replace("-", "").replace("T", "T") + "00Z"
        if event_hour != hour:
            flush()
            hour, batch = event_hour, []
        batch.append(event)
    flush()
    return paths


def naive_load(driver: Any, paths: list[Path], limit: int, database: str | None) -> tuple[int, float]:
    """One transaction per event: MERGE both endpoints and the relationship, count += 1."""
    adapter = get_adapter("cloudtrail")
    events = 0
    started = time.perf_counter()
    with driver.session(database=database) as session:
        for record in (r for path in paths for r in adapter.read(path)):
            if not isinstance(record, Edge) or record.time is None:
                continue
            query = (
                f"MERGE (a:{record.src.label} {{uid: $src}}) MERGE (b:{record.dst.label} {{uid: $dst}}) "
                f"MERGE (a)-[r:{record.type} {{window: $window}}]->(b) "
                "ON CREATE SET r.count = 0 SET r.count = r.count + 1, r.last_seen = $time"
            )
            window = record.time.replace(hour=0, minute=0, second=0, microsecond=0)
            session.execute_write(
                lambda tx, q=query, r=record, w=window: tx.run(
                    q, src=r.src.uid, dst=r.dst.uid, window=w, time=r.time
                ).consume()
            )
            events += 1
            if events >= limit:
                break
    return events, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layout", choices=LAYOUT_EVENTS, default="hourly",
                        help="hourly: one file an hour; cloudtrail-5min: a multi-region trail's files, one per "
                             "region per 5 minutes, as AWS delivers them")
    parser.add_argument("--events", type=int, default=None,
                        help="events in all (default: 1,000,000 over the hourly week; cloudtrail-5min: 43,000 a "
                             "day, the rate of a 301k-event week)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated events and files")
    parser.add_argument("--days", type=int, default=7,
                        help="cloudtrail-5min: days the layout spans (default 7: a week)")
    parser.add_argument("--naive-events", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=None,
                        help="staging processes of the parallel run (default: one per core; 1 skips it)")
    parser.add_argument("--first-events", type=int, default=3_000,
                        help="events of the first-ingest latency check (an emptied graph, schema applied first)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="one-process/parallel pairs to run (alternating order; the fastest of each counts)")
    parser.add_argument("--engine", choices=("local", "spark"), default="local",
                        help="spark: also time staging in Spark tasks against one process, in the same run")
    parser.add_argument("--master", default="local[2]", help="Spark master URL for --engine spark")
    args = parser.parse_args()
    args.events = args.events or LAYOUT_EVENTS[args.layout] * (args.days if args.layout == "cloudtrail-5min" else 1)
    workers = args.workers or usable_cores()

    with tempfile.TemporaryDirectory(prefix="gnnsec-bench-") as tmp:
        started = time.perf_counter()
        adapter = get_adapter("cloudtrail")
        layout_stats: dict[str, Any] | None = None
        discover_seconds: float | None = None
        if args.layout == "hourly":
            paths = write_hourly_files(Path(tmp) / "cloudtrail", args.events, args.seed)
            generate_seconds = time.perf_counter() - started
            work = [WorkItem(path, adapter) for path in paths]
        else:
            layout = write_cloudtrail_5min(Path(tmp) / "cloudtrail", args.events, seed=args.seed, days=args.days)
            generate_seconds = time.perf_counter() - started
            paths, layout_stats = layout.paths, layout.stats()
            started = time.perf_counter()
            work, unclaimed = discover([Path(tmp) / "cloudtrail" / "AWSLogs"], "cloudtrail")
            discover_seconds = time.perf_counter() - started
            if [item.path for item in work] != paths or unclaimed:
                raise SystemExit("discover did not find the layout's files in walk order")
        file_bytes = sum(path.stat().st_size for path in paths)
        with neo4j_driver(Path(tmp)) as (driver, database):
            # First-ingest latency: what `gnnsec ingest` costs a new user on a small export (about 3k events)
            # into the fresh database this server just created (cold plan cache, empty store): applying the
            # schema (idempotent) plus the ingest. Measured first, before anything else touched the server.
            if args.layout == "hourly":
                small = write_hourly_files(Path(tmp) / "first", args.first_events, args.seed)
            else:  # the same account's first 5-minute files, every region, until about --first-events
                small = write_cloudtrail_5min(Path(tmp) / "first", args.first_events, seed=args.seed,
                                              days=args.days, rates_of=args.events).paths
            delete_everything(driver, database)
            started = time.perf_counter()
            apply_schema(driver, database or "neo4j")
            first_report = ingest(driver, [WorkItem(path, adapter) for path in small], database=database)
            first_seconds = time.perf_counter() - started
            first = {"events": args.first_events, "files": len(small), "seconds": round(first_seconds, 2),
                     "relationships": sum(f.relationships for f in first_report.files),
                     "fresh_server": "NEO4J_URI" not in os.environ}

            delete_everything(driver, database)
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            report = ingest(driver, work, database=database, batch_size=args.batch_size)
            batched_seconds = time.perf_counter() - started
            peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            activity_edges = sum(f.events for f in report.files)
            relationships = sum(f.relationships for f in report.files)
            read_seconds = sum(f.read_seconds for f in report.files)
            write_seconds = sum(f.write_seconds for f in report.files)
            graph = _graph_digest(driver, database)

            started = time.perf_counter()
            repeat = ingest(driver, work, database=database, batch_size=args.batch_size)
            reingest_seconds = time.perf_counter() - started
            unchanged = sum(repeat.totals.relationships_created.values()) == 0
            nodes_created_again = sum(repeat.totals.nodes_created.values())
            reingest_same_graph = _graph_digest(driver, database) == graph
            store = _store_size(driver, database, Path(tmp) / "neo4j")
            fan_in = _batches_per_relationship(driver, database)

            # --workers: one process against N, both into an emptied graph on the now warm server (the first
            # run above also paid for the server's warm-up), each timed the same way
            # (--rounds alternates which goes first and keeps each one's fastest: the machine may be shared)
            comparison: dict[str, Any] | None = None
            if workers > 1:
                comparison = {}
                pair = [("one_process", 1), ("workers", workers)]
                for round_ in range(args.rounds):
                    for label, count in pair if round_ % 2 == 0 else pair[::-1]:
                        delete_everything(driver, database)
                        started = time.perf_counter()
                        run = ingest(driver, work, database=database, batch_size=args.batch_size, workers=count)
                        seconds = time.perf_counter() - started
                        if label not in comparison or seconds < comparison[label]["seconds"]:
                            comparison[label] = {"workers": count, **_shares(run, seconds, args.events),
                                                 "same_graph": _graph_digest(driver, database) == graph}
                        comparison.setdefault("all_seconds", {}).setdefault(label, []).append(round(seconds, 2))
                comparison["speedup"] = round(comparison["workers"]["events_per_s"]
                                              / comparison["one_process"]["events_per_s"], 2)

            spark = _spark_against_one_process(driver, database, work, args, graph) if args.engine == "spark" else None

            delete_everything(driver, database)
            naive_events, naive_seconds = naive_load(driver, paths, args.naive_events, database)

    events = args.events
    batched_rate = events / batched_seconds
    naive_rate = naive_events / naive_seconds
    print(json.dumps({
        "benchmark": "ingest-cloudtrail",
        "layout": args.layout,
        "seed": args.seed,
        "cloudtrail_events": events,
        "files": len(paths),
        "file_bytes_gz": file_bytes,
        "generate_seconds": round(generate_seconds, 2),
        "layout_stats": layout_stats,
        "discover_seconds": None if discover_seconds is None else round(discover_seconds, 2),
        "batched": {"seconds": round(batched_seconds, 2), "events_per_s": round(batched_rate),
                    "read_map_stage_s_overlapped": round(read_seconds, 2), "write_s": round(write_seconds, 2),
                    "activity_edges_staged": activity_edges, "relationships_written": relationships,
                    "batch_size": args.batch_size, "workers": 1,
                    **{k: v for k, v in _shares(report, batched_seconds, events).items() if k.endswith("share")}},
        "parallel_warm": comparison,
        "speedup_workers_vs_one_process": comparison["speedup"] if comparison else None,
        "spark_vs_one_process": spark,
        "store": store,
        "batches_per_relationship": fan_in,
        "reingest": {"seconds": round(reingest_seconds, 2), "no_new_relationships": unchanged,
                     "nodes_created": nodes_created_again,
                     "relationships_created": sum(repeat.totals.relationships_created.values()),
                     "same_graph": reingest_same_graph},
        "first_ingest_empty_graph": first,
        "naive_one_tx_per_event": {"activity_edges": naive_events, "seconds": round(naive_seconds, 2),
                                   "activity_edges_per_s": round(naive_rate)},
        "batched_activity_edges_per_s": round(activity_edges / batched_seconds),
        "speedup_vs_naive": round(activity_edges / batched_seconds / naive_rate, 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "rss_before_ingest_mb": round(rss_before / 1024, 1),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }, indent=2))


def _spark_against_one_process(driver: Any, database: str | None, work: list[WorkItem], args: Any,
                               graph: tuple[Any, ...]) -> dict[str, Any]:
    """The same files in one process and staged in Spark tasks (the driver merges and writes), each into an
    emptied graph on the warm server, in alternating order per round (the fastest of each counts). The
    session's start-up is reported apart: a long-running Spark application pays it once."""
    from gnnsec.graphdb.local.java import find_java
    from gnnsec.ingest.spark import SparkStaging

    started = time.perf_counter()
    stager = SparkStaging(args.master, java_home=find_java().home, app_name="gnnsec-bench")
    start_seconds = time.perf_counter() - started
    results: dict[str, Any] = {}
    try:
        pair = [("one_process", None), ("spark", stager)]
        for round_ in range(args.rounds):
            for label, executor in pair if round_ % 2 == 0 else pair[::-1]:
                delete_everything(driver, database)
                started = time.perf_counter()
                run = ingest(driver, work, database=database, batch_size=args.batch_size, executor=executor,
                             workers=stager.parallelism if executor is not None else 1)
                seconds = time.perf_counter() - started
                if label not in results or seconds < results[label]["seconds"]:
                    results[label] = {**_shares(run, seconds, args.events),
                                      "same_graph": _graph_digest(driver, database) == graph}
    finally:
        stager.shutdown()
    results["spark"].update(master=args.master, parallelism=stager.parallelism,
                            session_start_s=round(start_seconds, 2))
    results["speedup"] = round(results["spark"]["events_per_s"] / results["one_process"]["events_per_s"], 2)
    return results


def _store_size(driver: Any, database: str | None, home: Path) -> dict[str, Any] | None:
    """Bytes on disk of the local server's store after the batched run (node, relationship, property and index
    files, transaction logs apart), per node and per relationship: what the page cache must hold to keep the
    graph in memory (``docs/scale.md``). None for an external server."""
    stores = home / "data" / "databases"
    if not stores.is_dir():
        return None
    size = sum(path.stat().st_size for path in stores.rglob("*") if path.is_file())
    nodes = driver.execute_query("MATCH (n) RETURN count(n) AS n", database_=database)[0][0]["n"]
    rels = driver.execute_query("MATCH ()-[r]->() RETURN count(r) AS n", database_=database)[0][0]["n"]
    return {"bytes": size, "nodes": nodes, "relationships": rels,
            "bytes_per_node_and_relationship": round(size / max(1, nodes + rels))}


def _batches_per_relationship(driver: Any, database: str | None) -> dict[str, Any]:
    """How many files (batches) contributed to each aggregated relationship: what each write of it costs, as
    the loader matches the staged contributions against the relationship's whole ``batches`` list."""
    records, _, _ = driver.execute_query(
        "MATCH ()-[r]->() WHERE r.batches IS NOT NULL WITH size(r.batches) AS n "
        "RETURN max(n) AS max, avg(n) AS mean, percentileDisc(n, 0.99) AS p99, count(*) AS relationships",
        database_=database)
    row = records[0]
    return {"relationships": row["relationships"], "mean": round(row["mean"] or 0, 1), "p99": row["p99"],
            "max": row["max"]}


def _shares(report: Any, seconds: float, events: int) -> dict[str, Any]:
    """Throughput and where the time went: ``read_s`` is the reading, mapping and staging of every file
    summed (over the worker processes, when there are several: CPU time, not wall), ``write_s`` the
    loader's transactions (one at a time, in this process); the shares are of the wall time."""
    read = sum(f.read_seconds for f in report.files)
    write = sum(f.write_seconds for f in report.files)
    return {"seconds": round(seconds, 2), "events_per_s": round(events / seconds), "read_s": round(read, 2),
            "write_s": round(write, 2), "read_share": round(read / seconds, 2),
            "write_share": round(write / seconds, 2)}


def _graph_digest(driver: Any, database: str | None) -> tuple[Any, ...]:
    """Counts and sums that any difference in what was written would change (ingest times aside)."""
    records, _, _ = driver.execute_query(
        "MATCH ()-[r]->() RETURN count(r) AS rels, sum(r.count) AS events, sum(size(r.actions)) AS actions, "
        "sum(size(r.batches)) AS shares, sum(r.last_seen.epochMillis) AS last, "
        "sum(r.first_seen.epochMillis) AS first, sum(r.bytes) AS volume",
        database_=database)
    nodes, _, _ = driver.execute_query("MATCH (n) RETURN count(n) AS n, sum(n.events) AS batch_events",
                                       database_=database)
    return tuple(records[0].values()) + tuple(nodes[0].values())


if __name__ == "__main__":
    main()
