"""A real local Neo4j 5.26 Community server without Docker: provision, configure, start, stop, inspect.

Four modules, each importing only those before it: ``java`` (the pom's version, Java, Maven), ``provision``
(the jars), ``process`` (pids and ports) and ``server`` (:class:`LocalNeo4j`). Why this shape:

* **Provisioning** uses Maven on ``gnnsec/graphdb/pom.xml``, so the jars come from Maven Central with
  checksums and land in ``config.cache_dir()/neo4j-<version>/`` once, shared by every state dir
  (tests reuse it). A marker holding the pom's hash is written only after the copy finished, so a
  half download (or a changed pom) is redone.
* **Launching** starts ``org.neo4j.server.CommunityEntryPoint`` with ``java`` directly, the way the
  ``bin/neo4j`` launcher would: classpath ``plugins/*:lib/*`` (APOC must be on the classpath for
  its extension factories *and* in the plugins dir for its procedures), the heap as ``-Xms/-Xmx``
  and the JVM flags of the 5.26 distribution (``server.jvm.additional`` is only read by that
  launcher). The Browser is served from the ``browser/`` folder of the neo4j-browser jar on the
  classpath.
* **Secrets**: authentication stays on. The password comes from ``NEO4J_PASSWORD`` or a generated
  one kept in a 0600 file; it is set over Bolt with query *parameters*, so it never reaches a
  command line, the config file or a log.
* **Ownership**: a pid file plus the process's own command line (``--home-dir=<home>``) identify
  the server we started, so ``stop`` never signals anything else, even after pid reuse.
"""

from gnnsec.graphdb.local.java import JavaRuntime, find_java, find_maven, neo4j_version, pom_path
from gnnsec.graphdb.local.process import free_ports, pid_alive, port_answers, port_in_use, process_cmdline
from gnnsec.graphdb.local.provision import RuntimeLayout, provision_runtime, runtime_layout
from gnnsec.graphdb.local.server import ENTRY_POINT, LocalNeo4j, ServerStatus, status_as_dict

__all__ = [
    "ENTRY_POINT",
    "JavaRuntime",
    "LocalNeo4j",
    "RuntimeLayout",
    "ServerStatus",
    "find_java",
    "find_maven",
    "free_ports",
    "neo4j_version",
    "pid_alive",
    "pom_path",
    "port_answers",
    "port_in_use",
    "process_cmdline",
    "provision_runtime",
    "runtime_layout",
    "status_as_dict",
]
