"""A Neo4j for benchmarks: the configured one (``NEO4J_URI``), else a throw-away local server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def neo4j_driver(tmp: Path, heap: str = "2g", pagecache: str = "1g") -> Iterator[tuple[Any, str | None]]:
    """Yield ``(driver, database)``; a server started here is stopped on exit."""
    from gnnsec import config
    from gnnsec.graphdb import session
    from gnnsec.graphdb.local import LocalNeo4j, free_ports

    if os.environ.get("NEO4J_URI"):
        with _connected(session.resolve_settings()) as connected:
            yield connected
        return
    bolt, http = free_ports(2)
    server = LocalNeo4j(home=tmp / "neo4j", bolt_port=bolt, http_port=http, heap=heap, pagecache=pagecache,
                        cache=config.cache_dir())
    server.start()
    try:
        with _connected(server.settings()) as connected:
            yield connected
    finally:
        server.stop()


@contextmanager
def _connected(settings: Any) -> Iterator[tuple[Any, str | None]]:
    from gnnsec.graphdb import session

    driver = session.open_driver(settings)
    session.apply_schema(driver, settings.database)
    try:
        yield driver, settings.database
    finally:
        driver.close()
