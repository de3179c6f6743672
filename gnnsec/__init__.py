"""gnnsec: graph-native threat detection for multi-cloud estates.

Data flows one way: ``ingest`` adapters → ``graphdb.loader`` → Neo4j → ``graphdb.export`` →
``gnn`` (features, model, training, detection) → ``graphdb.writeback`` → Neo4j.
"""

__version__ = "0.1.0"
