"""Reading files the way adapters see them: the sniffing head, and a JSON document read through one open.

No database: these are the byte-level rules every adapter relies on, held to what ``GzipFile`` and a text
reader would have said, so that the faster readers change no file's fate."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from gnnsec.ingest.base import AdapterError, head, open_text
from gnnsec.ingest.jsonio import iter_json_records

EVENT = {"eventName": "GetObject", "eventSource": "s3.amazonaws.com", "eventTime": "2026-03-02T01:50:00Z"}


def _reference_head(path: Path, size: int) -> str:
    """What a text reader over ``GzipFile`` gives for the first ``size`` characters ("" when it cannot)."""
    try:
        with open_text(path) as handle:
            return handle.read(size)
    except (OSError, UnicodeDecodeError, EOFError):
        return ""


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("size", [1, 7, 100, 4096, 1 << 16])
def test_head_reads_what_a_text_reader_reads(tmp_path: Path, gz: bool, size: int) -> None:
    text = "".join(json.dumps({**EVENT, "n": n}) + ("\r\n" if n % 3 else "\n") for n in range(400))
    path = tmp_path / ("events.jsonl.gz" if gz else "events.jsonl")
    path.write_bytes(gzip.compress(text.encode(), mtime=0) if gz else text.encode())
    sniffed, read = head(path, size), _reference_head(path, size)
    # The text of the first ``size`` bytes: a text reader's ``size`` characters, less one per "\r\n" read as "\n".
    assert read.startswith(sniffed) and len(sniffed) == min(size, len(text)) - text[:size].count("\r\n")


def test_head_reads_on_across_gzip_members_and_stops_at_zero_padding(tmp_path: Path) -> None:
    path = tmp_path / "members.json.gz"
    path.write_bytes(gzip.compress(b"", mtime=0) + gzip.compress(b'{"a": 1}\n', mtime=0)
                     + gzip.compress(b'{"b": 2}\n', mtime=0) + b"\0" * 300)
    assert head(path, 4096) == _reference_head(path, 4096) == '{"a": 1}\n{"b": 2}\n'


def test_head_is_empty_for_what_cannot_be_sniffed(tmp_path: Path) -> None:
    whole = gzip.compress(json.dumps({"Records": [EVENT] * 200}).encode(), mtime=0)
    cases = {
        "truncated.json.gz": whole[: len(whole) // 2],  # GzipFile: EOFError before the size is reached
        "plain.json.gz": json.dumps(EVENT).encode(),  # named .gz but not gzip
        "latin1.json": "café".encode("latin-1") + b" " * 10,
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert head(path, 1 << 16) == "" == _reference_head(path, 1 << 16), name


def test_a_character_cut_by_the_head_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "accents.json"
    path.write_bytes(b"{" + "é".encode() * 100)
    assert head(path, 4) == "{é"  # 1 + 2 bytes, and half of the next character left for the next read


def test_a_document_after_much_leading_whitespace_is_read_not_skipped(tmp_path: Path) -> None:
    """A head of blanks once made the file "empty": an attacker's padding must not hide events."""
    path = tmp_path / "padded.json"
    path.write_text(" " * 600 + "\n" * 70_000 + json.dumps({"Records": [EVENT, EVENT]}))
    assert [where for where, _ in iter_json_records(path)] == ["Records[0]", "Records[1]"]  # type: ignore[misc]
    blank = tmp_path / "blank.json"
    blank.write_text(" \n" * 40_000)
    assert list(iter_json_records(blank)) == []


@pytest.mark.parametrize("offset", [10, 70_000])
def test_bytes_that_are_not_utf8_name_their_offset_near_or_far(tmp_path: Path, offset: int) -> None:
    data = bytearray(json.dumps({"Records": [{**EVENT, "pad": "x" * 80_000}]}).encode())
    data[offset] = 0xFF
    path = tmp_path / "events.json.gz"
    path.write_bytes(gzip.compress(bytes(data), mtime=0))
    with pytest.raises(AdapterError, match=rf"not UTF-8 text \(byte {offset}\)"):
        list(iter_json_records(path))


def test_json_lines_are_recognised_from_the_head_and_streamed(tmp_path: Path) -> None:
    path = tmp_path / "events.log.gz"
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        for n in range(3000):  # longer than the head: the rest comes from the stream
            handle.write((json.dumps({**EVENT, "n": n}) + "\n").encode())
        handle.write(b"[1]\n")
    path.write_bytes(buffer.getvalue())
    items = list(iter_json_records(path))
    assert len(items) == 3001 and items[2999][0] == "line 3000"  # type: ignore[index]
    assert getattr(items[-1], "where", None) == "line 3001"


def test_gzips_off_the_one_call_path_read_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several members, zero padding, and more inflated bytes than the one-call path takes all stream instead."""
    from gnnsec.ingest import jsonio

    document = json.dumps({"Records": [{**EVENT, "n": n} for n in range(50)]}).encode()
    lines = b"".join(json.dumps({**EVENT, "n": n}).encode() + b"\n" for n in range(50))
    cases = {
        "members.json.gz": gzip.compress(document[:100], mtime=0) + gzip.compress(document[100:], mtime=0),
        "padded.json.gz": gzip.compress(document, mtime=0) + b"\0" * 64,
        "big.json.gz": gzip.compress(document, mtime=0),
        "big-lines.jsonl.gz": gzip.compress(lines, mtime=0),
    }
    monkeypatch.setattr(jsonio, "SMALL_INFLATED_BYTES", 1000)  # the last two inflate past it
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert jsonio._small_gzip(path) is None, name
        records = [record for _, record in iter_json_records(path)]  # type: ignore[misc]
        assert [record["n"] for record in records] == list(range(50)), name
    small = tmp_path / "small.json.gz"
    small.write_bytes(gzip.compress(document[:900], mtime=0))
    assert jsonio._small_gzip(small) == document[:900]
