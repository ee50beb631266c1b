"""Serving: requests per second and p50/p99 latency of `python -m ml.serve`, single rows and
batches of 1,000, against the model's in-process predict() on the same rows (the floor: no
HTTP, no parsing), and side by side with the same InferenceService behind uvicorn + starlette
(`--asgi-workers N` worker processes, default: one per core; 0 skips it).

    .venv/bin/python bench/bench_serve.py [--family mlp|gbdt] [--single 2000] [--batches 60] [--asgi-workers N]

Each server runs as its own process (as in the container), on 127.0.0.1 only; clients are
threads in this process with keep-alive connections. Client and server share this machine's cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ml.data import make_synthetic  # noqa: E402


def train_model(directory: Path, family: str) -> Path:
    from ml.train import main as train_main

    base = directory / "opt_ml"
    for name, frame in (("train", make_synthetic(5000, seed=1)), ("validation", make_synthetic(1000, seed=2))):
        (base / "input" / "data" / name).mkdir(parents=True)
        frame.to_csv(base / "input" / "data" / name / "part-0.csv", index=False)
    (base / "input" / "config").mkdir(parents=True)
    hp = {"model": family, "label": "label", "task": "binary", "epochs": "3", "model_card": "false"}
    hp.update(checkpoint_every="0", gbdt_max_iter="100")
    (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hp))
    os.environ.setdefault("SM_NUM_GPUS", "0")
    if train_main(["--base-dir", str(base)]) != 0:
        raise SystemExit((base / "output" / "failure").read_text())
    return base / "model"


def start_server(model_dir: Path, threads: int) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ml.serve", "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", "0"],
        cwd=REPO,
        # OpenMP threads (torch's and scikit-learn's) spin while they wait; on cores the clients
        # need too, that spinning costs more than it gives. A dedicated endpoint sets its own.
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads)},
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()
    match = re.search(r":(\d+) ", line)
    if not match:
        proc.kill()
        raise SystemExit(f"server did not start: {line}{proc.stderr.read()}")
    return proc, int(match.group(1))


def asgi_app():
    """The same InferenceService as ml.serve, behind starlette (uvicorn --factory; MLOPS_MODEL_DIR)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from ml.serve import InferenceService, load_model

    service = InferenceService(load_model(os.environ["MLOPS_MODEL_DIR"]))

    async def ping(_request: Request) -> Response:
        return Response(b'{"status": "ok"}', media_type="application/json")

    async def invocations(request: Request) -> Response:
        body = await request.body()
        status, payload, kind = service.invoke(
            body, request.headers.get("content-type"), request.headers.get("accept"), {}
        )
        return Response(payload, status_code=status, media_type=kind)

    return Starlette(routes=[Route("/ping", ping), Route("/invocations", invocations, methods=["POST"])])


def start_asgi_server(model_dir: Path, workers: int, threads: int) -> tuple[subprocess.Popen, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bench_serve:asgi_app",
            "--app-dir",
            str(REPO / "bench"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads), "MLOPS_MODEL_DIR": str(model_dir)},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("uvicorn did not start")


def run_clients(port: int, body: bytes, content_type: str, requests: int, clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = requests // clients

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.connect()
        # http.client sends a large body separately from the headers; without TCP_NODELAY the
        # body waits for the server's delayed ACK (~40 ms). SDK clients set it too.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mine = []
        for _ in range(per_client):
            start = time.perf_counter()
            conn.request("POST", "/invocations", body=body, headers={"Content-Type": content_type})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"status {response.status}")
            mine.append(time.perf_counter() - start)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies


