"""AWS VPC flow logs → CONNECTS_TO between IP addresses.

The default (version 2) text format is 14 space-separated fields::

    version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status

Files delivered to S3 start with that header line; a custom format's header names its own
field order (``${srcaddr}`` or ``srcaddr``), which is honoured.  Without a header the default
order is assumed.  JSON lines with the same fields (``srcaddr``/``srcAddr`` …, as Firehose
and SIEM exports write them) are read too.  ``NODATA``/``SKIPDATA`` records carry no traffic
and are skipped; a line that cannot be read is a BadRecord ``line N``.

Each accepted record is one CONNECTS_TO event at ``start`` with ``bytes`` and ``packets`` in its
properties (the loader sums them per window) and action ``flow:<ACCEPT|REJECT>:<proto>/<dstport>``.
With ``instance-id``, ``region`` and ``flow-direction`` in a custom format, the VM is linked to its own
address (source of egress, destination of ingress) with HAS_IP.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import orjson

from gnnsec.ingest import uids
from gnnsec.ingest._common import first_json_line, ip_node, parse_ip
from gnnsec.ingest.base import AdapterError, BadRecord, Edge, Node, Record, head, open_text
from gnnsec.ingest.jsonio import parse_time

DEFAULT_FIELDS: tuple[str, ...] = (
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
)
"""The version 2 default format, in order."""

PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmpv6", 132: "sctp"}
NO_TRAFFIC = frozenset({"NODATA", "SKIPDATA"})
_KNOWN_FIELDS = frozenset(DEFAULT_FIELDS) | {
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    "reject-reason",
}


def _normalise(name: str) -> str:
    """``${srcaddr}`` / ``srcAddr`` / ``log_status`` → ``srcaddr`` / ``log-status``."""
    name = name.strip().removeprefix("${").removesuffix("}")
    out = []
    for char in name:
        if char.isupper():
            out.append(char.lower())
        elif char == "_":
            out.append("-")
        else:
            out.append(char)
    text = "".join(out)
    return {
        "srcaddr": "srcaddr",
        "dstaddr": "dstaddr",
        "logstatus": "log-status",
        "status": "log-status",
        "accountid": "account-id",
        "interfaceid": "interface-id",
        "instanceid": "instance-id",
    }.get(text.replace("-", ""), text)


def _header(line: str) -> tuple[str, ...] | None:
    fields = tuple(_normalise(f) for f in line.split())
    if "srcaddr" in fields and "dstaddr" in fields and set(fields) <= _KNOWN_FIELDS:
        return fields
    return None


class VpcFlowLogAdapter:
    """VPC flow logs: default v2 text, custom formats with a header, ``.gz``, JSON lines."""

    name: ClassVar[str] = "flows"
    description: ClassVar[str] = "AWS VPC flow logs (v2 text with or without header, custom header order, .gz, JSONL)"

    def sniff(self, path: Path) -> bool:
        text = head(path)
        first = next((line for line in text.splitlines() if line.strip()), "")
        if _header(first) is not None:
            return True
        fields = first.split()
        if len(fields) == len(DEFAULT_FIELDS) and fields[0] == "2":
            return fields[-1] in ("OK", "NODATA", "SKIPDATA") and fields[-2] in ("ACCEPT", "REJECT", "-")
        record = first_json_line(text)
        if record is None:
            return False
        keys = {_normalise(k) for k in record}
        return {"srcaddr", "dstaddr"} <= keys and ("dstport" in keys or "log-status" in keys)

    def read(self, path: Path) -> Iterator[Record]:
        fields: tuple[str, ...] = DEFAULT_FIELDS
        try:
            with open_text(path) as handle:
                for number, line in enumerate(handle, start=1):
                    text = line.strip()
                    if not text:
                        continue
                    where = f"line {number}"
                    if text.startswith("{"):
                        try:
                            obj = orjson.loads(text)
                        except orjson.JSONDecodeError as exc:
                            yield BadRecord(where, f"not valid JSON: {exc}", text[:200])
                            continue
                        if not isinstance(obj, Mapping):
                            yield BadRecord(where, "expected a JSON object", text[:200])
                            continue
                        record = {_normalise(k): v for k, v in obj.items() if not k.startswith("p_")}
                    else:
                        header = _header(text) if number == 1 or not text[0].isdigit() else None
                        if header is not None:
                            fields = header
                            continue
                        values = text.split()
                        if len(values) != len(fields):
                            yield BadRecord(where, f"expected {len(fields)} fields, found {len(values)}", text[:200])
                            continue
                        record = dict(zip(fields, values, strict=True))
                    try:
                        yield from _flow_records(record)
                    except ValueError as exc:
                        yield BadRecord(where, str(exc), text[:200])
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:  # zlib: a corrupt gzip body
            raise AdapterError(path, f"cannot read: {exc}") from exc


def _int(record: Mapping[str, Any], key: str, required: bool = True) -> int | None:
    value = record.get(key)
    if value in (None, "-", ""):
        if required:
            raise ValueError(f"no {key}")
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{key} is not a number: {value!r}") from exc


def _flow_records(record: Mapping[str, Any]) -> Iterator[Record]:
    status = str(record.get("log-status") or "OK").upper()
    if status in NO_TRAFFIC:
        return
    src, dst = parse_ip(record.get("srcaddr")), parse_ip(record.get("dstaddr"))
    if src is None or dst is None:
        raise ValueError(f"not an address pair: {record.get('srcaddr')!r} -> {record.get('dstaddr')!r}")
    if record.get("start") in (None, "-", ""):
        raise ValueError("no flow start time")
    start = parse_time(_int(record, "start"))
    protocol = _int(record, "protocol", required=False)
    dst_port = _int(record, "dstport", required=False)
    action = str(record.get("action") or "-").upper()
    proto_name = PROTOCOLS.get(protocol, str(protocol)) if protocol is not None else "any"
    props: dict[str, int] = {}
    for key in ("bytes", "packets"):
        value = _int(record, key, required=False)
        if value is not None:
            props[key] = value
    yield ip_node(src, start)
    yield ip_node(dst, start)
    flow_action = f"flow:{action}:{proto_name}/{dst_port if dst_port is not None else '-'}"
    yield Edge("CONNECTS_TO", Node("IP", uids.ip(src)).ref, Node("IP", uids.ip(dst)).ref, props, start, flow_action)
    instance = str(record.get("instance-id") or "")
    account, region = str(record.get("account-id") or ""), str(record.get("region") or "")
    direction = str(record.get("flow-direction") or "")
    own = src if direction == "egress" else dst if direction == "ingress" else None
    if own and instance.startswith("i-") and account.isdigit() and region and region != "-":
        vm = Node(
            "VM",
            uids.aws_ec2_instance(region, account, instance),
            {"name": instance, "cloud": "aws", "account": account, "region": region},
        )
        yield vm
        yield Edge("HAS_IP", vm.ref, Node("IP", uids.ip(own)).ref)
