"""`mlops tune`: the SDK's HyperparameterTuner request offline, and a small local search whose best
job flows into evaluate and register like any other."""

from __future__ import annotations

import pytest
from ci_testkit import dry_run

from ci.steps.tune import Range, objective_for, tuning_job_name, tuning_rules


def test_dry_run_prints_the_sdks_tuning_request_over_the_allowed_gpu_types(offline, stacks, mlops):
    """AWS rules: TUNING-JOB-NAME-32, TUNING-INSTANCE-CONFIGS-6, INSTANCE-STORAGE."""
    out = dry_run(mlops, "tune", "--max-jobs", "4")
    request = out["request"]
    assert out["problems"] == []
    assert len(request["HyperParameterTuningJobName"]) <= 32
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian" and config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 4
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "final_roc_auc"}
    ranges = {r["Name"] for r in config["ParameterRanges"]["ContinuousParameterRanges"]}
    assert {"lr", "weight_decay", "dropout"} <= ranges
    definition = request["TrainingJobDefinition"]
    from ci.steps.training import metric_definitions

    assert definition["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions()  # as training
    assert definition["EnableManagedSpotTraining"] is True  # dev trains on spot
    assert (
        definition["StoppingCondition"]["MaxWaitTimeInSeconds"]
        >= definition["StoppingCondition"]["MaxRuntimeInSeconds"]
    )
    assert definition["EnableNetworkIsolation"] is True
    tuning = definition["HyperParameterTuningResourceConfig"]
    assert "ResourceConfig" not in definition and "InstanceType" not in tuning
    types = [c["InstanceType"] for c in tuning["InstanceConfigs"]]
    assert types[0] == "ml.g5.xlarge" and all(t.startswith(("ml.g", "ml.p")) for t in types)
    assert "VolumeKmsKeyId" not in tuning  # NVMe types refuse a volume key
    assert definition["OutputDataConfig"]["KmsKeyId"].startswith("arn:aws:kms:")
    assert "lr" not in definition.get("StaticHyperParameters", {})


def test_tuning_names_and_rules():
    """AWS rules: TUNING-JOB-NAME-32, INSTANCE-STORAGE (for tuning instance configs)."""
    name = tuning_job_name("staging-a-very-long-model-name_x", "261129081800")
    assert len(name) <= 32 and name.endswith("-261129081800") and "_" not in name
    bad = {
        "HyperParameterTuningJobName": "x" * 33,
        "TrainingJobDefinition": {
            "HyperParameterTuningResourceConfig": {
                "InstanceType": "ml.g5.xlarge",
                "InstanceConfigs": [{"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50}],
                "VolumeKmsKeyId": "arn:aws:kms:us-east-1:1:key/k",
            }
        },
    }
    problems = tuning_rules(bad)
    assert len(problems) == 3 and "INSTANCE-STORAGE" in problems[2]


def test_objective_follows_the_gate_metric():
    assert objective_for("roc_auc") == ("final_roc_auc", "Maximize")
    assert objective_for("rmse") == ("final_rmse", "Minimize")
    assert Range("lr", "continuous", 1e-4, 1e-2, log=True).to_sdk().scaling_type == "Logarithmic"


@pytest.mark.moto_server
def test_a_local_search_beats_or_matches_the_defaults_and_its_best_job_registers(emulator, stacks, mlops, boto):
    from ci_testkit import FAST_HP, push_project_image

    assert mlops("local", "up", "--stack", "dev").code == 0
    push_project_image(boto)
    # gbdt with its iterations fixed by --hp (kept out of the search); learning rate and leaves searched
    tuned = mlops(
        "tune",
        "--stack",
        "dev",
        "--synthetic",
        "600",
        "--local",
        "--max-jobs",
        "3",
        *FAST_HP,
        "--hp",
        "model_card=false",
        "--json",
    )
    assert tuned.code == 0, tuned
    search = tuned.json["tuning"]
    assert search["objective"] == {"metric": "final_roc_auc", "type": "Maximize"}
    assert len(search["trials"]) == 3 and "gbdt_learning_rate" not in search["trials"][0]["hyperparameters"]
    assert all(t["hyperparameters"]["gbdt_max_iter"] == "40" for t in search["trials"])
    assert "gbdt_max_iter" not in {r["name"] for r in search["ranges"]}
    scores = [t["objective"] for t in search["trials"]]
    assert search["bestObjective"] == max(scores) >= search["defaultsObjective"]
    best = search["bestJob"]
    run = tuned.json["run"]
    assert run["job"] == best and run["tuning"]["bestJob"] == best  # the search, on the run record

    evaluated = mlops("evaluate", "--stack", "dev", "--job", best, "--json")
    assert evaluated.code in (0, 4), evaluated  # gated like any other job
    if evaluated.code == 0:
        registered = mlops("register", "--stack", "dev", "--job", best, "--json")
        assert registered.code == 0, registered


@pytest.mark.moto_server
def test_a_sagemaker_tuning_job_is_created_through_the_sdk(emulator, stacks, mlops, boto):
    from ci_testkit import FAST_HP, push_project_image

    assert mlops("local", "up", "--stack", "dev").code == 0
    digest = push_project_image(boto)
    tuned = mlops("tune", "--stack", "dev", "--synthetic", "300", "--max-jobs", "3", *FAST_HP, "--json")
    assert tuned.code == 0, tuned
    name = tuned.json["tuning"]["tuningJob"]
    described = boto("sagemaker").describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    definition = described["TrainingJobDefinition"]
    assert definition["AlgorithmSpecification"]["TrainingImage"].endswith(f"@{digest}")
    assert described["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 3
    record = boto("s3").get_object(Bucket="mlops-dev-artifacts-123456789012", Key=f"tuning/{name}/tuning.json")
    assert b'"mode": "sagemaker"' in record["Body"].read()
