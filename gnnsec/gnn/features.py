"""Snapshot → node feature matrix ``[N, width ≤ MAX_FDIM]``, schema-agnostic, with a spec saved in the checkpoint.

Why schema-agnostic: adapters add properties over time and every cloud names things differently, so
whatever properties a node carries become columns, by their *kind* (number, boolean, category, list,
time), never by a hand-written list. Behaviour comes from relationships, which is where attacks show.

Columns, in this order (most informative first, because anything beyond ``MAX_FDIM`` is truncated):

1. ``label:<L>`` one-hot over the 15 schema labels;
2. behaviour per relation type and direction: ``deg:<REL>:<out|in>`` = log1p(#edges) and
   ``cnt:<REL>:<out|in>`` = log1p(Σ event count); totals ``peers`` = log1p(#distinct neighbours),
   ``offhours`` = share of activity events (count-weighted) whose first/last seen hour is outside
   07:00–19:00 UTC or on a weekend, ``recency`` = log1p(days between the node's latest activity and the
   window end), ``new_peer_share`` = share of edges whose peer first appears in the last
   ``new_peer_fraction`` of the window, and hashed ``act:<out|in>#b`` = log1p(Σ count) per action bucket;
3. node properties, sorted by name: numbers ``num:<k>`` = sign(x)·log1p(|x|); booleans ``bool:<k>``
   = +1/−1 (0 when missing); times ``age:<k>`` = log1p(days before the window end); categorical strings
   ``cat:<k>#b`` one-hot into ``cat_buckets`` buckets by blake2b (stable across processes, unlike
   ``hash()``); lists of strings ``list:<k>#b`` multi-hot plus ``len:<k>``.

Continuous columns are robustly standardised with the training snapshot's median and IQR/1.349
(falling back to the standard deviation, then 1), then clipped to ±``clip``. Unseen categories land in
existing hash buckets, unseen properties are ignored, so the width never changes after fitting.
Score and label properties are never features (see :data:`EXCLUDED_PROPERTIES`), so labels cannot leak.
"""

from __future__ import annotations

import functools
import hashlib
import math
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from gnnsec.errors import InputError
from gnnsec.schema import NODE_LABELS, NUM_RELATIONS, RELATION_NAMES, RELATION_TYPES, RelationCategory
from gnnsec.snapshot import Snapshot
from gnnsec.times import parse_time

MAX_FDIM = 1024
"""Width of the model's input: properties beyond it are truncated, and columns short of it are zero padding
that is never materialised (:func:`build_features`)."""

EXCLUDED_PROPERTIES: frozenset[str] = frozenset(
    {
        "anomaly_score",
        "anomaly_rank",
        "anomalous",
        "scored_at",
        "model_id",
        "anomaly_reasons",
        "analyst_label",
        "analyst",
        "analyst_at",
        "analyst_note",
        "scoring_run",
        "uid",
        "name",
    }
)
"""Properties that are outputs, verdicts or identifiers: never features."""
EXCLUDED_PREFIXES: tuple[str, ...] = ("label_", "gt_")
TIME_PROPERTIES: frozenset[str] = frozenset({"first_seen", "last_seen"})
"""Always read as times (age before the window end), never hashed as raw strings."""

_DISTINCT_SAMPLE = 5000
_TIME_SUFFIXES = ("_at", "_time", "_ts", "_date")
SPEC_FORMAT_VERSION = 1
_DAY = 86400.0
_ACTIVITY_RELATIONS = np.array([r.category is not RelationCategory.INVENTORY for r in RELATION_TYPES], dtype=bool)


def is_excluded(key: str) -> bool:
    """True for score, verdict, identifier and ground-truth properties."""
    return key in EXCLUDED_PROPERTIES or key.startswith(EXCLUDED_PREFIXES)


