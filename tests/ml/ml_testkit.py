"""Helpers for the ML tests: a SageMaker-shaped base directory, and running the entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from ml.data import DEFAULT_SCHEMA

REPO = Path(__file__).resolve().parents[2]

# Small, quick settings: the suite's budget is tight and the machine has two cores.
FAST = {
    "epochs": "4",
    "batch_size": "64",
    "importance_repeats": "2",
    "baseline_sample": "500",
    "checkpoint_every": "0",
    "model_card": "false",
}


# The synthetic churn data set's schema: it travels with the data as train/schema.json, the way
# a data set brings its own (training never falls back to it).
CHURN = DEFAULT_SCHEMA.to_dict()


def make_base_dir(
    base: Path,
    train: pd.DataFrame,
    valid: pd.DataFrame | None = None,
    hyperparameters: dict | None = None,
    *,
    schema: dict | None = None,
    fmt: str = "csv",
    resource_config: dict | None = None,
    manifest: dict | None = None,
) -> Path:
    """An /opt/ml-shaped tree: config files as SageMaker writes them (every value a string)."""
    config = base / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    channels = {"train": train} if valid is None else {"train": train, "validation": valid}
    for name, frame in channels.items():
        folder = base / "input" / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            frame.to_csv(folder / "part-00000.csv", index=False)
        else:
            frame.to_parquet(folder / "part-00000.parquet", index=False)
        if schema is not None and name == "train":
            (folder / "schema.json").write_text(json.dumps(schema))
    (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in (hyperparameters or {}).items()}))
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {
                name: {
                    "ContentType": "text/csv" if fmt == "csv" else "application/x-parquet",
                    "TrainingInputMode": "File",
                    "S3DistributionType": "FullyReplicated",
                    "RecordWrapperType": "None",
                }
                for name in channels
            }
        )
    )
    (config / "resourceconfig.json").write_text(
        json.dumps(
            resource_config
            or {
                "current_host": "algo-1",
                "hosts": ["algo-1"],
                "current_instance_type": "ml.m5.large",
                "network_interface_name": "eth0",
            }
        )
    )
    if manifest is not None:
        (config / "data_manifest.json").write_text(json.dumps(manifest))
    return base


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SM_", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_", "MLOPS_"))
    }
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), SM_NUM_GPUS="0")
    env.update(extra)
    return env


def run_train_subprocess(base: Path, timeout: float = 120, **extra_env: str) -> subprocess.CompletedProcess:
    """`python ml/train.py --base-dir BASE`, as the pipeline and SageMaker run it."""
    return subprocess.run(
        [sys.executable, str(REPO / "ml" / "train.py"), "--base-dir", str(base)],
        env=subprocess_env(**extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def saved_weights(model_dir: Path) -> dict:
    """The state dict a torch family saved in its model directory."""
    import torch

    return torch.load(Path(model_dir) / "model.pt", weights_only=True)["state_dict"]
