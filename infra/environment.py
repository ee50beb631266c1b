"""The one environment object every component takes: which stack, account, region, tier and key.

Built once in infra/stack.py. The stack's tags are not threaded through it: they are the AWS
provider's `default_tags` (`aws_provider`), which AWS copies into every resource's `tags_all`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.common import physical_name
from kernel.stack_config import DOWNSTREAM_ENVIRONMENTS, UPSTREAM_ENVIRONMENTS, StackConfig


@dataclass(frozen=True)
class Environment:
    stack: str
    account_id: pulumi.Input[str]
    region: str
    tier: str = "dev"  # the environment tier (config.environment): dev, staging, prod or local
    kms_key_arn: pulumi.Input[str] = ""  # the stack's key, once storage has made it

    @property
    def prefix(self) -> str:
        """`mlops-<stack>`, the start of every physical name."""
        return physical_name(self.stack)

    @property
    def upstream(self) -> tuple[str, ...]:
        """Environments whose promoted packages this one serves (and reads)."""
        return UPSTREAM_ENVIRONMENTS[self.tier]

    @property
    def downstream(self) -> tuple[str, ...]:
        """Environments that deploy packages this one registered."""
        return DOWNSTREAM_ENVIRONMENTS[self.tier]


def resource_tags(config: StackConfig) -> dict[str, str]:
    """Every taggable resource carries these: who owns it, what it costs, which environment."""
    return {"project": "mlops", "environment": config.stack, "managed-by": "pulumi", **config.tags}


def aws_provider(config: StackConfig, raw: dict[str, Any]) -> aws.Provider:
    """The stack's AWS provider, tagging every resource through `default_tags`.

    An explicit provider reads none of the stack's `aws:` settings, so they are passed on here
    (the local stack's endpoints and test credentials, for one).
    """
    settings = {_snake(key.removeprefix("aws:")): _typed(value) for key, value in raw.items() if key.startswith("aws:")}
    settings.update(region=config.region, default_tags=aws.ProviderDefaultTagsArgs(tags=resource_tags(config)))
    return aws.Provider("aws", **settings)


def _typed(value: Any) -> Any:
    """Pulumi holds scalar config as text (`"true"`, `"5"`); the provider's arguments are typed."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        return decoded if isinstance(decoded, (bool, int, float)) else value
    return value


def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel).lower()
