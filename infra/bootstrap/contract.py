"""What the bootstrap program makes once per account, named by convention so the stacks can refer to it.

The stacks never manage these: the GitHub OIDC provider (one per account), the permissions
boundary every role of every stack carries, and the deploy roles `pulumi up` runs as. Both
programs import these names from here, so the convention is written once.
"""

from __future__ import annotations

import pulumi

from infra.common import Statement

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com"
# Thumbprint of GitHub's OIDC certificate chain (IAM ignores it for this provider, but the API requires one).
GITHUB_OIDC_THUMBPRINT = "6938fd4d98bab03faadb97b34396831e3780aea1"
DEPLOY_PATH = "/mlops-deploy/"  # the deploy roles and the bootstrap's policies live here, out of the stacks' reach
BOUNDARY_POLICY_NAME = "mlops-deploy-boundary"
DEPLOY_POLICY_NAME = "mlops-deploy"
# What SageMaker does with the execution role to run a job or model inside a VPC: its network
# interfaces, and the look-ups before it makes them.
# https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html
VPC_INTERFACE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
)
VPC_DESCRIBE_ACTIONS = (
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeDhcpOptions",
)


def deploy_role_name(environment: str) -> str:
    return f"mlops-{environment}-deploy"


def oidc_provider_arn(account: pulumi.Input[str]) -> pulumi.Output[str]:
    """The account's GitHub OIDC provider."""
    return pulumi.Output.concat("arn:aws:iam::", account, ":oidc-provider/", GITHUB_OIDC_HOST)


def boundary_arn(account: pulumi.Input[str]) -> pulumi.Output[str]:
    """The permissions boundary every role of every stack carries."""
    return pulumi.Output.concat("arn:aws:iam::", account, ":policy", DEPLOY_PATH, BOUNDARY_POLICY_NAME)


# GitHub's OIDC subject, customized once per repository to carry the workflow that asks:
#   PUT /repos/{owner}/{repo}/actions/oidc/customization/sub
#   {"use_default": false, "include_claim_keys": ["repo", "context", "job_workflow_ref"]}
# gives sub = repo:<owner/name>:environment:<env>:job_workflow_ref:<owner/name>/.github/workflows/<file>@<ref>.
# AWS evaluates `sub` (and `aud`), so pinning it pins repository, GitHub environment, workflow file
# and the ref the workflow ran from. A pull request's ref is refs/pull/<n>/merge: it never matches.
# https://docs.github.com/en/actions/reference/security/oidc#customizing-the-subject-claims-for-an-organization-or-repository
# https://docs.github.com/en/rest/actions/oidc#set-the-customization-template-for-an-oidc-subject-claim-for-a-repository
SUBJECT_CLAIM_KEYS = ("repo", "context", "job_workflow_ref")
DEFAULT_BRANCH = "main"  # the branch staging and prod trust; a stack may name another (mlops:github.defaultBranch)
BRANCH_PINNED = ("staging", "prod")  # environment tiers whose roles trust only the default branch
DEPLOY_WORKFLOWS = ("pulumi-up.yml",)  # the workflow the deploy roles trust (called by deploy.yml)
PULL_REQUEST_REFS = (
    ":*@refs/pull/*"  # after repo:<owner/name>: a pull request's job_workflow_ref ends @refs/pull/<n>/merge
)


def pinned_ref(tier: str, default_branch: str = DEFAULT_BRANCH) -> str | None:
    """The ref a tier's roles trust: the default branch in staging and prod, any ref elsewhere (None)."""
    return f"refs/heads/{default_branch}" if tier in BRANCH_PINNED else None


def github_subject(repository: str, environment: str, workflow: str, ref: str | None) -> str:
    """The customized `sub` of a job of `workflow` in GitHub environment `environment` (ref None: any, `*`)."""
    return (
        f"repo:{repository}:environment:{environment}:"
        f"job_workflow_ref:{repository}/.github/workflows/{workflow}@{ref or '*'}"
    )


def github_trust(
    provider_arn: pulumi.Input[str],
    repository: str,
    environment: str,
    workflows: tuple[str, ...],
    ref: str | None,
) -> list[Statement]:
    """Trust for GitHub Actions' OIDC tokens of one GitHub environment's jobs of these workflow files.

    `aud` and the customized `sub` are pinned; with a ref (staging, prod, approval) `sub` must
    equal it exactly, without one (dev) any branch or tag of these workflows matches (StringLike),
    but no pull request's merge ref.
    """
    aud: dict[str, str | list[str]] = {f"{GITHUB_OIDC_HOST}:aud": GITHUB_OIDC_AUDIENCE}
    sub: dict[str, str | list[str]] = {
        f"{GITHUB_OIDC_HOST}:sub": [github_subject(repository, environment, w, ref) for w in workflows]
    }
    if ref:
        condition = {"StringEquals": {**aud, **sub}}
    else:  # any branch or tag, never a pull request's merge ref
        condition = {
            "StringEquals": aud,
            "StringLike": sub,
            "StringNotLike": {f"{GITHUB_OIDC_HOST}:sub": f"repo:{repository}{PULL_REQUEST_REFS}"},
        }
    return [
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": condition,
        }
    ]
