"""Serving as the sagemaker SDK calls it: a flat JSON list is one row, no Content-Type means JSON,
JSON Lines in and out, and /execution-parameters says what the server really takes at once."""

from __future__ import annotations

import http.client
import json
import threading

import pytest

from ml.data import make_synthetic
from ml.payload import parse_columns
from ml.serve import make_server

ROWS = make_synthetic(3, seed=5).drop(columns="label")
RECORDS = ROWS.to_dict(orient="records")
ROW_LISTS = ROWS.to_numpy().tolist()


@pytest.fixture(scope="module")
def server(mlp_model_dir):
    srv = make_server(mlp_model_dir, "127.0.0.1", 0, max_concurrency=5, max_payload_bytes=3 * 1024 * 1024)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def call(server, method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, payload, response.getheader("Content-Type")


def test_a_flat_json_list_is_one_row(server):
    """The SDK's JSONSerializer sends a 1-D array as [v, v, ...]: one row in schema column order."""
    status, payload, _ = call(
        server, "POST", "/invocations", json.dumps(ROW_LISTS[0]), {"Content-Type": "application/json"}
    )
    assert status == 200, payload
    one = json.loads(payload)["predictions"]
    _, payload, _ = call(
        server, "POST", "/invocations", json.dumps({"instances": ROW_LISTS[:1]}), {"Content-Type": "application/json"}
    )
    assert one == json.loads(payload)["predictions"] and len(one) == 1


def test_no_content_type_is_read_as_json_not_refused(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    body = json.dumps({"instances": RECORDS}).encode()
    conn.putrequest("POST", "/invocations", skip_accept_encoding=True)
    conn.putheader("Content-Length", str(len(body)))  # and no Content-Type at all
    conn.endheaders(body)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    assert response.status == 200, payload
    assert len(json.loads(payload)["predictions"]) == len(RECORDS)


def test_jsonlines_in_and_out(server):
    body = "\n".join(json.dumps(r) for r in RECORDS) + "\n"
    status, payload, kind = call(
        server,
        "POST",
        "/invocations",
        body,
        {"Content-Type": "application/jsonlines", "Accept": "application/jsonlines"},
    )
    assert status == 200 and kind == "application/jsonlines", payload
    lines = [json.loads(line) for line in payload.decode().splitlines()]
    assert len(lines) == 3 and all("label" in line for line in lines)
    mixed = json.dumps(ROW_LISTS[0]) + "\n" + json.dumps(RECORDS[1])
    status, payload, _ = call(server, "POST", "/invocations", mixed, {"Content-Type": "application/jsonlines"})
    assert status == 400 and "a record among rows" in json.loads(payload)["error"]
    status, payload, _ = call(
        server, "POST", "/invocations", '{"a": 1}\n{oops', {"Content-Type": "application/jsonlines"}
    )
    assert status == 400 and "jsonlines line 2 is not valid JSON" in json.loads(payload)["error"]


def test_execution_parameters_tell_the_servers_real_concurrency(server):
    status, payload, _ = call(server, "GET", "/execution-parameters")
    assert status == 200
    assert json.loads(payload) == {"MaxConcurrentTransforms": 5, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 3}


def test_capture_without_schema_reads_a_flat_list_as_one_row():
    columns, _ = parse_columns(b"[1, 2, 3]", None)
    assert {k: list(v) for k, v in columns.items()} == {"0": [1], "1": [2], "2": [3]}
