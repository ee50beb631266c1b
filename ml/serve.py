"""The inference side of the container contract: `GET /ping`, `POST /invocations`.

`python -m ml.serve --model-dir D --port P` (SageMaker starts the image with the argument
`serve`; the model archive is unpacked to /opt/ml/model; the port is 8080 unless
SAGEMAKER_BIND_TO_PORT or PORT says otherwise). JSON and CSV in (see ml/payload.py), JSON or
CSV out (Accept), any number of rows per request. A malformed body, unknown or missing
columns, wrong types or a body over the size limit get a 4xx with a JSON reason; nothing a
client sends can crash the server or make it answer 500. Work per request is bounded: the body
(413 past the limit, unread), the requests in flight (429 past the limit, with Retry-After),
the rows an explanation may cost (413), JSON nesting and integer size (400).
Optional data capture writes SageMaker's capture format.

The functions `model_fn`, `input_fn`, `predict_fn`, `output_fn` are the same handler in the
shape SageMaker's framework containers (inference toolkit) call.
"""

from __future__ import annotations

if not __package__:  # run as a script: make this folder the `ml` package
    import _standalone  # noqa: F401

import argparse
import json
import os
import random
import signal
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from ml.lineage import ENV_MODEL_DIGEST, ModelIntegrityError, verify_model_dir
from ml.model import MODEL_META, ModelLoadError, TrainedModel
from ml.model import load_model as _load_model
from ml.payload import PayloadError, format_predictions, media_type, parse_columns, response_type

DEFAULT_PORT = 8080
DEFAULT_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # SageMaker real-time endpoints accept 6 MB
DEFAULT_MAX_CONCURRENCY = max(8, 4 * (os.cpu_count() or 1))  # in flight at once (x 6 MB bodies at most)
DEFAULT_MAX_EXPLAIN_ROWS = 200  # an explanation costs rows x (features + 1) predictions
BUSY_DRAIN_BYTES = 64 * 1024  # a busy answer reads a body this small; a larger one is left unread


# ---------------------------------------------------------------------------------------------
# Load, predict
# ---------------------------------------------------------------------------------------------
@dataclass
class Predictions:
    labels: list[Any]  # classes, or a regression's values
    probabilities: np.ndarray | None  # rows x classes; None for a regression
    classes: list[Any]
    attributions: np.ndarray | None = None  # rows x features, when asked for
    features: list[str] | None = None

    def to_records(self) -> list[dict[str, Any]]:
        names = [str(c) for c in self.classes]
        records = []
        if self.probabilities is None:
            rows = [{"value": v} for v in self.labels]
        else:
            rows = [
                {"label": label, "probability": max(row), "probabilities": dict(zip(names, row))}
                for label, row in zip(self.labels, np.round(self.probabilities, 6).tolist())
            ]
        for i, record in enumerate(rows):
            if self.attributions is not None and self.features is not None:
                record["attributions"] = dict(zip(self.features, np.round(self.attributions[i], 6).tolist()))
            records.append(record)
        return records


def load_model(model_dir: str | Path) -> TrainedModel:
    """The model in a model directory (what ml.train writes), ready to predict on CPU, once its
    files match the digests registration recorded (ml.lineage.verify_model_dir)."""
    verify_model_dir(model_dir, os.environ.get(ENV_MODEL_DIGEST) or None, needed=(MODEL_META,))
    model = _load_model(model_dir)
    baseline = Path(model_dir) / "baseline.json"
    if baseline.is_file():
        from ml.explain import reference_row

        model.meta["reference_row"] = reference_row(json.loads(baseline.read_text()))
    return model


def predict(model: TrainedModel, frame: pd.DataFrame | dict[str, Any], explain: bool = False) -> Predictions:
    """Labels and class probabilities for a frame of features (schema columns; extra columns
    such as the label are ignored), or a mapping of column -> values."""
    if model.schema.is_regression:
        result = Predictions(model.predict_values(frame).tolist(), None, [])
    else:
        proba = model.predict_proba(frame)
        result = Predictions([model.classes[i] for i in proba.argmax(axis=1)], proba, list(model.classes))
    if explain and model.meta.get("reference_row"):
        from ml.explain import attributions

        table = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
        result.attributions = attributions(model, table, model.meta["reference_row"])
        result.features = model.feature_names
    return result


# ---------------------------------------------------------------------------------------------
# SageMaker inference-toolkit handler functions
# ---------------------------------------------------------------------------------------------
def model_fn(model_dir: str) -> TrainedModel:
    return load_model(model_dir)


def input_fn(request_body: bytes | str, request_content_type: str) -> tuple[bytes, str]:
    """Kept raw: the schema to check it against lives with the model (see predict_fn)."""
    body = request_body.encode() if isinstance(request_body, str) else request_body
    return body, request_content_type


def predict_fn(input_data: tuple[bytes, str], model: TrainedModel) -> Predictions:
    columns, options = parse_columns(input_data[0], input_data[1], model.schema)
    return predict(model, columns, explain=bool(options.get("explain")))


