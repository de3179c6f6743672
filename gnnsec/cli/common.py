"""Helpers every command shares: consoles, verbosity, connecting to Neo4j with a helpful error, durations."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

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
                        help="CPU threads for torch (default: all cores but one while Neo4j works for this "
                             "command, all while it waits: training, scoring between export and write-back, "
                             "eval).")(command)


class SuggestingChoice(click.Choice):
    """A choice that answers a typo with "did you mean …?" (``gnnsec ingest cloudtral`` → ``cloudtrail``)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            import difflib

            close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1, cutoff=0.6)
            if not close:
                raise
            self.fail(f"{exc.format_message()} Did you mean {close[0]!r}?", param, ctx)


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


PROGRESS_INTERVAL_S = 2.0
"""Seconds between progress lines when stderr is piped (tests set it lower)."""


def _seconds_text(seconds: float) -> str:
    hours, rest = divmod(max(0, round(seconds)), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def rate_text(done: float, seconds: float, unit: str, total: float | None = None, *, idle: float = 0.0) -> str:
    """``1,234/5,000 files (12.3/s, ETA 5:06)``: a count, its rate, and the time left where a total is known.

    ``idle`` is how many of the ``seconds`` passed since the count last moved: the rate is taken up to that
    moment and the ETA counts down through the wait, instead of growing with every line while a unit that
    takes minutes (an eval run) is under way, though never below the units not yet begun. Under one a minute,
    the rate is the time each unit took."""
    count = f"{done:,.0f}/{total:,.0f}" if total else f"{done:,.0f}"
    idle = min(max(idle, 0.0), max(seconds, 0.0))
    busy = seconds - idle
    if busy <= 0 or done <= 0:
        return f"{count} {unit}".rstrip()
    rate = done / busy
    if rate >= 1:
        speed = f"{rate:,.1f}/s"
    elif rate * 60 >= 1:
        speed = f"{rate * 60:,.1f}/min"
    else:
        speed = f"{_seconds_text(busy / done)} each"
    eta = ""
    if total and done < total:
        left = total - done  # the one under way is late once idle passes its share; the rest are not begun
        eta = f", ETA {_seconds_text(max(left / rate - idle, (left - 1) / rate))}"
    return f"{count} {unit} ({speed}{eta})".replace("  ", " ")


class ProgressLog:
    """Progress as timestamped lines on stderr, for when stderr is not a terminal (a CI log, ``| tee``),
    where rich's bars draw nothing. A line at most every :data:`PROGRESS_INTERVAL_S` seconds when the work
    reports, and a heartbeat line as often when it does not (an export, a model loading), so long work is
    never silent. Thread-safe: ingest reports from its reading thread too."""

    def __init__(self, message: str, *, total: int | None = None, unit: str = "",
                 interval: float | None = None) -> None:
        import threading
        import time

        self.interval = PROGRESS_INTERVAL_S if interval is None else interval
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._clock = time.monotonic
        self._started = self._phase_started = self._clock()
        self._last = float("-inf")
        self._phase, self._unit, self._detail = message, unit, ""
        self._done = 0
        self._moved = self._started  # when the count last changed
        self._total: int | None = total
        self._heart: threading.Thread | None = None

    def phase(self, text: str, *, total: int | None = None, unit: str = "") -> None:
        """A new step: its own count (towards ``total`` ``unit`` when known), rate and clock."""
        with self._lock:
            self._phase, self._total, self._unit, self._detail = text, total, unit, ""
            self._done, self._phase_started = 0, self._clock()
            self._moved = self._phase_started
            self._maybe_print()

    def advance(self, count: int = 1, *, detail: str | None = None, total: int | None = None) -> None:
        """``count`` more done in this step; ``detail`` (a loss, the file now read) joins the line."""
        with self._lock:
            self._done += count
            if count:
                self._moved = self._clock()
            if detail is not None:
                self._detail = detail
            if total is not None:
                self._total = total
            self._maybe_print()

    def detail(self, text: str) -> None:
        with self._lock:
            self._detail = text
            self._maybe_print()

    def status(self) -> str:
        with self._lock:
            now = self._clock()
            line = f"[{now - self._started:7.1f} s] {self._phase}"
            if self._unit or self._done:
                line += ": " + rate_text(self._done, now - self._phase_started, self._unit, self._total,
                                         idle=now - self._moved)
            return line + (f" · {self._detail}" if self._detail else "")

    def _maybe_print(self, *, force: bool = False) -> None:
        import sys

        with self._lock:
            now = self._clock()
            if force or now - self._last >= self.interval:
                self._last = now
                print(self.status(), file=sys.stderr, flush=True)

    def _beat(self) -> None:
        while not self._stop.wait(max(self.interval, 0.05)):
            with self._lock:
                if self._clock() - self._last >= self.interval:
                    self._maybe_print(force=True)

    def __enter__(self) -> ProgressLog:
        import threading

        self._maybe_print(force=True)
        self._heart = threading.Thread(target=self._beat, name="gnnsec-progress", daemon=True)
        self._heart.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._heart is not None:
            self._heart.join()


class Work(Protocol):
    """What long work reports, whatever shows it: a rich bar, lines on stderr, or nothing (``-q``)."""

    def phase(self, text: str, *, total: int | None = None, unit: str = "") -> None: ...
    def advance(self, count: int = 1, *, detail: str | None = None, total: int | None = None) -> None: ...


class _Silent:
    def phase(self, text: str, *, total: int | None = None, unit: str = "") -> None:
        pass

    def advance(self, count: int = 1, *, detail: str | None = None, total: int | None = None) -> None:
        pass


class _Bar:
    """One rich bar on a terminal (transient: gone when the work ends)."""

    def __init__(self, bar: Any) -> None:
        self.bar, self.text = bar, ""
        self.task = bar.add_task("", total=None)

    def phase(self, text: str, *, total: int | None = None, unit: str = "") -> None:
        self.text = text
        self.bar.reset(self.task, total=total, description=text)

    def advance(self, count: int = 1, *, detail: str | None = None, total: int | None = None) -> None:
        description = f"{self.text} ({detail})" if detail else self.text
        if total is not None:
            self.bar.update(self.task, total=total)
        self.bar.update(self.task, advance=count, description=description)


@contextmanager
def work_progress(message: str, *, total: int | None = None, unit: str = "") -> Iterator[Work]:
    """Progress of long work (train's epochs, eval's runs, explain's steps): a rich bar on a terminal, a
    :class:`ProgressLog` line every few seconds (counts, rate, ETA) when stderr is piped, nothing with ``-q``."""
    if is_quiet():
        yield _Silent()
        return
    if err_console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err_console, transient=True) as bar:
            work = _Bar(bar)
            work.phase(message, total=total, unit=unit)
            yield work
        return
    with ProgressLog(message, total=total, unit=unit) as log:
        yield log


@contextmanager
def progress(message: str) -> Iterator[Callable[[str], None]]:
    """A spinner on a terminal; when stderr is piped, a timestamped line per update (at most every
    :data:`PROGRESS_INTERVAL_S`) and a heartbeat between updates, so long work is never silent in a CI log or
    under ``| tee``; nothing with ``gnnsec -q``. Yields ``update(text)``."""
    if is_quiet():
        yield lambda text: None
        return
    if err_console.is_terminal:
        with err_console.status(message) as status:
            yield lambda text: status.update(text)
        return
    with ProgressLog(message) as log:
        yield lambda text: log.phase(text)
