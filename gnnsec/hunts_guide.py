"""The hunting pack as a Neo4j Browser guide: one HTML page that ``:play URL`` opens as slides.

What Browser 5 accepts (checked with the Browser 5.24 the 5.26 server bundles, in Chromium):

* ``:play http(s)://HOST:PORT/page.html`` makes the page itself fetch the URL: a cross-origin request with
  ``Cache-Control``/``Pragma`` headers, so the host must answer the CORS preflight as well as the GET.
* Only hosts in the server's ``browser.remote_content_hostname_whitelist`` (read through
  ``dbms.clientConfig()``; the port is ignored) are fetched. Its default is ``guides.neo4j.com,localhost``,
  so a guide on ``http://localhost:PORT/`` loads from any stock server and ``127.0.0.1`` does not. Neo4j
  5.26 declares only that spelling: ``browser.remote_content_hostname_allowlist`` stops it at start-up.
* Each ``<slide>`` becomes a slide (``#slide-N`` on the URL opens the Nth); clicking a
  ``<pre class="runnable">`` puts its text into the editor, where the analyst runs it.
* Before parsing, Browser strips ``<script>`` and ``on…=`` patterns from the raw text, attributes or not.
  So every text is escaped, ``=`` too (``&#61;``): ``WHERE online = true`` would otherwise lose its test.

The Cypher is the hunt file's body as is, its defaults literal on the ``WITH … // @params`` line, so it
runs unchanged and the analyst edits the values there. The Neo4j server cannot serve extra files (its
Browser comes from a jar), hence ``serve_guide``: a tiny HTTP server for this one page.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gnnsec.hunts import Hunt, load_hunts

GUIDE_FILENAME = "gnnsec-guide.html"
GUIDE_TITLE = "gnnsec hunting pack"
GUIDE_HOST = "localhost"
"""The host in the ``:play`` URL: in Browser's built-in allowlist, so no server setting is needed."""


def _text(value: object) -> str:
    """HTML text (or attribute value) that survives Browser's regex clean-up of the raw page."""
    return html.escape(str(value), quote=True).replace("=", "&#61;")


def hunt_body(hunt: Hunt) -> str:
    """The hunt's Cypher without its header comments (the slide shows name, description and parameters)."""
    lines = hunt.text.splitlines()
    start = next((i for i, line in enumerate(lines) if not line.startswith("//")), len(lines))
    return "\n".join(lines[start:]).strip()


def _default(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _hunt_slide(number: int, hunt: Hunt) -> str:
    rows = "".join(
        f"<tr><td><code>{_text(p.name)}</code></td><td><code>{_text(_default(p.default))}</code></td>"
        f"<td>{_text(p.description)}</td></tr>"
        for p in hunt.parameters
    )
    params = (
        "<table class=\"table table-condensed\"><thead><tr><th>parameter</th><th>default</th><th>meaning</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        if rows else "<p>No parameters.</p>"
    )
    overrides = " ".join(f"-p {p.name}={_default(p.default)}" for p in hunt.parameters if p.name != "limit")
    shell = f"gnnsec query {hunt.name}" + (f" {overrides}" if overrides else "")
    return (
        f'<slide class="row-fluid" data-hunt="{_text(hunt.name)}">\n'
        '<div class="col-sm-4">\n'
        f"<h3>{number}. {_text(hunt.name)}</h3>\n"
        f'<p class="lead">{_text(hunt.description)}</p>\n'
        f"{params}\n"
        "</div>\n"
        '<div class="col-sm-8">\n'
        "<p>Click the query to put it in the editor, change a default on its <code>WITH</code> line "
        "(the row count on its <code>LIMIT</code> line) if you like, then run it.</p>\n"
        f'<figure><pre mode="cypher" class="pre-scrollable code runnable">{_text(hunt_body(hunt))}</pre></figure>\n'
        f"<p>The same hunt from a shell: <code>{_text(shell)}</code></p>\n"
        "</div>\n"
        "</slide>"
    )


def render_guide(hunts: Iterable[Hunt] | None = None) -> str:
    """The guide page: an index slide, then one slide per hunt (every text escaped)."""
    pack = list(load_hunts().values() if hunts is None else hunts)
    index = "".join(f"<li><b>{_text(h.name)}</b> (slide {n})</li>" for n, h in enumerate(pack, start=2))
    intro = (
        '<slide class="row-fluid">\n'
        '<div class="col-sm-4">\n'
        f"<h3>{_text(GUIDE_TITLE)}</h3>\n"
        f'<p class="lead">{len(pack)} hunts over the scores <code>gnnsec score</code> writes onto the graph '
        "(<code>anomaly_score</code>, <code>anomaly_reasons</code> on nodes, <code>edge_anomaly</code> on "
        "relationships).</p>\n"
        "</div>\n"
        '<div class="col-sm-8">\n'
        "<p>One hunt per slide (the arrows move between them). On each, click the query to put it in the "
        "editor, then run it.</p>\n"
        f"<ol>{index}</ol>\n"
        "</div>\n"
        "</slide>"
    )
    slides = "\n".join([intro, *(_hunt_slide(n, h) for n, h in enumerate(pack, start=2))])
    return (
        "<!DOCTYPE html>\n"
        f"<html><head><meta charset=\"utf-8\"><title>{_text(GUIDE_TITLE)}</title></head><body>\n"
        '<article class="guide">\n'
        '<carousel class="deck container-fluid">\n'
        f"{slides}\n"
        "</carousel>\n"
        "</article>\n"
        "</body></html>\n"
    )


def play_command(port: int, host: str = GUIDE_HOST) -> str:
    """What to type in Neo4j Browser to open the guide ``serve_guide`` serves on ``port``."""
    return f":play http://{host}:{port}/{GUIDE_FILENAME}"


class _GuideHandler(BaseHTTPRequestHandler):
    """Serves the one guide page (nothing from disk), with the CORS answers Browser's fetch needs."""

    page: bytes = b""

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        requested = self.headers.get("Access-Control-Request-Headers")
        self.send_header("Access-Control-Allow-Headers", requested or "cache-control, pragma")
        self.send_header("Access-Control-Max-Age", "600")

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self._cors()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, *, body: bool) -> None:
        if self.path.split("?", 1)[0].split("#", 1)[0] not in {"/", f"/{GUIDE_FILENAME}"}:
            self.send_error(404, f"only /{GUIDE_FILENAME} is served here")
            return
        self.send_response(200)
        self._cors()
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        if body:
            self.wfile.write(self.page)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_guide(page: str, port: int = 0, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """An HTTP server for ``page`` on ``host:port`` (0: a free port), answering in a daemon thread.

    Stop it with ``server.shutdown(); server.server_close()``; its port is ``server.server_address[1]``.
    """
    handler = type("GuideHandler", (_GuideHandler,), {"page": page.encode("utf-8")})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="gnnsec-guide", daemon=True).start()
    return server