def not_acceptable(accept: str | None) -> str:
    return f"cannot answer in {accept!r}; accept application/json, application/jsonlines or text/csv"


def output_fn(prediction: Predictions, accept: str) -> tuple[bytes, str]:
    kind = response_type(accept)
    if kind is None:
        raise PayloadError(406, not_acceptable(accept))
    if kind == "application/json" and prediction.attributions is not None:
        return json.dumps({"predictions": prediction.to_records()}).encode(), kind
    return format_predictions(prediction.labels, prediction.probabilities, prediction.classes, kind), kind


# ---------------------------------------------------------------------------------------------
# Data capture
# ---------------------------------------------------------------------------------------------
class CaptureWriter:
    """Appends SageMaker-format capture lines under <dir>/YYYY/MM/DD/HH/, one file per process."""

    def __init__(self, directory: str | Path, percent: float = 100.0):
        self.directory = Path(directory)
        self.percent = percent
        self.lock = threading.Lock()
        self.random = random.Random()

    def maybe_write(self, request: bytes, request_type: str, response: bytes, response_type_: str) -> None:
        if self.percent < 100 and self.random.uniform(0, 100) >= self.percent:
            return
        from ml.drift import capture_record

        moment = datetime.now(UTC)
        record = capture_record(
            request,
            request_type,
            response,
            response_type_,
            str(uuid.uuid4()),
            moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )
        folder = self.directory / moment.strftime("%Y/%m/%d/%H")
        line = json.dumps(record) + "\n"
        with self.lock:
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / f"capture-{os.getpid()}.jsonl", "a", encoding="utf-8") as handle:
                handle.write(line)


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------
class InferenceService:
    """What the HTTP layer calls: one request in, (status, body, content type) out."""

    def __init__(
        self,
        model: TrainedModel,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        capture: CaptureWriter | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_explain_rows: int = DEFAULT_MAX_EXPLAIN_ROWS,
    ):
        self.model = model
        self.max_payload_bytes = max_payload_bytes
        self.capture = capture
        self.max_concurrency = max_concurrency
        self.max_explain_rows = max_explain_rows
        self.slots = threading.BoundedSemaphore(max_concurrency)

    def execution_parameters(self) -> dict[str, int | str]:
        """What batch transform may send at once, the truth about this server: one process whose
        threads take at most `max_concurrency` requests in flight (more are answered 429), each up
        to the payload limit. (It used to claim one transform per core, as if it ran a worker
        process per core; a transform sized that way could exceed the in-flight limit.)"""
        return {
            "MaxConcurrentTransforms": self.max_concurrency,
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": max(1, self.max_payload_bytes // (1024 * 1024)),
        }

    def invoke(
        self, body: bytes, content_type: str | None, accept: str | None, query: dict[str, list[str]]
    ) -> tuple[int, bytes, str]:
        try:
            kind = response_type(accept)
            if kind is None:
                raise PayloadError(406, not_acceptable(accept))
            columns, options = parse_columns(body, content_type, self.model.schema)
            explain = bool(options.get("explain")) or query.get("explain", ["false"])[0].lower() in ("1", "true", "yes")
            rows = len(next(iter(columns.values()), ()))
            if explain and rows > self.max_explain_rows:
                raise PayloadError(
                    413,
                    f"explanations asked for {rows} rows; at most {self.max_explain_rows} per request "
                    "(each costs a prediction per feature): split the batch",
                )
            prediction = predict(self.model, columns, explain=explain)
            payload, out_type = output_fn(prediction, kind)
        except PayloadError as err:
            return err.status, json.dumps(err.to_dict()).encode(), "application/json"
        if self.capture is not None:
            try:
                self.capture.maybe_write(body, media_type(content_type) or "application/json", payload, out_type)
            except OSError as err:  # capture must never fail a prediction
                print(f"data capture failed: {err}", file=sys.stderr)
        return 200, payload, out_type


