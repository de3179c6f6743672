"""A Neo4j for benchmarks: the configured one (``NEO4J_URI``), else a throw-away local server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def neo4j_driver(tmp: Path) -> Iterator[tuple[Any, str | None]]:
    """Yield ``(driver, database)``; a server started here is stopped on exit."""
    from gnnsec.graphdb import session

    if os.environ.get("NEO4J_URI"):
        settings = session.resolve_settings()
        driver = session.open_driver(settings)
        try:
            yield driver, settings.database
        finally:
            driver.close()
        return
    from gnnsec.graphdb.server import throwaway_server

    with throwaway_server(tmp / "neo4j-state", heap="2g", pagecache="1g") as settings:
        driver = session.open_driver(settings)
        session.apply_schema(driver, settings.database)
        try:
            yield driver, settings.database
        finally:
            driver.close()
