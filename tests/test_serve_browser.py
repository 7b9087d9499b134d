"""The web page in a real browser: `python serve.py` as a real process, headless Chromium driven by Selenium
uploads a real photo; the shown output has the photo's size and colour, and the vividness control works.
Skips with the reason where Chromium, its driver or Selenium is absent (.ci/run installs them)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

from conftest import ROOT, SHARED_DATA, sample_images

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser():
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium)")
    binary = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("Chromium or chromedriver not found (Debian: apt-get install chromium chromium-driver)")
    return binary, driver


@pytest.fixture
def server(request):
    """serve.py on a free loopback port (with the test's `server_args` mark's flags); yields its URL; stopped
    with Ctrl-C (SIGINT) afterwards."""
    mark = request.node.get_closest_marker("server_args")
    extra = list(mark.args) if mark else []
    proc = subprocess.Popen([sys.executable, "serve.py", "--port", "0", *extra], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines, url = [], []

    def read():
        for line in proc.stdout:
            lines.append(line)
            found = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
            if found:
                url.append(found.group(1))
    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 180
    while not url and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert url, f"serve.py did not start: {''.join(lines)[-2000:]}"
        yield url[0]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode in (0, -signal.SIGINT, 130), "".join(lines)[-2000:]


CHROMA_JS = """
const img = arguments[0], c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d'); g.drawImage(img, 0, 0);
const d = g.getImageData(0, 0, c.width, c.height).data;
let s = 0;
for (let i = 0; i < d.length; i += 4) s += Math.abs(d[i] - d[i + 1]) + Math.abs(d[i + 1] - d[i + 2]);
return [img.naturalWidth, img.naturalHeight, s / (d.length / 4)];
"""


def test_page_colorizes_an_uploaded_photo(server, tmp_path):
    binary, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photos = sorted((SHARED_DATA / "imagenet-sample").glob("*.jpg"))
    photo = photos[5] if photos else sample_images(1)[0]
    width, height = Image.open(photo).size
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        browser.get(server)
        browser.find_element(By.ID, "files").send_keys(str(photo.resolve()))
        card = WebDriverWait(browser, 120).until(lambda b: b.find_element(By.CSS_SELECTOR, ".card"))
        WebDriverWait(browser, 120).until(lambda b: card.get_attribute("data-state") in ("done", "error"))
        assert card.get_attribute("data-state") == "done", card.find_element(By.CSS_SELECTOR, ".error").text
        output = card.find_element(By.CSS_SELECTOR, "img.colorized")
        w, h, chroma = browser.execute_script(CHROMA_JS, output)
        assert (w, h) == (width, height)  # the photo's own size
        assert chroma > 3.0  # coloured, not gray
        browser.save_screenshot(str(tmp_path / "page.png"))

        before = output.get_attribute("src")
        slider = card.find_element(By.CSS_SELECTOR, "input.vividness")
        browser.execute_script("arguments[0].value = arguments[0].max;"
                               "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));", slider)
        WebDriverWait(browser, 120).until(
            lambda b: card.get_attribute("data-state") == "done" and output.get_attribute("src") != before)
        assert browser.execute_script(CHROMA_JS, output)[2] > chroma  # more vivid
        browser.save_screenshot(str(tmp_path / "page_vivid.png"))

        before = output.get_attribute("src")
        levels = card.find_element(By.CSS_SELECTOR, "input.auto-levels")
        assert levels.is_displayed() and not levels.is_selected()
        levels.click()  # a faded photo's option: the page asks the server again, with auto_levels=1
        WebDriverWait(browser, 120).until(
            lambda b: card.get_attribute("data-state") == "done" and output.get_attribute("src") != before)
        sent = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert [u for u in sent if "/v1/colorize" in u][-1].endswith("auto_levels=1")
    finally:
        browser.quit()


KEY = "colorgan-test-key"


@pytest.mark.server_args("--api-key", KEY)
def test_page_asks_for_the_key_once_and_colorizes(server):
    """With --api-key the page asks for the key (a prompt), keeps it for the tab, and its requests carry it."""
    binary, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.unhandled_prompt_behavior = "ignore"
    browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        browser.get(server)
        prompt = WebDriverWait(browser, 30).until(expected_conditions.alert_is_present())
        assert "key" in prompt.text.lower()
        prompt.send_keys(KEY)
        prompt.accept()
        WebDriverWait(browser, 30).until(lambda b: "shipped" in b.find_element(By.ID, "model").text)
        browser.find_element(By.ID, "files").send_keys(str(sample_images(1)[0].resolve()))
        card = WebDriverWait(browser, 120).until(lambda b: b.find_element(By.CSS_SELECTOR, ".card"))
        WebDriverWait(browser, 120).until(lambda b: card.get_attribute("data-state") in ("done", "error"))
        assert card.get_attribute("data-state") == "done", card.find_element(By.CSS_SELECTOR, ".error").text
        assert browser.execute_script("return sessionStorage.getItem('colorgan-api-key')") == KEY
    finally:
        browser.quit()
