"""Metrics agree with scikit-learn; the champion/challenger gate says why it refuses."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from ml.data import make_synthetic
from ml.evaluate import GateResult, calibration_curve, compare, confusion, evaluate_report, metrics_from_proba


def _random_case(n_classes, n=500, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes)) + 1.5 * np.eye(n_classes)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    proba[:7] = np.round(proba[:7], 1)  # ties in the scores
    proba[:7] /= proba[:7].sum(axis=1, keepdims=True)
    return y, proba


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_metrics_match_scikit_learn(n_classes):
    y, proba = _random_case(n_classes)
    ours = metrics_from_proba(y, proba)
    pred = proba.argmax(axis=1)
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    average = "binary" if n_classes == 2 else "macro"
    assert ours["f1"] == pytest.approx(skm.f1_score(y, pred, average=average, zero_division=0))
    expected_auc = (
        skm.roc_auc_score(y, proba[:, 1]) if n_classes == 2 else skm.roc_auc_score(y, proba, multi_class="ovr")
    )
    assert ours["roc_auc"] == pytest.approx(expected_auc, abs=1e-12)
    assert ours["log_loss"] == pytest.approx(skm.log_loss(y, proba), rel=1e-9)
    if n_classes == 2:
        assert ours["brier_score"] == pytest.approx(skm.brier_score_loss(y, proba[:, 1]))
    assert confusion(y, proba) == skm.confusion_matrix(y, pred, labels=list(range(n_classes))).tolist()


def test_calibration_error_of_a_calibrated_and_an_overconfident_model():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 200_000)
    y = (rng.uniform(0, 1, p.size) < p).astype(int)
    calibrated = np.column_stack([1 - p, p])
    assert metrics_from_proba(y, calibrated)["calibration_error"] < 0.01
    sharp = np.clip(p * 2 - 0.5, 0.001, 0.999)
    assert metrics_from_proba(y, np.column_stack([1 - sharp, sharp]))["calibration_error"] > 0.05
    curve = calibration_curve(y, calibrated)
    assert curve["kind"] == "positive class"
    assert np.allclose(curve["predicted"], curve["observed"], atol=0.02)


def test_roc_auc_is_none_when_a_class_is_absent():
    proba = np.array([[0.8, 0.2], [0.6, 0.4]])
    assert metrics_from_proba(np.array([0, 0]), proba)["roc_auc"] is None


def test_evaluate_report_on_a_model_directory(mlp_model_dir):
    report = evaluate_report(mlp_model_dir, make_synthetic(400, seed=99))
    assert report["classes"] == [0, 1]
    assert sum(map(sum, report["confusion_matrix"])) == 400
    assert 0.6 < report["metrics"]["roc_auc"] <= 1.0
    with pytest.raises(ValueError, match="missing columns"):
        evaluate_report(mlp_model_dir, make_synthetic(50, seed=1).drop(columns=["label"]))


GATE = [
    # candidate, champion, metric, margin, minimums, passed, words in the reason
    ({"roc_auc": 0.90}, {"roc_auc": 0.85}, "roc_auc", 0.01, None, True, "beats champion 0.8500 by 0.0500"),
    (
        {"roc_auc": 0.855},
        {"roc_auc": 0.85},
        "roc_auc",
        0.01,
        None,
        False,
        "improvement +0.0050 is less than the required margin 0.01 (higher is better)",
    ),
    ({"roc_auc": 0.80}, {"roc_auc": 0.85}, "roc_auc", 0.0, None, False, "improvement -0.0500"),
    ({"log_loss": 0.30}, {"log_loss": 0.40}, "log_loss", 0.05, None, True, "beats champion"),
    ({"log_loss": 0.38}, {"log_loss": 0.40}, "log_loss", 0.05, None, False, "(lower is better)"),
    ({"roc_auc": 0.70}, None, "roc_auc", 0.01, None, True, "no champion"),
    ({"roc_auc": 0.70}, None, "roc_auc", 0.01, {"roc_auc": 0.75}, False, "roc_auc 0.7000 is below the minimum 0.75"),
    (
        {"roc_auc": 0.80, "log_loss": 0.9},
        None,
        "roc_auc",
        0.0,
        {"log_loss": 0.5},
        False,
        "log_loss 0.9000 is above the maximum 0.5",
    ),
    ({"accuracy": 0.9}, {"roc_auc": 0.8}, "roc_auc", 0.0, None, False, "candidate has no value for roc_auc"),
    ({"roc_auc": 0.9}, {"accuracy": 0.8}, "roc_auc", 0.0, None, False, "champion has no value for roc_auc"),
    ({"roc_auc": None}, None, "roc_auc", 0.0, None, False, "candidate has no value for roc_auc"),
    ({"roc_auc": float("nan")}, None, "roc_auc", 0.0, None, False, "candidate has no value for roc_auc"),
]


@pytest.mark.parametrize("candidate, champion, metric, margin, minimums, passed, words", GATE)
def test_gate(candidate, champion, metric, margin, minimums, passed, words):
    result = compare(candidate, champion, metric, margin, minimums)
    assert isinstance(result, GateResult)
    assert result.passed is passed, result.reason
    assert words in result.reason
    assert result.to_dict()["metric"] == metric


def test_gate_rejects_a_negative_margin():
    with pytest.raises(ValueError, match="margin"):
        compare({"roc_auc": 0.9}, None, "roc_auc", -0.1)


def test_average_ranks_are_scipys_rankdata_without_importing_scipy_stats():
    """The validation metrics every epoch computes stay clear of scipy.stats (1.5 s of a training
    process's start-up); the ranks are scipy's, ties and NaN included."""
    import subprocess
    import sys

    from scipy.stats import rankdata

    from ml.evaluate import average_ranks

    rng = np.random.default_rng(3)
    for n, distinct in ((0, 2), (1, 2), (9, 2), (500, 7), (500, 10**6)):
        values = rng.integers(0, distinct, n) / 3
        assert np.array_equal(average_ranks(values), rankdata(values)), (n, distinct)
    assert np.isnan(average_ranks(np.array([0.2, np.nan, 0.1]))).all()
    probe = (
        "import sys, numpy as np; from ml.evaluate import task_metrics; "
        "task_metrics('binary', np.array([0, 1, 1]), np.array([[.9, .1], [.2, .8], [.5, .5]])); "
        "sys.exit('scipy.stats' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", probe], timeout=60).returncode == 0
