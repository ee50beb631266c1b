"""Models as plug-ins: a torch module or scikit-learn estimator defined outside ml/ (here in
tests/ml/plugins/) is named by the `model` hyperparameter and trains without editing ml/; a torch
one on the same DDP path (two gloo processes on this CPU). The built-in families beyond the MLP
(ft_transformer, linear) train the same way, and nothing in ml/ branches on a model's name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from ml_testkit import FAST, REPO, make_base_dir, run_train_subprocess

from ml.data import load_sklearn_dataset, split
from ml.families import ModelPluginError, ModelSpec, kind_of, resolve
from ml.serve import InferenceService, load_model
from ml.train import main

PLUGINS = str(Path(__file__).parent)


def _dataset(name: str, rows: int | None = None):
    frame, schema = load_sklearn_dataset(name)
    frame = frame.sample(n=rows or len(frame), random_state=0).reset_index(drop=True)
    if schema.is_regression:
        cut = int(len(frame) * 0.8)
        return frame[:cut].reset_index(drop=True), frame[cut:].reset_index(drop=True), schema
    train, valid = split(frame, "label", 0.2, seed=0)
    return train, valid, schema


def _predict_json(model_dir: Path, rows) -> list[dict]:
    service = InferenceService(load_model(model_dir))
    body = json.dumps({"instances": rows.drop(columns="label").to_dict(orient="records")}).encode()
    status, payload, _ = service.invoke(body, "application/json", None, {})
    assert status == 200, payload
    return json.loads(payload)["predictions"]


def test_a_torch_model_from_outside_ml_trains_on_the_ddp_path(tmp_path):
    train, valid, _ = _dataset("breast_cancer", rows=300)
    hp = {**FAST, "model": "plugins.conv:build", "model_options": '{"channels": 4}', "label": "label"}
    base = make_base_dir(tmp_path, train, valid, {**hp, "task": "binary", "epochs": "2", "patience": "0"})
    result = run_train_subprocess(base, timeout=180, MLOPS_PROCS_PER_HOST="2", PYTHONPATH=f"{REPO}:{PLUGINS}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "starting 2 worker processes" in result.stdout and "on cpu x2" in result.stdout
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["factory"] == "plugins.conv:build" and meta["kind"] == "torch"
    assert meta["architecture"]["class"] == "TabularConv"
    assert json.loads((tmp_path / "model" / "lineage.json").read_text())["training"]["world_size"] == 2
    # served in-process from its own directory: the factory is rebuilt with the same options
    model = load_model(tmp_path / "model")
    assert model.estimator.conv[0].out_channels == 4
    predictions = _predict_json(tmp_path / "model", valid.head(5))
    assert [p["label"] for p in predictions] and {p["label"] for p in predictions} <= {0, 1}


def test_a_scikit_learn_estimator_from_outside_ml_trains_and_serves(tmp_path):
    train, valid, _ = _dataset("diabetes")
    hp = {**FAST, "model": "plugins.ridge:build", "model_options": '{"alpha": 0.5}', "label": "label"}
    make_base_dir(tmp_path, train, valid, {**hp, "task": "regression"})
    assert main(["--base-dir", str(tmp_path)]) == 0, (tmp_path / "output" / "failure").read_text()
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["kind"] == "sklearn" and meta["architecture"]["class"] == "Pipeline"
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["r2"] > 0.3, metrics
    assert all(isinstance(p["value"], float) for p in _predict_json(tmp_path / "model", valid.head(3)))


@pytest.mark.parametrize("family", ["ft_transformer", "linear"])
def test_built_in_families_beyond_the_mlp_train(tmp_path, family):
    train, valid, _ = _dataset("iris")
    hp = {**FAST, "model": family, "label": "label", "task": "multiclass", "epochs": "30", "batch_size": "16"}
    make_base_dir(tmp_path, train, valid, {**hp, "lr": "0.01", "min_rows": "20"})
    assert main(["--base-dir", str(tmp_path)]) == 0, (tmp_path / "output" / "failure").read_text()
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.8, metrics
    assert json.loads((tmp_path / "model" / "model.json").read_text())["factory"] == f"ml.families:{family}"


def test_factories_say_what_they_make_and_bad_names_are_clear():
    assert resolve("mlp").kind == "torch" and resolve("gbdt").kind == "sklearn"
    assert resolve("plugins.ridge:build").kind == "sklearn" and resolve("plugins.conv:build").kind == "torch"
    assert kind_of(torch.nn.Linear, "x") == "torch"

    def unannotated(spec):
        return torch.nn.Linear(1, 1)

    with pytest.raises(ModelPluginError, match="annotate the factory's return type"):
        kind_of(unannotated, "mine")
    with pytest.raises(ModelPluginError, match=r"cannot import 'no_such_package\.models'"):
        resolve("no_such_package.models:build")
    with pytest.raises(ModelPluginError, match="has no attribute 'missing'"):
        resolve("plugins.conv:missing")
    spec = ModelSpec(n_numeric=3, cardinalities=[2], n_outputs=2, task="binary")
    with pytest.raises(ModelPluginError, match="unexpected keyword argument"):
        resolve("plugins.conv:build").build(spec, {"nonsense": 1})


def test_nothing_in_ml_branches_on_a_model_name():
    """GPU use, the worker launch, saving and loading follow a factory's kind, never its name."""
    for path in (REPO / "ml").glob("*.py"):
        if path.name == "families.py":  # the registry itself names the built-ins
            continue
        text = path.read_text()
        assert not re.search(r"""(==|!=|\bin\b)\s*\(?["'](mlp|gbdt|ft_transformer|linear)["']""", text), path.name
