"""Model files hold no executable format, and the serving loader checks their digests first.

A swapped model file must not run code: pickles (joblib) are refused before they are opened,
scikit-learn estimators load through skops with a named list of trusted types, and ml.serve's
loader compares every file with the SHA-256 recorded for it before loading anything.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from ml.families import ModelSpec, resolve, sklearn_model
from ml.lineage import ENV_MODEL_DIGEST, LINEAGE_FILE, ModelIntegrityError
from ml.model import ModelLoadError, ModelSaveError, Preprocessor, load_model, save_model
from ml.schema import Schema
from ml.serve import load_model as serve_load_model


class _RunsCode:
    """A pickle that would create a file when unpickled: proof that nothing unpickles it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


def test_models_are_saved_without_pickles(mlp_model_dir, gbdt_model_dir):
    for directory in (mlp_model_dir, gbdt_model_dir):
        names = {p.name for p in directory.iterdir()}
        assert not {n for n in names if n.endswith((".joblib", ".pkl", ".pickle"))}
        assert "preprocess.json" in names
        json.loads((directory / "preprocess.json").read_text())
    assert (gbdt_model_dir / "model.skops").is_file()


def test_a_pickle_is_refused_before_it_is_opened(mlp_model_dir, tmp_path):
    model_dir = _copy(mlp_model_dir, tmp_path)
    marker = tmp_path / "code-ran"
    (model_dir / "preprocess.joblib").write_bytes(pickle.dumps(_RunsCode(marker)))
    meta = json.loads((model_dir / "model.json").read_text())
    (model_dir / "model.json").write_text(json.dumps({**meta, "preprocess": "preprocess.joblib"}))
    with pytest.raises(ModelLoadError, match=r"preprocess\.joblib: a pickle \(joblib\) file.*refused"):
        load_model(model_dir)
    assert not marker.exists()


@sklearn_model
def _untrusted_plugin(spec: ModelSpec):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=3)


def _fitted(tmp_path: Path, reference: str):
    family = resolve(reference)
    rng = np.random.default_rng(0)
    frame_x, y = rng.normal(size=(60, 2)), rng.normal(size=60)
    estimator = family.build(ModelSpec(2, [], 1, "regression")).fit(frame_x, y)
    schema = Schema.from_dict(
        {
            "label": "y",
            "task": "regression",
            "features": [{"name": "a", "type": "numeric"}, {"name": "b", "type": "numeric"}],
        }
    )
    pre = Preprocessor(["a", "b"], np.zeros(2), np.ones(2), [], [])
    return family, estimator, pre, schema


def test_a_plugin_estimator_with_unlisted_types_is_refused_clearly(tmp_path):
    family, estimator, pre, schema = _fitted(tmp_path, f"{__name__}:_untrusted_plugin")
    with pytest.raises(ModelSaveError, match=r"TreePredictor.*trusted_types"):
        save_model(tmp_path / "m", family, estimator, pre, schema, [], spec=ModelSpec(2, [], 1, "regression"))


def test_skops_loading_trusts_only_the_listed_types(tmp_path):
    family, estimator, pre, schema = _fitted(tmp_path, "gbdt")
    save_model(tmp_path / "m", family, estimator, pre, schema, [], spec=ModelSpec(2, [], 1, "regression"))
    assert load_model(tmp_path / "m").predict_values({"a": [0.1], "b": [0.2]}).shape == (1,)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    (tmp_path / "m" / "model.json").write_text(json.dumps({**meta, "factory": f"{__name__}:_untrusted_plugin"}))
    with pytest.raises(ModelLoadError, match="untrusted types"):
        load_model(tmp_path / "m")


def test_serving_refuses_a_file_changed_after_training(mlp_model_dir, tmp_path, monkeypatch):
    model_dir = _copy(mlp_model_dir, tmp_path)
    monkeypatch.setenv(ENV_MODEL_DIGEST, hashlib.sha256((model_dir / LINEAGE_FILE).read_bytes()).hexdigest())
    assert serve_load_model(model_dir).classes
    recorded = hashlib.sha256((model_dir / "model.pt").read_bytes()).hexdigest()
    (model_dir / "model.pt").write_bytes((model_dir / "model.pt").read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match=rf"model\.pt: SHA-256 [0-9a-f]{{64}}, expected {recorded}"):
        serve_load_model(model_dir)


def test_serving_refuses_a_rewritten_lineage_record(mlp_model_dir, tmp_path, monkeypatch):
    """Swapping a file and its digest in lineage.json together is caught by the digest of
    lineage.json that registration put on the package's container."""
    model_dir = _copy(mlp_model_dir, tmp_path)
    monkeypatch.setenv(ENV_MODEL_DIGEST, hashlib.sha256((model_dir / LINEAGE_FILE).read_bytes()).hexdigest())
    record = json.loads((model_dir / LINEAGE_FILE).read_text())
    (model_dir / "schema.json").write_text((model_dir / "schema.json").read_text() + " ")
    record["model_files"]["schema.json"] = hashlib.sha256((model_dir / "schema.json").read_bytes()).hexdigest()
    (model_dir / LINEAGE_FILE).write_text(json.dumps(record))
    with pytest.raises(ModelIntegrityError, match=r"lineage\.json: SHA-256 .*MLOPS_MODEL_LINEAGE_SHA256"):
        serve_load_model(model_dir)


def test_the_serving_container_does_not_start_on_a_changed_file(mlp_model_dir, tmp_path, monkeypatch, capsys):
    from ml.serve import main

    model_dir = _copy(mlp_model_dir, tmp_path)
    monkeypatch.setenv(ENV_MODEL_DIGEST, hashlib.sha256((model_dir / LINEAGE_FILE).read_bytes()).hexdigest())
    (model_dir / "preprocess.json").write_text("{}")
    assert main(["--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", "0"]) == 2
    assert "cannot load the model: preprocess.json: SHA-256" in capsys.readouterr().err
