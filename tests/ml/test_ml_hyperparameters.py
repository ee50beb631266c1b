"""Hyperparameters arrive as strings; each bad one is named with what is allowed."""

from __future__ import annotations

import pytest

from ml.hyperparameters import HyperparameterError, Hyperparameters, parse_hyperparameters


def test_strings_as_sagemaker_sends_them_are_parsed():
    hp = parse_hyperparameters(
        {
            "model": '"gbdt"',  # the SDK JSON-quotes strings
            "epochs": "12",
            "batch_size": "256.0",
            "lr": "3e-4",
            "hidden_sizes": "[256, 128, 64]",
            "dropout": "0",
            "deterministic": "False",
            "target_metric": "roc_auc",
            "sagemaker_program": "train.py",  # the SDK's own keys are not ours to check
            "sagemaker_submit_directory": "s3://bucket/code.tar.gz",
        }
    )
    assert hp == Hyperparameters(
        model="gbdt",
        epochs=12,
        batch_size=256,
        lr=3e-4,
        hidden_sizes=(256, 128, 64),
        dropout=0.0,
        deterministic=False,
        target_metric="roc_auc",
    )
    assert parse_hyperparameters({"hidden_sizes": "64, 32"}).hidden_sizes == (64, 32)
    assert parse_hyperparameters(None) == Hyperparameters()


BAD = [
    ("model", "xg boost", "a model family name"),
    ("epochs", "ten", "a whole number from 1 to 10000"),
    ("epochs", "0", "a whole number from 1 to 10000"),
    ("epochs", "2.5", "a whole number"),
    ("batch_size", "-4", "a whole number from 1"),
    ("lr", "0", "a number in (0, 10]"),
    ("lr", "fast", "a number in (0, 10]"),
    ("dropout", "1", "a number in [0, 1)"),
    ("hidden_sizes", "128,,x", "layer widths"),
    ("hidden_sizes", "[]", "1 to 16 layer widths"),
    ("seed", "-1", "a whole number from 0"),
    ("target_metric", "precision", "one of val_loss, accuracy, f1, roc_auc, log_loss, calibration_error"),
    ("deterministic", "maybe", "true or false"),
    ("amp", "fp8", "one of auto, bf16, fp16, fp32, off"),
    ("validation_fraction", "0.95", "a number in (0, 0.9]"),
    ("schema", "strict", "one of auto, infer, example"),
]


@pytest.mark.parametrize("name, value, allowed", BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_bad_values_name_the_hyperparameter_and_what_is_allowed(name, value, allowed):
    with pytest.raises(HyperparameterError) as caught:
        parse_hyperparameters({name: value})
    [problem] = caught.value.problems
    assert problem.startswith(f"{name}: {value!r} is not allowed; expected ")
    assert allowed in problem


def test_unknown_names_are_rejected_with_a_suggestion():
    with pytest.raises(HyperparameterError) as caught:
        parse_hyperparameters({"learning-rate": "0.1", "batchsize": "3"})
    problems = caught.value.problems
    assert any(p.startswith("learning-rate: unknown hyperparameter; known:") for p in problems)
    assert "batchsize: unknown hyperparameter; did you mean batch_size?" in problems


def test_all_problems_are_reported_together():
    with pytest.raises(HyperparameterError) as caught:
        parse_hyperparameters({"epochs": "x", "lr": "-1", "model": "svm!"})
    assert len(caught.value.problems) == 3
    assert "invalid hyperparameters" in str(caught.value)
