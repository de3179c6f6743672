"""History features and the tail-surprise detector, on hand-made snapshots (no database)."""

from __future__ import annotations

import numpy as np
import pytest

from gnnsec import schema
from gnnsec.gnn.history import WINDOW_SECONDS, history_features
from gnnsec.gnn.window_detect import TailConfig, TailModel, fit_pairs, rank_within, score_pairs
from gnnsec.snapshot import Snapshot

DAY0 = 1_772_409_600.0  # 2026-03-02T00:00:00Z


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000000000+00:00")


def estate(days: int = 6, attack_day: int | None = 5, users: int = 8) -> Snapshot:
    """``users`` users read one bucket from their own address every day at 10:00; on ``attack_day``
    user 0 also calls from a new address, assumes a role it never assumed and reads a second bucket."""
    uids = [f"u{i}" for i in range(users)] + ["bucket", "secret-bucket", "role"] + [f"ip{i}" for i in range(users)]
    uids.append("ip-evil")
    labels = ["User"] * users + ["Bucket", "Bucket", "Role"] + ["IP"] * (users + 1)
    index = {u: i for i, u in enumerate(uids)}
    edges: list[tuple[str, str, str, int, float, list[str]]] = []
    for day in range(days):
        for i in range(users):
            edges.append((f"u{i}", "ACCESS", "bucket", day, 10.0, ["GetObject"]))
            edges.append((f"u{i}", "AUTHENTICATES_FROM", f"ip{i}", day, 10.0, ["GetObject"]))
        if day == attack_day:
            edges.append(("u0", "AUTHENTICATES_FROM", "ip-evil", day, 3.0, ["AssumeRole"]))
            edges.append(("u0", "ASSUMES_ROLE", "role", day, 3.0, ["AssumeRole"]))
            edges.append(("u0", "ACCESS", "secret-bucket", day, 3.0, ["GetObject", "ListBuckets"]))
    start = [DAY0 + d * WINDOW_SECONDS + h * 3600 for _, _, _, d, h, _ in edges]
    return Snapshot(
        node_uid=uids,
        node_label=np.asarray([schema.label_id(x) for x in labels], dtype=np.int64),
        node_props=[{"region": "us-east-1"} if x != "IP" else {} for x in labels],
        edge_index=np.asarray([[index[s] for s, *_ in edges], [index[d] for _, _, d, *_ in edges]], dtype=np.int64),
        edge_type=np.asarray([schema.relation_id(t) for _, t, *_ in edges], dtype=np.int64),
        edge_count=np.full(len(edges), 3.0),
        edge_first_seen=np.asarray(start),
        edge_last_seen=np.asarray(start) + 60,
        edge_window=[_iso(DAY0 + d * WINDOW_SECONDS) for _, _, _, d, _, _ in edges],
        edge_actions=[list(a) for *_, a in edges],
    )


def _row(features, snapshot: Snapshot, uid: str, day: int) -> int:
    node = snapshot.node_uid.index(uid)
    rows = np.flatnonzero((features.node == node) & (features.window == DAY0 + day * WINDOW_SECONDS))
    assert rows.size == 1
    return int(rows[0])


def test_novelty_is_measured_against_the_entity_own_past() -> None:
    snap = estate()
    f = history_features(snap)
    attacker, peer = _row(f, snap, "u0", 5), _row(f, snap, "u1", 5)
    assert f.column("new_source_ips")[attacker] == 1
    assert f.column("new_roles_assumed")[attacker] == 1
    assert f.column("new_edges")[attacker] == pytest.approx(np.log1p(3))
    assert f.column("new_actions")[attacker] == pytest.approx(np.log1p(2))  # AssumeRole, ListBuckets
    assert f.column("peer_rarity")[attacker] == 1.0  # no other User ever touched those
    assert f.column("hour_novelty")[attacker] > 0  # 03:00 for someone who works at 10:00
    for name in ("new_edges", "new_source_ips", "new_actions", "peer_rarity", "hour_novelty"):
        assert f.column(name)[peer] == 0, name
    assert f.column("history_windows")[attacker] == 5
    assert f.column("history_windows")[_row(f, snap, "u0", 0)] == 0


