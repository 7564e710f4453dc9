"""LibreTranslate's HTTP API against the real transformer-server serving the
model repository (models/: en-de, de-en, en-fr).

The requests are the ones LibreTranslate's clients send (JSON bodies and
form fields, as its API docs and libretranslate-py do); the expected texts
come from each model's golden outputs (generate with num_beams 4, the
models' default), not from the server.
"""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

SOURCE_DIR = os.environ.get(
    "TS_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
SERVER_BIN = os.environ.get(
    "TS_SERVER_BIN", os.path.join(SOURCE_DIR, "build", "bin", "transformer-server"))
REPOSITORY = os.path.join(SOURCE_DIR, "models")
TIMEOUT_S = 120


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def golden(model, count):
    path = os.path.join(REPOSITORY, model, "golden", "translations.jsonl")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line, _ in zip(f, range(count))]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("libretranslate")
    http_port = free_port()
    with open(log_dir / "stdout", "wb") as out, \
            open(log_dir / "stderr", "wb") as err:
        process = subprocess.Popen(
            [SERVER_BIN, "--host=127.0.0.1", "--port=0", "--metrics_port=0",
             "--http_address=127.0.0.1", f"--http_port={http_port}",
             f"--model_repository={REPOSITORY}",
             "--default_model=marian-en-de-multi30k",
             "--max_length_factor=0", "--num_workers=1"],
            stdout=out, stderr=err)
    url = f"http://127.0.0.1:{http_port}"
    deadline = time.time() + TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=5) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError):
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail("server did not become ready:\n" +
                        (log_dir / "stderr").read_text(errors="replace"))
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=60)


def post(url, body, form=False):
    """(status, decoded JSON) of a POST, as LibreTranslate's clients send it."""
    if form:
        data = urllib.parse.urlencode(body).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    else:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_languages_lists_direct_and_pivot_targets(base_url):
    with urllib.request.urlopen(base_url + "/languages", timeout=30) as r:
        languages = json.loads(r.read())
    by_code = {entry["code"]: entry for entry in languages}
    assert set(by_code) == {"de", "en", "fr"}
    assert by_code["en"]["name"] == "English"
    assert by_code["de"]["name"] == "German"
    assert sorted(by_code["en"]["targets"]) == ["de", "fr"]
    # de -> fr exists only through the pivot (en).
    assert sorted(by_code["de"]["targets"]) == ["en", "fr"]
    assert by_code["fr"]["targets"] == []


def test_translate_string_and_list_match_golden(base_url):
    rows = golden("marian-en-fr-multi30k", 4)
    status, body = post(base_url + "/translate",
                        {"q": rows[0]["source"], "source": "en",
                         "target": "fr", "format": "text", "api_key": ""})
    assert status == 200, body
    assert body == {"translatedText": rows[0]["beam4_text"]}

    status, body = post(base_url + "/translate",
                        {"q": [row["source"] for row in rows],
                         "source": "en", "target": "fr"})
    assert status == 200, body
    assert body["translatedText"] == [row["beam4_text"] for row in rows]
    assert "detectedLanguage" not in body


def test_translate_form_encoded(base_url):
    row = golden("marian-en-de-multi30k", 1)[0]
    status, body = post(base_url + "/translate",
                        {"q": row["source"], "source": "en", "target": "de"},
                        form=True)
    assert status == 200, body
    assert body["translatedText"] == row["beam4_text"]


def test_auto_detects_the_source(base_url):
    rows = golden("marian-de-en-multi30k", 3)
    status, body = post(base_url + "/translate",
                        {"q": " ".join(row["source"] for row in rows),
                         "source": "auto", "target": "en"})
    assert status == 200, body
    assert body["detectedLanguage"]["language"] == "de"
    assert 0 < body["detectedLanguage"]["confidence"] <= 100
    assert isinstance(body["translatedText"], str) and body["translatedText"]


def test_undetectable_source_is_a_clear_400(base_url):
    status, body = post(base_url + "/translate",
                        {"q": "ok", "source": "auto", "target": "de"})
    assert status == 400
    assert "detect" in body["error"]


def test_alternatives_are_other_beam_hypotheses(base_url):
    row = golden("marian-en-de-multi30k", 1)[0]
    status, body = post(base_url + "/translate",
                        {"q": row["source"], "source": "en", "target": "de",
                         "alternatives": 2})
    assert status == 200, body
    assert body["translatedText"] == row["beam4_text"]
    assert isinstance(body["alternatives"], list)
    assert 1 <= len(body["alternatives"]) <= 2
    assert row["beam4_text"] not in body["alternatives"]


def test_html_keeps_markup(base_url):
    status, body = post(base_url + "/translate",
                        {"q": "<p>A <b>dog</b> runs in the park.</p>",
                         "source": "en", "target": "de", "format": "html"})
    assert status == 200, body
    text = body["translatedText"]
    assert text.startswith("<p>") and text.endswith("</p>")
    assert "<b>" in text and "</b>" in text


def test_pivot_equals_two_direct_translations(base_url):
    row = golden("marian-de-en-multi30k", 1)[0]
    status, pivot = post(base_url + "/translate",
                         {"q": row["source"], "source": "de", "target": "fr"})
    assert status == 200, pivot
    status, english = post(base_url + "/translate",
                           {"q": row["source"], "source": "de",
                            "target": "en"})
    assert english["translatedText"] == row["beam4_text"]
    status, french = post(base_url + "/translate",
                          {"q": english["translatedText"], "source": "en",
                           "target": "fr"})
    assert pivot["translatedText"] == french["translatedText"]


def test_detect(base_url):
    row = golden("marian-en-fr-multi30k", 1)[0]
    status, body = post(base_url + "/detect", {"q": row["source"]})
    assert status == 200, body
    assert body[0]["language"] == "en"
    assert 0 < body[0]["confidence"] <= 100


def test_errors_use_libretranslate_shape(base_url):
    status, body = post(base_url + "/translate",
                        {"source": "en", "target": "de"})
    assert status == 400 and "q" in body["error"]
    status, body = post(base_url + "/translate",
                        {"q": "Hello.", "source": "en", "target": "zh"})
    assert status == 400, body
    assert "served" in body["error"]
