"""The one place that opens Neo4j drivers, decides which server to talk to and applies the schema.

Which server: ``NEO4J_URI`` (with ``NEO4J_USER`` / ``NEO4J_PASSWORD`` / ``NEO4J_DATABASE``) when set,
e.g. the docker-compose container or Aura; otherwise the local server of ``gnnsec db start``
(its ports and stored password). Errors say what to do: check ``NEO4J_PASSWORD``, run
``gnnsec db start``, or set ``NEO4J_URI``.
"""

from __future__ import annotations

from gnnsec import config
from gnnsec.graphdb.driver import apply_schema, open_driver, schema_statements
from gnnsec.graphdb.errors import GraphDBError, Neo4jAuthFailed, Neo4jUnavailable

__all__ = [
    "GraphDBError",
    "Neo4jAuthFailed",
    "Neo4jUnavailable",
    "apply_schema",
    "external_server_configured",
    "open_driver",
    "resolve_settings",
    "schema_statements",
]



def resolve_settings() -> config.Neo4jSettings:
    """Settings from ``NEO4J_*`` when ``NEO4J_URI`` is set, else those of the local server."""
    external = config.EnvSettings.from_env().external_neo4j()
    if external is None:
        from gnnsec.graphdb.local import LocalNeo4j

        return LocalNeo4j().settings()
    if not external.password:
        raise Neo4jUnavailable(
            f"NEO4J_URI is set ({external.uri}) but NEO4J_PASSWORD is not; export the server's password"
        )
    return external


def external_server_configured(timeout: float = 5.0) -> bool:
    """True when ``NEO4J_URI`` is set and a server answers there; gnnsec then never starts its own.

    A server that answers but rejects the password still counts: it exists, the credentials are wrong.
    """
    external = config.EnvSettings.from_env().external_neo4j()
    if external is None:
        return False
    try:
        open_driver(external, connection_timeout=timeout).close()
    except Neo4jAuthFailed:
        return True
    except Neo4jUnavailable:
        return False
    return True
