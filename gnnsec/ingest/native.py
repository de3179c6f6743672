"""The native JSONL format: the schema-agnostic way in for anything gnnsec has no adapter for.

One JSON object per line, either a node or a relationship (see ``docs/native-format.md``).
Nothing is guessed: a label or relationship type the master schema does not know, a pair the
schema does not allow, a property Neo4j cannot store or gnnsec reserves (see
:mod:`gnnsec.ingest.validation`) becomes a :class:`BadRecord` naming the line and the offending
value, so the pipeline counts it instead of dropping it silently.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from gnnsec import schema
from gnnsec.errors import InputError
from gnnsec.ingest import validation
from gnnsec.ingest._common import first_json_line
from gnnsec.ingest.base import Edge, Node, NodeRef, Record, head
from gnnsec.ingest.jsonio import iter_json_records, map_json_records, parse_time

KINDS = frozenset({"node", "edge"})


class NativeRecordError(InputError):
    """One native record that does not fit the format or the schema."""


class NativeAdapter:
    """``{"kind": "node"|"edge", …}`` JSON lines mapped one to one onto records."""

    name: ClassVar[str] = "native"
    description: ClassVar[str] = "gnnsec native JSONL: one node or relationship per line (docs/native-format.md)"

    def sniff(self, path: Path) -> bool:
        first = first_json_line(head(path))
        return first is not None and first.get("kind") in KINDS

    def read(self, path: Path) -> Iterator[Record]:
        # Endpoints are emitted as bare nodes the first time an edge mentions them, so an edge
        # never points at a node the loader has not seen; a full node line merges over it.
        declared: set[tuple[str, str]] = set()

        def records(_where: str, record: dict[str, Any]) -> Iterator[Record]:
            if record.get("kind") == "node":
                node = _node(record)
                declared.add((node.label, node.uid))
                yield node
            elif record.get("kind") == "edge":
                edge = _edge(record)
                for ref in (edge.src, edge.dst):
                    if (ref.label, ref.uid) not in declared:
                        declared.add((ref.label, ref.uid))
                        yield Node(ref.label, ref.uid)
                yield edge
            else:
                raise NativeRecordError(f"'kind' must be 'node' or 'edge', found {record.get('kind')!r}")

        yield from map_json_records(iter_json_records(path, envelope_keys=()), records, NativeRecordError)


def _node(record: Mapping[str, Any]) -> Node:
    label = _label(record.get("label"), "label")
    uid = _uid(record.get("uid"), "uid")
    return Node(label, uid, _props(record.get("props")), _time(record.get("seen"), "seen"))


def _edge(record: Mapping[str, Any]) -> Edge:
    rel_type = record.get("type")
    if not isinstance(rel_type, str) or not schema.is_relation(rel_type):
        raise NativeRecordError(f"unknown relationship type {rel_type!r}")
    src, dst = _ref(record.get("src"), "src"), _ref(record.get("dst"), "dst")
    try:
        schema.validate_edge(src.label, rel_type, dst.label)
    except schema.SchemaError as exc:
        raise NativeRecordError(str(exc)) from exc
    time = _time(record.get("time"), "time")
    action = record.get("action")
    if action is not None and not isinstance(action, str):
        raise NativeRecordError(f"'action' must be a string, found {type(action).__name__}")
    if schema.relation(rel_type).aggregated and time is None:
        raise NativeRecordError(f"{rel_type} is an activity relationship and needs a 'time'")
    return Edge(rel_type, src, dst, _props(record.get("props"), schema.relation(rel_type).aggregated), time, action)


def _label(value: Any, field: str) -> str:
    if not isinstance(value, str) or not schema.is_label(value):
        raise NativeRecordError(f"unknown node label {value!r} in '{field}'")
    return value


def _uid(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise NativeRecordError(f"'{field}' must be a non-empty string")
    try:
        return validation.check_uid(value, "node")
    except validation.PropertyError as exc:
        raise NativeRecordError(f"'{field}': {exc}") from exc


def _ref(value: Any, field: str) -> NodeRef:
    if not isinstance(value, Mapping):
        raise NativeRecordError(f"'{field}' must be an object with 'label' and 'uid'")
    return NodeRef(_label(value.get("label"), f"{field}.label"), _uid(value.get("uid"), f"{field}.uid"))


def _time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise NativeRecordError(f"'{field}': {exc}") from exc


def _props(value: Any, activity: bool = False) -> dict[str, Any]:
    """Properties Neo4j can store; null values are treated as absent.

    Checked here with staging's validators (:mod:`gnnsec.ingest.validation`), so a bad one names its line;
    ``activity``: the props of an activity event, where ``failed``/``bytes``/``packets`` are counted."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise NativeRecordError(f"'props' must be an object, found {type(value).__name__}")
    props: dict[str, Any] = {}
    try:
        for key, item in value.items():
            if item is None:
                continue
            validation.check_key(key)
            if activity and key in validation.COUNTED_PROPERTIES:
                validation.check_counted(key, item)
                props[key] = item
                continue
            reason = validation.reserved_reason(key, activity=activity)
            if reason is not None:
                raise NativeRecordError(reason)
            props[key] = _storable(key, item)
            validation.check_value(key, props[key])
    except validation.PropertyError as exc:
        raise NativeRecordError(str(exc)) from exc
    return props


def _storable(key: str, value: Any) -> Any:
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list):
        kinds = {type(v) for v in value}
        if len(kinds) <= 1 and kinds <= {str, bool, int, float}:
            return value
        if kinds <= {int, float}:
            return [float(v) for v in value]
        raise NativeRecordError(f"property {key!r} is a list mixing {sorted(k.__name__ for k in kinds)}")
    raise NativeRecordError(f"property {key!r} is a {type(value).__name__}, which Neo4j cannot store")
