"""Failure paths: each says why, exits non-zero, and leaves the registry and the stack files as they were."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from ci_testkit import FAST_HP, free_port, push_project_image, snapshot

pytestmark = pytest.mark.moto_server


def packages(boto, group="churn-dev") -> list[str]:
    sm = boto("sagemaker")
    try:
        return [
            s["ModelPackageArn"] for s in sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
        ]
    except sm.exceptions.ClientError:
        return []


@pytest.fixture
def dev(emulator, stacks, mlops, boto):
    assert mlops("local", "up", "--stack", "dev").code == 0
    push_project_image(boto)  # jobs run the project's image, pushed by `mlops image`
    return stacks


@contextmanager
def registers_nothing(dev, boto):
    """After the block the registry is still empty and the stack files are as they were."""
    files = snapshot(dev)
    yield
    assert packages(boto) == [] and snapshot(dev) == files


def train(mlops, *extra):
    return mlops("train", "--stack", "dev", "--synthetic", "600", "--poll-seconds", "0.05", *FAST_HP, "--json", *extra)


def test_a_failed_training_job_says_why_and_registers_nothing(dev, sagemaker, mlops, boto):
    sagemaker.outcome = "Failed"
    with registers_nothing(dev, boto):
        result = train(mlops)
        assert result.code == 5, result
        assert "Failed: AlgorithmError: ClientError: out of memory on GPU 0; nothing was registered" in result.err
        run = result.json["run"]
        assert run["status"] == "Failed" and "out of memory" in run["failureReason"]
        refused = mlops("register", "--stack", "dev", "--job", run["job"])
        assert refused.code == 4 and "is Failed: nothing to register" in refused.err


def test_a_stopped_training_job_registers_nothing(dev, sagemaker, mlops, boto):
    sagemaker.outcome = "Stopped"
    with registers_nothing(dev, boto):
        result = train(mlops)
        assert result.code == 5 and "Stopped" in result.err
        evaluate = mlops("evaluate", "--stack", "dev", "--job", result.json["run"]["job"])
        assert evaluate.code == 1 and "only a Completed job can be evaluated" in evaluate.err


def test_a_corrupt_model_archive_is_caught_before_registration(dev, sagemaker, mlops, boto):
    sagemaker.outcome = "Corrupt"
    with registers_nothing(dev, boto):
        result = train(mlops)
        assert result.code == 0, result  # SageMaker said Completed ...
        job = result.json["run"]["job"]
        evaluate = mlops("evaluate", "--stack", "dev", "--job", job, "--json")
        assert evaluate.code == 1 and "corrupt model archive" in evaluate.err  # ... but the archive is not a model
        assert evaluate.json["ok"] is False
        forced = mlops("register", "--stack", "dev", "--job", job, "--force", "--reason", "ship it")
        assert forced.code == 6 and "run `mlops evaluate" in forced.err  # no report, no package, even forced


def test_a_candidate_that_loses_to_the_champion_is_not_registered(dev, sagemaker, mlops, boto):
    first = train(mlops)
    job1 = first.json["run"]["job"]
    sagemaker.replay = sagemaker.results[job1]  # the second job delivers the same model
    assert mlops("evaluate", "--stack", "dev", "--job", job1).code == 0
    champion = mlops("register", "--stack", "dev", "--job", job1, "--json").json["package"]["arn"]
    assert mlops("approve", champion, "--by", "alice", "--reason", "first model").code == 0

    # dev now demands a real improvement; the candidate (the same model) cannot show one
    path = dev / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("minImprovement: 0.0", "minImprovement: 0.01"))
    files, before = snapshot(dev), packages(boto)
    second = train(mlops, "--seed", "7")
    job2 = second.json["run"]["job"]
    lost = mlops("evaluate", "--stack", "dev", "--job", job2, "--json")
    assert lost.code == 4, lost
    report = lost.json["report"]
    assert report["champion"]["arn"] == champion and "re-scored" in report["champion"]["source"]
    assert not report["gate"]["passed"] and "less than the required margin 0.01" in report["gate"]["reason"]
    refused = mlops("register", "--stack", "dev", "--job", job2)
    assert refused.code == 4 and "the gate failed" in refused.err and "--force --reason" in refused.err
    assert packages(boto) == before and snapshot(dev) == files

    forced = mlops(
        "register", "--stack", "dev", "--job", job2, "--force", "--reason", "hotfix for the schema change", "--json"
    )
    assert forced.code == 0, forced
    meta = forced.json["package"]["metadata"]
    assert meta["mlops:gate"] == "forced" and meta["mlops:forceReason"] == "hotfix for the schema change"
    assert mlops("register", "--stack", "dev", "--job", job2, "--force").code == 2  # --force needs a reason


def test_a_disallowed_gpu_type_is_refused_before_any_aws_call(stacks, mlops, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # any call would fail with exit 3
    result = mlops(
        "train",
        "--stack",
        "dev",
        "--outputs-from",
        "preview",
        "--synthetic",
        "100",
        "--instance-type",
        "ml.p5.48xlarge",
        "--json",
    )
    assert result.code == 4, result
    assert "ml.p5.48xlarge is not allowed in stack dev" in result.err and "allowed: ml.g5.xlarge" in result.err


def test_giving_two_data_sources_is_a_usage_error(dev, mlops):
    result = mlops("train", "--stack", "dev", "--synthetic", "100", "--latest-data")
    assert result.code == 2 and "exactly one data source" in result.err


def test_monitor_of_a_model_that_is_not_deployed_says_so(dev, mlops):
    result = mlops("monitor", "--stack", "dev", "--no-retrain")
    assert result.code == 6 and "is not deployed in stack dev" in result.err


def test_a_failed_local_run_reports_the_containers_reason(dev, mlops, boto):
    with registers_nothing(dev, boto):
        # `--hp epochs=many` is now refused before launch (exit 2); a data set smaller than the container's
        # min_rows passes every client-side check and fails inside the container
        result = mlops("train", "--stack", "dev", "--local", "--synthetic", "300", "--hp", "min_rows=100000", "--json")
        assert result.code == 5, result
        run = result.json["run"]
        assert run["status"] == "Failed" and "100000" in run["failureReason"]  # from the container's output/failure
        key = run["modelDataUrl"].split("/", 3)[3]
        assert boto("s3").list_objects_v2(Bucket="mlops-dev-artifacts-123456789012", Prefix=key).get("KeyCount", 0) == 0


def test_a_stack_with_a_vpc_trains_inside_it(emulator, stacks, sagemaker, mlops, boto):
    path = stacks / "Pulumi.dev.yaml"
    path.write_text(
        path.read_text().replace(
            "  mlops:gate:",
            "  mlops:vpc:\n    subnetIds: [subnet-0123456789abcdef0]\n"
            "    securityGroupIds: [sg-0123456789abcdef0]\n  mlops:gate:",
        )
    )
    assert mlops("local", "up", "--stack", "dev").code == 0
    push_project_image(boto)
    sagemaker.outcome = "Stopped"  # the request is what this test is about
    result = train(mlops)
    assert result.code == 5
    request = sagemaker.requests[result.json["run"]["job"]]
    assert request["vpc_config"] == {
        "Subnets": ["subnet-0123456789abcdef0"],
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
    }
    assert request["enable_network_isolation"] is True and request["enable_inter_container_traffic_encryption"] is True
