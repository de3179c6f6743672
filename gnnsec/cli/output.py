"""One way for every command to print results: ``--format table|json|jsonl|csv``, one serializer, and tables
that stay readable at 80 columns.

* :func:`format_option` adds ``--format``; :func:`choose_format` resolves its default: ``table`` on a terminal,
  ``jsonl`` when stdout is piped (what ``score`` and ``query`` always did).
* :func:`plain` turns driver and Python values into JSON values: full uids, times as ISO-8601 UTC to the second
  (``2026-03-02T00:00:00Z``), numbers as numbers (NaN and infinity as null). :func:`emit` writes rows as one
  JSON array, JSON lines or CSV (lists and objects as compact JSON text in a cell). docs/findings.md documents
  the fields of each command.
* :func:`print_table` prints rows for a person: a table when it fits the console without breaking a word, else
  one block per row (``field  value``), so no uid or header is ever cut mid-token.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gnnsec.cli.common import console, display_name

FORMATS = ("table", "json", "jsonl", "csv")


def format_option(help_text: str = "", *, choices: Sequence[str] = FORMATS) -> Callable[[Any], Any]:
    """``--format`` (parameter ``fmt``) with the shared default: table on a terminal, jsonl when piped."""
    text = "table on a terminal, jsonl when piped (default); json (one array), jsonl (one object a line)"
    text += ", csv (with a header line)" if "csv" in choices else ""
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=None,
                        help=f"{text}. {help_text}".strip() + " Fields: docs/findings.md.")


def choose_format(fmt: str | None, piped: str = "jsonl", out: Console | None = None) -> str:
    """The format asked for, else ``table`` when stdout is a terminal and ``piped`` (JSON lines) when it is not."""
    return fmt or ("table" if (out or console).is_terminal else piped)


# ---- serializing -------------------------------------------------------------------------------------------


def iso_utc(moment: Any) -> str | None:
    """A date-time as ``2026-03-02T00:00:00Z`` (UTC, to the second); a date as ``2026-03-02``; None as None."""
    if moment is None:
        return None
    if hasattr(moment, "to_native"):
        moment = moment.to_native()
    if isinstance(moment, datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(moment, date):
        return moment.isoformat()
    return str(moment)


def plain(value: Any) -> Any:
    """A value as JSON: driver temporal values and datetimes as ISO-8601 (date-times UTC to the second), nodes
    and relationships as their properties, tuples and lists element by element, numpy scalars as numbers,
    non-finite floats as null."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "to_native") or isinstance(value, datetime | date):
        native = value.to_native() if hasattr(value, "to_native") else value
        if isinstance(native, datetime | date):
            return iso_utc(native)
        return native.isoformat() if hasattr(native, "isoformat") else str(native)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if hasattr(value, "items") and hasattr(value, "element_id"):  # a node or relationship
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # a numpy or torch scalar
        return plain(value.item())
    return str(value)


def _csv_cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def emit(rows: Iterable[Mapping[str, Any]], fmt: str, columns: Sequence[str] | None = None) -> None:
    """Write ``rows`` to stdout as ``json`` (one indented array), ``jsonl`` (one compact object a line) or
    ``csv`` (a header line, then one line a row; ``columns`` fixes the header and its order, else the keys of
    the rows in first-seen order)."""
    rows = [plain(dict(row)) for row in rows]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "jsonl":
        for row in rows:
            click.echo(json.dumps(row, separators=(",", ":")))
    elif fmt == "csv":
        header = list(columns) if columns is not None else list(dict.fromkeys(k for row in rows for k in row))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_csv_cell(row.get(name)) for name in header])
        click.echo(buffer.getvalue(), nl=False)
    else:
        raise ValueError(f"emit() writes json, jsonl or csv, not {fmt!r}")


def emit_one(document: Mapping[str, Any], fmt: str, columns: Sequence[str] | None = None) -> None:
    """A command whose answer is one object (``explain``, ``db status``): ``json`` writes that object (not an
    array of one), ``jsonl`` one line, ``csv`` a header and one line."""
    if fmt == "json":
        click.echo(json.dumps(plain(dict(document)), indent=2))
    else:
        emit([document], fmt, columns)


# ---- for people ----------------------------------------------------------------------------------------------

_LONG = 48
"""Display names longer than this are shortened further: the middle gives way to "…"."""
_TOKEN = re.compile(r"[^\s,;()]+")
_CUT_ARN = re.compile(r":(\d{12}):([^:]+)$")


