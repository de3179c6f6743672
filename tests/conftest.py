"""Shared fixtures: one throw-away Neo4j for the whole test session, through the same code as `gnnsec db start`.

* ``neo4j_server``: a ``LocalNeo4j`` on free loopback ports in a temporary home, sharing the jar
  cache (``config.cache_dir()``) so the Maven download happens once per machine. It starts only
  when a test asks for it (pure unit tests never pay for it) and stops when the session ends.
  With ``NEO4J_URI`` set, that server is used instead and this fixture yields ``None``.
* ``neo4j_settings``, ``driver`` (schema applied) and ``clean_db`` (empty graph, constraints kept)
  build on it. Mark tests that use them with ``@pytest.mark.integration``.

Memory of the test server: ``GNNSEC_TEST_HEAP`` (default 1g) and ``GNNSEC_TEST_PAGECACHE`` (256m).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from types import FrameType

import neo4j
import pytest

from gnnsec import config
from gnnsec.graphdb.local import LocalNeo4j, free_ports
from gnnsec.graphdb.session import apply_schema, open_driver, resolve_settings


def _throwaway_server(home: os.PathLike[str], *, heap: str, pagecache: str) -> LocalNeo4j:
    """A ``LocalNeo4j`` in ``home`` on fresh free ports, reusing the shared jar cache (not started)."""
    bolt_port, http_port = free_ports(2)
    return LocalNeo4j(
        home=home,
        bolt_port=bolt_port,
        http_port=http_port,
        heap=heap,
        pagecache=pagecache,
        cache=config.cache_dir(),
    )


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    """A CI runner's SIGTERM becomes KeyboardInterrupt, so fixture teardown still stops Neo4j."""
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNeo4j | None]:
    """The session's local Neo4j, or None when ``NEO4J_URI`` names an external server."""
    if os.environ.get("NEO4J_URI"):
        yield None
        return
    server = _throwaway_server(
        tmp_path_factory.mktemp("neo4j-session") / "neo4j",
        heap=os.environ.get("GNNSEC_TEST_HEAP", "1g"),
        pagecache=os.environ.get("GNNSEC_TEST_PAGECACHE", "256m"),
    )
    previous_handler = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous_handler)


@pytest.fixture
def throwaway_server() -> Callable[..., LocalNeo4j]:
    """Factory for extra servers: ``throwaway_server(home, heap=..., pagecache=...)``; tests start/stop them."""
    return _throwaway_server


@pytest.fixture(scope="session")
def neo4j_settings(neo4j_server: LocalNeo4j | None) -> config.Neo4jSettings:
    """How to reach the session's Neo4j (the local throw-away one, or ``NEO4J_*``)."""
    return resolve_settings() if neo4j_server is None else neo4j_server.settings()


@pytest.fixture(scope="session")
def driver(neo4j_settings: config.Neo4jSettings) -> Iterator[neo4j.Driver]:
    """A session-wide driver with the master schema applied."""
    connected = open_driver(neo4j_settings)
    try:
        apply_schema(connected, neo4j_settings.database)
        yield connected
    finally:
        connected.close()


@pytest.fixture
def clean_db(driver: neo4j.Driver, neo4j_settings: config.Neo4jSettings) -> neo4j.Driver:
    """The driver over an empty graph: every node and relationship deleted, constraints and indexes kept."""
    with driver.session(database=neo4j_settings.database) as session:
        session.run("MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
    return driver
