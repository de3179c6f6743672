"""Where gnnsec keeps its state and how it finds Neo4j.

Everything comes from environment variables with sensible defaults, so secrets never need to
appear on a command line: ``NEO4J_URI``, ``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``,
``GNNSEC_HOME`` (state: local database, password file, models) and ``GNNSEC_CACHE``
(downloaded Neo4j jars, shared between state dirs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO


def state_dir() -> Path:
    """Root of gnnsec's mutable state (local Neo4j data, password file, checkpoints)."""
    default = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "gnnsec"
    return Path(os.environ.get("GNNSEC_HOME", default)).expanduser()


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
    return Path(os.environ.get("GNNSEC_CACHE", default)).expanduser()


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
