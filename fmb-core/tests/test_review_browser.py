"""``fmb review`` in a real headless browser (Debian's chromium + chromedriver through selenium).

Open the queue, label five objects with the keyboard, see the queue re-rank, kill the server (a crash),
start it again, find the five labels, export them as CSV. Skips when chromium is missing, unless CI is set
(then it fails). ``FMB_REVIEW_SCREENSHOT=path.png`` keeps the screenshot (docs/review.png is made so).
"""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from fmb.testing.cli import fmb_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("CI"):
        raise RuntimeError("CI is set but chromium/chromedriver are missing: .ci/run installs them (apt-get)")
    pytest.skip(
        "chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("selenium is not installed (pip install 'fmb-core[review]')", allow_module_level=True)

WAIT = 120  # seconds: an upper bound for a slow shared machine, not a timed assertion


def start_server(run_dir: Path, out: Path, env: dict) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fmb.cli", "review", str(run_dir), "--port", "0", "--out", str(out), "--top", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        m = re.search(r"fmb review at (http://127\.0\.0\.1:\d+/)", line)
        if m:
            return proc, m.group(1)
    raise AssertionError("the server did not start:\n" + "".join(lines))


@pytest.fixture
def driver(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--disable-gpu"):
        opts.add_argument(a)
    opts.add_experimental_option(
        "prefs", {"download.default_directory": str(tmp_path / "downloads"), "download.prompt_for_download": False}
    )
    d = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield d
    d.quit()


def next_ids(driver) -> list[str]:
    return [r.get_attribute("data-object-id") for r in driver.find_elements(By.CSS_SELECTOR, "#next tbody tr")]


def test_review_in_browser(tmp_path, driver):
    run_dir = tmp_path / "run"
    fmb_run(run_dir, "--no-report", detector="ecod", dataset="synthetic:size=60")
    out = tmp_path / "review"
    env = dict(os.environ)
    proc, url = start_server(run_dir, out, env)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, WAIT)
        wait.until(lambda d: len(next_ids(d)) > 5)
        body = driver.find_element(By.TAG_NAME, "body")
        plain = next_ids(driver)
        keys = ["a", "a", "i", "b", "u"]
        for n, key in enumerate(keys, 1):
            if key == "i":  # a note first: n focuses it, Escape leaves it
                body.send_keys("n")
                driver.switch_to.active_element.send_keys("arc?", Keys.ESCAPE)
            body.send_keys(key)
            wait.until(lambda d, n=n: d.find_element(By.ID, "n-labelled").text == str(n))
        labelled = plain[:1]  # the first card is labelled first; the later ones come from the re-ranked queue
        recent = {
            li.get_attribute("data-object-id"): li.text.split(": ")[1].split(" ")[0]
            for li in driver.find_elements(By.CSS_SELECTOR, "#recent li")
        }
        assert len(recent) == 5 and labelled[0] in recent and recent[labelled[0]] == "artefact"
        assert sorted(recent.values()) == sorted(["artefact", "artefact", "interesting", "boring", "unsure"])
        # the page shows the server's re-ranked queue, which is not the plain anomaly order
        state = json.loads(urllib.request.urlopen(url + "api/queue").read())
        shown = next_ids(driver)
        assert shown == [c["object_id"] for c in state["next"]] and not set(shown) & set(recent)
        ranks = [
            int(r.find_elements(By.TAG_NAME, "td")[2].text)
            for r in driver.find_elements(By.CSS_SELECTOR, "#next tbody tr")
        ]
        assert ranks != sorted(ranks), "the queue was not re-ranked"
        assert all(
            r.find_elements(By.TAG_NAME, "td")[3].text != "–"
            for r in driver.find_elements(By.CSS_SELECTOR, "#next tbody tr")
        )
        assert "re-ranked after 5 labels" in driver.find_element(By.ID, "rerank-info").text
        wait.until(
            lambda d: d.execute_script(
                "const i = document.getElementById('card-img'); return i.complete && i.naturalWidth > 0;"
            )
        )
        driver.save_screenshot(os.environ.get("FMB_REVIEW_SCREENSHOT") or str(tmp_path / "review.png"))
        # a crash: the server is killed, then started again on the same labels file
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc, url = start_server(run_dir, out, env)
        driver.get(url)
        wait.until(lambda d: d.find_element(By.ID, "n-labelled").text == "5")
        again = {
            li.get_attribute("data-object-id"): li.text.split(": ")[1].split(" ")[0]
            for li in driver.find_elements(By.CSS_SELECTOR, "#recent li")
        }
        assert again == recent
        assert any("(arc?)" in li.text for li in driver.find_elements(By.CSS_SELECTOR, "#recent li"))
        driver.find_element(By.ID, "export").click()
        path = tmp_path / "downloads" / "review-labels.csv"
        wait.until(lambda d: path.exists() and path.stat().st_size > 0)
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert {r["object_id"]: r["label"] for r in rows} == recent
        assert [r["note"] for r in rows if r["label"] == "interesting"] == ["arc?"]
    finally:
        proc.kill()
        proc.wait()
