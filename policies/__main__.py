"""The CrossGuard policy pack: `pulumi preview --policy-pack policies [--policy-pack-config FILE]`.

`PolicyPack(...)` starts the analyzer's gRPC server and blocks, so it lives here alone; the
policies themselves are built in `policies.crossguard` from the rules in `policies.rules`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `policies` importable when Pulumi runs this file

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.crossguard import PACK_NAME, build_policies

PolicyPack(
    name=PACK_NAME,
    description="SageMaker-aware policies for the mlops blueprint: S3, KMS, IAM, SageMaker, ECR, "
    "monitoring, cost and tags.",
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=build_policies(),
)
