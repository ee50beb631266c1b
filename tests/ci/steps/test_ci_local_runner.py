"""`mlops train --local`: the container contract here, model.tar.gz where SageMaker would put it,
served by ml/serve.py; and `mlops reproduce` from the package's lineage record."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from ci_testkit import QUICK_REPORT, hp

from ci.steps.container import CorruptArchiveError, container_env, prepare_tree, unpack_model

pytestmark = pytest.mark.moto_server

LOCAL_HP = hp("epochs=2", "checkpoint_every=1", *QUICK_REPORT)


def test_local_training_is_served_by_ml_serve_and_reproduces(emulator, stacks, mlops, boto, tmp_path):
    assert mlops("local", "up", "--stack", "local").code == 0
    result = mlops("train", "--stack", "local", "--local", "--synthetic", "800", *LOCAL_HP, "--json")
    assert result.code == 0, result
    run = result.json["run"]
    job = run["job"]
    assert run["mode"] == "local" and job.startswith("mlops-local-churn-local-")
    assert "metric val_loss=" in result.err  # metric lines streamed while it ran
    key = f"training-output/{job}/output/model.tar.gz"
    assert run["modelDataUrl"] == f"s3://mlops-local-artifacts-123456789012/{key}"
    s3 = boto("s3")
    archive = s3.get_object(Bucket="mlops-local-artifacts-123456789012", Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = set(tar.getnames())
    assert {"model.pt", "preprocess.json", "schema.json", "baseline.json", "metrics.json", "lineage.json"} <= names
    assert all("/" not in n for n in names)  # the model dir's contents at the archive root, as SageMaker tars it
    ckpt_prefix = run["checkpointS3Uri"][len("s3://mlops-local-artifacts-123456789012/") :]
    assert s3.list_objects_v2(Bucket="mlops-local-artifacts-123456789012", Prefix=ckpt_prefix).get("KeyCount", 0) > 0
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        lineage = json.loads(tar.extractfile("lineage.json").read())
    assert lineage["data"]["manifest"]["sha256"] == run["dataset"]["sha256"]  # the manifest reached the container

    # ml/serve.py loads the archive and serves it, as the inference container would
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(model_dir, filter="data")
    from ci.emulator.hosting import LocalEndpoint
    from ml.data import make_synthetic

    with LocalEndpoint(model_dir, tmp_path / "capture") as live:  # ml.serve.make_server on a free loopback port
        assert live.ping() == 200
        rows = make_synthetic(5, seed=1).drop(columns=["label"]).to_csv(index=False).encode()
        status, body = live.invoke(rows, "text/csv", "application/json")
        assert status == 200
        predictions = body["predictions"]
        assert len(predictions) == 5 and all(p["label"] in (0, 1, "0", "1") for p in predictions)
        bad_status, bad = live.invoke(b"not,the,schema\n1,2,3\n", "text/csv")
        assert bad_status == 400 and bad  # the container's contract: a clear 4xx, not a crash
    captured = list((tmp_path / "capture").rglob("*.jsonl"))
    assert captured and len(captured[0].read_text().splitlines()) == 1  # data capture, SageMaker's format

    # register it, then re-run training from its lineage record: same data versions, seed, hyperparameters
    assert mlops("evaluate", "--stack", "local", "--job", job).code == 0
    arn = mlops("register", "--stack", "local", "--job", job, "--json").json["package"]["arn"]
    again = mlops("reproduce", arn, "--local", "--json")
    assert again.code == 0, again
    assert again.json["match"] is True and again.json["rerunJob"] != job
    assert {"final_roc_auc", "val_loss"} <= set(again.json["metrics"])

    # a lineage record changed after registration is caught before anything runs
    lineage_key = f"training-output/{job}/lineage.json"
    record = json.loads(s3.get_object(Bucket="mlops-local-artifacts-123456789012", Key=lineage_key)["Body"].read())
    record["seed"] = 1
    s3.put_object(Bucket="mlops-local-artifacts-123456789012", Key=lineage_key, Body=json.dumps(record).encode())
    tampered = mlops("reproduce", arn, "--local")
    assert tampered.code == 1 and "does not match the SHA-256 on the package" in tampered.err


def test_the_container_tree_and_environment_follow_sagemaker(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,label\n1,0\n")
    base = tmp_path / "opt_ml"
    prepare_tree(base, {"epochs": 3, "lr": 0.1}, {"train": data}, data_manifest={"id": "x"})
    config = base / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text()) == {
        "epochs": "3",
        "lr": "0.1",
    }  # strings, as SageMaker gives them
    assert json.loads((config / "inputdataconfig.json").read_text())["train"]["TrainingInputMode"] == "File"
    assert json.loads((config / "resourceconfig.json").read_text())["hosts"] == ["algo-1"]
    assert json.loads((config / "data_manifest.json").read_text()) == {"id": "x"}
    assert (base / "input" / "data" / "train" / "data.csv").exists()
    env = container_env(base, {"epochs": "3"}, ["train"])
    assert env["SM_CHANNEL_TRAIN"] == str(base / "input" / "data" / "train")
    assert env["SM_MODEL_DIR"] == str(base / "model") and env["SM_CHECKPOINT_DIR"] == str(base / "checkpoints")
    assert json.loads(env["SM_HPS"]) == {"epochs": "3"} and env["SM_CURRENT_HOST"] == "algo-1"
    assert not any(k.startswith("AWS_") for k in env)  # the container sees no AWS credentials


def test_unpacking_refuses_corrupt_archives_and_escaping_paths(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(CorruptArchiveError, match="not a readable gzip tar"):
        unpack_model(bad, tmp_path / "out1")
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(CorruptArchiveError):
        unpack_model(evil, tmp_path / "out2")
    assert not (tmp_path / "escaped.txt").exists()
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(CorruptArchiveError, match=r"lacks schema\.json"):
        unpack_model(empty, tmp_path / "out3")
