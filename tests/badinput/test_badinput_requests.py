"""Bad requests to the inference server (`ml.serve`): each a 4xx with a JSON reason, never a 500,
never a 200, and the server answers the next good request. The table counts in the cases
tests/ml already holds (test_ml_serve.BAD, test_ml_serve_limits.CASES: imported, one source) and
adds the NaN, infinity, encoding and framing cases they lacked."""

from __future__ import annotations

import http.client
import importlib.util
import json
import sys
import threading
from pathlib import Path

import pytest

from ml.data import make_synthetic

ML_TESTS = Path(__file__).resolve().parents[1] / "ml"
sys.path.insert(0, str(ML_TESTS))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"badinput_{name}", ML_TESTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_serve, _limits = _load("test_ml_serve"), _load("test_ml_serve_limits")
RECORDS = make_synthetic(5, seed=3).drop(columns="label").to_dict(orient="records")
JSON = "application/json"


def _with_literal(column: str, literal: str) -> str:
    """A record whose value is a JSON literal Python's parser takes but JSON does not (NaN)."""
    record = json.dumps({"instances": [dict(RECORDS[0], **{column: 0})]})
    return record.replace(f'"{column}": 0', f'"{column}": {literal}')


NEW = [
    ("NaN literal", _with_literal("age", "NaN"), JSON, 400, ""),
    ("Infinity literal", _with_literal("age", "Infinity"), JSON, 400, ""),
    ("-Infinity literal", _with_literal("monthly_charges", "-Infinity"), JSON, 400, ""),
    ("nan as text", json.dumps({"instances": [dict(RECORDS[0], age="nan")]}), JSON, 400, ""),
    ("inf as text", json.dumps({"instances": [dict(RECORDS[0], age="inf")]}), JSON, 400, ""),
    ("csv nan", "nan," + ",".join(str(v) for v in list(RECORDS[0].values())[1:]), "text/csv", 400, ""),
    ("csv inf", "inf," + ",".join(str(v) for v in list(RECORDS[0].values())[1:]), "text/csv", 400, ""),
    ("csv not utf-8", b"\xff\xfe,1,2", "text/csv", 400, ""),
    ("utf-16 json", json.dumps({"instances": RECORDS}).encode("utf-16"), JSON, 400, ""),
    ("json null", "null", JSON, 400, ""),
    ("json string", '"rows"', JSON, 400, ""),
    ("empty body", "", JSON, 400, ""),
    ("instances null", '{"instances": null}', JSON, 400, ""),
    ("row of nulls", json.dumps({"instances": [dict.fromkeys(RECORDS[0])]}), JSON, 400, ""),
    ("category as list", json.dumps({"instances": [dict(RECORDS[0], contract=["one-year"])]}), JSON, 400, ""),
    ("number as object", json.dumps({"instances": [dict(RECORDS[0], age={"v": 1})]}), JSON, 400, ""),
    ("duplicate keys", '{"instances": [], "instances": 5}', JSON, 400, ""),
    ("trailing garbage", json.dumps({"instances": RECORDS}) + "}}", JSON, 400, ""),
    ("content type with junk", json.dumps({"instances": RECORDS}), "application/x-pickle", 415, ""),
]
TABLE = (
    [(c[0], c[1], c[2], c[3], c[4]) for c in _serve.BAD] + [(c[0], c[1], JSON, 400, c[2]) for c in _limits.CASES] + NEW
)


@pytest.fixture(scope="module")
def server(mlp_model_dir):
    from ml.serve import make_server

    srv = make_server(mlp_model_dir, "127.0.0.1", 0, max_payload_bytes=1024 * 1024)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _post(server, body, content_type):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    data = body.encode() if isinstance(body, str) else body
    conn.request("POST", "/invocations", body=data, headers={"Content-Type": content_type} if content_type else {})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, payload


@pytest.mark.parametrize(("case", "body", "content_type", "status", "words"), TABLE, ids=[t[0] for t in TABLE])
def test_a_bad_request_is_a_4xx_with_a_reason(server, case, body, content_type, status, words):
    got, payload = _post(server, body, content_type)
    assert got == status, (got, payload[:500])
    reason = json.loads(payload)["error"]
    assert reason and words in reason and "Traceback" not in reason
    assert _post(server, json.dumps({"instances": RECORDS}), JSON)[0] == 200  # the server is fine


TABLE_SIZE = len(TABLE)
