"""Opening a connected driver with errors that say how to fix them: its own module because the local
server (``local``, to set its password) and everything else (``session``) both need it, and ``session``
itself needs the server's settings; with it here the two no longer import each other.
"""

from __future__ import annotations

import neo4j

from gnnsec import config
from gnnsec.graphdb.errors import Neo4jAuthFailed, Neo4jUnavailable


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
