"""The report's plan explorer in a real browser: headless Chromium driven by selenium.

Run by ``nox -s browser`` (``.ci/run`` installs Debian's chromium and chromium-driver);
marked ``browser`` so the default test run does not need a browser. With
PRICELAB_REQUIRE_BROWSER=1 (the nox session sets it) a missing browser fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pricelab.store import Store
from pricelab.store.runs import record_run
from tests.test_report_fixtures import estimate_frame, plan_frame, store_run

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,1500",
]
KEYS = [("IT-1", "US"), ("IT-1", "DE"), ("IT-2", "US"), ("IT-2", "DE")]


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    missing = [p for p in (CHROMIUM, DRIVER) if not shutil.which(p)]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium")
    if missing:
        if os.environ.get("PRICELAB_REQUIRE_BROWSER"):
            pytest.fail(f"browser tests need {', '.join(missing)}")
        pytest.skip(f"no {', '.join(missing)} (nox -s browser installs and runs these)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="pricelab-chromium-")
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _plan_with_skipped(db: Path) -> str:
    est = estimate_frame(KEYS, category={"IT-1": "bags", "IT-2": "shoes"})
    e = store_run(db, "estimate", "elasticities", est, parameters={"model": "poisson"})
    plan = plan_frame(est)
    with Store.open(db) as store:
        run = record_run(store, "optimize", {}, [e])
        with store.transaction():
            store.write_result("plans", plan, run.run_id)
            run.finish(
                {
                    "rows": plan.height,
                    "skipped": [
                        {"item_id": "IT-9", "market": "US", "reason": "no unit cost"},
                    ],
                }
            )
    return run.run_id


@pytest.fixture
def report(loaded_db: Path, tmp_path: Path, cli) -> Path:
    _plan_with_skipped(loaded_db)
    out = tmp_path / "report.html"
    res = cli("report", "--db", loaded_db, "-o", out)
    assert res.exit_code == 0, res.stderr
    return out


def _rows(drv: Any) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    return [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in drv.find_elements(By.CSS_SELECTOR, "#plan-table tbody tr")
    ]


def test_plan_explorer_sorts_filters_and_explains(driver: Any, report: Path, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    drv = driver
    drv.get(report.as_uri())
    count = drv.find_element(By.ID, "plan-count")
    assert count.text == "4 of 4 rows"
    # filter by market with the select, then by text
    Select(drv.find_element(By.ID, "plan-market")).select_by_value("US")
    assert count.text == "2 of 4 rows"
    assert {r[1] for r in _rows(drv)} == {"US"}
    Select(drv.find_element(By.ID, "plan-market")).select_by_value("")
    box = drv.find_element(By.ID, "plan-filter")
    box.send_keys("IT-2")
    assert count.text == "2 of 4 rows" and {r[0] for r in _rows(drv)} == {"IT-2"}
    box.clear()
    box.send_keys("shoes")  # category is searchable too
    assert {r[0] for r in _rows(drv)} == {"IT-2"}
    box.clear()
    box.send_keys(" ")
    box.clear()
    drv.execute_script(
        "var e = document.getElementById('plan-filter'); e.value = '';"
        "e.dispatchEvent(new Event('input'));"
    )
    assert count.text == "4 of 4 rows"
    # sort by current price: ascending on the first click, descending on the second
    header = drv.find_element(By.CSS_SELECTOR, "#plan-table th[data-col=current_price]")
    header.click()
    prices = [float(r[2].replace(",", "")) for r in _rows(drv)]
    assert prices == sorted(prices) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    prices = [float(r[2].replace(",", "")) for r in _rows(drv)]
    assert prices == sorted(prices, reverse=True)
    # why this price: click the first row
    why = drv.find_element(By.ID, "plan-why")
    assert not why.is_displayed()
    first = drv.find_element(By.CSS_SELECTOR, "#plan-table tbody tr")
    key = first.get_attribute("data-key")
    first.click()
    assert why.is_displayed()
    item, market = key.split("/")
    assert f"for {item} in {market}?" in why.text
    assert "Elasticity" in why.text and "95% interval" in why.text
    assert "Binding constraints:" in why.text
    assert why.find_elements(By.CSS_SELECTOR, "svg polyline")  # the curve is drawn
    # markets by marker shape, not only colour: one shape per market in the chart
    shapes = drv.execute_script(
        "var out = {}; document.querySelectorAll('#plan-chart .pt').forEach(function (p) {"
        "  out[p.getAttribute('data-key').split('/')[1]] = p.tagName; }); return out;"
    )
    assert set(shapes) == {"US", "DE"} and len(set(shapes.values())) == 2
    # skipped rows are listed
    skipped = drv.find_element(By.ID, "plan-skipped").text
    assert "IT-9/US: no unit cost" in skipped
    # offline: no request left the file, no script error
    assert drv.execute_script("return performance.getEntriesByType('resource').length") == 0
    errors = [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    shot = tmp_path / "explorer.png"
    drv.execute_script("document.getElementById('plan-explorer').scrollIntoView()")
    assert drv.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    if os.environ.get("PRICELAB_SCREENSHOT_DIR"):  # keep it for a person to look at
        shutil.copy(shot, Path(os.environ["PRICELAB_SCREENSHOT_DIR"]) / "explorer.png")


def test_explorer_data_cannot_break_out_of_its_script(driver: Any, loaded_db: Path, tmp_path, cli):
    """A hostile item id is data, not markup: the page still runs and shows it as text."""
    from selenium.webdriver.common.by import By

    est = estimate_frame([("</script><b>x", "US")])
    e = store_run(loaded_db, "estimate", "elasticities", est)
    store_run(loaded_db, "optimize", "plans", plan_frame(est), parents=[e])
    out = tmp_path / "hostile.html"
    assert cli("report", "--db", loaded_db, "-o", out).exit_code == 0
    driver.get(out.as_uri())
    assert driver.find_element(By.ID, "plan-count").text == "1 of 1 rows"
    assert _rows(driver)[0][0] == "</script><b>x"
    doc = json.loads(driver.find_element(By.ID, "plan-data").get_attribute("textContent"))
    assert doc["rows"][0]["item_id"] == "</script><b>x"
