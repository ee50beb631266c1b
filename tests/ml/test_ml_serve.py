"""Serving: the SageMaker inference contract over HTTP; every bad request gets its 4xx and reason."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading

import pytest
from ml_testkit import REPO, subprocess_env

from ml.data import make_synthetic
from ml.drift import read_capture
from ml.serve import input_fn, make_server, model_fn, output_fn, predict_fn

ROWS = make_synthetic(5, seed=3).drop(columns="label")
RECORDS = ROWS.to_dict(orient="records")
COLUMNS = list(ROWS.columns)
CSV_ROWS = "\n".join(",".join(str(v) for v in r) for r in ROWS.itertuples(index=False))
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def server(mlp_model_dir, tmp_path_factory):
    capture = tmp_path_factory.mktemp("capture")
    srv = make_server(mlp_model_dir, "127.0.0.1", 0, max_payload_bytes=LIMIT, capture_dir=capture)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.capture_dir = capture
    yield srv
    srv.shutdown()
    srv.server_close()


def request(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    data = body.encode() if isinstance(body, str) else body
    conn.request(method, path, body=data, headers=headers or {})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    kind = response.getheader("Content-Type")
    return response.status, (json.loads(payload) if kind == "application/json" else payload.decode()), kind


def post(server, body, content_type="application/json", **headers):
    return request(server, "POST", "/invocations", body, {"Content-Type": content_type, **headers})


def test_ping(server):
    assert request(server, "GET", "/ping")[:2] == (200, {"status": "ok"})


GOOD = [
    ("records", json.dumps({"instances": RECORDS})),
    ("bare list", json.dumps(RECORDS)),
    ("split", json.dumps({"columns": COLUMNS, "data": ROWS.values.tolist()})),
    ("rows", json.dumps({"instances": ROWS.values.tolist()})),
]


@pytest.mark.parametrize("shape, body", GOOD, ids=[g[0] for g in GOOD])
def test_json_shapes_give_the_same_predictions(server, shape, body):
    status, payload, kind = post(server, body)
    assert status == 200 and kind == "application/json", payload
    reference = post(server, json.dumps({"instances": RECORDS}))[1]
    assert payload == reference
    assert len(payload["predictions"]) == 5
    first = payload["predictions"][0]
    assert first["label"] in (0, 1) and set(first["probabilities"]) == {"0", "1"}
    assert first["probabilities"]["0"] + first["probabilities"]["1"] == pytest.approx(1, abs=1e-5)


def test_one_record_and_csv_with_and_without_header(server):
    reference = post(server, json.dumps({"instances": RECORDS}))[1]["predictions"]
    assert post(server, json.dumps(RECORDS[0]))[1]["predictions"] == reference[:1]
    assert post(server, CSV_ROWS, "text/csv")[1]["predictions"] == reference
    assert post(server, ",".join(COLUMNS) + "\n" + CSV_ROWS, "text/csv; charset=utf-8")[1]["predictions"] == reference
    status, text, kind = post(server, CSV_ROWS, "text/csv", Accept="text/csv")
    assert status == 200 and kind == "text/csv"
    assert [line.split(",")[0] for line in text.strip().splitlines()] == [str(p["label"]) for p in reference]


def test_explanations_on_request(server):
    status, payload, _ = post(server, json.dumps({"instances": RECORDS[:2], "explain": True}))
    assert status == 200
    attributions = payload["predictions"][0]["attributions"]
    assert set(attributions) == set(COLUMNS)
    assert post(server, json.dumps({"instances": RECORDS[:2]}))[1]["predictions"][0].get("attributions") is None


def _with(**changes):
    record = dict(RECORDS[0])
    record.update(changes)
    return json.dumps({"instances": [record]})


BAD = [
    ("not json", "{instances: [", "application/json", 400, "body is not valid JSON"),
    ("json scalar", "42", "application/json", 400, "must be an object or a list"),
    ("instances not a list", '{"instances": {"a": 1}}', "application/json", 400, "instances: expected a list"),
    ("no rows", '{"instances": []}', "application/json", 400, "no rows to predict"),
    ("unknown column", _with(favourite_colour="blue"), "application/json", 400, "unknown columns ['favourite_colour']"),
    (
        "missing column",
        json.dumps({"instances": [{k: v for k, v in RECORDS[0].items() if k != "age"}]}),
        "application/json",
        400,
        "missing columns ['age']",
    ),
    (
        "text in a number",
        _with(age="forty"),
        "application/json",
        400,
        "column 'age' expects a number; 1 values do not (row 0: 'forty')",
    ),
    ("bool in a number", _with(tenure_months=True), "application/json", 400, "column 'tenure_months' expects a number"),
    (
        "null not allowed",
        _with(monthly_charges=None),
        "application/json",
        400,
        "column 'monthly_charges' expects a number; ",
    ),
    ("infinity", _with(total_charges=float("inf")), "application/json", 400, "infinite values are not allowed"),
    ("number as category", _with(contract=1.5), "application/json", 400, "column 'contract' expects a string"),
    (
        "short row",
        json.dumps({"instances": [[1, 2, 3]]}),
        "application/json",
        400,
        "instances[0]: 3 values, expected 10",
    ),
    (
        "mixed rows",
        json.dumps({"instances": [RECORDS[0], "x"]}),
        "application/json",
        400,
        "expected a record (object) or a row (list)",
    ),
    (
        "split without columns",
        json.dumps({"data": [[1]]}),
        "application/json",
        400,
        "columns: expected a list of column names",
    ),
    ("csv short row", "1,2,3", "text/csv", 400, "csv row 0: 3 values, expected 10"),
    (
        "csv text in a number",
        CSV_ROWS.replace(CSV_ROWS.split(",")[1], "abc", 1),
        "text/csv",
        400,
        "column 'monthly_charges' expects a finite number",
    ),
    ("csv empty", "\n\n", "text/csv", 400, "no rows to predict"),
    ("not utf-8", b"\xff\xfe\x00", "application/json", 400, "not UTF-8"),
    ("xml", "<a/>", "application/xml", 415, "unsupported content type 'application/xml'"),
]


@pytest.mark.parametrize("case, body, content_type, status, words", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_a_4xx_with_a_reason(server, case, body, content_type, status, words):
    got, payload, kind = post(server, body, content_type)
    assert got == status and kind == "application/json"
    assert words in payload["error"], payload
    assert post(server, json.dumps({"instances": RECORDS}))[0] == 200  # and the server is fine


def test_unacceptable_accept_header_is_406(server):
    status, payload, _ = post(server, json.dumps({"instances": RECORDS}), Accept="application/xml")
    assert status == 406 and "accept application/json" in payload["error"]


def test_oversized_payload_is_413_without_reading_it(server):
    body = json.dumps({"instances": RECORDS * 400})
    assert len(body) > LIMIT
    status, payload, _ = post(server, body)
    assert status == 413 and f"over the limit of {LIMIT} bytes" in payload["error"]


def test_missing_content_length_and_unknown_paths(server):
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n")
        head = b""
        while chunk := sock.recv(4096):  # the server closes the connection after answering
            head += chunk
        head = head.decode()
    assert head.startswith("HTTP/1.1 411") and "Content-Length is required" in head
    assert request(server, "GET", "/predict")[0] == 404
    assert request(server, "POST", "/predict", "{}", {"Content-Type": "application/json"})[0] == 404


def test_keep_alive_connection_serves_many_requests(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    for _ in range(20):
        conn.request(
            "POST",
            "/invocations",
            body=json.dumps({"instances": RECORDS[:1]}),
            headers={"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        assert response.status == 200
        response.read()
    conn.close()


def test_successful_requests_are_captured_in_sagemakers_format(server):
    post(server, CSV_ROWS, "text/csv")
    files = list(server.capture_dir.rglob("*.jsonl"))
    assert files and re.search(r"\d{4}/\d{2}/\d{2}/\d{2}/capture-\d+\.jsonl$", files[0].as_posix())
    frame = read_capture(server.capture_dir)
    assert len(frame) > 5 and {"predicted_label", "proba_0", "proba_1"} <= set(frame.columns)
    record = json.loads(files[0].read_text().splitlines()[0])
    assert set(record) == {"captureData", "eventMetadata", "eventVersion"}
    assert record["captureData"]["endpointInput"]["mode"] == "INPUT"


def test_inference_toolkit_functions(mlp_model_dir):
    model = model_fn(str(mlp_model_dir))
    prediction = predict_fn(input_fn(json.dumps({"instances": RECORDS}), "application/json"), model)
    body, kind = output_fn(prediction, "application/json")
    assert kind == "application/json" and len(json.loads(body)["predictions"]) == 5


def test_command_line_server_starts_answers_and_stops_on_sigterm(mlp_model_dir):
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "ml" / "serve.py"),
            "serve",
            "--model-dir",
            str(mlp_model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        env=subprocess_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stderr.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", line).group(1))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/ping")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
