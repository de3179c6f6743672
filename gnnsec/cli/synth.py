"""``gnnsec synth``: write a synthetic multi-cloud estate with labelled attacks (no logic here)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gnnsec.synth import CAMPAIGNS, SIZES, SynthError, generate


def _campaign_list(value: str | None) -> list[str] | None:
    if value is None or value.strip().lower() in ("", "all"):
        return None
    if value.strip().lower() == "none":
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


@click.command("synth")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write the estate into (created if missing).")
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same bytes.")
@click.option("--size", type=click.Choice(sorted(SIZES)), default="small", show_default=True,
              help="small ≈ 1k nodes/1 day, medium ≈ 50k nodes/1 week, large ≥ 5M events (streamed).")
@click.option("--days", type=int, default=None, help="Length of the period (default: 1, 7 or 14 by size).")
@click.option("--campaigns", default="all", show_default=True,
              help=f"Comma-separated attack campaigns, 'all' or 'none'. Known: {', '.join(CAMPAIGNS)}.")
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Start of the period in UTC (default 2026-03-02T00:00:00).")
def synth(out_dir: Path, seed: int, size: str, days: int | None, campaigns: str, start: datetime | None) -> None:
    """Generate a multi-cloud estate in real export formats, with ground-truth labels."""
    console = Console(stderr=True)
    from datetime import UTC

    begin = start.replace(tzinfo=UTC) if start is not None else None
    try:
        if size == "small":
            summary = generate(out_dir, seed, size, days, _campaign_list(campaigns), start=begin)
        else:
            columns = (TextColumn("[bold]synth[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn())
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("hours", total=None)

                def tick(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                summary = generate(out_dir, seed, size, days, _campaign_list(campaigns), start=begin, progress=tick)
    except SynthError as exc:
        raise click.BadParameter(str(exc)) from exc
    table = Table(title=f"gnnsec synth → {out_dir}", show_edge=False)
    table.add_column("source")
    table.add_column("files", justify="right")
    table.add_column("events", justify="right")
    for kind in sorted(set(summary.files) | set(summary.events)):
        table.add_row(kind, str(summary.files.get(kind, 0)), str(summary.events.get(kind, 0)))
    Console().print(table)
    Console().print(
        f"{summary.total_events:,} events, ~{summary.nodes:,} nodes, {summary.malicious_entities} labelled entities "
        f"in {len(summary.campaigns)} campaigns; {summary.seconds:.1f} s"
    )
