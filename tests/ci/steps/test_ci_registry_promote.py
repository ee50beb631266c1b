"""Registry (approve/reject, idempotent registration) and promotion gates, against moto's server.

Every refused promotion is checked to leave the registry and every stack file as they were.
"""

from __future__ import annotations

import pytest
import yaml
from ci_integrity_kit import make_package
from ci_testkit import snapshot

from ci.aws import registry


def registry_state(boto):
    sm = boto("sagemaker")
    out = {}
    for group in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]:
        for s in sm.list_model_packages(ModelPackageGroupName=group["ModelPackageGroupName"])[
            "ModelPackageSummaryList"
        ]:
            d = sm.describe_model_package(ModelPackageName=s["ModelPackageArn"])
            out[s["ModelPackageArn"]] = (d["ModelApprovalStatus"], d.get("CustomerMetadataProperties"))
    return out


def test_registration_is_idempotent_per_training_job(boto):
    arn = make_package(boto)
    sm = boto("sagemaker")
    again, created = registry.register(
        sm,
        registry.Registration(
            group="churn-dev",
            training_job="mlops-dev-churn-1",
            model_data_url="s3://b/other",
            image="x",
            content_types=[],
            response_types=[],
            realtime_instance_types=[],
            evaluation_report_uri="s3://b/r",
            metadata={},
            description="",
            tags={},
        ),
    )
    assert not created and again.arn == arn
    assert len(sm.list_model_packages(ModelPackageGroupName="churn-dev")["ModelPackageSummaryList"]) == 1


def test_metadata_over_the_limits_is_refused_naming_the_key():
    with pytest.raises(Exception, match="'lineage:big' is 300 characters"):
        registry.check_metadata({"lineage:big": "x" * 300})


def test_approve_records_who_and_why_and_keeps_the_lineage(boto, mlops):
    arn = make_package(boto)
    result = mlops("approve", arn, "--by", "alice", "--reason", "beats champion on holdout", "--json")
    assert result.code == 0, result
    pkg = result.json["package"]
    assert pkg["status"] == "Approved"
    assert pkg["approvalDescription"] == "Approved by alice: beats champion on holdout"
    assert pkg["metadata"][registry.K_APPROVED_BY] == "alice"
    assert pkg["metadata"][registry.K_GATE] == "passed"  # the update did not drop earlier metadata
    assert pkg["metadata"][registry.K_JOB] == "mlops-dev-churn-1"


def test_approve_needs_a_reason(boto, mlops):
    arn = make_package(boto)
    result = mlops("approve", arn, "--by", "alice", "--reason", "  ")
    assert result.code == 2 and "--reason is required" in result.err
    assert registry_state(boto)[arn][0] == "PendingManualApproval"


def promote(mlops, arn, env, *extra):
    return mlops("promote", arn, "--to", env, "--outputs-from", "preview", "--json", *extra)


@pytest.mark.parametrize("case", ["pending", "unknown", "rejected", "forced", "malformed"])
def test_refused_promotions_change_nothing(case, boto, stacks, mlops):
    arn = {
        "pending": lambda: make_package(boto),
        "unknown": lambda: make_package(boto).rsplit("/", 1)[0] + "/99",
        "rejected": lambda: make_package(boto, status="Rejected"),
        "forced": lambda: make_package(boto, gate="forced", status="Approved"),
        "malformed": lambda: "churn-dev/1",
    }[case]()
    files, reg = snapshot(stacks), registry_state(boto)
    result = promote(mlops, arn, "dev")
    assert result.code == (2 if case == "malformed" else 4), result
    expected = {
        "pending": "not Approved",
        "unknown": "does not exist",
        "rejected": "Rejected by alice (bias found)",
        "forced": "gate is forced",
        "malformed": "not a versioned model package ARN",
    }[case]
    assert expected in result.err
    assert snapshot(stacks) == files
    assert registry_state(boto) == reg


