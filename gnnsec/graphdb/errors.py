"""Errors of the graph database layer. Every message says what went wrong *and* how to fix it."""

from __future__ import annotations

from gnnsec.errors import GnnsecError


class GraphDBError(GnnsecError, RuntimeError):
    """Base class: something about Neo4j (the local server or a connection to any server) failed."""


class Neo4jServerError(GraphDBError):
    """The local Neo4j could not be provisioned, started, stopped or inspected."""


class Neo4jUnavailable(GraphDBError):
    """No usable connection: the server does not answer or rejects the credentials."""


class Neo4jAuthFailed(Neo4jUnavailable):
    """The server answers but rejects the user name or password."""
