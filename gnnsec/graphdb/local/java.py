"""Which Neo4j, and the tools that run and fetch it: the pom that pins the version, Java 17/21, Maven.

Its own module because both provisioning (Maven, the pom) and the server (``java``, the version it reports)
need it, and it needs nothing of theirs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gnnsec.graphdb.errors import Neo4jServerError

SUPPORTED_JAVA_MAJORS = (17, 21)
"""Neo4j 5.26 runs on Java 17 and 21 only (not 25)."""

_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?[^"]*"')


def pom_path() -> Path:
    """The packaged pom that names the Neo4j, Browser and APOC artefacts."""
    return Path(__file__).parents[1] / "pom.xml"  # gnnsec/graphdb/pom.xml, packaged data


@lru_cache(maxsize=1)
def neo4j_version() -> str:
    """The Neo4j version the pom resolves (single source of truth: ``<neo4j.version>``)."""
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom_path()).getroot().find("m:properties/m:neo4j.version", namespace)
    if node is None or not (node.text or "").strip():
        raise Neo4jServerError(f"{pom_path()} has no <neo4j.version> property")
    return (node.text or "").strip()


@dataclass(frozen=True, slots=True)
class JavaRuntime:
    """A ``java`` executable with its major version."""

    executable: Path
    major: int

    # (duplicates pairs this with pipeline.WorkItem on shape: two fields and a property, nothing to share)
    @property
    def home(self) -> Path:
        """Its ``JAVA_HOME`` (``…/bin/java`` resolved through links), for tools that want one, such as Spark."""
        return self.executable.resolve().parents[1]


@lru_cache(maxsize=32)
def _java_major(executable: str) -> int | None:
    """Major version reported by ``<executable> -version`` (``1.8`` → 8), or None if it does not run."""
    try:
        proc = subprocess.run(
            [executable, "-version"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _JAVA_VERSION.search(proc.stderr + proc.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _java_candidates() -> Iterator[Path]:
    """Where a JDK usually is, best guess first; ``JAVA_HOME`` is Java's own variable, not a gnnsec setting."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        yield Path(java_home) / "bin" / "java"
    on_path = shutil.which("java")
    if on_path:
        yield Path(on_path)
    jvm_root = Path("/usr/lib/jvm")
    for major in SUPPORTED_JAVA_MAJORS:
        yield from sorted(jvm_root.glob(f"*-{major}-*/bin/java"))
        yield from sorted(jvm_root.glob(f"*{major}*/bin/java"))


def find_java() -> JavaRuntime:
    """The first Java 17 or 21 among ``$JAVA_HOME``, ``java`` on PATH and ``/usr/lib/jvm/*``."""
    seen: dict[Path, int | None] = {}
    for candidate in _java_candidates():
        if candidate in seen or not candidate.exists():
            continue
        major = _java_major(str(candidate))
        seen[candidate] = major
        if major in SUPPORTED_JAVA_MAJORS:
            return JavaRuntime(candidate, major)
    found = ", ".join(f"{path} (Java {major or '?'})" for path, major in seen.items()) or "no java at all"
    raise Neo4jServerError(
        f"Neo4j {neo4j_version()} needs Java 17 or 21; found {found}. Install one "
        "(e.g. `apt-get install openjdk-17-jre-headless`, or `brew install openjdk@17`) "
        "and/or point JAVA_HOME at it."
    )


def find_maven() -> str:
    """The ``mvn`` executable, or an error that says how to get it."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise Neo4jServerError(
            "Maven (`mvn`) is needed once to download Neo4j from Maven Central but is not on PATH. "
            "Install it (e.g. `apt-get install maven`, or `brew install maven`), or use an existing "
            "server by setting NEO4J_URI (see docker-compose.yml)."
        )
    return mvn
