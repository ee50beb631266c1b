"""Every AWS call the CI commands make is allowed for the role that makes it in CI.

One compact lifecycle, run as the workflows run it (.github/workflows: train, approve,
promote, drift with --no-retrain), against moto's server with the call recorder on; each
recorded call becomes the authorisation requests AWS would evaluate (kernel.permissions,
derived from the Service Authorization Reference), and each request is evaluated against the
role that runs the command in CI (its policy and boundary from the previews): `approve` as the
approver (approve.yml), `monitor` as the monitor (drift.yml), the rest as the stack's pipeline role.
`mlops local up` stands in for `pulumi up` (the deploy role's job, proved in
test_deploy_role.py) and is not recorded here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ci_testkit import FAST_HP
from permissions_testkit import REGION, ci_role, pipeline_role, requests, role_stack, stack_preview

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
    # train.yml pushes the project image first: the training job runs it (one lock for train and serve)
    docker = _fake_docker(request.getfixturevalue("tmp_path"), request.getfixturevalue("monkeypatch"))
    ok("image", "--stack", "dev", "--docker", str(docker), "--json")
    job = ok("train", "--stack", "dev", "--synthetic", "800", "--poll-seconds", "0.05", *FAST_HP, "--json")
    job = job.json["run"]["job"]
    ok("evaluate", "--stack", "dev", "--job", job, "--json")
    arn = ok("register", "--stack", "dev", "--job", job, "--json").json["package"]["arn"]
    ok("approve", arn, "--by", "alice", "--reason", "reviewed")
    for env in ("dev", "staging", "prod"):
        ok("promote", arn, "--to", env, "--json")
        ok("local", "up", "--stack", env, "--json")  # stands in for `pulumi up` (the deploy role's, not recorded)
        ok("verify", "--stack", env, "--json")  # pulumi-up.yml's next step, as the deploy role
    _send_prod_traffic(request.getfixturevalue("tmp_path"))
    ok("monitor", "--stack", "prod", "--no-retrain", "--json")
    _RECORDED.extend(c for c in recorder.calls if c["command"][0] != "local")
    return _RECORDED


def _fake_docker(tmp_path, monkeypatch) -> Path:
    """The docker stand-in of ci_testkit.py: `push` puts a manifest into the emulator's ECR."""
    import stat
    import sys

    from ci_testkit import FAKE_DOCKER

    script = tmp_path / "docker"
    script.write_text(FAKE_DOCKER.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "docker.log"))
    return script


def _send_prod_traffic(tmp_path) -> None:
    from ci.emulator.hosting import send_traffic
    from ci.steps.evaluation import fetch_model
    from ci.steps.pipeline import open_context
    from ml.data import make_synthetic

    ctx = open_context("prod")
    package = ctx.sagemaker.describe_model_package(ModelPackageName=ctx.outputs.approvedPackages["churn"])
    model_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    model_dir = fetch_model(ctx.s3, model_url, tmp_path / "served")
    send_traffic(ctx.session, ctx.outputs, "churn", model_dir, make_synthetic(200, seed=7, drift=0.9))


def proved_pairs(calls: list[dict]) -> set[tuple[str, str, str, str]]:
    """(command, stack, service, operation): the distinct (command, call) pairs of a recording."""
    return {(c["command"][0], role_stack(c["command"]), c["service"], c["operation"]) for c in calls}


KMS_KEY = re.compile(r"arn:aws:kms:[^:]+:\d+:key/[0-9a-f-]+")


def as_previewed(call: dict) -> dict:
    """The call's parameters with the emulator's KMS key ARN (a random id) replaced by the previewed
    key of the stack that runs it: the guardrails compare the job's keys with the environment's."""
    stack = role_stack(call["command"])
    if call["operation"] != "CreateTrainingJob" or stack not in ("dev", "staging", "prod"):
        return call["params"]
    key = stack_preview(stack).outputs["kmsKeyArn"]
    return _replace(call["params"], lambda s: KMS_KEY.sub(key, s))


def _replace(value, fix):
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, dict):
        return {k: _replace(v, fix) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, fix) for v in value]
    return value


def all_requests(call: dict) -> list[Request]:
    """A recorded call's requests; for `mlops image`, also what its `docker push` asks for."""
    found = requests(Call(call["service"], call["operation"], as_previewed(call)))
    if call["command"][0] == "image" and call["service"] == "ecr" and "repositoryName" in call["params"]:
        repository = f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{call['params']['repositoryName']}"
        found += docker_push_requests(repository, REGION)
    return found


def denials(calls: list[dict], role_for=ci_role) -> list[str]:
    """Every request of the recorded calls that the role running its command (role_for(command)) is denied."""
    found, seen = [], set()
    for c in calls:
        stack = role_stack(c["command"])
        role = role_for(c["command"])
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
    assert commands >= {"train", "evaluate", "image", "register", "approve", "promote", "verify", "monitor"}
    assert {(c["service"], c["operation"]) for c in ci_calls} <= PROJECT_CALLS
    assert denials(ci_calls) == []


@pytest.mark.moto_server
@pytest.mark.slow
def test_the_proof_fails_when_a_statement_is_removed(ci_calls):
    """Removing the statement that lets CI follow a training job's logs denies `mlops train` (defect 5)."""
    denied = denials(
        ci_calls,
        lambda command: ci_role(command).without("FollowTrainingLogs") if command[0] == "train" else ci_role(command),
    )
    assert denied and all("logs:" in d for d in denied)
    assert any(d.startswith("train as dev pipeline: logs:FilterLogEvents") for d in denied)


@pytest.mark.moto_server
@pytest.mark.slow
def test_docs_give_the_proved_count(ci_calls):
    """docs/permissions.md states how many (command, call) pairs the proof covers; keep it true."""
    stated = re.search(r"(\d+) \(command, call\) pairs", DOCS.read_text())
    assert stated, "docs/permissions.md must state 'N (command, call) pairs'"
    assert int(stated.group(1)) == len(proved_pairs(ci_calls)), sorted(proved_pairs(ci_calls))


@pytest.mark.moto_server
@pytest.mark.slow
def test_the_pipeline_role_is_denied_the_recorded_approval(ci_calls):
    """Self-approval: the `approve` call CI makes (UpdateModelPackage) is the approver's; as the
    pipeline role it is explicitly denied (AWS rule: SM-APPROVAL-STATUS)."""
    approve = [c for c in ci_calls if c["command"][0] == "approve"]
    assert approve
    denied = denials(approve, lambda command: pipeline_role(role_stack(command)))
    assert any("sagemaker:UpdateModelPackage" in d and "ExplicitDeny" in d for d in denied), denied


@pytest.mark.moto_server
@pytest.mark.slow
def test_the_recorded_training_job_passes_the_guardrails(ci_calls):
    """`mlops train` as CI runs it sends what the guardrails demand: isolation on, the environment's
    output key, an allowed type (ml.g5: local NVMe, so no volume key) (AWS rule: SM-GUARDRAIL-KEYS)."""
    (job,) = {id(c): c for c in ci_calls if c["operation"] == "CreateTrainingJob"}.values()
    (request,) = [r for r in all_requests(job) if r.action == "sagemaker:CreateTrainingJob"]
    assert request.context["sagemaker:NetworkIsolation"] == "true"
    assert request.context["sagemaker:OutputKmsKey"] == stack_preview("dev").outputs["kmsKeyArn"]
    assert "sagemaker:VolumeKmsKey" not in request.context
    assert pipeline_role("dev").decide(request) == ALLOW
