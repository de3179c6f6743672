"""The leaf of the graph layer: a connected driver with errors that say how to fix them, and the schema
applied to it. Its own module because the local server (``local``, to set its password and schema) and
everything else (``session``) both need it, and ``session`` itself needs the server's settings; with it here
the two never import each other.
"""

from __future__ import annotations

import re
from pathlib import Path

import neo4j
import neo4j.exceptions

from gnnsec import config
from gnnsec.graphdb.errors import GraphDBError, Neo4jAuthFailed, Neo4jUnavailable


def open_driver(settings: config.Neo4jSettings, *, connection_timeout: float = 15.0,
                password_env_var: str | None = None, external: bool | None = None) -> neo4j.Driver:
    """A connected driver (``verify_connectivity`` passed), or an error that says how to fix it.

    ``password_env_var`` names the variable the password came from and ``external`` says whether the server is
    one the user named (default: whether ``NEO4J_URI`` is set); both only shape the messages. The driver's own
    exception stays chained (``--traceback`` shows it).
    """
    driver = neo4j.GraphDatabase.driver(
        settings.uri,
        auth=(settings.user, settings.password),
        connection_timeout=connection_timeout,
        # Hunts and exports name every schema type, some absent from a given graph: the server's
        # "unknown relationship type" notices would flood the logs without telling users anything.
        notifications_min_severity="OFF",
    )
    external = bool(config.EnvSettings.from_env().neo4j_uri) if external is None else external
    secret = password_env_var or "NEO4J_PASSWORD"
    try:
        driver.verify_connectivity()
    except neo4j.exceptions.AuthError as exc:
        driver.close()
        raise Neo4jAuthFailed(
            f"Neo4j at {settings.uri} rejected user {settings.user!r} with the configured password; "
            f"check {secret} (and --neo4j-user / NEO4J_USER)"
            + ("" if external or password_env_var else
               ", or unset it to use the password stored by `gnnsec db start`")
        ) from exc
    except (neo4j.exceptions.DriverError, neo4j.exceptions.Neo4jError, OSError) as exc:
        driver.close()
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise Neo4jUnavailable(
            f"cannot reach Neo4j at {settings.uri} ({reason}). "
            + ("Check that the server runs there and that --neo4j-uri / NEO4J_URI names it" if external else
               f"Start the local server with `gnnsec db start`, or point --neo4j-uri / NEO4J_URI (and {secret}) "
               "at a running server")
        ) from exc
    return driver


_LINE_COMMENT = re.compile(r"^\s*//.*$", re.MULTILINE)  # whole-line comments only: `//` may sit in a string


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
