"""``gnnsec query NAME [-p key=value]``: run a hunt from the pack and print a table."""

from __future__ import annotations

import click

from gnnsec.cli.common import connected, console, neo4j_options
from gnnsec.cli.output import cell, choose_format, emit, format_option, plain, print_table
from gnnsec.hunts import load_hunts


@click.command("query")
@neo4j_options
@click.argument("name", required=False)
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a hunt parameter.")
@click.option("--list", "list_hunts", is_flag=True, help="List the hunts and their parameters.")
@click.option("--show", is_flag=True, help="Print the Cypher instead of running it.")
@format_option("A hunt: one object per row, its columns as fields. --list: one object per hunt.")
def query(name: str | None, params: tuple[str, ...], list_hunts: bool, show: bool, fmt: str | None) -> None:
    """Run a canned Cypher hunt over the scored graph."""
    hunts = load_hunts()
    if list_hunts or not name:
        fmt = choose_format(fmt)
        if fmt != "table":
            emit(({"name": h.name, "description": h.description,
                   "parameters": [{"name": p.name, "default": p.default, "description": p.description}
                                  for p in h.parameters]} for h in hunts.values()), fmt)
            return
        print_table("Hunts (cypher/hunts/)", ("name", "finds", "parameters"),  # defaults in full, never cut
                    [[h.name, h.description, ", ".join(f"{p.name}={p.default}" for p in h.parameters)]
                     for h in hunts.values()])
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
    cypher, values = hunt.bind(overrides)
    if show:
        click.echo(hunt.text, nl=not hunt.text.endswith("\n"))  # raw, unwrapped: pipes into cypher-shell as is
        return
    with connected() as (driver, database):
        records, _, keys = driver.execute_query(cypher, values, database_=database)
    fmt = choose_format(fmt)
    if fmt != "table":
        emit(({key: plain(record[key]) for key in keys} for record in records), fmt, columns=keys)
        return
    # Short names in the table (never cut mid-token); the full uids are in --format json.
    print_table(f"{hunt.name}: {len(records)} row(s)", keys, [[cell(record[key]) for key in keys]
                                                             for record in records])
    if not records:
        console.print("[dim]No rows. Has `gnnsec score` run on this graph?[/]")
