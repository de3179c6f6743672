"""Helpers every command shares: consoles, connecting to Neo4j with a helpful error, durations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import click
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``1h``, ``1d``, ``1w`` → timedelta (a click-friendly error otherwise)."""
    match = _DURATION.match(text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 1h, 1d or 1w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@contextmanager
def connected(database: str | None = None, *, ensure_schema: bool = False) -> Iterator[tuple[Any, str]]:
    """Open a driver to the configured Neo4j (``NEO4J_URI`` or the local ``gnnsec db``).

    Yields ``(driver, database)``; connection problems become a ``ClickException`` that says
    how to fix them.
    """
    from gnnsec.graphdb.session import GraphDBError, apply_schema, open_driver, resolve_settings

    try:
        settings = resolve_settings()
        driver = open_driver(settings)
        if ensure_schema:
            apply_schema(driver, database or settings.database)
    except GraphDBError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield driver, database or settings.database
    finally:
        driver.close()
