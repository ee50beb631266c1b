"""Run records and evaluation reports as typed objects: what the writers write reads back, and writes back,
byte for byte; a malformed one is refused with its fields named."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from ci.steps.datasets import Manifest
from ci.steps.training import apply_description, metric_definitions, new_run_record
from kernel.records import EvaluationReport, RecordError, RunRecord

PLAN = SimpleNamespace(
    model="churn",
    stack="dev",
    instance_type="ml.m5.xlarge",
    image_uri="1234.dkr.ecr.eu-west-1.amazonaws.com/mlops-dev:abc",
    image_digest="sha256:" + "0" * 64,
    pinned_image="1234.dkr.ecr.eu-west-1.amazonaws.com/mlops-dev@sha256:" + "0" * 64,
    image_source="project",
    hyperparameters={"model": "gbdt", "epochs": "3"},
    use_spot=True,
    output_s3_uri="s3://mlops-dev-artifacts/training-output",
    checkpoint_s3_uri="s3://mlops-dev-artifacts/checkpoints",
    metric_definitions=metric_definitions(),
)
MANIFEST = Manifest(
    "s3://mlops-dev-data/churn/",
    "abc123",
    "2026-11-29T10:00:00+00:00",
    [{"split": "train", "uri": "s3://mlops-dev-data/churn/train/a.csv", "versionId": "v1", "sha256": "ab" * 32}],
)


def _bytes(document: dict) -> bytes:
    return json.dumps(document).encode()  # insertion order, no sorting: the strictest comparison


def test_the_run_record_train_writes_round_trips_byte_for_byte():
    started = new_run_record(
        PLAN, "mlops-dev-churn-1", "sagemaker", MANIFEST, {"commit": "0123abc", "dirty": False}, None
    )
    assert _bytes(RunRecord.from_dict(started).to_dict()) == _bytes(started)
    finished = apply_description(
        started,
        {
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": started["modelDataUrl"]},
            "FinalMetricDataList": [{"MetricName": "val_roc_auc", "Value": 0.81}],
            "BillableTimeInSeconds": 42,
        },
    )
    finished["streamedMetrics"] = {"val_loss": [0.5, float("nan")]}  # keys later steps add stay, in their place
    run = RunRecord.from_dict(finished)
    assert _bytes(run.to_dict()) == _bytes(finished)
    assert (run.status, run.metrics, run.seed) == ("Completed", {"val_roc_auc": 0.81}, None)


def test_a_sparse_record_writes_back_only_what_it_has():
    """The shape tests/ci/ci_registration_kit.py arranges: no image, no spot, no finishedAt. Its keys are
    not in the writer's order (git before dataset): the fields come back in declaration order, and
    byte for byte as `s3.put_json` stores documents (keys sorted)."""
    raw = {
        "job": "mlops-dev-churn-60",
        "mode": "local",
        "model": "churn",
        "stack": "dev",
        "status": "Completed",
        "failureReason": "",
        "modelDataUrl": "s3://b/training-output/mlops-dev-churn-60/output/model.tar.gz",
        "hyperparameters": {"model": "gbdt"},
        "seed": 1,
        "git": {"commit": "0123456789abcdef", "dirty": False},
        "dataset": {"uri": "s3://b/data/churn/", "sha256": "ab" * 32},
        "metrics": {"roc_auc": 0.8},
        "startedAt": "2026-11-29T10:00:00+00:00",
    }
    run = RunRecord.from_dict(raw)
    assert json.dumps(run.to_dict(), sort_keys=True) == json.dumps(raw, sort_keys=True)
    assert run.pinnedImage is None and run.finishedAt is None


def test_the_evaluation_report_round_trips_with_its_task_keyed_section():
    report = {
        "job": "mlops-dev-churn-1",
        "model": "churn",
        "stack": "dev",
        "modelDataUrl": "s3://a/training-output/mlops-dev-churn-1/output/model.tar.gz",
        "evaluatedAt": "2026-11-29T10:05:00+00:00",
        "testSet": {"dataset": "abc123", "split": "test", "objects": [], "rows": 200},
        "candidate": {"metrics": {"roc_auc": 0.81, "rows": 200}},
        "champion": None,
        "baseline": {"family": "linear", "skipped": "the data set has no train split"},
        "gate": {
            "metric": "roc_auc",
            "margin": 0,
            "minimums": {"roc_auc": 0.7},
            "passed": True,
            "reason": "roc_auc 0.81 >= 0.70",
            "candidate": 0.81,
            "champion": None,
            "higher_is_better": True,
            "failures": [],
        },
        "binary_classification_metrics": {"roc_auc": {"value": 0.81, "standard_deviation": "NaN"}},
        "reportUri": "s3://a/evaluations/mlops-dev-churn-1/evaluation.json",
        "reportVersionId": "v1",
    }
    parsed = EvaluationReport.from_dict(report)
    assert _bytes(parsed.to_dict()) == _bytes(report)
    assert (parsed.gate.passed, parsed.uri, parsed.candidate_metrics["roc_auc"]) == (True, report["reportUri"], 0.81)


def test_a_malformed_run_record_is_refused_naming_its_fields():
    raw = {"job": "j", "model": "churn", "seed": "1", "status": "Completed"}
    with pytest.raises(RecordError) as caught:
        RunRecord.from_dict(raw, "s3://a/runs/j/run.json")
    assert str(caught.value) == (
        "run record s3://a/runs/j/run.json is malformed: modelDataUrl: Field required; "
        "seed: Input should be a valid integer"
    )


def test_a_report_without_a_verdict_is_refused():
    with pytest.raises(RecordError, match=r"^evaluation report is malformed: gate\.passed: Field required$"):
        EvaluationReport.from_dict({"gate": {"reason": "?"}, "candidate": {"metrics": {}}})


def test_the_cli_reports_a_malformed_record_as_a_usage_error():
    """Read from S3, a malformed record is the user's to mend (exit 2, fields named), not a traceback."""
    from ci.aws.s3 import as_record
    from ci.errors import UsageError

    with pytest.raises(UsageError, match=r"^run record s3://a/runs/j/run\.json is malformed: job: Field required"):
        as_record(RunRecord, {"model": "churn", "modelDataUrl": "s3://a/m.tar.gz"}, "s3://a/runs/j/run.json")