def test_young_relationships_carry_the_day_after_a_first_access() -> None:
    """Day 4 opens three new relationships (new); on day 5 nothing is new, but every event of u0 goes to a
    relationship first made yesterday (young); the first observed day is never young."""
    snap = estate(attack_day=4)
    f = history_features(snap)
    day4, day5 = _row(f, snap, "u0", 4), _row(f, snap, "u0", 5)
    assert f.column("young_event_share")[day4] == 0  # new, not young yet
    assert f.column("new_edges")[day4] > 0
    assert f.column("young_event_share")[day5] == 0  # u0 did only its usual on day 5
    # Now u0 repeats the new relationships on day 5 instead of its usual ones.
    u0, day = snap.node_uid.index("u0"), _iso(DAY0 + 5 * WINDOW_SECONDS)
    window = np.asarray(snap.edge_window)
    repeat = np.flatnonzero((snap.edge_index[0] == u0) & (window == _iso(DAY0 + 4 * WINDOW_SECONDS))
                            & (snap.edge_first_seen % WINDOW_SECONDS < 4 * 3600))  # the 03:00 ones
    usual = np.flatnonzero((snap.edge_index[0] == u0) & (window == day))
    assert repeat.size == 3 and usual.size == 2
    snap.edge_first_seen[usual] = snap.edge_first_seen[repeat[:2]] + WINDOW_SECONDS
    snap.edge_index[1, usual] = snap.edge_index[1, repeat[:2]]
    snap.edge_type[usual] = snap.edge_type[repeat[:2]]
    f = history_features(snap)
    day5 = _row(f, snap, "u0", 5)
    assert f.column("young_event_share")[day5] == 1.0
    assert f.column("new_edges")[day5] == 0
    assert f.column("young_event_share")[_row(f, snap, "u1", 1)] == 0  # the day after the first day: not young


def test_features_are_causal() -> None:
    """Scoring day 3 with days 4-5 present gives what scoring it with only days 0-3 gives."""
    full = estate()
    f = history_features(full)
    keep = np.asarray([w <= _iso(DAY0 + 3 * WINDOW_SECONDS) for w in full.edge_window])
    cut = Snapshot(full.node_uid, full.node_label, full.node_props, full.edge_index[:, keep], full.edge_type[keep],
                   full.edge_count[keep], full.edge_first_seen[keep], full.edge_last_seen[keep],
                   [w for w, k in zip(full.edge_window, keep, strict=True) if k],
                   [a for a, k in zip(full.edge_actions, keep, strict=True) if k])
    g = history_features(cut, windows=[DAY0 + 3 * WINDOW_SECONDS])
    rows = np.flatnonzero(f.window == DAY0 + 3 * WINDOW_SECONDS)
    order_f = np.argsort(f.node[rows])
    order_g = np.argsort(g.node)
    np.testing.assert_array_equal(f.node[rows][order_f], g.node[order_g])
    np.testing.assert_allclose(f.x[rows][order_f], g.x[order_g])


def test_attacker_day_tops_its_label_and_benign_days_stay_quiet() -> None:
    snap = estate(days=12, attack_day=11, users=12)  # 12 users x 10 warm days = 120 reference pairs
    f = history_features(snap)
    past = f.select(np.flatnonzero(f.window < DAY0 + 11 * WINDOW_SECONDS))
    today = f.select(np.flatnonzero(f.window == DAY0 + 11 * WINDOW_SECONDS))
    scored = score_pairs(fit_pairs(past, TailConfig()), today)
    users = np.flatnonzero(today.label == schema.label_id("User"))
    ranks = rank_within(today.label, scored.score, scored.raw)
    attacker = int(np.flatnonzero(today.node == snap.node_uid.index("u0"))[0])
    assert ranks[attacker] == 1
    assert scored.anomalous[attacker]
    assert not scored.anomalous[np.setdiff1d(users, [attacker])].any()
    assert scored.calibration[attacker] == "label"


def test_calibration_is_fine_grained_and_uniform_on_normal_data() -> None:
    rng = np.random.default_rng(0)
    reference = rng.exponential(size=(3000, 5))
    model = TailModel(TailConfig()).fit(np.zeros(3000, np.int64), np.ones(3000, np.int64), reference)
    fresh = rng.exponential(size=(3000, 5))
    scored = model.score(np.zeros(3000, np.int64), np.ones(3000, np.int64), fresh)
    assert abs(scored.anomalous.mean() - 0.01) < 0.006  # ~1% of normal pairs at the default 0.99
    assert len(np.unique(np.round(scored.score, 4))) > 1000  # no steps of 1/12
    assert np.array_equal(scored.anomalous, scored.score >= 0.99)
    extreme = model.score(np.zeros(1, np.int64), np.ones(1, np.int64), np.full((1, 5), 50.0))
    assert extreme.score[0] >= 0.99 and extreme.anomalous[0]