def test_prod_requires_staging_first_then_promotes_across_environments(boto, stacks, mlops):
    arn = make_package(boto, status="Approved")
    for env in ("dev", "staging", "prod"):  # promotion copies into the target's bucket and registry: they exist
        assert mlops("local", "up", "--stack", env).code == 0
    before, registered = snapshot(stacks), registry_state(boto)
    refused = promote(mlops, arn, "prod")
    assert refused.code == 4 and "the staging endpoint for churn does not serve it" in refused.err
    assert snapshot(stacks) == before and registry_state(boto) == registered

    for env in ("dev", "staging", "prod"):
        result = promote(mlops, arn, env)
        assert result.code == 0, result
        assert result.json["changed"] is True
        own = result.json["package"]["arn"]  # the target's own package (dev's is the original)
        assert (own == arn) if env == "dev" else (f"/churn-{env}/" in own)
        config = stack_config(stacks, env)
        assert config["mlops:approvedPackages"]["churn"] == own
        # "live in" is read from the endpoint (ci/steps/verify.py): roll it out before the next environment
        assert mlops("local", "up", "--stack", env).code == 0
    # the other environments' files were not touched by the prod promotion
    assert snapshot(stacks)["Pulumi.local.yaml"] == before["Pulumi.local.yaml"]


def stack_config(stacks, env):
    return yaml.safe_load((stacks / f"Pulumi.{env}.yaml").read_text())["config"]


def promoted_in_turn(boto, mlops):
    """Two approved packages promoted to dev, one after the other: (the previous, the live one)."""
    first = make_package(boto, job="job-1", status="Approved")
    second = make_package(boto, job="job-2", status="Approved")
    assert promote(mlops, first, "dev").code == 0
    assert promote(mlops, second, "dev").code == 0
    return first, second


def test_promoting_the_deployed_package_again_changes_nothing(boto, stacks, mlops):
    arn = make_package(boto, status="Approved")
    assert promote(mlops, arn, "dev").code == 0
    files = snapshot(stacks)
    again = promote(mlops, arn, "dev")
    assert again.code == 0 and again.json["changed"] is False
    assert snapshot(stacks) == files


def test_rollback_restores_the_previous_package(boto, stacks, mlops):
    first, _ = promoted_in_turn(boto, mlops)
    config = stack_config(stacks, "dev")
    assert config["mlops:previousPackages"] == {"churn": [first]}

    result = mlops("rollback", "--env", "dev", "--model", "churn", "--json")
    assert result.code == 0, result
    assert result.json["restored"] == first
    config = stack_config(stacks, "dev")
    assert config["mlops:approvedPackages"] == {"churn": first}
    assert config["mlops:previousPackages"] == {"churn": []}

    files = snapshot(stacks)
    nothing_left = mlops("rollback", "--env", "dev", "--model", "churn")
    assert nothing_left.code == 4 and "nothing to roll back to" in nothing_left.err
    assert snapshot(stacks) == files


def test_rollback_to_a_package_rejected_since_is_refused(boto, stacks, mlops):
    first, _ = promoted_in_turn(boto, mlops)
    registry.set_status(boto("sagemaker"), first, "Rejected", by="bob", reason="leak found")
    files = snapshot(stacks)
    result = mlops("rollback", "--env", "dev", "--model", "churn")
    assert result.code == 4 and "is Rejected now" in result.err
    assert snapshot(stacks) == files


def test_promotion_to_a_stack_without_the_model_is_refused(boto, stacks, mlops):
    arn = make_package(boto, group="fraud-dev", model="fraud", status="Approved")
    files = snapshot(stacks)
    result = promote(mlops, arn, "dev")
    assert result.code == 4 and "does not serve model 'fraud'" in result.err
    assert snapshot(stacks) == files


def test_metadata_values_are_cleaned_to_what_sagemaker_accepts_and_bad_keys_refused():
    cleaned = registry.check_metadata(
        {"mlops:gateReason": "roc_auc 0.81 (margin 0.005); ok, {x}", "lineage:hp.lr": "0.001"}
    )
    assert cleaned == {"mlops:gateReason": "roc_auc 0.81 _margin 0.005__ ok_ _x_", "lineage:hp.lr": "0.001"}
    with pytest.raises(Exception, match="letters, digits"):
        registry.check_metadata({"bad{key}": "x"})
