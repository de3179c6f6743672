"""Connecting like Cartography: ``--neo4j-*`` options on every command that talks to Neo4j, each with its variable
shown in ``--help``; a password only ever named (``--neo4j-password-env-var``), never given; ``-q`` and ``-v``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from gnnsec.cli.common import (
    VERBOSITY_KEY,
    connection_settings,
    neo4j_options,
    progress,
    threads_option,
)
from gnnsec.cli.main import cli, main
from gnnsec.hunts import load_hunts

CONNECTION_FLAGS = ("--neo4j-uri", "--neo4j-user", "--neo4j-password-env-var", "--neo4j-database")
NEO4J_VARIABLES = ("env var: NEO4J_URI", "env var: NEO4J_USER", "env var: NEO4J_DATABASE")
CLEAN = {name: None for name in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE", "GNNSEC_TEST_PW")}
"""Variables a test must not inherit from the shell that runs the suite (None: unset during the test)."""


def help_text(*command: str) -> str:
    result = CliRunner().invoke(cli, [*command, "--help"], env=CLEAN)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # the help wraps lines wherever the terminal width says


@pytest.mark.parametrize("command", [("score",), ("query",), ("ingest",), ("train",), ("explain",), ("feedback",),
                                     ("findings",), ("demo",), ("eval",), ("db", "status"), ("db", "init")])
def test_every_command_that_talks_to_neo4j_takes_the_four_options_and_shows_their_variables(
        command: tuple[str, ...]) -> None:
    shown = help_text(*command)
    for text in (*CONNECTION_FLAGS, *NEO4J_VARIABLES, "NEO4J_PASSWORD"):
        assert text in shown, (command, text)


@pytest.mark.parametrize(("command", "variable"), [
    (("feedback",), "GNNSEC_ANALYST"),
    (("score",), "GNNSEC_THREADS"),
    (("train",), "GNNSEC_THREADS"),
    (("eval",), "GNNSEC_THREADS"),
    (("demo",), "GNNSEC_THREADS"),
    (("demo",), "GNNSEC_CACHE"),
    (("db", "start"), "GNNSEC_CACHE"),
    (("db", "start"), "GNNSEC_BOLT_PORT"),
])
def test_the_other_variables_are_shown_where_they_are_used(command: tuple[str, ...], variable: str) -> None:
    assert f"env var: {variable}" in help_text(*command)


def test_threads_on_the_command_line_set_gnnsec_threads_for_that_command_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv("GNNSEC_THREADS", raising=False)
    seen: list[str | None] = []

    @click.command()
    @threads_option
    def probe() -> None:
        seen.append(os.environ.get("GNNSEC_THREADS"))

    assert CliRunner().invoke(probe, ["--threads", "3"]).exit_code == 0
    assert seen == ["3"] and "GNNSEC_THREADS" not in os.environ
    assert CliRunner().invoke(probe, [], env={"GNNSEC_THREADS": "0"}).exit_code == 2  # checked like the option


def test_quiet_and_verbose_are_top_level_options_that_exclude_each_other() -> None:
    shown = help_text()
    assert "-q, --quiet" in shown and "-v, --verbose" in shown
    result = CliRunner().invoke(cli, ["-q", "-v", "query", "--list"], env=CLEAN)
    assert result.exit_code == 2 and "contradict" in result.output
    assert CliRunner().invoke(cli, ["-q", "query", "--list"], env=CLEAN).exit_code == 0


def test_quiet_silences_progress(capsys: pytest.CaptureFixture[str]) -> None:
    with click.Context(click.Command("x")) as ctx:
        ctx.meta[VERBOSITY_KEY] = -1
        with progress("scoring") as update:
            update("never shown")
    assert capsys.readouterr().err == ""


def first_hunt() -> str:
    return next(iter(load_hunts()))


def test_a_password_variable_that_is_not_set_is_a_usage_error_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    args = [first_hunt(), "--neo4j-uri", "bolt://127.0.0.1:1", "--neo4j-password-env-var", "GNNSEC_TEST_PW"]
    result = CliRunner().invoke(cli, ["query", *args], env=CLEAN)
    assert result.exit_code == 2
    assert "GNNSEC_TEST_PW" in result.output and "not set" in result.output
    empty = CliRunner().invoke(cli, ["query", *args], env={**CLEAN, "GNNSEC_TEST_PW": ""})
    assert empty.exit_code == 2 and "GNNSEC_TEST_PW" in empty.output
    with pytest.MonkeyPatch.context() as patch:  # the real entry point maps it to the same exit code
        for name in CLEAN:
            patch.delenv(name, raising=False)
        assert main(["query", *args]) == 2
    assert "GNNSEC_TEST_PW" in capsys.readouterr().err


def test_a_uri_without_any_password_is_a_usage_error_that_says_how_to_name_one() -> None:
    result = CliRunner().invoke(cli, ["query", first_hunt(), "--neo4j-uri", "bolt://127.0.0.1:1"], env=CLEAN)
    assert result.exit_code == 2
    assert "--neo4j-uri is set" in result.output and "NEO4J_PASSWORD" in result.output
    assert "--neo4j-password-env-var" in result.output


def test_the_password_never_appears_even_when_verbose() -> None:
    result = CliRunner().invoke(
        cli, ["-v", "query", first_hunt(), "--neo4j-uri", "bolt://127.0.0.1:1", "--neo4j-password-env-var",
              "GNNSEC_TEST_PW"], env={**CLEAN, "GNNSEC_TEST_PW": "s3cret-value-not-to-print"})
    assert result.exit_code == 1  # nothing answers on port 1
    assert "bolt://127.0.0.1:1 (--neo4j-uri)" in result.output and "password from GNNSEC_TEST_PW" in result.output
    assert "s3cret-value-not-to-print" not in result.output
    assert "cannot reach Neo4j" in result.output


def resolved(args: list[str], env: dict[str, str | None]) -> Any:
    """The settings a command decorated with ``neo4j_options`` resolves for these arguments and variables."""
    seen: list[Any] = []

    @click.command()
    @neo4j_options
    def probe() -> None:
        seen.append(connection_settings())

    result = CliRunner().invoke(probe, args, env={**CLEAN, **env})
    assert result.exit_code == 0, result.output
    return seen[0]


def test_a_flag_beats_its_variable_which_beats_the_default() -> None:
    env = {"NEO4J_URI": "bolt://from-env:7687", "NEO4J_USER": "env-user", "NEO4J_DATABASE": "envdb",
           "NEO4J_PASSWORD": "env-password", "GNNSEC_TEST_PW": "named-password"}
    from_env = resolved([], env)
    assert (from_env.uri, from_env.user, from_env.password, from_env.database) == (
        "bolt://from-env:7687", "env-user", "env-password", "envdb")
    flags = resolved(["--neo4j-uri", "bolt://from-flag:7687", "--neo4j-user", "flag-user", "--neo4j-database",
                      "flagdb", "--neo4j-password-env-var", "GNNSEC_TEST_PW"], env)
    assert (flags.uri, flags.user, flags.password, flags.database) == (
        "bolt://from-flag:7687", "flag-user", "named-password", "flagdb")
    assert "named-password" not in repr(flags)
    defaults = resolved(["--neo4j-uri", "neo4j+s://host"], {"NEO4J_PASSWORD": "pw"})
    assert (defaults.user, defaults.database) == ("neo4j", "neo4j")


def test_without_a_uri_the_local_server_is_used_with_the_named_password(tmp_path: Path) -> None:
    home = str(tmp_path / "state")
    settings = resolved(["--neo4j-password-env-var", "GNNSEC_TEST_PW", "--neo4j-database", "other"],
                        {"GNNSEC_HOME": home, "GNNSEC_BOLT_PORT": "17699", "GNNSEC_TEST_PW": "local-password"})
    assert (settings.uri, settings.password, settings.database) == ("bolt://127.0.0.1:17699", "local-password",
                                                                    "other")
    assert not (tmp_path / "state" / "neo4j" / "password").exists()  # a named password generates none


@pytest.mark.integration
def test_query_reaches_the_test_server_through_the_flags_alone(neo4j_settings: Any) -> None:
    """No NEO4J_* variable at all: the URI, user and database as flags, the password named by its variable."""
    flags = ["--neo4j-uri", neo4j_settings.uri, "--neo4j-user", neo4j_settings.user,
             "--neo4j-password-env-var", "GNNSEC_TEST_PW", "--neo4j-database", neo4j_settings.database]
    env = {**CLEAN, "GNNSEC_TEST_PW": neo4j_settings.password}
    result = CliRunner().invoke(cli, ["-v", "query", first_hunt(), "--format", "json", *flags], env=env)
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout), list)
    assert f"Neo4j {neo4j_settings.uri} (--neo4j-uri)" in result.stderr
    assert neo4j_settings.password not in result.output
    status = CliRunner().invoke(cli, ["db", "status", *flags], env=env)
    assert status.exit_code == 0 and "external (--neo4j-uri)" in status.output
    wrong = CliRunner().invoke(cli, ["query", first_hunt(), *flags],
                               env={**env, "GNNSEC_TEST_PW": neo4j_settings.password + "-wrong"})
    assert wrong.exit_code == 1
    assert "rejected user" in wrong.output and "GNNSEC_TEST_PW" in wrong.output
