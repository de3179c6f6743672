"""Evaluation data: a :class:`Snapshot` plus ground truth, from files (no Neo4j) or from a database.

Why files without Neo4j: an evaluation must be repeatable by anyone with the data, and the graph the
model sees must be exactly what ``gnnsec ingest`` would have loaded. So the same adapters and the same
:class:`~gnnsec.ingest.staging.Staging` run here, and :func:`staging_to_snapshot` reproduces what the
loader writes and the exporter reads back (merge rules of ``graphdb.loader``, value conventions of
``graphdb.export``): node properties with datetimes as epoch floats plus ``uid``/``first_seen``/
``last_seen``; per-batch activity counts summed; windows as Neo4j ISO strings; actions unioned.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from gnnsec import schema
from gnnsec.errors import InputError
from gnnsec.ingest.base import NodeRef
from gnnsec.ingest.staging import StagedEdge, StagedNode, Staging
from gnnsec.snapshot import Snapshot
from gnnsec.times import parse_time

if TYPE_CHECKING:
    from gnnsec.config import Neo4jSettings
    from gnnsec.ingest.pipeline import PartialStaging, WorkItem

CACHE_FORMAT = 2
"""Bump when the cached snapshot layout changes, so stale caches are rebuilt."""


class EvalDataError(InputError):
    """Unusable evaluation input; the message names the file and the row."""


@dataclass(frozen=True, slots=True)
class EntityLabel:
    """One labelled-malicious entity (a row of ``labels/entities.csv`` or of a ``--labels`` CSV)."""

    uid: str
    label: str
    campaign: str = ""
    first_malicious: float = math.nan
    last_malicious: float = math.nan


@dataclass(frozen=True, slots=True)
class ActivityLabel:
    """One malicious relationship-at-a-time (a row of ``labels/activity.csv``)."""

    src_uid: str
    type: str
    dst_uid: str
    time: float
    campaign: str = ""


@dataclass(slots=True)
class EvalData:
    """The whole graph and what is known to be malicious in it."""

    snapshot: Snapshot
    entities: dict[str, EntityLabel]
    activity: list[ActivityLabel] = field(default_factory=list)
    source: str = ""

    @property
    def campaigns(self) -> list[str]:
        return sorted({e.campaign for e in self.entities.values() if e.campaign})


# ---- staging → snapshot ---------------------------------------------------------------------------


def _epoch(value: datetime | None) -> float:
    """Epoch seconds; staged times are aware datetimes staging has range-checked, so they need no parsing."""
    if value is None:
        return math.nan
    return value.timestamp() if value.tzinfo is not None else parse_time(value).timestamp()


def _window_iso(window: datetime) -> str:
    """The ISO form ``neo4j.time.DateTime.iso_format()`` gives a UTC window start (nanosecond digits)."""
    moment = window.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond * 1000:09d}+00:00"


def _window_name(window: datetime | None, names: dict[datetime, str]) -> str | None:
    """:func:`_window_iso`, named once per distinct window: the medium estate's 450,719 windowed relationships
    have a few dozen windows (3.1 s in cProfile, and a string each, before)."""
    if window is None:
        return None
    name = names.get(window)
    if name is None:
        name = names[window] = _window_iso(window)
    return name


def _stored_value(value: Any) -> Any:
    """A staged property as the exporter returns it: datetimes (also inside lists) become epoch floats."""
    if isinstance(value, datetime):
        return _epoch(value)
    if isinstance(value, list):
        return [_stored_value(v) for v in value]
    return value


def _merge_node(into: StagedNode, node: StagedNode) -> None:
    """Loader rule: properties overwritten by the later batch, first/last seen only widen."""
    into.props.update(node.props)
    into.widen(node)


def _merge_edge(into: StagedEdge, edge: StagedEdge) -> None:
    """Loader rule: per-batch counts and sums add up; actions are unioned in order; times widen."""
    if edge.window is None:
        into.props.update(edge.props)
        into.count = 1
    else:
        into.count += edge.count
        for name, value in edge.sums.items():
            into.sums[name] = into.sums.get(name, 0) + value
        for action in edge.actions:
            into.actions.setdefault(action, None)
        into.props.update(edge.props)
    into.widen(edge)


def _exported_actions(edge: StagedEdge, shared: dict[tuple[str, ...], list[str]]) -> list[str]:
    """What the exporter reads as ``r.actions``: the distinct actions of activity, and on an inventory
    relationship its ``actions`` property (a policy's granted actions on GRANTS_ACCESS), found by the parity
    test against the real database. One list per distinct value (``shared``), as the exporter keeps them: the
    snapshot never changes them, and most relationships repeat a few action sets."""
    if edge.window is not None:
        actions = tuple(edge.actions)
    else:
        granted = edge.props.get("actions")
        actions = tuple(str(a) for a in granted) if isinstance(granted, list) else ()
    found = shared.get(actions)
    if found is None:
        found = shared[actions] = list(actions)
    return found


def merge_stagings(stagings: Iterable[Staging]) -> Staging:
    """One staging of what ``stagings`` say, merged in order by the loader's rules (the first one's source).

    Merging is associative, so runs of files merged apart and then together in order give the same result:
    that is how worker processes share the reading (:func:`snapshot_from_files`)."""
    merged: Staging | None = None
    nodes: dict[tuple[str, str], StagedNode] = {}
    edges: dict[tuple[str, NodeRef, NodeRef, datetime | None], StagedEdge] = {}
    for staging in stagings:
        if merged is None:
            merged = Staging(staging.source, staging.window)
            merged.nodes, merged.edges = nodes, edges
        for node_key, node in staging.nodes.items():
            if node_key in nodes:
                _merge_node(nodes[node_key], node)
            else:
                nodes[node_key] = StagedNode(node.label, node.uid, dict(node.props), node.first_seen, node.last_seen)
        for edge_key, edge in staging.edges.items():
            if edge_key in edges:
                _merge_edge(edges[edge_key], edge)
            else:
                edges[edge_key] = StagedEdge(edge.type, edge.src, edge.dst, edge.window, dict(edge.props), edge.count,
                                        edge.first_seen, edge.last_seen, dict(edge.actions), dict(edge.sums))
    return merged if merged is not None else Staging("none")


def staging_to_snapshot(stagings: Iterable[Staging]) -> Snapshot:
    """Merge stagings as the loader would and return what ``export_snapshot`` (no filter) would read.

    Nodes are ordered by schema label then uid, edges by relation id then (source, target, window), so
    the result does not depend on file order. Relationship properties other than the exported ones
    (``count``, times, ``window``, ``actions``) are dropped, as the exporter drops them.
    """
    merged = merge_stagings(stagings)
    nodes, edges = merged.nodes, merged.edges
    ordered_nodes = sorted(nodes.values(), key=lambda n: (schema.label_id(n.label), n.uid))
    index = {(n.label, n.uid): i for i, n in enumerate(ordered_nodes)}
    node_props: list[dict[str, Any]] = []
    for node in ordered_nodes:
        props = {k: _stored_value(v) for k, v in node.props.items()}
        props["uid"] = node.uid
        if node.first_seen is not None:
            props["first_seen"] = _epoch(node.first_seen)
        if node.last_seen is not None:
            props["last_seen"] = _epoch(node.last_seen)
        node_props.append(props)
    ordered_edges = sorted(
        edges.values(),
        key=lambda e: (schema.relation_id(e.type), e.src.uid, e.dst.uid, e.window.timestamp() if e.window else -1.0),
    )
    window_names: dict[datetime, str] = {}
    shared_actions: dict[tuple[str, ...], list[str]] = {}
    snapshot = Snapshot(
        node_uid=[n.uid for n in ordered_nodes],
        node_label=np.asarray([schema.label_id(n.label) for n in ordered_nodes], dtype=np.int64),
        node_props=node_props,
        edge_index=np.asarray(
            [[index[(e.src.label, e.src.uid)] for e in ordered_edges],
             [index[(e.dst.label, e.dst.uid)] for e in ordered_edges]],
            dtype=np.int64,
        ).reshape(2, -1),
        edge_type=np.asarray([schema.relation_id(e.type) for e in ordered_edges], dtype=np.int64),
        edge_count=np.asarray([float(e.count or 1) for e in ordered_edges], dtype=np.float64),
        edge_first_seen=np.asarray([_epoch(e.first_seen) for e in ordered_edges], dtype=np.float64),
        edge_last_seen=np.asarray([_epoch(e.last_seen) for e in ordered_edges], dtype=np.float64),
        edge_window=[_window_name(e.window, window_names) for e in ordered_edges],
        edge_actions=[_exported_actions(e, shared_actions) for e in ordered_edges],
        meta={"labels_exported": list(schema.NODE_LABELS), "built_from": "staging"},
    )
    snapshot.validate()
    return snapshot


# ---- labels -----------------------------------------------------------------------------------------


def _optional_time(value: str | None, path: Path, row: int) -> float:
    if not value:
        return math.nan
    try:
        return parse_time(value).timestamp()
    except (ValueError, TypeError) as exc:
        raise EvalDataError(f"{path} (row {row}): unreadable time {value!r}") from exc


def read_entity_labels(path: Path) -> dict[str, EntityLabel]:
    """uid → :class:`EntityLabel`; every listed uid is malicious. Needs at least ``uid,label``."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise EvalDataError(f"{path}: cannot read the labels file ({exc.strerror})") from exc
    out: dict[str, EntityLabel] = {}
    with handle:
        reader = csv.DictReader(handle)
        missing = {"uid", "label"} - set(reader.fieldnames or ())
        if missing:
            raise EvalDataError(
                f"{path}: the labels CSV needs columns uid,label (missing: {', '.join(sorted(missing))})"
            )
        for row_number, row in enumerate(reader, start=2):
            uid, label = (row.get("uid") or "").strip(), (row.get("label") or "").strip()
            if not uid:
                raise EvalDataError(f"{path} (row {row_number}): empty uid")
            if not schema.is_label(label):
                raise EvalDataError(f"{path} (row {row_number}): unknown node label {label!r}")
            out[uid] = EntityLabel(
                uid=uid,
                label=label,
                campaign=(row.get("campaign") or "").strip(),
                first_malicious=_optional_time(row.get("first_malicious"), path, row_number),
                last_malicious=_optional_time(row.get("last_malicious"), path, row_number),
            )
    return out


