"""The Python client against the real transformer-server.

Environment (set by ctest's python_client_test):
  TS_SERVER_BIN   path of transformer-server
  TS_MODEL_DIR    the demo model (models/marian-en-de-multi30k)
  TS_SOURCE_DIR   the checkout (default: two levels above this file)
  TS_BUILD_DIR    the build tree (unused here but kept for logs)

Stubs are generated into a temporary directory; the server listens on a free
loopback port and is killed at the end.
"""

import json
import os
import socket
import subprocess
import sys
import time

import grpc
import pytest

SOURCE_DIR = os.environ.get(
    "TS_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
SERVER_BIN = os.environ.get(
    "TS_SERVER_BIN", os.path.join(SOURCE_DIR, "build", "bin", "transformer-server"))
MODEL_DIR = os.environ.get(
    "TS_MODEL_DIR", os.path.join(SOURCE_DIR, "models", "marian-en-de-multi30k"))
CLIENT_DIR = os.path.join(SOURCE_DIR, "client", "python")
HEALTH_PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proto")
TIMEOUT_S = 60

sys.path.insert(0, CLIENT_DIR)
import ts_stubs  # noqa: E402


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def stubs_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("stubs"))
    ts_stubs.generate(path)
    ts_stubs.generate(path, proto_dir=HEALTH_PROTO_DIR,
                      proto_file="ts_health/health.proto")
    return path


@pytest.fixture(scope="session")
def stubs(stubs_dir):
    return ts_stubs.load(stubs_dir)


@pytest.fixture(scope="session")
def health(stubs_dir):
    ts_stubs.load(stubs_dir)  # puts stubs_dir on sys.path
    from ts_health import health_pb2, health_pb2_grpc
    return health_pb2, health_pb2_grpc


@pytest.fixture(scope="session")
def server(tmp_path_factory, health):
    health_pb2, health_pb2_grpc = health
    log_dir = tmp_path_factory.mktemp("server")
    out_path = log_dir / "stdout"
    err_path = log_dir / "stderr"
    metrics_port = free_port()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(
            [SERVER_BIN, "--host=127.0.0.1", "--port=0",
             f"--metrics_port={metrics_port}", "--http_port=0",
             f"--model_dir={MODEL_DIR}",
             "--num_workers=2", "--intra_threads=1"],
            stdout=out, stderr=err)

    def logs():
        return (f"stdout:\n{out_path.read_text(errors='replace')}\n"
                f"stderr (tail):\n{err_path.read_text(errors='replace')[-4000:]}")

    try:
        # Model load and warm-up happen before the server prints its port.
        prefix = "listening on 127.0.0.1:"
        port = None
        give_up = time.monotonic() + 300
        while port is None:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}\n{logs()}")
            if time.monotonic() > give_up:
                pytest.fail(f"server did not print its port\n{logs()}")
            for line in out_path.read_text(errors="replace").splitlines():
                if line.startswith(prefix):
                    port = int(line[len(prefix):].strip())
            time.sleep(0.1)
        target = f"127.0.0.1:{port}"

        # Health: SERVING once the model is loaded and warmed up.
        with grpc.insecure_channel(target) as channel:
            health_stub = health_pb2_grpc.HealthStub(channel)
            serving = health_pb2.HealthCheckResponse.SERVING
            status = None
            while status != serving:
                if time.monotonic() > give_up:
                    pytest.fail(f"health never SERVING (last {status})\n{logs()}")
                try:
                    status = health_stub.Check(
                        health_pb2.HealthCheckRequest(service=""), timeout=5).status
                except grpc.RpcError:
                    status = None
                if status != serving:
                    time.sleep(0.2)
        yield target
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def stub(server, stubs):
    _, pb2_grpc = stubs
    channel = grpc.insecure_channel(server)
    yield pb2_grpc.TransformerServiceStub(channel)
    channel.close()


def golden(n):
    path = os.path.join(MODEL_DIR, "golden", "translations.jsonl")
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows[:n]


def test_translate_matches_golden_greedy(stub, stubs):
    pb2, _ = stubs
    rows = golden(20)
    assert len(rows) == 20
    response = stub.Translate(
        pb2.TranslateRequest(
            texts=[row["source"] for row in rows],
            options=pb2.TranslationOptions(beam_size=1, max_length=128)),
        timeout=TIMEOUT_S)
    assert len(response.translations) == len(rows)
    for row, translation in zip(rows, response.translations):
        assert len(translation.hypotheses) == 1
        hypothesis = translation.hypotheses[0]
        assert hypothesis.text == row["greedy_text"], row["source"]
        assert list(hypothesis.token_ids) == row["greedy_ids"], row["source"]
        assert translation.input_token_count == len(row["source_ids"])


