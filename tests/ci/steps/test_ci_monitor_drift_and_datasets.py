"""`mlops monitor` decides drift as `mlops drift` and the alarm do (ml.drift): a handful of
captured rows is "not enough data" and publishes, notifies and retrains nothing; drifted traffic
publishes the score that decided, notifies and retrains. And a data set in either layout
(folders or flat files) uploads with its schema.json, where the training container looks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from ci.errors import UsageError
from ci.steps import datasets
from ci.steps import monitor as monitor_module
from ml.data import DEFAULT_SCHEMA, make_synthetic
from ml.drift import build_baseline, capture_record

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-prod/1"


class Recorder:
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def put_metric_data(self, **kwargs):
        self.calls.append(("metric", kwargs))

    def publish(self, **kwargs):
        self.calls.append(("notify", kwargs))
        return {"MessageId": "m-1"}


@pytest.fixture
def world(monkeypatch):
    """The deployed package, its baseline and the capture bucket, as plain fakes."""
    baseline = build_baseline(make_synthetic(3000, seed=1), DEFAULT_SCHEMA, sample=2000, seed=0)
    state = {"lines": [], "written": {}}
    recorder = Recorder()
    package = SimpleNamespace(arn=ARN, metadata={"mlops:baseline": "s3://art/baselines/churn.json"})
    monkeypatch.setattr(monitor_module.registry, "describe", lambda sm, arn: package)
    monkeypatch.setattr(monitor_module.s3util, "get_json", lambda s3, uri: baseline)
    monkeypatch.setattr(
        monitor_module.s3util,
        "list_objects",
        lambda s3, prefix: [{"Key": "churn/ep/AllTraffic/c.jsonl", "LastModified": datetime.now(UTC)}],
    )
    monkeypatch.setattr(monitor_module.s3util, "get_bytes", lambda s3, uri: "\n".join(state["lines"]).encode())
    monkeypatch.setattr(
        monitor_module.s3util, "put_json", lambda s3, uri, doc, key=None: state["written"].update({uri: doc})
    )
    session = SimpleNamespace(client=lambda name, **config: recorder)
    outputs = SimpleNamespace(
        endpoints={"churn": "ep"},
        approvedPackages={"churn": ARN},
        captureBucket="cap",
        artifactBucket="art",
        kmsKeyArn=None,
        stackName="prod",
        alertTopicArn="arn:aws:sns:us-east-1:123456789012:alerts",
        monitoring=SimpleNamespace(
            driftThreshold=0.2, driftNamespace="MLOps/Drift", driftMetricName="DriftScore", driftDimensions={}
        ),
    )
    return SimpleNamespace(session=session, outputs=outputs, state=state, recorder=recorder)


def _capture(frame) -> str:
    rows = frame.drop(columns="label")
    body = "\n".join(",".join(str(v) for v in r) for r in rows.itertuples(index=False)).encode()
    return json.dumps(capture_record(body, "text/csv", b'{"predictions": []}', "application/json", "e", "t"))


def test_six_drifted_rows_are_not_enough_data(world):
    """Before: PSI alone over 0.2 on six rows published an alarm-level score, notified and retrained."""
    world.state["lines"] = [_capture(make_synthetic(6, seed=5, drift=1.0))]
    retrained = []
    result = monitor_module.monitor(world.session, world.outputs, "churn", retrain=retrained.append)
    assert result["status"] == "not enough data" and result["rows"] == 6
    assert not result["drifted"] and result["metric"] is None
    assert world.recorder.calls == [] and retrained == []  # nothing published, notified or retrained
    assert next(iter(world.state["written"].values()))["status"] == "not enough data"  # the evidence is kept


def test_drifted_traffic_publishes_the_score_that_decided_notifies_and_retrains(world):
    world.state["lines"] = [_capture(make_synthetic(400, seed=6, drift=0.9))]
    retrained = []
    result = monitor_module.monitor(
        world.session, world.outputs, "churn", retrain=lambda package: retrained.append(package) or {"ok": True}
    )
    assert result["drifted"] and result["status"] == "drift" and result["score"] > 0.2
    published = next(c for kind, c in world.recorder.calls if kind == "metric")["MetricData"][0]
    assert published["Value"] == result["score"] and published["Dimensions"] == [
        {"Name": "EndpointName", "Value": "ep"}
    ]
    assert [kind for kind, _ in world.recorder.calls] == ["metric", "notify"] and len(retrained) == 1


def test_unchanged_traffic_publishes_a_quiet_score(world):
    world.state["lines"] = [_capture(make_synthetic(400, seed=7))]
    result = monitor_module.monitor(world.session, world.outputs, "churn", retrain=lambda p: pytest.fail("retrained"))
    assert result["status"] == "no drift" and not result["drifted"] and result["score"] <= 0.2
    assert [kind for kind, _ in world.recorder.calls] == ["metric"]


@pytest.fixture
def bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        s3.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
        yield s3


def _keys(manifest) -> set[str]:
    return {o["uri"].split(f"{manifest.id}/", 1)[1] for o in manifest.objects}


def test_the_flat_layout_uploads_its_schema_where_training_reads_it(bucket, tmp_path):
    """Before: train.csv validation.csv test.csv uploaded, schema.json left behind."""
    frame = make_synthetic(200, seed=1)
    frame[:120].to_csv(tmp_path / "train.csv", index=False)
    frame[120:].to_csv(tmp_path / "validation.csv", index=False)  # no test split: optional
    DEFAULT_SCHEMA.save(tmp_path / "schema.json")
    manifest = datasets.upload(bucket, "data", "churn", tmp_path)
    assert _keys(manifest) == {"train/train.csv", "train/schema.json", "validation/validation.csv"}
    stored = bucket.get_object(Bucket="data", Key=f"datasets/churn/{manifest.id}/train/schema.json")["Body"].read()
    assert json.loads(stored) == DEFAULT_SCHEMA.to_dict()


def test_the_folder_layout_reads_the_same_and_a_mixed_one_is_refused(bucket, tmp_path):
    frame = make_synthetic(200, seed=1)
    for split, part in (("train", frame[:120]), ("validation", frame[120:170]), ("test", frame[170:])):
        (tmp_path / split).mkdir()
        part.to_csv(tmp_path / split / "part-0.csv", index=False)
    DEFAULT_SCHEMA.save(tmp_path / "schema.json")  # at the top: it travels as train/schema.json
    manifest = datasets.upload(bucket, "data", "churn", tmp_path)
    assert _keys(manifest) == {"train/part-0.csv", "train/schema.json", "validation/part-0.csv", "test/part-0.csv"}
    frame.to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(UsageError, match="keep one layout"):
        datasets.find_split_files(tmp_path)


def test_the_gate_scores_the_test_split_or_says_it_used_validation():
    from ci.steps.evaluation import held_out_split

    objects = [{"split": "train", "uri": "s3://d/x/train/a.csv"}, {"split": "validation", "uri": "s3://d/x/v/a.csv"}]
    without = datasets.Manifest("s3://d/x/", "x", "now", objects)
    with_test = datasets.Manifest("s3://d/x/", "x", "now", [*objects, {"split": "test", "uri": "s3://d/x/t/a.csv"}])
    assert held_out_split(without) == "validation" and held_out_split(with_test) == "test"
