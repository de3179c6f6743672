"""A Neo4j for benchmarks: the configured one (``NEO4J_URI``), else a throw-away local server."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _free_ports(count: int) -> list[int]:
    probes = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind(("127.0.0.1", 0))
            probes.append(probe)
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@contextmanager
def neo4j_driver(tmp: Path, heap: str = "2g", pagecache: str = "1g") -> Iterator[tuple[Any, str | None]]:
    """Yield ``(driver, database)``; a server started here is stopped on exit."""
    from gnnsec import config
    from gnnsec.graphdb import session
    from gnnsec.graphdb.server import LocalNeo4j

    if os.environ.get("NEO4J_URI"):
        settings = session.resolve_settings()
        driver = session.open_driver(settings)
        session.apply_schema(driver, settings.database)
        try:
            yield driver, settings.database
        finally:
            driver.close()
        return
    bolt, http = _free_ports(2)
    server = LocalNeo4j(home=tmp / "neo4j", bolt_port=bolt, http_port=http, heap=heap, pagecache=pagecache,
                        cache=config.cache_dir())
    server.start()
    try:
        settings = server.settings()
        driver = session.open_driver(settings)
        session.apply_schema(driver, settings.database)
        try:
            yield driver, settings.database
        finally:
            driver.close()
    finally:
        server.stop()
