"""Multi-GPU and multi-node jobs go through the sagemaker SDK's Torchrun configuration, not a
launcher of ours: the dry run shows the SDK's torchrun driver and the instance count asked for."""

from __future__ import annotations

import pytest
from ci_testkit import dry_run

from ci.steps.training import plan_job


def test_two_hosts_run_the_sdks_torchrun_driver(offline, stacks, mlops):
    out = dry_run(mlops, "train", "--instance-count", "2")
    request = out["request"]
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert out["plan"]["instance_count"] == 2
    assert any(u.endswith("distributed_drivers/torchrun_driver.py") for u in out["codeUploads"]), out["codeUploads"]
    assert any(u.endswith("/ml/train.py") for u in out["codeUploads"])
    # the SDK's torchrun driver runs our entry script (its sm_train.sh reads SM_ENTRY_SCRIPT)
    assert request["Environment"].get("SM_ENTRY_SCRIPT", "ml/train.py") == "ml/train.py"
    assert "sm_drivers" in {c["ChannelName"] for c in request["InputDataConfig"]}
    assert out["problems"] == []


def test_an_instance_count_below_one_is_refused():
    from ci.errors import UsageError

    with pytest.raises(UsageError, match="--instance-count 0: a training job needs at least one host"):
        plan_job(None, "churn", None, instance_type="x", image_uri="x", image_digest=None,
                 hyperparameters={}, tags={}, git={}, instance_count=0)  # fmt: skip
