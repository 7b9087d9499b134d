"""A hint edit to a new result on the web page, in a real browser, for a 1-megapixel photo.

    python benchmarks/hint_edit_browser.py --run weights/hints --photo ../shared/data/old-photos/1864UnionSoldier.jpg

Starts `serve.py --run RUN` on a free port, opens the page in headless Chromium (Selenium), uploads the photo
resized to about --megapixels, places one hint, then changes its colour --edits times (as the colour picker does:
an `input` event) and times each from the change to the new photo shown (the img's load event), as the user waits
for it. Printed per edit and as the median: the whole wait, the /v1/colorize request within it (the browser's
Resource Timing: upload, server, download), and the page's own debounce (DEBOUNCE_MS in app.js, waited before the
request goes). Needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver) and selenium.
"""
import argparse
import io
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")

# Sets the first hint's colour as the picker does, and resolves with timings once the new photo has loaded.
EDIT_JS = """
const [picker, img, colour, done] = arguments;
const before = img.src, t0 = performance.now();
const entries = () => performance.getEntriesByType('resource').filter((e) => e.name.includes('/v1/colorize'));
const seen = entries().length;
img.addEventListener('load', function shown() {
  if (img.src === before) return;
  img.removeEventListener('load', shown);
  const request = entries().slice(seen).pop();
  done([performance.now() - t0, request ? request.duration : -1, request ? request.startTime - t0 : -1]);
});
picker.value = colour;
picker.dispatchEvent(new Event('input', {bubbles: true}));
"""


def start_server(run: str):
    proc = subprocess.Popen([sys.executable, "serve.py", "--port", "0", "--run", run], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = []

    def read():
        for line in proc.stdout:
            found = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
            if found:
                url.append(found.group(1))
    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 180
    while not url and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if not url:
        os.killpg(proc.pid, signal.SIGKILL)
        sys.exit("serve.py did not start")
    return proc, url[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="weights/hints", help="a model trained with --hints (default: %(default)s)")
    parser.add_argument("--photo", required=True, help="a photo (resized to --megapixels)")
    parser.add_argument("--megapixels", type=float, default=1.0, help="(default: %(default)s)")
    parser.add_argument("--edits", type=int, default=8, help="colour changes timed (default: %(default)s)")
    args = parser.parse_args(argv)
    binary = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        sys.exit("needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    tmp = Path(tempfile.mkdtemp())
    with Image.open(args.photo) as im:
        scale = (args.megapixels * 1e6 / (im.width * im.height)) ** 0.5
        im = im.convert("RGB").resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        photo = tmp / "photo.jpg"
        im.save(photo, quality=90)
        size = im.size
    proc, url = start_server(args.run)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    browser.set_script_timeout(120)
    try:
        browser.get(url)
        browser.find_element(By.ID, "files").send_keys(str(photo))
        card = WebDriverWait(browser, 120).until(lambda b: b.find_element(By.CSS_SELECTOR, ".card"))
        WebDriverWait(browser, 120).until(lambda b: card.get_attribute("data-state") == "done")
        output = card.find_element(By.CSS_SELECTOR, "img.colorized")
        card.find_element(By.CSS_SELECTOR, "input.hint-mode").click()
        src = output.get_attribute("src")
        ActionChains(browser).move_to_element(output).click().perform()  # one hint, at the photo's centre
        picker = WebDriverWait(browser, 30).until(lambda b: card.find_element(By.CSS_SELECTOR, "input.hint-colour"))
        WebDriverWait(browser, 120).until(lambda b: output.get_attribute("src") != src
                                          and card.get_attribute("data-state") == "done")
        debounce = int(re.search(r"DEBOUNCE_MS = (\d+)", (ROOT / "colorgan/serving/web/app.js").read_text()).group(1))
        colours = ["#c03020", "#2050c0", "#20a040", "#d0a020", "#8030a0", "#30a0a0"]
        rows = []
        for i in range(args.edits):
            total, request, waited = browser.execute_async_script(EDIT_JS, picker, output, colours[i % len(colours)])
            rows.append((total, request, waited))
            print(f"edit {i + 1}: {total:6.0f} ms from the change to the new photo shown "
                  f"(debounce {waited:4.0f} ms, request {request:5.0f} ms, the rest {total - waited - request:4.0f} ms)")
        med = [statistics.median(r[j] for r in rows) for j in range(3)]
        print(f"median over {len(rows)} edits, {size[0]}x{size[1]} photo ({size[0] * size[1] / 1e6:.2f} MP), "
              f"{args.run}: {med[0]:.0f} ms (debounce {med[2]:.0f} ms as the page waits {debounce} ms for more "
              f"changes, request {med[1]:.0f} ms, decode and display {med[0] - med[1] - med[2]:.0f} ms)")
    finally:
        browser.quit()
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