@functools.lru_cache(maxsize=1 << 16)
def stable_bucket(key: str, value: str, buckets: int) -> int:
    """Bucket of ``key=value`` by blake2b: identical in every process and Python version. Cached: a graph
    repeats few values (API actions, instance types) over millions of relationships and nodes."""
    digest = hashlib.blake2b(f"{key}={value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % buckets


@dataclass(slots=True)
class FeatureSpec:
    """Everything needed to rebuild the same columns on new data; plain types so checkpoints load with
    ``weights_only=True``."""

    columns: list[str]
    property_kinds: dict[str, str]  # property → num | bool | time | cat | list
    center: list[float]  # per column; 0 for columns that are not standardised
    scale: list[float]  # per column; 1 for columns that are not standardised
    continuous: list[bool]
    dropped_properties: list[str] = field(default_factory=list)  # identifier-like strings
    cat_buckets: int = 8
    list_buckets: int = 16
    action_buckets: int = 16
    new_peer_fraction: float = 0.2
    clip: float = 10.0
    max_fdim: int = MAX_FDIM
    format_version: int = SPEC_FORMAT_VERSION

    @property
    def width(self) -> int:
        """Number of real (non-padding) columns: ``min(len(columns), max_fdim)``."""
        return min(len(self.columns), self.max_fdim)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        if data.get("format_version") != SPEC_FORMAT_VERSION:
            raise InputError(
                f"feature spec format {data.get('format_version')!r} is not {SPEC_FORMAT_VERSION}; retrain the model"
            )
        return cls(**data)


# ---- property typing ---------------------------------------------------------------------------


def _as_epoch(value: Any) -> float | None:
    """Epoch seconds of a datetime-like value (datetime, neo4j DateTime, ISO string), else None."""
    if hasattr(value, "to_native"):  # neo4j.time.DateTime without importing the driver
        value = value.to_native()
    if isinstance(value, datetime):
        return parse_time(value).timestamp()
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and value[:4].isdigit():
        try:
            return parse_time(value).timestamp()
        except ValueError:
            return None
    return None


def _kind_of(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if key in TIME_PROPERTIES or _as_epoch(value) is not None:
        return "time"
    if isinstance(value, int | float) and key.endswith(_TIME_SUFFIXES) and value > 1e9:
        return "time"  # epoch seconds or milliseconds
    if isinstance(value, int | float):
        return "num"
    if isinstance(value, str):
        return "cat"
    if isinstance(value, list | tuple):
        return "list"
    return None


def _infer_kinds(props: list[dict[str, Any]], max_distinct: int) -> tuple[dict[str, str], list[str]]:
    """Majority kind per property; strings with too many distinct values are identifiers and dropped."""
    kinds: dict[str, Counter[str]] = {}
    distinct: dict[str, set[str]] = {}
    occurrences: Counter[str] = Counter()
    sampled: Counter[str] = Counter()
    for p in props:
        for key, value in p.items():
            if is_excluded(key):
                continue
            kind = _kind_of(key, value)
            if kind is None:
                continue
            kinds.setdefault(key, Counter())[kind] += 1
            occurrences[key] += 1
            if kind == "cat":
                seen = distinct.setdefault(key, set())
                if sampled[key] < _DISTINCT_SAMPLE:  # the distinct ratio is judged on a bounded sample
                    sampled[key] += 1
                    seen.add(value)
    chosen: dict[str, str] = {}
    dropped: list[str] = []
    for key, counter in kinds.items():
        kind = counter.most_common(1)[0][0]
        n_distinct = len(distinct.get(key, ()))
        if kind == "cat" and n_distinct > max_distinct and n_distinct > 0.5 * sampled[key]:
            dropped.append(key)
            continue
        chosen[key] = kind
    return dict(sorted(chosen.items())), sorted(dropped)


# ---- column layout -----------------------------------------------------------------------------


def _fixed_columns(action_buckets: int) -> list[tuple[str, bool]]:
    """(name, continuous) of the label and behaviour columns, which every spec starts with."""
    cols: list[tuple[str, bool]] = [(f"label:{label}", False) for label in NODE_LABELS]
    for name in RELATION_NAMES:
        for direction in ("out", "in"):
            cols.append((f"deg:{name}:{direction}", True))
            cols.append((f"cnt:{name}:{direction}", True))
    cols += [("peers", True), ("offhours", False), ("recency", True), ("new_peer_share", False)]
    for direction in ("out", "in"):
        cols += [(f"act:{direction}#{b}", True) for b in range(action_buckets)]
    return cols


def _property_columns(kinds: dict[str, str], cat_buckets: int, list_buckets: int) -> list[tuple[str, bool]]:
    cols: list[tuple[str, bool]] = []
    for key, kind in kinds.items():
        if kind == "num":
            cols.append((f"num:{key}", True))
        elif kind == "bool":
            cols.append((f"bool:{key}", False))
        elif kind == "time":
            cols.append((f"age:{key}", True))
        elif kind == "cat":
            cols += [(f"cat:{key}#{b}", False) for b in range(cat_buckets)]
        elif kind == "list":
            cols += [(f"list:{key}#{b}", False) for b in range(list_buckets)]
            cols.append((f"len:{key}", True))
    return cols


# ---- raw (unscaled) matrix ---------------------------------------------------------------------


def window_bounds(snapshot: Snapshot) -> tuple[float, float]:
    """(start, end) of the snapshot window; from edge times when the exporter did not set them."""
    first = snapshot.edge_first_seen[np.isfinite(snapshot.edge_first_seen)]
    last = snapshot.edge_last_seen[np.isfinite(snapshot.edge_last_seen)]
    end = snapshot.window_end
    if end is None:
        end = float(last.max()) if last.size else (float(first.max()) if first.size else 0.0)
    start = snapshot.window_start
    if start is None:
        start = float(first.min()) if first.size else end
    return float(start), float(end)


def _off_hours(epochs: np.ndarray) -> np.ndarray:
    """1 where the UTC time is before 07:00, from 19:00, or on a weekend; NaN stays NaN."""
    hours = np.floor((epochs % _DAY) / 3600.0)
    weekday = (np.floor(epochs / _DAY) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    off = ((hours < 7) | (hours >= 19) | (weekday >= 5)).astype(np.float64)
    off[~np.isfinite(epochs)] = np.nan
    return off


def _behaviour(snapshot: Snapshot, action_buckets: int, new_peer_fraction: float, out: np.ndarray) -> None:
    """Fill ``out`` (``[N, 4·R + 4 + 2·B]``, zeros) with the behaviour block, computed from the relationships,
    vectorised. Written column group by column group: the whole block as float64 temporaries (per relation
    and direction, its log, the concatenation) took 2 GB beside a million-node matrix."""
    n, r = snapshot.num_nodes, NUM_RELATIONS
    src, dst = snapshot.edge_index[0].astype(np.int64), snapshot.edge_index[1].astype(np.int64)
    etype = snapshot.edge_type.astype(np.int64)
    count = np.nan_to_num(snapshot.edge_count.astype(np.float64), nan=1.0)
    # column 4·relation + 2·direction (out, in) + (degree, count)
    for d, node in enumerate((src, dst)):
        flat = node * r + etype
        out[:, 2 * d : 4 * r : 4] = np.log1p(np.bincount(flat, minlength=n * r).reshape(n, r))
        out[:, 2 * d + 1 : 4 * r : 4] = np.log1p(np.bincount(flat, weights=count, minlength=n * r).reshape(n, r))
        del flat

    both = np.concatenate([src, dst])
    peer = np.concatenate([dst, src])
    pairs = np.unique(both * max(n, 1) + peer) if both.size else np.zeros(0, dtype=np.int64)
    peers = np.bincount(pairs // max(n, 1), minlength=n).astype(np.float64)

    activity = _ACTIVITY_RELATIONS[etype] if etype.size else np.zeros(0, dtype=bool)
    off_first = _off_hours(snapshot.edge_first_seen.astype(np.float64))
    off_last = _off_hours(snapshot.edge_last_seen.astype(np.float64))
    if etype.size:
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # inventory edges have no times: NaN is expected
            off_edge = np.nanmean(np.stack([off_first, off_last]), axis=0)
    else:
        off_edge = np.zeros(0)
    known = activity & np.isfinite(off_edge)
    w = np.where(known, count, 0.0)
    off_w = np.where(known, np.nan_to_num(off_edge) * count, 0.0)
    tot = np.bincount(src, weights=w, minlength=n) + np.bincount(dst, weights=w, minlength=n)
    off = np.bincount(src, weights=off_w, minlength=n) + np.bincount(dst, weights=off_w, minlength=n)
    offhours = np.divide(off, tot, out=np.zeros(n), where=tot > 0)

    start, end = window_bounds(snapshot)
    last = np.where(np.isfinite(snapshot.edge_last_seen), snapshot.edge_last_seen, -np.inf)
    latest = np.full(n, -np.inf)
    if etype.size:
        np.maximum.at(latest, src, last)
        np.maximum.at(latest, dst, last)
    recency = np.where(np.isfinite(latest), np.log1p(np.clip(end - latest, 0, None) / _DAY), 0.0)

    first = np.where(np.isfinite(snapshot.edge_first_seen), snapshot.edge_first_seen, np.inf)
    node_first = np.full(n, np.inf)
    if etype.size:
        np.minimum.at(node_first, src, first)
        np.minimum.at(node_first, dst, first)
    cutoff = end - new_peer_fraction * max(end - start, 0.0)
    is_new = np.isfinite(node_first) & (node_first >= cutoff) & (end > start)
    new_src_side = is_new[dst].astype(np.float64)  # for the source, the peer is dst
    new_dst_side = is_new[src].astype(np.float64)
    degree = np.bincount(both, minlength=n).astype(np.float64)
    new_count = np.bincount(src, weights=new_src_side, minlength=n) + np.bincount(
        dst, weights=new_dst_side, minlength=n
    )
    new_share = np.divide(new_count, degree, out=np.zeros(n), where=degree > 0)
    for j, column in enumerate((np.log1p(peers), offhours, recency, new_share)):
        out[:, 4 * r + j] = column

    # Each distinct action list once (exports share one list object per distinct list): how often it holds
    # each bucket. A bucket's column is then Σ count·multiplicity over the node's edges, integers summed
    # exactly as adding the count once per action did, without a Python int per (edge, action).
    code_of: dict[int, int] = {}
    lists: dict[tuple[str, ...], int] = {}
    multiplicity: list[np.ndarray] = []

    def code(actions: list[str]) -> int:
        found = code_of.get(id(actions))
        if found is None:
            key = tuple(str(a) for a in actions or ())
            found = lists.get(key)
            if found is None:
                found = lists[key] = len(multiplicity)
                row = np.zeros(action_buckets)
                for action in key:
                    row[stable_bucket("action", action, action_buckets)] += 1.0
                multiplicity.append(row)
            code_of[id(actions)] = found
        return found

    codes = np.fromiter((code(a) for a in snapshot.edge_actions), dtype=np.int64, count=len(snapshot.edge_actions))
    table = np.stack(multiplicity) if multiplicity else np.zeros((0, action_buckets))
    base = 4 * r + 4
    for b in np.flatnonzero(table.any(axis=0)).tolist():
        weights = count * table[codes, b]
        for d, node in enumerate((src, dst)):
            out[:, base + d * action_buckets + b] = np.log1p(np.bincount(node, weights=weights, minlength=n))


def _properties(snapshot: Snapshot, spec: FeatureSpec, end: float, out: np.ndarray) -> None:
    """Fill ``out`` (zeros) with the property block, in ``spec.columns`` order after the fixed columns
    (unscaled)."""
    offsets: dict[str, int] = {}
    fixed = len(_fixed_columns(spec.action_buckets))
    for j, name in enumerate(spec.columns[fixed:]):
        key = name.split(":", 1)[1].rsplit("#", 1)[0] if "#" in name else name.split(":", 1)[1]
        offsets.setdefault(f"{name.split(':', 1)[0]}:{key}", j)
    for i, props in enumerate(snapshot.node_props):
        for key, value in props.items():
            kind = spec.property_kinds.get(key)
            if kind is None or value is None:
                continue
            if kind == "num" and isinstance(value, int | float) and not isinstance(value, bool):
                x = float(value)
                if math.isfinite(x):
                    out[i, offsets[f"num:{key}"]] = math.copysign(math.log1p(abs(x)), x)
            elif kind == "bool" and isinstance(value, bool):
                out[i, offsets[f"bool:{key}"]] = 1.0 if value else -1.0
            elif kind == "time":
                epoch = _as_epoch(value)
                if epoch is None and isinstance(value, int | float) and not isinstance(value, bool):
                    epoch = float(value) / 1000 if value > 1e11 else float(value)
                if epoch is not None:
                    out[i, offsets[f"age:{key}"]] = math.log1p(max(end - epoch, 0.0) / _DAY)
            elif kind == "cat" and isinstance(value, str | int | float):
                out[i, offsets[f"cat:{key}"] + stable_bucket(key, str(value), spec.cat_buckets)] = 1.0
            elif kind == "list" and isinstance(value, list | tuple):
                base = offsets[f"list:{key}"]
                for item in value:
                    out[i, base + stable_bucket(key, str(item), spec.list_buckets)] = 1.0
                out[i, base + spec.list_buckets] = math.log1p(len(value))


def _raw_matrix(snapshot: Snapshot, spec: FeatureSpec, dtype: type[np.floating[Any]] = np.float64) -> np.ndarray:
    """Unscaled columns, filled block by block into one ``dtype`` matrix (float32 when scoring: a
    million nodes by 610 columns were 4.9 GB in float64, and as many again for each temporary)."""
    n = snapshot.num_nodes
    out = np.zeros((n, len(spec.columns)), dtype=dtype)
    out[np.arange(n), snapshot.node_label.astype(np.int64)] = 1.0
    fixed = len(_fixed_columns(spec.action_buckets))
    _behaviour(snapshot, spec.action_buckets, spec.new_peer_fraction, out[:, len(NODE_LABELS) : fixed])
    _, end = window_bounds(snapshot)
    _properties(snapshot, spec, end, out[:, fixed:])
    return out


# ---- public API --------------------------------------------------------------------------------


def fit_feature_spec(
    snapshot: Snapshot,
    *,
    cat_buckets: int = 8,
    list_buckets: int = 16,
    action_buckets: int = 16,
    new_peer_fraction: float = 0.2,
    max_distinct: int = 50,
    clip: float = 10.0,
    max_fdim: int = MAX_FDIM,
) -> FeatureSpec:
    """Decide the columns and the scaling from the training snapshot."""
    kinds, dropped = _infer_kinds(snapshot.node_props, max_distinct)
    layout = _fixed_columns(action_buckets) + _property_columns(kinds, cat_buckets, list_buckets)
    columns = [name for name, _ in layout]
    continuous = [c for _, c in layout]
    spec = FeatureSpec(
        columns=columns,
        property_kinds=kinds,
        center=[0.0] * len(columns),
        scale=[1.0] * len(columns),
        continuous=continuous,
        dropped_properties=dropped,
        cat_buckets=cat_buckets,
        list_buckets=list_buckets,
        action_buckets=action_buckets,
        new_peer_fraction=new_peer_fraction,
        clip=clip,
        max_fdim=max_fdim,
    )
    raw = _raw_matrix(snapshot, spec)
    if raw.shape[0]:
        q25, median, q75 = np.percentile(raw, [25, 50, 75], axis=0)
        std = raw.std(axis=0)
    else:
        q25 = median = q75 = std = np.zeros(len(columns))
    for j, is_cont in enumerate(continuous):
        if not is_cont:
            continue
        scale = (q75[j] - q25[j]) / 1.349
        if scale < 1e-6:
            scale = std[j] if std[j] >= 1e-6 else 1.0
        spec.center[j], spec.scale[j] = float(median[j]), float(scale)
    return spec


_SCALE_ROWS = 1 << 16


def build_features(snapshot: Snapshot, spec: FeatureSpec) -> np.ndarray:
    """The ``[N, spec.width]`` float32 matrix of ``snapshot`` with exactly the spec's columns.

    The model's input is ``spec.max_fdim`` wide, but the columns past ``spec.width`` are always 0, so they
    are never materialised: the input projection and the feature decoder read and write only the real
    columns. Padded, a million-node snapshot took 4 GiB here, and each masked copy of it 4 GiB more.
    """
    width = spec.width
    raw = _raw_matrix(snapshot, spec, np.float32)
    x = raw if raw.shape[1] == width else np.ascontiguousarray(raw[:, :width])
    del raw
    center = np.asarray(spec.center[:width], dtype=np.float64)
    scale = np.asarray(spec.scale[:width], dtype=np.float64)
    for start in range(0, x.shape[0], _SCALE_ROWS):  # in place, a slice at a time: no full-size temporary
        rows = x[start : start + _SCALE_ROWS]
        rows[:] = np.clip((rows - center) / scale, -spec.clip, spec.clip)
    return x


# ---- columns in words -----------------------------------------------------------------------------

_FIXED_WORDS = {"peers": "number of distinct neighbours", "offhours": "share of its activity off hours",
                "recency": "days since its last activity", "new_peer_share": "share of relationships with new peers"}


def describe_feature(name: str, snapshot: Snapshot, node: int, spec: FeatureSpec, z: float = 0.0) -> str:
    """A column of :func:`build_features` in words, for the node it explains: hashed buckets are named by the
    node's own values that fall into them (``cat:endpoint#2`` → ``endpoint = 'db.internal'``), so an analyst
    never reads a bucket number. ``z`` (signed distance from peers) says whether the node has the bucket's
    value or lacks what its peers have."""
    kind, _, rest = name.partition(":")
    if name in _FIXED_WORDS:
        return _FIXED_WORDS[name]
    if kind == "label":
        return f"is a {rest}"
    if kind in ("deg", "cnt"):
        relation, _, direction = rest.partition(":")
        what = "relationships" if kind == "deg" else "events"
        return f"{relation} {what} ({'outgoing' if direction == 'out' else 'incoming'})"
    key, _, bucket_text = rest.rpartition("#") if "#" in rest else (rest, "", "")
    props = snapshot.node_props[node] if 0 <= node < len(snapshot.node_props) else {}
    if kind == "act":
        direction, bucket = key, int(bucket_text)
        end = 0 if direction == "out" else 1
        mine = sorted({str(a) for e in np.flatnonzero(snapshot.edge_index[end] == node).tolist()
                       for a in (snapshot.edge_actions[e] or ())
                       if stable_bucket("action", str(a), spec.action_buckets) == bucket})
        side = "outgoing" if direction == "out" else "incoming"
        if mine and z >= 0:
            return f"{side} API actions {', '.join(mine[:3])}{' …' if len(mine) > 3 else ''}"
        return f"fewer {side} API actions of a kind its peers use"
    value = props.get(key)
    if kind in ("num", "bool"):
        return f"{key} = {value}" if value is not None else f"no {key}"
    if kind == "age":
        return f"age of {key} ({value})" if value is not None else f"no {key}"
    if kind == "len":
        return f"number of {key} ({len(value)})" if isinstance(value, list | tuple) else f"no {key}"
    if kind == "cat":
        bucket = int(bucket_text)
        if value is not None and stable_bucket(key, str(value), spec.cat_buckets) == bucket and z >= 0:
            return f"{key} = {str(value)!r}"
        return f"{key} = {str(value)!r}, not what most peers have" if value is not None else f"no {key}"
    if kind == "list":
        bucket = int(bucket_text)
        items = [str(v) for v in value] if isinstance(value, list | tuple) else []
        hit = [v for v in items if stable_bucket(key, v, spec.list_buckets) == bucket]
        if hit and z >= 0:
            return f"{key} includes {', '.join(repr(v) for v in hit[:3])}"
        return f"{key} lacks an item most peers have"
    return name
