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
    yield from _serve(list(mark.args) if mark else [])


def _serve(extra):
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


def shipped_cast_correction() -> float:
    """The shipped model's cast correction, as its config.json records it (the page's tint slider starts there)."""
    from colorgan.config import Config
    from colorgan.training.runs import SHIPPED_WEIGHTS
    return Config.load(SHIPPED_WEIGHTS / "config.json").cast_correction


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

        cast = card.find_element(By.CSS_SELECTOR, "input.cast-correction")  # tint removal, the model's to start
        assert cast.is_displayed() and float(cast.get_attribute("value")) == pytest.approx(shipped_cast_correction())
        before = output.get_attribute("src")
        browser.execute_script("arguments[0].value = arguments[0].max;"
                               "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));", cast)
        WebDriverWait(browser, 120).until(
            lambda b: card.get_attribute("data-state") == "done" and output.get_attribute("src") != before)
        sent = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert "cast_correction=1" in [u for u in sent if "/v1/colorize" in u][-1]

        before = output.get_attribute("src")
        levels = card.find_element(By.CSS_SELECTOR, "input.auto-levels")
        assert levels.is_displayed() and not levels.is_selected()
        levels.click()  # a faded photo's option: the page asks the server again, with auto_levels=1
        WebDriverWait(browser, 120).until(
            lambda b: card.get_attribute("data-state") == "done" and output.get_attribute("src") != before)
        sent = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert "&auto_levels=1" in [u for u in sent if "/v1/colorize" in u][-1]
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


@pytest.fixture
def hint_server(tmp_path):
    """serve.py --run a small hint model trained on the toy task of test_hints (two flat regions of random
    colours: only a hint tells the colour)."""
    _browser()  # skip before training when there is no browser
    import keras
    import tensorflow as tf

    from colorgan.training.trainers import build_trainer
    from conftest import tiny_config
    from test_hints import _two_region_batch
    keras.utils.set_random_seed(3)
    cfg = tiny_config(model="unet-l1", hints=True, lr=2e-3).resolved(32)
    model = build_trainer(cfg)
    ds = tf.data.Dataset.from_generator(lambda: (_two_region_batch(s) for s in range(10 ** 6)),
                                        output_signature=(tf.TensorSpec([16, 32, 32, 1]),
                                                          tf.TensorSpec([16, 32, 32, 2])))
    model.fit(ds, steps_per_epoch=300, epochs=1, verbose=0)
    run = tmp_path / "hint-run"
    run.mkdir()
    model.generator.save(run / "generator.keras")
    cfg.save(run / "config.json")
    yield from _serve(["--run", str(run)])


AB_AT_JS = """
const img = arguments[0], c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d'); g.drawImage(img, 0, 0);
const d = g.getImageData(Math.floor(arguments[1] * c.width), Math.floor(arguments[2] * c.height), 1, 1).data;
return [d[0], d[1], d[2]];
"""


