"""The bootstrap program's resources: the GitHub OIDC provider, the boundary, the deploy roles.

Run once per AWS account, by a person with administrator rights (`cd infra/bootstrap &&
pulumi up -s <account>`); CI then runs `pulumi up -s dev|staging|prod` as the deploy role of
that GitHub environment. No stack of the main program manages anything made here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.bootstrap.contract import (
    BOUNDARY_POLICY_NAME,
    DEPLOY_PATH,
    DEPLOY_POLICY_NAME,
    DEPLOY_WORKFLOWS,
    GITHUB_OIDC_AUDIENCE,
    GITHUB_OIDC_HOST,
    GITHUB_OIDC_THUMBPRINT,
    boundary_arn,
    deploy_role_name,
    github_trust,
    pinned_ref,
)
from infra.bootstrap.policies import boundary_statements, deploy_statements
from infra.common import policy_document
from kernel.stack_config import ENVIRONMENTS, ConfigError

PROJECT = "mlops-bootstrap"
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class BootstrapConfig:
    account: str  # the stack name: one stack per AWS account
    repository: str  # owner/name of the GitHub repository whose workflows deploy
    environments: tuple[str, ...]  # one deploy role per GitHub environment (= stack) in this account


def parse_bootstrap_config(stack: str, raw: dict[str, object]) -> BootstrapConfig:
    """Check the bootstrap stack's config; every problem in one error, before any resource."""
    problems = []
    repository = raw.get(f"{PROJECT}:repository")
    if not isinstance(repository, str) or not REPOSITORY.match(repository):
        problems.append(
            f"{PROJECT}:repository={repository!r}: must be a GitHub repository 'owner/name' "
            "(the OIDC subject repo:<owner/name>:environment:<env>:job_workflow_ref:..., "
            "https://docs.github.com/en/actions/reference/openid-connect-reference)"
        )
    environments = raw.get(f"{PROJECT}:environments")
    deployable = [e for e in ENVIRONMENTS if e != "local"]
    if not isinstance(environments, list) or not environments or not set(environments) <= set(deployable):
        problems.append(f"{PROJECT}:environments={environments!r}: must be a non-empty list of {deployable}")
    if problems:
        raise ConfigError(stack, problems)
    return BootstrapConfig(stack, str(repository), tuple(environments))  # type: ignore[arg-type]


def build_bootstrap(config: BootstrapConfig, account_id: pulumi.Input[str]) -> dict[str, pulumi.Input[Any]]:
    tags = {"project": "mlops", "managed-by": "pulumi", "pulumi-project": PROJECT}
    provider = aws.iam.OpenIdConnectProvider(
        "github-oidc",
        url=f"https://{GITHUB_OIDC_HOST}",
        client_id_lists=[GITHUB_OIDC_AUDIENCE],
        thumbprint_lists=[GITHUB_OIDC_THUMBPRINT],
        tags=tags,
    )
    boundary_ref = boundary_arn(account_id)
    # The boundary every mlops role carries, and what the deploy roles may do within it.
    boundary, deploy = (
        aws.iam.Policy(
            logical,
            name=policy_name,
            path=DEPLOY_PATH,
            description=description,
            policy=policy_document(statements(account_id, boundary_ref)),
            tags=tags,
        )
        for logical, policy_name, description, statements in (
            (
                "deploy-boundary",
                BOUNDARY_POLICY_NAME,
                "Ceiling of every mlops role: the stacks' services; no role may change the deploy roles",
                boundary_statements,
            ),
            (
                "deploy-permissions",
                DEPLOY_POLICY_NAME,
                "pulumi up of the mlops stacks: create, read, update, delete and tag their resources",
                deploy_statements,
            ),
        )
    )
    roles = {}
    for env in config.environments:
        role = aws.iam.Role(
            f"deploy-{env}",
            name=deploy_role_name(env),
            path=DEPLOY_PATH,
            description=f"pulumi up -s {env} of mlops, from {config.repository} (GitHub environment {env})",
            assume_role_policy=policy_document(
                github_trust(provider.arn, config.repository, env, DEPLOY_WORKFLOWS, pinned_ref(env))
            ),
            permissions_boundary=boundary.arn,
            max_session_duration=3600,
            tags={**tags, "environment": env},
        )
        aws.iam.RolePolicyAttachment(f"deploy-{env}-permissions", role=role.name, policy_arn=deploy.arn)
        roles[env] = role.arn
    return {
        "oidcProviderArn": provider.arn,
        "boundaryPolicyArn": boundary.arn,
        "deployPolicyArn": deploy.arn,
        "deployRoleArns": roles,
    }