def read_activity_labels(path: Path) -> list[ActivityLabel]:
    """Rows of ``labels/activity.csv`` (``src_uid,type,dst_uid,time[,campaign]``); empty when absent."""
    if not path.exists():
        return []
    out: list[ActivityLabel] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"src_uid", "type", "dst_uid", "time"} - set(reader.fieldnames or ())
        if missing:
            raise EvalDataError(f"{path}: activity labels need src_uid,type,dst_uid,time (missing: {sorted(missing)})")
        for row_number, row in enumerate(reader, start=2):
            if not schema.is_relation(row["type"]):
                raise EvalDataError(
                    f"{path} (row {row_number}): unknown relationship type {row['type']!r}"
                )
            when = _optional_time(row["time"], path, row_number)
            campaign = (row.get("campaign") or "").strip()
            out.append(ActivityLabel(row["src_uid"], row["type"], row["dst_uid"], when, campaign))
    return out


# ---- building, with a cache ---------------------------------------------------------------------------


def directory_digest(root: Path, exclude: str = "labels") -> str:
    """Cheap identity of a data directory: relative path, size and mtime of every file (labels excluded)."""
    digest = hashlib.sha256(str(CACHE_FORMAT).encode())
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not (Path(directory) == root and d == exclude))
        for name in sorted(files):
            path = Path(directory) / name
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


