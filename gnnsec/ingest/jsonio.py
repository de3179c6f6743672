"""Reading the JSON shapes that security exports come in, one record at a time.

The same event stream arrives as ``{"Records": [...]}`` (CloudTrail delivery), a bare JSON
array (``aws … --output json``, Stratus Red Team logs), ``{"value": [...]}`` (Azure REST),
``{"items": [...]}`` (``kubectl -o json``) or JSON lines, any of them gzipped.  Adapters call
:func:`iter_json_records` and get ``(where, record)`` pairs, or a :class:`BadRecord` for a line
or element that is not a JSON object, so errors always name the record; :func:`map_json_records` is the
loop that maps them.  :func:`load_json` reads a whole document the same way for the adapters that need one.
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from gnnsec.ingest._common import excerpt
from gnnsec.ingest.base import AdapterError, BadRecord, Record, open_bytes, open_text
from gnnsec.ingest.validation import safe_excerpt
from gnnsec.times import parse_time as parse_time  # re-exported: adapters read times through jsonio

ENVELOPE_KEYS: tuple[str, ...] = ("Records", "records", "value", "items", "entries", "events")


JsonItem = tuple[str, dict[str, Any]] | BadRecord


def iter_json_records(path: Path, envelope_keys: tuple[str, ...] = ENVELOPE_KEYS) -> Iterator[JsonItem]:
    """Yield ``(where, record)`` for each JSON object in ``path``.

    JSON lines are read line by line (memory bounded by a line); a whole-document JSON file is
    parsed once, which is how CloudTrail and the AWS CLI deliver them (a few MB per file).  A document is read
    through one open: AWS's 5-minute layout is mostly files of a few events, where three opens (head, sniff,
    read) cost as much as the parsing.
    """
    document = _read_document(path)
    if document is _JSON_LINES:
        yield from _iter_json_lines(path)
        return
    if document is _BLANK:
        return
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
            return _parsed(path, path.read_bytes())
        with open_bytes(path) as handle:
            return _parsed(path, handle.read())
    except (OSError, EOFError, zlib.error) as exc:  # zlib: a corrupt gzip body
        raise AdapterError(path, f"cannot read: {exc}") from exc


_JSON_LINES, _BLANK = object(), object()

HEAD_BYTES = 1 << 16
"""How much of a file decides between JSON lines and one document (and is checked for UTF-8 first)."""

SMALL_GZIP_BYTES = 1 << 20
"""A gzipped file up to this size on disk is inflated in one call, not through ``GzipFile``: 60 → 37 µs a file
in AWS's 5-minute layout (median 1 kB), where ``GzipFile``'s set-up is most of the cost. Larger ones stream,
so a big JSON-lines file is never held whole."""
SMALL_INFLATED_BYTES = 64 << 20
"""The most the one-call path inflates (a JSON-lines file is read again as a stream once recognised)."""


def _read_document(path: Path) -> Any:
    """The document in ``path``, :data:`_JSON_LINES` when its first non-empty line is a whole JSON object followed
    by another line (or the name says JSON lines), or :data:`_BLANK` for a file of whitespace only."""
    try:
        data = _small_gzip(path)
        if data is not None:
            kind = _kind(path, data[:HEAD_BYTES])
        else:
            with open_bytes(path) as handle:
                start = handle.read(HEAD_BYTES)
                kind = _kind(path, start)
                data = start + handle.read() if kind is None else b""
    except gzip.BadGzipFile as exc:
        raise AdapterError(path, f"named .gz but not gzip-compressed: {exc}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise AdapterError(path, f"cannot read: {exc}") from exc
    if kind is not None:
        return kind
    if not data.strip():
        return _BLANK
    return _parsed(path, data)


def _small_gzip(path: Path) -> bytes | None:
    """The inflated bytes of a small, well-formed, one-member gzip, or None for the streaming path (anything else:
    not gzip, larger, several members or padding, truncated, or inflating past :data:`SMALL_INFLATED_BYTES`, so a
    gzip bomb streams as before). A corrupt body raises ``zlib.error``; zlib checks the trailer's CRC and size."""
    if path.suffix != ".gz" or path.stat().st_size > SMALL_GZIP_BYTES:
        return None
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return None
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    data = inflater.decompress(raw, SMALL_INFLATED_BYTES)
    return data if inflater.eof and not inflater.unused_data and not inflater.unconsumed_tail else None


def _kind(path: Path, start: bytes) -> object | None:
    """:data:`_BLANK` or :data:`_JSON_LINES` as the file's first :data:`HEAD_BYTES` say, or None for a document;
    an :class:`AdapterError` when they are not UTF-8."""
    _check_utf8(path, start)
    if not start.strip() and len(start) < HEAD_BYTES:
        return _BLANK
    return _JSON_LINES if _looks_like_json_lines(path, start) else None


def _parsed(path: Path, data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        _check_utf8(path, data)  # the parser's words for bad UTF-8 ("str is not valid UTF-8") name no byte
        raise AdapterError(path, f"not valid JSON: {exc}") from exc


def _check_utf8(path: Path, data: bytes) -> None:
    """An :class:`AdapterError` naming the first byte of ``data`` that is not UTF-8 (a character cut at the end
    of ``data`` is not counted: it may be the head of a longer file). Reading must not be lenient where
    sniffing may: an undecodable file read as empty would be skipped in silence, which an attacker could
    use to blind us."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data)
    except UnicodeDecodeError as exc:
        raise AdapterError(path, f"not UTF-8 text (byte {exc.start}): {exc.reason}") from exc


def _looks_like_json_lines(path: Path, start: bytes) -> bool:
    """True when the first non-empty line is a complete JSON object followed by another line."""
    lines = [line for line in start.splitlines() if line.strip()]
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
