"""Lineage records and their SageMaker metadata form; the model card; the container's isolation."""

from __future__ import annotations

import ast
import base64
import json
import re

from ml_testkit import REPO

from ml.lineage import build_record, customer_metadata, hash_files, metadata_text

ALLOWED = re.compile(r"^[\w\s.:/=+\-@]*$", re.UNICODE)


def test_record_takes_git_stack_and_image_from_the_environment(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    env = {
        "MLOPS_GIT_COMMIT": "abc123",
        "MLOPS_GIT_DIRTY": "1",
        "MLOPS_STACK": "staging",
        "MLOPS_IMAGE_URI": "repo@sha256:00",
        "TRAINING_JOB_NAME": "churn-42",
    }
    record = build_record(
        hyperparameters={"epochs": 3}, seed=1, data_files={"train": hash_files(tmp_path)}, environ=env
    )
    assert record["git"] == {"commit": "abc123", "dirty": True}
    assert (record["stack"], record["image_uri"], record["training_job"]["name"]) == (
        "staging",
        "repo@sha256:00",
        "churn-42",
    )
    import hashlib

    assert record["data"]["files"]["train"] == [
        {"path": "a.csv", "bytes": 4, "sha256": hashlib.sha256(b"x\n1\n").hexdigest()}
    ]
    unknown = build_record(hyperparameters={}, seed=0, data_files={}, environ={})
    assert unknown["git"] == {"commit": None, "dirty": None} and unknown["stack"] is None


def test_customer_metadata_fits_sagemakers_limits():
    record = build_record(
        hyperparameters={
            "hidden_sizes": [128, 64],
            "model": "mlp",
            "note": "x" * 400,
            **{f"p{i}": i for i in range(60)},
        },
        seed=7,
        data_files={"train": [{"path": "a.csv", "bytes": 1, "sha256": "0" * 64}]},
        data_manifest={"objects": [{"uri": "s3://b/k.csv", "versionId": "v{1}", "sha256": "f" * 64}]},
        environ={"MLOPS_GIT_COMMIT": "abc", "MLOPS_GIT_DIRTY": "false"},
    )
    flat = customer_metadata(record)
    assert 0 < len(flat) <= 50
    for key, value in flat.items():
        assert 0 < len(key) <= 128 and ALLOWED.match(key), key
        assert 0 < len(value) <= 256 and ALLOWED.match(value), (key, value)
    assert flat["git.commit"] == "abc" and flat["git.dirty"] == "false" and flat["seed"] == "7"
    assert flat["hp.hidden_sizes"] == "128/64"
    assert flat["hp.note"].endswith("...") and len(flat["hp.note"]) == 256
    assert len(flat["lineage.sha256"]) == 64 and len(flat["data.sha256"]) == 64
    assert metadata_text({"a": [1, 2], "b": "c,d"}) == "a=1/2 b=c_d"


def test_model_card_shows_plots_metrics_and_lineage(mlp_model_dir):
    page = (mlp_model_dir / "model_card.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4  # curves, confusion matrix, calibration, importance
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((mlp_model_dir / "metrics.json").read_text())
    assert f"{metrics['roc_auc']:.4f}" in page
    for words in ("Lineage", "Data files", "Hyperparameters", "part-00000.csv", "tenure_months", "What drives it"):
        assert words in page, words


def test_model_card_can_be_rebuilt_from_the_directory(mlp_model_dir, tmp_path):
    import shutil

    from ml.card import write_card

    copy = tmp_path / "model"
    shutil.copytree(mlp_model_dir, copy)
    (copy / "model_card.html").unlink()
    assert write_card(copy).read_text() == (mlp_model_dir / "model_card.html").read_text()


def test_ml_imports_nothing_outside_ml_and_no_aws_sdk():
    """The training container receives ml/ alone: no imports of our other packages, no boto3."""
    forbidden = {"boto3", "botocore", "sagemaker", "infra", "ci", "policies", "pulumi", "pulumi_aws"}
    for path in sorted((REPO / "ml").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def test_the_ml_folder_works_under_another_name(tmp_path):
    """SageMaker script mode unpacks the code to /opt/ml/code: the entry point must not need
    the folder to be called `ml`, nor anything else of ours on the path."""
    import shutil
    import subprocess
    import sys

    from ml_testkit import CHURN, FAST, make_base_dir, subprocess_env

    from ml.data import make_synthetic

    code = tmp_path / "code"
    shutil.copytree(REPO / "ml", code, ignore=shutil.ignore_patterns("__pycache__"))
    base = make_base_dir(
        tmp_path / "opt_ml",
        make_synthetic(300, seed=1),
        None,
        {**FAST, "model": "gbdt", "gbdt_max_iter": "5"},
        schema=CHURN,
    )
    env = subprocess_env()
    env.pop("PYTHONPATH")
    result = subprocess.run(
        [sys.executable, str(code / "train.py"), "--base-dir", str(base)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (base / "model" / "model.skops").is_file()
