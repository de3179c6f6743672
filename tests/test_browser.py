"""The analyst's real path: Neo4j Browser in headless Chromium, connected to the scored graph,
runs a hunting query and shows the top-scored user.

Uses Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them when it runs as
root); nothing is downloaded: Selenium gets both paths explicitly, so Selenium Manager stays idle.
Skips, saying why, when either binary is missing or the suite runs against an external server.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scored_estate import ScoredEstate, scored_estate_fixture, scored_estate_model_fixture  # noqa: F401

from gnnsec.graphdb.local import LocalNeo4j

pytestmark = [pytest.mark.integration, pytest.mark.browser]

WAIT_S = 90
HUNT = (
    "MATCH (u:User) WHERE u.anomaly_score IS NOT NULL "
    "RETURN u.uid AS uid, u.anomaly_score AS score ORDER BY score DESC, uid LIMIT 10"
)


def chromium_binaries() -> tuple[str, str]:
    """Debian's Chromium and its driver, or a skip that says what to install."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not browser or not chromedriver:
        pytest.skip("no Chromium found (need `chromium` and `chromedriver` on PATH: "
                    "apt-get install chromium chromium-driver); the real-browser check did not run")
    return browser, chromedriver


@pytest.fixture
def chrome(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium session; on failure its last screenshot is in the test's tmp dir."""
    browser, chromedriver = chromium_binaries()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(argument)
    session = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    session.set_page_load_timeout(WAIT_S)
    try:
        yield session
    finally:
        session.save_screenshot(str(tmp_path / "last.png"))
        session.quit()


def retried_exceptions() -> tuple[type[Exception], ...]:
    """A React re-render can detach or cover an element between finding and clicking it (seen once in CI on the
    result table's button): the wait tries again instead of failing."""
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        ElementNotInteractableException,
        NoSuchElementException,
        StaleElementReferenceException,
    )

    return (NoSuchElementException, StaleElementReferenceException, ElementNotInteractableException,
            ElementClickInterceptedException)


