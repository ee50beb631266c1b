"""The kernel's instance facts agree with the sagemaker SDK, and every side reads the one table."""

import pytest

from kernel import instances


def test_volume_key_rule_matches_the_sagemaker_sdk():
    """AWS rule: INSTANCE-STORAGE. The SDK's instance_supports_kms is the reference."""
    from sagemaker.core.common_utils import instance_supports_kms

    for itype in instances.GPU_TRAINING_TYPES + instances.HOSTING_TYPES:
        assert instances.accepts_volume_kms_key(itype) == instance_supports_kms(itype), itype


@pytest.mark.parametrize(
    "itype", ["ml.g4dn.xlarge", "ml.g5.xlarge", "ml.g6e.xlarge", "ml.p4d.24xlarge", "ml.p5.48xlarge"]
)
def test_every_nvme_gpu_family_refuses_a_volume_key(itype):
    assert instances.has_instance_storage(itype)


@pytest.mark.parametrize("itype", ["ml.p3.2xlarge", "ml.m5.large", "ml.c6i.xlarge", "ml.t2.medium"])
def test_ebs_backed_types_take_a_volume_key(itype):
    assert instances.accepts_volume_kms_key(itype)


def test_not_an_instance_type_is_a_clear_error():
    with pytest.raises(ValueError, match="not a SageMaker instance type"):
        instances.family("g5.xlarge")


def test_policy_side_gpu_tiers_are_the_kernels():
    from kernel import stack_config as config
    from policies import context

    assert context.ENVIRONMENT_GPU_CEILING is instances.TIER_TRAINING_TYPES
    assert config.TIER_TRAINING_TYPES is instances.TIER_TRAINING_TYPES


def test_tiers_only_widen_from_dev_to_prod():
    tiers = instances.TIER_TRAINING_TYPES
    assert set(tiers["dev"]) <= set(tiers["staging"]) <= set(tiers["prod"]) == set(instances.GPU_TRAINING_TYPES)
