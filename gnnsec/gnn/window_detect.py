r"""Scoring (entity, window) pairs against history, calibrated on history.

Per feature :math:`f` and reference group :math:`g` (a node label and whether the entity has any history),
the surprise of a value is the negative log of its smoothed empirical tail probability among the
group's historical pairs,

.. math::
    s_f(x) = -\log \frac{\#\{r \in R_g : x_{r,f} \ge x\} + 1}{|R_g| + 1},

so a value every entity of the label shows (no new edge, usual volume) costs nothing and a value no
past window reached costs :math:`\log(|R_g|+1)`. A pair's raw score is the sum of its ``top_k`` largest
surprises (correlated columns such as "new edges" and "new edge share" are not counted many times over).

Calibration: every historical pair is scored the same way, leaving itself out of the tail counts, and the
calibrated score of a new pair is the empirical CDF of those raw scores,
:math:`\hat F_g(s) = (\#\{r : s_r < s\} + \tfrac12\#\{r : s_r = s\}) / (|R_g| + 1)` (mid-rank, so an ordinary
pair tied with most of the reference scores about 0.5, not 1). Beyond the largest reference raw score
:math:`s_{\max}` the ECDF would stop at :math:`|R_g|/(|R_g|+1)`; there the score follows an exponential tail
fitted to the reference's top scores, :math:`1 - e^{-(s - s_{\max})/\beta} / (|R_g| + 1)` (:func:`tail_scale`),
so a group with few reference pairs (first-time VMs) does not cap its most anomalous pairs under ordinary ones of
a larger group. With entities × windows reference points (60 users × 30 days = 1,800) the 0.99 quantile is
resolved instead of moving in steps of 1/12, and because every label is calibrated against its own normal, one
overall top list across labels makes sense. Groups with fewer than ``min_reference`` pairs borrow the pooled
reference of all labels (``calibration = "pooled"``); below that even pooled, ``"low"``.

The same machinery scores relationships, grouped by relation type: a window relationship's columns are
"never seen before", peer rarity, "first of its type for the source", type rarity among the source's
label, and (when a trained model is given) DistMult's improbability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from gnnsec.gnn.history import WINDOW_SECONDS, YOUNG_WINDOWS, WindowFeatures
from gnnsec.schema import NODE_LABELS, relation_id
from gnnsec.snapshot import Snapshot

CALIBRATION_KINDS = ("label", "pooled", "low")


@dataclass(slots=True)
class TailConfig:
    top_k: int = 2
    """Surprises summed per pair: 1, 2 and 3 were compared on development estates (small seeds 8, 9, 10 and
    medium seed 9; mean AP over User, Role and VM 0.55 / 0.68 / 0.66), never on the reported ones."""
    min_reference: int = 100
    """Reference pairs a group needs to be calibrated on its own: with n pairs the calibrated score tops out at
    n/(n+1), so fewer than 1/(1 − threshold) = 100 could never reach 0.99."""
    threshold: float = 0.99
    """Calibrated score at or above which a pair is ``anomalous``."""
    use_habit: bool = True
    """Discount each surprise by the entity's own habit of it (``history.own_habit``)."""
    coincidence_seconds: float = 3600.0
    """Time bins within which an entity's new relationships and a linked principal's count as one session (one hour:
    AssumeRole's default session) for :func:`coincident_neighbour_surprise`; 0 leaves that column out."""
    actor_suspicion: bool = True
    """A principal passes on its score as an actor (:data:`OBJECT_COLUMNS` left out), not the novelty others brought
    it: the user who first reached a VM is not handed the VM's "a new principal reached me" back as a neighbour's."""
    extrapolate_tail: bool = True
    """Beyond its largest reference raw score, extrapolate the calibrated score along the reference's fitted
    exponential tail (:func:`tail_scale`) instead of stopping at n/(n+1)."""
    warmup_windows: int = 1
    """Windows at the start of the observed history left out of the reference (everything is new there)."""
    min_reference_windows: int = 3
    """Windows of reference a day needs before it can be scored. Measured on the development estate (medium, seed
    9): a day calibrated on one window flagged 31 % of benign principals; with the current columns, on two 1.3 %
    (the volume columns only appear once entities have a few past days, so two days of reference have almost
    none), on three 0.1 %. A fresh benign-only estate (seed 113) agreed: 1.4 % on two, 0.4 % on three."""


@dataclass(slots=True)
class TailScores:
    raw: np.ndarray  # [P]
    score: np.ndarray  # [P], calibrated [0, 1)
    surprise: np.ndarray  # [P, F]
    calibration: list[str]  # per pair: label | pooled | low
    anomalous: np.ndarray  # bool [P]: score >= threshold


