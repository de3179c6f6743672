"""Helpers every command shares: consoles, connecting to Neo4j with a helpful error, durations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
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


def window_options(command: Any) -> Any:
    """``--since``, ``--until``, ``--cloud``, ``--account``: which part of the graph a command uses."""
    command = click.option("--account", "accounts", multiple=True, help="Only this account (repeatable).")(command)
    command = click.option("--cloud", "clouds", multiple=True, help="Only this cloud: aws, azure, gcp, k8s.")(command)
    command = click.option("--until", default=None, help="Window end (ISO date/time, exclusive).")(command)
    return click.option("--since", default=None, help="Window start (ISO date/time) for activity.")(command)


def _when(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    from gnnsec.times import parse_time

    try:
        return parse_time(text if "T" in text or " " in text else text + "T00:00:00Z")
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO date or date-time", param_hint=name) from None


def window_filter(since: str | None, until: str | None, clouds: tuple[str, ...] = (),
                  accounts: tuple[str, ...] = ()) -> Any:
    from gnnsec.graphdb.export import SnapshotFilter

    return SnapshotFilter(since=_when(since, "--since"), until=_when(until, "--until"), clouds=clouds,
                          accounts=accounts)


def display_name(uid: str) -> str:
    """A short name for tables: ``user/alice@123456789012`` for an ARN, the last path part for other long
    uids. The full uid is always in ``--format json``."""
    if uid.startswith("arn:"):
        parts = uid.split(":", 5)
        if len(parts) == 6:
            account, resource = parts[4], parts[5]
            return f"{resource}@{account}" if account else resource
    if len(uid) > 40 and "/" in uid:
        return "…/" + "/".join(uid.rsplit("/", 2)[-2:])
    return uid


@contextmanager
def progress(message: str) -> Iterator[Any]:
    """A spinner on a terminal; when stderr is piped, one timestamped line per update (at most every 2 s),
    so long work is never silent in a CI log or under ``| tee``. Yields ``update(text)``."""
    import sys
    import time

    if err_console.is_terminal:
        with err_console.status(message) as status:
            yield lambda text: status.update(text)
        return
    started = time.monotonic()
    last = [0.0]

    def update(text: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 2.0:
            last[0] = now
            print(f"[{now - started:7.1f} s] {text}", file=sys.stderr, flush=True)

    update(message)
    yield update
