"""The web page in a real browser (Debian's headless Chromium driven by Selenium through
Debian's chromium-driver), against a real archive and the real service: hover, marks that
become ADQL giving the same rows as pyvo, upload, refine, quick-select. Screenshots go to
tests/results/browser/."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvo

from .system import needs, require
from .tapserver import running_service
from .webarchive import web_archive

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [pytest.mark.slow, needs(bool(CHROMIUM and DRIVER), "chromium + chromium-driver")]
SHOTS = Path(__file__).resolve().parent / "results" / "browser"


@pytest.fixture(scope="module")
def site(cluster_dsn: str):
    archive = web_archive(cluster_dsn)
    with running_service(archive.dsn) as tap:
        yield tap.removesuffix("/tap"), archive


@pytest.fixture(scope="module")
def browser():
    require(bool(CHROMIUM and DRIVER), "chromium + chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="caomai-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1500,2000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def js(driver, script: str, *args: Any) -> Any:  # noqa: ANN001
    return driver.execute_script(script, *args)


def idle(driver) -> dict:  # noqa: ANN001
    """The page's status once no query runs: {state, text}."""
    return wait_for(
        lambda: js(
            driver,
            "const s = document.querySelector('#status');"
            "return window.caomai && !window.caomai.running && s.dataset.state && s.dataset.state !== 'busy'"
            " ? {state: s.dataset.state, text: s.textContent} : null;",
        ),
        "the query to finish",
    )


def shown_ids(driver) -> list[str]:  # noqa: ANN001
    return js(
        driver,
        "return [...document.querySelectorAll('#results-table tbody tr')].map(r => r.dataset.id);",
    )


def open_page(driver, url: str) -> None:  # noqa: ANN001
    driver.get(url + "/")
    wait_for(
        lambda: js(
            driver,
            "return document.querySelectorAll('#grid-map1 .node').length === 400"
            " && document.querySelectorAll('#grid-map2 .node').length === 400;",
        ),
        "both maps",
    )
    idle(driver)


def cell(driver, kind: str, node: int):  # noqa: ANN001, ANN201
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"#grid-{kind} .node[data-node='{node}']")


def busiest(url: str, kind: str, rank: int = 0) -> int:
    nodes = httpx.get(f"{url}/api/maps/{kind}").json()["nodes"]
    return sorted(nodes, key=lambda n: -n["members"])[rank]["node"]


def test_hover_shows_samples_and_statistics(site, browser) -> None:  # noqa: ANN001
    from selenium.webdriver import ActionChains

    url, _ = site
    open_page(browser, url)
    for kind in ("map2", "map1"):
        node = busiest(url, kind)
        ActionChains(browser).move_to_element(cell(browser, kind, node)).perform()
        n = wait_for(
            lambda kind=kind, node=node: js(
                browser,
                "const box = document.querySelector(`#hover .samples[data-map='${arguments[0]}'][data-node='${arguments[1]}']`);"
                "if (!box) return 0; const imgs = [...box.querySelectorAll('img')];"
                "return imgs.length && imgs.every(i => i.complete && i.naturalWidth > 0) ? imgs.length : 0;",
                kind,
                node,
            ),
            f"{kind} node {node}'s samples",
        )
        assert 1 <= n <= 9
        stats = js(browser, "return document.querySelectorAll('#hover table.stats tr').length;")
        assert stats > 0
        browser.save_screenshot(str(SHOTS / f"hover-{kind}.png"))


def test_marks_become_adql_that_gives_the_same_rows_as_pyvo(site, browser) -> None:  # noqa: ANN001
    url, _ = site
    open_page(browser, url)
    include = busiest(url, "map1")
    exclude = busiest(url, "map2")
    cell(browser, "map1", include).click()
    idle(browser)
    c = cell(browser, "map2", exclude)
    c.click()
    c.click()
    wait_for(lambda: "in_node(f.map2_node" in browser.find_element("id", "adql").text, "the ADQL")
    status = idle(browser)
    assert status["state"] == "done", status
    adql = browser.find_element("id", "adql").text
    assert f"has_object_node(p.planeID, '{include}', 1) = 1" in adql
    assert f"in_node(f.map2_node, '{exclude}') = 0" in adql
    assert "include" in cell(browser, "map1", include).get_attribute("class")
    assert "exclude" in cell(browser, "map2", exclude).get_attribute("class")
    table = pyvo.dal.TAPService(f"{url}/tap").run_sync(adql).to_table()
    expected = [str(v) for v in table["publisherID"]]
    assert expected, "the marks should leave some images"
    assert shown_ids(browser) == expected
    browser.save_screenshot(str(SHOTS / "marks-and-results.png"))


