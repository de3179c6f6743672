"""Small helpers the non-AWS adapters share: addresses, property hygiene, cheap sniffing.

Kept private to ``gnnsec.ingest`` so the adapters stay pure mappers with one idea each; the
cloud-specific knowledge lives in the adapter modules themselves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from gnnsec.ingest import uids
from gnnsec.ingest.base import Node
from gnnsec.ingest.validation import safe_excerpt

# RFC 1918, loopback, link-local, unspecified and IPv6 unique-local addresses are "not public";
# documentation ranges (203.0.113.0/24 …) count as public on purpose: fixtures and attack
# write-ups use them for outside addresses.
_NON_PUBLIC_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "0.0.0.0/8",
        "::1/128",
        "::/128",
        "fe80::/10",
        "fc00::/7",
    )
)


IP_CACHE_SIZE = 1 << 16
"""Addresses remembered by :func:`parse_ip` and :func:`is_public_ip`: a VPC flow line names two, mostly the same
few thousand again and again, and ``ipaddress`` parsing them was a fifth of staging flow logs (cProfile, 60 files
of the medium estate: 1.6 of 7.1 s). Only texts of up to :data:`IP_CACHE_TEXT` characters are remembered (an
IPv6 address with brackets and a port is under 60), so hostile input cannot fill memory through the cache."""
IP_CACHE_TEXT = 64


def parse_ip(value: Any) -> str | None:
    """The address in ``value`` in canonical form, or None when it is not an IP address.

    Azure storage logs append the client port (``5.5.5.5:28915``, ``[::1]:443``); GCP writes
    placeholders such as ``gce-internal-ip`` or ``private`` that carry no address.
    """
    if not isinstance(value, str):
        return None
    return _remembered_ip(value) if len(value) <= IP_CACHE_TEXT else _canonical_ip(value)


def _canonical_ip(value: str) -> str | None:
    text = value.strip()
    if not text:
        return None
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.is_unspecified:
        return None
    return address.compressed


_remembered_ip = lru_cache(maxsize=IP_CACHE_SIZE)(_canonical_ip)


def is_public_ip(address: str) -> bool:
    """False for RFC 1918, loopback, link-local, unspecified and unique-local addresses."""
    return _remembered_public(address) if len(address) <= IP_CACHE_TEXT else _is_public(address)


def _is_public(address: str) -> bool:
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return not any(parsed.version == net.version and parsed in net for net in _NON_PUBLIC_NETWORKS)


_remembered_public = lru_cache(maxsize=IP_CACHE_SIZE)(_is_public)


def ip_node(address: str, seen: datetime | None = None) -> Node:
    """The IP node for a canonical address (see :func:`parse_ip`)."""
    return Node("IP", uids.ip(address), {"name": address, "public": is_public_ip(address)}, seen)


def clean_props(**values: Any) -> dict[str, Any]:
    """Drop None and empty strings: Neo4j cannot store null and empty names only add noise."""
    return {key: value for key, value in values.items() if value is not None and value != ""}


def get_path(record: Mapping[str, Any], *keys: str) -> Any:
    """``record[k1][k2]…`` or None when any level is missing or not a mapping."""
    current: Any = record
    for key in keys:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def as_str(value: Any) -> str | None:
    """A non-empty string, or None (Panther test data writes ``"..."`` or numbers in odd places)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def first_json_line(text: str) -> dict[str, Any] | None:
    """The first non-empty line of ``text`` as a JSON object, or None (for JSON-lines sniffing)."""
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    return None


def excerpt(record: Any, size: int = 200) -> str:
    """A short JSON rendering of a record for a :class:`BadRecord`; past orjson's depth limit (or for
    what JSON cannot hold) a depth-bounded repr, so a hostile record never raises ``RecursionError``."""
    try:
        return orjson.dumps(record)[: size * 4].decode("utf-8", "replace")[:size]
    except TypeError:
        return safe_excerpt(record, size)