class ReadProgress(Protocol):
    """What reading reports (``gnnsec.cli.common.Work`` fits): a phase with its total, then files done."""

    def phase(self, text: str, *, total: int | None = None, unit: str = "") -> None: ...
    def advance(self, count: int = 1, *, detail: str | None = None, total: int | None = None) -> None: ...


def default_read_workers() -> int:
    """Reading needs no database, so every core this process may run on stages files."""
    from gnnsec.ingest.pipeline import usable_cores

    return usable_cores()


READ_CHUNK_FILES = 32
"""Files a worker stages and merges per task: the parent then merges one staging per 32 files instead of one per
file (consecutive files of a source repeat most of their nodes and daily relationships)."""


def _stage_and_merge(items: list[WorkItem], window: timedelta) -> PartialStaging:
    """A worker's task: each file staged alone (its own batch, as the loader sees it), the run merged in order."""
    from gnnsec.ingest.pipeline import PartialStaging, stage

    return PartialStaging(merge_stagings(stage(item, window)[0] for item in items), [], b"")


def snapshot_from_files(
    root: Path, window: timedelta = timedelta(days=1), progress: ReadProgress | None = None, workers: int = 1
) -> Snapshot:
    """discover → stage every file (strict: the first bad record stops it, naming file and record) → merge.

    Each file is staged alone, as its own batch, and merged in file order as it arrives (no list of every
    staging is held). With ``workers`` above 1, worker processes stage and merge runs of
    :data:`READ_CHUNK_FILES` files and this process merges the runs in order: the same snapshot (merging is
    associative), and the first bad file in order still stops it, named."""
    from gnnsec.ingest.pipeline import discover, process_pool, stage

    items, _ = discover([root])
    items = [item for item in items if "labels" not in item.path.relative_to(root).parts[:1]]
    if not items:
        raise EvalDataError(f"{root}: no file that an ingest adapter recognises")
    if progress is not None:
        progress.phase(f"staging {root}", total=len(items), unit="files")

    def done(count: int, last: WorkItem) -> None:
        if progress is not None:
            progress.advance(count, detail=str(last.path.relative_to(root)))

    def staged() -> Iterator[Staging]:
        if workers <= 1 or len(items) <= READ_CHUNK_FILES:
            for item in items:
                staging = stage(item, window)[0]
                done(1, item)
                yield staging
        else:
            chunks = [items[i : i + READ_CHUNK_FILES] for i in range(0, len(items), READ_CHUNK_FILES)]
            with process_pool(min(workers, len(chunks))) as pool:
                try:
                    for chunk, partial in zip(chunks, pool.map(_stage_and_merge, chunks, [window] * len(chunks)),
                                              strict=True):
                        done(len(chunk), chunk[-1])
                        yield partial.staging
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)  # stop reading past the first bad file
                    raise
        if progress is not None:
            progress.phase(f"building the snapshot of {root}")

    return staging_to_snapshot(staged())