def _connect(chrome: Any, neo4j_server: LocalNeo4j, user: str, password: str) -> None:
    """Log Browser in over bolt:// to the test server."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(chrome, WAIT_S, ignored_exceptions=retried_exceptions())
    chrome.get(neo4j_server.browser_url)
    address = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid='boltaddress']")))
    wait.until(lambda _page: address.get_attribute("value"))
    Select(chrome.find_element(By.CSS_SELECTOR, "[data-testid='bolt-scheme-select']")).select_by_visible_text("bolt://")
    wanted = f"127.0.0.1:{neo4j_server.bolt_port}"

    def address_is_set(_page: Any) -> bool:
        if address.get_attribute("value") != wanted:
            address.send_keys(Keys.CONTROL, "a")
            address.send_keys(wanted)
        return address.get_attribute("value") == wanted

    wait.until(address_is_set, f"could not set the connect URL to {wanted}")
    chrome.find_element(By.CSS_SELECTOR, "[data-testid='username']").send_keys(user)
    chrome.find_element(By.CSS_SELECTOR, "[data-testid='password']").send_keys(password)
    chrome.find_element(By.CSS_SELECTOR, "[data-testid='connect']").click()
    wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, "[data-testid='disconnectedBanner']")))
    wait.until(lambda page: "You are connected" in page.find_element(By.TAG_NAME, "body").text)


def test_neo4j_browser_connects_runs_a_hunt_and_shows_the_top_scored_user(
    scored_estate: ScoredEstate, neo4j_server: LocalNeo4j | None, chrome: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    if neo4j_server is None:
        pytest.skip("NEO4J_URI names an external server: its Browser address is unknown to the suite")
    records, _, _ = scored_estate.driver.execute_query(HUNT, database_=scored_estate.database)
    assert records, "the scored estate has scored users"
    top_uid = records[0]["uid"]
    wait = WebDriverWait(chrome, WAIT_S, ignored_exceptions=retried_exceptions())

    def testid(name: str) -> tuple[str, str]:
        return By.CSS_SELECTOR, f"[data-testid='{name}']"

    _connect(chrome, neo4j_server, scored_estate.settings.user, scored_estate.settings.password)

    chrome.find_element(*testid("activeEditor")).click()
    editor = chrome.find_element(By.CSS_SELECTOR, "[data-testid='activeEditor'] textarea")
    editor.send_keys(HUNT)
    chrome.find_element(*testid("editor-Run")).click()

    def result_shows_top_user(page: Any) -> bool:
        tables = page.find_elements(*testid("cypherFrameSidebarTable"))
        if tables and tables[0].is_displayed():
            tables[0].click()
        return top_uid in page.find_element(By.TAG_NAME, "body").text

    wait.until(result_shows_top_user, f"the Browser result never showed the top-scored user {top_uid}")
    body = chrome.find_element(By.TAG_NAME, "body").text
    assert [r["uid"] for r in records if r["uid"] not in body] == [], "every row of the hunt is in the table"


# ---- the hunting pack as a Browser guide (`gnnsec db guide --serve`, issue #11) -----------------------------

GUIDE_HUNT = "top-anomalous-identities"


def test_neo4j_browser_plays_the_hunting_guide_and_runs_a_hunt_from_it(
    scored_estate: ScoredEstate, neo4j_server: LocalNeo4j | None, chrome: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from gnnsec.hunts import load_hunts
    from gnnsec.hunts_guide import play_command, render_guide, serve_guide

    if neo4j_server is None:
        pytest.skip("NEO4J_URI names an external server: its Browser address is unknown to the suite")
    hunts = load_hunts()
    query, parameters = hunts[GUIDE_HUNT].bind()
    records, _, _ = scored_estate.driver.execute_query(query, parameters, database_=scored_estate.database)
    assert records, f"{GUIDE_HUNT} finds rows in the scored estate"
    expected = [r["uid"] for r in records[:5]]
    wait = WebDriverWait(chrome, WAIT_S, ignored_exceptions=retried_exceptions())
    guide = serve_guide(render_guide(hunts.values()))
    try:
        _connect(chrome, neo4j_server, scored_estate.settings.user, scored_estate.settings.password)
        chrome.find_element(By.CSS_SELECTOR, "[data-testid='activeEditor']").click()
        # localhost, the host in Browser's default allowlist: the same line `gnnsec db guide --serve` prints
        chrome.find_element(By.CSS_SELECTOR, "[data-testid='activeEditor'] textarea").send_keys(
            play_command(guide.server_address[1]))
        chrome.find_element(By.CSS_SELECTOR, "[data-testid='editor-Run']").click()
        first_of = f"1 / {len(hunts) + 1}"  # the slide counter: an index slide, then one slide per hunt
        carousel = wait.until(
            lambda page: next((c for c in page.find_elements(By.CSS_SELECTOR, "[data-testid='carousel']")
                               if first_of in c.text), None),
            f"Browser never showed the guide's slides ({first_of})")
        index = carousel.get_attribute("textContent")
        assert all(name in index for name in hunts), "the first slide lists every hunt"

        def on_the_hunts_slide(_page: Any) -> bool:
            titles = [h.text for h in carousel.find_elements(By.TAG_NAME, "h3")]
            if any(title.endswith(f". {GUIDE_HUNT}") for title in titles):
                return True
            carousel.find_element(By.CSS_SELECTOR, "[data-testid='nextSlide']").click()
            return False

        wait.until(on_the_hunts_slide, f"no slide for {GUIDE_HUNT}")
        runnable = [pre for pre in carousel.find_elements(By.CSS_SELECTOR, "pre.runnable") if pre.is_displayed()]
        assert len(runnable) == 1
        runnable[0].click()  # Browser puts the query in the editor; the analyst runs it
        wait.until(lambda page: "anomaly_score >= min_score" in page.find_element(
            By.CSS_SELECTOR, "[data-testid='activeEditor']").text.replace("\xa0", " "),
            "the click did not fill the editor")
        chrome.find_element(By.CSS_SELECTOR, "[data-testid='editor-Run']").click()

        def result_shows_the_top_rows(page: Any) -> bool:
            tables = page.find_elements(By.CSS_SELECTOR, "[data-testid='cypherFrameSidebarTable']")
            if tables and tables[0].is_displayed():
                tables[0].click()
            body = page.find_element(By.TAG_NAME, "body").text
            return all(uid in body for uid in expected)

        wait.until(result_shows_the_top_rows, f"the hunt run from the guide never showed its top rows {expected}")
    finally:
        guide.shutdown()
        guide.server_close()
