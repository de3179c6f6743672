"""How the local Neo4j is configured and owned, checked without starting it (plus one real Maven run)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gnnsec.graphdb.errors import Neo4jServerError
from gnnsec.graphdb.local import (
    ENTRY_POINT,
    JavaRuntime,
    LocalNeo4j,
    find_java,
    neo4j_version,
    provision_runtime,
    runtime_layout,
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("NEO4J_PASSWORD", "GNNSEC_BOLT_PORT", "GNNSEC_HTTP_PORT", "GNNSEC_HEAP", "GNNSEC_PAGECACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GNNSEC_HOME", str(tmp_path / "state"))
    return tmp_path


def conf_settings(server: LocalNeo4j) -> dict[str, str]:
    lines = [line for line in server.neo4j_conf().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_the_version_comes_from_the_pom() -> None:
    assert neo4j_version() == "5.26.19"


def test_defaults_are_loopback_ports_7687_and_7474_with_auth_on(clean_env: Path) -> None:
    server = LocalNeo4j()
    conf = conf_settings(server)
    assert server.home == (clean_env / "state" / "neo4j").resolve()
    assert conf["server.bolt.listen_address"] == "127.0.0.1:7687"
    assert conf["server.http.listen_address"] == "127.0.0.1:7474"
    assert conf["server.default_listen_address"] == "127.0.0.1"
    assert conf["server.https.enabled"] == "false"
    assert conf["dbms.security.auth_enabled"] == "true"
    assert conf["dbms.usage_report.enabled"] == "false"
    assert conf["dbms.security.procedures.unrestricted"] == "apoc.*"
    assert (conf["server.memory.heap.max_size"], conf["server.memory.pagecache.size"]) == ("1g", "512m")
    assert conf["server.directories.data"] == str(server.home / "data")
    assert conf["server.directories.transaction.logs.root"] == str(server.home / "data" / "transactions")
    assert server.browser_url == "http://127.0.0.1:7474/browser/"


def test_ports_and_memory_come_from_the_environment_and_arguments_win(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GNNSEC_BOLT_PORT", "17687")
    monkeypatch.setenv("GNNSEC_HTTP_PORT", "17474")
    monkeypatch.setenv("GNNSEC_HEAP", "2g")
    from_env = LocalNeo4j()
    assert (from_env.bolt_port, from_env.http_port, from_env.heap) == (17687, 17474, "2g")
    from_args = LocalNeo4j(bolt_port=27687, heap="768m")
    assert (from_args.bolt_port, from_args.http_port, from_args.heap) == (27687, 17474, "768m")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"heap": "lots"}, "heap 'lots' is not a memory size"),
        ({"bolt_port": 7000, "http_port": 7000}, "Bolt and HTTP cannot share port 7000"),
        ({"http_port": 70000}, "HTTP port 70000 is outside 1..65535"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(
    clean_env: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(Neo4jServerError, match=message):
        LocalNeo4j(**kwargs)  # type: ignore[arg-type]


def test_the_generated_password_is_stored_0600_and_never_in_config_or_command_line(clean_env: Path) -> None:
    server = LocalNeo4j()
    password = server.password()
    assert len(password) >= 32
    assert server.password() == password  # generated once
    assert (server.password_file.stat().st_mode & 0o777) == 0o600
    assert password not in server.neo4j_conf()
    layout = runtime_layout(clean_env / "cache")
    command = server.command(JavaRuntime(Path("/usr/bin/java"), 17), layout)
    assert password not in " ".join(command)
    assert "--add-opens=java.base/java.nio=ALL-UNNAMED" in command
    home_args = [f"--home-dir={server.home}", f"--config-dir={server.conf_dir}", "--console-mode"]
    assert command[-4:] == [ENTRY_POINT, *home_args]
    assert command[1:3] == ["-Xms1g", "-Xmx1g"]


def test_neo4j_password_from_the_environment_wins_and_is_not_written_down(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEO4J_PASSWORD", "from-the-environment")
    server = LocalNeo4j()
    assert server.password() == "from-the-environment"
    assert server.settings().password == "from-the-environment"
    assert "from-the-environment" not in repr(server.settings())
    assert not server.password_file.exists()


def test_stop_never_signals_a_process_that_is_not_this_homes_server(clean_env: Path) -> None:
    server = LocalNeo4j()
    server.run_dir.mkdir(parents=True)
    server.pid_file.write_text(f"{os.getpid()}\n")  # a stale pid file naming a live, unrelated process
    assert server.running_pid() is None
    assert server.stop() is None
    assert not server.pid_file.exists()
    assert server.status().running is False


def test_find_java_picks_a_supported_version() -> None:
    try:
        java = find_java()
    except Neo4jServerError as exc:
        assert "needs Java 17 or 21" in str(exc)
        pytest.skip("no Java 17/21 on this machine")
    assert java.major in (17, 21)


@pytest.mark.slow
@pytest.mark.integration
def test_a_half_finished_download_is_redone_and_marked_complete(tmp_path: Path) -> None:
    layout = runtime_layout(tmp_path)
    layout.lib_dir.mkdir(parents=True)
    (layout.lib_dir / "truncated.jar").write_bytes(b"PK")  # an interrupted copy: no marker was written
    provisioned = provision_runtime(tmp_path)
    jars = {jar.name for jar in provisioned.lib_dir.glob("*.jar")}
    assert "truncated.jar" not in jars
    assert {"neo4j-5.26.19.jar", "neo4j-server-5.26.19.jar", "neo4j-browser-5.24.0.jar"} <= jars
    assert {jar.name for jar in provisioned.plugin_jars()} == {"apoc-core-5.26.19.jar", "apoc-common-5.26.19.jar"}
    assert (provisioned.root / ".complete").is_file()
    assert not list(provisioned.root.glob("partial-*"))
    marker_time = (provisioned.root / ".complete").stat().st_mtime_ns
    provision_runtime(tmp_path)  # complete: nothing to do
    assert (provisioned.root / ".complete").stat().st_mtime_ns == marker_time
