"""Regression metrics and the gate's direction (one definition of "lower is better"), and the
data-set layouts `mlops data-check` shares with `mlops train`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ml_testkit import FAST, make_base_dir
from sklearn import metrics as skm

import ml.hyperparameters
import ml.train
from ci.cli import main as mlops
from ml.data import DEFAULT_SCHEMA, load_sklearn_dataset, make_synthetic
from ml.evaluate import LOWER_IS_BETTER, compare, lower_is_better, regression_metrics


def test_regression_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.normal(100, 20, 300)
    predicted = y + rng.normal(0, 5, 300)
    got = regression_metrics(y, predicted)
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, predicted)), rel=1e-12)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, predicted), rel=1e-12)
    assert got["r2"] == pytest.approx(skm.r2_score(y, predicted), rel=1e-12)
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, predicted), rel=1e-12)
    with_zero = regression_metrics(np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 2.5]))
    assert with_zero["mape"] is None and with_zero["rmse"] > 0  # a percentage of zero is undefined
    assert regression_metrics(np.ones(3), np.array([1.0, 2.0, 0.0]))["r2"] is None  # constant target


def test_one_definition_of_lower_is_better_drives_the_gate_and_training():
    """Before: ml.hyperparameters and ml.evaluate each had a set, and neither knew rmse."""
    assert not hasattr(ml.hyperparameters, "LOWER_IS_BETTER")
    assert ml.train.lower_is_better is lower_is_better
    assert {"rmse", "mae", "mape", "log_loss", "val_loss"} <= LOWER_IS_BETTER and "r2" not in LOWER_IS_BETTER
    better = compare({"rmse": 40.0}, {"rmse": 45.0}, "rmse", margin=1.0)
    assert better.passed and not better.higher_is_better
    worse = compare({"rmse": 50.0}, {"rmse": 45.0}, "rmse", margin=1.0)
    assert not worse.passed and "lower is better" in worse.reason
    capped = compare({"rmse": 60.0, "r2": 0.1}, None, "rmse", margin=0.0, minimums={"rmse": 55.0, "r2": 0.3})
    assert not capped.passed
    assert capped.failures == ["rmse 60.0000 is above the maximum 55", "r2 0.1000 is below the minimum 0.3"]


def test_a_target_metric_of_another_task_is_refused(tmp_path):
    frame, _ = load_sklearn_dataset("diabetes")
    make_base_dir(tmp_path, frame, None, {**FAST, "label": "label", "task": "regression", "target_metric": "roc_auc"})
    assert ml.train.main(["--base-dir", str(tmp_path)]) == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert "target_metric='roc_auc' does not apply to a regression task" in reason and "rmse" in reason


def test_data_check_reads_the_layouts_training_reads(tmp_path, capsys):
    frame = make_synthetic(300, seed=1)
    folders = tmp_path / "folders"
    for split, part in (("train", frame[:200]), ("validation", frame[200:250]), ("test", frame[250:])):
        (folders / split).mkdir(parents=True)
        part.to_csv(folders / split / "part-0.csv", index=False)
    DEFAULT_SCHEMA.save(folders / "train" / "schema.json")
    assert mlops(["data-check", str(folders), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and set(report["splits"]) == {"train", "validation", "test"}
    assert report["schema"] == str(folders / "train" / "schema.json")

    flat = tmp_path / "flat"
    flat.mkdir()
    diabetes, _ = load_sklearn_dataset("diabetes")
    diabetes[:350].to_csv(flat / "train.csv", index=False)
    diabetes[350:].to_csv(flat / "validation.csv", index=False)
    assert mlops(["data-check", str(flat)]) == 2  # no schema.json, no label: not the churn schema
    assert "give --schema, or --label and --task" in capsys.readouterr().err
    assert mlops(["data-check", str(flat), "--label", "label", "--task", "regression", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["schema"] == "inferred (label 'label', task regression)"


def test_every_gate_metric_a_stack_may_name_is_one_the_models_report():
    """infra cannot import ml (the arrows point the other way), so the stack's list of gate
    metrics is a second list; it must stay within what evaluation reports, and its direction
    comes from ml.evaluate.LOWER_IS_BETTER alone."""
    from kernel.stack_config import GATE_METRICS
    from ml.evaluate import METRIC_NAMES

    assert set(GATE_METRICS) <= set(METRIC_NAMES)
