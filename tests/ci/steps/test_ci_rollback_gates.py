"""`mlops rollback` passes promotion's gates, and never "rolls back" to what is live already.

Every refusal exits 4 with one sentence and leaves the stack file byte for byte as it was.
"""

from __future__ import annotations

import pytest
from ci_registration_kit import a_registration
from ci_testkit import snapshot

from ci.aws import registry, stackfile

pytestmark = pytest.mark.moto_server


def package(boto, job, *, group="churn-dev", model="churn", gate="passed", status: str | None = "Approved") -> str:
    sm = boto("sagemaker")
    try:
        sm.create_model_package_group(ModelPackageGroupName=group)
    except sm.exceptions.ClientError:
        pass
    created, _ = registry.register(
        sm,
        a_registration(job, group=group, model=model, gate=gate),
    )
    if status:
        registry.set_status(sm, created.arn, status, by="alice", reason="reviewed")
    return created.arn


def deployed(stacks, live: str, history: list[str]) -> None:
    """The dev stack as a hand edit or a bad merge may leave it."""
    stackfile.write_keys(
        stacks / "Pulumi.dev.yaml",
        {stackfile.APPROVED_KEY: {"churn": live}, stackfile.PREVIOUS_KEY: {"churn": history}},
    )


def rollback(mlops):
    return mlops("rollback", "--env", "dev", "--model", "churn", "--json")


def test_rollback_to_the_live_package_is_refused(boto, stacks, mlops):
    first, second = package(boto, "job-1"), package(boto, "job-2")
    deployed(stacks, second, [first, second])
    files = snapshot(stacks)
    result = rollback(mlops)
    assert result.code == 4, result
    assert f"to {second}: it is the package live now" in result.err
    assert snapshot(stacks) == files


@pytest.mark.parametrize(
    "kind, words",
    [
        ("forced", "its gate is forced, not passed"),
        ("other model", "as model 'churn': it is a 'fraud' package"),
        ("pending", "it is PendingManualApproval now, not Approved"),
        ("rejected", "it is Rejected now, not Approved (by alice: reviewed)"),
    ],
)
def test_rollback_applies_the_promotion_gates(kind, words, boto, stacks, mlops):
    live = package(boto, "job-live")
    earlier = {
        "forced": lambda: package(boto, "job-forced", gate="forced"),
        "other model": lambda: package(boto, "job-fraud", group="fraud-dev", model="fraud"),
        "pending": lambda: package(boto, "job-pending", status=None),
        "rejected": lambda: package(boto, "job-rejected", status="Rejected"),
    }[kind]()
    deployed(stacks, live, [earlier])
    files = snapshot(stacks)
    result = rollback(mlops)
    assert result.code == 4, result
    assert f"cannot roll back to {earlier}" in result.err and words in result.err
    assert snapshot(stacks) == files


def test_a_rollback_that_passes_the_gates_is_written(boto, stacks, mlops):
    first, second = package(boto, "job-1"), package(boto, "job-2")
    deployed(stacks, second, [first])
    result = rollback(mlops)
    assert result.code == 0, result
    assert stackfile.approved_packages(stacks / "Pulumi.dev.yaml") == {"churn": first}
