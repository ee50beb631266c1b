"""`mlops verify`: each endpoint runs the package the stack declares, read from SageMaker itself.

moto's `create_endpoint` is InService at once and it has no `update_endpoint`, so the rolled-back
update is staged as SageMaker leaves it: the endpoint InService on config A while the stack's
outputs declare package B.
"""

from __future__ import annotations

import json

import pytest
from ci_integrity_kit import make_package
from ci_testkit import ACCOUNT, REGION

pytestmark = pytest.mark.moto_server

ENDPOINT = "mlops-dev-churn-serverless"  # dev serves serverless (AWS rule ENDPOINT-MODE-SWITCH)


@pytest.fixture
def deployed(emulator, stacks, mlops, boto, tmp_path):
    """dev serves package A: promoted into the stack file and rolled out by the local backend."""
    first = make_package(boto, job="job-a", status="Approved")
    assert mlops("promote", first, "--to", "dev", "--outputs-from", "preview").code == 0
    assert mlops("local", "up", "--stack", "dev").code == 0
    return first


def local_outputs(tmp_path):
    return tmp_path / "state" / "local" / "dev" / "outputs.json"


def verify(mlops, *extra):
    return mlops("verify", "--stack", "dev", "--outputs-from", "local", "--wait-seconds", "0", "--json", *extra)


def moto_endpoint(name=ENDPOINT):
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT][REGION].endpoints[name]


def test_an_endpoint_on_the_declared_package_passes(deployed, mlops):
    result = verify(mlops)
    assert result.code == 0, result
    (state,) = result.json["endpoints"]
    assert state["endpoint"] == ENDPOINT and state["status"] == "InService"
    assert state["packages"] == [deployed] and state["ok"] is True


def test_a_rolled_back_update_fails_naming_both_packages(deployed, mlops, boto, tmp_path):
    """AWS rule: ENDPOINT-ROLLBACK-REPORTED-SUCCESS. InService on the old config is a failed deployment."""
    second = make_package(boto, job="job-b", status="Approved")
    path = local_outputs(tmp_path)
    outputs = json.loads(path.read_text())
    outputs["approvedPackages"]["churn"] = second  # what `pulumi up` reported as deployed
    path.write_text(json.dumps(outputs))

    result = verify(mlops)
    assert result.code == 1, result
    assert f"serves {deployed}" in result.err and f"not {second} as the stack declares" in result.err
    assert "ENDPOINT-ROLLBACK-REPORTED-SUCCESS" in result.err
    (state,) = result.json["endpoints"]
    assert state["status"] == "InService" and state["ok"] is False


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("Failed", "Request to service failed. Model container did not pass the ping health check.", "is Failed"),
        ("Updating", None, "is still Updating after 0 s"),
    ],
)
def test_a_failed_or_unfinished_endpoint_fails(deployed, mlops, status, reason, expected):
    endpoint = moto_endpoint()
    endpoint.endpoint_status, endpoint.failure_reason = status, reason
    result = verify(mlops)
    assert result.code == 1, result
    assert expected in result.err
    if reason:
        assert reason in result.err


def test_an_endpoint_left_on_a_deleted_config_fails(deployed, mlops, boto):
    """AWS rule: ENDPOINT-ROLLBACK-REPORTED-SUCCESS. Believing the update took, the provider deletes the old
    config the rolled-back endpoint still runs on."""
    sm = boto("sagemaker")
    config = sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    sm.delete_endpoint_config(EndpointConfigName=config)
    result = verify(mlops)
    assert result.code == 1, result
    assert f"on endpoint config {config}, which can no longer be read" in result.err


def test_a_missing_endpoint_fails(deployed, mlops, boto):
    boto("sagemaker").delete_endpoint(EndpointName=ENDPOINT)
    result = verify(mlops)
    assert result.code == 1 and f"endpoint {ENDPOINT} does not exist" in result.err


def test_live_in_is_read_from_the_endpoint_not_the_stack_file(deployed, mlops, boto):
    """AWS rule: ENDPOINT-ROLLBACK-REPORTED-SUCCESS. A package the dev stack file names but dev never ran is not
    promotable to staging (staging requires it live in dev)."""
    second = make_package(boto, job="job-b", status="Approved")
    assert mlops("promote", second, "--to", "dev", "--outputs-from", "preview").code == 0  # declared, not rolled out
    refused = mlops("promote", second, "--to", "staging", "--outputs-from", "preview")
    assert refused.code == 4 and "the dev endpoint for churn does not serve it" in refused.err
    not_up = mlops("promote", deployed, "--to", "staging", "--outputs-from", "preview")
    assert not_up.code == 4 and "bring the stack up first" in not_up.err  # the copy needs staging's bucket
    assert mlops("local", "up", "--stack", "staging").code == 0
    assert mlops("promote", deployed, "--to", "staging", "--outputs-from", "preview").code == 0  # dev runs A


def test_verify_has_help(mlops, capsys):
    with pytest.raises(SystemExit) as exit_:
        mlops("verify", "--help")
    assert exit_.value.code == 0
    assert "rolled back" in capsys.readouterr().out


def test_the_deploy_workflow_verifies_right_after_pulumi_up():
    """AWS rule: ENDPOINT-ROLLBACK-REPORTED-SUCCESS. `pulumi up` exiting 0 is not evidence; the next step checks."""
    import yaml
    from ci_testkit import REPO

    steps = yaml.safe_load((REPO / ".github" / "workflows" / "pulumi-up.yml").read_text())["jobs"]["up"]["steps"]
    runs = [s.get("run", "") for s in steps]
    up = next(i for i, r in enumerate(runs) if r.startswith("pulumi up"))
    verify_step = next(i for i, r in enumerate(runs) if "mlops verify" in r)
    assert up < verify_step and all("pulumi up" not in r for r in runs[verify_step:])
    assert '--stack "$STACK"' in runs[verify_step]
