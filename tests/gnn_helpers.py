"""A small synthetic estate for the GNN tests: communities of accounts with normal behaviour, plus
optionally a few injected users whose connections and properties are anomalous.

Each community is one CloudAccount with users, roles, VMs, IPs and buckets. Normal users assume roles
and authenticate from IPs of their own community during office hours; roles read their community's
buckets. Injected users assume roles and read buckets across many communities, at night, from many IPs,
with MFA off and unusual login counts: anomalous both in structure and in features.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from gnnsec.schema import label_id, relation_id, validate_edge
from gnnsec.snapshot import Snapshot

WINDOW_START = datetime(2024, 3, 4, tzinfo=UTC).timestamp()  # a Monday
WINDOW_END = WINDOW_START + 5 * 86400.0


class _Builder:
    def __init__(self) -> None:
        self.uids: list[str] = []
        self.labels: list[int] = []
        self.label_names: list[str] = []
        self.props: list[dict[str, Any]] = []
        self.edges: list[tuple[int, int, int, float, float, float, list[str]]] = []

    def node(self, label: str, uid: str, **props: Any) -> int:
        self.uids.append(uid)
        self.labels.append(label_id(label))
        self.label_names.append(label)
        self.props.append({"uid": uid, "name": uid.rsplit("/", 1)[-1], **props})
        return len(self.uids) - 1

    def edge(self, s: int, rel: str, o: int, count: float, first: float, last: float, actions: list[str]) -> None:
        validate_edge(self.label_names[s], rel, self.label_names[o])
        self.edges.append((s, relation_id(rel), o, count, first, last, actions))

    def snapshot(self, meta: dict[str, Any]) -> Snapshot:
        e = self.edges
        return Snapshot(
            node_uid=self.uids,
            node_label=np.asarray(self.labels, dtype=np.int64),
            node_props=self.props,
            edge_index=np.asarray([[x[0] for x in e], [x[2] for x in e]], dtype=np.int64).reshape(2, -1),
            edge_type=np.asarray([x[1] for x in e], dtype=np.int64),
            edge_count=np.asarray([x[3] for x in e], dtype=np.float64),
            edge_first_seen=np.asarray([x[4] for x in e], dtype=np.float64),
            edge_last_seen=np.asarray([x[5] for x in e], dtype=np.float64),
            edge_window=[None] * len(e),
            edge_actions=[x[6] for x in e],
            window_start=WINDOW_START,
            window_end=WINDOW_END,
            meta=meta,
        )


def _office_time(rng: np.random.Generator) -> float:
    day = rng.integers(0, 5)
    return WINDOW_START + day * 86400.0 + rng.uniform(9, 17) * 3600.0


def _night_time(rng: np.random.Generator) -> float:
    day = rng.integers(0, 5)
    return WINDOW_START + day * 86400.0 + rng.uniform(0, 4) * 3600.0


def make_estate(
    communities: int = 6,
    users_per_community: int = 8,
    injected: int = 0,
    seed: int = 0,
    with_labels: bool = False,
) -> tuple[Snapshot, list[str]]:
    """A synthetic estate and the uids of the injected (anomalous) users."""
    rng = np.random.default_rng(seed)
    b = _Builder()
    groups: list[dict[str, list[int]]] = []
    for c in range(communities):
        acct = b.node("CloudAccount", f"aws:account:{100000 + c}", cloud="aws", region="eu-west-1")
        g: dict[str, list[int]] = {"account": [acct], "user": [], "role": [], "vm": [], "ip": [], "bucket": []}
        for k in range(3):
            g["role"].append(b.node("Role", f"aws:role:{c}/app{k}", cloud="aws", max_session=3600 * (k + 1)))
        for k in range(3):
            vm = b.node("VM", f"aws:vm:{c}-{k}", cloud="aws", instance_type=rng.choice(["t3.small", "m5.large"]))
            ip = b.node("IP", f"ip:10.{c}.0.{k}", cloud="aws", private=True)
            g["vm"].append(vm)
            g["ip"].append(ip)
            b.edge(acct, "CONTAINS", vm, 1, WINDOW_START, WINDOW_END, [])
            b.edge(vm, "HAS_IP", ip, 1, WINDOW_START, WINDOW_END, [])
        for k in range(2):
            bucket = b.node("Bucket", f"aws:s3:bucket-{c}-{k}", cloud="aws", encrypted=True, public=False)
            g["bucket"].append(bucket)
            b.edge(acct, "CONTAINS", bucket, 1, WINDOW_START, WINDOW_END, [])
        for role in g["role"]:
            b.edge(acct, "CONTAINS", role, 1, WINDOW_START, WINDOW_END, [])
            for bucket in g["bucket"]:
                b.edge(role, "GRANTS_ACCESS", bucket, 1, WINDOW_START, WINDOW_END, [])
                t = _office_time(rng)
                b.edge(role, "ACCESS", bucket, float(rng.integers(5, 20)), t, t + 3600, ["s3:GetObject"])
        for k in range(users_per_community):
            user = b.node(
                "User",
                f"aws:user:{c}/u{k}",
                cloud="aws",
                mfa_enabled=True,
                login_count=int(rng.integers(15, 30)),
                groups=["dev"] if k % 2 else ["ops"],
                first_seen="2023-06-01T00:00:00Z",
            )
            g["user"].append(user)
            b.edge(acct, "CONTAINS", user, 1, WINDOW_START, WINDOW_END, [])
            for role in rng.choice(g["role"], size=2, replace=False):
                t = _office_time(rng)
                b.edge(user, "ASSUMES_ROLE", int(role), float(rng.integers(2, 8)), t, t + 7200, ["sts:AssumeRole"])
            t = _office_time(rng)
            b.edge(user, "AUTHENTICATES_FROM", int(rng.choice(g["ip"])), float(rng.integers(3, 10)), t, t + 3600, [])
        groups.append(g)

    injected_uids: list[str] = []
    for k in range(injected):
        c = k % communities
        user = b.node(
            "User",
            f"aws:user:{c}/intruder{k}",
            cloud="aws",
            mfa_enabled=False,
            login_count=int(rng.integers(300, 500)),
            groups=["contractors", "break-glass"],
            first_seen="2024-03-08T00:00:00Z",
        )
        injected_uids.append(b.uids[user])
        b.edge(groups[c]["account"][0], "CONTAINS", user, 1, WINDOW_START, WINDOW_END, [])
        for other in [groups[int(j)] for j in rng.choice(communities, size=min(3, communities), replace=False)]:
            t = _night_time(rng)
            role = int(rng.choice(other["role"]))
            b.edge(user, "ASSUMES_ROLE", role, 40.0, t, t + 600, ["sts:AssumeRole", "sts:GetFederationToken"])
            b.edge(user, "AUTHENTICATES_FROM", int(rng.choice(other["ip"])), 30.0, t, t + 600, [])
            for vm in other["vm"]:
                b.edge(user, "START_VM", vm, 5.0, t, t + 300, ["ec2:RunInstances"])

    meta: dict[str, Any] = {}
    if with_labels:
        labels = {uid: 0 for uid, name in zip(b.uids, b.label_names, strict=True) if name == "User"}
        labels.update({uid: 1 for uid in injected_uids})
        meta["labels"] = labels
    return b.snapshot(meta), injected_uids



def tiny_train_config(epochs: int = 30, **overrides: Any) -> Any:
    """A TrainConfig small enough for tests on 2 shared cores."""
    from gnnsec.gnn.model import ModelConfig
    from gnnsec.gnn.train import TrainConfig

    model = ModelConfig(hidden_dim=32, out_dim=16, decoder_hidden_dim=32, num_bases=4)
    return TrainConfig(model=model, epochs=epochs, **{"device": "cpu", **overrides})


@pytest.fixture(autouse=False)
def single_thread() -> Iterator[None]:
    """Tiny graphs run far faster on one thread than on two contended ones."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
