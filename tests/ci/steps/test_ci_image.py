"""`mlops image`: the serving image is built from container/Dockerfile and pushed under the commit tag."""

from __future__ import annotations

import json
import re
import stat
import sys
from pathlib import Path

import pytest
from ci_testkit import FAKE_DOCKER

from ci.steps.image import DOCKERFILE, image_tag


@pytest.fixture
def docker(tmp_path, monkeypatch):
    script = tmp_path / "docker"
    script.write_text(FAKE_DOCKER.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "docker.log"
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    return script, log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_dockerfile_serves_ml_by_the_inference_contract():
    text = DOCKERFILE.read_text()
    assert "COPY ml/ /opt/program/ml/" in text
    assert 'ENTRYPOINT ["python", "-m", "ml.serve"]' in text  # SageMaker appends `serve`
    lines = (DOCKERFILE.parent / "requirements.txt").read_text().splitlines()
    pins = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert all("==" in pin for pin in pins) and any(p.startswith("torch==") for p in pins)


def test_build_and_push_under_the_commit_tag(emulator, stacks, boto, mlops, docker):
    script, log = docker
    assert mlops("local", "up", "--stack", "dev").code == 0
    done = mlops("image", "--stack", "dev", "--docker", str(script), "--tag", "abc123def456", "--json")
    assert done.code == 0, done.err
    result = json.loads(done.out)
    repo_url = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-dev"
    assert result["image"] == f"{repo_url}:abc123def456" and result["pushed"] is True
    listed = boto("ecr").describe_images(repositoryName="mlops-dev")["imageDetails"]
    assert result["digest"] == listed[0]["imageDigest"]
    build, login, push, cuda_build, _, cuda_push = calls(log)
    assert build["args"][:3] == ["build", "-f", str(DOCKERFILE)] and build["args"][4] == f"{repo_url}:abc123def456"
    # dev serves serverless (CPU): a CPU torch build; x86-64 whatever the builder runs on
    assert "TORCH_VARIANT=cpu" in build["args"] and "--platform" in build["args"]
    assert build["args"][build["args"].index("--platform") + 1] == "linux/amd64"
    assert login["args"][:3] == ["login", "--username", "AWS"] and login["stdin"]  # password on stdin, never argv
    assert push["args"] == ["push", f"{repo_url}:abc123def456"]
    # training runs on GPU types: the CUDA build beside it, the tag training jobs use
    assert "TORCH_VARIANT=cuda" in cuda_build["args"] and cuda_build["args"][4] == f"{repo_url}:abc123def456-cuda"
    assert cuda_push["args"] == ["push", f"{repo_url}:abc123def456-cuda"]
    assert result["variant"] == "cpu" and result["training"]["image"] == f"{repo_url}:abc123def456-cuda"

    again = mlops("image", "--stack", "dev", "--docker", str(script), "--tag", "abc123def456", "--json")
    assert json.loads(again.out)["pushed"] is False and len(calls(log)) == 6  # immutable tags: reused


def test_a_failed_build_pushes_nothing(emulator, stacks, boto, mlops, docker, monkeypatch):
    script, log = docker
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "1")
    assert mlops("local", "up", "--stack", "dev").code == 0
    done = mlops("image", "--stack", "dev", "--docker", str(script), "--tag", "t1")
    assert done.code == 1 and "COPY failed" in done.err and "Traceback" not in done.err
    assert [c["args"][0] for c in calls(log)] == ["build"]
    assert boto("ecr").describe_images(repositoryName="mlops-dev")["imageDetails"] == []


def test_missing_docker_is_a_usage_error(emulator, stacks, mlops):
    assert mlops("local", "up", "--stack", "dev").code == 0
    done = mlops("image", "--stack", "dev", "--docker", "/nonexistent/docker")
    assert done.code == 2 and "install Docker" in done.err


def test_the_torch_build_follows_the_serving_instance_type():
    from dataclasses import replace

    from ci.steps.image import serving_variant
    from kernel.stack_config import load_stack_config

    config = load_stack_config("prod")

    def serving(**changes):
        return replace(config, serving=replace(config.serving, **changes))

    assert serving_variant(serving(mode="serverless", instanceType="ml.g5.xlarge")) == "cpu"
    assert serving_variant(serving(mode="instance", instanceType="ml.m5.xlarge")) == "cpu"
    assert serving_variant(serving(mode="instance", instanceType="ml.g5.xlarge")) == "cuda"


def test_the_base_image_is_pinned_by_digest_and_torch_chosen_by_build_argument():
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_BASE=python:3\.11[\w.-]*@sha256:[0-9a-f]{64}$", text, re.M)
    assert "FROM ${PYTHON_BASE}" in text and "ARG TORCH_VARIANT=cpu" in text
    assert "https://download.pytorch.org/whl/cpu" in text


def test_default_tag_is_the_commit_register_looks_for():
    assert image_tag("0123456789abcdef0123") == "0123456789ab"
    assert len(image_tag()) == 12 or image_tag() == "unknown"
