"""The local server itself: one Neo4j home (config, data, logs, pid and password files), started, checked,
stopped and described.

Launching starts ``org.neo4j.server.CommunityEntryPoint`` with ``java`` directly, as ``bin/neo4j`` would
(see the package docstring); the password is set over Bolt with query parameters, never on a command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, cast

from gnnsec import config
from gnnsec.graphdb.errors import Neo4jAuthFailed, Neo4jServerError, Neo4jUnavailable
from gnnsec.graphdb.local.java import JavaRuntime, find_java, neo4j_version
from gnnsec.graphdb.local.process import pid_alive, port_answers, port_in_use, process_cmdline, wait_for_exit
from gnnsec.graphdb.local.provision import Progress, RuntimeLayout, provision_runtime, quiet

if TYPE_CHECKING:
    import neo4j

DEFAULT_BOLT_PORT = 7687
DEFAULT_HTTP_PORT = 7474
DEFAULT_HEAP = "1g"
DEFAULT_PAGECACHE = "512m"
DEFAULT_STARTUP_TIMEOUT_S = 120.0
DEFAULT_STOP_TIMEOUT_S = 60.0

ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
INITIAL_USER = "neo4j"
INITIAL_PASSWORD = "neo4j"
MIN_PASSWORD_LENGTH = 8
"""Neo4j's ``dbms.security.auth_minimum_password_length`` default."""

JVM_FLAGS: tuple[str, ...] = (
    # The flags the 5.26 distribution puts in neo4j.conf as server.jvm.additional, minus
    # -XX:+AlwaysPreTouch (it commits the whole heap up front: slower start, more RSS on a dev box).
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Djdk.tls.rejectClientInitiatedRenegotiation=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true",
    "-Dlog4j.layout.jsonTemplate.maxStringLength=32768",
    "-Dfile.encoding=UTF-8",
)

_MEMORY_SIZE = re.compile(r"^[1-9][0-9]*[kmgKMG]?$")
_STACK_FRAME = re.compile(r"^\s+(at |\.\.\. \d+ more)")


def _validate_memory(name: str, value: str) -> str:
    """``value`` in Neo4j's spelling (lower case), or an error before the JVM would refuse it."""
    if not _MEMORY_SIZE.match(value):
        raise Neo4jServerError(f"{name} {value!r} is not a memory size like 512m or 2g")
    return value.lower()


def _check_port(name: str, port: int) -> int:
    """``port`` when it is one, else an error naming it (an out-of-range port fails late and obscurely in Java)."""
    if not 1 <= port <= 65535:
        raise Neo4jServerError(f"{name} port {port} is outside 1..65535")
    return port


class _SavedState(TypedDict, total=False):
    """What ``LocalNeo4j._write_state`` writes to ``state.json`` (every key optional on read)."""

    pid: int
    bolt_port: int
    http_port: int
    heap: str
    pagecache: str
    neo4j_version: str
    java: str
    started_at: str


class _LoopbackURLs:
    """The two addresses people and drivers use, from ``bolt_port`` / ``http_port``: one definition for both the
    server and its status (both listen on loopback only)."""

    __slots__ = ()
    bolt_port: int
    http_port: int

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def browser_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/browser/"


@dataclass(frozen=True, slots=True)
class ServerStatus(_LoopbackURLs):
    """What runs where; ``already_running`` tells ``start`` callers that nothing new was launched."""

    running: bool
    pid: int | None
    version: str | None
    bolt_port: int
    http_port: int
    home: Path
    data_dir: Path
    log_file: Path
    already_running: bool = False
    startup_seconds: float | None = None