def test_upload_shows_similar_images_of_its_class(site, browser) -> None:  # noqa: ANN001
    url, archive = site
    open_page(browser, url)
    hits = []
    for path, cls in list(archive.uploads.items())[:4]:
        browser.find_element("id", "upload-file").send_keys(str(path))
        browser.find_element("css selector", "#upload-form button").click()
        wait_for(
            lambda: js(
                browser,
                "return document.querySelector('#upload-result').dataset.state === 'done'"
                " && window.caomai.upload;",
            ),
            "the upload",
            timeout=180,
        )
        idle(browser)
        similar = js(
            browser,
            "return [...document.querySelectorAll('#upload-result .similar li')].map(l => l.dataset.id);",
        )
        assert len(similar) == 10
        node = js(browser, "return window.caomai.upload.map2_node;")
        assert "upload" in cell(browser, "map2", node).get_attribute("class")
        top = Counter(archive.truth[p] for p in similar[:5]).most_common(1)[0][0]
        hits.append(top == cls)
        # the result list ranks by the same explicit vector, with the page's columns: the
        # image vector, which this archive's Map 2 is trained on
        assert shown_ids(browser)[:10] == similar
        assert js(browser, "return window.caomai.maps.map2.model.input;") == "image_vec"
        assert "fp_similar(f.image_vec, '[" in browser.find_element("id", "adql").text
        js(browser, "document.querySelector('#upload-result').dataset.state = '';")
    browser.save_screenshot(str(SHOTS / "upload.png"))
    assert sum(hits) >= 3, f"the majority class of the 5 most similar images matched {hits}"


def test_selecting_two_results_reranks_the_rest(site, browser) -> None:  # noqa: ANN001
    url, _ = site
    open_page(browser, url)
    before = shown_ids(browser)
    assert len(before) >= 10
    picks = js(
        browser,
        "const boxes = [...document.querySelectorAll('#results-table .pick')];"
        "boxes[3].click(); boxes[7].click();"
        "return [boxes[3], boxes[7]].map(b => b.closest('tr').dataset.id);",
    )
    browser.find_element("id", "refine").click()
    wait_for(lambda: "fp_similar" in browser.find_element("id", "adql").text, "the re-ranking ADQL")
    idle(browser)
    adql = browser.find_element("id", "adql").text
    assert f"'{picks[0]}|{picks[1]}'" in adql
    after = shown_ids(browser)
    assert after != before[: len(after)]
    assert set(after[:2]) == set(picks) or after[0] in picks
    sims = js(browser, "return window.caomai.rows.map(r => r.sim);")
    assert sims == sorted(sims, reverse=True)
    browser.save_screenshot(str(SHOTS / "refine.png"))


def test_checking_one_result_selects_its_map2_node(site, browser) -> None:  # noqa: ANN001
    url, _ = site
    open_page(browser, url)
    pick = js(
        browser,
        "const b = document.querySelector('#results-table .pick'); b.click();"
        " return b.closest('tr').dataset.id;",
    )
    browser.find_element("id", "select-node").click()
    wait_for(
        lambda: "in_node(f.map2_node, '" + pick in browser.find_element("id", "adql").text, "ADQL"
    )
    idle(browser)
    nodes = set(js(browser, "return window.caomai.rows.map(r => r.map2_node);"))
    assert len(nodes) == 1 and pick in shown_ids(browser)


def test_quick_select_offers_five_groups_and_picks_one(site, browser) -> None:  # noqa: ANN001
    url, _ = site
    open_page(browser, url)
    browser.find_element("id", "quick-select").click()
    groups = wait_for(
        lambda: js(browser, "return document.querySelectorAll('#groups .group').length;"),
        "the quick-select groups",
    )
    assert groups == 5
    browser.save_screenshot(str(SHOTS / "quick-select.png"))
    browser.find_element("css selector", "#groups .group").click()
    wait_for(lambda: "p.publisherID IN (" in browser.find_element("id", "adql").text, "group ADQL")
    idle(browser)
    assert 1 <= len(shown_ids(browser)) <= 15
