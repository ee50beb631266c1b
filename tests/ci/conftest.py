"""Fixtures for the delivery pipeline: moto's server on loopback, a copy of the stacks, the CLI.

Every test that talks to AWS goes through moto's HTTP server on 127.0.0.1 (the SDK too),
reset before each test. Stack files are copied to a temporary folder so promotions edit a
copy. `mlops` runs in-process through `ci.cli.main`, capturing its stdout JSON.
"""
from __future__ import annotations

import json
import logging
import shutil
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture(scope="session")
def moto_url():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def emulator(moto_url, monkeypatch, tmp_path):
    """A clean emulator and an environment that points every AWS call at it."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MLOPS_AWS_MAX_ATTEMPTS", "4")
    return moto_url


@pytest.fixture
def stacks(tmp_path, monkeypatch) -> Path:
    """A copy of stacks/ that tests may edit; commands find it through MLOPS_STACKS_DIR."""
    dest = tmp_path / "stacks"
    shutil.copytree(REPO / "stacks", dest)
    monkeypatch.setenv("MLOPS_STACKS_DIR", str(dest))
    return dest


@pytest.fixture
def boto(emulator):
    """boto3 clients on the emulator, for arranging and asserting."""
    import boto3

    session = boto3.session.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")

    def client(name: str):
        return session.client(name, endpoint_url=emulator)

    return client


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    @property
    def json(self):
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, err={self.err[-2000:]!r})"


@pytest.fixture
def mlops(capsys):
    """Run `mlops ARGS...` in-process; returns exit code, stdout and stderr."""
    from ci.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every stack file's bytes, to assert that a refused step changed nothing."""
    return {p.name: p.read_bytes() for p in sorted(directory.glob("Pulumi.*.yaml"))}


@pytest.fixture
def sagemaker(emulator, monkeypatch):
    """Training jobs driven as SageMaker would (see sagemaker_sim.py); set `.outcome` to script one."""
    from tests.ci.sagemaker_sim import SageMakerSimulator

    return SageMakerSimulator(emulator).install(monkeypatch)


# Small, fast, good enough for the dev gate (roc_auc >= 0.70): gradient boosting on ~1k rows.
FAST_HP = ["--hp", "model=gbdt", "--hp", "gbdt_max_iter=40", "--hp", "importance_repeats=1",
           "--hp", "importance_max_rows=200", "--hp", "baseline_sample=500"]


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory):
    """A real ml/train.py run, once per test worker, under the container layout: (model.tar.gz bytes, log lines).

    Tests that need *a* model rather than a training run replay it. It runs in-process (same
    code as the container entry, without another interpreter start-up) to keep the suite fast.
    """
    import contextlib
    import io

    from ci.container import package_model, prepare_tree
    from ml.data import make_synthetic
    from ml.train import main as train_main

    base = tmp_path_factory.mktemp("trained")
    data = base / "data"
    data.mkdir()
    frame = make_synthetic(1000, seed=11)
    frame.iloc[:800].to_csv(data / "train.csv", index=False)
    frame.iloc[800:].to_csv(data / "validation.csv", index=False)
    hp = {k.split("=", 1)[0]: k.split("=", 1)[1] for k in FAST_HP[1::2]}
    prepare_tree(base / "opt_ml", hp, {"train": data / "train.csv", "validation": data / "validation.csv"})
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = train_main(["--base-dir", str(base / "opt_ml")])
    assert code == 0, (base / "opt_ml" / "output" / "failure").read_text()
    archive = package_model(base / "opt_ml" / "model", base / "model.tar.gz")
    return archive.read_bytes(), out.getvalue().splitlines()
