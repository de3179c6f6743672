"""Feature spec: schema-agnostic columns, stable hashing, fixed width, no label leakage."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from gnn_helpers import make_estate

from gnnsec.gnn.features import (
    MAX_FDIM,
    FeatureSpec,
    build_features,
    fit_feature_spec,
    stable_bucket,
)
from gnnsec.gnn.model import GraphAutoencoder, ModelConfig
from gnnsec.schema import NODE_LABELS, NUM_RELATIONS


def test_features_hold_the_real_columns_only_and_the_model_reads_them_as_the_zero_padded_input() -> None:
    snap, _ = make_estate(communities=2, users_per_community=3)
    spec = fit_feature_spec(snap)
    x = build_features(snap, spec)
    assert x.shape == (snap.num_nodes, spec.width)
    assert x.dtype == np.float32
    assert spec.width == len(spec.columns) < MAX_FDIM
    model = GraphAutoencoder(ModelConfig(in_dim=MAX_FDIM, active_dim=spec.width, hidden_dim=16, out_dim=8))
    padded = np.zeros((snap.num_nodes, MAX_FDIM), dtype=np.float32)
    padded[:, : spec.width] = x
    narrow, full = torch.from_numpy(x), torch.from_numpy(padded)
    masked = torch.tensor([0, 2])
    assert torch.equal(model.encoder.input_proj(narrow), model.encoder.input_proj(full))
    assert torch.equal(model.mask_features(narrow, masked), model.mask_features(full, masked)[:, : spec.width])


def test_features_are_truncated_when_properties_need_more_than_max_fdim_columns() -> None:
    snap, _ = make_estate(communities=2, users_per_community=3)
    for i, props in enumerate(snap.node_props):
        props.update({f"tag_{k}": f"v{(i + k) % 3}" for k in range(200)})  # 200 categoricals x 8 buckets
    spec = fit_feature_spec(snap)
    assert len(spec.columns) > MAX_FDIM
    assert spec.width == MAX_FDIM
    assert build_features(snap, spec).shape == (snap.num_nodes, MAX_FDIM)  # truncated: width is MAX_FDIM


def test_label_one_hot_and_behaviour_columns_come_first() -> None:
    snap, _ = make_estate(communities=2, users_per_community=3)
    spec = fit_feature_spec(snap)
    assert spec.columns[: len(NODE_LABELS)] == [f"label:{label}" for label in NODE_LABELS]
    assert spec.columns[len(NODE_LABELS)] == "deg:CONTAINS:out"
    x = build_features(snap, spec)
    assert np.array_equal(np.argmax(x[:, : len(NODE_LABELS)], axis=1), snap.node_label)
    assert sum(c.startswith("deg:") for c in spec.columns) == 2 * NUM_RELATIONS


def test_score_label_and_identifier_properties_never_become_columns() -> None:
    snap, _ = make_estate(communities=2, users_per_community=3)
    leaky = {
        "anomaly_score": 0.9,
        "anomalous": True,
        "analyst_label": "malicious",
        "label_campaign": "apt1",
        "gt_malicious": True,
        "model_id": "abc",
        "anomaly_reasons": ["x"],
    }
    for props in snap.node_props:
        props.update(leaky)
    spec = fit_feature_spec(snap)
    keys = set(spec.property_kinds)
    assert keys.isdisjoint(leaky) and "uid" not in keys and "name" not in keys
    assert not any(key in column for column in spec.columns for key in leaky)


def test_first_seen_is_an_age_in_days_not_a_hashed_string() -> None:
    snap, _ = make_estate(communities=2, users_per_community=3)
    spec = fit_feature_spec(snap)
    assert spec.property_kinds["first_seen"] == "time"
    assert "age:first_seen" in spec.columns and not any(c.startswith("cat:first_seen") for c in spec.columns)


def test_stable_bucket_is_blake2b_and_independent_of_python_hash_seed() -> None:
    assert stable_bucket("region", "eu-west-1", 8) == stable_bucket("region", "eu-west-1", 8)
    # Pinned value: changes only if the hashing scheme changes, which would silently move columns.
    assert stable_bucket("region", "eu-west-1", 1 << 30) == 739324332
    assert stable_bucket("region", "eu-west-1", 8) == 4
    buckets = {stable_bucket("k", f"v{i}", 8) for i in range(200)}
    assert buckets == set(range(8))


def test_spec_rebuilds_the_same_columns_on_new_data_and_unseen_categories_land_in_buckets() -> None:
    train, _ = make_estate(communities=3, seed=1)
    spec = fit_feature_spec(train)
    restored = FeatureSpec.from_dict(copy.deepcopy(spec.to_dict()))
    new, _ = make_estate(communities=4, seed=2, injected=2)
    for props in new.node_props:
        if "instance_type" in props:
            props["instance_type"] = "x9.superhuge"  # a category never seen in training
        props["brand_new_property"] = 42  # ignored: not in the spec
    a = build_features(new, spec)
    b = build_features(new, restored)
    assert a.shape == (new.num_nodes, spec.width)
    assert np.array_equal(a, b)
    vm = next(i for i, p in enumerate(new.node_props) if "instance_type" in p)
    cols = [j for j, c in enumerate(spec.columns) if c.startswith("cat:instance_type#")]
    assert a[vm, cols].sum() == 1.0
    assert cols[stable_bucket("instance_type", "x9.superhuge", spec.cat_buckets)] == cols[0] + int(
        np.argmax(a[vm, cols])
    )


def test_continuous_columns_are_robustly_standardised_on_the_training_snapshot() -> None:
    snap, _ = make_estate(communities=4, seed=3)
    spec = fit_feature_spec(snap)
    x = build_features(snap, spec)
    j = spec.columns.index("num:login_count")
    users = snap.node_label == NODE_LABELS.index("User")
    assert abs(float(np.median(x[:, j]))) < 1e-6  # median of all nodes (non-users have 0 → centred too)
    assert np.all(np.abs(x) <= spec.clip)
    assert x[users, j].std() > 0


def test_behaviour_counts_offhours_and_new_peers() -> None:
    snap, injected = make_estate(communities=3, injected=1, seed=4)
    spec = fit_feature_spec(snap)
    spec.center = [0.0] * len(spec.columns)  # read raw values
    spec.scale = [1.0] * len(spec.columns)
    spec.clip = 1e9
    x = build_features(snap, spec)
    i = snap.node_uid.index(injected[0])
    col = spec.columns.index
    # the intruder assumes one role in each of 3 communities, all at night
    assert x[i, col("deg:ASSUMES_ROLE:out")] == pytest.approx(np.log1p(3))
    assert x[i, col("cnt:ASSUMES_ROLE:out")] == pytest.approx(np.log1p(3 * 40.0))
    assert x[i, col("offhours")] == pytest.approx(1.0)
    normal = snap.node_uid.index("aws:user:0/u0")
    assert x[normal, col("offhours")] == pytest.approx(0.0)
    assert x[normal, col("recency")] >= 0
    assert 0.0 <= x[i, col("new_peer_share")] <= 1.0


def test_identifier_like_strings_are_dropped_not_hashed() -> None:
    snap, _ = make_estate(communities=10, seed=5)
    for i, props in enumerate(snap.node_props):
        props["arn"] = f"arn:aws:iam::{i:012d}"
    spec = fit_feature_spec(snap)
    assert "arn" in spec.dropped_properties
    assert not any(c.startswith("cat:arn") for c in spec.columns)


def test_every_column_reads_in_words_with_the_nodes_own_values_instead_of_bucket_numbers() -> None:
    from gnnsec.gnn.features import describe_feature

    snap, _ = make_estate(communities=2, users_per_community=3)
    for i, props in enumerate(snap.node_props):
        props.update({"endpoint": f"db{i % 3}.internal", "tags": ["prod", f"team{i % 2}"], "port": 5432 + i % 2})
    spec = fit_feature_spec(snap)
    node = 0
    words = {name: describe_feature(name, snap, node, spec, z=1.0) for name in spec.columns[: spec.width]}
    assert not any("#" in text for text in words.values()), [t for t in words.values() if "#" in t]
    own = snap.node_props[node]
    mine = f"cat:endpoint#{stable_bucket('endpoint', own['endpoint'], spec.cat_buckets)}"
    assert words[mine] == f"endpoint = '{own['endpoint']}'"
    other = next(n for n in spec.columns if n.startswith("cat:endpoint#") and n != mine)
    lacking = describe_feature(other, snap, node, spec, z=-1.0)
    assert lacking == f"endpoint = '{own['endpoint']}', not what most peers have"
    tag = f"list:tags#{stable_bucket('tags', 'prod', spec.list_buckets)}"
    assert "'prod'" in words[tag]
    assert words["num:port"] == f"port = {own['port']}"
    assert words["deg:ACCESS:out"] == "ACCESS relationships (outgoing)"
