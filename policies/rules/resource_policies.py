"""Resource policies that reach outside the stack's AWS account.

Buckets, keys, topics, model package groups and image repositories each carry a policy that can name
principals of any account. Sharing across environments happens inside one account here (DESIGN 8:
promotion copies a model into the next environment); a grant to another account is a path for data,
models or images to leave it, and must be an explicit, expiring suppression, not an accident.
"""

from __future__ import annotations

from collections.abc import Iterable

from policies import iam_docs
from policies.context import PolicyContext
from policies.graph import ACCOUNT_ID, StackGraph, arn_account
from policies.records import Resource
from policies.rules.base import say
from policies.rules.iam import IAM
from policies.sagemaker_graph import PACKAGE_GROUP_POLICY

# type token -> the prop holding its resource policy
RESOURCE_POLICY_PROPS = {
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:s3/bucket:Bucket": "policy",
    "aws:kms/key:Key": "policy",
    "aws:kms/keyPolicy:KeyPolicy": "policy",
    "aws:sns/topic:Topic": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    PACKAGE_GROUP_POLICY: "resourcePolicy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "policy",
    "aws:ecrpublic/repositoryPolicy:RepositoryPolicy": "policy",
}
# Condition keys whose values are the calling account (a Principal '*' grant narrowed to one account).
CALLER_ACCOUNT_KEYS = ("aws:PrincipalAccount", "aws:SourceAccount", "kms:CallerAccount", "aws:SourceOwner")


def statements(resource: Resource) -> list[iam_docs.Statement]:
    return iam_docs.parse(resource.props.get(RESOURCE_POLICY_PROPS.get(resource.canonical_type, "policy"))) or []


def _account_of(principal: str) -> str | None:
    if ACCOUNT_ID.fullmatch(principal):
        return principal
    return arn_account(principal)


def foreign_accounts(s: iam_docs.Statement, account: str) -> list[str]:
    """Accounts other than `account` that an Allow statement grants to, by principal or caller-account condition."""
    if not s.allows:
        return []
    found = [a for p in s.principals.get("AWS", ()) if (a := _account_of(p)) is not None and a != account]
    if s.wildcard_principal:
        for key in CALLER_ACCOUNT_KEYS:
            found += [v for v in s.condition_values(key) if ACCOUNT_ID.fullmatch(v) and v != account]
    return sorted(set(found))


@IAM.resource(
    "iam-resource-policy-no-foreign-account",
    severity="high",
    types=tuple(RESOURCE_POLICY_PROPS),
    blind_spots=("policy", "resourcePolicy"),
)
def iam_resource_policy_no_foreign_account(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Bucket, key, topic, model package group and repository policies grant nothing to other AWS accounts.

    Why: A principal of another account in a resource policy is all that account needs (with its own IAM) to read
    training data, decrypt with the environment key, subscribe to alerts, register or pull models and images: data and
    models leave the account without any change on our side.

    Fix: remove the foreign principal; share across environments with principals of this account (arn:aws:iam::<this
    account>:root plus aws:PrincipalArn), or suppress with a reason and an expiry.
    """
    account = graph.account_id
    if account is None:
        return  # cannot tell which accounts are foreign
    for s in statements(resource):
        accounts = foreign_accounts(s, account)
        if accounts:
            yield say(
                resource,
                f"policy {s.label} grants {', '.join(s.actions) or 'actions'} to account(s) {', '.join(accounts)}, "
                f"not this stack's account {account}",
                "remove the foreign principal or suppress it with a reason and an expiry",
            )
