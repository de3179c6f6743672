"""Hostile files for the fuzz suite (issue #12): every fixture, mutated in the ways exports break or attackers try.

:func:`generate` writes the cases under a directory and returns them; it is deterministic (one seeded
``random.Random`` per fixture and mutation, seeded from their names, never from ``hash()``), so a failing
case has the same id and the same bytes on every run. Each :class:`Case` says which outcomes the
documented rules allow:

* ``rejected``: exit 1 naming the file, nothing written (the graph checksum is unchanged);
* ``loaded``: exit 0, every record loaded;
* ``quarantined``: with ``--skip-bad``, exit 0 with the bad records counted in the summary and written to
  the quarantine report, the rest loaded.

The rules (see ``gnnsec.ingest.pipeline``, ``jsonio`` and ``validation``):

* a file that cannot be read as a whole (not UTF-8, broken or missing gzip, invalid JSON document, a JSON
  document of the wrong shape, a FIFO, socket, device or dangling link) is rejected, even with ``--skip-bad``;
* a bad record (a line of invalid JSON, a field of the wrong type the adapter reads, a value Neo4j cannot
  store, a reserved property name, a time outside 1970..2200) rejects its file, or is quarantined with
  ``--skip-bad``;
* a file cut at a record boundary, an empty file and whitespace are loaded (0 records is a documented
  result for an empty export, and only for one);
* what lands in a field an adapter does not read is ignored, and hostile text (NUL, RTL override, Cypher,
  quotes) is data, stored as it is: those cases may load.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import shutil
import socket
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gnnsec.ingest.aws_inventory import HANDLED_FILES

FIXTURES = Path(__file__).parent / "fixtures"
SEED = 12

LOADED, REJECTED, QUARANTINED = "loaded", "rejected", "quarantined"

# (source, fixture relative to tests/fixtures, whether its own records are all good): the fixtures that hold
# bad records on purpose are "dirty": their cases run with --skip-bad, where the baseline is "quarantined".
FILE_FIXTURES: tuple[tuple[str, str], ...] = (
    *(("cloudtrail", f"aws/cloudtrail/stratus-red-team/{p.name}")
      for p in sorted((FIXTURES / "aws/cloudtrail/stratus-red-team").glob("*.json"))),
    ("cloudtrail", "aws/cloudtrail/otrf/ec2_proxy_s3_exfiltration.jsonl"),
    ("cloudtrail", "aws/cloudtrail/panther/aws_cloudtrail_sample.jsonl"),
    ("aws-iam", "aws/iam/cloudsplaining-example-authz-details.json"),
    ("aws-iam", "aws/iam-extra/authz-trust-and-grants.json"),
    ("azure-activity", "azure/activity-records.json"),
    ("azure-activity", "azure/activity-rest.json"),
    ("azure-activity", "panther/azure-activity.jsonl"),
    ("azure-signin", "azure/signins-graph.json"),
    ("azure-signin", "panther/azure-signin.jsonl"),
    ("flows", "flows/vpc-flow-custom.log"),
    ("flows", "flows/vpc-flow-noheader.log.gz"),
    ("flows", "flows/vpc-flow-v2.log"),
    ("flows", "panther/vpc-flow.jsonl"),
    ("gcp-audit", "gcp/audit-gcloud.json"),
    ("gcp-audit", "panther/gcp-audit.jsonl"),
    ("gcp-audit", "panther/gke-audit.jsonl"),
    ("k8s-audit", "k8s/audit.jsonl"),
    ("k8s-audit", "panther/eks-audit.jsonl"),
    ("k8s-audit", "panther/k8s-audit.jsonl"),
    ("k8s", "k8s/prod-eks.json"),
    ("native", "native/sample.jsonl"),
    ("vulns", "vulns/grype-api.json"),
    ("vulns", "vulns/trivy-amazon-2.json"),
)
DIRTY = frozenset({"azure/activity-records.json", "flows/vpc-flow-v2.log", "k8s/audit.jsonl", "k8s/prod-eks.json",
                   "native/sample.jsonl", "panther/eks-audit.jsonl", "panther/vpc-flow.jsonl"})
INVENTORY_FIXTURES = ("aws/inventory/cloudmapper-demo", "aws/inventory-extra")
SOURCES = ("aws-iam", "aws-inventory", "azure-activity", "azure-signin", "cloudtrail", "flows", "gcp-audit", "k8s",
           "k8s-audit", "native", "vulns")

# Mutations each fixture gets; a source with many fixtures (cloudtrail) gets a seeded sample per fixture.
FILE_MUTATIONS = ("truncate", "truncate_boundary", "utf8_start", "utf8_deep", "compression", "wrong_type", "huge",
                  "deep", "hostile", "time", "top_level", "bom_crlf")
PER_FIXTURE_WHEN_MANY = 4

LATE_IN_UTC = "9999-12-31T23:59:59-05:00"  # year 10000 once in UTC
BAD_TIMES = (LATE_IN_UTC, "0001-01-01T00:00:00+05:00", "1969-12-31T23:59:59Z", "2201-01-01T00:00:00Z",
             "2024-13-45T25:61:61Z", "0000-00-00T00:00:00Z", "yesterday", 99_999_999_999_999, -1, 1e300)
CYPHER = "x'}) MATCH (n) DETACH DELETE n //\"`) CALL db.clearQueryCaches() //"
HOSTILE_STRINGS = ("nul\x00inside", "\u202egnp.exe\u202c", CYPHER, "\ud800", "n" * 100_000, "`backtick` 'q' \"dq\"",
                   "line\nbreak\r\ttab", "\ufeffzero\u200bwidth")
WRONG_TYPES: tuple[Any, ...] = (12345, 1.5, True, ["a", "list"], {"an": "object"}, "")
HUGE: tuple[Any, ...] = (2**64 + 7, -(2**63) - 1, 10**30, 1.7e308, "s" * (2 << 20), 2**63 - 1)
TIME_KEY = re.compile(r"time|date|stamp|seen|start|end|created|modified|published", re.IGNORECASE)
ISO = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d")


@dataclass(frozen=True)
class Case:
    """One hostile file (or directory) and what the rules allow for it."""

    id: str
    source: str
    path: Path
    kind: str
    allowed: frozenset[str]
    skip_bad: bool
    names: tuple[str, ...]  # the message of a rejection names one of these (the file, or the bad file inside)
    may_be_empty: bool = False  # "loaded" with 0 records is documented only for these

    def args(self, quarantine: Path) -> list[str]:
        extra = ["--skip-bad", "--quarantine", str(quarantine)] if self.skip_bad else []
        return ["ingest", self.source, *extra, str(self.path)]


def _rng(*parts: object) -> random.Random:
    return random.Random(zlib.crc32("|".join(map(str, (SEED, *parts))).encode()))


DEEP_MARK = "@@deep-nesting-%d@@"


def _dumps(value: Any) -> str:
    """JSON as the exports write it; ``ensure_ascii`` so lone surrogates and NUL travel as escapes. A
    :data:`DEEP_MARK` string becomes that many nested arrays (deeper than ``json.dumps`` can recurse)."""
    text = json.dumps(value, ensure_ascii=True)
    for depth in (1000, 10_000):
        text = text.replace(f'"{DEEP_MARK % depth}"', "[" * depth + '"bottom"' + "]" * depth)
    return text


# ---- locating and changing values inside a record ----------------------------------------------------------


def _leaves(value: Any, path: tuple[Any, ...] = (), depth: int = 0) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if depth > 8:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value[:5]):
            yield from _leaves(item, (*path, index), depth + 1)
    if path:
        yield path, value


def _set(record: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        record = record[step]
    record[path[-1]] = value


def _replace(record: Any, pool: list[tuple[tuple[Any, ...], Any]], values: tuple[Any, ...] | list[Any],
             rng: random.Random, show: Callable[[Any], str]) -> str | None:
    """Set one leaf drawn from ``pool`` to one of ``values``; ``path`` plus ``show(value)``, or None for no pool."""
    if not pool:
        return None
    path, _ = rng.choice(pool)
    value = rng.choice(values)
    _set(record, path, value)
    return ".".join(map(str, path)) + show(value)


DEEP_DEPTHS = (1000, 10_000)


def _mutate_record(record: Any, kind: str, rng: random.Random) -> str | None:
    """Change ``record`` in place for ``kind``; a short description, or None when nothing fits."""
    leaves = list(_leaves(record))
    scalars = [(p, v) for p, v in leaves if isinstance(v, str | int | float | bool) and v is not None]
    strings = [(p, v) for p, v in scalars if isinstance(v, str)]
    if kind == "wrong_type":
        return _replace(record, strings or scalars, WRONG_TYPES, rng, lambda v: f"={type(v).__name__}")
    if kind == "huge":
        if not scalars:
            return None
        numbers = [(p, v) for p, v in scalars if isinstance(v, int | float) and not isinstance(v, bool)]
        pool = numbers if numbers and rng.random() < 0.5 else scalars
        return _replace(record, pool, HUGE, rng, lambda v: f"={str(v)[:20]}")
    if kind == "deep":
        marks = [DEEP_MARK % depth for depth in DEEP_DEPTHS]
        return _replace(record, leaves, marks, rng, lambda v: f" nested {DEEP_DEPTHS[marks.index(v)]}")
    if kind == "hostile":
        return _replace(record, strings, HOSTILE_STRINGS, rng, lambda v: f"={v[:12]!r}")
    if kind == "time":
        pool = [(p, v) for p, v in scalars if (isinstance(v, str) and ISO.match(v))
                or (isinstance(p[-1], str) and TIME_KEY.search(p[-1]))]
        return _replace(record, pool, BAD_TIMES, rng, lambda v: f"={v}")
    raise ValueError(kind)


def _records_of(document: Any) -> list[Any]:
    """The records an adapter reads from a whole-document JSON file (as ``jsonio.iter_json_records`` finds them)."""
    if isinstance(document, list):
        return [r for r in document if isinstance(r, dict)] or [document]
    if isinstance(document, dict):
        for key in ("Records", "records", "value", "items", "entries", "events"):
            if isinstance(document.get(key), list) and document[key]:
                return [r for r in document[key] if isinstance(r, dict)]
        return [document]
    return []


# ---- building the files ------------------------------------------------------------------------------------


def _text_of(fixture: Path) -> bytes:
    data = fixture.read_bytes()
    return gzip.decompress(data) if fixture.suffix == ".gz" else data


def _write(path: Path, data: bytes, gz: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def _flip_utf8(data: bytes, offset: int) -> bytes:
    offset = max(0, min(offset, len(data) - 1))
    return data[:offset] + b"\xff\xfe" + data[offset + 1:]


def _structured(data: bytes, kind: str, rng: random.Random) -> tuple[bytes, str] | None:
    """A record-level mutation of JSON, JSON lines or flow-log text; None when nothing fits."""
    text = data.decode("utf-8")
    lines = text.splitlines()
    json_lines = [i for i, line in enumerate(lines) if line.strip().startswith("{")]
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if document is not None:
        records = _records_of(document)
        order = rng.sample(range(len(records)), len(records))
        for index in order:
            what = _mutate_record(records[index], kind, rng)
            if what is not None:
                return _dumps(document).encode(), f"record {index}: {what}"
        return None
    if len(json_lines) >= 1 and len(json_lines) >= len([line for line in lines if line.strip()]) - 1:
        for index in rng.sample(json_lines, len(json_lines)):
            record = json.loads(lines[index])
            what = _mutate_record(record, kind, rng)
            if what is not None:
                lines[index] = _dumps(record)
                return ("\n".join(lines) + "\n").encode(), f"line {index + 1}: {what}"
        return None
    return _flow_text(lines, kind, rng)


def _flow_text(lines: list[str], kind: str, rng: random.Random) -> tuple[bytes, str] | None:
    """Space-separated flow-log lines: change one field of one data line."""
    header = lines[0].split() if lines and not lines[0].split()[0].isdigit() else None
    fields = [f.strip("${}") for f in header] if header else ["version", "account-id", "interface-id", "srcaddr",
                                                             "dstaddr", "srcport", "dstport", "protocol", "packets",
                                                             "bytes", "start", "end", "action", "log-status"]
    data_rows = [i for i in range(1 if header else 0, len(lines)) if len(lines[i].split()) == len(fields)]
    if not data_rows:
        return None
    row = rng.choice(data_rows)
    parts = lines[row].split()
    choices: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
        "wrong_type": (("srcport", "dstport", "packets", "bytes", "protocol", "start", "srcaddr"),
                       ("abc", "-5", "1.5", "0x10", "[]", "NaN")),
        "huge": (("bytes", "packets", "srcport", "protocol"),
                 (str(2**64 + 7), str(2**63), "9" * 400, "1e309", str(2**63 - 1))),
        "time": (("start", "end"), ("99999999999999", "-1", "0", "1e30", "253402300800", "7258118400")),
        "hostile": (("interface-id", "account-id", "action", "instance-id"),
                    ("x'})MATCH(n)DETACH_DELETE(n)//", "nul\x00inside", "\u202egnp", "n" * 100_000, "`b`'q'\"d\"")),
        "deep": (("srcaddr",), ("[" * 10_000 + "]" * 10_000,)),
    }
    if kind not in choices:
        return None
    names, values = choices[kind]
    present = [n for n in names if n in fields]
    if not present:
        return None
    name = rng.choice(present)
    value = rng.choice(values)
    parts[fields.index(name)] = value
    lines[row] = " ".join(parts)
    return ("\n".join(lines) + "\n").encode(), f"line {row + 1}: {name}={value[:16]!r}"


def _is_json_document(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def _boundaries(data: bytes) -> list[int]:
    return [i + 1 for i, byte in enumerate(data[:-1]) if byte == 0x0A]


def _file_case(out: Path, source: str, rel: str, kind: str, rng: random.Random, seq: int) -> list[Case]:
    fixture = FIXTURES / rel
    gz = fixture.suffix == ".gz"
    data = _text_of(fixture)
    dirty = rel in DIRTY
    skip_bad = dirty or rng.random() < 0.4
    base = QUARANTINED if dirty else LOADED  # what the untouched fixture gives in this case's mode
    folder = out / source / f"{seq:04d}-{kind}"
    name = fixture.name
    record_level = frozenset({LOADED, REJECTED, QUARANTINED})

    def case(path: Path, allowed: set[str] | frozenset[str], what: str, *, may_be_empty: bool = False,
             mode: bool | None = None) -> Case:
        bad = skip_bad if mode is None else mode
        allowed = set(allowed)
        if dirty and allowed & {LOADED, QUARANTINED}:  # a cut or a change may also remove the planted bad record
            allowed |= {LOADED, QUARANTINED}
        if not bad:
            allowed.discard(QUARANTINED)
        return Case(f"{source}/{fixture.name}/{kind}: {what}", source, path, kind, frozenset(allowed), bad,
                    (path.name,), may_be_empty)

    whole_document = _is_json_document(data)  # a cut is at a record boundary only in JSON lines and text lines
    if kind == "truncate":
        cut = rng.randrange(1, len(data))
        at_boundary = not data[cut:].strip() or (not whole_document and (
            data[cut - 1:cut] == b"\n" or data[cut:cut + 1] in (b"\n", b"\r")))
        allowed = {base} if at_boundary else {REJECTED, QUARANTINED}
        return [case(_write(folder / name, data[:cut], gz), allowed, f"cut at byte {cut} of {len(data)}",
                     may_be_empty=len(data[:cut].strip().splitlines()) <= 1)]
    if kind == "truncate_boundary":
        cuts = _boundaries(data)
        # An empty export (no bytes, or whitespace only) loads nothing, the same way in every adapter; the
        # summary names it. A gzip of nothing is judged by its adapter (it may refuse a report-shaped format).
        empty = rng.choice((b"", b"\n  \n\t\n"))
        cases = [case(_write(folder / "empty" / name, empty, gz), {LOADED} if not gz else {LOADED, REJECTED},
                      "empty file" if not empty else "only whitespace", may_be_empty=True, mode=False)]
        if cuts:
            cut = rng.choice(cuts)
            lines = data[:cut].count(b"\n")
            cases.append(case(_write(folder / name, data[:cut], gz), {REJECTED} if whole_document else {base},
                              f"cut after line {lines}", may_be_empty=lines <= 1))
        return cases
    if kind == "utf8_start":
        offset = rng.randrange(0, min(100, len(data)))
        return [case(_write(folder / name, _flip_utf8(data, offset), gz), {REJECTED}, f"0xff at byte {offset}")]
    if kind == "utf8_deep":
        offset = rng.randrange(max(len(data) * 3 // 4, min(9000, len(data) - 1)), len(data))
        return [case(_write(folder / name, _flip_utf8(data, offset), gz), {REJECTED}, f"0xff at byte {offset}")]
    if kind == "compression":
        stem = name if gz else name + ".gz"
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(64, 4096)))
        packed = gzip.compress(data, mtime=0)
        corrupt = bytearray(packed)
        corrupt[rng.randrange(10, len(corrupt) - 8)] ^= 0xFF  # a bad CRC, or zlib's "invalid distance …"
        variants = [
            case(_write(folder / "garbage" / stem, gzip.compress(garbage, mtime=0), False), {REJECTED},
                 "gzip of random bytes"),
            case(_write(folder / "plain" / stem, data, False), {REJECTED}, "plain text named .gz"),
            case(_write(folder / "short" / stem, packed[: rng.randrange(10, max(11, len(packed) - 8))], False),
                 {REJECTED}, "truncated gzip"),
            case(_write(folder / "corrupt" / stem, bytes(corrupt), False), {REJECTED}, "flipped byte in gzip body"),
        ]
        return rng.sample(variants, 2)
    if kind == "top_level":
        value = rng.choice(("42", '"just a string"', "null", '{"Records": 5}', '[1, "a", null]', "{", "[]", "true"))
        allowed = {REJECTED, QUARANTINED} | ({LOADED} if value in ("[]", "null") else set())
        return [case(_write(folder / name, value.encode() + b"\n", gz), allowed, f"document {value}",
                     may_be_empty=value in ("[]", "null"))]
    if kind == "bom_crlf":
        variant = rng.choice(("bom", "crlf", "nul-bytes"))
        mutated = (b"\xef\xbb\xbf" + data if variant == "bom" else data.replace(b"\n", b"\r\n") if variant == "crlf"
                   else data[: len(data) // 2] + b"\x00" * 16 + data[len(data) // 2:])
        return [case(_write(folder / name, mutated, gz), record_level, variant)]
    built = _structured(data, kind, rng)
    if built is None:
        return []
    mutated, what = built
    return [case(_write(folder / name, mutated, gz), record_level, what)]


def _native_reserved(out: Path) -> list[Case]:
    """Reserved property names set by a native file (nodes, inventory and activity relationships)."""
    good = [line for line in (FIXTURES / "native/sample.jsonl").read_text().splitlines()
            if line.endswith("}") and '"Printer"' not in line and "PRINTS_ON" not in line]
    user = {"label": "User", "uid": "okta:user:alice@example.com"}
    bucket = {"label": "Bucket", "uid": "arn:aws:s3:::payroll"}
    cases = []
    for index, key in enumerate(("uid", "first_seen", "last_seen", "window", "window_seconds", "count", "batches",
                                 "batch_bytes", "anomaly_score", "anomalous", "scored_at", "model_id", "edge_reasons",
                                 "analyst_label", "failed", "actions", "sources", "", " ", "bad\x00name", "k" * 300)):
        rng = _rng("native-reserved", key)
        where = rng.choice(("node", "activity", "inventory")) if key not in ("actions", "sources") else "activity"
        if where == "node":
            line = {"kind": "node", **user, "props": {key: 1}}
        elif where == "activity":
            line = {"kind": "edge", "type": "ACCESS", "src": user, "dst": bucket, "props": {key: 1},
                    "time": "2024-05-01T08:05:00Z", "action": "s3:GetObject"}
        else:
            line = {"kind": "edge", "type": "HAS_IP", "src": {"label": "VM", "uid": "vm:1"},
                    "dst": {"label": "IP", "uid": "ip:10.0.0.9"}, "props": {key: 1}}
        skip_bad = rng.random() < 0.5
        lines = list(good)
        lines.insert(rng.randrange(len(lines) + 1), _dumps(line))
        path = _write(out / "native" / f"reserved-{index:02d}" / "reserved.jsonl", ("\n".join(lines) + "\n").encode(),
                      False)
        cases.append(Case(f"native/reserved.jsonl/reserved: {key[:20]!r} on {where}", "native", path, "reserved",
                          frozenset({QUARANTINED if skip_bad else REJECTED}), skip_bad, (path.name,)))
    return cases


def _inventory_cases(out: Path) -> list[Case]:
    """An AWS CLI inventory directory with one of its files mutated (a file-level or a record-level change)."""
    cases = []
    for rel in INVENTORY_FIXTURES:
        fixture = FIXTURES / rel
        files = sorted(p.relative_to(fixture) for p in fixture.rglob("*")
                       if p.is_file() and not p.name.startswith(("LICENSE", "README")))
        read = [f for f in files if f.name in HANDLED_FILES]  # the adapter reads these, and only these
        for kind in ("truncate", "utf8_start", "utf8_deep", "wrong_type", "huge", "deep", "hostile", "time",
                     "top_level", "empty", "fifo", "unread"):
            rng = _rng(rel, kind)
            target = rng.choice(read if kind != "unread" else [f for f in files if f not in read])
            copy = out / "aws-inventory" / f"{Path(rel).name}-{kind}" / Path(rel).name
            shutil.copytree(fixture, copy)
            data = (copy / target).read_bytes()
            allowed: set[str] = {LOADED, REJECTED}
            may_be_empty = False
            if kind == "truncate":
                cut = rng.randrange(1, len(data))
                mutated: bytes | None = data[:cut]
                what = f"{target} cut at byte {cut}"
                allowed = {REJECTED, LOADED} if not data[cut:].strip() else {REJECTED}
            elif kind in ("utf8_start", "utf8_deep"):
                offset = rng.randrange(0, min(50, len(data))) if kind == "utf8_start" else len(data) * 3 // 4
                mutated, what, allowed = _flip_utf8(data, offset), f"{target}: 0xff at {offset}", {REJECTED}
            elif kind == "top_level":
                value = rng.choice(("42", '"text"', "{", "[1, 2]"))
                mutated, what, allowed = value.encode(), f"{target} = {value}", {REJECTED, LOADED}
            elif kind == "empty":
                mutated, what, may_be_empty = b"", f"{target} empty", True
            elif kind == "unread":  # a per-resource file (read when its call's file names the resource) or one
                # no mapping reads (CloudMapper collects more calls than the adapter maps): loaded or rejected
                mutated, what = data[: len(data) // 2], f"{target} (not in HANDLED_FILES) cut in half"
            elif kind == "fifo":
                os.mkfifo(copy / target.parent / "zz-pipe.json")
                mutated, what, allowed = None, f"a FIFO next to {target}", {REJECTED}
            else:
                built = _structured(data, kind, rng)
                if built is None:
                    shutil.rmtree(copy.parent)
                    continue
                mutated, what = built
            if mutated is not None:
                (copy / target).write_bytes(mutated)
            names = ("zz-pipe.json",) if kind == "fifo" else (str(target),)  # the bad file inside, not the folder
            cases.append(Case(f"aws-inventory/{Path(rel).name}/{kind}: {what}", "aws-inventory", copy, kind,
                              frozenset(allowed), False, names, may_be_empty))
    return cases


def _non_regular(out: Path) -> list[Case]:
    """Paths that are not regular files, for each source: reading one could block forever or never end."""
    cases = []
    for source in SOURCES:
        if source == "aws-inventory":
            continue
        rel = next(r for s, r in FILE_FIXTURES if s == source)
        folder = out / source / "non-regular"
        folder.mkdir(parents=True, exist_ok=True)
        in_dir = folder / "dir-with-fifo"
        in_dir.mkdir()
        shutil.copyfile(FIXTURES / rel, in_dir / Path(rel).name)
        os.mkfifo(in_dir / "pipe.json")
        os.mkfifo(folder / "events.json")
        (folder / "zero.json").symlink_to("/dev/zero")
        (folder / "dangling.json").symlink_to(folder / "does-not-exist.json")
        (folder / "loop.json").symlink_to(folder / "loop.json")
        empty_dir = folder / "empty-dir"
        empty_dir.mkdir()
        sock_path = folder / "s.json"
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(sock_path))
        for path, names in ((in_dir, ("pipe.json",)), (folder / "events.json", ("events.json",)),
                            (folder / "zero.json", ("zero.json",)), (folder / "dangling.json", ("dangling.json",)),
                            (folder / "loop.json", ("loop.json",)), (sock_path, ("s.json",)),
                            (empty_dir, ("nothing to ingest",))):
            cases.append(Case(f"{source}/non-regular: {path.name}", source, path, "non_regular",
                              frozenset({REJECTED}), False, names))
    return cases


def generate(out: Path) -> list[Case]:
    """Write every hostile case under ``out`` (a fresh directory) and return them, in a stable order."""
    cases: list[Case] = []
    by_source: dict[str, list[str]] = {}
    for source, rel in FILE_FIXTURES:
        by_source.setdefault(source, []).append(rel)
    seq = 0
    for source, rels in by_source.items():
        for rel in rels:
            rng = _rng(rel)
            kinds: list[str] = list(FILE_MUTATIONS)
            if len(rels) > 8:  # cloudtrail: a sample of mutations per fixture (every mutation still appears)
                kinds = rng.sample(kinds, PER_FIXTURE_WHEN_MANY)
            for kind in kinds:
                seq += 1
                cases.extend(_file_case(out, source, rel, kind, _rng(rel, kind), seq))
    cases.extend(_native_reserved(out))
    cases.extend(_inventory_cases(out))
    cases.extend(_non_regular(out))
    return cases


def by_source(cases: list[Case]) -> dict[str, list[Case]]:
    grouped: dict[str, list[Case]] = {}
    for case in cases:
        grouped.setdefault(case.source, []).append(case)
    return grouped


Builder = Callable[[Path], list[Case]]
