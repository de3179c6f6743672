"""Shared by the adapter tests: read a fixture and check every record's contract (see test_ingest_contract)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gnnsec.ingest import get_adapter
from gnnsec.ingest.base import Adapter, BadRecord, Edge, Node
from gnnsec.schema import INVENTORY_RELATIONS, validate_edge

FIXTURES = Path(__file__).parent / "fixtures"
MY_ADAPTERS = ("native", "azure-activity", "azure-signin", "gcp-audit", "k8s", "k8s-audit", "vulns", "flows")


@dataclass
class Mapped:
    nodes: list[Node]
    edges: list[Edge]
    bad: list[BadRecord]

    def edge_tuples(self) -> list[tuple[str, str, str, str | None]]:
        """(type, src uid, dst uid, action) per edge, in order."""
        return [(e.type, e.src.uid, e.dst.uid, e.action) for e in self.edges]

    def node(self, label: str, uid: str) -> Node:
        """The last node record for (label, uid): later records carry the later ``seen``."""
        return [n for n in self.nodes if (n.label, n.uid) == (label, uid)][-1]


def _storable(value: object) -> bool:
    if isinstance(value, list):
        return len({type(v) for v in value}) <= 1 and all(isinstance(v, str | int | float | bool) for v in value)
    return isinstance(value, str | int | float | bool | datetime)


def read(adapter: str | Adapter, path: Path) -> Mapped:
    """All records of ``path``; asserts the schema allows every edge and every property is storable."""
    instance = get_adapter(adapter) if isinstance(adapter, str) else adapter
    mapped = Mapped([], [], [])
    for record in instance.read(path):
        if isinstance(record, Edge):
            validate_edge(record.src.label, record.type, record.dst.label)
            if record.type not in INVENTORY_RELATIONS:  # an activity or threat edge: an event at a time
                assert isinstance(record.time, datetime) and record.time.tzinfo is not None, record
                assert record.action, record
            mapped.edges.append(record)
        elif isinstance(record, Node):
            mapped.nodes.append(record)
        else:
            assert isinstance(record, BadRecord)
            mapped.bad.append(record)
            continue
        for key, value in record.props.items():
            assert _storable(value), f"{key}={value!r} in {record}"
    # every edge endpoint was emitted as a node by the same adapter
    known = {(n.label, n.uid) for n in mapped.nodes}
    for edge in mapped.edges:
        assert (edge.src.label, edge.src.uid) in known and (edge.dst.label, edge.dst.uid) in known, edge
    return mapped


def fixture_files() -> list[Path]:
    """Every data file in the fixture folders of these adapters (licences and READMEs excluded)."""
    folders = ("native", "azure", "gcp", "k8s", "vulns", "flows", "panther")
    return sorted(
        p
        for folder in folders
        for p in (FIXTURES / folder).iterdir()
        if p.is_file() and not p.name.startswith(("LICENSE", "README"))
    )


def nodes_by_uid(records: list[object], label: str) -> dict[str, Node]:
    """Nodes of one label by uid, with repeated records' props merged as the loader merges them."""
    out: dict[str, Node] = {}
    for r in records:
        if isinstance(r, Node) and r.label == label:
            before = out.get(r.uid)
            out[r.uid] = Node(r.label, r.uid, {**(before.props if before else {}), **r.props}, r.seen)
    return out


def edge_pairs(records: list[object], rel: str) -> set[tuple[str, str]]:
    """(source uid, target uid) of every edge of type ``rel``."""
    return {(r.src.uid, r.dst.uid) for r in records if isinstance(r, Edge) and r.type == rel}
