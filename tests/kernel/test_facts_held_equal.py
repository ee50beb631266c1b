"""Facts the layer rule makes us write twice, held equal here.

kernel/ may not import ml/ (ml pulls numpy and pandas; tests/tooling/test_layers.py), and
`ml.cli` may not import `ml.drift` at load time (`mlops --help` would load pandas), so each
keeps its own literal, names the other in a comment, and this file fails when they part.
The gate metrics (kernel) against ml's metric names: tests/ml/test_ml_regression_and_contract.py.
"""

from __future__ import annotations

import click

import ml.cli
from kernel.stack_config import parse_config, read_raw_config
from ml.drift import DEFAULT_THRESHOLD


def test_stack_config_drift_threshold_default_is_mls():
    stack, raw = read_raw_config("local")
    monitoring = {k: v for k, v in raw["mlops:monitoring"].items() if k != "driftThreshold"}
    config = parse_config(stack, {**raw, "mlops:monitoring": monitoring})
    assert config.monitoring.driftThreshold == DEFAULT_THRESHOLD


def test_ml_drift_command_default_is_mls():
    (option,) = [p for p in ml.cli.drift.params if isinstance(p, click.Option) and p.name == "threshold"]
    assert option.default == DEFAULT_THRESHOLD
    assert f"(default {DEFAULT_THRESHOLD})" in (option.help or "")
