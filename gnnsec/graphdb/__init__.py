"""Everything that talks to Neo4j: the local server (``local``), drivers and schema (``session``),
the loader, the exporter and the score write-back.

Only this package imports the neo4j driver. Importing the package itself stays cheap (no driver,
no subprocess); the submodules load on use.
"""

from gnnsec.graphdb.errors import GraphDBError, Neo4jAuthFailed, Neo4jServerError, Neo4jUnavailable

__all__ = ["GraphDBError", "Neo4jAuthFailed", "Neo4jServerError", "Neo4jUnavailable"]
