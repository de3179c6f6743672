"""The local Neo4j of `gnnsec db start` against the real server: schema, errors, Bolt, Browser, start/stop."""

from __future__ import annotations

import re
import socket
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import neo4j
import neo4j.exceptions
import psutil
import pytest

from gnnsec import config
from gnnsec.graphdb.local import ENTRY_POINT, LocalNeo4j, port_answers
from gnnsec.graphdb.session import apply_schema, schema_statements

pytestmark = pytest.mark.integration


def needs_local(server: LocalNeo4j | None) -> LocalNeo4j:
    if server is None:
        pytest.skip("NEO4J_URI names an external server; this test needs the local one")
    return server


def server_processes(home: Path) -> list[psutil.Process]:
    """Live Neo4j processes whose command line names ``home``."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if ENTRY_POINT in cmdline and f"--home-dir={home}" in cmdline and process.info["status"] != "zombie":
            found.append(process)
    return found


def schema_names(kind: str) -> set[str]:
    pattern = re.compile(rf"^CREATE {kind} (\w+) IF NOT EXISTS")
    return {m.group(1) for statement in schema_statements() if (m := pattern.match(statement))}


def test_the_schema_can_be_applied_twice_and_every_constraint_and_index_is_online(
    driver: neo4j.Driver, neo4j_settings: config.Neo4jSettings
) -> None:
    first = apply_schema(driver, neo4j_settings.database)
    second = apply_schema(driver, neo4j_settings.database)
    assert first == second == len(schema_statements())
    constraints, _, _ = driver.execute_query("SHOW CONSTRAINTS YIELD name", database_=neo4j_settings.database)
    indexes, _, _ = driver.execute_query(
        "SHOW INDEXES YIELD name, state WHERE state = 'ONLINE' RETURN name", database_=neo4j_settings.database
    )
    assert schema_names("CONSTRAINT") <= {r["name"] for r in constraints}
    assert schema_names("INDEX") <= {r["name"] for r in indexes}
    assert len(schema_names("CONSTRAINT")) + len(schema_names("INDEX")) == len(schema_statements())


def test_a_duplicate_uid_is_rejected_with_a_constraint_error_naming_label_and_property(clean_db: neo4j.Driver) -> None:
    clean_db.execute_query("CREATE (:User {uid: $uid})", uid="arn:aws:iam::111122223333:user/alice")
    with pytest.raises(neo4j.exceptions.ConstraintError) as caught:
        clean_db.execute_query("CREATE (:User {uid: $uid})", uid="arn:aws:iam::111122223333:user/alice")
    message = caught.value.message or ""
    assert "already exists with label `User` and property `uid` = 'arn:aws:iam::111122223333:user/alice'" in message
    assert caught.value.code == "Neo.ClientError.Schema.ConstraintValidationFailed"
    records, _, _ = clean_db.execute_query("MATCH (u:User) RETURN count(u) AS n")
    assert records[0]["n"] == 1


def test_a_node_round_trips_through_bolt_with_datetime_and_list_properties(clean_db: neo4j.Driver) -> None:
    first_seen = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
    properties = {
        "uid": "arn:aws:ec2:eu-west-1:111122223333:instance/i-0abc",
        "name": "web-1",
        "cloud": "aws",
        "first_seen": first_seen,
        "tags": ["prod", "web"],
        "ports": [22, 443],
        "anomaly_score": 0.25,
    }
    clean_db.execute_query("CREATE (v:VM) SET v = $props", props=properties)
    records, _, _ = clean_db.execute_query("MATCH (v:VM {uid: $uid}) RETURN v", uid=properties["uid"])
    stored = dict(records[0]["v"])
    assert isinstance(stored["first_seen"], neo4j.time.DateTime)
    stored["first_seen"] = stored["first_seen"].to_native()
    assert stored == properties
    assert list(records[0]["v"].labels) == ["VM"]


def test_the_browser_is_served_at_slash_browser(neo4j_server: LocalNeo4j | None) -> None:
    server = needs_local(neo4j_server)
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/browser/", timeout=30) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "text/html"
        page = response.read().decode()
    assert "<title>Neo4j Browser</title>" in page
    app_script = re.search(r'src="(app-[0-9a-f]+\.js)"', page)
    assert app_script is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/browser/{app_script.group(1)}") as script:
        assert script.status == 200
        assert len(script.read()) > 10_000


def test_apoc_is_installed(driver: neo4j.Driver, neo4j_server: LocalNeo4j | None) -> None:
    needs_local(neo4j_server)
    records, _, _ = driver.execute_query("RETURN apoc.version() AS version")
    assert records[0]["version"] == "5.26.19"


def test_starting_a_running_server_again_says_already_running_and_starts_nothing(
    neo4j_server: LocalNeo4j | None,
) -> None:
    server = needs_local(neo4j_server)
    before = server_processes(server.home)
    assert len(before) == 1
    again = LocalNeo4j(home=server.home, cache=config.cache_dir()).start()
    assert again.already_running is True
    assert again.pid == before[0].pid
    assert (again.bolt_port, again.http_port) == (server.bolt_port, server.http_port)
    assert [p.pid for p in server_processes(server.home)] == [before[0].pid]


def test_a_port_taken_by_another_program_is_a_clear_error(
    neo4j_server: LocalNeo4j | None, tmp_path: Path
) -> None:
    server = needs_local(neo4j_server)
    other = LocalNeo4j(home=tmp_path / "neo4j", bolt_port=server.bolt_port, http_port=server.http_port + 1)
    with pytest.raises(Exception, match=rf"Bolt port {server.bolt_port} on 127.0.0.1 is already in use") as caught:
        other.start()
    assert "--bolt-port" in str(caught.value)
    assert server_processes(other.home) == []


def test_status_reports_the_running_server(neo4j_server: LocalNeo4j | None) -> None:
    server = needs_local(neo4j_server)
    status = LocalNeo4j(home=server.home).status()
    assert status.running is True
    assert status.version == "5.26.19 community"
    assert status.bolt_uri == f"bolt://127.0.0.1:{server.bolt_port}"
    assert status.browser_url == f"http://127.0.0.1:{server.http_port}/browser/"
    assert status.data_dir == server.home / "data"


@pytest.mark.slow
def test_a_second_server_starts_and_stop_leaves_no_process_behind(
    throwaway_server: Callable[..., LocalNeo4j], tmp_path: Path
) -> None:
    server = throwaway_server(tmp_path / "neo4j", heap="256m", pagecache="64m")
    status = server.start()
    try:
        assert status.running and status.already_running is False
        assert status.pid is not None and psutil.Process(status.pid).is_running()
        assert port_answers(server.bolt_port)
        password = server.password()
        assert password not in " ".join(psutil.Process(status.pid).cmdline())
        assert password not in (server.conf_dir / "neo4j.conf").read_text()
        assert all(password not in log.read_text(errors="replace") for log in server.logs_dir.glob("*.log"))
        assert (server.password_file.stat().st_mode & 0o777) == 0o600
    finally:
        stopped_pid = server.stop()
    assert stopped_pid == status.pid
    assert not psutil.pid_exists(status.pid)
    assert not server.pid_file.exists()
    assert not port_answers(server.bolt_port)
    assert server.status().running is False
    assert server.stop() is None


def run_cli(*args: str, env: dict[str, str | None]) -> tuple[int, str]:
    """``gnnsec db <args>`` in-process, with ``env`` on top of a clean NEO4J_* environment."""
    from click.testing import CliRunner

    from gnnsec.cli.main import cli

    clean: dict[str, str | None] = {name: None for name in ("NEO4J_URI", "NEO4J_USER", "NEO4J_DATABASE")}
    result = CliRunner(env={**clean, **env}).invoke(cli, ["db", *args])
    return result.exit_code, result.output


def test_cli_status_start_and_init_speak_about_the_running_server(neo4j_server: LocalNeo4j | None) -> None:
    server = needs_local(neo4j_server)
    env: dict[str, str | None] = {"GNNSEC_HOME": str(server.home.parent), "NEO4J_PASSWORD": server.password()}
    code, output = run_cli("status", env=env)
    assert code == 0, output
    assert "running" in output and f"bolt://127.0.0.1:{server.bolt_port}" in output and "5.26.19 community" in output
    code, output = run_cli("start", env=env)
    assert code == 0, output
    assert "already running" in output and f"http://127.0.0.1:{server.http_port}/browser/" in output
    code, output = run_cli("init", env=env)
    assert code == 0, output
    statements = len(schema_statements())
    assert f"Schema applied to bolt://127.0.0.1:{server.bolt_port} (database neo4j): {statements}" in output


def test_cli_start_uses_an_answering_neo4j_uri_and_refuses_a_silent_one(
    neo4j_server: LocalNeo4j | None, tmp_path: Path
) -> None:
    server = needs_local(neo4j_server)
    env: dict[str, str | None] = {
        "GNNSEC_HOME": str(tmp_path),
        "NEO4J_URI": server.bolt_uri,
        "NEO4J_PASSWORD": server.password(),
    }
    code, output = run_cli("start", env=env)
    assert code == 0, output
    assert "answers: gnnsec uses that server and does not start its own" in output
    assert not (tmp_path / "neo4j").exists()
    with socket.socket() as probe:  # a port nobody listens on: bound but never listening
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
        code, output = run_cli("start", env={**env, "NEO4J_URI": f"bolt://127.0.0.1:{dead_port}"})
    assert code == 1
    assert "is set but nothing answers there" in output


def test_a_server_that_dies_at_start_is_reported_with_the_tail_of_its_log(
    throwaway_server: Callable[..., LocalNeo4j], tmp_path: Path
) -> None:
    server = throwaway_server(tmp_path / "neo4j", heap="256m", pagecache="64m")
    (server.data_dir).mkdir(parents=True)
    (server.data_dir / "databases").write_text("a file where Neo4j needs a directory\n")
    with pytest.raises(Exception, match=r"exited during start-up\. Last lines of .*console\.log") as caught:
        server.start()
    assert "ERROR Failed to start Neo4j" in str(caught.value)
    assert f"FileAlreadyExistsException: {server.data_dir / 'databases'}" in str(caught.value)
    assert "\tat " not in str(caught.value)
    assert server_processes(server.home) == []
    assert not server.pid_file.exists()


def test_cli_status_exits_3_when_the_server_is_stopped(tmp_path: Path) -> None:
    """Scripts test ``gnnsec db status`` by its exit status (LSB: 3 = not running)."""
    code, output = run_cli("status", env={"GNNSEC_HOME": str(tmp_path), "NEO4J_PASSWORD": "unused-here"})
    assert code == 3, output
    assert "stopped" in output
