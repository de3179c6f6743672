r"""Scoring maths: node, edge and snapshot anomaly scores, calibration, explanations.

Node anomaly (MAGIC's entity-level detection, plus our reconstruction signal). For a node i of label L,

.. math::
    d_i = \frac{\frac1k\sum_{j\in kNN_L(z_i)} \lVert z_i - z_j\rVert}{\bar d_L},\qquad
    \rho_i = \frac{e_i - \mu_L}{\sigma_L},\qquad
    s_i = d_i + w\,\rho_i

where kNN runs over the benign *reference* embeddings of label L (training embeddings, subsampled to a
cap), :math:`\bar d_L` is the mean kNN distance within the reference set (MAGIC's standardisation, so
labels with loose and tight clusters compare), :math:`e_i` the masked feature-reconstruction error and
:math:`\mu_L, \sigma_L` its reference mean and deviation. A reference node never counts as its own
neighbour (matched by uid), so a training node that reappears is judged against the others; nodes added
by analyst feedback do match themselves.

Calibration: :math:`\hat F_L(s_i)`, the empirical CDF of :math:`s` over a held-out *calibration* part of
the benign reference (disjoint from the kNN reference, never the data being judged): 0.99 means "more
unusual than 99 % of normal nodes of this label". Labels with too little reference fall back to the
pooled reference of all labels.

Edge anomaly: :math:`1-\sigma(f(s,r,o))` with DistMult's f.

Snapshot score: a benign node exceeds the ``1 - top_fraction`` quantile of its label's calibration scores
with probability :math:`p_i = \max(\mathrm{top\_fraction}, 1/(n_{cal}+1))` (with few calibration scores
that quantile is about their maximum). The observed count k is compared with that Poisson-binomial,
:math:`\Phi\big((k - \sum_i p_i)/\sqrt{\sum_i p_i(1-p_i)}\big)`, so a normal window scores about 0.5 or
below and a window with many unusual nodes approaches 1, whatever its size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from gnnsec.errors import InputError, StateError
from gnnsec.gnn.embed import Embeddings
from gnnsec.gnn.features import FeatureSpec
from gnnsec.schema import NODE_LABELS, NUM_RELATIONS, RELATION_NAMES

VIEW_ROWS = 1 << 16
"""Nodes put into the kNN view at a time when scoring: a label's whole view ([n, d + F] float32, with
its temporaries) was several GB on a million-node graph."""

POOLED = "*"
"""Key of the reference that pools all labels, used for labels with too little reference of their own."""


@dataclass(slots=True)
class DetectorConfig:
    k: int = 10
    reference_cap: int = 5000  # per label, reference and calibration together
    calibration_fraction: float = 0.3
    min_reference: int = 5  # below this a label uses the pooled reference
    recon_weight: float = 1.0
    feature_weight: float = 3.0
    """Weight of the node's own standardised features next to its embedding in the kNN view (0: embedding
    only). The embedding alone lost the per-node signal that feature-only baselines keep; 3 was chosen on
    a development estate (synth seed 8, time split) among 0/1/3/10, never on the reported one
    (docs/evaluation.md)."""
    threshold: float = 0.99  # calibrated score above which a node is flagged ``anomalous``
    top_fraction: float = 0.01
    seed: int = 0
    chunk: int = 4096


@dataclass(slots=True)
class _Reference:
    z: torch.Tensor  # [M, d]
    uids: list[str]
    from_training: list[bool]  # training entries never match their own uid; analyst feedback entries do
    mean_knn: float
    recon_mean: float
    recon_std: float
    calibration: np.ndarray  # sorted raw scores of the held-out benign part
    feature_mean: np.ndarray  # [width]
    feature_std: np.ndarray
    z_scale: float = 1.0  # mean embedding norm of the reference: the embedding block of the view has norm ≈ 1


@dataclass(slots=True)
class NodeScores:
    raw: np.ndarray  # s_i
    score: np.ndarray  # calibrated, [0, 1]
    knn: np.ndarray  # d_i
    recon_z: np.ndarray  # rho_i
    rank: np.ndarray  # 1 = most anomalous within its label
    anomalous: np.ndarray  # bool: raw above the ``threshold`` quantile of the label's benign calibration
    exceeds_top: np.ndarray  # bool: raw above the ``1 - top_fraction`` quantile (snapshot score input)
    null_rate: np.ndarray  # P(exceeds_top) for a benign node: max(top_fraction, 1/(n_cal + 1)) of its label


@dataclass(slots=True)
class SnapshotScore:
    score: float  # [0, 1]
    top_mean: float  # mean calibrated score of the top ``top_fraction`` nodes
    exceedances: int  # nodes above 1 - top_fraction
    expected: float  # what benign data would give
    num_nodes: int


@dataclass(slots=True)
class Explanation:
    uid: str
    label: str
    score: float
    unusual_edges: list[tuple[str, str, str, float]] = field(default_factory=list)  # rel, direction, peer, anomaly
    pulling_neighbours: list[tuple[str, float]] = field(default_factory=list)  # peer uid, pull
    unusual_features: list[tuple[str, float]] = field(default_factory=list)  # column, z vs same-label peers

    def reasons(self, limit: int = 5) -> list[str]:
        """Short human strings, written to the node as ``anomaly_reasons``."""
        out = [f"unusual {rel} {direction} {peer} ({a:.2f})" for rel, direction, peer, a in self.unusual_edges[:2]]
        out += [f"{name} ({z:+.1f} sd from {self.label} peers)" for name, z in self.unusual_features[:2]]
        out += [f"pulled by neighbour {peer}" for peer, _ in self.pulling_neighbours[:1]]
        return out[:limit]


def _knn_mean_distance(
    query: torch.Tensor, query_uids: list[str], ref: _Reference, k: int, chunk: int
) -> torch.Tensor:
    """Mean distance of each query row to its k nearest reference rows, the same uid excluded."""
    if query.shape[0] == 0:
        return torch.zeros(0)
    position = {uid: i for i, (uid, own_excluded) in enumerate(zip(ref.uids, ref.from_training, strict=True))
                if own_excluded}
    own = torch.tensor([position.get(uid, -1) for uid in query_uids], dtype=torch.long)
    out = []
    for start in range(0, query.shape[0], chunk):
        q = query[start : start + chunk]
        dist = torch.cdist(q, ref.z)
        rows = own[start : start + chunk]
        hit = rows >= 0
        dist[torch.nonzero(hit).flatten(), rows[hit]] = float("inf")
        kk = min(k, ref.z.shape[0] - (1 if bool(hit.any()) else 0))
        kk = max(kk, 1)
        nearest = torch.topk(dist, kk, dim=1, largest=False).values
        nearest = torch.where(torch.isinf(nearest), torch.nan, nearest)
        out.append(torch.nan_to_num(nearest.nanmean(dim=1), nan=0.0))
    return torch.cat(out)


class Detector:
    """Benign reference sets per label, with everything calibration needs; plain state for checkpoints."""

    def __init__(self, config: DetectorConfig, references: dict[str, _Reference]) -> None:
        self.config = config
        self.references = references

    # ---- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(
        cls, benign: Embeddings, config: DetectorConfig | None = None, calibration_uids: list[str] | None = None
    ) -> Detector:
        """Build the per-label references from benign embeddings (normally the training snapshot's).

        ``calibration_uids`` should be the training run's held-out validation nodes
        (``TrainResult.val_node_uids``): the model never reconstructed them, so their scores are what
        unseen benign nodes look like. Without them a random ``calibration_fraction`` is held out, which
        is biased towards low scores when those nodes were trained on.
        """
        config = config or DetectorConfig()
        rng = np.random.default_rng(config.seed)
        held_out = set(calibration_uids or ())
        is_cal = np.array([uid in held_out for uid in benign.node_uid], dtype=bool)
        groups: dict[str, np.ndarray] = {POOLED: np.arange(len(benign.node_uid))}
        for lid in np.unique(benign.node_label):
            groups[NODE_LABELS[int(lid)]] = np.nonzero(benign.node_label == lid)[0]
        references: dict[str, _Reference] = {}
        detector = cls(config, references)
        for name, rows in groups.items():
            rows = rng.permutation(rows)
            if held_out:
                cal, ref = rows[is_cal[rows]][: config.reference_cap], rows[~is_cal[rows]][: config.reference_cap]
            else:
                rows = rows[: config.reference_cap]
                n_cal = round(config.calibration_fraction * rows.size)
                cal, ref = rows[:n_cal], rows[n_cal:]
            if ref.size < config.min_reference or cal.size < 1:
                continue
            rows = np.concatenate([ref, cal])
            references[name] = detector._reference(benign, ref, rows)
            cal_uids = [benign.node_uid[i] for i in cal]
            view = detector._view(benign.z[cal], benign.features[cal], references[name])
            raw = detector._raw(name, view, benign.recon_error[cal], cal_uids)
            references[name].calibration = np.sort(raw)
        if POOLED not in references:
            raise StateError(
                f"too few benign nodes for a reference: need at least {config.min_reference + 1}, "
                f"got {len(benign.node_uid)}"
            )
        return detector

    def _reference(self, emb: Embeddings, ref_rows: np.ndarray, all_rows: np.ndarray) -> _Reference:
        uids = [emb.node_uid[i] for i in ref_rows]
        norms = np.linalg.norm(emb.z[ref_rows], axis=1)
        reference = _Reference(
            z=torch.zeros(0),
            uids=uids,
            from_training=[True] * len(uids),
            mean_knn=1.0,
            recon_mean=float(emb.recon_error[ref_rows].mean()),
            recon_std=float(emb.recon_error[ref_rows].std()) or 1.0,
            calibration=np.zeros(0),
            feature_mean=emb.features[all_rows].mean(axis=0),
            feature_std=emb.features[all_rows].std(axis=0),
            z_scale=float(norms.mean()) if norms.size and float(norms.mean()) > 1e-6 else 1.0,
        )
        z = self._view(emb.z[ref_rows], emb.features[ref_rows], reference)
        reference.z = z
        within = _knn_mean_distance(z, uids, reference, self.config.k, self.config.chunk)
        reference.mean_knn = float(within.mean()) if within.numel() and float(within.mean()) > 1e-12 else 1.0
        return reference

    def add_reference(self, benign: Embeddings) -> None:
        """Analyst-confirmed benign nodes join the kNN reference (MAGIC's model adaptation).

        Calibration stays on the original held-out set, so scores stay comparable across feedback;
        the reference stays capped by random subsampling. Unlike training entries, a feedback entry may
        match its own uid: "this node, as it looks now, is normal" is exactly what the analyst said.
        """
        rng = np.random.default_rng(self.config.seed + len(benign.node_uid))
        for name, ref in list(self.references.items()):
            rows = np.arange(len(benign.node_uid)) if name == POOLED else np.nonzero(
                benign.node_label == NODE_LABELS.index(name)
            )[0]
            if rows.size == 0:
                continue
            z = torch.cat([ref.z, self._view(benign.z[rows], benign.features[rows], ref)])
            uids = ref.uids + [benign.node_uid[i] for i in rows]
            origin = ref.from_training + [False] * rows.size
            if z.shape[0] > self.config.reference_cap:
                keep = np.sort(rng.permutation(z.shape[0])[: self.config.reference_cap])
                z, uids, origin = z[torch.from_numpy(keep)], [uids[i] for i in keep], [origin[i] for i in keep]
            ref.z, ref.uids, ref.from_training = z, uids, origin
            within = _knn_mean_distance(z, uids, ref, self.config.k, self.config.chunk)
            ref.mean_knn = float(within.mean()) if float(within.mean()) > 1e-12 else 1.0

    def _view(self, z: np.ndarray, features: np.ndarray, ref: _Reference) -> torch.Tensor:
        """The space kNN works in: ``[z / |z̄|, w · clip(f̃, ±10) / √F]`` with f̃ the features standardised
        against the reference, so a node is near normal only if both its embedding (its neighbourhood)
        and its own features are."""
        block = torch.from_numpy(np.asarray(z, dtype=np.float32)) / ref.z_scale
        if self.config.feature_weight <= 0 or features.shape[1] == 0:
            return block
        std = np.where(ref.feature_std > 1e-6, ref.feature_std, 1.0)
        standard = np.clip((np.asarray(features, dtype=np.float32) - ref.feature_mean) / std, -10.0, 10.0)
        scaled = self.config.feature_weight * standard / math.sqrt(features.shape[1])
        return torch.cat([block, torch.from_numpy(scaled.astype(np.float32))], dim=1)

    # ---- scoring ---------------------------------------------------------------------------
    def _reference_for(self, label_name: str) -> tuple[str, _Reference]:
        name = label_name if label_name in self.references else POOLED
        return name, self.references[name]

    def _raw(self, name: str, z: torch.Tensor, recon: np.ndarray, uids: list[str]) -> np.ndarray:
        ref = self.references[name]
        d = _knn_mean_distance(z.float(), uids, ref, self.config.k, self.config.chunk).numpy() / ref.mean_knn
        rho = (recon - ref.recon_mean) / ref.recon_std
        return d + self.config.recon_weight * rho

    def score(self, emb: Embeddings) -> NodeScores:
        """Calibrated node anomaly scores for every node of ``emb``."""
        n = len(emb.node_uid)
        raw, calibrated, knn, recon_z = (np.zeros(n) for _ in range(4))
        rank = np.zeros(n, dtype=np.int64)
        anomalous, exceeds = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        null_rate = np.zeros(n)
        for lid in np.unique(emb.node_label):
            rows = np.nonzero(emb.node_label == lid)[0]
            _, ref = self._reference_for(NODE_LABELS[int(lid)])
            d = np.concatenate([
                _knn_mean_distance(self._view(emb.z[part], emb.features[part], ref).float(),
                                   [emb.node_uid[i] for i in part], ref, self.config.k, self.config.chunk).numpy()
                for part in np.array_split(rows, max(1, math.ceil(rows.size / VIEW_ROWS)))
            ]) / ref.mean_knn
            rho = (emb.recon_error[rows] - ref.recon_mean) / ref.recon_std
            s = d + self.config.recon_weight * rho
            raw[rows], knn[rows], recon_z[rows] = s, d, rho
            calibrated[rows] = np.searchsorted(ref.calibration, s, side="right") / (ref.calibration.size + 1)
            order = np.argsort(-s, kind="stable")
            rank[rows[order]] = np.arange(1, rows.size + 1)
            # Quantiles interpolate between calibration scores, so "above the benign 99th percentile" is
            # reachable even when the calibration set has fewer than 100 nodes (the ECDF tops out at n/(n+1)).
            anomalous[rows] = s > np.quantile(ref.calibration, self.config.threshold)
            exceeds[rows] = s > np.quantile(ref.calibration, 1.0 - self.config.top_fraction)
            # With n calibration scores the upper quantile is about their maximum, which a new benign
            # node exceeds with probability 1/(n+1): the null rate can't be below that.
            null_rate[rows] = max(self.config.top_fraction, 1.0 / (ref.calibration.size + 1))
        return NodeScores(raw, calibrated, knn, recon_z, rank, anomalous, exceeds, null_rate)

    def snapshot_score(self, scores: NodeScores) -> SnapshotScore:
        """How unusual the whole window is (binomial excess over the benign exceedance rate)."""
        n = scores.score.size
        p = self.config.top_fraction
        k = int(scores.exceeds_top.sum())
        top = max(1, math.ceil(p * n))
        top_mean = float(np.sort(scores.score)[-top:].mean()) if n else 0.0
        expected = float(scores.null_rate.sum())
        sd = math.sqrt(max(float((scores.null_rate * (1 - scores.null_rate)).sum()), 1e-12))
        z = (k - expected) / sd
        return SnapshotScore(0.5 * (1 + math.erf(z / math.sqrt(2))), top_mean, k, expected, n)

    # ---- explanations ----------------------------------------------------------------------
    def explain(self, emb: Embeddings, scores: NodeScores, spec: FeatureSpec, uid: str, top: int = 5) -> Explanation:
        """Why ``uid`` scored as it did: its least plausible relationships, the neighbours whose embeddings
        deviate from normal in the same direction as the node's, and the features furthest from its peers."""
        try:
            i = emb.node_uid.index(uid)
        except ValueError as exc:
            raise InputError(f"{uid!r} is not in the scored snapshot") from exc
        label = NODE_LABELS[int(emb.node_label[i])]
        out = Explanation(uid=uid, label=label, score=float(scores.score[i]))

        src, dst = emb.edge_index
        incident = np.nonzero((src == i) | (dst == i))[0]
        anomaly = edge_anomaly(emb.edge_logit[incident])
        for e in incident[np.argsort(-anomaly, kind="stable")][:top]:
            outgoing = src[e] == i
            peer = emb.node_uid[int(dst[e] if outgoing else src[e])]
            rel = RELATION_NAMES[int(emb.edge_type[e]) % NUM_RELATIONS]
            out.unusual_edges.append((rel, "to" if outgoing else "from", peer, float(edge_anomaly(emb.edge_logit[e]))))

        _, ref = self._reference_for(label)
        zi = self._view(emb.z[i : i + 1], emb.features[i : i + 1], ref)
        dist = torch.cdist(zi, ref.z)[0]
        centre = ref.z[torch.topk(dist, min(self.config.k, ref.z.shape[0]), largest=False).indices].mean(0)
        direction = zi[0] - centre
        peers = np.unique(np.concatenate([dst[src == i], src[dst == i]]))
        if peers.size and float(direction.norm()) > 0:
            offsets = self._view(emb.z[peers], emb.features[peers], ref) - centre
            pull = (offsets @ direction / direction.norm()).numpy()
            for j in np.argsort(-pull, kind="stable")[:top]:
                if pull[j] > 0:
                    out.pulling_neighbours.append((emb.node_uid[int(peers[j])], float(pull[j])))

        std = np.where(ref.feature_std > 1e-6, ref.feature_std, 1.0)
        zf = (emb.features[i] - ref.feature_mean) / std
        columns = spec.columns[: spec.width]
        for j in np.argsort(-np.abs(zf), kind="stable")[:top]:
            if abs(zf[j]) > 0:
                out.unusual_features.append((columns[j], float(zf[j])))
        return out

    # ---- persistence (plain types and tensors only, so torch.load(weights_only=True) works) -----
    def to_state(self) -> dict[str, Any]:
        return {
            "config": {f: getattr(self.config, f) for f in DetectorConfig.__dataclass_fields__},
            "references": {
                name: {
                    "z": ref.z.contiguous(),
                    "uids": list(ref.uids),
                    "from_training": list(ref.from_training),
                    "mean_knn": ref.mean_knn,
                    "recon_mean": ref.recon_mean,
                    "recon_std": ref.recon_std,
                    "calibration": torch.from_numpy(np.ascontiguousarray(ref.calibration, dtype=np.float64)),
                    "feature_mean": torch.from_numpy(np.ascontiguousarray(ref.feature_mean, dtype=np.float32)),
                    "feature_std": torch.from_numpy(np.ascontiguousarray(ref.feature_std, dtype=np.float32)),
                    "z_scale": ref.z_scale,
                }
                for name, ref in self.references.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Detector:
        references = {
            name: _Reference(
                z=r["z"].float().cpu(),
                uids=list(r["uids"]),
                from_training=[bool(v) for v in r["from_training"]],
                mean_knn=float(r["mean_knn"]),
                recon_mean=float(r["recon_mean"]),
                recon_std=float(r["recon_std"]),
                calibration=r["calibration"].cpu().numpy(),
                feature_mean=r["feature_mean"].cpu().numpy(),
                feature_std=r["feature_std"].cpu().numpy(),
                z_scale=float(r.get("z_scale", 1.0)),
            )
            for name, r in state["references"].items()
        }
        return cls(DetectorConfig(**state["config"]), references)


def edge_anomaly(logits: np.ndarray | float) -> np.ndarray:
    """1 − σ(f(s, r, o)): near 1 for relationships the model finds implausible."""
    return 1.0 / (1.0 + np.exp(np.asarray(logits, dtype=np.float64)))


class _HasDetector(Protocol):
    detector: Detector | None


def add_benign_reference(checkpoint: _HasDetector, embeddings: Embeddings) -> _HasDetector:
    """Add analyst-confirmed benign embeddings to a checkpoint's reference set (feedback loop)."""
    if checkpoint.detector is None:
        raise StateError("this checkpoint has no detector; train it with gnnsec train first")
    checkpoint.detector.add_reference(embeddings)
    return checkpoint
