"""`evaluate_run` removes its temporary folder (models, data) on every way out; it was never removed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ci.steps import evaluation
from ci.steps.evaluation import evaluate_run
from kernel.records import RunRecord
from kernel.stack_config import GateConfig


class _Session:
    def client(self, name):
        return object()


@pytest.mark.parametrize("failure", [RuntimeError("download failed"), KeyboardInterrupt()])
def test_the_temporary_folder_goes_however_evaluation_ends(tmp_path, monkeypatch, failure):
    made = []

    def mkdtemp(prefix=""):
        path = tmp_path / f"{prefix}{len(made)}"
        path.mkdir()
        made.append(path)
        return str(path)

    def fetch_model(s3, uri, dest, package=None):
        dest.mkdir(parents=True)
        (dest / "model.pt").write_bytes(b"weights")
        raise failure

    monkeypatch.setattr(evaluation.tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(evaluation, "fetch_model", fetch_model)
    monkeypatch.setattr(evaluation.registry, "find_by_training_job", lambda *args, **kwargs: None)  # not registered
    outputs = SimpleNamespace(modelPackageGroups={"churn": "churn-dev"}, stackName="dev")
    run = RunRecord.from_dict(
        {
            "job": "j",
            "model": "churn",
            "status": "Completed",
            "modelDataUrl": "s3://b/j/output/model.tar.gz",
            "dataset": {"uri": "s3://d/", "id": "abc", "created": "2026-11-29", "objects": []},
        }
    )
    gate = GateConfig(metric="roc_auc", minImprovement=0.0, minimums={})
    with pytest.raises(type(failure)):
        evaluate_run(_Session(), outputs, run, gate)
    assert made and not any(path.exists() for path in made)
