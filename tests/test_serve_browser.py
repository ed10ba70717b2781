"""The page in a real headless Chromium (Selenium driving the system's chromium and
chromedriver) against a real uvicorn server with the scripted model: type a question
character by character, see an action before Enter, then the answer and the latencies.

Skips (one line) where no browser or driver is installed; CI sets
``LIVEMIND_REQUIRE_ENGINES=1`` (conftest.missing; ``LIVEMIND_REQUIRE_BROWSER=1`` still
works) so that a missing browser fails there instead."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from conftest import missing, require_module

require_module("fastapi", "the serve extra is not installed: pip install -e '.[serve]'")

from live_mind.serve import main as serve_main  # noqa: E402
from live_mind.serve.app import create_app  # noqa: E402

QUESTION = "The sky is blue. It is noon. Why is the sky blue?"
ANSWER = "Light scatters. The answer is (B)."
ENTRY = """[models.browser-scripted]
backend = "scripted"
prime_actions = true
constrain_actions = false
seconds = 0.05
sleep = 0.05
rules = { "Options are" = "Light scatters. The answer is (B).", "." = "inference. about the sky" }
"""


def browser() -> tuple[str, str]:
    """Chromium and chromedriver, or skip (fail under ``LIVEMIND_REQUIRE_ENGINES``)."""
    found = [shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")]
    binary, driver = next((b for b in found if b), None), shutil.which("chromedriver")
    absent = None
    try:
        import selenium  # noqa: F401
    except ImportError:
        absent = "selenium is not installed (pip install -e '.[test]')"
    if absent is None and not (binary and driver):
        absent = "no chromium/chromedriver found (apt-get install chromium chromium-driver)"
    if absent:
        missing(absent)
    return binary, driver


@contextmanager
def chrome(binary: str, driver_path: str, width: int = 1200, height: int = 820):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def scripted_app(tmp_path: Path):
    models = tmp_path / "models.toml"
    models.write_text(ENTRY)
    args = serve_main.parse_args(["--models", str(models), "--model", "browser-scripted"])
    setup, limits, _ = serve_main.validate(args)
    return create_app(serve_main.build_engine(args, setup, limits))


@contextmanager
def connected_page(tmp_path: Path, live_server, query: str = "", timeout: float = 30):
    """The page of a scripted server in Chromium, once it says it is connected: ``(page, wait)``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    binary, driver_path = browser()
    url = live_server(scripted_app(tmp_path))
    with chrome(binary, driver_path) as page:
        page.get(url + "/" + query)
        wait = WebDriverWait(page, timeout)
        wait.until(lambda d: "browser-scripted" in d.find_element(By.ID, "info").text)
        yield page, wait


def test_browser_types_sees_actions_then_the_answer_and_latency(tmp_path, live_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with connected_page(tmp_path, live_server) as (page, wait):
        page.find_element(By.ID, "options").send_keys("red\nscattering")
        box = page.find_element(By.ID, "question")
        for ch in QUESTION:  # one key at a time, as a user types
            box.send_keys(ch)
        actions = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#actions li.action"))
        assert "inference" in actions[0].text and "about the sky" in actions[0].text
        assert page.find_element(By.ID, "answer").text == ""  # nothing answered before Enter
        box.send_keys(Keys.ENTER)
        wait.until(lambda d: d.find_element(By.ID, "latency-baseline").text.endswith(")"))
        assert page.find_element(By.ID, "answer").text == ANSWER
        live = page.find_element(By.ID, "latency-livemind").text
        assert live.endswith(" s") and float(live.split()[0]) > 0
        assert "LiveMind ×" in page.find_element(By.ID, "latency-baseline").text
        assert "error" not in page.find_element(By.ID, "status").get_attribute("class")
        shot = tmp_path / "serve_page.png"
        page.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000


def test_browser_replay_button_runs_a_sample_question(tmp_path, live_server):
    from selenium.webdriver.common.by import By

    with connected_page(tmp_path, live_server, "?speed=0.005", timeout=60) as (page, wait):
        assert page.find_element(By.ID, "speed").get_attribute("value") == "0.005"
        page.find_element(By.ID, "replay").click()
        wait.until(lambda d: d.find_element(By.ID, "latency-baseline").text.endswith(")"))
        assert page.find_elements(By.CSS_SELECTOR, "#actions li.action")
        assert page.find_element(By.ID, "options").get_attribute("value")  # the sample's options
        assert page.find_element(By.ID, "answer").text


def test_browser_chooses_a_method_and_sees_its_calls(tmp_path, live_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with connected_page(tmp_path, live_server, "?speed=0.005", timeout=60) as (page, wait):
        choice = Select(page.find_element(By.ID, "method"))
        assert {o.get_attribute("value") for o in choice.options} >= {"livemind", "cot", "predgen"}
        choice.select_by_value("predgen")
        assert page.find_element(By.ID, "method-name").text == "PredGen"
        page.find_element(By.ID, "replay").click()
        wait.until(lambda d: d.find_element(By.ID, "latency-baseline").text.endswith(")"))
        items = page.find_elements(By.CSS_SELECTOR, "#actions li.action")
        assert items and all("speculation" in item.text for item in items)
        assert "PredGen ×" in page.find_element(By.ID, "latency-baseline").text
        assert "error" not in page.find_element(By.ID, "status").get_attribute("class")
