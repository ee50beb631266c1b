"""The happy path end to end, against moto's server with the SDK and a SageMaker stand-in:

data upload -> training job (ModelTrainer; status driven as SageMaker would) -> gate ->
register -> approve -> promote dev -> staging -> prod -> traffic with capture -> monitor
publishes drift exactly where the prod alarm looks -> notification in an SQS subscription of
the alert topic -> retraining on the newest data through the same gate.
"""

from __future__ import annotations

import datetime
import hashlib
import json

import pytest
from ci_testkit import FAST_HP, push_project_image, snapshot

pytestmark = pytest.mark.moto_server


def subscribe_queue(boto, topic_arn: str) -> str:
    sqs = boto("sqs")
    queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return queue_url


def receive(boto, queue_url: str) -> list[dict]:
    messages = (
        boto("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    )
    return [json.loads(m["Body"]) for m in messages]


def test_train_gate_register_promote_monitor(emulator, stacks, sagemaker, mlops, boto, tmp_path):
    for env in ("dev", "staging", "prod"):
        assert mlops("local", "up", "--stack", env).code == 0
    digest = push_project_image(boto)  # `mlops image`: the project's image, which trains and serves

    # -- train: data set upload + a SageMaker training job through ModelTrainer ------------------
    train = mlops("train", "--stack", "dev", "--synthetic", "1200", "--poll-seconds", "0.05", *FAST_HP, "--json")
    assert train.code == 0, train
    run = train.json["run"]
    job = run["job"]
    assert job.startswith("mlops-dev-churn-") and run["mode"] == "sagemaker" and run["status"] == "Completed"
    for state in ("Starting", "Downloading", "Training", "Uploading", "Completed"):
        assert f"{job}: {state} - " in train.err, train.err  # followed with progress, every transition shown
    assert "metric final_roc_auc=" in train.err  # metric lines streamed from the job's logs
    assert run["metrics"]["final_roc_auc"] > 0.7  # FinalMetricDataList, scraped with our definitions

    request = sagemaker.requests[job]
    assert request["resource_config"]["InstanceType"] == "ml.g5.xlarge"
    assert request["enable_managed_spot_training"] is True
    assert request["stopping_condition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 14400}
    assert request["checkpoint_config"]["S3Uri"].startswith("s3://mlops-dev-artifacts-123456789012/checkpoints/churn/")
    assert request["output_data_config"]["S3OutputPath"] == "s3://mlops-dev-artifacts-123456789012/training-output/"
    assert request["role_arn"] == "arn:aws:iam::123456789012:role/mlops-dev-sagemaker-execution"
    image = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-dev@{digest}"
    assert request["algorithm_specification"]["TrainingImage"] == image  # one lock: not a framework image
    assert {m["Name"] for m in request["algorithm_specification"]["MetricDefinitions"]} >= {"val_loss", "val_roc_auc"}
    assert request["enable_network_isolation"] is True
    tags = {t["Key"]: t["Value"] for t in request["tags"]}
    assert (
        tags["mlops:model"] == "churn"
        and tags["owner"] == "ml-platform"
        and tags["mlops:datasetSha256"] == run["dataset"]["sha256"]
    )
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["input_data_config"]}
    assert set(channels) == {"train", "validation", "code", "sm_drivers"}  # test/ stays held out

    # data pinned: every object's version and SHA-256 recorded, and they are what S3 holds
    s3 = boto("s3")
    assert {o["split"] for o in run["dataset"]["objects"]} == {"train", "validation", "test"}
    for obj in run["dataset"]["objects"]:
        bucket, key = obj["uri"][5:].split("/", 1)
        body = s3.get_object(Bucket=bucket, Key=key, VersionId=obj["versionId"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == obj["sha256"]

    # -- gate + register -------------------------------------------------------------------------
    files_before_register = snapshot(stacks)
    evaluate = mlops("evaluate", "--stack", "dev", "--job", job, "--json")
    assert evaluate.code == 0, evaluate
    report = evaluate.json["report"]
    assert report["gate"]["passed"] and report["champion"] is None
    stored = json.loads(
        s3.get_object(Bucket="mlops-dev-artifacts-123456789012", Key=f"evaluations/{job}/evaluation.json")[
            "Body"
        ].read()
    )
    assert (
        stored["gate"]["passed"]
        and stored["candidate"]["metrics"]["roc_auc"] == report["candidate"]["metrics"]["roc_auc"]
    )

    registered = mlops("register", "--stack", "dev", "--job", job, "--json")
    assert registered.code == 0, registered
    package = registered.json["package"]
    arn = package["arn"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-dev/1"
    described = boto("sagemaker").describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == run["modelDataUrl"]
    assert described["InferenceSpecification"]["SupportedContentTypes"] == [
        "text/csv",
        "application/json",
        "application/jsonlines",
    ]
    assert (
        described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
        == f"s3://mlops-dev-artifacts-123456789012/evaluations/{job}/evaluation.json"
    )
    meta = described["CustomerMetadataProperties"]
    assert meta["mlops:trainingJob"] == job and meta["mlops:gate"] == "passed"
    assert meta["lineage:dataSha256"] == run["dataset"]["sha256"]
    lineage_obj = s3.get_object(Bucket="mlops-dev-artifacts-123456789012", Key=f"training-output/{job}/lineage.json")[
        "Body"
    ].read()
    assert hashlib.sha256(lineage_obj).hexdigest() == meta["mlops:lineageSha256"]
    lineage = json.loads(lineage_obj)
    assert lineage["dataManifest"]["objects"] == run["dataset"]["objects"] and lineage["seed"] == 42
    assert lineage["git"]["commit"] and lineage["libraries"]["torch"]  # container's record merged with the pipeline's
    again = mlops("register", "--stack", "dev", "--job", job, "--json")
    assert again.code == 0 and again.json["created"] is False and again.json["package"]["arn"] == arn
    assert len(boto("sagemaker").list_model_packages(ModelPackageGroupName="churn-dev")["ModelPackageSummaryList"]) == 1
    assert snapshot(stacks) == files_before_register  # registering deploys nothing

    # -- reproduce on SageMaker: the recorded data versions copied to a fresh prefix, same hp/seed/image
    sagemaker.replay = sagemaker.results[job]  # the rerun's container output (the plumbing is what is tested here)
    again = mlops("reproduce", arn, "--poll-seconds", "0.05", "--json")
    assert again.code == 0, again
    assert again.json["match"] is True and again.json["rerunJob"] != job
    rerun = sagemaker.requests[again.json["rerunJob"]]
    assert rerun["hyper_parameters"] == request["hyper_parameters"]
    assert rerun["algorithm_specification"]["TrainingImage"] == request["algorithm_specification"]["TrainingImage"]
    rerun_channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in rerun["input_data_config"]}
    assert rerun_channels["train"] == "s3://mlops-dev-artifacts-123456789012/reproduce/churn-dev-1/train/"
    sagemaker.replay = None

    # -- approve, promote dev -> staging -> prod, deploy each -------------------------------------
    assert mlops("approve", arn, "--by", "alice", "--reason", "passes the gate; reviewed the card").code == 0
    own = {}  # each environment's own package: promotion copies the model into its write-once prefix
    for env in ("dev", "staging", "prod"):
        promoted = mlops("promote", arn, "--to", env, "--json")
        assert promoted.code == 0, promoted
        own[env] = promoted.json["package"]["arn"]
        assert own[env].startswith(f"arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-{env}/")
        assert env == "dev" or promoted.json["package"]["modelDataUrl"].startswith(
            f"s3://mlops-{env}-artifacts-123456789012/promoted/churn/"
        )
        deployed = mlops("local", "up", "--stack", env, "--json")
        assert deployed.code == 0, deployed
        serverless = env == "dev"  # dev serves serverless: its endpoint carries the mode (ENDPOINT-MODE-SWITCH)
        assert deployed.json["outputs"]["endpoints"]["churn"] == f"mlops-{env}-churn" + ("-serverless" * serverless)
    endpoint = boto("sagemaker").describe_endpoint(EndpointName="mlops-prod-churn")
    config = boto("sagemaker").describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == "s3://mlops-prod-capture-123456789012/churn"

    # -- monitor: no captured data yet is an error that publishes nothing ------------------------
    queue = subscribe_queue(boto, "arn:aws:sns:us-east-1:123456789012:mlops-prod-alerts")
    nothing = mlops("monitor", "--stack", "prod", "--no-retrain", "--json")
    assert nothing.code == 6 and "no captured data for endpoint mlops-prod-churn" in nothing.err
    assert boto("cloudwatch").list_metrics(Namespace="MLOps/Drift")["Metrics"] == []
    assert receive(boto, queue) == []

    # -- traffic through ml.serve with capture, drifted -------------------------------------------
    from ci.emulator.hosting import send_traffic
    from ci.steps.evaluation import fetch_model
    from ci.steps.pipeline import open_context
    from ml.data import make_synthetic

    ctx = open_context("prod")
    model_dir = fetch_model(ctx.s3, run["modelDataUrl"], tmp_path / "served")
    traffic = send_traffic(ctx.session, ctx.outputs, "churn", model_dir, make_synthetic(400, seed=7, drift=0.9))
    assert traffic["statuses"] == {200: 16} and traffic["captureObjects"]

    # a new data set version lands in dev: retraining must pick it up
    newer = mlops(
        "train",
        "--stack",
        "dev",
        "--synthetic",
        "1000",
        "--seed",
        "3",
        "--no-wait",
        "--poll-seconds",
        "0.05",
        *FAST_HP,
        "--json",
    )
    assert newer.code == 0, newer

    sagemaker.replay = sagemaker.results[job]  # the retraining job delivers a ready model; the container ran above
    monitored = mlops("monitor", "--stack", "prod", "--poll-seconds", "0.05", *FAST_HP, "--json")
    assert monitored.code == 0, monitored
    result = monitored.json
    assert result["drifted"] and result["score"] > 0.2

    # published under exactly what the prod drift alarm watches (as the preview declares it)
    from infra.preview import preview_stack

    alarm = next(
        r
        for r in preview_stack(stacks / "Pulumi.prod.yaml").resources
        if r["type"] == "aws:cloudwatch/metricAlarm:MetricAlarm" and r["props"].get("metricName") == "DriftScore"
    )
    watched = {
        "namespace": alarm["props"]["namespace"],
        "name": alarm["props"]["metricName"],
        "dimensions": alarm["props"]["dimensions"],
    }
    assert {k: result["metric"][k] for k in ("namespace", "name", "dimensions")} == watched
    dims = [{"Name": k, "Value": v} for k, v in watched["dimensions"].items()]
    stats = boto("cloudwatch").get_metric_statistics(
        Namespace=watched["namespace"],
        MetricName=watched["name"],
        Dimensions=dims,
        StartTime=datetime.datetime(2000, 1, 1),
        EndTime=datetime.datetime(2100, 1, 1),
        Period=3600,
        Statistics=["Maximum"],
    )
    assert stats["Datapoints"] and stats["Datapoints"][0]["Maximum"] == pytest.approx(result["score"])

    # the alert reached an SQS subscription of the topic
    notes = receive(boto, queue)
    assert len(notes) == 1
    body = json.loads(notes[0]["Message"])
    assert notes[0]["Subject"].startswith("Drift on mlops-prod-churn")
    assert (
        body["endpoint"] == "mlops-prod-churn"
        and body["package"] == own["prod"]
        and body["score"] == pytest.approx(result["score"])
    )

    # retrained in dev (where the package came from) on the newest data, through the same gate
    retrain = result["retrain"]
    assert retrain["run"]["dataset"]["id"] == newer.json["run"]["dataset"]["id"]
    assert retrain["gate"]["metric"] == "roc_auc" and retrain["evaluationReport"].startswith(
        "s3://mlops-dev-artifacts-"
    )
    if retrain["gate"]["passed"]:
        assert retrain["registered"]["package"]["status"] == "PendingManualApproval"
    # the deployed package is untouched: a retrained model goes through approval and promotion again
    assert json.loads((stacks / "Pulumi.prod.yaml").read_text().split("churn: ")[1].split("\n")[0]) == own["prod"]
