"""The training entry point: real and synthetic data, determinism, the model directory, failures."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import torch
from ml_testkit import CHURN, FAST, make_base_dir, run_train_subprocess, saved_weights

from ml.data import load_sklearn_dataset, make_synthetic, split
from ml.evaluate import evaluate
from ml.train import main

CONTRACT_FILES = [
    "model.json",
    "model.pt",
    "preprocess.json",
    "schema.json",
    "baseline.json",
    "metrics.json",
    "importance.json",
    "lineage.json",
    "curves.json",
    "model_card.html",
]


def _train(base, train, valid, hp, **kwargs):
    kwargs.setdefault("schema", CHURN)  # the synthetic data's schema travels with it
    make_base_dir(base, train, valid, {**FAST, **hp}, **kwargs)
    code = main(["--base-dir", str(base)])
    failure = base / "output" / "failure"
    return code, (failure.read_text() if failure.exists() else None)


def test_real_dataset_reaches_a_sensible_accuracy(tmp_path):
    frame, schema = load_sklearn_dataset("breast_cancer")
    train, valid = split(frame, "label", 0.2, seed=0)
    code, failure = _train(
        tmp_path, train, valid, {"epochs": "25", "batch_size": "32", "lr": "0.003"}, schema=schema.to_dict()
    )
    assert code == 0, failure
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.94 and metrics["roc_auc"] >= 0.98, metrics


def test_multiclass_real_dataset(tmp_path):
    frame, schema = load_sklearn_dataset("wine")
    train, valid = split(frame, "label", 0.25, seed=0)
    code, failure = _train(
        tmp_path,
        train,
        valid,
        {"epochs": "40", "batch_size": "16", "lr": "0.003", "min_rows": "20"},
        schema=schema.to_dict(),
    )
    assert code == 0, failure
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.9, metrics
    evaluation = json.loads((tmp_path / "model" / "evaluation.json").read_text())
    assert len(evaluation["confusion_matrix"]) == 3 and sum(map(sum, evaluation["confusion_matrix"])) == len(valid)


def test_network_beats_or_ties_the_gradient_boosting_baseline_on_synthetic_data(tmp_path):
    train, valid = make_synthetic(4000, seed=21), make_synthetic(2000, seed=22)
    scores = {}
    for family in ("mlp", "gbdt"):
        code, failure = _train(
            tmp_path / family,
            train,
            valid,
            {"model": family, "epochs": "10", "batch_size": "128", "gbdt_max_iter": "200"},
        )
        assert code == 0, failure
        scores[family] = json.loads((tmp_path / family / "model" / "metrics.json").read_text())
    assert scores["mlp"]["roc_auc"] >= scores["gbdt"]["roc_auc"] - 0.005, scores
    assert scores["mlp"]["roc_auc"] > 0.8


def test_same_seed_gives_identical_weights_and_another_seed_does_not(tmp_path):
    train, valid = make_synthetic(800, seed=3), make_synthetic(300, seed=4)
    runs = {}
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        code, failure = _train(tmp_path / name, train, valid, {"seed": seed, "epochs": "3", "dropout": "0.2"})
        assert code == 0, failure
        runs[name] = saved_weights(tmp_path / name / "model")
    assert runs["a"].keys() == runs["b"].keys()
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def test_model_directory_holds_the_contract_files(mlp_model_dir, capsys):
    for name in CONTRACT_FILES:
        assert (mlp_model_dir / name).is_file(), name
    metrics = json.loads((mlp_model_dir / "metrics.json").read_text())
    assert {"accuracy", "f1", "roc_auc", "log_loss", "calibration_error"} <= metrics.keys()
    curves = json.loads((mlp_model_dir / "curves.json").read_text())
    assert len(curves["val_loss"]) == len(curves["epoch"]) >= 1
    schema = json.loads((mlp_model_dir / "schema.json").read_text())
    assert schema["label"]["classes"] == [0, 1]
    importance = json.loads((mlp_model_dir / "importance.json").read_text())
    assert len(importance["features"]) == 10


def test_metric_lines_parse_with_sagemaker_style_regexes(tmp_path, capsys):
    code, failure = _train(tmp_path, make_synthetic(600, seed=1), make_synthetic(200, seed=2), {"epochs": "2"})
    assert code == 0, failure
    out = capsys.readouterr().out
    losses = [float(v) for v in re.findall(r"val_loss=([0-9.]+)", out)]
    assert len(losses) >= 2 and all(0 < v < 5 for v in losses)
    assert re.search(r"^metric: epoch=2; train_loss=[0-9.]+; val_loss=[0-9.]+;", out, re.M)
    assert re.search(r"final_roc_auc=([0-9.]+);", out)


def test_evaluate_reproduces_the_training_metrics(mlp_model_dir):
    valid = pd.read_csv(mlp_model_dir.parent / "input" / "data" / "validation" / "part-00000.csv")
    again = evaluate(mlp_model_dir, valid)
    recorded = json.loads((mlp_model_dir / "metrics.json").read_text())
    assert again == pytest.approx(recorded)


def test_gbdt_writes_a_skops_model_and_curves(gbdt_model_dir):
    assert (gbdt_model_dir / "model.skops").is_file() and not (gbdt_model_dir / "model.pt").exists()
    curves = json.loads((gbdt_model_dir / "curves.json").read_text())
    assert curves["family"] == "gbdt" and len(curves["val_loss"]) > 1


def test_parquet_channel_with_inferred_schema_and_no_validation_channel(tmp_path):
    frame = make_synthetic(900, seed=8).rename(columns={"label": "churned"})
    code, failure = _train(
        tmp_path,
        frame,
        None,
        {"schema": "infer", "label": "churned", "task": "binary", "epochs": "2"},
        fmt="parquet",
        schema=None,
    )
    assert code == 0, failure
    schema = json.loads((tmp_path / "model" / "schema.json").read_text())
    assert schema["label"]["name"] == "churned"
    assert json.loads((tmp_path / "model" / "metrics.json").read_text())["n_rows"] == 180  # 20% held out


def test_lineage_records_what_the_pipeline_passes_in(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("MLOPS_GIT_DIRTY", "false")
    monkeypatch.setenv("MLOPS_STACK", "dev")
    monkeypatch.setenv("MLOPS_IMAGE_URI", "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops@sha256:" + "ab" * 32)
    manifest = {"objects": [{"uri": "s3://mlops-dev-data/churn/train.csv", "versionId": "v1", "sha256": "cd" * 32}]}
    code, failure = _train(
        tmp_path,
        make_synthetic(600, seed=1),
        make_synthetic(200, seed=2),
        {"epochs": "1", "seed": "9"},
        manifest=manifest,
        schema=CHURN,
    )
    assert code == 0, failure
    record = json.loads((tmp_path / "model" / "lineage.json").read_text())
    assert record["git"] == {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False}
    assert record["stack"] == "dev" and record["image_uri"].endswith("ab" * 32)
    assert record["data"]["manifest"] == manifest
    assert record["seed"] == 9 and record["hyperparameters"]["epochs"] == 1
    train_files = record["data"]["files"]["train"]
    assert [f["path"] for f in train_files] == ["part-00000.csv"] and len(train_files[0]["sha256"]) == 64
    import hashlib

    digest = hashlib.sha256((tmp_path / "model" / "model.pt").read_bytes()).hexdigest()
    assert record["model_files"]["model.pt"] == digest
    assert record["libraries"]["torch"] == torch.__version__.split("+")[0] or record["libraries"]["torch"].startswith(
        torch.__version__.split("+")[0]
    )


def _no_train_channel(base):
    make_base_dir(base, make_synthetic(100, seed=1), None, FAST, schema=CHURN)
    import shutil

    shutil.rmtree(base / "input" / "data" / "train")


def _bad_json(base):
    make_base_dir(base, make_synthetic(100, seed=1), None, FAST, schema=CHURN)
    (base / "input" / "config" / "hyperparameters.json").write_text("{epochs: 3")


def _pipe_mode(base):
    make_base_dir(base, make_synthetic(100, seed=1), None, FAST, schema=CHURN)
    (base / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({"train": {"TrainingInputMode": "Pipe"}})
    )


def _bad_data(base):
    frame = make_synthetic(300, seed=1)
    frame.loc[4, "age"] = 7
    make_base_dir(base, frame.drop(columns=["region"]), None, FAST, schema=CHURN)


def _bad_hp(base):
    make_base_dir(base, make_synthetic(300, seed=1), None, {**FAST, "epochs": "many", "model": "svm!"}, schema=CHURN)


def _unknown_model(base):
    make_base_dir(base, make_synthetic(300, seed=1), None, {**FAST, "model": "svm"}, schema=CHURN)


def _no_schema(base):
    make_base_dir(base, make_synthetic(300, seed=1), None, FAST)


FAILURES = [
    (
        "bad hyperparameters",
        _bad_hp,
        ["epochs: 'many' is not allowed", "model: 'svm!' is not allowed; expected a model family name"],
    ),
    ("unknown model", _unknown_model, ["model 'svm' is not registered", "mlp", "package.module:factory"]),
    ("no schema, no label", _no_schema, ["label and task not set", "schema.json"]),
    ("bad data", _bad_data, ["training data", "region", "column is missing", "age", "below the minimum 18"]),
    ("no train channel", _no_train_channel, ["channel 'train' is missing"]),
    ("malformed config", _bad_json, ["hyperparameters.json: hyperparameters is not valid JSON"]),
    ("pipe mode", _pipe_mode, ["TrainingInputMode: 'Pipe' is not supported"]),
]


@pytest.mark.parametrize("case, prepare, words", FAILURES, ids=[f[0] for f in FAILURES])
def test_failures_write_the_reason_and_train_nothing(tmp_path, case, prepare, words):
    prepare(tmp_path)
    assert main(["--base-dir", str(tmp_path)]) == 1
    reason = (tmp_path / "output" / "failure").read_text()
    for word in words:
        assert word in reason, reason
    assert not (tmp_path / "model" / "model.pt").exists()
    assert "Traceback" not in reason


def test_script_mode_exits_non_zero_with_the_failure_file(tmp_path):
    _bad_data(tmp_path)
    result = run_train_subprocess(tmp_path)
    assert result.returncode == 1
    assert "region" in (tmp_path / "output" / "failure").read_text()
    report = json.loads((tmp_path / "output" / "data" / "validation.json").read_text())
    assert report["train"]["ok"] is False
