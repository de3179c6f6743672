"""``gnnsec db start | stop | status | init | guide``: run a local Neo4j, or use the one ``NEO4J_URI`` names;
``guide`` offers the hunting pack inside Neo4j Browser.

There is deliberately no ``--password`` option: a password on a command line ends up in shell
history and ``ps``. Use ``NEO4J_PASSWORD`` or let gnnsec generate and store one.

Errors of the server (``GraphDBError``) are not caught here: the CLI's one handler shows them as ``Error: ...``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.text import Text

from gnnsec.cli.common import (
    connection_options,
    connection_settings,
    err_console,
    is_quiet,
    is_verbose,
    neo4j_options,
    open_connection,
)
from gnnsec.cli.output import emit_one, format_option
from gnnsec.config import EnvSettings

if TYPE_CHECKING:
    from gnnsec.graphdb.local import LocalNeo4j

console = Console(soft_wrap=True)  # never break URLs and paths across lines
NOT_RUNNING = 3
"""Exit status of ``db status`` for a stopped server (LSB init-script convention)."""


def _server(bolt_port: int | None = None, http_port: int | None = None, heap: str | None = None,
            pagecache: str | None = None, cache: Path | None = None) -> LocalNeo4j:
    from gnnsec.graphdb.local import LocalNeo4j

    return LocalNeo4j(bolt_port=bolt_port, http_port=http_port, heap=heap, pagecache=pagecache, cache=cache)


@click.group()
def db() -> None:
    """Run a local Neo4j (start, stop, status, init), or use the server NEO4J_URI points at; guide: the hunting
    pack as a Neo4j Browser guide."""


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

    uri = EnvSettings.from_env().neo4j_uri
    if uri:
        if external_server_configured():
            console.print(f"NEO4J_URI={uri} answers: gnnsec uses that server and does not start its own.")
            return
        raise click.ClickException(
            f"NEO4J_URI={uri} is set but nothing answers there. Start that server, or unset NEO4J_URI "
            "to run gnnsec's local Neo4j."
        )
    server = _server(bolt_port, http_port, heap, pagecache, cache)
    status = server.start(progress=lambda message: None if is_quiet() else console.print(message, style="dim"))
    if status.already_running:
        console.print(f"Neo4j is already running (pid {status.pid}); not starting another.")
    else:
        console.print(f"Neo4j {status.version or ''} started in {status.startup_seconds:.1f} s (pid {status.pid}).")
    console.print(f"Bolt:    {status.bolt_uri}")
    source = "NEO4J_PASSWORD" if EnvSettings.from_env().neo4j_password else str(server.password_file)
    console.print(f"Browser: {status.browser_url}  (user neo4j, password in {source})")


@db.command()
def stop() -> None:
    """Stop the local Neo4j that `gnnsec db start` started (and nothing else)."""
    server = _server()
    pid = server.stop()
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


def _tilde(path: Path) -> str:
    """A path for a person: under the home directory as ``~/…`` (``--format json`` has it in full)."""
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) and path != home else str(path)


STATUS_FIELDS = ("server", "uri_origin", "running", "pid", "version", "bolt_uri", "browser_url", "bolt_port",
                 "http_port", "user", "database", "data_dir", "log_file")
"""``gnnsec db status --format json``: always these keys, null where they do not apply (docs/findings.md)."""


@db.command()
@neo4j_options
@format_option("table (the default, also when piped): one `what  value` line each, never wrapped; "
               "json/jsonl: one object.")
def status(fmt: str | None) -> None:
    """Say what runs where: state, pid, version, ports, data dir, URLs. Exits 3 when the server is not running
    (the LSB convention for "program is not running"), so scripts can test it."""
    options = connection_options()
    fields: dict[str, object] = dict.fromkeys(STATUS_FIELDS)
    fields.update(user=options.user or "neo4j", database=options.database or "neo4j")
    if options.uri:
        fields.update(server="external", uri_origin=options.uri_origin, bolt_uri=options.uri, running=_answers())
        lines = [("server", f"external ({options.uri_origin})"), ("Bolt", options.uri), ("user", fields["user"]),
                 ("database", fields["database"]), ("answers", "yes" if fields["running"] else "no")]
    else:
        info = _server().status()
        fields.update(server="local", running=bool(info.running), pid=info.pid or None, version=info.version,
                      bolt_uri=info.bolt_uri, browser_url=info.browser_url, bolt_port=info.bolt_port,
                      http_port=info.http_port, data_dir=str(info.data_dir), log_file=str(info.log_file))
        lines = [("state", "running" if info.running else "stopped"), ("pid", str(info.pid) if info.pid else "-"),
                 ("version", info.version or ("unknown" if info.running else "-")), ("Bolt", info.bolt_uri),
                 ("Browser", info.browser_url), ("ports", f"bolt {info.bolt_port}, http {info.http_port}")]
        if is_verbose():
            lines += [("user", fields["user"]), ("database", fields["database"])]
        lines += [("data dir", _tilde(info.data_dir)), ("log", _tilde(info.log_file))]
    fmt = fmt or "table"  # plain lines that never wrap are as good for a pipe as for a person
    if fmt != "table":
        emit_one(fields, fmt, columns=STATUS_FIELDS)
    else:
        width = max(len(name) for name, _ in lines)
        console.print(Text("gnnsec Neo4j", style="bold"))
        for name, value in lines:
            style = "" if name != "state" and name != "answers" else "green" if fields["running"] else "red"
            console.print(Text.assemble((f"{name:<{width}}", "bold"), "  ", (str(value), style)))
    if not fields["running"]:
        raise SystemExit(NOT_RUNNING)


@db.command()
@neo4j_options
def init() -> None:
    """Apply cypher/schema.cypher (constraints and indexes); safe to run again."""
    from gnnsec.graphdb.driver import apply_schema

    driver, settings = open_connection()
    try:
        count = apply_schema(driver, settings.database)
    finally:
        driver.close()
    console.print(f"Schema applied to {settings.uri} (database {settings.database}): {count} statements.")


@db.command()
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the guide page to this file (default without --serve: print it).")
@click.option("--serve", is_flag=True,
              help="Serve the guide on 127.0.0.1 until Ctrl-C and print the `:play` line for Neo4j Browser.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port for --serve (0: a free one).")
def guide(out: Path | None, serve: bool, port: int) -> None:
    """The hunting pack as a Neo4j Browser guide: one slide per hunt, its Cypher one click from the editor.

    With --serve, type the printed `:play http://localhost:PORT/gnnsec-guide.html` into Browser (on this
    machine). Browser fetches guides itself, only from hosts in the server's
    browser.remote_content_hostname_whitelist (localhost by default) that answer CORS, as --serve does.
    """
    from gnnsec.hunts_guide import play_command, render_guide, serve_guide

    try:
        page = render_guide()
    except FileNotFoundError as exc:  # the hunt pack missing from an install: say which file
        raise click.ClickException(str(exc)) from exc
    if out is not None:
        out.write_text(page, encoding="utf-8")
        err_console.print(f"Wrote the guide to {out}.", style="dim", soft_wrap=True)
    if not serve:
        if out is None:
            click.echo(page, nl=False)
        return
    try:
        server = serve_guide(page, port=port)
    except OSError as exc:
        raise click.ClickException(f"cannot serve the guide on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
    console.print("Serving the hunting guide; in Neo4j Browser run:")
    console.print(Text(play_command(server.server_address[1]), style="bold"))
    console.print("Ctrl-C stops it.", style="dim")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
