"""Serving does bounded work per request: nesting, huge numbers, explanations and concurrency.

Each limit is a 4xx (400, 413 or 429) with a JSON reason, never a 500, and the server stays fine.
"""

from __future__ import annotations

import http.client
import json
import threading

import pytest

from ml.data import make_synthetic
from ml.serve import make_server

RECORDS = make_synthetic(5, seed=3).drop(columns="label").to_dict(orient="records")


@pytest.fixture(scope="module")
def server(mlp_model_dir):
    srv = make_server(
        mlp_model_dir, "127.0.0.1", 0, max_payload_bytes=1024 * 1024, max_concurrency=1, max_explain_rows=3
    )
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def post(server, body: str | bytes):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()
    return response.status, payload, response.getheader("Retry-After")


def with_age(literal: str) -> str:
    record = json.dumps({"instances": [dict(RECORDS[0], age=0)]})
    return record.replace('"age": 0', f'"age": {literal}')


CASES = [
    ("deep nesting", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("5000-digit integer", with_age("9" * 5000), "number too large to read"),
    ("integer beyond float64", with_age("1" + "0" * 400), "column 'age' expects a number within float64's range"),
]


@pytest.mark.parametrize("case, body, words", CASES, ids=[c[0] for c in CASES])
def test_hostile_json_is_a_400_with_a_reason(server, case, body, words):
    status, payload, _ = post(server, body)
    assert status == 400 and words in payload["error"], payload
    assert len(payload["error"]) < 400
    assert post(server, json.dumps({"instances": RECORDS}))[0] == 200


def test_explanations_are_capped_per_request(server):
    status, payload, _ = post(server, json.dumps({"instances": RECORDS, "explain": True}))
    assert status == 413 and "explanations asked for 5 rows; at most 3" in payload["error"]
    assert post(server, json.dumps({"instances": RECORDS[:3], "explain": True}))[0] == 200
    assert post(server, json.dumps({"instances": RECORDS}))[0] == 200  # without explanations: any rows


def test_requests_past_the_concurrency_limit_are_a_429_to_retry(server):
    slots = server.service.slots
    assert slots.acquire(blocking=False)  # one request in flight: the limit of this server
    try:
        status, payload, retry_after = post(server, json.dumps({"instances": RECORDS}))
    finally:
        slots.release()
    assert status == 429 and "1 requests are in flight, the limit" in payload["error"]
    assert retry_after == "1"
    assert post(server, json.dumps({"instances": RECORDS}))[0] == 200