class LocalNeo4j(_LoopbackURLs):
    """One Neo4j home (config, data, logs, pid file, password file) under a gnnsec state dir.

    Ports and memory come from the arguments, else ``GNNSEC_BOLT_PORT`` / ``GNNSEC_HTTP_PORT`` /
    ``GNNSEC_HEAP`` / ``GNNSEC_PAGECACHE``, else what the last start used, else the defaults.
    """

    def __init__(
        self,
        home: Path | None = None,
        *,
        bolt_port: int | None = None,
        http_port: int | None = None,
        heap: str | None = None,
        pagecache: str | None = None,
        cache: Path | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S,
    ) -> None:
        self.home = Path(home or config.state_dir() / "neo4j").expanduser().resolve()
        self.cache = cache
        self.startup_timeout = startup_timeout
        saved = self._saved_state()
        env = config.EnvSettings.from_env()
        self.bolt_port = _check_port("Bolt", bolt_port or env.bolt_port or saved.get("bolt_port") or DEFAULT_BOLT_PORT)
        self.http_port = _check_port("HTTP", http_port or env.http_port or saved.get("http_port") or DEFAULT_HTTP_PORT)
        if self.bolt_port == self.http_port:
            raise Neo4jServerError(f"Bolt and HTTP cannot share port {self.bolt_port}")
        # Memory is not taken from the last start: a size that made the JVM fail must not stick.
        self.heap = _validate_memory("heap", heap or env.heap or DEFAULT_HEAP)
        self.pagecache = _validate_memory("page cache", pagecache or env.pagecache or DEFAULT_PAGECACHE)
        self._process: subprocess.Popen[bytes] | None = None

    # ---- paths ---------------------------------------------------------------------------

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def plugins_dir(self) -> Path:
        return self.home / "plugins"

    @property
    def import_dir(self) -> Path:
        return self.home / "import"

    @property
    def tmp_dir(self) -> Path:
        return self.run_dir / "tmp"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "gnnsec-neo4j.pid"

    @property
    def state_file(self) -> Path:
        return self.home / "gnnsec-server.json"

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    @property
    def console_log(self) -> Path:
        return self.logs_dir / "console.log"

    # ---- secrets ------------------------------------------------------------------------

    def password(self) -> str:
        """``NEO4J_PASSWORD`` if set, else the stored one (generated on first use, file mode 0600)."""
        from_env = config.EnvSettings.from_env().neo4j_password
        if from_env:
            return from_env
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            if self.password_file.stat().st_mode & 0o077:
                self.password_file.chmod(0o600)
            stored = self.password_file.read_text().strip()
            if stored:
                return stored
            raise Neo4jServerError(
                f"{self.password_file} is empty; delete it (and {self.data_dir} if the server was "
                "initialised with it) or set NEO4J_PASSWORD"
            ) from exc
        generated = secrets.token_urlsafe(24)
        with os.fdopen(fd, "w") as handle:
            handle.write(generated + "\n")
        return generated

    def _password_source(self) -> str:
        from_env = config.EnvSettings.from_env().neo4j_password
        return "NEO4J_PASSWORD" if from_env else f"the password file {self.password_file}"

    def settings(self) -> config.Neo4jSettings:
        """Connection settings for this server (Bolt on loopback, user neo4j)."""
        return config.Neo4jSettings(
            uri=self.bolt_uri,
            user=INITIAL_USER,
            password=self.password(),
            database=config.EnvSettings.from_env().neo4j_database or "neo4j",
        )

    # ---- state on disk ------------------------------------------------------------------

    def _saved_state(self) -> _SavedState:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        # Only the outer shape is checked, as before: the values are what _write_state wrote.
        return cast(_SavedState, state) if isinstance(state, dict) else {}

    def _write_state(self, pid: int, java: JavaRuntime) -> None:
        state: _SavedState = {
            "pid": pid,
            "bolt_port": self.bolt_port,
            "http_port": self.http_port,
            "heap": self.heap,
            "pagecache": self.pagecache,
            "neo4j_version": neo4j_version(),
            "java": str(java.executable),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def neo4j_conf(self) -> str:
        """The ``neo4j.conf`` text for this home (no secrets in it)."""
        settings = {
            "server.default_listen_address": "127.0.0.1",
            "server.default_advertised_address": "127.0.0.1",
            "server.bolt.enabled": "true",
            "server.bolt.listen_address": f"127.0.0.1:{self.bolt_port}",
            "server.bolt.advertised_address": f"127.0.0.1:{self.bolt_port}",
            "server.http.enabled": "true",
            "server.http.listen_address": f"127.0.0.1:{self.http_port}",
            "server.http.advertised_address": f"127.0.0.1:{self.http_port}",
            "server.https.enabled": "false",
            "server.memory.heap.initial_size": self.heap,
            "server.memory.heap.max_size": self.heap,
            "server.memory.pagecache.size": self.pagecache,
            "server.directories.data": str(self.data_dir),
            "server.directories.transaction.logs.root": str(self.data_dir / "transactions"),
            "server.directories.logs": str(self.logs_dir),
            "server.directories.run": str(self.run_dir),
            "server.directories.plugins": str(self.plugins_dir),
            "server.directories.import": str(self.import_dir),
            "dbms.security.auth_enabled": "true",
            "dbms.usage_report.enabled": "false",
            "dbms.security.procedures.unrestricted": "apoc.*",
            # Hosts Browser may `:play` guides from (`gnnsec db guide --serve`): the default plus 127.0.0.1.
            # 5.26 declares only this spelling; `..._allowlist` makes strict validation refuse to start.
            "browser.remote_content_hostname_whitelist": "guides.neo4j.com,localhost,127.0.0.1",
            # Preallocating 256 MB per transaction log costs 512 MB of disk per data dir (system +
            # neo4j): too much for throw-away test servers, and not needed by a development database.
            "db.tx_log.preallocate": "false",
        }
        header = (
            "# Written by gnnsec on every `gnnsec db start`; edits here are overwritten.\n"
            "# JVM flags are passed by gnnsec itself (server.jvm.additional is read only by bin/neo4j).\n"
        )
        return header + "".join(f"{key}={value}\n" for key, value in settings.items())

    def write_config(self) -> Path:
        directories = (self.conf_dir, self.data_dir, self.logs_dir, self.run_dir, self.tmp_dir, self.plugins_dir)
        for directory in (*directories, self.import_dir):
            directory.mkdir(parents=True, exist_ok=True)
        path = self.conf_dir / "neo4j.conf"
        path.write_text(self.neo4j_conf())
        return path

    def _install_plugins(self, layout: RuntimeLayout) -> None:
        """Copy APOC into this home's plugins dir (copies, not links: the cache may be deleted)."""
        for jar in layout.plugin_jars():
            target = self.plugins_dir / jar.name
            if not target.exists() or target.stat().st_size != jar.stat().st_size:
                shutil.copyfile(jar, target)

    # ---- process ------------------------------------------------------------------------

    def _is_our_server(self, pid: int) -> bool:
        argv = process_cmdline(pid)
        return argv is not None and ENTRY_POINT in argv and f"--home-dir={self.home}" in argv

    def running_pid(self) -> int | None:
        """The pid of this home's server if it is alive, else None (pid reuse is detected)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._is_our_server(pid) else None

    def command(self, java: JavaRuntime, layout: RuntimeLayout) -> list[str]:
        """The java command line; it carries no secret (the password never goes here)."""
        classpath = os.pathsep.join([str(self.plugins_dir / "*"), str(layout.lib_dir / "*")])
        return [
            str(java.executable),
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            *JVM_FLAGS,
            f"-Djava.io.tmpdir={self.tmp_dir}",  # Jetty unpacks the Browser there: keep it inside the home
            "-cp",
            classpath,
            ENTRY_POINT,
            f"--home-dir={self.home}",
            f"--config-dir={self.conf_dir}",
            "--console-mode",
        ]

    def _log_tail(self, since: int = 0, lines: int = 30) -> str:
        try:
            with self.console_log.open("rb") as handle:
                handle.seek(since)
                text = handle.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        # Java stack frames drown the causes ("Caused by: ..."); keep the lines a person can act on.
        readable = [line for line in text.strip().splitlines() if not _STACK_FRAME.match(line)]
        return "\n".join(readable[-lines:]) or "(empty log)"

    def start(self, progress: Progress = quiet) -> ServerStatus:
        """Start the server unless it already runs; return once Bolt answers with our password."""
        pid = self.running_pid()
        if pid is not None:
            saved = self._saved_state()
            self.bolt_port = int(saved.get("bolt_port", self.bolt_port))
            self.http_port = int(saved.get("http_port", self.http_port))
            self._wait_until_ready(pid, time.monotonic() + self.startup_timeout, log_offset=0, fresh=False)
            return self._status(pid, already_running=True)
        self.pid_file.unlink(missing_ok=True)
        for name, port, option in (("Bolt", self.bolt_port, "bolt"), ("HTTP", self.http_port, "http")):
            if port_in_use(port):
                raise Neo4jServerError(
                    f"{name} port {port} on 127.0.0.1 is already in use by another program. Choose another "
                    f"port with `gnnsec db start --{option}-port N` or GNNSEC_{option.upper()}_PORT=N "
                    "(or stop whatever listens there)."
                )
        password = self.password()
        fresh = not (self.data_dir / "databases" / "system").exists()
        if fresh and len(password) < MIN_PASSWORD_LENGTH:
            raise Neo4jServerError(f"NEO4J_PASSWORD must have at least {MIN_PASSWORD_LENGTH} characters")
        java = find_java()
        layout = provision_runtime(self.cache, progress)
        self.write_config()
        self._install_plugins(layout)
        self.home.chmod(0o700)

        started = time.monotonic()
        log_offset = self.console_log.stat().st_size if self.console_log.exists() else 0
        # The child inherits our environment (not a settings read), minus the one secret it must never see.
        env = {key: value for key, value in os.environ.items() if key != "NEO4J_PASSWORD"}
        env["JAVA_HOME"] = str(java.executable.parent.parent)
        progress(f"Starting Neo4j {neo4j_version()} (Java {java.major}, heap {self.heap}) in {self.home}…")
        with self.console_log.open("ab") as log:
            log.write(f"--- gnnsec: starting Neo4j {neo4j_version()} at {datetime.now(UTC).isoformat()} ---\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self.command(java, layout),
                cwd=self.home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the CLI and its terminal; never gets their Ctrl-C
            )
        pid = self._process.pid
        self.pid_file.write_text(f"{pid}\n")
        previous_state = self.state_file.read_text() if self.state_file.exists() else None
        self._write_state(pid, java)
        try:
            self._wait_until_ready(pid, started + self.startup_timeout, log_offset=log_offset, fresh=fresh)
        except Neo4jAuthFailed:
            raise  # the server is fine; the password is not. Leave it running so `stop` works.
        except BaseException:
            self._terminate(pid, timeout=15)
            if previous_state is None:  # ports that failed must not stick either
                self.state_file.unlink(missing_ok=True)
            else:
                self.state_file.write_text(previous_state)
            raise
        return self._status(pid, startup_seconds=time.monotonic() - started)

    def _wait_until_ready(self, pid: int, deadline: float, *, log_offset: int, fresh: bool) -> None:
        """Poll until Bolt and HTTP answer and the ``neo4j`` database takes queries."""
        from gnnsec.graphdb.driver import open_driver

        while not (port_answers(self.bolt_port) and port_answers(self.http_port)):
            self._check_alive(pid, log_offset)
            if time.monotonic() > deadline:
                raise Neo4jServerError(
                    f"Neo4j (pid {pid}) did not open Bolt port {self.bolt_port} within "
                    f"{self.startup_timeout:.0f} s; last lines of {self.console_log}:\n{self._log_tail(log_offset)}"
                )
            time.sleep(0.25)
        if fresh:
            self._set_initial_password(deadline, pid, log_offset)
        settings = self.settings()
        while True:
            self._check_alive(pid, log_offset)
            try:
                driver = open_driver(settings, connection_timeout=5.0)
            except Neo4jAuthFailed as exc:
                raise Neo4jAuthFailed(
                    f"Neo4j at {self.bolt_uri} rejected the password from {self._password_source()}: the data in "
                    f"{self.data_dir} was initialised with another one. Set NEO4J_PASSWORD to that password, "
                    f"or stop the server (`gnnsec db stop`) and delete {self.data_dir} to start afresh."
                ) from exc
            except Neo4jUnavailable as exc:
                if time.monotonic() > deadline:
                    raise Neo4jServerError(
                        f"Neo4j (pid {pid}) answers on port {self.bolt_port} but not to queries within "
                        f"{self.startup_timeout:.0f} s; see {self.console_log} and {self.logs_dir / 'debug.log'}"
                    ) from exc
                time.sleep(0.5)
                continue
            try:
                if _database_online(driver, settings.database):
                    return
            finally:
                driver.close()
            if time.monotonic() > deadline:
                raise Neo4jServerError(f"database {settings.database!r} did not come online; see {self.logs_dir}")
            time.sleep(0.5)

    def _owns_child(self, pid: int) -> bool:
        """True when ``pid`` is the process this object launched (so no command-line check is needed)."""
        return self._child(pid) is not None

    def _child(self, pid: int) -> subprocess.Popen[bytes] | None:
        """The process this object launched when ``pid`` is it, else None."""
        return self._process if self._process is not None and self._process.pid == pid else None

    def _check_alive(self, pid: int, log_offset: int) -> None:
        child = self._child(pid)
        exited = child.poll() is not None if child is not None else not pid_alive(pid)
        if exited:
            self.pid_file.unlink(missing_ok=True)
            raise Neo4jServerError(
                f"Neo4j (pid {pid}) exited during start-up. Last lines of {self.console_log}:\n"
                f"{self._log_tail(log_offset)}"
            )

    def _set_initial_password(self, deadline: float, pid: int, log_offset: int) -> None:
        """Replace the initial neo4j/neo4j credentials, with parameters so the secret is never logged."""
        from gnnsec.graphdb.driver import open_driver

        initial = config.Neo4jSettings(self.bolt_uri, INITIAL_USER, INITIAL_PASSWORD, "system")
        while True:
            self._check_alive(pid, log_offset)
            try:
                driver = open_driver(initial, connection_timeout=5.0)
            except Neo4jAuthFailed:
                return  # already changed (e.g. an earlier start got this far); the caller verifies ours
            except Neo4jUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
                continue
            try:
                with driver.session(database="system") as session:
                    session.run(
                        "ALTER CURRENT USER SET PASSWORD FROM $old TO $new", old=INITIAL_PASSWORD, new=self.password()
                    ).consume()
                return
            finally:
                driver.close()

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> int | None:
        """Stop the server this home started (SIGTERM, then SIGKILL); return its pid or None."""
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return None
        self._terminate(pid, timeout)
        return pid

    def _terminate(self, pid: int, timeout: float) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL: only our own child or this home's server."""
        if self._owns_child(pid) or self._is_our_server(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not wait_for_exit(pid, timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                if not wait_for_exit(pid, 15):
                    raise Neo4jServerError(f"Neo4j (pid {pid}) survived SIGKILL; check `ps -p {pid}`")
        child = self._child(pid)
        if child is not None:
            with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
                child.wait(timeout=5)
            self._process = None
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> ServerStatus:
        """Running or not, with pid, version (asked over Bolt), ports and directories."""
        pid = self.running_pid()
        if pid is not None:
            saved = self._saved_state()
            self.bolt_port = int(saved.get("bolt_port", self.bolt_port))
            self.http_port = int(saved.get("http_port", self.http_port))
        return self._status(pid)

    def _status(
        self, pid: int | None, *, already_running: bool = False, startup_seconds: float | None = None
    ) -> ServerStatus:
        version = self._query_version() if pid is not None else None
        return ServerStatus(
            running=pid is not None,
            pid=pid,
            version=version,
            bolt_port=self.bolt_port,
            http_port=self.http_port,
            home=self.home,
            data_dir=self.data_dir,
            log_file=self.console_log,
            already_running=already_running,
            startup_seconds=startup_seconds,
        )

    def _query_version(self) -> str | None:
        from gnnsec.graphdb.driver import open_driver

        try:
            driver = open_driver(self.settings(), connection_timeout=5.0)
        except Neo4jUnavailable:
            return None
        try:
            records, _, _ = driver.execute_query("CALL dbms.components() YIELD versions, edition RETURN *")
        except Exception:  # status is best effort; the table then says "unknown"
            return None
        finally:
            driver.close()
        return " ".join(f"{', '.join(r['versions'])} {r['edition']}" for r in records) or None


def _database_online(driver: neo4j.Driver, database: str) -> bool:
    """True once ``database`` answers a trivial query (system comes up before neo4j)."""
    import neo4j.exceptions

    try:
        driver.execute_query("RETURN 1", database_=database)
    except (neo4j.exceptions.TransientError, neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired):
        return False
    except neo4j.exceptions.ClientError as exc:
        if exc.code and "DatabaseNotFound" in exc.code:
            raise Neo4jServerError(
                f"database {database!r} does not exist on this server (check NEO4J_DATABASE)"
            ) from exc
        raise
    return True


def status_as_dict(status: ServerStatus) -> dict[str, object]:
    """JSON-friendly status (for scripts and logs); contains no secret."""
    data = asdict(status)
    data.update(home=str(status.home), data_dir=str(status.data_dir), log_file=str(status.log_file))
    data.update(bolt_uri=status.bolt_uri, browser_url=status.browser_url)
    return data
