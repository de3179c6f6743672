"""Errors a user makes get a message that says how to fix them, the exit code of the one map (1 an error gnnsec
named, 2 a usage error), and come fast: before torch loads or anything is exported. Every option says what it
does in ``--help``."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner

from gnnsec.cli.main import SUBCOMMANDS, cli

NOWHERE = {"NEO4J_URI": "bolt://127.0.0.1:1", "NEO4J_PASSWORD": "unused"}
"""A server that is never reached: the errors below come before connecting."""


@pytest.mark.parametrize("command", [["score"], ["findings"], ["train"]])
def test_a_bad_since_is_a_usage_error_that_names_the_option(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--since", "yesterday"], env=NOWHERE)
    assert result.exit_code == 2, result.output
    assert "Invalid value for --since: 'yesterday' is not an ISO date or date-time" in result.output


def test_a_mistyped_ingest_source_gets_a_suggestion() -> None:
    result = CliRunner().invoke(cli, ["ingest", "cloudtral", "x"], env=NOWHERE)
    assert result.exit_code == 2, result.output
    assert "Invalid value for 'SOURCE': 'cloudtral' is not one of" in result.output
    assert "Did you mean 'cloudtrail'?" in result.output
    unlike = CliRunner().invoke(cli, ["ingest", "zzzz", "x"], env=NOWHERE)
    assert unlike.exit_code == 2 and "Did you mean" not in unlike.output


def _run_train_in_a_fresh_interpreter(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """``gnnsec train ARGS`` in a new Python, so whether torch was imported is this command's doing alone."""
    script = textwrap.dedent(f"""
        import json, sys, time
        from click.testing import CliRunner
        from gnnsec.cli.main import cli
        began = time.perf_counter()
        result = CliRunner().invoke(cli, {["train", *args]!r})
        print(json.dumps({{"code": result.exit_code, "output": result.output, "torch": "torch" in sys.modules,
                          "seconds": time.perf_counter() - began}}))
    """)
    import os

    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, check=True)
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_train_says_a_bad_since_before_torch_loads() -> None:
    outcome = _run_train_in_a_fresh_interpreter(["--since", "2026-13-45"], NOWHERE)
    assert outcome["code"] == 2, outcome
    assert "'2026-13-45' is not an ISO date or date-time" in outcome["output"]
    assert not outcome["torch"], "torch was imported before the window was checked"


@pytest.mark.integration
def test_train_on_an_empty_graph_fails_fast_with_exit_1(clean_db: Any, neo4j_settings: Any, tmp_path: Any) -> None:
    env = {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,
           "NEO4J_PASSWORD": neo4j_settings.password, "NEO4J_DATABASE": neo4j_settings.database,
           "GNNSEC_HOME": str(tmp_path / "home")}
    outcome = _run_train_in_a_fresh_interpreter([], env)
    assert outcome["code"] == 1, outcome
    assert outcome["output"].startswith("Error: the graph is empty, so there is nothing to train on: ingest data "
                                        "first (`gnnsec ingest`)"), outcome
    assert not outcome["torch"], "torch was imported before the graph was found empty"
    assert not (tmp_path / "home" / "models").exists()
    clean_db.execute_query("CREATE (:User {uid: 'u:1', cloud: 'aws', account: '1'})",
                           database_=neo4j_settings.database)
    outcome = _run_train_in_a_fresh_interpreter(["--cloud", "gcp"], env)
    assert outcome["code"] == 1 and "no nodes in the --cloud/--account asked for" in outcome["output"], outcome
    assert not outcome["torch"]


def _commands() -> Iterator[tuple[str, click.Command]]:
    for name, (module, attribute, _) in SUBCOMMANDS.items():
        stack: list[tuple[str, click.Command]] = [(name, getattr(importlib.import_module(module), attribute))]
        while stack:
            path, command = stack.pop()
            yield path, command
            if isinstance(command, click.Group):
                stack += [(f"{path} {sub}", cmd) for sub, cmd in command.commands.items()]


def test_every_option_of_every_command_says_what_it_does() -> None:
    missing = [f"gnnsec {path} {'/'.join(param.opts)}" for path, command in _commands() for param in command.params
               if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()]
    assert not missing, "options without help text: " + ", ".join(missing)
    assert sum(1 for _ in _commands()) > len(SUBCOMMANDS)  # the db group's subcommands were walked too


def test_every_help_page_fits_80_columns() -> None:
    """`gnnsec CMD --help` at a terminal 80 columns wide: no line longer (the ingest source list once ran to 123)."""
    import click

    from gnnsec.cli.main import SUBCOMMANDS, cli

    runner = CliRunner()
    pages = [[], *([name] for name in SUBCOMMANDS)]
    db = cli.get_command(click.Context(cli), "db")
    assert isinstance(db, click.Group)
    pages += [["db", sub] for sub in db.list_commands(click.Context(db))]
    for page in pages:
        result = runner.invoke(cli, [*page, "--help"], terminal_width=80)
        assert result.exit_code == 0, (page, result.output)
        long = [line for line in result.output.splitlines() if len(line) > 80]
        assert not long, (page, long)