@dataclass(slots=True)
class _Group:
    sorted_columns: np.ndarray  # [n, F], each column sorted ascending
    calibration: np.ndarray  # sorted leave-one-out raw scores of the reference pairs [n]
    kind: str
    tail_scale: float = 1.0  # exponential scale of the calibration's upper tail, for scores beyond its maximum


TAIL_FIT_SHARE = 0.02
"""The reference's top share (at least :data:`TAIL_FIT_MIN` pairs) whose excesses fit the tail beyond its maximum."""
TAIL_FIT_MIN = 10


_TOP = 1.0 - 1e-12


def tail_scale(calibration: np.ndarray) -> float:
    r"""Scale :math:`\beta` of an exponential tail (peaks over threshold, the generalised Pareto with shape 0) fitted
    to the excesses of the top :math:`m` sorted raw scores over the next one, :math:`\hat\beta =
    \tfrac1m\sum (s_{(i)} - s_{(m+1)})`, and never under 1: a raw score sums surprises that are each −log of a tail
    share, so its tail decays no faster than one :math:`\mathrm{Exp}(1)` (SPOT, Siffer et al., KDD 2017, fits the
    same tail to extrapolate thresholds)."""
    n = calibration.size
    m = max(TAIL_FIT_MIN, math.ceil(TAIL_FIT_SHARE * n))
    if n <= m:
        return 1.0
    excess = calibration[-m:] - calibration[-m - 1]
    return max(1.0, float(excess.mean()))


class TailModel:
    """Per-group empirical tails of anomaly columns; ``fit`` on history, ``score`` new pairs."""

    def __init__(self, config: TailConfig | None = None) -> None:
        self.config = config or TailConfig()
        self.groups: dict[tuple[int, int], _Group] = {}
        self.pooled: dict[int, _Group] = {}

    @staticmethod
    def _tail_counts(sorted_columns: np.ndarray, x: np.ndarray) -> np.ndarray:
        """#reference values ≥ x, per column."""
        n = sorted_columns.shape[0]
        out = np.empty(x.shape, dtype=np.float64)
        for j in range(x.shape[1]):
            out[:, j] = n - np.searchsorted(sorted_columns[:, j], x[:, j], side="left")
        return out

    @staticmethod
    def _sorted_with_own_counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each column sorted, and for every value the number of values ≥ it in its own column (what
        :meth:`_tail_counts` gives for ``x`` against itself). Columns are sorted as contiguous rows of ``x.T``, and
        each value is looked up among its column's distinct values (a few thousand; NaNs one run, last, as
        ``np.sort`` puts them) rather than all of them: the million-node day's largest reference (888,777 pairs x
        23 columns) 2.24 s -> 1.0-1.1 s, identical counts. The sorted columns come back as a transposed view, so
        each is contiguous for the searches of :meth:`score`."""
        n = x.shape[0]
        columns = np.ascontiguousarray(x.T)
        ordered = np.sort(columns, axis=1)
        counts = np.empty(columns.shape, dtype=np.float64)
        run_start = np.empty(n, dtype=bool)
        for j in range(columns.shape[0]):
            column = ordered[j]
            run_start[:1] = True
            np.not_equal(column[1:], column[:-1], out=run_start[1:])
            run_start[1:] &= ~(np.isnan(column[1:]) & np.isnan(column[:-1]))
            first = np.flatnonzero(run_start)
            counts[j] = n - first[np.searchsorted(column[first], columns[j], side="left")]
        return ordered.T, np.ascontiguousarray(counts.T)

    def _raw(self, surprise: np.ndarray) -> np.ndarray:
        k = min(self.config.top_k, surprise.shape[1])
        if k <= 0:
            return np.zeros(surprise.shape[0])
        return np.sort(surprise, axis=1)[:, -k:].sum(axis=1)

    def _fit_group(self, x: np.ndarray, kind: str, habit: np.ndarray | None) -> _Group:
        sorted_columns, counts = self._sorted_with_own_counts(x)
        n = x.shape[0]
        counts -= 1.0  # leave the pair itself out
        surprise = -np.log((counts + 1.0) / n)
        if habit is not None:
            surprise *= 1.0 - habit
        calibration = np.sort(self._raw(surprise))
        return _Group(sorted_columns, calibration, kind, tail_scale(calibration))

    def fit(self, group: np.ndarray, stratum: np.ndarray, x: np.ndarray, habit: np.ndarray | None = None) -> TailModel:
        """Reference groups keyed by (group, stratum), with a pooled reference per stratum. ``habit`` ([P, F] in
        [0, 1], :func:`gnnsec.gnn.history.own_habit`) scales each surprise by 1 − the entity's own habit."""
        self.groups, self.pooled = {}, {}
        for s in np.unique(stratum):
            rows = np.flatnonzero(stratum == s)
            if rows.size >= 2:
                kind = "pooled" if rows.size >= self.config.min_reference else "low"
                self.pooled[int(s)] = self._fit_group(x[rows], kind, None if habit is None else habit[rows])
            for g in np.unique(group[rows]):
                own = rows[group[rows] == g]
                if own.size >= self.config.min_reference:
                    self.groups[(int(g), int(s))] = self._fit_group(x[own], "label",
                                                                    None if habit is None else habit[own])
        return self

    def _reference(self, g: int, s: int) -> _Group | None:
        found = self.groups.get((g, s)) or self.pooled.get(s)
        if found is None and self.pooled:
            # No reference in this stratum at all: the other stratum's pooled reference, marked low.
            other = next(iter(self.pooled.values()))
            return _Group(other.sorted_columns, other.calibration, "low", other.tail_scale)
        return found

    def score(self, group: np.ndarray, stratum: np.ndarray, x: np.ndarray,
              habit: np.ndarray | None = None) -> TailScores:
        n = x.shape[0]
        raw, score = np.zeros(n), np.zeros(n)
        surprise = np.zeros(x.shape)
        calibration = ["low"] * n
        keys = np.stack([group, stratum], axis=1) if n else np.zeros((0, 2), dtype=np.int64)
        for g, s in {(int(a), int(b)) for a, b in keys.tolist()}:
            rows = np.flatnonzero((group == g) & (stratum == s))
            ref = self._reference(g, s)
            if ref is None:
                continue
            m = ref.sorted_columns.shape[0]
            counts = self._tail_counts(ref.sorted_columns, x[rows])
            surprise[rows] = -np.log((counts + 1.0) / (m + 1.0))
            if habit is not None:
                surprise[rows] *= 1.0 - habit[rows]
            raw[rows] = self._raw(surprise[rows])
            # Mid-rank ECDF: a pair tied with many reference pairs (a perfectly ordinary day, raw 0) sits in
            # the middle of the tie, not at its top.
            below = np.searchsorted(ref.calibration, raw[rows], side="left")
            upto = np.searchsorted(ref.calibration, raw[rows], side="right")
            score[rows] = (below + 0.5 * (upto - below)) / (ref.calibration.size + 1.0)
            # Beyond every reference pair the ECDF stops at n/(n+1): with 200 first-time VMs two maximal surprises
            # reached only 0.995, under returning VMs' 0.998 for less. Extrapolate along the fitted tail instead.
            beyond = (raw[rows] > ref.calibration[-1]) & self.config.extrapolate_tail
            excess = raw[rows][beyond] - ref.calibration[-1]
            tail = np.exp(-excess / ref.tail_scale) / (ref.calibration.size + 1.0)
            score[rows[beyond]] = np.minimum(1.0 - tail, _TOP)  # stays under 1 where the tail underflows
            for r in rows.tolist():
                calibration[r] = ref.kind
        return TailScores(raw, score, surprise, calibration, score >= self.config.threshold)

    def reference_sizes(self) -> dict[str, int]:
        out = {f"{g}/{s}": int(ref.sorted_columns.shape[0]) for (g, s), ref in self.groups.items()}
        out.update({f"*/{s}": int(ref.sorted_columns.shape[0]) for s, ref in self.pooled.items()})
        return out