def load_snapshot_cached(
    root: Path, cache_dir: Path, progress: ReadProgress | None = None, workers: int = 1
) -> Snapshot:
    """:func:`snapshot_from_files`, pickled under ``cache_dir`` keyed by :func:`directory_digest`."""
    cache = cache_dir / f"snapshot-{directory_digest(root)}.pkl"
    if cache.exists():
        with cache.open("rb") as handle:
            return pickle.load(handle)
    snapshot = snapshot_from_files(root, progress=progress, workers=workers)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    with tmp.open("wb") as handle:
        pickle.dump(snapshot, handle, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(cache)
    return snapshot


def is_database(data: str) -> bool:
    return data == "neo4j" or data.startswith(("bolt://", "neo4j://", "bolt+s://", "neo4j+s://", "bolt+ssc://"))


def snapshot_from_database(data: str, settings: Neo4jSettings | None = None) -> Snapshot:
    """Export the whole graph from ``settings`` (default: the configured Neo4j); ``--data bolt://…`` overrides
    the URI."""
    import dataclasses

    from gnnsec.graphdb.export import export_snapshot
    from gnnsec.graphdb.session import open_driver, resolve_settings

    settings = settings or resolve_settings()
    if data != "neo4j" and hasattr(settings, "uri"):
        settings = dataclasses.replace(settings, uri=data)
    driver = open_driver(settings)
    try:
        return export_snapshot(driver, database=getattr(settings, "database", None))
    finally:
        driver.close()


def load_eval_data(
    data: str, labels: Path | None, cache_dir: Path, progress: ReadProgress | None = None,
    require_labels: bool = True, settings: Neo4jSettings | None = None, workers: int = 1,
) -> EvalData:
    """``--data DIR`` (files, labels default to ``DIR/labels/entities.csv``, staged in ``workers`` processes)
    or a database with ``--labels``."""
    if is_database(data):
        if labels is None:
            raise EvalDataError("--labels is required when --data is a database")
        snapshot = snapshot_from_database(data, settings)
        activity_path = labels.parent / "activity.csv"
    else:
        root = Path(data)
        if not root.is_dir():
            raise EvalDataError(f"{root}: not a directory (and not bolt://… or 'neo4j')")
        labels = labels or root / "labels" / "entities.csv"
        snapshot = load_snapshot_cached(root, cache_dir, progress, workers)
        activity_path = labels.parent / "activity.csv"
    entities = read_entity_labels(labels)
    known = set(snapshot.node_uid)
    entities = {uid: e for uid, e in entities.items() if uid in known}
    if not entities and require_labels:
        raise EvalDataError(f"{labels}: none of the labelled uids is a node of the graph")
    return EvalData(snapshot, entities, read_activity_labels(activity_path), source=data)
