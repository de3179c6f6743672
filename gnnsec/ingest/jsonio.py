"""Reading the JSON shapes that security exports come in, one record at a time.

The same event stream arrives as ``{"Records": [...]}`` (CloudTrail delivery), a bare JSON
array (``aws … --output json``, Stratus Red Team logs), ``{"value": [...]}`` (Azure REST),
``{"items": [...]}`` (``kubectl -o json``) or JSON lines, any of them gzipped.  Adapters call
:func:`iter_json_records` and get ``(where, record)`` pairs, or a :class:`BadRecord` for a line
or element that is not a JSON object, so errors always name the record; :func:`map_json_records` is the
loop that maps them.  :func:`load_json` reads a whole document the same way for the adapters that need one.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from gnnsec.ingest._common import excerpt
from gnnsec.ingest.base import AdapterError, BadRecord, Record, head, open_text
from gnnsec.ingest.validation import safe_excerpt
from gnnsec.times import parse_time as parse_time  # re-exported: adapters read times through jsonio

ENVELOPE_KEYS: tuple[str, ...] = ("Records", "records", "value", "items", "entries", "events")


JsonItem = tuple[str, dict[str, Any]] | BadRecord


def iter_json_records(path: Path, envelope_keys: tuple[str, ...] = ENVELOPE_KEYS) -> Iterator[JsonItem]:
    """Yield ``(where, record)`` for each JSON object in ``path``.

    JSON lines are read line by line (memory bounded by a line); a whole-document JSON file is
    parsed once, which is how CloudTrail and the AWS CLI deliver them (a few MB per file).
    """
    first = _strict_head(path, 512).lstrip()
    if not first:
        return
    if _looks_like_json_lines(path):
        yield from _iter_json_lines(path)
        return
    document = load_json(path)
    if isinstance(document, list):
        items, prefix = document, ""
    elif isinstance(document, dict):
        key = next((k for k in envelope_keys if isinstance(document.get(k), list)), None)
        if key is None:
            yield "document", document
            return
        items, prefix = document[key], key
    else:
        raise AdapterError(path, f"expected a JSON object or array, found {type(document).__name__}")
    for index, item in enumerate(items):
        where = f"{prefix}[{index}]"
        if isinstance(item, dict):
            yield where, item
        else:
            yield BadRecord(where, f"expected a JSON object, found {type(item).__name__}", safe_excerpt(item, 200))


def map_json_records(
    items: Iterable[JsonItem],
    mapper: Callable[[str, dict[str, Any]], Iterable[Record]],
    errors: type[Exception] | tuple[type[Exception], ...] = (),
) -> Iterator[Record]:
    """The records ``mapper`` makes of each ``(where, record)``, with the bad items passed through.

    The one record loop of the adapters: a line or element that is not a JSON object stays a
    :class:`BadRecord`, and an ``errors`` exception the mapper raises becomes one naming the record
    (what it yielded before is kept), so one bad record never stops the file."""
    for item in items:
        if isinstance(item, BadRecord):
            yield item
            continue
        where, record = item
        try:
            yield from mapper(where, record)
        except errors as exc:
            yield BadRecord(where, str(exc), excerpt(record))


def load_json(path: Path, plain: bool = False) -> Any:
    """The JSON document in ``path``, or an :class:`AdapterError` naming the file: one place says what an
    unreadable or invalid document is called. ``plain`` reads the bytes as they are (no gunzipping by name,
    UTF-8 checked by the parser): inventory files are named after resources, which may end in ``.gz``."""
    try:
        if plain:
            return orjson.loads(path.read_bytes())
        with open_text(path) as handle:
            return orjson.loads(handle.read())
    except orjson.JSONDecodeError as exc:
        raise AdapterError(path, f"not valid JSON: {exc}") from exc
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:  # zlib: a corrupt gzip body
        raise AdapterError(path, f"cannot read: {exc}") from exc


def _looks_like_json_lines(path: Path) -> bool:
    """True when the first non-empty line is a complete JSON object followed by another line."""
    text = head(path, 1 << 16)
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 and not path.name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        return False
    try:
        return isinstance(orjson.loads(lines[0]), dict)
    except (orjson.JSONDecodeError, IndexError):
        return False


def _iter_json_lines(path: Path) -> Iterator[tuple[str, dict[str, Any]] | BadRecord]:
    try:
        with open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"line {number}"
                try:
                    item = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    yield BadRecord(where, f"not valid JSON: {exc}", line[:200])
                    continue
                if isinstance(item, dict):
                    yield where, item
                else:
                    yield BadRecord(where, f"expected a JSON object, found {type(item).__name__}", line[:200])
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise AdapterError(path, f"cannot read: {exc}") from exc


def _strict_head(path: Path, size: int) -> str:
    """The first ``size`` characters, or an :class:`AdapterError` naming the file when it cannot be read as
    (gzipped) UTF-8 text. Sniffing may be lenient (``head``); reading must not be: an unreadable, mis-compressed
    or undecodable file read as empty would be skipped in silence, which an attacker could use to blind us."""
    try:
        with open_text(path) as handle:
            return handle.read(size)
    except UnicodeDecodeError as exc:
        raise AdapterError(path, f"not UTF-8 text (byte {exc.start}): {exc.reason}") from exc
    except gzip.BadGzipFile as exc:
        raise AdapterError(path, f"named .gz but not gzip-compressed: {exc}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise AdapterError(path, f"cannot read: {exc}") from exc


