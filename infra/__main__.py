"""The mlops Pulumi program: read the stack's typed config, compose the components, export the contract.

Run by `pulumi up -s <stack>` (main: infra/) and, offline, by `infra/preview.py` under Pulumi's mocks.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `infra` importable when Pulumi runs this file

import pulumi
import pulumi_aws as aws

from infra.stack import build_stack
from kernel.stack_config import from_pulumi_config, parse_config

raw = from_pulumi_config(pulumi.runtime.config.get_config_env() | dict(pulumi.runtime.config.CONFIG.get()))
config = parse_config(pulumi.get_stack(), raw)  # fails before any resource: names, ranges, AWS rules (preflight)
account_id = aws.get_caller_identity_output().account_id
for key, value in build_stack(config, account_id, raw).items():
    pulumi.export(key, value)
