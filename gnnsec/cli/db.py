"""``gnnsec db start | stop | status | init``: run a local Neo4j, or use the one ``NEO4J_URI`` names.

There is deliberately no ``--password`` option: a password on a command line ends up in shell
history and ``ps``. Use ``NEO4J_PASSWORD`` or let gnnsec generate and store one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from gnnsec.cli.common import (
    connection_options,
    connection_settings,
    describe_connection,
    err_console,
    is_quiet,
    is_verbose,
    neo4j_options,
)
from gnnsec.graphdb.errors import GraphDBError

if TYPE_CHECKING:
    from gnnsec.graphdb.server import LocalNeo4j

console = Console(soft_wrap=True)  # never break URLs and paths across lines
NOT_RUNNING = 3
"""Exit status of ``db status`` for a stopped server (LSB init-script convention)."""


def _server(bolt_port: int | None = None, http_port: int | None = None, heap: str | None = None,
            pagecache: str | None = None, cache: Path | None = None) -> LocalNeo4j:
    from gnnsec.graphdb.server import LocalNeo4j

    try:
        return LocalNeo4j(bolt_port=bolt_port, http_port=http_port, heap=heap, pagecache=pagecache, cache=cache)
    except GraphDBError as exc:
        raise click.ClickException(str(exc)) from None


def _external_uri() -> str | None:
    return os.environ.get("NEO4J_URI", "").strip() or None


@click.group()
def db() -> None:
    """Run a local Neo4j (start, stop, status, init), or use the server NEO4J_URI points at."""


@db.command()
@click.option("--bolt-port", type=click.IntRange(1, 65535), envvar="GNNSEC_BOLT_PORT", show_envvar=True,
              help="Bolt port (default: the last start's, else 7687).")
@click.option("--http-port", type=click.IntRange(1, 65535), envvar="GNNSEC_HTTP_PORT", show_envvar=True,
              help="HTTP (Browser) port (default: the last start's, else 7474).")
@click.option("--heap", envvar="GNNSEC_HEAP", show_envvar=True, help="JVM heap, e.g. 1g or 512m (default 1g).")
@click.option("--pagecache", envvar="GNNSEC_PAGECACHE", show_envvar=True, help="Page cache, e.g. 512m (default 512m).")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), envvar="GNNSEC_CACHE", show_envvar=True,
              help="Where the Neo4j jars are downloaded once (default: ~/.cache/gnnsec).")
def start(bolt_port: int | None, http_port: int | None, heap: str | None, pagecache: str | None,
          cache: Path | None) -> None:
    """Start the local Neo4j in the background and wait until Bolt answers.

    Its password is NEO4J_PASSWORD if set, else one generated and stored under GNNSEC_HOME. With NEO4J_URI set,
    says whether that server answers instead of starting one.
    """
    from gnnsec.graphdb.session import external_server_configured

    uri = _external_uri()
    if uri:
        if external_server_configured():
            console.print(f"NEO4J_URI={uri} answers: gnnsec uses that server and does not start its own.")
            return
        raise click.ClickException(
            f"NEO4J_URI={uri} is set but nothing answers there. Start that server, or unset NEO4J_URI "
            "to run gnnsec's local Neo4j."
        )
    server = _server(bolt_port, http_port, heap, pagecache, cache)
    try:
        status = server.start(progress=lambda message: None if is_quiet() else console.print(message, style="dim"))
    except GraphDBError as exc:
        raise click.ClickException(str(exc)) from None
    if status.already_running:
        console.print(f"Neo4j is already running (pid {status.pid}); not starting another.")
    else:
        console.print(f"Neo4j {status.version or ''} started in {status.startup_seconds:.1f} s (pid {status.pid}).")
    console.print(f"Bolt:    {status.bolt_uri}")
    source = "NEO4J_PASSWORD" if os.environ.get("NEO4J_PASSWORD") else str(server.password_file)
    console.print(f"Browser: {status.browser_url}  (user neo4j, password in {source})")


@db.command()
def stop() -> None:
    """Stop the local Neo4j that `gnnsec db start` started (and nothing else)."""
    server = _server()
    try:
        pid = server.stop()
    except GraphDBError as exc:
        raise click.ClickException(str(exc)) from None
    if pid is None:
        console.print(f"No gnnsec Neo4j is running for {server.home}.")
    else:
        console.print(f"Stopped Neo4j (pid {pid}).")


def _answers(timeout: float = 5.0) -> bool:
    """Whether the server the options name answers; one that rejects the password still does."""
    from gnnsec.graphdb.errors import Neo4jAuthFailed, Neo4jUnavailable
    from gnnsec.graphdb.session import open_driver

    try:
        open_driver(connection_settings(require_password=False), connection_timeout=timeout).close()
    except Neo4jAuthFailed:
        return True
    except Neo4jUnavailable:
        return False
    return True


@db.command()
@neo4j_options
def status() -> None:
    """Say what runs where: state, pid, version, ports, data dir, URLs. Exits 3 when the server is not running
    (the LSB convention for "program is not running"), so scripts can test it."""
    options = connection_options()
    table = Table(title="gnnsec Neo4j", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    if options.uri:
        table.add_row("server", f"external ({options.uri_origin})")
        table.add_row("Bolt", options.uri)
        table.add_row("user", options.user or "neo4j")
        table.add_row("database", options.database or "neo4j")
        answers = _answers()
        table.add_row("answers", "yes" if answers else "no")
        console.print(table)
        if not answers:
            raise SystemExit(NOT_RUNNING)
        return
    server = _server()
    try:
        info = server.status()
    except GraphDBError as exc:
        raise click.ClickException(str(exc)) from None
    table.add_row("state", "[green]running[/green]" if info.running else "[red]stopped[/red]")
    table.add_row("pid", str(info.pid) if info.pid else "-")
    table.add_row("version", info.version or ("unknown" if info.running else "-"))
    table.add_row("Bolt", info.bolt_uri)
    table.add_row("Browser", info.browser_url)
    table.add_row("ports", f"bolt {info.bolt_port}, http {info.http_port}")
    if is_verbose():
        table.add_row("user", options.user or "neo4j")
        table.add_row("database", options.database or "neo4j")
    table.add_row("data dir", str(info.data_dir))
    table.add_row("log", str(info.log_file))
    console.print(table)
    if not info.running:
        raise SystemExit(NOT_RUNNING)


@db.command()
@neo4j_options
def init() -> None:
    """Apply cypher/schema.cypher (constraints and indexes); safe to run again."""
    from gnnsec.graphdb.session import apply_schema, open_driver

    options = connection_options()
    settings = connection_settings(options)
    if is_verbose():
        err_console.print(describe_connection(settings, options), style="dim", markup=False, soft_wrap=True)
    try:
        driver = open_driver(settings, password_env_var=options.password_env_var, external=bool(options.uri))
        try:
            count = apply_schema(driver, settings.database)
        finally:
            driver.close()
    except GraphDBError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"Schema applied to {settings.uri} (database {settings.database}): {count} statements.")
