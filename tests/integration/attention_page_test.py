"""The attention page in a real browser: Debian's chromium, headless, driven
by chromium-driver through python3-selenium.

Starts transformer-server with its HTTP gateway on a free loopback port, loads
the page, types golden sentences of the demo model, waits for the heatmap and
checks the translation against the golden greedy and beam-4 texts, the cell
count against source tokens x target tokens of the golden ids, and that
hovering a cell highlights its row, its column and the aligned source piece.
Then the Document box: a paragraph of three golden sentences gives a table of
three sentence pairs whose translations are the golden greedy texts and the
server's own answer to the same request made from Python; an HTML input with
a <script> and an <img onerror> is shown as escaped source and runs nothing.
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
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.common.exceptions import NoAlertPresentException
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


def post_translate(http_port, body):
    request = urllib.request.Request(
        "http://127.0.0.1:%d/v1/translate" % http_port,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read().decode("utf-8"))


def translate_document_on_page(browser, text, format_label):
    """Types text into the Document box, picks the format, clicks Translate;
    returns the status, the whole translation and the table's rows as
    [source, translation] lists."""
    box = browser.find_element(By.ID, "doc-source")
    box.clear()
    # Set the value directly: send_keys would type the markup key by key.
    browser.execute_script(
        "arguments[0].value = arguments[1];", box, text)
    for option in browser.find_elements(By.CSS_SELECTOR, "#doc-format option"):
        if option.text == format_label:
            option.click()
    browser.execute_script(
        "document.getElementById('doc-segments').dataset.ready = 'false';")
    browser.find_element(By.ID, "doc-translate").click()
    WebDriverWait(browser, 120).until(
        lambda b: b.find_element(By.ID, "doc-segments").get_attribute(
            "data-ready") == "true")
    status = browser.find_element(By.ID, "doc-status").text
    whole = browser.find_element(By.ID, "doc-translation").text
    rows = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")][1:]
            for row in browser.find_elements(By.CSS_SELECTOR,
                                             "#doc-segments tbody tr")]
    return status, whole, rows


def check_document_box(browser, http_port, golden):
    # A paragraph of three golden sentences, joined by spaces.
    rows_in = golden[0:3]
    paragraph = " ".join(row["source"] for row in rows_in)
    browser.find_element(By.ID, "doc-beam").clear()
    browser.find_element(By.ID, "doc-beam").send_keys("1")
    status, whole, rows = translate_document_on_page(browser, paragraph, "text")
    check(len(rows) == 3, "document: 3 sentence pairs (%s): %s"
          % (status, rows))
    served = post_translate(http_port, {
        "texts": [paragraph],
        "options": {"beamSize": 1, "inputFormat": "INPUT_FORMAT_TEXT"}})
    served = served["translations"][0]
    served_pairs = [[segment["source"], segment["hypotheses"][0]["text"]]
                    for segment in served.get("segments", [])]
    check(rows == served_pairs,
          "document: the table equals the server's segments for the same "
          "request from Python")
    for i, row in enumerate(rows_in):
        got = rows[i] if i < len(rows) else ["", ""]
        check(got[0] == row["source"] and got[1] == row["greedy_text"],
              "document: pair %d %r == golden greedy %r"
              % (i, got, row["greedy_text"]))
    check(whole == served["hypotheses"][0]["text"]
          and whole == " ".join(row["greedy_text"] for row in rows_in),
          "document: the whole translation %r" % whole)

    # HTML: the translation is shown as source code; nothing runs.
    browser.execute_script(
        "window.__alerts = 0; window.alert = function () { ++window.__alerts; };")
    html = ("<p>%s <b>%s</b></p><script>alert(1)</script>"
            "<p><img src=\"x\" onerror=\"alert(2)\">%s</p>"
            % (rows_in[0]["source"], rows_in[1]["source"],
               rows_in[2]["source"]))
    status, whole, rows = translate_document_on_page(browser, html, "html")
    try:
        browser.switch_to.alert
        alerted = True
    except NoAlertPresentException:
        alerted = False
    check(not alerted and browser.execute_script("return window.__alerts;")
          == 0, "html: no alert ran")
    check("<script>alert(1)</script>" in whole and "onerror=" in whole
          and whole.startswith("<p>"),
          "html: the translation is shown as escaped source: %r" % whole)
    check(len(browser.find_elements(
        By.CSS_SELECTOR, "#doc-result script, #doc-result img, #doc-result p,"
        " #doc-pairs script, #doc-pairs img")) == 0,
        "html: no element of the translation entered the page")
    served = post_translate(http_port, {
        "texts": [html],
        "options": {"beamSize": 1, "inputFormat": "INPUT_FORMAT_HTML"}})
    served = served["translations"][0]
    check(whole == served["hypotheses"][0]["text"]
          and rows == [[segment["source"], segment["hypotheses"][0]["text"]]
                       for segment in served.get("segments", [])]
          and len(rows) == 3,
          "html: the page shows the server's translation and its %d "
          "sentence pairs (%s)" % (len(rows), status))


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
        check_document_box(browser, http_port, golden)
        browser.execute_script(
            "document.getElementById('doc-form').scrollIntoView();")
        browser.save_screenshot(
            os.path.splitext(args.screenshot)[0] + "_document.png")
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
