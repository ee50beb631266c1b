"""Every AWS call the CI commands make is allowed for the role that makes it in CI.

One compact lifecycle, run as the workflows run it (.github/workflows: train, approve,
promote, drift with --no-retrain), against moto's server with the call recorder on; each
recorded call becomes the authorisation requests AWS would evaluate (kernel.permissions,
derived from the Service Authorization Reference), and each request is evaluated against the
pipeline role of the stack that runs the command (its policy and boundary from the previews).
`mlops local up` stands in for `pulumi up` (the deploy role's job, proved in
test_deploy_role.py) and is not recorded here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ci_testkit import FAST_HP
from permissions_testkit import REGION, pipeline_role, requests, role_stack

from infra.preview import ACCOUNT_ID
from kernel.iam_eval import ALLOW, Request
from kernel.permissions import PROJECT_CALLS, Call, docker_push_requests

DOCS = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
_RECORDED: list[dict] = []  # one lifecycle per session, shared by the tests below


@pytest.fixture
def ci_calls(request) -> list[dict]:
    """The calls of one CI-like lifecycle: train, evaluate, register, approve, promote x3, monitor."""
    if _RECORDED:
        return _RECORDED
    recorder = request.getfixturevalue("aws_calls")
    request.getfixturevalue("stacks")
    request.getfixturevalue("sagemaker")
    mlops = request.getfixturevalue("mlops")

    def ok(*args):
        result = mlops(*args)
        assert result.code == 0, (args, result)
        return result

    recorder.command = None
    for env in ("dev", "staging", "prod"):
        ok("local", "up", "--stack", env)
    job = ok("train", "--stack", "dev", "--synthetic", "800", "--poll-seconds", "0.05", *FAST_HP, "--json")
    job = job.json["run"]["job"]
    ok("evaluate", "--stack", "dev", "--job", job, "--json")
    docker = _fake_docker(request.getfixturevalue("tmp_path"), request.getfixturevalue("monkeypatch"))
    ok("image", "--stack", "dev", "--docker", str(docker), "--json")
    arn = ok("register", "--stack", "dev", "--job", job, "--json").json["package"]["arn"]
    ok("approve", arn, "--by", "alice", "--reason", "reviewed")
    for env in ("dev", "staging", "prod"):
        ok("promote", arn, "--to", env, "--json")
        ok("local", "up", "--stack", env, "--json")
    _send_prod_traffic(request.getfixturevalue("tmp_path"))
    ok("monitor", "--stack", "prod", "--no-retrain", "--json")
    _RECORDED.extend(c for c in recorder.calls if c["command"][0] != "local")
    return _RECORDED


def _fake_docker(tmp_path, monkeypatch) -> Path:
    """The docker stand-in of test_ci_image.py: `push` puts a manifest into the emulator's ECR."""
    import stat
    import sys

    from test_ci_image import FAKE_DOCKER

    script = tmp_path / "docker"
    script.write_text(FAKE_DOCKER.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "docker.log"))
    return script


def _send_prod_traffic(tmp_path) -> None:
    from ci.evaluation import fetch_model
    from ci.pipeline import open_context
    from ci.traffic import send_traffic
    from ml.data import make_synthetic

    ctx = open_context("prod")
    package = ctx.sagemaker.describe_model_package(ModelPackageName=ctx.outputs.approvedPackages["churn"])
    model_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    model_dir = fetch_model(ctx.s3, model_url, tmp_path / "served")
    send_traffic(ctx.session, ctx.outputs, "churn", model_dir, make_synthetic(200, seed=7, drift=0.9))


def proved_pairs(calls: list[dict]) -> set[tuple[str, str, str, str]]:
    """(command, stack, service, operation): the distinct (command, call) pairs of a recording."""
    return {(c["command"][0], role_stack(c["command"]), c["service"], c["operation"]) for c in calls}


def all_requests(call: dict) -> list[Request]:
    """A recorded call's requests; for `mlops image`, also what its `docker push` asks for."""
    found = requests(Call(call["service"], call["operation"], call["params"]))
    if call["command"][0] == "image" and call["service"] == "ecr" and "repositoryName" in call["params"]:
        repository = f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{call['params']['repositoryName']}"
        found += docker_push_requests(repository, REGION)
    return found


def denials(calls: list[dict], role_for=pipeline_role) -> list[str]:
    found, seen = [], set()
    for c in calls:
        stack = role_stack(c["command"])
        role = role_for(stack)
        for r in all_requests(c):
            key = (c["command"][0], stack, r)
            if key in seen:
                continue
            seen.add(key)
            decision = role.decide(r)
            if decision != ALLOW:
                found.append(f"{c['command'][0]} as {role.name}: {r.action} on {r.resource} {r.context} -> {decision}")
    return found


@pytest.mark.moto_server
@pytest.mark.slow
def test_every_call_of_the_ci_commands_is_allowed_for_the_role_that_makes_it(ci_calls):
    """AWS rule: IAM-EVALUATION (a call succeeds only if an identity policy allows it and the
    boundary allows it, and nothing denies it), with IAM-CONDITION-KEYS for the request context."""
    commands = {c["command"][0] for c in ci_calls}
    assert commands >= {"train", "evaluate", "image", "register", "approve", "promote", "monitor"}
    assert {(c["service"], c["operation"]) for c in ci_calls} <= PROJECT_CALLS
    assert denials(ci_calls) == []


@pytest.mark.moto_server
@pytest.mark.slow
def test_the_proof_fails_when_a_statement_is_removed(ci_calls):
    """Removing the statement that lets CI follow a training job's logs denies `mlops train` (defect 5)."""
    denied = denials(ci_calls, lambda stack: pipeline_role(stack).without("FollowTrainingLogs"))
    assert denied and all("logs:" in d for d in denied)
    assert any(d.startswith("train as dev pipeline: logs:FilterLogEvents") for d in denied)


@pytest.mark.moto_server
@pytest.mark.slow
def test_docs_give_the_proved_count(ci_calls):
    """docs/permissions.md states how many (command, call) pairs the proof covers; keep it true."""
    stated = re.search(r"(\d+) \(command, call\) pairs", DOCS.read_text())
    assert stated, "docs/permissions.md must state 'N (command, call) pairs'"
    assert int(stated.group(1)) == len(proved_pairs(ci_calls)), sorted(proved_pairs(ci_calls))
