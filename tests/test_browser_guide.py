"""The hunting pack as a Neo4j Browser guide (``gnnsec db guide``): every hunt on its own slide, every text
escaped, the Cypher intact after Browser's own clean-up of the page, and the little server's CORS answers.
The real Browser loading it is in tests/test_browser.py."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gnnsec.cli.main import cli
from gnnsec.hunts import load_hunts, parse_hunt
from gnnsec.hunts_guide import GUIDE_FILENAME, hunt_body, play_command, render_guide, serve_guide

VOID = {"meta", "br", "img", "hr", "input", "link"}


def browser_clean(page: str) -> str:
    """What Neo4j Browser 5.24 does to a fetched guide before parsing it (``cleanHtml`` in its bundle)."""
    page = re.sub(r"(\s+(on[^\s=]+)[^\s=]*\s*=\s*(\"[^\"]*\"|'[^']*'|[\w\-.:]+\s*))", "", page, flags=re.I)
    page = re.sub(r"<script\b[^<]*(?:(?!</script>)<[^<]*)*(</script>)?", "", page, flags=re.I)
    page = re.sub(r"href=\".*javascript:[^\"]*\"", 'href=""', page, count=1)
    return re.sub(r"href='.*javascript:[^']*'", "href=''", page, count=1)


class GuideParser(HTMLParser):
    """Checks nesting and collects the slides (their text) and the runnable blocks (their text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.slides: list[str] = []
        self.runnable: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._slide: list[str] | None = None
        self._pre: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag == "slide":
            self._slide = []
        if tag == "pre" and "runnable" in (dict(attrs).get("class") or "").split():
            self._pre = []

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "pre" and self._pre is not None:
            self.runnable.append("".join(self._pre))
            self._pre = None
        if tag == "slide" and self._slide is not None:
            self.slides.append("".join(self._slide))
            self._slide = None

    def handle_data(self, data: str) -> None:
        for collector in (self._slide, self._pre):
            if collector is not None:
                collector.append(data)


def parse(page: str) -> GuideParser:
    parser = GuideParser()
    parser.feed(page)
    parser.close()
    assert parser.errors == [], parser.errors
    assert parser.stack == [], f"unclosed: {parser.stack}"
    return parser


def test_every_hunt_has_a_slide_with_its_runnable_cypher_intact_after_browser_cleans_the_page() -> None:
    hunts = list(load_hunts().values())
    page = render_guide()
    assert page.count("<article class=\"guide\">") == 1 and page.count("<carousel") == 1
    parsed = parse(browser_clean(page))
    assert len(parsed.slides) == len(hunts) + 1, "an index slide, then one per hunt"
    assert parsed.runnable == [hunt_body(h) for h in hunts], "each hunt's Cypher, in order, byte for byte"
    for slide, hunt in zip(parsed.slides[1:], hunts, strict=True):
        assert hunt.name in slide and " ".join(hunt.description.split()) in " ".join(slide.split())
        for parameter in hunt.parameters:
            assert parameter.name in slide and parameter.description in slide
    assert all(h.name in parsed.slides[0] for h in hunts), "the index names every hunt"


def test_hunt_body_is_the_file_without_its_header_and_runs_with_the_literal_defaults() -> None:
    for hunt in load_hunts().values():
        body = hunt_body(hunt)
        assert not body.startswith("//") and body in hunt.text
        assert "// @params" in body, "the defaults stay on the WITH line the analyst edits"
        assert "$" not in body, "no parameter Browser would need a :param for"


def test_everything_is_escaped_and_survives_browser_clean_up(tmp_path: Path) -> None:
    source = tmp_path / "hostile.cypher"
    source.write_text(
        "// name: <b>bold</b>-hunt\n"
        "// description: finds <script>alert(1)</script> & <img src=x onerror=alert(2)> \"quoted\"\n"
        "// param: wanted = true  which online value; Browser's regex would eat  online = x  and onload='x'\n"
        "WITH true AS wanted // @params\n"
        "MATCH (a)<-[:HAS_IP]-(b) WITH a, b, a.online AS online\n"
        "WHERE online = wanted AND b.name <> '</pre><script>x</script>'\n"
        "RETURN a.uid AS uid LIMIT 5 // @limit\n",
        encoding="utf-8",
    )
    hunt = parse_hunt(source)
    page = render_guide([hunt])
    assert "<script" not in page and "<b>bold" not in page and "<img" not in page
    assert not re.search(r"\son\w*\s*=", page, flags=re.I), "no on…= Browser would strip"
    parsed = parse(browser_clean(page))
    assert parsed.runnable == [hunt_body(hunt)]
    assert "WHERE online = wanted" in parsed.runnable[0] and "</pre><script>x</script>" in parsed.runnable[0]
    assert "<script>alert(1)</script>" in parsed.slides[1] and "<b>bold</b>-hunt" in parsed.slides[1]
    assert {tag for tag, _ in parsed.tags} <= {"html", "head", "meta", "title", "body", "article", "carousel", "slide",
                                              "div", "h3", "p", "code", "table", "thead", "tbody", "tr", "th", "td",
                                              "figure", "pre", "ol", "li", "b"}
    assert all(not name.startswith("on") for _, attrs in parsed.tags for name in attrs)


def test_a_hunt_without_parameters_renders() -> None:
    hunt = replace(next(iter(load_hunts().values())), parameters=())
    assert "No parameters." in render_guide([hunt])


@pytest.fixture
def served() -> Iterator[tuple[int, str]]:
    page = render_guide()
    server = serve_guide(page)
    try:
        yield server.server_address[1], page
    finally:
        server.shutdown()
        server.server_close()


def _request(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    return urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers or {}), timeout=10)


def test_the_server_answers_browser_fetch_with_cors_and_serves_nothing_else(served: tuple[int, str]) -> None:
    port, page = served
    url = f"http://127.0.0.1:{port}/{GUIDE_FILENAME}"
    assert play_command(port) == f":play http://localhost:{port}/{GUIDE_FILENAME}"
    origin = {"Origin": "http://127.0.0.1:7474"}
    preflight = _request(url, "OPTIONS", {**origin, "Access-Control-Request-Method": "GET",
                                          "Access-Control-Request-Headers": "cache-control,pragma"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "cache-control,pragma"
    with _request(url, headers={**origin, "Cache-Control": "no-cache", "Pragma": "no-cache"}) as response:
        assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.read().decode("utf-8") == page
    for path in ("/etc/passwd", "/../pyproject.toml", "/cypher/hunts/top-findings.cypher"):
        with pytest.raises(urllib.error.HTTPError) as error:
            _request(f"http://127.0.0.1:{port}{path}")
        assert error.value.code == 404


def test_cli_prints_or_writes_the_guide(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(cli, ["db", "guide"])
    assert printed.exit_code == 0, printed.output
    assert printed.output == render_guide()
    out = tmp_path / "guide.html"
    written = runner.invoke(cli, ["db", "guide", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_text(encoding="utf-8") == render_guide()