def in_process(model, frame, calls: int) -> tuple[float, list[float]]:
    from ml.serve import predict

    latencies = []
    start = time.perf_counter()
    for _ in range(calls):
        t = time.perf_counter()
        predict(model, frame)
        latencies.append(time.perf_counter() - t)
    return time.perf_counter() - start, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=["mlp", "gbdt"], default="mlp")
    parser.add_argument("--single", type=int, default=2000, help="single-row requests per scenario")
    parser.add_argument("--batches", type=int, default=60, help="1,000-row requests per scenario")
    parser.add_argument("--server-threads", type=int, default=1, help="OMP_NUM_THREADS of the server process")
    parser.add_argument(
        "--asgi-workers", type=int, default=os.cpu_count() or 1, help="uvicorn worker processes (0: skip uvicorn)"
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    rows = make_synthetic(1000, seed=7).drop(columns="label")
    one = json.dumps({"instances": rows.iloc[:1].to_dict(orient="records")}).encode()
    batch_json = json.dumps({"instances": rows.to_dict(orient="records")}).encode()
    batch_csv = "\n".join(",".join(str(v) for v in r) for r in rows.itertuples(index=False)).encode()

    with tempfile.TemporaryDirectory() as tmp:
        print(f"training a small {args.family} model ...", file=sys.stderr)
        model_dir = train_model(Path(tmp), args.family)
        from ml.payload import parse_columns
        from ml.serve import load_model

        model = load_model(model_dir)
        results = []
        # The floor: the columns the server would parse, predicted without HTTP, parsing or JSON.
        one_columns = parse_columns(one, "application/json", model.schema)[0]
        batch_columns = parse_columns(batch_json, "application/json", model.schema)[0]
        for label, frame, calls in (
            ("in-process predict(), 1 row (floor)", one_columns, args.single),
            ("in-process predict(), 1,000 rows (floor)", batch_columns, args.batches),
        ):
            in_process(model, frame, 20)
            seconds, lat = in_process(model, frame, calls)
            results.append((label, calls, len(next(iter(frame.values()))), seconds, lat))

        scenarios = [
            ("JSON, 1 row, 1 client", one, "application/json", args.single, 1, 1),
            ("JSON, 1 row, 4 clients", one, "application/json", args.single, 4, 1),
            ("JSON, 1,000 rows, 1 client", batch_json, "application/json", args.batches, 1, 1000),
            ("CSV, 1,000 rows, 1 client", batch_csv, "text/csv", args.batches, 1, 1000),
            ("JSON, 1,000 rows, 2 clients", batch_json, "application/json", args.batches, 2, 1000),
        ]
        servers = [("HTTP", lambda: start_server(model_dir, args.server_threads))]
        if args.asgi_workers:
            servers.append(
                (
                    f"uvicorn x{args.asgi_workers}",
                    lambda: start_asgi_server(model_dir, args.asgi_workers, args.server_threads),
                )
            )
        for name, start in servers:
            proc, port = start()
            try:
                run_clients(port, one, "application/json", 50, 1)  # warm-up
                for label, body, kind, requests, clients, n_rows in scenarios:
                    seconds, lat = run_clients(port, body, kind, requests, clients)
                    results.append((f"{name} {label}", len(lat), n_rows, seconds, lat))
            finally:
                proc.terminate()
                proc.wait(timeout=20)

    print()
    print(
        f"serving a {args.family} model, {os.cpu_count()} cores shared by server "
        f"(OMP_NUM_THREADS={args.server_threads}) and clients; payloads: 1 row = {len(one)} B, "
        f"1,000 rows = {len(batch_json):,} B JSON / {len(batch_csv):,} B CSV"
    )
    print(f"{'scenario':<44} {'requests':>8} {'req/s':>9} {'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for label, n, n_rows, seconds, lat in results:
        ms = np.asarray(lat) * 1000
        print(
            f"{label:<44} {n:>8} {n / seconds:>9,.1f} {n * n_rows / seconds:>10,.0f} "
            f"{np.percentile(ms, 50):>8.2f} {np.percentile(ms, 99):>8.2f}"
        )
    single = next(r for r in results if r[0].startswith("HTTP JSON, 1 row, 1 client"))
    batched = next(r for r in results if r[0].startswith("HTTP JSON, 1,000 rows, 1 client"))
    floor = next(r for r in results if r[0].startswith("in-process predict(), 1,000"))
    print()
    print(
        f"batching: {batched[1] * 1000 / batched[3] / (single[1] / single[3]):.0f}x the rows/s of single-row requests; "
        f"HTTP + parsing + formatting cost {np.median(batched[4]) / np.median(floor[4]):.1f}x the "
        "bare predict() on 1,000 rows"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
