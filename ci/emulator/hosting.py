"""Traffic for an endpoint the emulator cannot run: `ml.serve` on loopback, with data capture.

moto's `invoke_endpoint` answers canned results, so the local backend serves a deployed
package with the real inference container code (`ml.serve`, the same handler SageMaker
runs), writes SageMaker's data-capture lines, and uploads them where SageMaker would:
`s3://<captureBucket>/<model>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

from ci.aws import s3 as s3util
from ci.errors import MlopsError, NotFoundError
from ci.progress import QUIET, Progress
from infra.monitoring import VARIANT_NAME
from kernel.stack_outputs import StackOutputs


class LocalEndpoint:
    """`ml.serve` on 127.0.0.1 (a free port) with capture into a folder; a context manager."""

    def __init__(self, model_dir: Path, capture_dir: Path, capture_percent: float = 100.0):
        from ml.serve import make_server

        self.server = make_server(
            model_dir, host="127.0.0.1", port=0, capture_dir=capture_dir, capture_percent=capture_percent
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self) -> LocalEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def ping(self) -> int:
        with urllib.request.urlopen(f"{self.url}/ping", timeout=10) as response:
            return response.status

    def invoke(self, body: bytes, content_type: str = "text/csv", accept: str = "application/json") -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.url}/invocations",
            data=body,
            method="POST",
            headers={"Content-Type": content_type, "Accept": accept},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")


def csv_batches(frame, batch_rows: int) -> list[bytes]:
    """Rows as CSV request bodies with a header (ml.payload reads columns by name)."""
    features = frame.drop(columns=[c for c in ("label",) if c in frame.columns])
    return [features.iloc[i : i + batch_rows].to_csv(index=False).encode() for i in range(0, len(features), batch_rows)]


def send_traffic(
    session,
    outputs: StackOutputs,
    model: str,
    model_dir: Path,
    frame,
    *,
    batch_rows: int = 25,
    capture_percent: float = 100.0,
    progress: Progress = QUIET,
) -> dict[str, Any]:
    """Serve `model_dir`, send `frame` in batches, upload what was captured; returns counts and URIs."""
    endpoint = outputs.endpoints.get(model)
    if not endpoint:
        raise NotFoundError(f"model {model!r} has no endpoint in stack {outputs.stackName}")
    capture_dir = Path(tempfile.mkdtemp(prefix="mlops-capture-"))
    statuses: dict[int, int] = {}
    try:
        with LocalEndpoint(model_dir, capture_dir, capture_percent) as live:
            progress.step(f"serving {endpoint} with ml.serve at {live.url} (capture {capture_percent:g}%)")
            if live.ping() != 200:
                raise MlopsError(f"{live.url}/ping did not answer 200: the model does not load")
            for body in csv_batches(frame, batch_rows):
                status, _ = live.invoke(body)
                statuses[status] = statuses.get(status, 0) + 1
        prefix = f"s3://{outputs.captureBucket}/{model}/{endpoint}/{VARIANT_NAME}/"
        uploaded = []
        s3 = session.client("s3")
        for path in sorted(p for p in capture_dir.rglob("*.jsonl")):
            uri = prefix + path.relative_to(capture_dir).as_posix()
            s3util.upload_file(s3, path, uri, outputs.kmsKeyArn)
            uploaded.append(uri)
        progress.info(
            f"{sum(statuses.values())} requests ({statuses}); captured into {len(uploaded)} object(s) under {prefix}"
        )
        return {
            "endpoint": endpoint,
            "requests": sum(statuses.values()),
            "statuses": statuses,
            "rows": len(frame),
            "captureObjects": uploaded,
        }
    finally:
        shutil.rmtree(capture_dir, ignore_errors=True)