def test_encode(stub, stubs):
    pb2, _ = stubs
    response = stub.Encode(
        pb2.EncodeRequest(texts=["A dog.", "Two men are playing chess."],
                          pooling=pb2.POOLING_MEAN, normalize=True),
        timeout=TIMEOUT_S)
    assert len(response.embeddings) == 2
    for embedding in response.embeddings:
        assert embedding.dim == 256
        assert len(embedding.values) == 256
        assert embedding.num_tokens > 1
        norm = sum(v * v for v in embedding.values) ** 0.5
        assert abs(norm - 1.0) < 1e-3


def test_get_model_info(stub, stubs):
    pb2, _ = stubs
    info = stub.GetModelInfo(pb2.GetModelInfoRequest(), timeout=TIMEOUT_S)
    assert info.model_name == "marian-en-de-multi30k"
    assert info.d_model == 256
    assert info.encoder_layers == 3 and info.decoder_layers == 3
    assert info.vocab_size == 8001
    assert info.default_beam_size == 4
    assert info.max_texts_per_request > 0 and info.max_input_tokens > 0


def test_empty_text_is_invalid_argument(stub, stubs):
    pb2, _ = stubs
    with pytest.raises(grpc.RpcError) as error:
        stub.Translate(pb2.TranslateRequest(texts=[""]), timeout=TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details()


def test_translate_py_example(server, stubs_dir):
    rows = golden(3)
    result = subprocess.run(
        [sys.executable, os.path.join(CLIENT_DIR, "translate.py"),
         f"--server={server}", "--beam_size=1", "--max_length=128",
         f"--stubs_dir={stubs_dir}"] + [row["source"] for row in rows],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [row["greedy_text"] for row in rows]


@pytest.mark.parametrize("model_flags", [
    ["--model=marian-en-de-multi30k"],
    ["--source_language=en", "--target_language=de"],
    ["--source_language=eng", "--target_language=deu"]])
def test_translate_py_names_the_model(server, stubs_dir, model_flags):
    rows = golden(2)
    result = subprocess.run(
        [sys.executable, os.path.join(CLIENT_DIR, "translate.py"),
         f"--server={server}", "--beam_size=1", "--max_length=128",
         f"--stubs_dir={stubs_dir}"] + model_flags +
        [row["source"] for row in rows],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [row["greedy_text"] for row in rows]


def test_translate_py_unknown_model_is_not_found(server, stubs_dir):
    result = subprocess.run(
        [sys.executable, os.path.join(CLIENT_DIR, "translate.py"),
         f"--server={server}", f"--stubs_dir={stubs_dir}",
         "--source_language=en", "--target_language=ja", "A dog."],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "NOT_FOUND" in result.stderr
    assert "marian-en-de-multi30k" in result.stderr


def test_model_metadata():
    assert ts_stubs.model_metadata(model="m") == (("x-model", "m"),)
    assert ts_stubs.model_metadata(source_language="en",
                                   target_language="fr") == (("x-model", "en-fr"),)
    assert ts_stubs.model_metadata() == ()


def test_translate_py_reports_errors(server, stubs_dir):
    result = subprocess.run(
        [sys.executable, os.path.join(CLIENT_DIR, "translate.py"),
         f"--server={server}", f"--stubs_dir={stubs_dir}", ""],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr


def test_translate_stream_py_example(server, stubs_dir):
    rows = golden(3)
    command = [sys.executable, os.path.join(CLIENT_DIR, "translate_stream.py"),
               f"--server={server}", "--beam_size=1", "--max_length=128",
               f"--stubs_dir={stubs_dir}"]
    sources = [row["source"] for row in rows]
    result = subprocess.run(command + sources, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [row["greedy_text"] for row in rows]
    # --json: every message; each text's ids and deltas join to its golden
    # ids and text, and only its last message has the translation. (Another
    # max_length than above, which the translation cache would answer in one
    # message per text.)
    result = subprocess.run(command + ["--json", "--max_length=120"] + sources,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(messages) > len(rows)
    text_number, ids, text = 0, [], ""
    for message in messages:
        assert message["text_index"] == 0  # one text per call
        ids += message["token_ids"]
        text += message["text_delta"]
        if "translation" in message:
            row = rows[text_number]
            assert ids == row["greedy_ids"], row["source"]
            assert text == row["greedy_text"] == message["translation"]["text"]
            text_number, ids, text = text_number + 1, [], ""
    assert text_number == len(rows)


def test_translate_stream_py_reports_errors(server, stubs_dir):
    result = subprocess.run(
        [sys.executable, os.path.join(CLIENT_DIR, "translate_stream.py"),
         f"--server={server}", f"--stubs_dir={stubs_dir}", ""],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "TranslateStream failed: INVALID_ARGUMENT" in result.stderr
