"""SageMaker instance types: which we support for training and hosting, per environment tier, and
what AWS allows on each.

Instance storage: types with local NVMe storage refuse a volume KMS key, in training
(`ResourceConfig.VolumeKmsKeyId`) and in endpoint configs (`KmsKeyId`), because their storage is
encrypted by a hardware module on the instance and no EBS volume is attached. Sources:
- https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceConfig.html (VolumeKmsKeyId)
- https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html (KmsKeyId)
- https://docs.aws.amazon.com/sagemaker/latest/dg/host-instance-storage.html
The sagemaker SDK encodes the same rule in `sagemaker.core.common_utils.instance_supports_kms`;
tests hold this module to it for every type listed here (the SDK takes seconds to import, too
slow for the Pulumi program).
"""

from __future__ import annotations

import re

INSTANCE_TYPE = re.compile(r"^ml\.([a-z0-9-]+)\.([a-z0-9]+)$")

# Families without an EBS volume: any family with a "d" (local NVMe: g4dn, p4d, p4de, c5d, m5d...)
# and these, whose storage is instance NVMe although the name has no "d".
NVME_FAMILIES_WITHOUT_D = ("g5", "g6", "g7e", "p5", "p6-b200", "trn1", "trn2")

GPU_PREFIXES = ("ml.g", "ml.p")

# SageMaker GPU training types we support (a type AWS offers and our container runs on).
GPU_TRAINING_TYPES = (
    "ml.g4dn.xlarge",
    "ml.g4dn.2xlarge",
    "ml.g4dn.4xlarge",
    "ml.g4dn.8xlarge",
    "ml.g4dn.12xlarge",
    "ml.g4dn.16xlarge",
    "ml.g5.xlarge",
    "ml.g5.2xlarge",
    "ml.g5.4xlarge",
    "ml.g5.8xlarge",
    "ml.g5.12xlarge",
    "ml.g5.16xlarge",
    "ml.g5.24xlarge",
    "ml.g5.48xlarge",
    "ml.g6.xlarge",
    "ml.g6.2xlarge",
    "ml.g6.4xlarge",
    "ml.g6.8xlarge",
    "ml.g6.12xlarge",
    "ml.g6.16xlarge",
    "ml.g6.24xlarge",
    "ml.g6.48xlarge",
    "ml.g6e.xlarge",
    "ml.g6e.2xlarge",
    "ml.g6e.4xlarge",
    "ml.g6e.12xlarge",
    "ml.p3.2xlarge",
    "ml.p3.8xlarge",
    "ml.p3.16xlarge",
    "ml.p4d.24xlarge",
    "ml.p4de.24xlarge",
    "ml.p5.48xlarge",
    "ml.p5e.48xlarge",
)

# The most each environment tier may ask for, whatever a stack allows: dev and local stay on
# single small GPUs, staging on the g family and p3, prod may add p4d/p5. The Pulumi program,
# the deploy role's conditions and the policy pack all read this one table.
_SMALL = ("ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.g5.xlarge", "ml.g5.2xlarge", "ml.g6.xlarge", "ml.g6.2xlarge")
TIER_TRAINING_TYPES: dict[str, tuple[str, ...]] = {
    "dev": _SMALL,
    "local": _SMALL,
    "staging": tuple(t for t in GPU_TRAINING_TYPES if not t.startswith(("ml.p4", "ml.p5"))),
    "prod": GPU_TRAINING_TYPES,
}

# Real-time hosting types we support (CPU and GPU).
HOSTING_TYPES = (
    "ml.t2.medium",
    "ml.m5.large",
    "ml.m5.xlarge",
    "ml.m5.2xlarge",
    "ml.c5.large",
    "ml.c5.xlarge",
    "ml.c5.2xlarge",
    "ml.c6i.large",
    "ml.c6i.xlarge",
    "ml.g4dn.xlarge",
    "ml.g4dn.2xlarge",
    "ml.g5.xlarge",
    "ml.g5.2xlarge",
    "ml.g6.xlarge",
    "ml.p3.2xlarge",
)


def family(instance_type: str) -> str:
    """`ml.g5.xlarge` -> `g5`; raises ValueError on a name that is not a SageMaker instance type."""
    match = INSTANCE_TYPE.match(instance_type)
    if not match:
        raise ValueError(f"'{instance_type}' is not a SageMaker instance type (ml.<family>.<size>)")
    return match.group(1)


def has_instance_storage(instance_type: str) -> bool:
    """True where the instance has local NVMe storage and so refuses a volume KMS key (module doc)."""
    fam = family(instance_type)
    return "d" in fam or fam.startswith(NVME_FAMILIES_WITHOUT_D)


def accepts_volume_kms_key(instance_type: str) -> bool:
    """Whether a training job or endpoint config on this type may name a volume KMS key."""
    return not has_instance_storage(instance_type)


def is_gpu(instance_type: str) -> bool:
    return instance_type.startswith(GPU_PREFIXES)
