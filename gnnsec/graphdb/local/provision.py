"""Provisioning: the Neo4j, Browser and APOC jars, downloaded once with Maven into the cache.

The jars land in ``config.cache_dir()/neo4j-<version>/``, shared by every state dir (tests reuse it). A
marker holding the pom's hash is written only after the copy finished, so a half download (or a changed pom)
is redone; a file lock keeps two processes from provisioning the same cache at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gnnsec import config
from gnnsec.graphdb.errors import Neo4jServerError
from gnnsec.graphdb.local.java import find_maven, neo4j_version, pom_path

_PLUGIN_JAR_PREFIXES = ("apoc-",)

Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    """Default progress sink: say nothing."""


@dataclass(frozen=True, slots=True)
class RuntimeLayout:
    """Where the provisioned jars live: ``lib`` is the classpath, ``plugins`` holds APOC."""

    root: Path
    lib_dir: Path
    plugins_dir: Path

    def plugin_jars(self) -> list[Path]:
        """The APOC jars a server home copies into its own plugins dir."""
        return sorted(self.plugins_dir.glob("*.jar"))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two processes never provision the same cache at once."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pom_digest() -> str:
    """Identifies the pom the jars came from: a changed pom means download again."""
    return hashlib.sha256(pom_path().read_bytes()).hexdigest()


def runtime_layout(cache: Path | None = None) -> RuntimeLayout:
    """Where this pom's jars live under ``cache`` (default: ``config.cache_dir()``), provisioned or not."""
    root = (cache or config.cache_dir()) / f"neo4j-{neo4j_version()}"
    return RuntimeLayout(root=root, lib_dir=root / "lib", plugins_dir=root / "plugins")


def _is_provisioned(layout: RuntimeLayout) -> bool:
    marker = layout.root / ".complete"
    return marker.is_file() and marker.read_text().strip() == _pom_digest() and layout.lib_dir.is_dir()


def provision_runtime(cache: Path | None = None, progress: Progress = quiet) -> RuntimeLayout:
    """Download the Neo4j jars with Maven into the cache, unless a complete copy is already there."""
    layout = runtime_layout(cache)
    if _is_provisioned(layout):
        return layout
    with _file_lock(layout.root / ".lock"):
        if _is_provisioned(layout):  # another process finished while we waited for the lock
            return layout
        mvn = find_maven()
        progress(f"Downloading Neo4j {neo4j_version()} with Maven into {layout.root} (first start only)…")
        staging = Path(tempfile.mkdtemp(prefix="partial-", dir=layout.root))
        try:
            pom_copy = staging / "pom.xml"  # Maven writes beside the pom; keep the package dir clean
            shutil.copyfile(pom_path(), pom_copy)
            jars = staging / "lib"
            command = [mvn, "-q", "-B", "-f", str(pom_copy), "dependency:copy-dependencies"]
            command += [f"-DoutputDirectory={jars}", "-DincludeScope=runtime"]
            proc = subprocess.run(
                command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1800, cwd=staging
            )
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
                raise Neo4jServerError(
                    f"Maven could not download Neo4j {neo4j_version()} (exit {proc.returncode}):\n{tail}\n"
                    "Check network access to Maven Central (https://repo.maven.apache.org) or configure a "
                    "mirror in ~/.m2/settings.xml, then run `gnnsec db start` again."
                )
            _check_jars(jars)
            plugins = staging / "plugins"
            plugins.mkdir()
            for jar in jars.glob("*.jar"):
                if jar.name.startswith(_PLUGIN_JAR_PREFIXES):
                    jar.rename(plugins / jar.name)
            for old in (layout.lib_dir, layout.plugins_dir):
                shutil.rmtree(old, ignore_errors=True)
            jars.rename(layout.lib_dir)
            plugins.rename(layout.plugins_dir)
            (layout.root / ".complete").write_text(_pom_digest() + "\n")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    progress(f"Neo4j {neo4j_version()}: {len(list(layout.lib_dir.glob('*.jar')))} jars ready.")
    return layout


def _check_jars(jars: Path) -> None:
    names = {jar.name for jar in jars.glob("*.jar")}
    wanted = (f"neo4j-{neo4j_version()}.jar", f"neo4j-server-{neo4j_version()}.jar")
    missing = [name for name in wanted if name not in names]
    if missing or not any(name.startswith("neo4j-browser-") for name in names):
        raise Neo4jServerError(
            f"Maven finished but {jars} lacks {', '.join(missing) or 'the neo4j-browser jar'}; "
            f"check {pom_path()}."
        )
