"""The one place that opens Neo4j drivers, decides which server to talk to and applies the schema.

Which server: ``NEO4J_URI`` (with ``NEO4J_USER`` / ``NEO4J_PASSWORD`` / ``NEO4J_DATABASE``) when set,
e.g. the docker-compose container or Aura; otherwise the local server of ``gnnsec db start``
(its ports and stored password). Errors say what to do: check ``NEO4J_PASSWORD``, run
``gnnsec db start``, or set ``NEO4J_URI``.
"""

from __future__ import annotations

import re
from pathlib import Path

import neo4j
import neo4j.exceptions

from gnnsec import config
from gnnsec.graphdb.driver import open_driver
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

_LINE_COMMENT = re.compile(r"^\s*//.*$", re.MULTILINE)  # whole-line comments only: `//` may sit in a string


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


def schema_file() -> Path | None:
    """``cypher/schema.cypher`` of a source checkout, or None when installed without it."""
    candidate = Path(__file__).resolve().parents[2] / "cypher" / "schema.cypher"
    return candidate if candidate.is_file() else None


def schema_statements() -> list[str]:
    """The statements of ``cypher/schema.cypher`` (or ``schema_cypher()`` when installed), comments dropped."""
    path = schema_file()
    if path is not None:
        text = path.read_text(encoding="utf-8")
    else:
        from gnnsec.schema import schema_cypher

        text = schema_cypher()
    without_comments = _LINE_COMMENT.sub("", text)
    return [statement.strip() for statement in without_comments.split(";") if statement.strip()]


def apply_schema(driver: neo4j.Driver, database: str = "neo4j", *, await_indexes_s: int = 300) -> int:
    """Create every constraint and index (idempotent: ``IF NOT EXISTS``) and wait until they are online.

    Returns the number of statements run.
    """
    statements = schema_statements()
    with driver.session(database=database) as session:
        for statement in statements:
            try:
                session.run(statement).consume()
            except neo4j.exceptions.Neo4jError as exc:
                raise GraphDBError(f"schema statement failed: {statement}\n{exc.message}") from exc
        session.run("CALL db.awaitIndexes($seconds)", seconds=await_indexes_s).consume()
    return len(statements)
