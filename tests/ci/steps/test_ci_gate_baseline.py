"""`mlops evaluate` also scores a linear baseline fitted on the candidate's own train split and
scored on the same held-out data; it informs people and changes no verdict."""

from __future__ import annotations

import pytest
from ci_testkit import FAST_HP, push_project_image

from ml import baseline
from ml.data import DEFAULT_SCHEMA, load_sklearn_dataset, make_synthetic
from ml.evaluate import REGRESSION_METRICS
from ml.model import TrainedModel

# One stump, one round: a candidate a logistic regression beats on the synthetic churn data.
STUMP = ["--hp", "gbdt_max_iter=1", "--hp", "gbdt_max_leaf_nodes=2"]


@pytest.mark.moto_server
def test_a_candidate_that_loses_to_the_linear_baseline_is_told_so_and_the_gate_is_unchanged(
    emulator, stacks, sagemaker, mlops, boto
):
    path = stacks / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("roc_auc: 0.70", "roc_auc: 0.50"))  # the stump passes the gate
    assert mlops("local", "up", "--stack", "dev").code == 0
    push_project_image(boto)
    trained = mlops(
        "train", "--stack", "dev", "--synthetic", "600", "--poll-seconds", "0.05", *FAST_HP, *STUMP, "--json"
    )
    assert trained.code == 0, trained

    result = mlops("evaluate", "--stack", "dev", "--job", trained.json["run"]["job"], "--json")
    assert result.code == 0, result  # information, not a gate failure
    report = result.json["report"]
    assert report["gate"]["passed"] is True
    block = report["baseline"]
    assert block["family"] == "linear" and block["estimator"] == "LogisticRegression"
    assert block["trainSplit"] == "train" and block["trainRows"] == 420 and block["trainRowsCap"] == 100_000
    assert block["metrics"]["n_rows"] == report["testSet"]["rows"]  # the same held-out rows as the candidate
    ours, theirs = report["candidate"]["metrics"]["roc_auc"], block["metrics"]["roc_auc"]
    assert ours < theirs and block["candidateBeatsBaseline"] is False
    assert (
        f"the candidate does not beat a linear baseline (roc_auc {ours:.4f} vs {theirs:.4f}): a simpler model would do"
        in result.err
    )


def test_the_baseline_fits_on_at_most_the_row_cap(monkeypatch):
    monkeypatch.setattr(baseline, "MAX_TRAIN_ROWS", 300)
    candidate = TrainedModel("gbdt", DEFAULT_SCHEMA, None, [0, 1], None, {})
    fitted = baseline.fit_and_score(candidate, make_synthetic(1000, seed=1), make_synthetic(200, seed=2))
    assert (fitted.train_rows, fitted.train_rows_available, fitted.capped) == (300, 1000, True)
    assert fitted.metrics["n_rows"] == 200 and 0.5 < fitted.metrics["roc_auc"] <= 1.0


def test_a_regression_baseline_is_ridge_scored_with_regression_metrics():
    frame, schema = load_sklearn_dataset("diabetes")
    candidate = TrainedModel("mlp", schema, None, [], None, {})
    fitted = baseline.fit_and_score(candidate, frame.iloc[:350], frame.iloc[350:])
    assert fitted.estimator == "Ridge" and set(REGRESSION_METRICS) <= set(fitted.metrics)
    assert fitted.metrics["r2"] > 0.3  # a linear model explains much of this data set


@pytest.mark.parametrize(
    ("metric", "candidate", "linear", "expected"),
    [
        ("roc_auc", 0.81, 0.83, False),
        ("roc_auc", 0.85, 0.83, True),
        ("log_loss", 0.40, 0.50, True),  # lower is better
        ("rmse", 12.0, 10.0, False),
        ("roc_auc", 0.83, 0.83, False),  # a tie does not beat it
        ("roc_auc", None, 0.83, None),  # nothing to compare
    ],
)
def test_beating_the_baseline_respects_the_metric_direction(metric, candidate, linear, expected):
    assert baseline.beats({metric: candidate}, {metric: linear}, metric) is expected
