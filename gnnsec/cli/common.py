"""Helpers every command shares: consoles, verbosity, connecting to Neo4j with a helpful error, durations."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from gnnsec.config import EnvSettings

if TYPE_CHECKING:
    import neo4j

    from gnnsec.config import Neo4jSettings
    from gnnsec.graphdb.export import SnapshotFilter

console = Console()
err_console = Console(stderr=True)

VERBOSITY_KEY = "gnnsec.verbosity"
NEO4J_KEY = "gnnsec.neo4j"
DEFAULT_PASSWORD_ENV_VAR = "NEO4J_PASSWORD"


def verbosity() -> int:
    """-1 with ``gnnsec -q``, 1 with ``gnnsec -v``, else 0 (also outside a command)."""
    ctx = click.get_current_context(silent=True)
    return int(ctx.meta.get(VERBOSITY_KEY, 0)) if ctx is not None else 0


def is_quiet() -> bool:
    return verbosity() < 0


def is_verbose() -> bool:
    return verbosity() > 0

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``1h``, ``1d``, ``1w`` → timedelta (a click-friendly error otherwise)."""
    match = _DURATION.match(text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 1h, 1d or 1w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """What the ``--neo4j-*`` options (or their variables) said; ``None`` where nothing did."""

    uri: str | None = None
    user: str | None = None
    password_env_var: str | None = None
    database: str | None = None
    uri_origin: str = "NEO4J_URI"
    """How messages name where the URI came from: ``--neo4j-uri`` or ``NEO4J_URI``."""


def _option_origin(ctx: click.Context, name: str, flag: str, envvar: str) -> str:
    from click.core import ParameterSource

    return flag if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE else envvar


def neo4j_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--neo4j-uri``, ``--neo4j-user``, ``--neo4j-password-env-var``, ``--neo4j-database`` (listed last in
    ``--help``), each with its variable; ``connected()`` and ``connection_settings()`` use what they say.

    The defaults come from the variables through click's ``envvar=`` (so ``--help`` shows them); the variables
    mean the same here as in :meth:`EnvSettings.from_env`, which reads them outside a command."""

    @functools.wraps(command)
    def wrapper(*args: Any, neo4j_uri: str | None, neo4j_user: str | None, neo4j_password_env_var: str | None,
                neo4j_database: str | None, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        ctx.meta[NEO4J_KEY] = ConnectionOptions(
            uri=(neo4j_uri or "").strip() or None, user=neo4j_user, password_env_var=neo4j_password_env_var,
            database=neo4j_database, uri_origin=_option_origin(ctx, "neo4j_uri", "--neo4j-uri", "NEO4J_URI"),
        )
        return command(*args, **kwargs)

    options = [
        click.Option(["--neo4j-uri"], metavar="URI", envvar="NEO4J_URI", show_envvar=True,
                     help="Neo4j server, e.g. bolt://host:7687 or neo4j+s://host (default: the local server of "
                          "`gnnsec db start`)."),
        click.Option(["--neo4j-user"], metavar="NAME", envvar="NEO4J_USER", show_envvar=True, default="neo4j",
                     show_default=True, help="Neo4j user."),
        click.Option(["--neo4j-password-env-var"], metavar="VAR",
                     help=f"Name of the environment variable that holds the password (default: "
                          f"{DEFAULT_PASSWORD_ENV_VAR}, or for the local server the password `gnnsec db start` "
                          "stored). Never the password itself."),
        click.Option(["--neo4j-database"], metavar="NAME", envvar="NEO4J_DATABASE", show_envvar=True,
                     default="neo4j", show_default=True, help="Neo4j database."),
    ]
    # click shows parameters in reverse order of this list: put these first here so they show last.
    # (ignored for mypy: click keeps options in a function attribute that functions do not declare)
    wrapper.__click_params__ = [*reversed(options), *getattr(command, "__click_params__", [])]  # type: ignore[attr-defined]
    return wrapper


def connection_options() -> ConnectionOptions:
    """The current command's ``--neo4j-*`` options; the variables alone outside such a command."""
    ctx = click.get_current_context(silent=True)
    found = ctx.meta.get(NEO4J_KEY) if ctx is not None else None
    if isinstance(found, ConnectionOptions):
        return found
    env = EnvSettings.from_env()
    return ConnectionOptions(uri=env.neo4j_uri, user=env.neo4j_user, database=env.neo4j_database)


def _named_password(name: str) -> str:
    """The password in the variable ``--neo4j-password-env-var`` names; a usage error naming it when unset.

    Read here, not in :class:`EnvSettings`: the user chooses the variable's name at run time."""
    name = name.strip()
    if not name:
        raise click.UsageError("--neo4j-password-env-var needs the name of an environment variable",
                               ctx=click.get_current_context(silent=True))
    password = os.environ.get(name)
    if not password:
        raise click.UsageError(
            f"--neo4j-password-env-var names {name}, but the environment variable {name} is "
            f"{'empty' if password == '' else 'not set'}; export the Neo4j password in it",
            ctx=click.get_current_context(silent=True),
        )
    return password


def connection_settings(options: ConnectionOptions | None = None, *, require_password: bool = True) -> Neo4jSettings:
    """Resolve options into settings: a flag beats its variable, which beats the local ``gnnsec db`` server's
    settings. ``require_password=False`` (only to check that a server answers) allows an empty password."""
    from gnnsec.config import Neo4jSettings

    options = options or connection_options()
    password = _named_password(options.password_env_var) if options.password_env_var is not None else None
    user = options.user or "neo4j"
    database = options.database or "neo4j"
    if options.uri:
        if password is None:
            password = EnvSettings.from_env().neo4j_password or ""
            if not password and require_password:
                raise click.UsageError(
                    f"{options.uri_origin} is set ({options.uri}) but {DEFAULT_PASSWORD_ENV_VAR} is not; export the "
                    "server's password in it, or name the variable that holds it with --neo4j-password-env-var",
                    ctx=click.get_current_context(silent=True),
                )
        return Neo4jSettings(uri=options.uri, user=user, password=password, database=database)
    from gnnsec.graphdb.local import LocalNeo4j

    server = LocalNeo4j()  # its errors (GnnsecError) reach the user through the CLI's one handler
    return Neo4jSettings(uri=server.bolt_uri, user=user, password=password or server.password(), database=database)


def describe_connection(settings: Neo4jSettings, options: ConnectionOptions | None = None) -> str:
    """Which server, user and database, and where the URI came from (never the password)."""
    options = options or connection_options()
    origin = options.uri_origin if options.uri else "the local server of `gnnsec db start`"
    secret = options.password_env_var or (DEFAULT_PASSWORD_ENV_VAR if options.uri or EnvSettings.from_env(
        ).neo4j_password else "the stored password")
    return (f"Neo4j {settings.uri} ({origin}) as {settings.user}, database {settings.database}, "
            f"password from {secret}")


def open_connection() -> tuple[neo4j.Driver, Neo4jSettings]:
    """A connected driver to the Neo4j the ``--neo4j-*`` options or ``NEO4J_*`` name (else the local ``gnnsec db``),
    with the settings it used (``-v`` says which server on stderr). The caller closes the driver.

    Connection problems are :class:`~gnnsec.graphdb.errors.GraphDBError` that say how to fix them (the CLI shows
    them as ``Error: ...``), a missing password variable a usage error."""
    from gnnsec.graphdb.driver import open_driver

    options = connection_options()
    settings = connection_settings(options)
    if is_verbose():
        err_console.print(describe_connection(settings, options), style="dim", markup=False, soft_wrap=True)
    return open_driver(settings, password_env_var=options.password_env_var, external=bool(options.uri)), settings


@contextmanager
def connected(database: str | None = None, *, ensure_schema: bool = False) -> Iterator[tuple[neo4j.Driver, str]]:
    """:func:`open_connection` as a context: yields ``(driver, database)``, with the schema applied first when
    ``ensure_schema``, and closes the driver."""
    from gnnsec.graphdb.driver import apply_schema

    driver, settings = open_connection()
    try:
        if ensure_schema:
            apply_schema(driver, database or settings.database)
        yield driver, database or settings.database
    finally:
        driver.close()



def _set_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """``--threads N`` given on the command line: the one place torch's thread count is read is
    ``GNNSEC_THREADS``, so set it for this command (restored when the command ends)."""
    from click.core import ParameterSource

    if value is not None and ctx.get_parameter_source(param.name or "threads") is ParameterSource.COMMANDLINE:
        ctx.with_resource(_environment_variable("GNNSEC_THREADS", str(value)))
    return value


@contextmanager
def _environment_variable(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def threads_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--threads N`` [GNNSEC_THREADS]: CPU threads for torch."""
    return click.option("--threads", type=click.IntRange(1, 1024), envvar="GNNSEC_THREADS", show_envvar=True,
                        expose_value=False, callback=_set_threads,
                        help="CPU threads for torch (default: all cores but one, left to Neo4j).")(command)


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
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not an ISO date or date-time", param_hint=name) from exc


def window_filter(since: str | None, until: str | None, clouds: tuple[str, ...] = (),
                  accounts: tuple[str, ...] = ()) -> SnapshotFilter:
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
def progress(message: str) -> Iterator[Callable[[str], None]]:
    """A spinner on a terminal; when stderr is piped, one timestamped line per update (at most every 2 s),
    so long work is never silent in a CI log or under ``| tee``; nothing with ``gnnsec -q``. Yields
    ``update(text)``."""
    import sys
    import time

    if is_quiet():
        yield lambda text: None
        return
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
