"""What the bootstrap program makes once per account, named by convention so the stacks can refer to it.

The stacks never manage these: the GitHub OIDC provider (one per account), the permissions
boundary every role of every stack carries, and the deploy roles `pulumi up` runs as. Both
programs import these names from here, so the convention is written once.
"""

from __future__ import annotations

import pulumi

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com"
# Thumbprint of GitHub's OIDC certificate chain (IAM ignores it for this provider, but the API requires one).
GITHUB_OIDC_THUMBPRINT = "6938fd4d98bab03faadb97b34396831e3780aea1"
DEPLOY_PATH = "/mlops-deploy/"  # the deploy roles and the bootstrap's policies live here, out of the stacks' reach
BOUNDARY_POLICY_NAME = "mlops-deploy-boundary"
DEPLOY_POLICY_NAME = "mlops-deploy"


def deploy_role_name(environment: str) -> str:
    return f"mlops-{environment}-deploy"


def oidc_provider_arn(account: pulumi.Input[str]) -> pulumi.Output[str]:
    """The account's GitHub OIDC provider."""
    return pulumi.Output.concat("arn:aws:iam::", account, ":oidc-provider/", GITHUB_OIDC_HOST)


def boundary_arn(account: pulumi.Input[str]) -> pulumi.Output[str]:
    """The permissions boundary every role of every stack carries."""
    return pulumi.Output.concat("arn:aws:iam::", account, ":policy", DEPLOY_PATH, BOUNDARY_POLICY_NAME)


def github_trust(provider_arn: pulumi.Input[str], repository: str, environment: str) -> list[dict]:
    """Trust for GitHub Actions' OIDC tokens of one repository's one GitHub environment (aud and sub pinned)."""
    return [
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": GITHUB_OIDC_AUDIENCE,
                    f"{GITHUB_OIDC_HOST}:sub": f"repo:{repository}:environment:{environment}",
                }
            },
        }
    ]
