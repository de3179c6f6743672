r"""History features: each (entity, window) measured against that entity's own past.

What gives a cloud intrusion away is rarely a window on its own: it is an edge that never existed
before, a relation type new to that principal, an address or region it never used, a dormant identity
waking up, volume far beyond its habit (``docs/campaigns.md``). These columns say exactly that, for
every entity active in a window, computed from the graph's aggregated activity relationships (one per
(source, type, target, day)), never from raw logs.

Causality: the features of window :math:`w` use only activity in windows :math:`w' < w`. So the same
pass that scores a new day also scores every past day *as if it were new*, which is what the detector
calibrates on (``gnn.window_detect``); the window itself is never part of its own history.

Columns (all oriented so that larger is more unusual, all 0 for an entity doing exactly what it did):

========================  ===================================================================================
``new_edges``             log1p(#outgoing relationships (type, peer) never seen before)
``new_edge_share``        their share of the window's outgoing relationships
``new_relation_types``    #relation types the entity never had before (outgoing)
``new_actions``           log1p(#API actions never used before by the entity)
``young_event_share``     share of the window's outgoing events on relationships first made in the previous
                          ``YOUNG_WINDOWS`` windows (after the entity's first): yesterday's novelty carrying the volume
``new_action_share``      their share of the window's distinct actions
``new_source_ips``        #AUTHENTICATES_FROM addresses never used before
``new_roles_assumed``     #ASSUMES_ROLE targets never assumed before
``new_regions``           #regions of peers never touched before (peer ``region`` property)
``new_accounts``          #accounts of peers never touched before (peer ``account`` property)
``dormancy``              days since the entity last acted, as a share of the days since it first acted
                          (comparable across history lengths); 0 when it does not act or acts for the first time
``volume_z``              max over relation types of the robust z of log1p(events) against its own past windows
``volume_ratio``          log((events + 1) / (median past events + 1)), floored at 0
``peer_rarity``           max over new relationships of 1 / (1 + #same-label entities that ever had it)
``action_rarity``         max over new actions of 1 / (1 + #same-label entities that ever used it)
``type_rarity``           max over new relation types of 1 − share of same-label entities that ever had it
``hour_novelty``          share of the window's activity hours at which the entity was (almost) never active
``place_rarity``          1 / (1 + #entities active earlier in the entity's own region), 0 without a region
``new_in_edges``          log1p(#incoming relationships never seen before: new accessors of a resource)
``new_in_share``          their share of the window's incoming relationships
``in_volume_z``           as ``volume_z`` for incoming events
========================  ===================================================================================

Context columns (not anomalies by themselves; they stratify the reference): ``history_windows``
(#earlier active windows), ``edges``, ``events``, ``acted_windows`` (#earlier windows in which the entity
acted, i.e. had outgoing activity) and ``acts`` (1 when it acts in this window).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gnnsec.schema import NODE_LABELS, relation_id
from gnnsec.snapshot import Snapshot

WINDOW_SECONDS = 86400.0
ANOMALY_COLUMNS: tuple[str, ...] = (
    "new_edges",
    "new_edge_share",
    "young_event_share",
    "new_relation_types",
    "new_actions",
    "new_action_share",
    "new_source_ips",
    "new_roles_assumed",
    "new_regions",
    "new_accounts",
    "dormancy",
    "volume_z",
    "volume_ratio",
    "peer_rarity",
    "action_rarity",
    "type_rarity",
    "hour_novelty",
    "place_rarity",
    "new_in_edges",
    "new_in_share",
    "in_volume_z",
)
GNN_COLUMN = "implausible_edge"
"""With a trained model: max over the pair's new outgoing relationships of DistMult's 1 − σ(f(s, r, o))."""
CONTEXT_COLUMNS: tuple[str, ...] = ("history_windows", "edges", "events", "acted_windows", "acts")
EDGE_COLUMNS: tuple[str, ...] = ("new", "peer_rarity", "type_new", "type_rarity")
"""Per window relationship: never seen before; 1/(1 + #same-label sources that ever had it); first of its
type for the source; 1 − share of same-label sources that ever had its type."""

RARE_HOUR_SHARE = 0.02
"""An hour holding under 2 % of an entity's past activity counts as unusual for it."""
MIN_HOUR_SAMPLES = 10
"""Below this many past activity-hour samples an entity has no habit to deviate from."""
YOUNG_WINDOWS = 1
"""A relationship first made at most this many windows ago is still young. On the development estates (small seeds
8, 9, 10 and medium seed 9), mean AP over User, Role and VM: 0.713 without the column, 0.754 with 1, 0.740 with 2,
0.744 with 3. It catches the day after a first bulk access, when nothing is new any more but the volume still
goes where it never went before yesterday (the habit then has yesterday in it)."""
_AUTH = relation_id("AUTHENTICATES_FROM")
_ASSUME = relation_id("ASSUMES_ROLE")


@dataclass(slots=True)
class WindowFeatures:
    """Rows are (entity, window) pairs; edges are the scored windows' activity relationships."""

    node: np.ndarray  # int64 [P]: node index in the snapshot
    window: np.ndarray  # float64 [P]: window start, epoch seconds
    label: np.ndarray  # int64 [P]: schema label id
    x: np.ndarray  # float64 [P, len(ANOMALY_COLUMNS)]
    context: np.ndarray  # float64 [P, len(CONTEXT_COLUMNS)]
    edge: np.ndarray  # int64 [Ew]: edge index in the snapshot
    edge_window: np.ndarray  # float64 [Ew]
    edge_x: np.ndarray  # float64 [Ew, len(EDGE_COLUMNS)]
    edge_peer_count: np.ndarray  # int64 [Ew]: same-label sources that had this relationship before
    pair_of_edge: np.ndarray  # int64 [Ew]: row of the source's (entity, window) pair
    origin: float = math.nan  # start of the first window of the history: before it nothing was observed
    columns: tuple[str, ...] = ANOMALY_COLUMNS  # names of ``x``'s columns (ANOMALY_COLUMNS [+ GNN_COLUMN])
    habit: np.ndarray | None = None  # float64 [P, F]: see :func:`own_habit`

    @property
    def num_pairs(self) -> int:
        return int(self.node.size)

    def column(self, name: str) -> np.ndarray:
        if name in self.columns:
            return self.x[:, self.columns.index(name)]
        return self.context[:, CONTEXT_COLUMNS.index(name)]

    def select(self, rows: np.ndarray) -> WindowFeatures:
        """The pairs ``rows`` and the edges whose source pair is among them (pair indices remapped)."""
        rows = np.asarray(rows, dtype=np.int64)
        remap = np.full(self.num_pairs, -1, dtype=np.int64)
        remap[rows] = np.arange(rows.size)
        keep = remap[self.pair_of_edge] >= 0 if self.pair_of_edge.size else np.zeros(0, dtype=bool)
        return WindowFeatures(
            self.node[rows], self.window[rows], self.label[rows], self.x[rows], self.context[rows],
            self.edge[keep], self.edge_window[keep], self.edge_x[keep], self.edge_peer_count[keep],
            remap[self.pair_of_edge[keep]], self.origin, self.columns,
            None if self.habit is None else self.habit[rows],
        )

    def warmed_up(self, windows: int = 1) -> np.ndarray:
        """Bool [P]: the pair lies at least ``windows`` windows after the start of the observed history.
        In the first window everything looks new because nothing earlier was observed, not because it is."""
        return self.window >= self.origin + windows * WINDOW_SECONDS


def edge_windows(snapshot: Snapshot) -> np.ndarray:
    """Window start of every relationship as epoch seconds (NaN for inventory)."""
    from datetime import datetime

    cache: dict[str, float] = {}
    out = np.full(snapshot.num_edges, math.nan)
    for i, window in enumerate(snapshot.edge_window):
        if window is None:
            continue
        value = cache.get(window)
        if value is None:
            value = cache[window] = datetime.fromisoformat(window[:19] + "+00:00").timestamp()
        out[i] = value
    return out


def _first_of(keys: np.ndarray, k: np.ndarray) -> np.ndarray:
    """For each row, the smallest ``k`` among rows with the same key."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    first = np.full(uniq.size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, inverse, k)
    return first[inverse]


def _count_before(group: np.ndarray, first: np.ndarray, query_group: np.ndarray, query_k: np.ndarray,
                  span: int) -> np.ndarray:
    """#members of ``query_group`` whose ``first`` is < ``query_k`` (members given once each)."""
    combined = np.sort(group * span + first)
    hi = np.searchsorted(combined, query_group * span + query_k, side="left")
    lo = np.searchsorted(combined, query_group * span, side="left")
    return hi - lo


def _per_pair_max(pair: np.ndarray, values: np.ndarray, num_pairs: int) -> np.ndarray:
    out = np.zeros(num_pairs)
    if pair.size:
        np.maximum.at(out, pair, values)
    return out


def _per_pair_sum(pair: np.ndarray, values: np.ndarray, num_pairs: int) -> np.ndarray:
    return np.bincount(pair, weights=values, minlength=num_pairs).astype(np.float64) if pair.size else np.zeros(
        num_pairs)


def _distinct_count(pair: np.ndarray, item: np.ndarray, num_pairs: int, mask: np.ndarray | None = None) -> np.ndarray:
    """#distinct ``item`` per pair (over rows where ``mask``)."""
    if mask is not None:
        pair, item = pair[mask], item[mask]
    if pair.size == 0:
        return np.zeros(num_pairs)
    span = int(item.max()) + 1
    uniq = np.unique(pair.astype(np.int64) * span + item)
    return np.bincount(uniq // span, minlength=num_pairs).astype(np.float64)


def _volume_z(entity: np.ndarray, rel: np.ndarray, k: np.ndarray, events: np.ndarray, pair: np.ndarray,
              num_pairs: int, num_days: int) -> np.ndarray:
    r"""max over relation types of :math:`(\log(1+c) - \mathrm{med}) / (1.4826\,\mathrm{MAD} + 0.5)` against the
    entity's earlier active windows of that type (0 with fewer than two of them), floored at 0."""
    import pandas as pd

    frame = pd.DataFrame({"e": entity, "r": rel, "k": k, "v": np.log1p(events), "p": pair})
    frame = frame.groupby(["e", "r", "k"], sort=False).agg(v=("v", "first"), p=("p", "first")).reset_index()
    z = np.zeros(len(frame))
    kk = frame["k"].to_numpy()
    for day in range(1, num_days):
        past = frame[kk < day]
        now = np.flatnonzero(kk == day)
        if past.empty or now.size == 0:
            continue
        stats = past.groupby(["e", "r"])["v"].agg(["median", "count"])
        mad = past.join(stats["median"], on=["e", "r"]).eval("abs(v - median)").groupby(
            [past["e"], past["r"]]).median()
        stats["mad"] = mad
        current = frame.iloc[now].join(stats, on=["e", "r"])
        ok = (current["count"] >= 2).to_numpy()
        value = (current["v"] - current["median"]) / (1.4826 * current["mad"] + 0.5)
        z[now] = np.where(ok, np.nan_to_num(value.to_numpy()), 0.0)
    return _per_pair_max(frame["p"].to_numpy(), np.clip(z, 0.0, None), num_pairs)


def history_features(snapshot: Snapshot, windows: Sequence[float] | None = None,
                     edge_implausibility: np.ndarray | None = None) -> WindowFeatures:
    """Features of every (entity, window) pair with activity in ``windows`` (default: every window).

    ``snapshot`` must hold the history too (everything before the windows to score); only activity in
    earlier windows informs each pair, so scoring several windows at once equals scoring them one by one.
    ``edge_implausibility`` ([E], from a trained DistMult) adds :data:`GNN_COLUMN` to the pairs and a last
    column to the relationships.
    """
    when = edge_windows(snapshot)
    act = np.flatnonzero(np.isfinite(when))
    empty = WindowFeatures(
        np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros((0, len(ANOMALY_COLUMNS))),
        np.zeros((0, len(CONTEXT_COLUMNS))), np.zeros(0, np.int64), np.zeros(0), np.zeros((0, len(EDGE_COLUMNS))),
        np.zeros(0, np.int64), np.zeros(0, np.int64),
    )
    if act.size == 0:
        return empty
    src, dst = snapshot.edge_index[0, act], snapshot.edge_index[1, act]
    rel = snapshot.edge_type[act]
    events = snapshot.edge_count[act]
    origin = float(when[act].min())
    k = np.floor((when[act] - origin) / WINDOW_SECONDS).astype(np.int64)
    num_days = int(k.max()) + 1
    span = num_days + 1
    n = snapshot.num_nodes
    label = snapshot.node_label

    # (entity, window) pairs: every node at either end of a window's activity.
    ends = np.concatenate([src, dst])
    ends_k = np.concatenate([k, k])
    pair_keys, pair_inverse = np.unique(ends * span + ends_k, return_inverse=True)
    pair_node, pair_k = pair_keys // span, pair_keys % span
    num_pairs = pair_keys.size
    out_pair, in_pair = pair_inverse[: act.size], pair_inverse[act.size :]

    cols: dict[str, np.ndarray] = {}
    # Relationship novelty: a (source, type, target) key first seen in this window.
    rel_key = (src * 64 + rel) * n + dst
    first_rel = _first_of(rel_key, k)
    new = first_rel == k
    out_edges = np.bincount(out_pair, minlength=num_pairs).astype(np.float64)
    new_out = _per_pair_sum(out_pair, new.astype(np.float64), num_pairs)
    cols["new_edges"] = np.log1p(new_out)
    cols["new_edge_share"] = np.divide(new_out, out_edges, out=np.zeros(num_pairs), where=out_edges > 0)
    in_edges = np.bincount(in_pair, minlength=num_pairs).astype(np.float64)
    new_in = _per_pair_sum(in_pair, new.astype(np.float64), num_pairs)
    cols["new_in_edges"] = np.log1p(new_in)
    cols["new_in_share"] = np.divide(new_in, in_edges, out=np.zeros(num_pairs), where=in_edges > 0)
    # Young relationships: first made in the last YOUNG_WINDOWS windows, after the entity's own first window
    # (in which everything is new by construction).
    first_src = _first_of(src, k)
    age = k - first_rel
    young = (age >= 1) & (age <= YOUNG_WINDOWS) & (first_rel > first_src)
    young_events = _per_pair_sum(out_pair, np.where(young, events, 0).astype(np.float64), num_pairs)
    out_events = _per_pair_sum(out_pair, events, num_pairs)  # also the volume columns' denominator below
    cols["young_event_share"] = np.divide(young_events, out_events, out=np.zeros(num_pairs), where=out_events > 0)
    cols["new_source_ips"] = _per_pair_sum(out_pair, (new & (rel == _AUTH)).astype(np.float64), num_pairs)
    cols["new_roles_assumed"] = _per_pair_sum(out_pair, (new & (rel == _ASSUME)).astype(np.float64), num_pairs)

    # Peer rarity: how many same-label sources had this (type, target) before this window.
    key_rows = np.unique(rel_key, return_index=True)[1]
    group = (label[src] * 64 + rel) * n + dst
    peer_count = _count_before(group[key_rows], first_rel[key_rows], group, k, span)
    rarity = 1.0 / (1.0 + peer_count)
    cols["peer_rarity"] = _per_pair_max(out_pair[new], rarity[new], num_pairs)

    # Relation types new to the entity, and how rare the type is among its label.
    type_key = src * 64 + rel
    first_type = _first_of(type_key, k)
    type_new = first_type == k
    type_rows = np.unique(type_key, return_index=True)[1]
    type_group = label[src] * 64 + rel
    had_type = _count_before(type_group[type_rows], first_type[type_rows], type_group, k, span)
    # Same-label entities active (as sources) before the window: the denominator of the share.
    src_rows = np.unique(src, return_index=True)[1]
    active_before = _count_before(label[src][src_rows], first_src[src_rows], label[src], k, span)
    type_rarity = np.where(active_before > 0, 1.0 - had_type / np.maximum(active_before, 1), 0.0)
    cols["new_relation_types"] = _distinct_count(out_pair, rel, num_pairs, mask=type_new)
    cols["type_rarity"] = _per_pair_max(out_pair[type_new], type_rarity[type_new], num_pairs)

    # Actions (API names): new to the entity, and rare among its label.
    a_rows: list[int] = []
    a_ids: list[int] = []
    vocabulary: dict[str, int] = {}
    for row, e in enumerate(act.tolist()):
        for action in snapshot.edge_actions[e]:
            a_rows.append(row)
            a_ids.append(vocabulary.setdefault(action, len(vocabulary)))
    if a_rows:
        ar = np.asarray(a_rows, dtype=np.int64)
        aid = np.asarray(a_ids, dtype=np.int64)
        a_entity, a_k, a_pair = src[ar], k[ar], out_pair[ar]
        a_key = a_entity * (len(vocabulary) + 1) + aid
        first_action = _first_of(a_key, a_k)
        a_new = first_action == a_k
        distinct = _distinct_count(a_pair, aid, num_pairs)
        new_actions = _distinct_count(a_pair, aid, num_pairs, mask=a_new)
        cols["new_actions"] = np.log1p(new_actions)
        cols["new_action_share"] = np.divide(new_actions, distinct, out=np.zeros(num_pairs), where=distinct > 0)
        uniq_rows = np.unique(a_key, return_index=True)[1]
        a_group = label[a_entity] * (len(vocabulary) + 1) + aid
        users = _count_before(a_group[uniq_rows], first_action[uniq_rows], a_group, a_k, span)
        cols["action_rarity"] = _per_pair_max(a_pair[a_new], 1.0 / (1.0 + users[a_new]), num_pairs)
    else:
        for name in ("new_actions", "new_action_share", "action_rarity"):
            cols[name] = np.zeros(num_pairs)

    # Regions and accounts of the peers reached.
    for prop, name in (("region", "new_regions"), ("account", "new_accounts")):
        values: dict[str, int] = {}
        peer_value = np.asarray([values.setdefault(str(p[prop]), len(values)) if p.get(prop) else -1
                                 for p in snapshot.node_props], dtype=np.int64)
        pv = peer_value[dst]
        has = pv >= 0
        key = src[has] * (len(values) + 1) + pv[has]
        first_value = _first_of(key, k[has])
        fresh = first_value == k[has]
        cols[name] = _distinct_count(out_pair[has], pv[has], num_pairs, mask=fresh)
        if prop == "region":
            # How many nodes were active in the entity's own region before: an unused region has none.
            own = peer_value[pair_node]
            placed = own >= 0
            first_here = _first_of(pair_node[placed], pair_k[placed])
            uniq = np.unique(pair_node[placed], return_index=True)[1]
            before = _count_before(own[placed][uniq], first_here[uniq], own[placed], pair_k[placed], span)
            cols["place_rarity"] = np.zeros(num_pairs)
            cols["place_rarity"][placed] = 1.0 / (1.0 + before)

    # Dormancy and history length (either direction counts as activity).
    order = np.lexsort((pair_k, pair_node))
    prev_k = np.full(num_pairs, -1, dtype=np.int64)
    same = pair_node[order][1:] == pair_node[order][:-1]
    prev_k[order[1:][same]] = pair_k[order][:-1][same]
    history_windows = np.zeros(num_pairs)
    starts = np.r_[0, np.flatnonzero(~same) + 1]
    position = np.arange(num_pairs) - np.repeat(starts, np.diff(np.r_[starts, num_pairs]))
    history_windows[order] = position
    # Windows in which the entity acted before this one: a new hire created (a target) on Monday who first
    # acts on Tuesday is a first-time actor on Tuesday.
    acts = (np.bincount(out_pair, minlength=num_pairs) > 0).astype(np.float64)
    # Dormancy is about identities waking up: the gap since the entity last *acted*, as a share of the time
    # since it first acted (a VM started again after a weekend is acted upon, not waking up by itself).
    acting = np.flatnonzero(acts > 0)
    a_order = acting[np.lexsort((pair_k[acting], pair_node[acting]))]
    a_same = pair_node[a_order][1:] == pair_node[a_order][:-1]
    prev_act = np.full(num_pairs, -1, dtype=np.int64)
    prev_act[a_order[1:][a_same]] = pair_k[a_order][:-1][a_same]
    first_act = np.full(num_pairs, -1, dtype=np.int64)
    first_act[acting] = _first_of(pair_node[acting], pair_k[acting])
    age = pair_k - first_act
    gap = np.clip(pair_k - prev_act - 1, 0, None)
    cols["dormancy"] = np.where((prev_act >= 0) & (age > 0), gap / np.maximum(age, 1), 0.0)
    acted_windows = np.zeros(num_pairs)
    sorted_acts = acts[order]
    running = np.cumsum(sorted_acts)
    group_start = np.repeat(starts, np.diff(np.r_[starts, num_pairs]))
    before_start = np.where(group_start > 0, running[group_start - 1], 0.0)
    acted_windows[order] = running - sorted_acts - before_start

    # Volume against the entity's own past, outgoing and incoming.
    cols["volume_z"] = _volume_z(src, rel, k, events, out_pair, num_pairs, num_days)
    cols["in_volume_z"] = _volume_z(dst, rel, k, events, in_pair, num_pairs, num_days)
    cols["volume_ratio"] = _volume_ratio(pair_node, pair_k, out_events, num_days)

    cols["hour_novelty"] = _hour_novelty(snapshot, act, src, k, out_pair, num_pairs, num_days)

    total_events = out_events + _per_pair_sum(in_pair, events, num_pairs)
    names = ANOMALY_COLUMNS
    edge_columns = [new, rarity, type_new, type_rarity]
    if edge_implausibility is not None:
        implausible = np.asarray(edge_implausibility, dtype=np.float64)[act]
        cols[GNN_COLUMN] = _per_pair_max(out_pair[new], implausible[new], num_pairs)
        names = (*ANOMALY_COLUMNS, GNN_COLUMN)
        edge_columns.append(implausible)
    x = np.stack([cols[name] for name in names], axis=1)
    context = np.stack([history_windows, out_edges + in_edges, total_events, acted_windows, acts], axis=1)
    edge_x = np.stack(edge_columns, axis=1).astype(np.float64)
    features = WindowFeatures(
        node=pair_node.astype(np.int64), window=origin + pair_k * WINDOW_SECONDS, label=label[pair_node],
        x=x, context=context, edge=act.astype(np.int64), edge_window=when[act], edge_x=edge_x,
        edge_peer_count=peer_count.astype(np.int64), pair_of_edge=out_pair.astype(np.int64), origin=origin,
        columns=names,
    )
    features.habit = own_habit(features)
    if windows is None:
        return features
    wanted = np.isin(features.window, np.asarray(list(windows), dtype=np.float64))
    return features.select(np.flatnonzero(wanted))


def _volume_ratio(node: np.ndarray, day: np.ndarray, events: np.ndarray, num_days: int) -> np.ndarray:
    """log((events + 1) / (median events of earlier active windows + 1)), ≥ 0; 0 without history."""
    import pandas as pd

    frame = pd.DataFrame({"n": node, "k": day, "v": np.log1p(events)})
    out = np.zeros(len(frame))
    for d in range(1, num_days):
        now = np.flatnonzero(day == d)
        past = frame[(day < d) & (events > 0)]
        if now.size == 0 or past.empty:
            continue
        median = past.groupby("n")["v"].median()
        ref = frame.iloc[now]["n"].map(median).to_numpy()
        value = frame.iloc[now]["v"].to_numpy() - ref
        out[now] = np.where(np.isfinite(ref) & (events[now] > 0), np.clip(value, 0.0, None), 0.0)
    return out


def _hour_novelty(snapshot: Snapshot, act: np.ndarray, src: np.ndarray, k: np.ndarray, out_pair: np.ndarray,
                  num_pairs: int, num_days: int) -> np.ndarray:
    """Share of the window's activity hours (first and last seen of each relationship) at which the entity's
    earlier activity was under :data:`RARE_HOUR_SHARE`; 0 with fewer than :data:`MIN_HOUR_SAMPLES` samples."""
    times = np.concatenate([snapshot.edge_first_seen[act], snapshot.edge_last_seen[act]])
    entity = np.concatenate([src, src])
    day = np.concatenate([k, k])
    pair = np.concatenate([out_pair, out_pair])
    ok = np.isfinite(times)
    times, entity, day, pair = times[ok], entity[ok], day[ok], pair[ok]
    if times.size == 0:
        return np.zeros(num_pairs)
    hour = ((times % WINDOW_SECONDS) // 3600).astype(np.int64)
    ids, compact = np.unique(entity, return_inverse=True)
    histogram = np.zeros((ids.size, 24))
    rare = np.zeros(times.size)
    for d in range(num_days):
        now = np.flatnonzero(day == d)
        if now.size == 0:
            continue
        seen = histogram[compact[now]]
        total = seen.sum(axis=1)
        share = seen[np.arange(now.size), hour[now]] / np.maximum(total, 1.0)
        rare[now] = (total >= MIN_HOUR_SAMPLES) & (share < RARE_HOUR_SHARE)
        np.add.at(histogram, (compact[now], hour[now]), 1.0)
    samples = np.bincount(pair, minlength=num_pairs).astype(np.float64)
    hits = np.bincount(pair, weights=rare, minlength=num_pairs)
    return np.divide(hits, samples, out=np.zeros(num_pairs), where=samples > 0)


def label_name(label_id: int) -> str:
    return NODE_LABELS[int(label_id)]


MIN_HABIT_WINDOWS = 3
"""Earlier active windows an entity needs before its own habit discounts anything."""


def own_habit(features: WindowFeatures, min_windows: int = MIN_HABIT_WINDOWS) -> np.ndarray:
    r"""Per pair and column, the share of the entity's earlier active windows that were at least as extreme:
    :math:`h_{i,f} = \#\{j < i : x_{j,f} \ge x_{i,f}\} / \#\{j < i\}` over the same entity's pairs after its first
    (which is all new by construction), 0 with fewer than ``min_windows`` of them or for a value of 0.
    Morpheus DFP's per-identity baseline, in one number: a CI bot that meets a new address every day has a
    habit of 1 for ``new_source_ips``; a person who never did has 0, and only then does the label's rarity
    count in full.
    """
    p, f = features.x.shape
    habit = np.zeros((p, f))
    if p == 0:
        return habit
    order = np.lexsort((features.window, features.node))
    node = features.node[order]
    x = features.x[order]
    # An entity's first window is all new by construction: it is no evidence of a habit.
    usable = features.context[order, 0] > 0
    counts = np.zeros((p, f))
    earlier = np.zeros(p)
    for lag in range(1, p):
        same = node[lag:] == node[:-lag]
        if not same.any():
            break
        rows = np.flatnonzero(same & usable[:-lag]) + lag
        counts[rows] += x[rows - lag] >= x[rows]
        earlier[rows] += 1
    enough = earlier >= min_windows
    share = np.divide(counts, earlier[:, None], out=np.zeros((p, f)), where=earlier[:, None] > 0)
    share[~enough] = 0.0
    share[x <= 0] = 0.0
    habit[order] = share
    return habit
