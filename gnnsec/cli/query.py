"""``gnnsec query NAME [-p key=value]``: run a hunt from the pack and print a table."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from gnnsec.cli.common import connected, console, neo4j_options
from gnnsec.hunts import load_hunts


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        shown = ", ".join(_cell(v) for v in value[:6])
        return shown + (f" …(+{len(value) - 6})" if len(value) > 6 else "")
    return "" if value is None else str(value)


def _plain(value: Any) -> Any:
    """A driver value as JSON: temporal values as ISO-8601 (UTC to the second for date-times), nodes and paths
    as their properties, lists element by element."""
    if hasattr(value, "to_native"):
        native = value.to_native()
        if hasattr(native, "astimezone") and getattr(native, "tzinfo", None) is not None:
            from datetime import UTC

            return native.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return native.isoformat() if hasattr(native, "isoformat") else str(native)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "items") and hasattr(value, "element_id"):  # a node or relationship
        return {k: _plain(v) for k, v in value.items()}
    return value


@click.command("query")
@neo4j_options
@click.argument("name", required=False)
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a hunt parameter.")
@click.option("--list", "list_hunts", is_flag=True, help="List the hunts and their parameters.")
@click.option("--show", is_flag=True, help="Print the Cypher instead of running it.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "jsonl"]), default=None,
              help="table on a terminal, jsonl when piped (default); times as ISO-8601 UTC to the second.")
def query(name: str | None, params: tuple[str, ...], list_hunts: bool, show: bool, fmt: str | None) -> None:
    """Run a canned Cypher hunt over the scored graph."""
    hunts = load_hunts()
    if list_hunts or not name:
        table = Table(title="Hunts (cypher/hunts/)")
        table.add_column("name", style="cyan", no_wrap=True)
        table.add_column("finds")
        table.add_column("parameters", overflow="fold")  # defaults in full, folded rather than cut
        for hunt in hunts.values():
            table.add_row(hunt.name, hunt.description,
                          ", ".join(f"{p.name}={p.default}" for p in hunt.parameters))
        console.print(table)
        return
    if name not in hunts:
        import difflib

        close = difflib.get_close_matches(name, list(hunts), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise click.ClickException(f"no hunt named {name!r}; {hint}`gnnsec query --list` shows them")
    overrides: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="-p")
        overrides[key.strip()] = value.strip()
    hunt = hunts[name]
    try:
        cypher, values = hunt.bind(overrides)
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if show:
        click.echo(hunt.text, nl=not hunt.text.endswith("\n"))  # raw, unwrapped: pipes into cypher-shell as is
        return
    with connected() as (driver, database):
        records, _, keys = driver.execute_query(cypher, values, database_=database)  # type: ignore[attr-defined]
    fmt = fmt or ("table" if console.is_terminal else "jsonl")
    if fmt != "table":
        import json

        rows = [{key: _plain(record[key]) for key in keys} for record in records]
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2))
        else:
            for row in rows:
                click.echo(json.dumps(row, separators=(",", ":")))
        return
    table = Table(title=f"{hunt.name}: {len(records)} row(s)")
    for key in keys:
        table.add_column(key, overflow="fold")  # uids and ARNs are what analysts copy: never cut them
    for record in records:
        table.add_row(*(_cell(record[key]) for key in keys))
    console.print(table)
    if not records:
        console.print("[dim]No rows. Has `gnnsec score` run on this graph?[/]")
