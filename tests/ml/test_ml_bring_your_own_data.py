"""Bring your own data: scikit-learn's bundled binary, multiclass and regression data sets go
through the container contract with only the `label` and `task` hyperparameters (no schema.json),
then are evaluated, served through ml.serve's InferenceService in-process, and drift-checked.
The schema training infers is saved with the model, and every later reader uses it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from ml_testkit import FAST, make_base_dir

from ml.data import load_sklearn_dataset
from ml.drift import PREDICTED_VALUE, drift_report
from ml.evaluate import evaluate
from ml.serve import InferenceService, load_model
from ml.train import main

CASES = [  # data set, task, family, a floor on the main metric
    ("breast_cancer", "binary", "mlp", ("roc_auc", 0.95)),
    ("iris", "multiclass", "mlp", ("accuracy", 0.8)),
    ("diabetes", "regression", "mlp", ("r2", 0.2)),
]


def _train(tmp_path, name: str, task: str, family: str, **hp):
    frame, _ = load_sklearn_dataset(name)
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    cut = int(len(frame) * 0.75)
    train, valid = frame[:cut].reset_index(drop=True), frame[cut:].reset_index(drop=True)
    settings = {**FAST, "label": "label", "task": task, "model": family, "epochs": "3", "batch_size": "32"}
    make_base_dir(tmp_path, train, valid, {**settings, "lr": "0.01", "min_rows": "20", "model_card": "true", **hp})
    assert not (tmp_path / "input" / "data" / "train" / "schema.json").exists()
    assert main(["--base-dir", str(tmp_path)]) == 0, (tmp_path / "output" / "failure").read_text()
    return tmp_path / "model", train, valid


@pytest.mark.parametrize("name, task, family, floor", CASES, ids=[c[1] for c in CASES])
def test_train_evaluate_serve_and_drift_check(tmp_path, name, task, family, floor):
    model_dir, train, valid = _train(tmp_path, name, task, family)
    schema = json.loads((model_dir / "schema.json").read_text())
    assert schema["task"] == task and schema["label"]["name"] == "label"

    # evaluate: the numbers training wrote, from the saved model
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert evaluate(model_dir, valid) == pytest.approx(metrics)
    assert metrics[floor[0]] >= floor[1], metrics

    # serve: one answer per row, a class of a classifier, a number of a regression
    service = InferenceService(load_model(model_dir))
    rows = valid.drop(columns="label")
    body = json.dumps({"instances": rows.to_dict(orient="records")}).encode()
    status, payload, kind = service.invoke(body, "application/json", None, {})
    assert status == 200 and kind == "application/json", payload
    predictions = json.loads(payload)["predictions"]
    assert len(predictions) == len(valid)
    csv_body = "\n".join(",".join(repr(v) for v in r) for r in rows.itertuples(index=False)).encode()
    status, csv_out, kind = service.invoke(csv_body, "text/csv", "text/csv", {})
    assert status == 200 and kind == "text/csv" and len(csv_out.decode().splitlines()) == len(valid)
    if task == "regression":
        values = np.array([p["value"] for p in predictions])
        assert np.isfinite(values).all() and values.std() > 0
        assert [float(line) for line in csv_out.decode().splitlines()] == pytest.approx(values.tolist())
        evaluation = json.loads((model_dir / "evaluation.json").read_text())
        assert len(evaluation["residuals"]["actual"]) == len(valid)
        card = (model_dir / "model_card.html").read_text()
        assert "Predicted vs actual" in card and "Residuals" in card and "RMSE" in card
    else:
        classes = set(json.loads((model_dir / "model.json").read_text())["classes"])
        assert {p["label"] for p in predictions} <= classes
        assert all(sum(p["probabilities"].values()) == pytest.approx(1, abs=1e-4) for p in predictions)

    # drift: the training rows are no drift; the same rows moved by two standard deviations are
    baseline = json.loads((model_dir / "baseline.json").read_text())
    assert baseline["schema"] == schema
    same = drift_report(baseline, train)
    assert same.enough_data and not same.drifted, same.to_text()
    moved = train.copy()
    first = rows.columns[0]
    moved[first] = moved[first] + 2 * moved[first].std()
    shifted = drift_report(baseline, moved)
    assert shifted.drifted and first in shifted.features_drifted, shifted.to_text()


def test_regression_predictions_drift_too(tmp_path):
    """The baseline holds the predicted values; served predictions that moved are prediction drift."""
    model_dir, train, _ = _train(tmp_path, "diabetes", "regression", "linear", epochs="10")
    baseline = json.loads((model_dir / "baseline.json").read_text())
    assert baseline["prediction"]["type"] == "numeric" and baseline["prediction"]["column"] == PREDICTED_VALUE
    model = load_model(model_dir)
    served = train.assign(**{PREDICTED_VALUE: model.predict_values(train)})
    assert not drift_report(baseline, served).prediction["drifted"]
    pushed = served.assign(**{PREDICTED_VALUE: served[PREDICTED_VALUE] + 2 * served[PREDICTED_VALUE].std()})
    report = drift_report(baseline, pushed)
    assert report.prediction["drifted"] and report.drifted


def test_a_continuous_target_is_not_hundreds_of_classes(tmp_path):
    """Before: diabetes' 214 distinct targets became 214 one-row 'classes'. Now the task says
    regression and the model predicts a number; asked for a classification, it refuses clearly."""
    model_dir, _, _ = _train(tmp_path / "ok", "diabetes", "regression", "gbdt", gbdt_max_iter="20")
    assert json.loads((model_dir / "model.json").read_text())["classes"] == []
    frame, _ = load_sklearn_dataset("diabetes")
    make_base_dir(tmp_path / "bad", frame, None, {**FAST, "label": "label", "task": "binary"})
    assert main(["--base-dir", str(tmp_path / "bad")]) == 1
    reason = (tmp_path / "bad" / "output" / "failure").read_text()
    assert "task binary needs exactly two classes" in reason and "task=regression" in reason


def test_codes_keep_their_spelling_from_training_to_serving_and_drift(tmp_path):
    """A column of codes such as "01", "02", "10" is text to every reader: inferred as a category
    from the train channel, saved in the model's schema, parsed as text when serving (CSV) and
    when checking drift."""
    rng = np.random.default_rng(0)
    n = 400
    region = rng.choice(["01", "02", "10"], size=n)
    x = rng.normal(size=n)
    label = ((region == "01") ^ (x > 0)).astype(int)
    frame = pd.DataFrame({"region": region, "x": x, "label": label})
    make_base_dir(tmp_path, frame[:300], frame[300:], {**FAST, "label": "label", "task": "binary", "epochs": "2"})
    assert main(["--base-dir", str(tmp_path)]) == 0, (tmp_path / "output" / "failure").read_text()
    schema = json.loads((tmp_path / "model" / "schema.json").read_text())
    region_feature = next(f for f in schema["features"] if f["name"] == "region")
    assert region_feature["type"] == "categorical" and region_feature["categories"] == ["01", "02", "10"]

    model = load_model(tmp_path / "model")
    assert model.preprocessor.vocab == [["01", "02", "10"]]
    status, _, _ = InferenceService(model).invoke(b"01,0.5\n10,-0.5\n", "text/csv", None, {})
    assert status == 200
    columns = {"region": np.array(["01", "10"], dtype=object), "x": np.array([0.5, -0.5])}
    assert model.preprocessor.codes(columns).tolist() == [[1], [3]]  # known categories, not "unknown"

    from ci.cli import main as mlops

    frame[300:].to_csv(tmp_path / "fresh.csv", index=False)
    assert mlops(["drift", "--baseline", str(tmp_path / "model"), "--data", str(tmp_path / "fresh.csv"), "--json"]) == 0


def test_a_schema_json_wins_and_contradicting_hyperparameters_are_refused(tmp_path):
    frame, schema = load_sklearn_dataset("iris")
    make_base_dir(tmp_path, frame, None, {**FAST, "label": "species", "min_rows": "20"}, schema=schema.to_dict())
    assert main(["--base-dir", str(tmp_path)]) == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert "label='species' disagrees with schema.json, whose label is 'label'" in reason
