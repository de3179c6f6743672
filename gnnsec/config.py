"""Where gnnsec keeps its state and how it finds Neo4j.

Everything comes from environment variables with sensible defaults, so secrets never need to
appear on a command line: ``NEO4J_URI``, ``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``,
``GNNSEC_HOME`` (state: local database, password file, models) and ``GNNSEC_CACHE``
(downloaded Neo4j jars, shared between state dirs). :meth:`EnvSettings.from_env` is the one reader of
gnnsec's variables; everything else asks it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from gnnsec.errors import InputError


def _value(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's value as given; None when unset or empty (an empty variable means "not configured")."""
    return environ.get(name) or None


def _whole_number(name: str, text: str | None, what: str) -> int | None:
    """``text`` as an int (surrounding blanks allowed), None when blank, an error naming ``name`` otherwise."""
    if text is None or not text.strip():
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise InputError(f"{name}={text!r} is not {what}; set it to a whole number or unset it") from exc


@dataclass(frozen=True, slots=True)
class EnvSettings:
    """What gnnsec's environment variables say (None where one is unset or blank), read in this one place.

    Read again on every call (``from_env`` caches nothing): tests and ``--threads`` change variables while a
    process runs. Numbers are kept as text and checked when asked for, so a malformed variable only fails the
    command that uses it. The password never appears in ``repr``.
    """

    neo4j_uri: str | None = None
    neo4j_user: str | None = None
    neo4j_password: str | None = field(default=None, repr=False)
    neo4j_database: str | None = None
    home: Path | None = None
    """``GNNSEC_HOME``: gnnsec's state (local database, password file, models)."""
    cache: Path | None = None
    """``GNNSEC_CACHE``: downloaded Neo4j jars."""
    heap: str | None = None
    pagecache: str | None = None
    analyst: str | None = None
    """``GNNSEC_ANALYST``: who records feedback verdicts."""
    bolt_port_text: str | None = None
    http_port_text: str | None = None
    threads_text: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EnvSettings:
        """The variables as they are now (``environ`` defaults to ``os.environ``; tests may pass a dict)."""
        env = os.environ if environ is None else environ
        home, cache = _value(env, "GNNSEC_HOME"), _value(env, "GNNSEC_CACHE")
        return cls(
            neo4j_uri=(env.get("NEO4J_URI") or "").strip() or None,
            neo4j_user=_value(env, "NEO4J_USER"),
            neo4j_password=_value(env, "NEO4J_PASSWORD"),
            neo4j_database=_value(env, "NEO4J_DATABASE"),
            home=Path(home).expanduser() if home else None,
            cache=Path(cache).expanduser() if cache else None,
            heap=_value(env, "GNNSEC_HEAP"),
            pagecache=_value(env, "GNNSEC_PAGECACHE"),
            analyst=_value(env, "GNNSEC_ANALYST"),
            bolt_port_text=_value(env, "GNNSEC_BOLT_PORT"),
            http_port_text=_value(env, "GNNSEC_HTTP_PORT"),
            threads_text=_value(env, "GNNSEC_THREADS"),
        )

    @property
    def bolt_port(self) -> int | None:
        """``GNNSEC_BOLT_PORT``; range checks are the server's."""
        return _whole_number("GNNSEC_BOLT_PORT", self.bolt_port_text, "a port number")

    @property
    def http_port(self) -> int | None:
        """``GNNSEC_HTTP_PORT``; range checks are the server's."""
        return _whole_number("GNNSEC_HTTP_PORT", self.http_port_text, "a port number")

    @property
    def threads(self) -> int | None:
        """``GNNSEC_THREADS``: CPU threads for torch (the CLI's ``--threads`` sets it for one command)."""
        return _whole_number("GNNSEC_THREADS", self.threads_text, "a thread count")

    def external_neo4j(self) -> Neo4jSettings | None:
        """The server ``NEO4J_URI`` names, with ``NEO4J_USER`` / ``NEO4J_DATABASE`` or their defaults; None when
        unset (the local server then). The password may be empty: callers that need one say so."""
        if self.neo4j_uri is None:
            return None
        return Neo4jSettings(uri=self.neo4j_uri, user=self.neo4j_user or "neo4j", password=self.neo4j_password or "",
                             database=self.neo4j_database or "neo4j")


def state_dir() -> Path:
    """Root of gnnsec's mutable state (local Neo4j data, password file, checkpoints)."""
    default = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "gnnsec"
    return EnvSettings.from_env().home or default.expanduser()


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and the state directory above it) readable by the owner only: checkpoints and
    quarantine reports hold excerpts of the logs and the shape of the estate."""
    root = state_dir().resolve()
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    if path == root or root in path.parents:
        for directory in (root, *(d for d in path.parents if root in d.parents), path):
            directory.chmod(0o700)
    return path


def open_private(path: Path) -> IO[bytes]:
    """Open ``path`` for writing (truncated), created with mode 0600 whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode otherwise
    return os.fdopen(fd, "wb")


def cache_dir() -> Path:
    """Cache for large downloads (the Neo4j runtime jars); safe to delete."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gnnsec"
    return EnvSettings.from_env().cache or default.expanduser()


def models_dir() -> Path:
    return state_dir() / "models"


def latest_model_path() -> Path:
    """The checkpoint ``gnnsec train`` wrote last (scoring and explaining default to it)."""
    return models_dir() / "latest.pt"


@dataclass(frozen=True, slots=True)
class Neo4jSettings:
    """How to reach Neo4j. ``password`` is never printed (see ``__repr__``)."""

    uri: str
    user: str
    password: str
    database: str = "neo4j"

    def __repr__(self) -> str:
        return f"Neo4jSettings(uri={self.uri!r}, user={self.user!r}, password='***', database={self.database!r})"