def test_scores_beyond_every_reference_pair_follow_the_fitted_tail() -> None:
    """With 200 reference pairs the ECDF stops at 200/201 ≈ 0.995, under an ordinary 0.998 of a larger group; past
    the reference's largest raw score the calibrated score keeps rising along the fitted exponential tail."""
    rng = np.random.default_rng(2)
    group, first = np.zeros(200, np.int64), np.zeros(200, np.int64)
    probe = np.array([[50.0, 50.0, 0.0, 0.0], [50.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    capped = TailModel(TailConfig(extrapolate_tail=False)).fit(group, first, rng.exponential(size=(200, 4)))
    model = TailModel(TailConfig()).fit(group, first, rng.exponential(size=(200, 4)))
    beyond = model.score(group[:3], first[:3], probe)
    assert beyond.raw[0] > model.groups[(0, 0)].calibration[-1]  # two surprises no reference pair reached
    assert capped.score(group[:3], first[:3], probe).score[0] == pytest.approx(200 / 201)
    assert 0.999 < beyond.score[0] < 1.0 and beyond.anomalous[0]
    assert beyond.score[0] > beyond.score[1] > beyond.score[2]
    assert model.groups[(0, 0)].tail_scale >= 1.0  # never a thinner tail than one Exp(1) surprise


def test_small_labels_borrow_the_pooled_reference_and_say_so() -> None:
    rng = np.random.default_rng(1)
    group = np.r_[np.zeros(500, np.int64), np.ones(10, np.int64)]
    model = TailModel(TailConfig(min_reference=50)).fit(group, np.ones(510, np.int64), rng.random((510, 3)))
    scored = model.score(np.array([0, 1]), np.array([1, 1]), rng.random((2, 3)))
    assert scored.calibration == ["label", "pooled"]
    lonely = TailModel(TailConfig(min_reference=50)).fit(np.zeros(10, np.int64), np.ones(10, np.int64),
                                                          rng.random((10, 3)))
    assert lonely.score(np.array([0]), np.array([1]), rng.random((1, 3))).calibration == ["low"]


def test_ties_are_broken_by_raw_score_not_by_order() -> None:
    group = np.zeros(3, np.int64)
    ranks = rank_within(group, np.array([0.99, 0.99, 0.5]), np.array([1.0, 7.0, 9.0]))
    assert ranks.tolist() == [2, 1, 3]


def test_own_habit_discounts_what_the_entity_always_does() -> None:
    """A bot that meets a new address every day has a habit of it; the person who never did has none."""
    snap = estate(days=6, attack_day=5, users=4)
    uids = list(snap.node_uid) + [f"ip-bot{d}" for d in range(6)]
    labels = np.r_[snap.node_label, np.full(6, schema.label_id("IP"))]
    index = {u: i for i, u in enumerate(uids)}
    extra_src = [index["u1"]] * 6
    extra_dst = [index[f"ip-bot{d}"] for d in range(6)]
    times = [DAY0 + d * WINDOW_SECONDS + 36000 for d in range(6)]
    bot = Snapshot(uids, labels, list(snap.node_props) + [{}] * 6,
                   np.c_[snap.edge_index, [extra_src, extra_dst]],
                   np.r_[snap.edge_type, np.full(6, schema.relation_id("AUTHENTICATES_FROM"))],
                   np.r_[snap.edge_count, np.ones(6)], np.r_[snap.edge_first_seen, times],
                   np.r_[snap.edge_last_seen, times],
                   snap.edge_window + [_iso(DAY0 + d * WINDOW_SECONDS) for d in range(6)],
                   snap.edge_actions + [["GetObject"]] * 6)
    f = history_features(bot)
    column = f.columns.index("new_source_ips")
    assert f.habit is not None
    assert f.habit[_row(f, bot, "u1", 5), column] == 1.0  # new address on each of its earlier days
    assert f.habit[_row(f, bot, "u0", 5), column] == 0.0  # the attacker's first ever
    assert f.habit[_row(f, bot, "u1", 3), column] == 0.0  # 2 usable earlier days: no habit yet
    assert f.habit[_row(f, bot, "u1", 4), column] == 1.0


def test_suspicion_passes_one_hop_from_principals_only() -> None:
    from gnnsec.gnn.window_detect import neighbour_surprise

    snap = estate()
    f = history_features(snap)
    today = f.select(np.flatnonzero(f.window == DAY0 + 5 * WINDOW_SECONDS))
    first = np.full(today.num_pairs, 0.5)
    row = {snap.node_uid[int(n)]: i for i, n in enumerate(today.node.tolist())}
    first[row["u0"]], first[row["ip-evil"]] = 0.999, 0.9999  # the address is the most unusual of all
    value, source = neighbour_surprise(snap, today, first)
    assert source[row["role"]] == row["u0"] and value[row["role"]] == pytest.approx(-np.log(0.001))
    assert source[row["u0"]] == row["role"]  # not the address: an IP passes nothing on
    assert source[row["u1"]] == -1 or today.label[source[row["u1"]]] != schema.label_id("IP")
    assert value[row["bucket"]] == pytest.approx(-np.log(0.001))  # u0 read it too


def test_a_volume_reason_says_how_many_times_its_usual_day() -> None:
    """'starts 5 VMs, 4.1x its daily habit' (issue #11): the reason gives the ratio to the entity's median day."""
    from gnnsec.gnn.window_detect import PairExplainer

    snapshot = estate(days=6, attack_day=None)
    last = [i for i, w in enumerate(snapshot.edge_window) if w == _iso(DAY0 + 5 * WINDOW_SECONDS)
            and snapshot.node_uid[int(snapshot.edge_index[0, i])] == "u1"]
    snapshot.edge_count[last] = 12.0  # u1's two relationships: 24 events on its last day, 6 on each day before
    features = history_features(snapshot)
    row = _row(features, snapshot, "u1", 5)
    surprise = np.zeros(len(features.columns))
    surprise[features.columns.index("volume_ratio")] = 9.0
    reasons = PairExplainer(snapshot, features).reasons(row, surprise)
    assert reasons == ["24 events, 4.0× its usual day (6) (never seen before)"], reasons


def _session_estate(bystanders: int = 0) -> Snapshot:
    """A CI key ``u0`` assumes ``role`` every day at 10:00 from ``ip0``; so does ``u1`` from ``ip1``. On day 5 the key
    is also used from ``ip-evil`` at 21:00, and the role starts ``vm-x`` at 21:05; ``u1`` meets a new address at
    08:00. ``bystanders`` more users assume the role daily and meet a new address at 21:30 on day 5."""
    users = [f"u{i}" for i in range(2 + bystanders)]
    uids = [*users, "role", "vm-x", "ip-evil", "ip-new1"] + [f"ip{i}" for i in range(len(users))]
    labels = ["User"] * len(users) + ["Role", "VM", "IP", "IP"] + ["IP"] * len(users)
    index = {u: i for i, u in enumerate(uids)}
    edges: list[tuple[str, str, str, int, float]] = []
    for day in range(6):
        for i, user in enumerate(users):
            edges.append((user, "ASSUMES_ROLE", "role", day, 10.0))
            edges.append((user, "AUTHENTICATES_FROM", f"ip{i}", day, 10.0))
    edges += [("u0", "AUTHENTICATES_FROM", "ip-evil", 5, 21.0), ("role", "START_VM", "vm-x", 5, 21.08),
              ("u1", "AUTHENTICATES_FROM", "ip-new1", 5, 8.0)]
    edges += [(user, "AUTHENTICATES_FROM", "ip-evil", 5, 21.5) for user in users[2:]]
    start = np.asarray([DAY0 + d * WINDOW_SECONDS + h * 3600 for *_, d, h in edges])
    return Snapshot(
        node_uid=uids, node_label=np.asarray([schema.label_id(x) for x in labels], dtype=np.int64),
        node_props=[{} for _ in uids],
        edge_index=np.asarray([[index[s] for s, *_ in edges], [index[d] for _, _, d, *_ in edges]], dtype=np.int64),
        edge_type=np.asarray([schema.relation_id(t) for _, t, *_ in edges], dtype=np.int64),
        edge_count=np.ones(len(edges)), edge_first_seen=start, edge_last_seen=start + 60,
        edge_window=[_iso(DAY0 + d * WINDOW_SECONDS) for *_, d, _ in edges],
        edge_actions=[["AssumeRole"] for _ in edges],
    )


@pytest.mark.parametrize("bystanders", [0, 12])
def test_suspicion_passes_along_an_old_relationship_only_to_who_was_new_in_the_same_hour(bystanders: int) -> None:
    """The key's new address (21:00) and the role's new VM (21:05) are one session; u1's new address at 08:00 is
    not. The VM's link to the role is itself new, so it gets nothing here (the plain neighbour column covers it).
    Suspicion is shared among everyone co-active with the role: 13 of them split 0.999's but not below the floor."""
    from gnnsec.gnn.window_detect import COINCIDENT_FLOOR, coincident_neighbour_surprise

    snap = _session_estate(bystanders)
    f = history_features(snap)
    today = f.select(np.flatnonzero(f.window == DAY0 + 5 * WINDOW_SECONDS))
    row = {snap.node_uid[int(n)]: i for i, n in enumerate(today.node.tolist())}
    first = np.full(today.num_pairs, 0.5)
    first[row["role"]] = 0.999
    value, source = coincident_neighbour_surprise(snap, today, first, 3600.0)
    expected = -np.log(0.001) - np.log(1 + bystanders)
    assert source[row["u0"]] == row["role"] and value[row["u0"]] == pytest.approx(expected)
    assert value[row["u1"]] == 0 and source[row["u1"]] == -1
    assert value[row["vm-x"]] == 0
    first[row["role"]] = 0.99  # 13 share −log(0.01) = 4.6 nats: 2.0 each, under the floor of a 0.9 score
    value, _ = coincident_neighbour_surprise(snap, today, first, 3600.0)
    assert (value[row["u0"]] == 0) == (bystanders > 0)
    assert np.log(10) == pytest.approx(COINCIDENT_FLOOR)


def test_the_coincident_neighbour_reason_names_the_principal() -> None:
    import dataclasses

    from gnnsec.gnn.window_detect import COINCIDENT_COLUMN, NEIGHBOUR_COLUMN, PairExplainer

    snap = _session_estate()
    f = history_features(snap)
    today = f.select(np.flatnonzero(f.window == DAY0 + 5 * WINDOW_SECONDS))
    row = {snap.node_uid[int(n)]: i for i, n in enumerate(today.node.tolist())}
    extended = dataclasses.replace(today, x=np.c_[today.x, np.zeros((today.num_pairs, 2))],
                                   columns=(*today.columns, NEIGHBOUR_COLUMN, COINCIDENT_COLUMN))
    neighbours = np.full((today.num_pairs, 2), -1)
    neighbours[row["u0"], 1] = row["role"]
    surprise = np.zeros(len(extended.columns))
    surprise[-1] = 7.0
    reasons = PairExplainer(snap, extended, neighbours).reasons(row["u0"], surprise)
    assert reasons == ["new activity in the same hour as role's, itself unusual, through a relationship it had "
                       "(never seen before)"], reasons


def test_a_principal_passes_on_what_it_did_not_what_was_done_to_it() -> None:
    """u0 assumes the role for the first time, so the role's day is unusual only as an object (a new principal reached
    it). Handing that back to u0 as a neighbour's suspicion would count u0's own novelty twice (on a medium estate a
    GCP user who first reached an instance got the instance's "new principal" back and outranked the attackers)."""
    from gnnsec.gnn.window_detect import NEIGHBOUR_COLUMN, OBJECT_COLUMNS, PairDetector, actor_view

    snap = estate()
    f = history_features(snap)
    day5 = DAY0 + 5 * WINDOW_SECONDS
    history, today = f.select(np.flatnonzero(f.window < day5)), f.select(np.flatnonzero(f.window == day5))
    assert not set(OBJECT_COLUMNS) & set(actor_view(today).columns)
    habit = actor_view(today).habit
    assert habit is not None and habit.shape == (today.num_pairs, len(today.columns) - len(OBJECT_COLUMNS))
    u0 = _row(today, snap, "u0", 5)
    passed = {}
    for actor in (True, False):
        _, extended, source = PairDetector(snap, TailConfig(actor_suspicion=actor)).fit(history).score(today)
        assert snap.node_uid[int(today.node[source[u0, 0]])] == "role"
        passed[actor] = extended.x[u0, extended.columns.index(NEIGHBOUR_COLUMN)]
    assert passed[True] < passed[False]