def test_page_places_a_hint_and_the_colour_there_moves_toward_it(hint_server, tmp_path):
    binary, driver_path = _browser()
    import numpy as np
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from colorgan.color.lab import rgb_to_lab
    # the toy task's photo: a dark left half and a light right half (L 35 and 65), 128 x 64
    gray = np.zeros((64, 128), np.uint8)
    gray[:, :64], gray[:, 64:] = 82, 157
    photo = tmp_path / "halves.png"
    Image.fromarray(gray).save(photo)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)

    def ab_at(img, fx, fy):
        rgb = np.array(browser.execute_script(AB_AT_JS, img, fx, fy), np.float32) / 255.0
        return rgb_to_lab(rgb[None, None]).numpy()[0, 0, 1:]

    try:
        browser.get(hint_server)
        browser.find_element(By.ID, "files").send_keys(str(photo.resolve()))
        card = WebDriverWait(browser, 120).until(lambda b: b.find_element(By.CSS_SELECTOR, ".card"))
        WebDriverWait(browser, 120).until(lambda b: card.get_attribute("data-state") == "done")
        output = card.find_element(By.CSS_SELECTOR, "img.colorized")
        before = ab_at(output, 0.25, 0.5)
        mode = card.find_element(By.CSS_SELECTOR, "input.hint-mode")
        assert mode.is_displayed()
        mode.click()
        src = output.get_attribute("src")
        stage = card.find_element(By.CSS_SELECTOR, ".stage")
        box = output.rect
        ActionChains(browser).move_to_element_with_offset(output, -box["width"] // 4, 0).click().perform()
        picker = WebDriverWait(browser, 30).until(lambda b: card.find_element(By.CSS_SELECTOR, "input.hint-colour"))
        WebDriverWait(browser, 120).until(
            lambda b: card.get_attribute("data-state") == "done" and output.get_attribute("src") != src)
        src = output.get_attribute("src")
        browser.execute_script("arguments[0].value = '#d02090';"
                               "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", picker)
        WebDriverWait(browser, 120).until(
            lambda b: card.get_attribute("data-state") == "done" and output.get_attribute("src") != src)
        sent = [u for u in browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
                if "/v1/colorize" in u][-1]
        assert "hints=0.2" in sent and "%23d02090" in sent.lower()
        target = rgb_to_lab(np.array([[[0xD0, 0x20, 0x90]]], np.float32) / 255.0).numpy()[0, 0, 1:]
        after = ab_at(output, 0.25, 0.5)
        assert np.linalg.norm(after - target) < 0.85 * np.linalg.norm(before - target)  # toward the hint's colour
        assert stage.is_displayed()
        # The hint's dot sits where it was placed, in its colour; dragged to the right half, the hint moves there
        # (the request carries the new place) and the colour follows it.
        dot = card.find_element(By.CSS_SELECTOR, ".hint-dot")
        assert abs(dot.rect["x"] + dot.rect["width"] / 2 - (box["x"] + box["width"] / 4)) < 4
        right_before = ab_at(output, 0.75, 0.5)
        src = output.get_attribute("src")
        ActionChains(browser).click_and_hold(dot).move_by_offset(box["width"] // 4, 0) \
            .move_by_offset(box["width"] // 4, 0).release().perform()
        def last_request():
            return [u for u in browser.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)") if "/v1/colorize" in u][-1]
        # (a request may go while it is dragged; the one on release has the final place)
        WebDriverWait(browser, 120).until(lambda b: "hints=0.7" in last_request() and output.get_attribute("src")
                                          != src and card.get_attribute("data-state") == "done")
        assert len(card.find_elements(By.CSS_SELECTOR, ".hint-dot")) == 1  # moved, not added
        listed = card.find_element(By.CSS_SELECTOR, ".hints li span").text  # "74%, 49%": the list follows the dot
        assert 70 <= int(listed.split("%")[0]) <= 78
        right_after = ab_at(output, 0.75, 0.5)
        assert np.linalg.norm(right_after - target) < 0.85 * np.linalg.norm(right_before - target)
        # Variants: a strip of thumbnails drawn with the user's hint kept; picking one shows it and puts its hints
        # on the photo (the user's, then the drawn ones), to be moved from there.
        from colorgan.inference.variants import VARIANT_POINTS
        card.find_element(By.CSS_SELECTOR, "button.variants-btn").click()
        thumbs = WebDriverWait(browser, 120).until(
            lambda b: len(card.find_elements(By.CSS_SELECTOR, ".variant img")) == 4
            and card.find_elements(By.CSS_SELECTOR, ".variant img"))
        src = output.get_attribute("src")
        thumbs[1].click()
        WebDriverWait(browser, 30).until(lambda b: output.get_attribute("src") != src)
        assert len(card.find_elements(By.CSS_SELECTOR, ".hint-dot")) == 1 + VARIANT_POINTS
        assert card.find_elements(By.CSS_SELECTOR, ".variant")[1].get_attribute("aria-pressed") == "true"
        for fx, fy in ((0.25, 0.5), (0.75, 0.5)):  # the photo shown is the picked variant
            assert np.abs(ab_at(output, fx, fy) - ab_at(thumbs[1], fx, fy)).max() < 1e-3
        browser.save_screenshot(str(tmp_path / "page_hint.png"))
    finally:
        browser.quit()
