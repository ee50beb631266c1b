"""A fault-injecting HTTP proxy on 127.0.0.1, in front of moto's server.

Point `AWS_ENDPOINT_URL` at `proxy.url` and every AWS call of `mlops` passes through here. Each
request is named by its AWS operation (the `X-Amz-Target` header of JSON services, the `Action=`
field of query services, S3's method and path), recorded in `proxy.calls`, and, when a fault is
armed for that operation, fails in one of these ways:

  drop      served by moto, then the connection is closed without an answer (response lost)
  slow      served by moto, answered only after the client's read timeout (response late)
  reset     not served: the connection is reset (RST) as soon as the request arrives
  throttle  not served: the service's throttling error (400 ThrottlingException / S3 503 SlowDown)
  error500  not served: the service's internal error (500 InternalFailure / S3 InternalError)
  freeze    not served: the connection stays open and silent until the client gives up

`drop` and `slow` are the faults that break naive retries: the request took effect, yet the
client sees a failure and tries again.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FAULTS = ("drop", "slow", "reset", "throttle", "error500", "freeze")
SERVED = ("drop", "slow")  # faults after which the request has taken effect
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}


def operation_of(method: str, path: str, headers, body: bytes) -> str:
    """The AWS operation a request calls: JSON target, query Action, or S3's REST shape."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    if "x-www-form-urlencoded" in (headers.get("Content-Type") or ""):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    parts = urlsplit(path)
    query = parse_qs(parts.query, keep_blank_values=True)
    segments = [s for s in parts.path.split("/") if s]
    on_object = len(segments) >= 2
    if method == "HEAD":
        return "HeadObject" if on_object else "HeadBucket"
    if method == "GET":
        if not segments:
            return "ListBuckets"
        if on_object:
            return "GetObject"
        if query.get("list-type") == ["2"]:
            return "ListObjectsV2"
        if "versions" in query:
            return "ListObjectVersions"
        return "GetBucket" + (next(iter(query), "").title().replace("-", "") or "ListObjects")
    if method == "PUT":
        if not on_object:
            return "PutBucket" + next(iter(query), "").title() if query else "CreateBucket"
        if "partNumber" in query:
            return "UploadPart"
        return "CopyObject" if headers.get("x-amz-copy-source") else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        if "delete" in query:
            return "DeleteObjects"
        return "PostObject"
    if method == "DELETE":
        if "uploadId" in query:
            return "AbortMultipartUpload"
        return "DeleteObject" if on_object else "DeleteBucket"
    return f"{method} {parts.path}"


@dataclass
class Armed:
    operation: str
    fault: str
    times: int  # how many calls of the operation fail; -1: every one
    skip: int = 0  # let this many calls of the operation through first
    hits: int = 0
    path_contains: str = ""  # only calls whose path holds this (an S3 key: one object among many)


class FaultProxy:
    """`with FaultProxy(moto_url) as proxy:`; `proxy.arm("CreateModelPackage", "drop", times=2)`."""

    def __init__(self, upstream: str, late_s: float = 1.0):
        parsed = urlsplit(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.late_s = late_s  # how long `slow` and `freeze` hold an answer: more than the read timeout
        self.calls: list[str] = []
        self.faulted: list[tuple[str, str]] = []
        self._armed: list[Armed] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def arm(self, operation: str, fault: str, times: int = 1, skip: int = 0, path_contains: str = "") -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        with self._lock:
            self._armed.append(Armed(operation, fault, times, skip, path_contains=path_contains))

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()
            self.calls.clear()
            self.faulted.clear()

    def _take(self, operation: str, path: str = "") -> str | None:
        """Record the call; the fault to apply to it, if one is armed and not used up."""
        with self._lock:
            self.calls.append(operation)
            for armed in self._armed:
                if armed.operation != operation or armed.path_contains not in path:
                    continue
                if armed.skip > 0:
                    armed.skip -= 1
                    continue
                if armed.times == -1 or armed.hits < armed.times:
                    armed.hits += 1
                    self.faulted.append((operation, armed.fault))
                    return armed.fault
            return None

    def forward(self, method: str, path: str, headers: Iterable[tuple[str, str]], body: bytes):
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders(body or None)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        finally:
            conn.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:  # aborted connections are the point
        pass


def _error_body(kind: str, protocol: str) -> tuple[int, dict[str, str], bytes]:
    json_code, query_code, s3_code, status = {
        "throttle": ("ThrottlingException", "Throttling", "SlowDown", 400),
        "error500": ("InternalFailure", "InternalFailure", "InternalError", 500),
    }[kind]
    message = "Rate exceeded" if kind == "throttle" else "We encountered an internal error. Please try again."
    if protocol == "json":
        body = json.dumps({"__type": json_code, "message": message}).encode()
        return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": json_code}, body
    if protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{query_code}</Code><Message>{message}</Message>"
            "</Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
        ).encode()
        return status, {"Content-Type": "text/xml"}, body
    body = f"<Error><Code>{s3_code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
    return (503 if kind == "throttle" else 500), {"Content-Type": "application/xml"}, body.encode()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args) -> None:
            pass

        def _body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _protocol(self, body: bytes) -> str:
            if self.headers.get("X-Amz-Target"):
                return "json"
            if "x-www-form-urlencoded" in (self.headers.get("Content-Type") or "") and b"Action=" in body:
                return "query"
            return "rest"

        def _abort(self, reset: bool) -> None:
            self.close_connection = True
            try:
                if reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    self.connection.shutdown(socket.SHUT_RDWR)
                self.connection.close()
            except OSError:
                pass

        def _answer(self, status: int, headers, data: bytes) -> None:
            self.send_response(status)
            length_sent = False
            for name, value in headers:
                lower = name.lower()
                if lower in HOP_BY_HOP or lower in ("date", "server"):
                    continue
                if lower == "content-length":
                    if self.command != "HEAD":
                        continue
                    length_sent = True
                self.send_header(name, value)
            if not length_sent:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD" and data:
                self.wfile.write(data)

        def _handle(self) -> None:
            body = self._body()
            operation = operation_of(self.command, self.path, self.headers, body)
            fault = proxy._take(operation, self.path)
            if fault == "reset":
                return self._abort(reset=True)
            if fault == "freeze":
                proxy._stop.wait(proxy.late_s)
                return self._abort(reset=False)
            if fault in ("throttle", "error500"):
                status, headers, data = _error_body(fault, self._protocol(body))
                return self._answer(status, headers.items(), data)
            headers = [
                (k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"
            ]
            if body or self.command in ("PUT", "POST"):
                headers.append(("Content-Length", str(len(body))))
            status, response_headers, data = proxy.forward(self.command, self.path, headers, body)
            if fault == "drop":
                return self._abort(reset=False)
            if fault == "slow":
                proxy._stop.wait(proxy.late_s)
                try:
                    self._answer(status, response_headers, data)
                except OSError:
                    pass
                return self._abort(reset=False)
            self._answer(status, response_headers, data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

    return Handler


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
