"""ML test fixtures: one small trained model of each family, shared by the tests that only read it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)

from ml_testkit import CHURN, FAST, make_base_dir  # noqa: E402


@pytest.fixture(autouse=True)
def _clean_training_env(monkeypatch):
    """Training reads SM_* and distributed variables: none may leak in from the outside."""
    import os

    for name in list(os.environ):
        if name.startswith(("SM_", "MLOPS_")) or name in (
            "RANK",
            "WORLD_SIZE",
            "LOCAL_RANK",
            "MASTER_ADDR",
            "MASTER_PORT",
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SM_NUM_GPUS", "0")


def _train(base: Path, hyperparameters: dict) -> Path:
    from ml.data import make_synthetic
    from ml.train import main

    make_base_dir(
        base, make_synthetic(1500, seed=1), make_synthetic(500, seed=2), {**FAST, **hyperparameters}, schema=CHURN
    )
    assert main(["--base-dir", str(base)]) == 0, (
        (base / "output" / "failure").read_text() if (base / "output" / "failure").exists() else ""
    )
    return base / "model"


@pytest.fixture(scope="session")
def mlp_model_dir(tmp_path_factory) -> Path:
    import os

    os.environ["SM_NUM_GPUS"] = "0"
    return _train(tmp_path_factory.mktemp("mlp"), {"model": "mlp", "epochs": "6", "model_card": "true"})


@pytest.fixture(scope="session")
def gbdt_model_dir(tmp_path_factory) -> Path:
    import os

    os.environ["SM_NUM_GPUS"] = "0"
    return _train(tmp_path_factory.mktemp("gbdt"), {"model": "gbdt", "gbdt_max_iter": "60"})
