"""The attention page in a real browser: Debian's chromium, headless, driven
by chromium-driver through python3-selenium.

Starts transformer-server with its HTTP gateway on a free loopback port, loads
the page, types golden sentences of the demo model, waits for the heatmap and
checks the translation against the golden greedy and beam-4 texts, the cell
count against source tokens x target tokens of the golden ids, and that
hovering a cell highlights its row, its column and the aligned source piece.
Keeps a screenshot (--screenshot).

  /usr/bin/python3 attention_page_test.py --server build/bin/transformer-server \
      --model_dir models/marian-en-de-multi30k --screenshot attention_page.png
"""
import argparse
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

passed = 0
failed = 0


def check(condition, what):
    global passed, failed
    if condition:
        passed += 1
        print("PASS: " + what, flush=True)
    else:
        failed += 1
        print("FAIL: " + what, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, model_dir, http_port):
    server = subprocess.Popen(
        [binary, "--host=127.0.0.1", "--port=0", "--metrics_port=0",
         "--http_address=127.0.0.1", "--http_port=%d" % http_port,
         "--num_workers=1", "--model_dir=" + model_dir],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The gateway has the model once the gRPC port listens.
    deadline = time.time() + 300
    output = ""
    while "listening on" not in output:
        if server.poll() is not None or time.time() > deadline:
            server.kill()
            raise RuntimeError("server did not start: %s %s"
                               % (output, server.stderr.read()))
        ready, _, _ = select.select([server.stdout], [], [], 1.0)
        if ready:
            output += server.stdout.readline()
    return server


def start_browser(profile_dir):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-quic", "--no-first-run",
                 "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1360,1240",
                 "--user-data-dir=" + profile_dir):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def translate_on_page(browser, sentence, beam):
    source = browser.find_element(By.ID, "source")
    source.clear()
    source.send_keys(sentence)
    beam_box = browser.find_element(By.ID, "beam")
    beam_box.clear()
    beam_box.send_keys(str(beam))
    # The heatmap of the previous sentence must not count.
    browser.execute_script(
        "document.getElementById('heatmap').dataset.ready = 'false';")
    browser.find_element(By.ID, "translate").click()
    WebDriverWait(browser, 120).until(
        lambda b: b.find_element(By.ID, "heatmap").get_attribute("data-ready")
        == "true" or "error" in b.find_element(By.ID, "status").get_attribute(
            "class"))
    status = browser.find_element(By.ID, "status").text
    heatmap = browser.find_element(By.ID, "heatmap")
    return status, heatmap


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--screenshot", required=True)
    args = parser.parse_args()

    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            print("FAIL: %s missing (bash scripts/setup.sh installs chromium "
                  "and chromium-driver)" % path)
            print("0 passed, 1 failed")
            return 1

    with open(os.path.join(args.model_dir, "golden", "translations.jsonl"),
              encoding="utf-8") as f:
        golden = [json.loads(line) for line in f if line.strip()]
    # The first golden sentence (the screenshot), one whose beam-4 text
    # differs from its greedy text, and the longest (scrolling, rotated
    # labels).
    by_length = sorted(golden, key=lambda row: len(row["source_ids"]))
    first_row = golden[0]
    differing = [row for row in golden
                 if row["beam4_text"] != row["greedy_text"]]
    beam_row = differing[0] if differing else golden[1]
    long_row = by_length[-1]

    http_port = free_port()
    server = start_server(args.server, args.model_dir, http_port)
    profile_dir = tempfile.mkdtemp(prefix="ts_chromium_")
    browser = None
    try:
        browser = start_browser(profile_dir)
        browser.get("http://127.0.0.1:%d/" % http_port)
        # Model information fills the layer choice.
        WebDriverWait(browser, 30).until(
            lambda b: len(b.find_elements(By.CSS_SELECTOR, "#layer option"))
            > 0)
        layers = [o.text for o in
                  browser.find_elements(By.CSS_SELECTOR, "#layer option")]
        check(layers[0].endswith("(last)") and "mean over all layers" in layers,
              "layer choice lists the decoder layers: %s" % layers)

        for row, beam, key in ((first_row, 1, "greedy"),
                               (beam_row, 1, "greedy"),
                               (beam_row, 4, "beam4"),
                               (long_row, 1, "greedy")):
            status, heatmap = translate_on_page(browser, row["source"], beam)
            text = browser.find_element(By.ID, "translation").text
            want = row[key + "_text"]
            check(text == want, "beam %d: %r == golden %s %r (%s)"
                  % (beam, text, key, want, status))
            cells = heatmap.find_elements(By.CSS_SELECTOR, ".cell")
            source_len = len(row["source_ids"])
            target_len = len(row[key + "_ids"])
            check(len(cells) == source_len * target_len,
                  "beam %d: %d cells == %d source x %d target tokens"
                  % (beam, len(cells), source_len, target_len))
            check(heatmap.get_attribute("data-columns") == str(source_len)
                  and heatmap.get_attribute("data-rows") == str(target_len),
                  "beam %d: columns %s rows %s" % (
                      beam, heatmap.get_attribute("data-columns"),
                      heatmap.get_attribute("data-rows")))
            if row is first_row:
                short_screenshot = args.screenshot
                # Hover the middle of the translation's second row.
                cell = heatmap.find_element(
                    By.CSS_SELECTOR,
                    '.cell[data-t="1"][data-s="%d"]' % (source_len // 2))
                ActionChains(browser).move_to_element(cell).perform()
                row_labels = heatmap.find_elements(By.CSS_SELECTOR, ".tgt.hl")
                column_labels = heatmap.find_elements(By.CSS_SELECTOR,
                                                      ".src.hl")
                lit = heatmap.find_elements(By.CSS_SELECTOR, ".cell.hl")
                aligned = heatmap.find_elements(By.CSS_SELECTOR, ".src.aligned")
                check(len(row_labels) == 1 and row_labels[0].text != "",
                      "hover highlights the target piece of its row")
                check(len(column_labels) == 1,
                      "hover highlights the source piece of its column")
                check(len(lit) == source_len + target_len - 1,
                      "hover lights its row and column: %d cells" % len(lit))
                check(len(aligned) == 1 and len(browser.find_elements(
                    By.CSS_SELECTOR, "#aligned .piece.on")) == 1,
                    "hover marks the aligned source piece")
                check("aligned to source" in
                      browser.find_element(By.ID, "readout").text,
                      "readout: %s"
                      % browser.find_element(By.ID, "readout").text)
                browser.save_screenshot(short_screenshot)
                check(os.path.getsize(short_screenshot) > 10000,
                      "screenshot saved: %s" % short_screenshot)
        # The long sentence scrolls inside its box rather than squeezing.
        box = browser.find_element(By.ID, "heatmap-box")
        check(browser.execute_script(
            "const b = arguments[0]; return b.scrollWidth >= b.clientWidth;",
            box), "long sentence: the heatmap box scrolls")
        long_shot = os.path.splitext(args.screenshot)[0] + "_long.png"
        browser.save_screenshot(long_shot)
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(profile_dir, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
