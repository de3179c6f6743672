"""The GNN: features, relational encoder, self-supervised training, detection, checkpoints.

Only this package imports torch-geometric. Its input is a :class:`gnnsec.snapshot.Snapshot`.

What the CLI calls (import the submodules; this package imports nothing heavy on its own)::

    from gnnsec.gnn.pipeline import train_checkpoint, adapt_checkpoint, score_snapshot
    from gnnsec.gnn.checkpoint import save_checkpoint, load_checkpoint, SchemaVersionError
    from gnnsec.gnn.train import TrainConfig            # epochs, lr, mask_rate, gamma, seed, device ...
    from gnnsec.gnn.model import ModelConfig            # kind = rgcn | gcn | gat | sage | mlp, dims, num_bases

    # gnnsec train
    ckpt, result = train_checkpoint(snapshot, TrainConfig(device="auto"), progress=cb)  # cb(EpochStats, max)
    save_checkpoint(path, ckpt)                        # result.epochs: per-epoch losses and val metrics
    # gnnsec train --adapt
    ckpt, result = adapt_checkpoint(load_checkpoint(path), snapshot)
    # gnnsec score
    ckpt = load_checkpoint(path, device="cpu")         # SchemaVersionError names both versions
    out = score_snapshot(ckpt, snapshot, device="auto")
    out.nodes.score / .rank / .anomalous              # calibrated [0,1], rank within label, flag
    out.edge_anomaly                                   # [E] 1 - sigmoid(DistMult), aligned with snapshot edges
    out.snapshot.score                                 # how unusual the whole window is
    # gnnsec explain
    ex = ckpt.detector.explain(out.embeddings, out.nodes, ckpt.spec, uid); ex.reasons()
    # gnnsec feedback (confirmed benign → reference)
    add_benign_reference(ckpt, out.embeddings.subset(rows))   # from gnnsec.gnn.detect

Lower-level pieces: ``features.fit_feature_spec / build_features`` (Snapshot → [N, width ≤ 1024]),
``train.fit(snapshot, config, progress) -> (model, TrainResult, FeatureSpec)``,
``embed.embed(model, snapshot, spec) -> Embeddings``, ``detect.Detector.fit(embeddings) / .score(embeddings)``,
``model.count_parameters / parameter_breakdown / freeze_all_but_adapters``.
"""