def make_handler(service: InferenceService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
        server_version = "mlops-serve/1"
        timeout = 60  # a client that stops sending does not hold a thread for ever
        disable_nagle_algorithm = True  # no 40 ms wait for the peer's ACK between writes ...
        wbufsize = 1 << 16  # ... and headers and body leave in one write (flushed per request)

        def _send(self, status: int, body: bytes, content_type: str = "application/json", close: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, reason: str, close: bool = False) -> None:
            self._send(status, json.dumps({"error": reason, "status": status}).encode(), close=close)

        def _busy(self, length: int) -> None:
            """429, and when to come back; a small body is read first so the client sees the answer."""
            if length <= BUSY_DRAIN_BYTES:
                self.rfile.read(length)
            body = json.dumps(
                {
                    "error": f"{service.max_concurrency} requests are in flight, the limit; retry after a second",
                    "status": 429,
                }
            ).encode()
            self.send_response(429)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Retry-After", "1")
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/ping":
                self._send(200, b'{"status": "ok"}')
            elif path == "/execution-parameters":  # batch transform asks this
                self._send(200, json.dumps(service.execution_parameters()).encode())
            else:
                self._error(404, f"no such path {path!r}; use GET /ping or POST /invocations")

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            try:
                if parts.path != "/invocations":
                    self._error(404, f"no such path {parts.path!r}; use POST /invocations", close=True)
                    return
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    self._error(411, "chunked bodies are not accepted; send Content-Length", close=True)
                    return
                length_header = self.headers.get("Content-Length")
                if length_header is None:
                    self._error(411, "Content-Length is required", close=True)
                    return
                try:
                    length = int(length_header)
                    if length < 0:
                        raise ValueError
                except ValueError:
                    self._error(400, f"Content-Length {length_header!r} is not a byte count", close=True)
                    return
                if length > service.max_payload_bytes:
                    self._error(
                        413,
                        f"payload of {length} bytes is over the limit of {service.max_payload_bytes} "
                        "bytes; split the batch",
                        close=True,
                    )
                    return
                if not service.slots.acquire(blocking=False):
                    self._busy(length)
                    return
                try:
                    body = self.rfile.read(length)
                    if len(body) < length:
                        self._error(400, f"body ended after {len(body)} of {length} bytes", close=True)
                        return
                    status, payload, content_type = service.invoke(
                        body, self.headers.get("Content-Type"), self.headers.get("Accept"), parse_qs(parts.query)
                    )
                finally:
                    service.slots.release()
                self._send(status, payload, content_type)
            except (ConnectionError, TimeoutError):
                self.close_connection = True
            except Exception as err:
                print(f"internal error on /invocations: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
                try:
                    self._error(500, f"internal error: {type(err).__name__}", close=True)
                except OSError:
                    self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            if os.environ.get("MLOPS_SERVE_ACCESS_LOG"):
                super().log_message(format, *args)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(
    model_dir: str | Path,
    host: str = "0.0.0.0",
    port: int = DEFAULT_PORT,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    capture_dir: str | Path | None = None,
    capture_percent: float = 100.0,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    max_explain_rows: int = DEFAULT_MAX_EXPLAIN_ROWS,
) -> Server:
    """A bound server (port 0 picks a free one: `server.server_address[1]`); call serve_forever()."""
    model = load_model(model_dir)
    capture = CaptureWriter(capture_dir, capture_percent) if capture_dir else None
    service = InferenceService(model, max_payload_bytes, capture, max_concurrency, max_explain_rows)
    server = Server((host, port), make_handler(service))
    server.service = service  # type: ignore[attr-defined]
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ml.serve", description="Serve a trained model by the SageMaker inference container contract."
    )
    parser.add_argument(
        "command", nargs="?", choices=["serve"], help="SageMaker starts inference images with 'serve'; optional"
    )
    parser.add_argument(
        "--model-dir",
        default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"),
        help="model directory (default $SM_MODEL_DIR or /opt/ml/model)",
    )
    parser.add_argument("--host", default=os.environ.get("MLOPS_SERVE_HOST", "0.0.0.0"))
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT") or os.environ.get("PORT") or DEFAULT_PORT),
    )
    parser.add_argument("--max-payload-mb", type=float, default=float(os.environ.get("MLOPS_MAX_PAYLOAD_MB", "6")))
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=int(os.environ.get("MLOPS_MAX_CONCURRENCY") or DEFAULT_MAX_CONCURRENCY),
        help="requests in flight at once; more are answered 429",
    )
    parser.add_argument(
        "--max-explain-rows",
        type=int,
        default=int(os.environ.get("MLOPS_MAX_EXPLAIN_ROWS") or DEFAULT_MAX_EXPLAIN_ROWS),
        help="rows one request may ask explanations for; more are answered 413",
    )
    parser.add_argument(
        "--capture-dir",
        default=os.environ.get("MLOPS_CAPTURE_DIR"),
        help="write requests and responses in SageMaker's data-capture format here",
    )
    parser.add_argument("--capture-percent", type=float, default=float(os.environ.get("MLOPS_CAPTURE_PERCENT", "100")))
    args = parser.parse_args(argv)
    if not 0 <= args.capture_percent <= 100:
        parser.error(f"--capture-percent: expected 0 to 100, got {args.capture_percent}")
    if args.max_payload_mb <= 0:
        parser.error(f"--max-payload-mb: expected a positive size, got {args.max_payload_mb}")
    if args.max_concurrency < 1 or args.max_explain_rows < 1:
        parser.error("--max-concurrency and --max-explain-rows: expected at least 1")
    try:
        server = make_server(
            args.model_dir,
            args.host,
            args.port,
            int(args.max_payload_mb * 1024 * 1024),
            args.capture_dir,
            args.capture_percent,
            args.max_concurrency,
            args.max_explain_rows,
        )
    except (ModelLoadError, ModelIntegrityError, FileNotFoundError) as err:
        print(f"error: cannot load the model: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    print(
        f"serving {args.model_dir} on http://{host!s}:{port} (POST /invocations, GET /ping)",
        file=sys.stderr,
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