def rank_within(group: np.ndarray, score: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """1 = most anomalous within its group; ties on the calibrated score broken by the raw score."""
    rank = np.zeros(score.size, dtype=np.int64)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        order = np.lexsort((-raw[rows], -score[rows]))
        rank[rows[order]] = np.arange(1, rows.size + 1)
    return rank


def log_odds(score: np.ndarray) -> np.ndarray:
    """Calibrated score → log-odds, for ranking across labels without saturating at the top."""
    clipped = np.clip(score, 1e-9, 1 - 1e-9)
    return np.log(clipped / (1 - clipped))


def surprise_to_share(surprise: float) -> float:
    """exp(−surprise): the smoothed share of reference pairs at least this extreme."""
    return math.exp(-surprise)


def stratum_of(context: np.ndarray) -> np.ndarray:
    """0 for a first appearance, 1 otherwise, so a new hire's first day is compared with other first days, not
    with people who have a habit. For an entity that acts in the window, "first" means it never acted before
    (being created or accessed earlier does not count); for one that is only acted upon, never seen before."""
    acts = context[:, 4] > 0
    return np.where(acts, context[:, 3] > 0, context[:, 0] > 0).astype(np.int64)


def fit_pairs(features: WindowFeatures, config: TailConfig | None = None) -> TailModel:
    """The node reference: every historical (entity, window) pair, grouped by label and stratum."""
    config = config or TailConfig()
    rows = np.flatnonzero(features.warmed_up(config.warmup_windows))
    habit = features.habit[rows] if config.use_habit and features.habit is not None else None
    return TailModel(config).fit(features.label[rows], stratum_of(features.context[rows]), features.x[rows], habit)


def score_pairs(model: TailModel, features: WindowFeatures) -> TailScores:
    habit = features.habit if model.config.use_habit else None
    return model.score(features.label, stratum_of(features.context), features.x, habit)


# ---- one hop of suspicion along the day's relationships --------------------------------------------

NEIGHBOUR_COLUMN = "unusual_neighbour"
ACTING_LABELS = ("User", "Role", "VM", "Function", "Pod", "Container", "CloudAccount")
"""Only principals pass suspicion on: a flagged address or bucket says less about who touched it."""


OBJECT_COLUMNS = ("new_in_edges", "new_in_share", "in_volume_z")
"""What others did to an entity (the object view), as opposed to what it did."""


def actor_view(features: WindowFeatures) -> WindowFeatures:
    """The features without :data:`OBJECT_COLUMNS`: an entity as an actor."""
    keep = [j for j, name in enumerate(features.columns) if name not in OBJECT_COLUMNS]
    habit = None if features.habit is None else features.habit[:, keep]
    return replace(features, x=features.x[:, keep], columns=tuple(features.columns[j] for j in keep),
                               habit=habit)


COINCIDENT_COLUMN = "coincident_neighbour"
NEIGHBOUR_COLUMNS = (NEIGHBOUR_COLUMN, COINCIDENT_COLUMN)
COINCIDENT_FLOOR = math.log(10.0)
"""Suspicion below what a calibrated score of 0.9 passes on (the per-window history floor) is not passed on."""


@dataclass(frozen=True, slots=True)
class _Links:
    """The window's relationships as (pair, linked acting principal's pair), both directions, and whether each
    relationship was new."""

    me: np.ndarray
    other: np.ndarray
    new: np.ndarray
    src: np.ndarray  # pair row of each window relationship's source (−1: not among the pairs)
    dst: np.ndarray


def _links(snapshot: Snapshot, features: WindowFeatures) -> _Links:
    day = np.round(features.window / 86400.0).astype(np.int64)
    key = features.node.astype(np.int64) * 1_000_000 + day
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    edge_day = np.round(features.edge_window / 86400.0).astype(np.int64)

    def rows_of(nodes: np.ndarray) -> np.ndarray:
        wanted = nodes.astype(np.int64) * 1_000_000 + edge_day
        at = np.clip(np.searchsorted(sorted_key, wanted), 0, max(sorted_key.size - 1, 0))
        found = sorted_key[at] == wanted if sorted_key.size else np.zeros(wanted.size, dtype=bool)
        return np.where(found, order[at], -1)

    src = rows_of(snapshot.edge_index[0, features.edge])
    dst = rows_of(snapshot.edge_index[1, features.edge])
    acting = np.isin(features.label, [NODE_LABELS.index(label) for label in ACTING_LABELS])
    me = np.concatenate([src, dst])
    other = np.concatenate([dst, src])
    new = np.tile(features.edge_x[:, 0] > 0, 2)
    ok = (me >= 0) & (other >= 0) & (me != other)
    ok[ok] &= acting[other[ok]]
    return _Links(me[ok], other[ok], new[ok], src, dst)


def _strongest(me: np.ndarray, other: np.ndarray, passed: np.ndarray, num_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the largest suspicion passed to it and from which pair (−1 for none)."""
    value = np.zeros(num_pairs)
    source = np.full(num_pairs, -1, dtype=np.int64)
    np.maximum.at(value, me, passed)
    best = (passed == value[me]) & (value[me] > 0)
    source[me[best]] = other[best]
    return value, source


def _suspicion(score: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(1.0 - score, 1e-4, 1.0))


def neighbour_surprise(snapshot: Snapshot, features: WindowFeatures, score: np.ndarray,
                       links: _Links | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""For each pair, the largest :math:`-\log(1 - \hat F)` of a principal it had a relationship with that same
    window (either direction), where :math:`\hat F` is that principal's first-pass calibrated score; and which
    pair that was (−1 for none). A stolen CI key looks ordinary by itself, but it assumed a role that did
    something no role had done: guilt by association, one hop, on the day's graph."""
    links = links if links is not None else _links(snapshot, features)
    return _strongest(links.me, links.other, _suspicion(score)[links.other], features.num_pairs)


def _new_relationship_bins(snapshot: Snapshot, features: WindowFeatures, links: _Links, seconds: float
                           ) -> np.ndarray:
    """Sorted unique keys ``pair · 2^20 + bin``: the time bins in which a pair's never-seen-before relationships of
    the window began (either end)."""
    start = snapshot.edge_first_seen[features.edge]
    ok = (features.edge_x[:, 0] > 0) & np.isfinite(start)
    bins = np.floor(start[ok] / seconds).astype(np.int64) % _BIN_SPAN
    pairs = np.concatenate([links.src[ok], links.dst[ok]]).astype(np.int64)
    keys = pairs * _BIN_SPAN + np.tile(bins, 2)
    return np.unique(keys[pairs >= 0])


_BIN_SPAN = 1 << 20


def _together(me: np.ndarray, other: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Bool per link: a bin of ``me``'s new relationships equals or neighbours a bin of ``other``'s."""
    out = np.zeros(me.size, dtype=bool)
    if keys.size == 0 or me.size == 0:
        return out
    owner = keys // _BIN_SPAN
    lo = np.searchsorted(owner, me, side="left")
    count = np.searchsorted(owner, me, side="right") - lo
    link = np.repeat(np.arange(me.size), count)
    if link.size == 0:
        return out
    # Positions lo[l], lo[l] + 1, … of each link's bins, without a Python loop.
    position = np.arange(link.size) - np.repeat(np.cumsum(count) - count, count) + lo[link]
    mine = keys[position] % _BIN_SPAN
    for shift in (-1, 0, 1):
        wanted = other[link].astype(np.int64) * _BIN_SPAN + (mine + shift) % _BIN_SPAN
        at = np.clip(np.searchsorted(keys, wanted), 0, keys.size - 1)
        out[link[keys[at] == wanted]] = True
    return out


def coincident_neighbour_surprise(snapshot: Snapshot, features: WindowFeatures, score: np.ndarray,
                                  seconds: float, links: _Links | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Suspicion passed along an *existing* relationship by a principal whose new relationships of the day began
    within ``seconds`` (same or next bin) of the entity's own, shared among all it was so co-active with:

    .. math::
        c_i = \max_{j} \big[-\log(1 - \hat F_j) - \log k_j\big], \qquad k_j = \#\{i' : i' \sim_t j\},

    kept only when at least :data:`COINCIDENT_FLOOR`. A stolen CI key that assumes its usual role from a new
    address in the same hour as that role starts GPU instances nowhere else used: each is a session's worth of
    novelty, and together they are one. A person acting through a role is co-active with it too, but the role is
    then ordinary; an account co-active with hundreds of entities implicates none of them (the :math:`\log k_j`
    share). New relationships are left out as links: their two ends are co-active by construction, and
    :func:`neighbour_surprise` already passes suspicion along them."""
    links = links if links is not None else _links(snapshot, features)
    old = ~links.new
    me, other = links.me[old], links.other[old]
    together = _together(me, other, _new_relationship_bins(snapshot, features, links, seconds))
    me, other = me[together], other[together]
    shared = np.bincount(other, minlength=features.num_pairs)
    passed = _suspicion(score)[other] - np.log(np.maximum(shared[other], 1))
    keep = passed >= COINCIDENT_FLOOR
    return _strongest(me[keep], other[keep], passed[keep], features.num_pairs)


class PairDetector:
    """Two passes over the day: each pair against history, then again with its most unusual acting neighbour's
    first-pass score as one more column (:func:`neighbour_surprise`), calibrated the same way on history.

    Measured on the development estates (small seeds 8, 9, 10 and medium seed 9): mean AP over User, Role and VM
    0.68 → 0.71 and User AUC up on all four (0.88 → 0.95 on the medium one); ``propagate=False`` is one pass.

    The second pass also adds :func:`coincident_neighbour_surprise` (``TailConfig.coincidence_seconds``). On the
    development estates (those four and medium seed 9 with 14 days) mean AP 0.759 → 0.786 and the stolen CI key's
    User-day from 3rd–287th to 1st–6th; on the six medium estates of earlier reports (seeds 110–112, 115–117, seen
    before this change) User AUC 0.925–0.990 → 0.992–0.999, the CI key's day from 89th–546th to 2nd–59th, mean AP
    0.721 → 0.727 (VM AP 0.60 → 0.50 on one 14-day estate); one-hour bins chosen a priori, half-hour ones 0.788.

    Neighbours pass on their score as actors (``TailConfig.actor_suspicion``, :func:`actor_view`): development mean AP
    0.846 → 0.851, the six estates of the last report 0.786 → 0.799 (the CI key's User-day 2nd–23rd → 1st–3rd).
    """

    def __init__(self, snapshot: Snapshot, config: TailConfig | None = None, propagate: bool = True) -> None:
        self.snapshot = snapshot
        self.config = config or TailConfig()
        self.propagate = propagate
        self.first: TailModel | None = None  # one pass: the score itself
        self.passing: TailModel | None = None  # what a principal passes on to its neighbours
        self.second: TailModel | None = None

    def _passed(self, features: WindowFeatures) -> np.ndarray:
        """The first-pass score each principal passes on: as an actor (``TailConfig.actor_suspicion``) or whole."""
        if self.passing is None:
            raise ValueError("fit the detector on history first")
        view = actor_view(features) if self.config.actor_suspicion else features
        return score_pairs(self.passing, view).score

    def _with_neighbour(self, features: WindowFeatures) -> tuple[WindowFeatures, np.ndarray]:
        links = _links(self.snapshot, features)  # both columns walk the same links, found once
        passed = self._passed(features)
        value, source = neighbour_surprise(self.snapshot, features, passed, links)
        values, sources, columns = [value], [source], [NEIGHBOUR_COLUMN]
        if self.config.coincidence_seconds > 0:
            value, source = coincident_neighbour_surprise(self.snapshot, features, passed,
                                                          self.config.coincidence_seconds, links)
            values.append(value)
            sources.append(source)
            columns.append(COINCIDENT_COLUMN)
        added = np.zeros((features.num_pairs, len(columns)))
        habit = None if features.habit is None else np.c_[features.habit, added]
        extended = replace(features, x=np.c_[features.x, np.stack(values, axis=1)],
                                       columns=(*features.columns, *columns), habit=habit)
        return extended, np.stack(sources, axis=1)

    def fit(self, reference: WindowFeatures) -> PairDetector:
        actor = self.config.actor_suspicion
        # With two passes and actor suspicion the whole-entity first pass is never scored: fit only what is used.
        self.first = None if self.propagate and actor else fit_pairs(reference, self.config)
        if self.propagate:
            self.passing = fit_pairs(actor_view(reference), self.config) if actor else self.first
            extended, _ = self._with_neighbour(reference)
            self.second = fit_pairs(extended, self.config)
        return self

    def score(self, current: WindowFeatures) -> tuple[TailScores, WindowFeatures, np.ndarray]:
        """(scores, the features they were computed on, [P, added columns] the neighbour pair behind each pair's
        neighbour columns, −1 for none)."""
        if self.second is not None:
            extended, source = self._with_neighbour(current)
            return score_pairs(self.second, extended), extended, source
        if self.first is None:
            raise ValueError("fit the detector on history first")
        return score_pairs(self.first, current), current, np.full((current.num_pairs, 0), -1, dtype=np.int64)


def edge_groups(snapshot: Snapshot, features: WindowFeatures) -> np.ndarray:
    """Relationships are referenced per relation type."""
    return snapshot.edge_type[features.edge].astype(np.int64)


def fit_edges(snapshot: Snapshot, features: WindowFeatures, config: TailConfig | None = None) -> TailModel:
    """The relationship reference: every historical window relationship, grouped by relation type."""
    config = config or TailConfig()
    edge_config = TailConfig(top_k=features.edge_x.shape[1], min_reference=config.min_reference,
                             threshold=config.threshold, extrapolate_tail=config.extrapolate_tail)
    warm = features.edge_window >= features.origin + config.warmup_windows * 86400.0
    groups = edge_groups(snapshot, features)[warm]
    return TailModel(edge_config).fit(groups, np.zeros_like(groups), features.edge_x[warm])


def score_edges(model: TailModel, snapshot: Snapshot, features: WindowFeatures) -> TailScores:
    groups = edge_groups(snapshot, features)
    return model.score(groups, np.zeros_like(groups), features.edge_x)


# ---- reasons in words ---------------------------------------------------------------------------

REASON_MAX_SHARE = 0.05
"""A column is worth a reason when at most this share of the reference was as extreme."""


def _short(uid: str, width: int = 60) -> str:
    return uid if len(uid) <= width else "…" + uid[-(width - 1):]


def _names(values: list[str], limit: int = 2) -> str:
    shown = ", ".join(_short(v, 48) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


class PairExplainer:
    """Words for why a pair scored high, drawn from its own relationships (built once per scoring run)."""

    def __init__(self, snapshot: Snapshot, features: WindowFeatures,
                 neighbour: np.ndarray | None = None) -> None:
        from gnnsec.gnn.history import edge_windows

        self.snapshot = snapshot
        self.features = features
        # [P, k]: per pair, the neighbour behind each of the k neighbour columns, in the order they follow the
        # pair's own columns (−1: none).
        self.neighbour = None if neighbour is None else neighbour.reshape(len(features.node), -1)
        self.when = edge_windows(snapshot)
        src, dst = snapshot.edge_index
        self.out_order = np.argsort(src, kind="stable")
        self.out_start = np.searchsorted(src[self.out_order], np.arange(snapshot.num_nodes + 1))
        self.in_order = np.argsort(dst, kind="stable")
        self.in_start = np.searchsorted(dst[self.in_order], np.arange(snapshot.num_nodes + 1))

    def _edges(self, node: int, outgoing: bool) -> np.ndarray:
        order, start = (self.out_order, self.out_start) if outgoing else (self.in_order, self.in_start)
        return order[start[node] : start[node + 1]]

    def reasons(self, row: int, surprise: np.ndarray, limit: int = 4) -> list[str]:
        from gnnsec.schema import NODE_LABELS, RELATION_NAMES

        f = self.features
        node, window = int(f.node[row]), float(f.window[row])
        label = NODE_LABELS[int(f.label[row])]
        snap = self.snapshot
        out = self._edges(node, True)
        out_now = out[self.when[out] == window]
        out_before = out[self.when[out] < window]
        inn = self._edges(node, False)
        in_now = inn[self.when[inn] == window]
        in_before = inn[self.when[inn] < window]

        def keys(edges: np.ndarray, outgoing: bool) -> set[tuple[int, int]]:
            peers = snap.edge_index[1 if outgoing else 0, edges]
            return set(zip(snap.edge_type[edges].tolist(), peers.tolist(), strict=True))

        seen_out, seen_in = keys(out_before, True), keys(in_before, False)
        new_out = [e for e in out_now.tolist() if (int(snap.edge_type[e]), int(snap.edge_index[1, e])) not in seen_out]
        new_in = [e for e in in_now.tolist() if (int(snap.edge_type[e]), int(snap.edge_index[0, e])) not in seen_in]
        peer = snap.node_uid
        texts: list[str] = []
        said: set[str] = set()
        order = np.argsort(-surprise, kind="stable")
        for j in order.tolist():
            share = math.exp(-float(surprise[j]))
            if share > REASON_MAX_SHARE or len(texts) >= limit:
                break
            tail = f"(as unusual as {share:.1%} of past {label}-days)" if share >= 0.001 else "(never seen before)"
            name = f.columns[j]
            if name in (NEIGHBOUR_COLUMN, COINCIDENT_COLUMN):
                other = self._neighbour(row, name)
                who = _short(peer[int(f.node[other])]) if other >= 0 else ""
                if not who:
                    text = ""
                elif name == NEIGHBOUR_COLUMN:
                    text = f"tied today to {who}, itself unusual"
                else:
                    text = f"new activity in the same hour as {who}'s, itself unusual, through a relationship it had"
            else:
                text = self._text(name, label, node, window, new_out, new_in, out_now, out_before, peer,
                                  RELATION_NAMES)
            if text and text not in said:  # correlated columns (count and share) tell the same thing once
                said.add(text)
                texts.append(f"{text} {tail}")
        return texts

    def _neighbour(self, row: int, name: str) -> int:
        """The pair behind neighbour column ``name`` of ``row`` (−1: none)."""
        if self.neighbour is None:
            return -1
        k = NEIGHBOUR_COLUMNS.index(name)
        return int(self.neighbour[row, k]) if k < self.neighbour.shape[1] else -1

    def _text(self, name: str, label: str, node: int, window: float, new_out: list[int], new_in: list[int],
              out_now: np.ndarray, out_before: np.ndarray, peer: list[str], rel_names: tuple[str, ...]) -> str:
        snap = self.snapshot

        def of_type(edges: list[int], rel: str) -> list[str]:
            rid = relation_id(rel)
            return [peer[int(snap.edge_index[1, e])] for e in edges if int(snap.edge_type[e]) == rid]

        if name in ("new_edges", "new_edge_share", "peer_rarity") and new_out:
            first = new_out[0]
            return (f"{len(new_out)} relationship(s) it never had before, e.g. "
                    f"{rel_names[int(snap.edge_type[first])]} → {_short(peer[int(snap.edge_index[1, first])])}")
        if name == "young_event_share":
            return self._young_text(window, out_now, out_before, peer, rel_names)
        if name == "new_source_ips":
            return f"first calls from {_names(of_type(new_out, 'AUTHENTICATES_FROM'))}"
        if name == "new_roles_assumed":
            return f"first time it assumed {_names(of_type(new_out, 'ASSUMES_ROLE'))}"
        if name in ("new_actions", "new_action_share", "action_rarity"):
            before = {a for e in out_before.tolist() for a in snap.edge_actions[e]}
            fresh = sorted({a for e in out_now.tolist() for a in snap.edge_actions[e]} - before)
            return f"API actions it never used before: {_names(fresh, 4)}" if fresh else ""
        if name in ("new_regions", "place_rarity"):
            before = {snap.node_props[int(snap.edge_index[1, e])].get("region") for e in out_before.tolist()}
            now = {snap.node_props[int(snap.edge_index[1, e])].get("region") for e in out_now.tolist()}
            fresh = sorted(str(r) for r in now - before if r)
            own = snap.node_props[node].get("region")
            if name == "place_rarity" and own:
                return f"in region {own}, where nothing was active before"
            return f"first activity in region(s) {_names(fresh, 3)}" if fresh else ""
        if name == "new_accounts":
            before = {snap.node_props[int(snap.edge_index[1, e])].get("account") for e in out_before.tolist()}
            now = {snap.node_props[int(snap.edge_index[1, e])].get("account") for e in out_now.tolist()}
            fresh = sorted(str(a) for a in now - before if a)
            return f"first reach into account(s) {_names(fresh, 3)}" if fresh else ""
        if name == "new_relation_types":
            before = {int(t) for t in snap.edge_type[out_before].tolist()}
            fresh = sorted({rel_names[int(t)] for t in snap.edge_type[out_now].tolist() if int(t) not in before})
            return f"relationship type(s) new to it: {_names(fresh, 3)}" if fresh else ""
        if name == "type_rarity":
            return "a kind of relationship few or no other " + label + "s ever had"
        if name == "dormancy":
            active = self.when[out_before]
            last = float(np.nanmax(active)) if active.size else math.nan
            days = round((window - last) / 86400.0) - 1 if math.isfinite(last) else 0
            return f"active again after {days} dormant day(s)" if days > 0 else "active again after a dormant spell"
        if name in ("volume_z", "volume_ratio"):
            events = float(snap.edge_count[out_now].sum())
            days = self.when[out_before]
            if not days.size:
                return f"{events:,.0f} events, far above its own usual volume"
            _, day_of = np.unique(days, return_inverse=True)
            usual = float(np.median(np.bincount(day_of, weights=snap.edge_count[out_before])))
            return f"{events:,.0f} events, {events / max(usual, 1.0):.1f}× its usual day ({usual:,.0f})"
        if name == "hour_novelty":
            return "active at hours it is normally not"
        if name in ("new_in_edges", "new_in_share") and new_in:
            first = new_in[0]
            return (f"{len(new_in)} new principal(s) reached it, e.g. "
                    f"{_short(peer[int(snap.edge_index[0, first])])} via {rel_names[int(snap.edge_type[first])]}")
        if name == "implausible_edge" and new_out:
            return "the trained graph model finds its new relationships implausible"
        if name == "in_volume_z":
            return "far more incoming activity than usual"
        return ""


    def _young_text(self, window: float, out_now: np.ndarray, out_before: np.ndarray, peer: list[str],
                    rel_names: tuple[str, ...]) -> str:

        snap = self.snapshot
        recent_from = window - YOUNG_WINDOWS * WINDOW_SECONDS

        def key(e: int) -> tuple[int, int]:
            return int(snap.edge_type[e]), int(snap.edge_index[1, e])

        older = {key(e) for e in out_before.tolist() if self.when[e] < recent_from}
        recent = {key(e) for e in out_before.tolist() if self.when[e] >= recent_from} - older
        young = [e for e in out_now.tolist() if key(e) in recent]
        if not young:
            return ""
        events = float(snap.edge_count[young].sum())
        total = float(snap.edge_count[out_now].sum()) or 1.0
        # Every call also AUTHENTICATES_FROM an address; name what was done first, the address if nothing else.
        auth = relation_id("AUTHENTICATES_FROM")
        shown = [e for e in young if int(snap.edge_type[e]) != auth] or young
        shown.sort(key=lambda e: -float(snap.edge_count[e]))
        examples = ", ".join(f"{rel_names[int(snap.edge_type[e])]} → {_short(peer[int(snap.edge_index[1, e])])}"
                             for e in shown[:2])
        when = "yesterday" if YOUNG_WINDOWS == 1 else f"in the last {YOUNG_WINDOWS} days"
        return f"{events / total:.0%} of its activity went to relationships first made {when}, e.g. {examples}"


def edge_reasons(snapshot: Snapshot, features: WindowFeatures, row: int) -> list[str]:
    """Words for one window relationship's edge columns."""
    from gnnsec.schema import NODE_LABELS

    new, _, type_new, type_rarity = features.edge_x[row, :4].tolist()
    src_label = NODE_LABELS[int(snapshot.node_label[snapshot.edge_index[0, features.edge[row]]])]
    out = []
    if new:
        out.append("never seen before")
        count = int(features.edge_peer_count[row])
        out.append(f"no other {src_label} ever had it" if count == 0 else f"{count} other {src_label}(s) had it before")
    if type_new:
        out.append(f"first of its type for this {src_label}")
    if type_rarity >= 0.9:
        out.append(f"a type {type_rarity:.0%} of {src_label}s never had")
    if features.edge_x.shape[1] > 4 and features.edge_x[row, 4] >= 0.9:
        out.append(f"the graph model finds it implausible ({features.edge_x[row, 4]:.2f})")
    return out
