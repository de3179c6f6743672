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


def state_dir() -> Path:
    """Root of gnnsec's mutable state (local Neo4j data, password file, checkpoints)."""
    default = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "gnnsec"
    return Path(os.environ.get("GNNSEC_HOME", default)).expanduser()


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