def short_name(uid: str) -> str:
    """A uid for a table: :func:`display_name` (``user/alice@123456789012`` for an ARN), a GCP service account
    as ``gcp:sa:NAME@PROJECT``, and anything still over 48 characters as its start, "…" and its
    end. The full uid is in every JSON format."""
    cut_arn = _CUT_ARN.search(uid) if uid.startswith("…") else None  # an ARN the detector's reasons shortened
    name = f"{cut_arn.group(2)}@{cut_arn.group(1)}" if cut_arn else uid if uid.startswith("…") else display_name(uid)
    name = name.replace(".iam.gserviceaccount.com", "").replace("gcp:serviceAccount:", "gcp:sa:")
    if len(name) > _LONG:
        name = name[: _LONG // 2 - 1] + "…" + name[-(_LONG // 2):]
    return name


def short_text(text: str) -> str:
    """Text for a table: the uids in it (ARNs, long ``a:b`` or ``a/b`` tokens) by their short names."""

    def shorten(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith(("arn:", "…:")) or (len(token) > 40 and (":" in token or "/" in token)):
            return short_name(token)
        return token

    return _TOKEN.sub(shorten, text)


def cell(value: Any) -> str:
    """A value as a table cell: a single token (a uid) by its display name, text with ARNs shortened, floats to
    four significant digits, date-times to the second, lists joined (the first six)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "to_native") or isinstance(value, datetime | date):
        return str(plain(value))
    if isinstance(value, list | tuple):
        shown = ", ".join(cell(v) for v in value[:6])
        return shown + (f" …(+{len(value) - 6})" if len(value) > 6 else "")
    text = str(value)
    return short_name(text) if " " not in text else short_text(text)


def _longest_token(text: str) -> int:
    return max((len(token) for token in text.split()), default=0)


def _longest_line(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


_ROOMY = 24


def _share(room: int, least: list[int], natural: list[int]) -> list[int]:
    """Column widths from ``least`` towards ``natural`` within ``room``: the columns that need least extra are
    filled first, the rest share what is left evenly."""
    widths = list(least)
    wanting = [i for i in range(len(widths)) if natural[i] > widths[i]]
    spare = room - sum(widths)
    while wanting and spare > 0:
        share = spare // len(wanting)
        done = [i for i in wanting if natural[i] - widths[i] <= share]
        if not done:
            for i in wanting[: spare % len(wanting) or len(wanting)] if share == 0 else wanting:
                widths[i] += max(share, 1)
            break
        for i in done:
            spare -= natural[i] - widths[i]
            widths[i] = natural[i]
        wanting = [i for i in wanting if i not in done]
    return widths


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str | Text]], *,
                out: Console | None = None, right: Sequence[str] = ()) -> None:
    """Rows for a person. A table when every column fits the console's width without breaking a word (the
    header included); else each row as a block of ``column  value`` lines, so nothing is cut mid-token."""
    out = out or console
    width = out.width
    texts = [[c.plain if isinstance(c, Text) else str(c) for c in row] for row in rows]
    natural = [max([len(name), *(_longest_line(r[i]) for r in texts)]) for i, name in enumerate(columns)]
    least = [max([len(name), *(_longest_token(r[i]) for r in texts)]) for i, name in enumerate(columns)]
    overhead = 3 * len(columns) + 1  # the box's edges and one space of padding on each side of a cell
    # A table only when each column gets its longest word and text columns at least _ROOMY characters, so
    # no column shrinks to a few words a line: else blocks read better.
    roomy = [min(n, max(m, _ROOMY)) for n, m in zip(natural, least, strict=True)]
    if sum(roomy) + overhead <= width:
        widths = _share(width - overhead, roomy, natural)
        table = Table(title=title, title_justify="left")
        for name, column_width in zip(columns, widths, strict=True):
            table.add_column(name, width=column_width, justify="right" if name in right else "left",
                             overflow="fold")
        for row in rows:
            table.add_row(*(c if isinstance(c, Text) else Text(str(c)) for c in row))
        out.print(table)
        return
    key_width = max((len(name) for name in columns), default=0)
    out.print(Text(title, style="italic"))
    block = Table(box=None, show_header=False, padding=(0, 1, 0, 0), pad_edge=False)
    block.add_column(width=key_width, no_wrap=True, style="bold")
    block.add_column(overflow="fold")
    for index, row in enumerate(rows):
        if index:
            block.add_row("", "")
        for name, value in zip(columns, row, strict=True):
            block.add_row(name, value if isinstance(value, Text) else Text(str(value)))
    out.print(block)
