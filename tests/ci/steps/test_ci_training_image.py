"""Training runs the project's own image (the lock that tests and serving use), pinned by digest.

An unpushed image is refused before any data is uploaded or job created; `--image` names another
image on purpose; `--local` needs no image at all.
"""

from __future__ import annotations

import pytest
from ci_testkit import FAST_HP, push_project_image

pytestmark = pytest.mark.moto_server

REPOSITORY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-dev"


@pytest.fixture
def dev(emulator, stacks, mlops):
    assert mlops("local", "up", "--stack", "dev").code == 0
    return stacks


def train(mlops, *extra):
    return mlops("train", "--stack", "dev", "--synthetic", "300", "--no-wait", *FAST_HP, "--json", *extra)


def test_an_unpushed_project_image_is_refused_before_anything_happens(dev, sagemaker, mlops, boto):
    result = train(mlops)
    assert result.code == 4, result
    assert f"training image {REPOSITORY}:" in result.err and "mlops image --stack dev" in result.err
    assert sagemaker.requests == {}
    assert boto("s3").list_objects_v2(Bucket="mlops-dev-data-123456789012").get("KeyCount", 0) == 0


def test_the_job_runs_the_pushed_project_image_by_digest(dev, sagemaker, mlops, boto):
    digest = push_project_image(boto)
    result = train(mlops)
    assert result.code == 0, result
    run = result.json["run"]
    assert run["pinnedImage"] == f"{REPOSITORY}@{digest}" and run["imageSource"] == "project"
    request = sagemaker.requests[run["job"]]
    assert request["algorithm_specification"]["TrainingImage"] == f"{REPOSITORY}@{digest}"
    assert "VolumeKmsKeyId" not in request["resource_config"]  # ml.g5.xlarge: instance storage
    assert request["output_data_config"]["KmsKeyId"].startswith("arn:aws:kms:")


def test_an_image_named_on_purpose_is_used_and_marked(dev, sagemaker, mlops):
    dlc = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.10.0-gpu-py313"
    result = train(mlops, "--image", dlc)
    assert result.code == 0, result
    run = result.json["run"]
    assert run["imageUri"] == dlc and run["imageSource"] == "override"
    assert sagemaker.requests[run["job"]]["algorithm_specification"]["TrainingImage"] == dlc
