"""The mlops-bootstrap Pulumi program (one stack per AWS account): see program.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `infra` importable when Pulumi runs this file


import pulumi
import pulumi_aws as aws

from infra.bootstrap.program import PROJECT, build_bootstrap, parse_bootstrap_config

settings = pulumi.Config(PROJECT)
raw = {
    f"{PROJECT}:repository": settings.get("repository"),
    f"{PROJECT}:environments": settings.get_object("environments"),
}
config = parse_bootstrap_config(pulumi.get_stack(), raw)  # fails before any resource is declared
account_id = aws.get_caller_identity_output().account_id
for key, value in build_bootstrap(config, account_id).items():
    pulumi.export(key, value)
